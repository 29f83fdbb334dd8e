using System.Text.Json;
using RoentGen.Evaluation.Probes;

namespace RoentGen.Tests.Evaluation.Probes;

public class ProbeSuiteTests
{
    [Fact]
    public void Suite_runs_every_probe_on_tiny_phantoms_with_a_random_encoder()
    {
        var data = ProbeData.FromPhantoms(40, size: 64, seed: 1);
        Assert.Empty(data.Train.PatientIds.Intersect(data.Test.PatientIds));
        Assert.Empty(data.Train.PatientIds.Intersect(data.Validation.PatientIds));
        Assert.Equal(40, data.Train.Count + data.Validation.Count + data.Test.Count);
        var opts = ProbeSuiteOptions.Quick with { Report = ReportProbeOptions.Quick with { Steps = 30 } };
        var r = ProbeSuite.Run(new RandomEncoder(SegmentationProbeTests.TinyVit), data, opts);
        Assert.True(double.IsFinite(r["sex/auc"]), r.ToJson());
        Assert.True(double.IsFinite(r["age/mae_years"]) && r["age/mae_years"] > 0);
        // The lungs head has to beat predicting "lungs" everywhere on the same test masks.
        double allForeground = SegmentationProbeTests.AllForegroundDice(data.Test.Masks["lungs"]);
        Assert.True(r["segmentation/dice:lungs"] > allForeground + 0.02, $"lung Dice {r["segmentation/dice:lungs"]} against the all-foreground mask's {allForeground}");
        Assert.NotNull(r.Report);
        Assert.NotNull(r.Labels);
        Assert.All(r.Labels!.Scored, l => Assert.InRange(l.Auc, 0, 1));
        using var doc = JsonDocument.Parse(r.ToJson());
        Assert.Equal("random-vit", doc.RootElement.GetProperty("encoder").GetString());
        Assert.True(doc.RootElement.GetProperty("metrics").GetArrayLength() >= 6);
        var df = r.ToDataFrame();
        Assert.Equal(r.Metrics.Count + r.NotAvailable.Count, df.Rows.Count);
        var bars = Assert.IsType<BarTrace>(Assert.Single(r.ToChart().Traces));
        Assert.Equal("random-vit", bars.Name);
        Assert.Equal(ProbeResults.HeadlineKeys.Where(k => double.IsFinite(r[k])), bars.Categories!);
        Assert.Equal(bars.Categories!.Select(k => r[k]), bars.Values);
    }

    [Fact]
    public void Comparison_table_has_a_row_per_metric_and_a_column_per_encoder()
    {
        var a = new ProbeResults("a", "d") { Sex = Sex(0.9), Age = new RegressionProbeResult(5, 0.8, 0.1, 0, 5, 10, []) };
        var b = new ProbeResults("b", "d") { Sex = Sex(0.6) };
        b.NotAvailable["age"] = "not available: no ages";
        var t = ProbeResults.Compare([a, b, a]);
        Assert.Equal(["metric", "a", "b", "a (2)"], t.Columns.Select(c => c.Name).ToArray());
        Assert.Equal(3, t.Rows.Count); // sex/auc, age/mae_years, age/pearson
        Assert.Equal("sex/auc", t.Columns["metric"][0]);
        Assert.Equal(0.6, (double)t.Columns["b"][0]!, 9);
        Assert.Null(t.Columns["b"][1]);
        Assert.Contains("not available", b.ToJson());

        var chart = ProbeResults.CompareChart([a, b]);
        Assert.Equal(["a", "b"], chart.Traces.Select(x => x.Name));
        Assert.Equal(["sex/auc", "age/pearson"], Assert.IsType<BarTrace>(chart.Traces[0]).Categories!);
        Assert.Equal(["sex/auc"], Assert.IsType<BarTrace>(chart.Traces[1]).Categories!);   // only finite headline metrics
        Assert.Equal([0.6], ((BarTrace)chart.Traces[1]).Values);
        Assert.Equal(BarMode.Group, chart.Layout.BarMode);

        static ClassificationProbeResult Sex(double auc) => new([new LabelScore("female", auc, 5, 10)], auc, 0.01, 0, auc, []);
    }

    [Fact]
    public void Target_names_parse_and_unknown_ones_are_named()
    {
        Assert.Equal(ProbeTarget.Segmentation, ProbeSuiteOptions.ParseTarget("segmentation"));
        var e = Assert.Throws<ArgumentException>(() => ProbeSuiteOptions.ParseTarget("lungs"));
        Assert.Contains("'lungs'", e.Message);
        Assert.Contains("report", e.Message);
    }
}
