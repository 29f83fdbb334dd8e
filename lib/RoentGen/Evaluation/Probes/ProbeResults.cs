using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Analysis;
using RoentGen.Visualization;

namespace RoentGen.Evaluation.Probes;

/// <summary>One number a probe produced, e.g. ("linear", "macro_auc", 0.81).</summary>
/// <param name="Probe">linear, knn, sex, age, segmentation or report.</param>
/// <param name="Metric">e.g. macro_auc, auc:Cardiomegaly, mae_years, pearson, dice:lungs, macro_f1, f1:Edema.</param>
/// <param name="Value">The value (NaN when undefined).</param>
public sealed record ProbeMetric(string Probe, string Metric, double Value)
{
    /// <summary>"probe/metric", the row key of comparison tables.</summary>
    public string Key => $"{Probe}/{Metric}";
}

/// <summary>Everything one <see cref="ProbeSuite.Run"/> measured for one encoder on one data set.</summary>
public sealed class ProbeResults
{
    /// <summary>Creates an empty result.</summary>
    public ProbeResults(string encoder, string data) { Encoder = encoder; Data = data; }

    /// <summary>Encoder name.</summary>
    public string Encoder { get; }
    /// <summary>Data set description.</summary>
    public string Data { get; }
    /// <summary>Linear probe on the 14 observations (grid, best on validation).</summary>
    public ClassificationProbeResult? Labels { get; set; }
    /// <summary>k-NN on the 14 observations.</summary>
    public ClassificationProbeResult? Knn { get; set; }
    /// <summary>Sex probe (female = positive).</summary>
    public ClassificationProbeResult? Sex { get; set; }
    /// <summary>Age probe.</summary>
    public RegressionProbeResult? Age { get; set; }
    /// <summary>Segmentation probe.</summary>
    public SegmentationProbeResult? Segmentation { get; set; }
    /// <summary>Report-generation probe.</summary>
    public ReportProbeResult? Report { get; set; }
    /// <summary>Probes that were asked for but could not run, with the reason.</summary>
    public Dictionary<string, string> NotAvailable { get; } = new(StringComparer.Ordinal);
    /// <summary>Wall time of the run.</summary>
    public double Seconds { get; set; }

    /// <summary>Every number as (probe, metric, value) rows; unscored labels are left out.</summary>
    public IReadOnlyList<ProbeMetric> Metrics
    {
        get
        {
            var m = new List<ProbeMetric>();
            void Cls(string probe, ClassificationProbeResult? r)
            {
                if (r is null) return;
                m.Add(new(probe, "macro_auc", r.MacroAuc));
                foreach (var l in r.Scored) m.Add(new(probe, "auc:" + l.Label, l.Auc));
            }
            Cls("linear", Labels);
            Cls("knn", Knn);
            if (Sex is not null) m.Add(new("sex", "auc", Sex.MacroAuc));
            if (Age is not null) { m.Add(new("age", "mae_years", Age.Mae)); m.Add(new("age", "pearson", Age.Pearson)); }
            if (Segmentation is not null)
            {
                m.Add(new("segmentation", "mean_dice", Segmentation.MeanDice));
                foreach (var s in Segmentation.PerStructure) m.Add(new("segmentation", "dice:" + s.Structure, s.Dice));
            }
            if (Report is not null)
            {
                m.Add(new("report", "macro_f1", Report.MacroF1));
                foreach (var f in Report.PerFinding.Where(f => double.IsFinite(f.F1))) m.Add(new("report", "f1:" + f.Observation, f.F1));
            }
            return m;
        }
    }

    /// <summary>The headline value of a metric key ("linear/macro_auc"), or NaN when absent.</summary>
    public double this[string key] => Metrics.FirstOrDefault(x => x.Key == key)?.Value ?? double.NaN;

    /// <summary>Metrics as a data frame: probe, metric, value; then one row per unavailable probe (value null, note set).</summary>
    public DataFrame ToDataFrame()
    {
        var ms = Metrics;
        var probe = ms.Select(x => x.Probe).Concat(NotAvailable.Keys).ToList();
        var metric = ms.Select(x => x.Metric).Concat(NotAvailable.Keys.Select(_ => "")).ToList();
        var value = ms.Select(x => double.IsFinite(x.Value) ? x.Value : (double?)null).Concat(NotAvailable.Keys.Select(_ => (double?)null)).ToList();
        var note = ms.Select(_ => (string?)null).Concat(NotAvailable.Values).ToList();
        return new DataFrame(new StringDataFrameColumn("probe", probe), new StringDataFrameColumn("metric", metric),
            new DoubleDataFrameColumn("value", value), new StringDataFrameColumn("note", note));
    }

