using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Analysis;
using RoentGen.Evaluation.Statistics;
using RoentGen.Platform;

namespace RoentGen.Experiments;

/// <summary>One trained arm at one real-set size and seed: its downstream test results.</summary>
/// <param name="Arm">The arm's name (<see cref="SyntheticArm.Name"/>).</param>
/// <param name="Size">Real training images.</param>
/// <param name="Seed">Seed (real set, initial weights, batches).</param>
/// <param name="SyntheticImages">Synthetic images offered to the arm (before filtering).</param>
/// <param name="SyntheticKept">Synthetic images trained on (after filtering).</param>
/// <param name="MacroF1">Test F1 at validation thresholds, mean over the observations where it is defined.</param>
/// <param name="MacroAuc">Test AUC, mean over the observations where it is defined.</param>
/// <param name="F1">Test F1 per observation name (NaN: undefined).</param>
/// <param name="Auc">Test AUC per observation name.</param>
/// <param name="Thresholds">Validation-chosen threshold per observation name.</param>
/// <param name="MeanDice">Mean over structures of the segmenter's mean test Dice, or null when the arm trains no segmenter of its own.</param>
/// <param name="Dice">Mean test Dice per structure, or null.</param>
/// <param name="Seconds">Wall time of the cell.</param>
public sealed record StudyCell(string Arm, int Size, long Seed, int SyntheticImages, int SyntheticKept, double MacroF1, double MacroAuc,
    IReadOnlyDictionary<string, double> F1, IReadOnlyDictionary<string, double> Auc, IReadOnlyDictionary<string, double> Thresholds,
    double? MeanDice, IReadOnlyDictionary<string, double>? Dice, double Seconds);

/// <summary>An arm against real-only at one size on one metric, paired by seed.</summary>
/// <param name="Arm">The arm.</param>
/// <param name="Size">Real training images.</param>
/// <param name="Metric">"macro_f1" or "mean_dice".</param>
/// <param name="Seeds">Pairs (seeds) compared.</param>
/// <param name="ArmMean">The arm's mean over the seeds.</param>
/// <param name="RealMean">Real-only's mean over the same seeds.</param>
/// <param name="Difference">Mean paired difference arm − real.</param>
/// <param name="Lower">Lower end of its 95 % Student-t interval (NaN with one seed).</param>
/// <param name="Upper">Upper end.</param>
/// <param name="P">One-sided paired t-test p (arm &gt; real); NaN when undefined (one seed, or all differences equal).</param>
/// <param name="PBonferroni">Bonferroni-adjusted p over every defined comparison of the study.</param>
/// <param name="PHolm">Holm-adjusted p over the same family.</param>
public sealed record ArmDifference(string Arm, int Size, string Metric, int Seeds, double ArmMean, double RealMean, double Difference,
    double Lower, double Upper, double P, double PBonferroni, double PHolm);

/// <summary>What the proxy filter kept of one synthetic source in one cell.</summary>
/// <param name="Size">Real training images.</param>
/// <param name="Seed">Seed.</param>
/// <param name="Source">"text-single", "text-report" or "mask".</param>
/// <param name="Total">Images scored.</param>
/// <param name="Kept">Images kept.</param>
/// <param name="ClassifierRejected">Images whose classifier predictions disagreed with the labels.</param>
/// <param name="SegmenterRejected">Images whose segmenter Dice to the condition masks was below the threshold.</param>
/// <param name="ExpertRejected">Images an expert rejected.</param>
public sealed record FilterSummary(int Size, long Seed, string Source, int Total, int Kept, int ClassifierRejected, int SegmenterRejected, int ExpertRejected)
{
    /// <summary>Kept / total.</summary>
    public double KeptFraction => Total == 0 ? double.NaN : Kept / (double)Total;
}

