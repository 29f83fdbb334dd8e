using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Analysis;
using RoentGen.Data.Datasets;
using RoentGen.Evaluation;
using RoentGen.Evaluation.Statistics;
using RoentGen.Methods;
using RoentGen.Platform;
using RoentGen.Visualization;
using static TorchSharp.torch;

namespace RoentGen.PairAug;

/// <summary>One arm trained with one seed and its evaluation (DIR/arms/ARM/seed-S/eval.json).</summary>
/// <param name="Arm">real, inter, intra or both.</param>
/// <param name="Seed">The VLP seed.</param>
/// <param name="TrainPairs">Image-report pairs the arm trained on.</param>
/// <param name="Evaluation">Zero-shot and probes on the held-out phantoms.</param>
/// <param name="RealTb">TB-vs-normal zero-shot on the real sample (null when skipped).</param>
/// <param name="TrainSeconds">Training wall time (NaN when unknown).</param>
public sealed record PairAugArmRun(
    [property: JsonPropertyName("arm")] string Arm,
    [property: JsonPropertyName("seed")] long Seed,
    [property: JsonPropertyName("train_pairs")] int TrainPairs,
    [property: JsonPropertyName("evaluation")] VlpEvaluationResult Evaluation,
    [property: JsonPropertyName("real_tb")] ZeroShotFindingRow? RealTb,
    [property: JsonPropertyName("train_seconds")] double TrainSeconds)
{
    /// <summary>The metrics compared across arms: zero-shot macro AUC, probe macro AUC at each fraction, and the real TB AUC when measured.</summary>
    public IReadOnlyDictionary<string, double> Metrics()
    {
        var m = new Dictionary<string, double> { ["zero_shot_macro_auc"] = Evaluation.ZeroShotMacroAuc };
        foreach (var p in Evaluation.Probes) m[PairAugStudyResult.ProbeMetric(p.Fraction)] = p.MacroAuc;
        if (RealTb is not null) m["real_tb_zero_shot_auc"] = RealTb.Auc;
        return m;
    }

    /// <summary>Writes the run atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, VlpEvaluationResult.Json));

    /// <summary>Reads a run file.</summary>
    /// <exception cref="InvalidDataException">Not an arm run.</exception>
    public static PairAugArmRun Load(string path)
    {
        try { return JsonSerializer.Deserialize<PairAugArmRun>(File.ReadAllText(path), VlpEvaluationResult.Json) ?? throw new InvalidDataException($"{path}: empty arm run"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a PairAug arm run ({e.Message})", e); }
    }
}

/// <summary>One point of a t-SNE view.</summary>
/// <param name="X">First coordinate.</param>
/// <param name="Y">Second coordinate.</param>
/// <param name="Group">real, InterAug, IntraAug (images) or real, InterAug rewrite, IntraAug rewrite (reports).</param>
/// <param name="Text">The report (hover text).</param>
public sealed record TsnePoint(
    [property: JsonPropertyName("x")] double X,
    [property: JsonPropertyName("y")] double Y,
    [property: JsonPropertyName("group")] string Group,
    [property: JsonPropertyName("text")] string Text);

/// <summary>The two t-SNE views of the study in one VLP's embedding space.</summary>
/// <param name="Model">Which arm and seed embedded them.</param>
/// <param name="Images">Real vs synthetic images (projected image embeddings).</param>
/// <param name="Reports">Real vs rewritten reports (projected text embeddings).</param>
public sealed record PairAugTsne(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("images")] IReadOnlyList<TsnePoint> Images,
    [property: JsonPropertyName("reports")] IReadOnlyList<TsnePoint> Reports)
{
    /// <summary>
    /// Embeds up to <paramref name="points"/> real images and as many synthetic ones (InterAug and IntraAug pairs, half each
    /// where both have enough), and the same for reports (real, InterAug and IntraAug rewrites), with <paramref name="model"/>,
    /// normalises the embeddings and runs <see cref="TSne.Fit"/> on each set.
    /// </summary>
    internal static PairAugTsne Compute(ClipModel model, int points, CxrDataset real, CxrDataset inter, CxrDataset intra, PairAugStudy.RewriteStage rewrites, long seed)
    {
        using var scope = NewDisposeScope();
        var embedder = new ClipModelEmbedder(model);
        int half = Math.Max(1, points / 2);
        var realRecords = real.Take(points).ToList();
        var synthetic = inter.Take(half).Select(r => (Data: inter, Record: r, Group: "InterAug"))
            .Concat(intra.Take(points - Math.Min(half, inter.Count)).Select(r => (Data: intra, Record: r, Group: "IntraAug"))).ToList();
        var imageRows = realRecords.Select(r => (Image: real.LoadImage(r, model.ImageSize), Group: "real", Text: r.Report.FullText))
            .Concat(synthetic.Select(s => (Image: s.Data.LoadImage(s.Record, model.ImageSize), s.Group, Text: s.Record.Report.FullText))).ToList();
        var imageEmb = embedder.EmbedImages(Data.ImageTensors.Stack(imageRows.Select(r => r.Image)));
        var reportRows = realRecords.Select(r => (Text: r.Report.FullText, Group: "real"))
            .Concat(rewrites.Inter.Take(half).Select(r => (Text: r.Rewritten, Group: "InterAug rewrite")))
            .Concat(rewrites.Intra.Take(points - Math.Min(half, rewrites.Inter.Count)).Select(r => (Text: r.Rewritten, Group: "IntraAug rewrite"))).ToList();
        var textEmb = embedder.EmbedTexts(reportRows.Select(r => r.Text).ToList());
        return new PairAugTsne($"both seed {seed}",
            Fit(imageEmb, imageRows.Select(r => (r.Group, r.Text)).ToList(), seed),
            Fit(textEmb, reportRows.Select(r => (r.Group, r.Text)).ToList(), seed));
    }

    private static List<TsnePoint> Fit(Tensor embeddings, IReadOnlyList<(string Group, string Text)> rows, long seed)
    {
        var x = TSne.Rows(nn.functional.normalize(embeddings, dim: -1));
        int n = rows.Count;
        var fit = TSne.Fit(x, new TSneOptions { Perplexity = TSne.PerplexityFor(n), Seed = (int)seed, Iterations = 500, PcaDimensions = Math.Min(50, x.GetLength(1)) });
        return Enumerable.Range(0, n).Select(i => new TsnePoint(fit.Embedding[i, 0], fit.Embedding[i, 1], rows[i].Group, rows[i].Text)).ToList();
    }

    /// <summary>The points as a (N, 2) array and their groups, for <see cref="TSneCharts.Scatter"/>.</summary>
    public static (float[,] Embedding, IReadOnlyList<string> Groups, IReadOnlyList<string> Hover) AsArrays(IReadOnlyList<TsnePoint> points)
    {
        var e = new float[points.Count, 2];
        for (int i = 0; i < points.Count; i++) { e[i, 0] = (float)points[i].X; e[i, 1] = (float)points[i].Y; }
        return (e, points.Select(p => p.Group).ToList(), points.Select(p => p.Text).ToList());
    }

    /// <summary>The image view: real vs InterAug vs IntraAug images, hover text their reports.</summary>
    public Figure ImageFigure()
    {
        var (e, g, h) = AsArrays(Images);
        return TSneCharts.Scatter(e, g, $"t-SNE of image embeddings ({Model}): real vs synthetic", h);
    }

    /// <summary>The report view: real reports vs InterAug and IntraAug rewrites.</summary>
    public Figure ReportFigure()
    {
        var (e, g, h) = AsArrays(Reports);
        return TSneCharts.Scatter(e, g, $"t-SNE of report embeddings ({Model}): real vs rewritten", h);
    }

    /// <summary>Writes the views atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, VlpEvaluationResult.Json));

    /// <summary>Reads the views.</summary>
    /// <exception cref="InvalidDataException">Not a t-SNE file.</exception>
    public static PairAugTsne Load(string path)
    {
        try { return JsonSerializer.Deserialize<PairAugTsne>(File.ReadAllText(path), VlpEvaluationResult.Json) ?? throw new InvalidDataException($"{path}: empty t-SNE views"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not PairAug t-SNE views ({e.Message})", e); }
    }
}

/// <summary>One metric of one arm over the seeds.</summary>
/// <param name="Arm">The arm.</param>
/// <param name="Metric">The metric.</param>
/// <param name="Values">Per seed, in seed order.</param>
/// <param name="Summary">Mean and 95 % Student-t interval over the finite values.</param>
public sealed record ArmMetric(
    [property: JsonPropertyName("arm")] string Arm,
    [property: JsonPropertyName("metric")] string Metric,
    [property: JsonPropertyName("values")] IReadOnlyList<double> Values,
    [property: JsonPropertyName("summary")] Summary Summary);

/// <summary>An augmented arm against real-only on one metric: paired one-sided t over the seeds (H1: augmented is higher), Holm across the arm's metrics.</summary>
/// <param name="Arm">The augmented arm.</param>
/// <param name="Metric">The metric.</param>
/// <param name="MeanDifference">Mean of (arm − real) over the seeds with both finite (NaN when none).</param>
/// <param name="T">t statistic (NaN when the test is undefined).</param>
/// <param name="DegreesOfFreedom">n − 1.</param>
/// <param name="P">One-sided p (NaN when undefined).</param>
/// <param name="AdjustedP">Holm-adjusted p across the arm's defined tests.</param>
/// <param name="Rejected">Whether real-only ≥ arm is rejected at 0.05 after adjustment.</param>
/// <param name="Note">Why the test is undefined (fewer than two seeds, zero variance), else empty.</param>
public sealed record ArmTest(
    [property: JsonPropertyName("arm")] string Arm,
    [property: JsonPropertyName("metric")] string Metric,
    [property: JsonPropertyName("mean_difference")] double MeanDifference,
    [property: JsonPropertyName("t")] double T,
    [property: JsonPropertyName("df")] double DegreesOfFreedom,
    [property: JsonPropertyName("p")] double P,
    [property: JsonPropertyName("adjusted_p")] double AdjustedP,
    [property: JsonPropertyName("rejected")] bool Rejected,
    [property: JsonPropertyName("note")] string Note);

/// <summary>Everything <see cref="PairAugStudy.Run"/> measured (DIR/results.json).</summary>
public sealed record PairAugStudyResult
{
    /// <summary>PairAug's claim this study is set against.</summary>
    public const string PaperClaim = "PairAug (Xie et al., CVPR 2024): pretraining on real pairs plus InterAug and IntraAug pairs beats real-only pretraining, "
        + "zero-shot and in linear probing (their Tables 1-3, on MIMIC-CXR with a pretrained text-to-CXR model and an LLM rewriter).";

    /// <summary>The study config.</summary>
    [JsonPropertyName("config")] public required PairAugStudyConfig Config { get; init; }
    /// <summary>The VLP seeds.</summary>
    [JsonPropertyName("seeds")] public required IReadOnlyList<long> Seeds { get; init; }
    /// <summary>Rewrite counts (requested, kept, dropped, not applicable per branch).</summary>
    [JsonPropertyName("rewrite_counts")] public required IReadOnlyDictionary<string, int> RewriteCounts { get; init; }
    /// <summary>InterAug counts: rewrites, generated, kept, pruned.</summary>
    [JsonPropertyName("inter_counts")] public required IReadOnlyDictionary<string, int> InterCounts { get; init; }
    /// <summary>IntraAug counts: rewrites, inverted, generated, after each pruning rule, kept, pruned.</summary>
    [JsonPropertyName("intra_counts")] public required IReadOnlyDictionary<string, int> IntraCounts { get; init; }
    /// <summary>Every arm × seed.</summary>
    [JsonPropertyName("runs")] public required IReadOnlyList<PairAugArmRun> Runs { get; init; }
    /// <summary>Every arm's metrics over the seeds.</summary>
    [JsonPropertyName("arms")] public required IReadOnlyList<ArmMetric> ArmMetrics { get; init; }
    /// <summary>Each augmented arm against real-only.</summary>
    [JsonPropertyName("tests")] public required IReadOnlyList<ArmTest> Tests { get; init; }
    /// <summary>The t-SNE views.</summary>
    [JsonPropertyName("tsne")] public required PairAugTsne Tsne { get; init; }
    /// <summary>The real sample rows of the TB zero-shot, or null when skipped.</summary>
    [JsonPropertyName("real_tb")] public string? RealTb { get; init; }
    /// <summary>The paper's claim.</summary>
    [JsonPropertyName("paper_claim")] public string Claim { get; init; } = PaperClaim;
    /// <summary>What this study found, one line per augmented arm.</summary>
    [JsonPropertyName("verdicts")] public required IReadOnlyList<string> Verdicts { get; init; }
    /// <summary>Wall seconds of the stages run by this call (stages finished earlier are absent).</summary>
    [JsonPropertyName("stage_seconds")] public required IReadOnlyDictionary<string, double> StageSeconds { get; init; }
    /// <summary>Wall seconds of this call.</summary>
    [JsonPropertyName("seconds")] public double Seconds { get; init; }

    /// <summary>The metric name of the probe at a label fraction ("probe_10pct_macro_auc").</summary>
    public static string ProbeMetric(double fraction) => string.Create(CultureInfo.InvariantCulture, $"probe_{fraction * 100:0.##}pct_macro_auc");

    internal static PairAugStudyResult Build(PairAugStudyConfig config, IReadOnlyList<long> seeds, IReadOnlyDictionary<string, int> rewriteCounts,
        PairAugStudy.StageCounts inter, PairAugStudy.StageCounts intra, IReadOnlyList<PairAugArmRun> runs, PairAugTsne tsne, string? realTb,
        IReadOnlyDictionary<string, double> stageSeconds, double seconds)
    {
        var metricNames = runs.SelectMany(r => r.Metrics().Keys).Distinct().ToList();
        double Value(string arm, long seed, string metric) =>
            runs.FirstOrDefault(r => r.Arm == arm && r.Seed == seed)?.Metrics().GetValueOrDefault(metric, double.NaN) ?? double.NaN;
        var armMetrics = PairAugStudy.Arms.SelectMany(arm => metricNames.Select(m =>
        {
            var v = seeds.Select(s => Value(arm, s, m)).ToArray();
            return new ArmMetric(arm, m, v, Summary.OfFinite(v));
        })).ToList();
        var tests = new List<ArmTest>();
        var verdicts = new List<string>();
        foreach (var arm in PairAugStudy.Arms.Skip(1))
        {
            var armTests = metricNames.Select(m =>
            {
                var a = seeds.Select(s => Value(arm, s, m)).ToArray();
                var b = seeds.Select(s => Value("real", s, m)).ToArray();
                var both = Enumerable.Range(0, a.Length).Where(i => double.IsFinite(a[i]) && double.IsFinite(b[i])).ToArray();
                double diff = both.Length > 0 ? both.Average(i => a[i] - b[i]) : double.NaN;
                if (both.Length < 2) return new ArmTest(arm, m, diff, double.NaN, double.NaN, double.NaN, double.NaN, false, $"{both.Length} seed(s) with both values; a paired test needs 2 or more");
                // AUCs on small test sets are coarse: differences equal up to rounding give a t of ~1e15, which is no evidence.
                var d = both.Select(i => a[i] - b[i]).ToArray();
                if (d.Max() - d.Min() <= 1e-9)
                    return new ArmTest(arm, m, diff, double.NaN, double.NaN, double.NaN, double.NaN, false, $"all {d.Length} paired differences equal ({Signed(d[0])}): t undefined");
                try
                {
                    var t = TTest.Paired(both.Select(i => a[i]).ToArray(), both.Select(i => b[i]).ToArray(), Alternative.Greater);
                    return new ArmTest(arm, m, diff, t.T, t.DegreesOfFreedom, t.P, double.NaN, false, "");
                }
                catch (ArgumentException e) { return new ArmTest(arm, m, diff, double.NaN, double.NaN, double.NaN, double.NaN, false, e.Message); }
            }).ToList();
            var defined = armTests.Where(t => double.IsFinite(t.P)).ToList();
            if (defined.Count > 0)
            {
                var adjusted = MultipleComparisons.Holm(defined.Select(t => t.P).ToArray());
                for (int i = 0; i < defined.Count; i++)
                    armTests[armTests.IndexOf(defined[i])] = defined[i] with { AdjustedP = adjusted[i], Rejected = adjusted[i] <= 0.05 };
            }
            tests.AddRange(armTests);
            var zs = armTests.First(t => t.Metric == "zero_shot_macro_auc");
            int better = armTests.Count(t => t.Rejected);
            verdicts.Add($"{Describe(arm)}: zero-shot macro AUC {Signed(zs.MeanDifference)} vs real-only over {seeds.Count} seed(s); "
                + (defined.Count == 0 ? "no paired test defined (needs 2+ seeds with a spread)"
                    : $"{better} of {defined.Count} metrics significantly higher (one-sided paired t, Holm, 0.05): {(better > 0 ? "supports" : "does not support")} the claim here"));
        }
        return new PairAugStudyResult
        {
            Config = config, Seeds = seeds.ToArray(), RewriteCounts = rewriteCounts,
            InterCounts = inter.Counts.ToDictionary(kv => kv.Key, kv => kv.Value), IntraCounts = intra.Counts.ToDictionary(kv => kv.Key, kv => kv.Value),
            Runs = runs, ArmMetrics = armMetrics, Tests = tests, Tsne = tsne, RealTb = realTb, Verdicts = verdicts,
            StageSeconds = stageSeconds, Seconds = seconds,
        };
    }

    private static string Describe(string arm) => PairAugStudy.Describe(arm);
    private static string Signed(double v) => double.IsFinite(v) ? v.ToString("+0.000;-0.000;0.000", CultureInfo.InvariantCulture) : "n/a";
    private static string F(double v) => double.IsFinite(v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "n/a";

    /// <summary>Writes the result atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, VlpEvaluationResult.Json));

    /// <summary>Reads a results.json.</summary>
    /// <exception cref="InvalidDataException">Not a PairAug study result.</exception>
    public static PairAugStudyResult Load(string path)
    {
        try { return JsonSerializer.Deserialize<PairAugStudyResult>(File.ReadAllText(path), VlpEvaluationResult.Json) ?? throw new InvalidDataException($"{path}: empty study result"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a PairAug study result ({e.Message})", e); }
    }

    /// <summary>The results table: one row per arm, each metric as mean [95 % interval] over the seeds.</summary>
    public DataFrame ResultsTable()
    {
        var metrics = ArmMetrics.Select(m => m.Metric).Distinct().ToList();
        var columns = new List<DataFrameColumn>
        {
            new StringDataFrameColumn("arm", PairAugStudy.Arms.Select(Describe)),
            new Int32DataFrameColumn("pairs", PairAugStudy.Arms.Select(a => Runs.FirstOrDefault(r => r.Arm == a)?.TrainPairs ?? 0)),
        };
        foreach (var m in metrics)
            columns.Add(new StringDataFrameColumn(m, PairAugStudy.Arms.Select(a => ArmMetrics.FirstOrDefault(x => x.Arm == a && x.Metric == m) is { } x
                ? (x.Summary.N >= 2 ? $"{F(x.Summary.Mean)} [{F(x.Summary.Lower)}, {F(x.Summary.Upper)}]" : F(x.Summary.Mean)) : "n/a")));
        return new DataFrame((IEnumerable<DataFrameColumn>)columns);
    }

    /// <summary>The tests table: each augmented arm against real-only, metric by metric.</summary>
    public DataFrame TestsTable() => new(
        new StringDataFrameColumn("arm", Tests.Select(t => t.Arm)),
        new StringDataFrameColumn("metric", Tests.Select(t => t.Metric)),
        new StringDataFrameColumn("mean difference", Tests.Select(t => Signed(t.MeanDifference))),
        new StringDataFrameColumn("t", Tests.Select(t => F(t.T))),
        new StringDataFrameColumn("p (one-sided)", Tests.Select(t => F(t.P))),
        new StringDataFrameColumn("Holm p", Tests.Select(t => F(t.AdjustedP))),
        new BooleanDataFrameColumn("arm > real", Tests.Select(t => t.Rejected)),
        new StringDataFrameColumn("note", Tests.Select(t => t.Note)));

    /// <summary>The pruning counts of both branches and the rewrite counts.</summary>
    public DataFrame CountsTable()
    {
        var rows = RewriteCounts.Select(kv => ("rewrite", kv.Key, kv.Value))
            .Concat(InterCounts.Select(kv => ("InterAug", kv.Key, kv.Value)))
            .Concat(IntraCounts.Select(kv => ("IntraAug", kv.Key, kv.Value))).ToList();
        return new DataFrame(
            new StringDataFrameColumn("stage", rows.Select(r => r.Item1)),
            new StringDataFrameColumn("count", rows.Select(r => r.Key)),
            new Int32DataFrameColumn("value", rows.Select(r => r.Value)));
    }
}