    /// <summary>
    /// JSON: encoder, data, seconds, metrics (probe/metric/value, NaN as null), not_available, and per-probe details
    /// (chosen grid point, grid scores, example reports).
    /// </summary>
    public string ToJson()
    {
        static JsonNode? N(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
        var metrics = new JsonArray(Metrics.Select(x => (JsonNode)new JsonObject { ["probe"] = x.Probe, ["metric"] = x.Metric, ["value"] = N(x.Value) }).ToArray());
        var details = new JsonObject();
        JsonObject Grid(double lr, double wd, IReadOnlyList<GridPoint> g) => new()
        {
            ["best_learning_rate"] = N(lr), ["best_weight_decay"] = N(wd),
            ["grid"] = new JsonArray(g.Select(p => (JsonNode)new JsonObject { ["learning_rate"] = p.LearningRate, ["weight_decay"] = p.WeightDecay, ["validation"] = N(p.ValidationScore) }).ToArray()),
        };
        if (Labels is not null)
        {
            var d = Grid(Labels.BestLearningRate, Labels.BestWeightDecay, Labels.Grid);
            d["validation_macro_auc"] = N(Labels.ValidationMacroAuc);
            d["per_label"] = new JsonArray(Labels.PerLabel.Select(l => (JsonNode)new JsonObject { ["label"] = l.Label, ["auc"] = N(l.Auc), ["test_positives"] = l.TestPositives, ["test_count"] = l.TestCount }).ToArray());
            details["linear"] = d;
        }
        if (Sex is not null) details["sex"] = Grid(Sex.BestLearningRate, Sex.BestWeightDecay, Sex.Grid);
        if (Age is not null)
        {
            var d = Grid(Age.BestLearningRate, Age.BestWeightDecay, Age.Grid);
            d["validation_mae"] = N(Age.ValidationMae); d["test_count"] = Age.TestCount;
            details["age"] = d;
        }
        if (Segmentation is not null) details["segmentation"] = new JsonObject { ["final_loss"] = N(Segmentation.FinalLoss) };
        if (Report is not null)
            details["report"] = new JsonObject
            {
                ["final_loss"] = N(Report.FinalLoss),
                ["examples"] = new JsonArray(Report.Examples.Select(e => (JsonNode)new JsonObject { ["reference"] = e.Reference, ["generated"] = e.Generated }).ToArray()),
            };
        var root = new JsonObject
        {
            ["encoder"] = Encoder, ["data"] = Data, ["seconds"] = Math.Round(Seconds, 2), ["metrics"] = metrics,
            ["not_available"] = new JsonObject(NotAvailable.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
            ["details"] = details,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>A bar chart of the headline metrics (macro AUCs, sex AUC, age Pearson r, mean Dice, report macro F1).</summary>
    public Figure ToChart() => CompareChart([this]);

    /// <summary>Headline metric keys shown in charts.</summary>
    public static IReadOnlyList<string> HeadlineKeys { get; } =
        ["linear/macro_auc", "knn/macro_auc", "sex/auc", "age/pearson", "segmentation/mean_dice", "report/macro_f1"];

    /// <summary>Grouped bars of the headline metrics of several encoders (one colour per encoder).</summary>
    public static Figure CompareChart(IEnumerable<ProbeResults> results) =>
        GroupedBars.Of(null, results.Select(r => (r.Encoder, HeadlineKeys, (Func<string, double>)(k => r[k]))), HeadlineAxisTitle);

    /// <summary>The y axis title of headline charts.</summary>
    internal const string HeadlineAxisTitle = "score (AUC, Pearson r, Dice, F1)";

    /// <summary>
    /// Comparison table of several encoders: one row per metric key (first-seen order), one column per encoder
    /// (named after it; repeated names get a suffix); missing or undefined values are null.
    /// </summary>
    public static DataFrame Compare(IEnumerable<ProbeResults> results)
    {
        var list = results.ToList();
        var keys = new List<string>();
        foreach (var r in list) foreach (var m in r.Metrics) if (!keys.Contains(m.Key)) keys.Add(m.Key);
        var cols = new List<DataFrameColumn> { new StringDataFrameColumn("metric", keys) };
        var used = new HashSet<string>(StringComparer.Ordinal) { "metric" };
        foreach (var r in list)
        {
            var name = r.Encoder; int k = 2;
            while (!used.Add(name)) name = $"{r.Encoder} ({k++})";
            var map = r.Metrics.GroupBy(m => m.Key).ToDictionary(g => g.Key, g => g.First().Value);
            cols.Add(new DoubleDataFrameColumn(name, keys.Select(key => map.TryGetValue(key, out var v) && double.IsFinite(v) ? v : (double?)null)));
        }
        return new DataFrame(cols);
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Encoder} on {Data}: " + string.Join(", ", HeadlineKeys.Where(k => double.IsFinite(this[k])).Select(k => $"{k} {this[k]:0.###}"));
}