/// <summary>The real-sample lung experiment: a lung segmenter trained on a few real masked images, with and without synthetic images.</summary>
/// <param name="Images">Real images with lung masks.</param>
/// <param name="Train">Of them, trained on per seed (the rest are the test set).</param>
/// <param name="Synthetic">Synthetic images added in the second arm.</param>
/// <param name="Generator">What made the synthetic images.</param>
/// <param name="Seeds">The random splits.</param>
/// <param name="RealOnly">Test lung Dice per seed, real only.</param>
/// <param name="WithSynthetic">Test lung Dice per seed, real + synthetic.</param>
/// <param name="Difference">Mean paired difference.</param>
/// <param name="Lower">Lower end of its 95 % interval.</param>
/// <param name="Upper">Upper end.</param>
/// <param name="P">One-sided paired t-test p (with &gt; without), NaN when undefined.</param>
public sealed record RealSampleResult(int Images, int Train, int Synthetic, string Generator, IReadOnlyList<long> Seeds, IReadOnlyList<double> RealOnly,
    IReadOnlyList<double> WithSynthetic, double Difference, double Lower, double Upper, double P);

/// <summary>A headline result of Prakash et al. 2024 beside this study's best of the same kind.</summary>
/// <param name="Metric">"F1" or "Dice".</param>
/// <param name="PaperGain">The paper's best mean gain.</param>
/// <param name="PaperLower">Its interval's lower end.</param>
/// <param name="PaperUpper">Its interval's upper end.</param>
/// <param name="PaperP">Its p-value.</param>
/// <param name="Ours">This study's largest mean gain of that metric (null when none was measured).</param>
public sealed record Headline(string Metric, double PaperGain, double PaperLower, double PaperUpper, double PaperP, ArmDifference? Ours);

