using RoentGen.Data;
using RoentGen.Evaluation;

namespace RoentGen.Tests.Evaluation;

public class TSneChartsTests
{
    private static float[,] Embedding(int n)
    {
        var e = new float[n, 2];
        for (int i = 0; i < n; i++) { e[i, 0] = i; e[i, 1] = -2 * i; }
        return e;
    }

    [Fact]
    public void Categorical_scatter_has_one_trace_per_group_with_its_points()
    {
        string[] labels = ["F", "M", "M", "F", "M", "other"];
        var e = Embedding(labels.Length);
        var groups = TSneCharts.Groups(e, labels);
        Assert.Equal(["M", "F", "other"], groups.Select(g => g.Name));                 // largest first
        Assert.Equal([1, 2, 4], groups[0].Indices);
        Assert.Equal([1.0, 2, 4], groups[0].X);
        Assert.Equal([-2.0, -4, -8], groups[0].Y);
        Assert.Equal(labels.Length, groups.Sum(g => g.Count));

        var chart = TSneCharts.Scatter(e, labels, "t-SNE by sex");
        var traces = chart.Traces.Select(t => Assert.IsType<ScatterTrace>(t)).ToList();
        Assert.Equal(3, traces.Count);
        Assert.Equal(["M (3)", "F (2)", "other (1)"], traces.Select(t => t.Name));
        Assert.All(traces, t => Assert.Equal(ScatterMode.Markers, t.Mode));
        Assert.Equal([3, 2, 1], traces.Select(t => t.X.Count));
        Assert.Equal([3, 2, 1], traces.Select(t => t.Y.Count));
        Assert.All(traces, t => Assert.Null(t.Text));
        Assert.Equal("t-SNE by sex", chart.Title);
        var hovered = TSneCharts.Scatter(e, labels, "with ids", labels.Select((_, i) => $"case {i}").ToArray());
        Assert.Equal(["case 1", "case 2", "case 4"], ((ScatterTrace)hovered.Traces[0]).Text!);

        Assert.Throws<ArgumentException>(() => TSneCharts.Scatter(e, labels.Take(5).ToArray(), "short"));
        Assert.Throws<ArgumentException>(() => TSneCharts.Groups(new float[6, 3], labels));
    }

    [Fact]
    public void Continuous_scatter_colours_every_point_by_its_value()
    {
        var e = Embedding(5);
        double[] ages = [30, 45, 60, 75, 90];
        var chart = TSneCharts.ScatterContinuous(e, ages, "t-SNE by age", "age");
        var trace = Assert.IsType<ScatterTrace>(Assert.Single(chart.Traces));
        Assert.Equal(5, trace.X.Count);
        Assert.Equal(ages, trace.Marker!.ColorValues!);
        Assert.Equal("Viridis", trace.Marker.ColorScale);
        Assert.True(trace.Marker.ShowScale);
        Assert.Equal("age", trace.Marker.ColorBarTitle);
        var json = chart.ToJson();
        Assert.Contains("\"colorscale\":\"Viridis\"", json);
        Assert.Contains("\"showscale\":true", json);
        Assert.Contains("\"color\":[30,45,60,75,90]", json);
        Assert.Throws<ArgumentException>(() => TSneCharts.ScatterContinuous(e, [1, 2, double.NaN, 4, 5], "nan"));
    }

    [Fact]
    public void Finding_group_names_one_finding_none_or_several()
    {
        Assert.Equal("No Finding", TSneCharts.FindingGroup([]));
        Assert.Equal("No Finding", TSneCharts.FindingGroup([Observation.SupportDevices]));
        Assert.Equal("Pleural Effusion", TSneCharts.FindingGroup([Observation.PleuralEffusion, Observation.SupportDevices]));
        Assert.Equal("multiple", TSneCharts.FindingGroup([Observation.Edema, Observation.Cardiomegaly]));
    }

    [Fact]
    public void Feature_tensor_rows_and_perplexity_fit_tsne()
    {
        using var t = TorchSharp.torch.arange(6, dtype: TorchSharp.torch.ScalarType.Float64).view(3, 2);
        var rows = TSne.Rows(t);
        Assert.Equal(3, rows.GetLength(0));
        Assert.Equal(2, rows.GetLength(1));
        Assert.Equal(5f, rows[2, 1]);
        Assert.Equal(2f, rows[1, 0]);
        Assert.Throws<ArgumentException>(() => TSne.Rows(TorchSharp.torch.zeros(3)));
        Assert.Equal(30, TSne.PerplexityFor(1000));
        double p = TSne.PerplexityFor(24);
        Assert.True(3 * p < 24 && p > 7, $"perplexity {p} for 24 points");
    }
}