/// <summary>Everything the study measured (DIR/results.json).</summary>
/// <param name="Config">The config.</param>
/// <param name="Seeds">The seeds.</param>
/// <param name="TextGenerator">What made the text-conditioned images ("none": those arms were skipped).</param>
/// <param name="MaskGenerator">What made the mask-conditioned images (the phantom oracle unless a model was given).</param>
/// <param name="Skipped">Arms not run, with the reason.</param>
/// <param name="Cells">Every arm × size × seed.</param>
/// <param name="Differences">Every arm against real-only, with intervals and corrected p-values.</param>
/// <param name="Filter">The proxy filter's kept fractions.</param>
/// <param name="RealSample">The real-sample lung experiment, or null.</param>
/// <param name="RealSampleNote">Why it is missing, or a note on it.</param>
/// <param name="CellsComputed">Cells trained by this call (the rest were read back).</param>
/// <param name="Seconds">Wall time of this call.</param>
public sealed record SyntheticDataStudyResult(SyntheticDataStudyConfig Config, IReadOnlyList<long> Seeds, string TextGenerator, string MaskGenerator,
    IReadOnlyList<string> Skipped, IReadOnlyList<StudyCell> Cells, IReadOnlyList<ArmDifference> Differences, IReadOnlyList<FilterSummary> Filter,
    RealSampleResult? RealSample, string RealSampleNote, int CellsComputed, double Seconds)
{
    /// <summary>Prakash et al. 2024, best classification gain: F1 +0.150 (95 % CI 0.099-0.202, P = 0.0031).</summary>
    public static Headline PaperF1 { get; } = new("F1", 0.150, 0.099, 0.202, 0.0031, null);

    /// <summary>Prakash et al. 2024, best segmentation gain: Dice +0.146 (95 % CI 0.108-0.183, P = 0.0064).</summary>
    public static Headline PaperDice { get; } = new("Dice", 0.146, 0.108, 0.183, 0.0064, null);

    /// <summary>JSON options of results.json and the cell files (snake_case, NaN as "NaN").</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // "mask+filter", not "mask\u002Bfilter"
    };

    /// <summary>The paper's two headline results beside this study's largest gains.</summary>
    public IReadOnlyList<Headline> Headlines() =>
    [
        PaperF1 with { Ours = Differences.Where(d => d.Metric == "macro_f1" && double.IsFinite(d.Difference)).MaxBy(d => d.Difference) },
        PaperDice with { Ours = Differences.Where(d => d.Metric == "mean_dice" && double.IsFinite(d.Difference)).MaxBy(d => d.Difference) },
    ];

    /// <summary>Writes results.json atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, JsonOptions));

    /// <summary>Reads a results.json.</summary>
    /// <exception cref="InvalidDataException">Not a results file (the message names it).</exception>
    public static SyntheticDataStudyResult Load(string path)
    {
        try { return JsonSerializer.Deserialize<SyntheticDataStudyResult>(File.ReadAllText(path), JsonOptions) ?? throw new InvalidDataException($"{path}: empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a synthetic-study results file: {e.Message}", e); }
    }

    /// <summary>One row per comparison: arm, size, metric, means, difference with its 95 % CI, p and the corrected p-values.</summary>
    public DataFrame DifferenceTable() => new(
        new StringDataFrameColumn("arm", Differences.Select(d => d.Arm)),
        new Int32DataFrameColumn("real images", Differences.Select(d => d.Size)),
        new StringDataFrameColumn("metric", Differences.Select(d => d.Metric)),
        new Int32DataFrameColumn("seeds", Differences.Select(d => d.Seeds)),
        new DoubleDataFrameColumn("arm mean", Differences.Select(d => R(d.ArmMean))),
        new DoubleDataFrameColumn("real mean", Differences.Select(d => R(d.RealMean))),
        new DoubleDataFrameColumn("difference", Differences.Select(d => R(d.Difference))),
        new StringDataFrameColumn("95% CI", Differences.Select(d => Ci(d.Lower, d.Upper))),
        new DoubleDataFrameColumn("p (one-sided)", Differences.Select(d => R(d.P, 4))),
        new DoubleDataFrameColumn("p Bonferroni", Differences.Select(d => R(d.PBonferroni, 4))),
        new DoubleDataFrameColumn("p Holm", Differences.Select(d => R(d.PHolm, 4))));

    /// <summary>The paper's headline results and ours side by side.</summary>
    public DataFrame HeadlineTable()
    {
        var h = Headlines();
        return new DataFrame(
            new StringDataFrameColumn("metric", h.Select(x => x.Metric)),
            new StringDataFrameColumn("Prakash et al. 2024", h.Select(x => string.Create(CultureInfo.InvariantCulture, $"+{x.PaperGain:0.000} (CI {x.PaperLower:0.000}-{x.PaperUpper:0.000}, P = {x.PaperP:0.0000})"))),
            new StringDataFrameColumn("this study (best arm)", h.Select(x => x.Ours is { } o
                ? string.Create(CultureInfo.InvariantCulture, $"{o.Difference:+0.000;-0.000} (CI {Ci(o.Lower, o.Upper)}, P = {Fmt(o.P)}, Holm {Fmt(o.PHolm)}) {o.Arm} at {o.Size}")
                : "not measured")));
    }

    /// <summary>Mean test results per arm and size over the seeds: macro F1, macro AUC, mean Dice, and each structure's Dice.</summary>
    public DataFrame ArmTable()
    {
        var groups = Cells.GroupBy(c => (c.Arm, c.Size)).ToList();
        double M(IEnumerable<double> v) { var f = v.Where(double.IsFinite).ToList(); return f.Count == 0 ? double.NaN : Math.Round(f.Average(), 4); }
        var frame = new DataFrame(
            new StringDataFrameColumn("arm", groups.Select(g => g.Key.Arm)),
            new Int32DataFrameColumn("real images", groups.Select(g => g.Key.Size)),
            new Int32DataFrameColumn("seeds", groups.Select(g => g.Count())),
            new DoubleDataFrameColumn("synthetic kept", groups.Select(g => M(g.Select(c => (double)c.SyntheticKept)))),
            new DoubleDataFrameColumn("macro F1", groups.Select(g => M(g.Select(c => c.MacroF1)))),
            new DoubleDataFrameColumn("macro AUC", groups.Select(g => M(g.Select(c => c.MacroAuc)))),
            new DoubleDataFrameColumn("mean Dice", groups.Select(g => M(g.Select(c => c.MeanDice ?? double.NaN)))));
        foreach (var s in Cells.Where(c => c.Dice is not null).SelectMany(c => c.Dice!.Keys).Distinct())
            frame.Columns.Add(new DoubleDataFrameColumn($"Dice {s}", groups.Select(g => M(g.Select(c => c.Dice?.GetValueOrDefault(s, double.NaN) ?? double.NaN)))));
        return frame;
    }

    /// <summary>Per observation: mean test F1 of each arm at the largest size.</summary>
    public DataFrame FindingTable()
    {
        int size = Cells.Max(c => c.Size);
        var arms = Cells.Where(c => c.Size == size).Select(c => c.Arm).Distinct().ToList();
        var names = Cells.SelectMany(c => c.F1.Keys).Distinct().ToList();
        var frame = new DataFrame(new StringDataFrameColumn("finding", names));
        foreach (var arm in arms)
        {
            var cells = Cells.Where(c => c.Size == size && c.Arm == arm).ToList();
            frame.Columns.Add(new DoubleDataFrameColumn($"F1 {arm}", names.Select(n =>
            {
                var v = cells.Select(c => c.F1.GetValueOrDefault(n, double.NaN)).Where(double.IsFinite).ToList();
                return v.Count == 0 ? double.NaN : Math.Round(v.Average(), 3);
            })));
        }
        return frame;
    }

    /// <summary>The proxy filter per source and size: images scored and the fraction kept (means over seeds), and why images were dropped.</summary>
    public DataFrame FilterTable()
    {
        var g = Filter.GroupBy(f => (f.Source, f.Size)).ToList();
        return new DataFrame(
            new StringDataFrameColumn("source", g.Select(x => x.Key.Source)),
            new Int32DataFrameColumn("real images", g.Select(x => x.Key.Size)),
            new Int32DataFrameColumn("scored", g.Select(x => x.Sum(f => f.Total))),
            new Int32DataFrameColumn("kept", g.Select(x => x.Sum(f => f.Kept))),
            new DoubleDataFrameColumn("kept fraction", g.Select(x => R(x.Sum(f => f.Kept) / (double)Math.Max(1, x.Sum(f => f.Total)), 3))),
            new Int32DataFrameColumn("classifier disagreed", g.Select(x => x.Sum(f => f.ClassifierRejected))),
            new Int32DataFrameColumn("segmenter Dice low", g.Select(x => x.Sum(f => f.SegmenterRejected))),
            new Int32DataFrameColumn("expert rejected", g.Select(x => x.Sum(f => f.ExpertRejected))));
    }

    /// <summary>
    /// The filter ablation: for each synthetic arm and size, the filtered arm minus the unfiltered one, paired by seed, on macro
    /// F1 and (where both segment) mean Dice, with 95 % intervals and one-sided p (filtered &gt; unfiltered; uncorrected).
    /// </summary>
    public DataFrame FilterEffectTable()
    {
        var rows = new List<(string Arm, int Size, string Metric, double D, double Lo, double Hi, double P, int N)>();
        foreach (var size in Cells.Select(c => c.Size).Distinct().Order())
            foreach (var arm in SyntheticArm.All.Where(a => a.Synthetic && !a.Filtered))
            {
                var plain = Cells.Where(c => c.Size == size && c.Arm == arm.Name).ToDictionary(c => c.Seed);
                var filtered = Cells.Where(c => c.Size == size && c.Arm == arm.Name + "+filter" && plain.ContainsKey(c.Seed)).OrderBy(c => c.Seed).ToList();
                if (filtered.Count == 0) continue;
                var f1 = PairedGain(filtered.Select(c => c.MacroF1).ToList(), filtered.Select(c => plain[c.Seed].MacroF1).ToList());
                rows.Add((arm.Name, size, "macro_f1", f1.Difference, f1.Lower, f1.Upper, f1.P, f1.N));
                if (arm.Segments)
                {
                    var dice = PairedGain(filtered.Select(c => c.MeanDice ?? double.NaN).ToList(), filtered.Select(c => plain[c.Seed].MeanDice ?? double.NaN).ToList());
                    rows.Add((arm.Name, size, "mean_dice", dice.Difference, dice.Lower, dice.Upper, dice.P, dice.N));
                }
            }
        return new DataFrame(
            new StringDataFrameColumn("arm", rows.Select(r => r.Arm)),
            new Int32DataFrameColumn("real images", rows.Select(r => r.Size)),
            new StringDataFrameColumn("metric", rows.Select(r => r.Metric)),
            new Int32DataFrameColumn("seeds", rows.Select(r => r.N)),
            new DoubleDataFrameColumn("filtered - unfiltered", rows.Select(r => R(r.D))),
            new StringDataFrameColumn("95% CI", rows.Select(r => Ci(r.Lo, r.Hi))),
            new DoubleDataFrameColumn("p (one-sided)", rows.Select(r => R(r.P, 4))));
    }

    /// <summary>The paired comparisons of every synthetic arm with real-only at every size, on macro F1 and mean Dice, corrected over the whole family.</summary>
    public static IReadOnlyList<ArmDifference> Compare(IReadOnlyList<StudyCell> cells)
    {
        var list = new List<ArmDifference>();
        foreach (var size in cells.Select(c => c.Size).Distinct().Order())
        {
            var real = cells.Where(c => c.Size == size && c.Arm == SyntheticArm.Real.Name).ToDictionary(c => c.Seed);
            foreach (var arm in SyntheticArm.All.Where(a => a.Synthetic))
            {
                var mine = cells.Where(c => c.Size == size && c.Arm == arm.Name && real.ContainsKey(c.Seed)).OrderBy(c => c.Seed).ToList();
                if (mine.Count == 0) continue;
                list.Add(Pair(arm.Name, size, "macro_f1", mine.Select(c => c.MacroF1).ToList(), mine.Select(c => real[c.Seed].MacroF1).ToList()));
                if (arm.Segments)
                    list.Add(Pair(arm.Name, size, "mean_dice", mine.Select(c => c.MeanDice ?? double.NaN).ToList(), mine.Select(c => real[c.Seed].MeanDice ?? double.NaN).ToList()));
            }
        }
        var defined = list.Select((d, i) => (d, i)).Where(x => double.IsFinite(x.d.P)).ToList();
        if (defined.Count > 0)
        {
            var ps = defined.Select(x => x.d.P).ToArray();
            var bonferroni = MultipleComparisons.Bonferroni(ps);
            var holm = MultipleComparisons.Holm(ps);
            for (int k = 0; k < defined.Count; k++)
                list[defined[k].i] = defined[k].d with { PBonferroni = bonferroni[k], PHolm = holm[k] };
        }
        return list;
    }

    /// <summary>The mean paired difference a − b with its 95 % Student-t interval and the one-sided paired t-test p (NaN when undefined).</summary>
    public static (double Difference, double Lower, double Upper, double P, int N) PairedGain(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        var pairs = PairedSeeds(a, b);
        if (pairs.Count == 0) return (double.NaN, double.NaN, double.NaN, double.NaN, 0);
        var x = pairs.Select(i => a[i]).ToArray();
        var y = pairs.Select(i => b[i]).ToArray();
        var s = Summary.Of(x.Zip(y, (p, q) => p - q));
        double p = double.NaN;
        try { p = TTest.Paired(x, y, Alternative.Greater).P; }
        catch (ArgumentException) { /* one pair, or every difference equal: no test */ }
        return (s.Mean, s.Lower, s.Upper, p, pairs.Count);
    }

    /// <summary>The indices where both values are finite: the seeds a paired comparison (and its two means) uses.</summary>
    private static List<int> PairedSeeds(IReadOnlyList<double> a, IReadOnlyList<double> b) =>
        Enumerable.Range(0, a.Count).Where(i => double.IsFinite(a[i]) && double.IsFinite(b[i])).ToList();

    private static ArmDifference Pair(string arm, int size, string metric, IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        var (d, lo, hi, p, n) = PairedGain(a, b);
        // Both means over the paired seeds only, so arm mean − real mean is the difference the row reports.
        var pairs = PairedSeeds(a, b);
        double Mean(IReadOnlyList<double> v) => pairs.Count == 0 ? double.NaN : pairs.Average(i => v[i]);
        return new ArmDifference(arm, size, metric, n, Mean(a), Mean(b), d, lo, hi, p, double.NaN, double.NaN);
    }

    private static double R(double v, int digits = 4) => double.IsFinite(v) ? Math.Round(v, digits) : double.NaN;

    private static string Fmt(double p) => double.IsFinite(p) ? p.ToString("0.0000", CultureInfo.InvariantCulture) : "n/a";

    private static string Ci(double lo, double hi) => double.IsFinite(lo) && double.IsFinite(hi)
        ? string.Create(CultureInfo.InvariantCulture, $"{lo:+0.000;-0.000} to {hi:+0.000;-0.000}") : "n/a";
}
