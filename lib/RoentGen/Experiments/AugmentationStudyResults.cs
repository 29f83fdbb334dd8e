using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Analysis;
using RoentGen.Data;
using RoentGen.Evaluation;
using RoentGen.Evaluation.Statistics;
using RoentGen.Platform;
using RoentGen.Visualization;
using static TorchSharp.torch;

namespace RoentGen.Experiments;

/// <summary>One classifier trained on one arm's training set with one seed, scored on the test phantoms.</summary>
/// <param name="Arm">Arm key (<see cref="AugmentationStudy.Key"/>).</param>
/// <param name="Size">Real training-set size N.</param>
/// <param name="Seed">Classifier seed.</param>
/// <param name="TrainImages">Images it trained on (N, 2N or k·N).</param>
/// <param name="MacroAuc">Mean test AUC over the observations where it is defined.</param>
/// <param name="MacroF1">Mean test F1 (thresholds chosen on validation).</param>
/// <param name="PerFinding">Per observation: test AUC, F1, threshold, test positives and negatives.</param>
/// <param name="Seconds">Training and scoring wall time.</param>
public sealed record ArmRun(string Arm, int Size, long Seed, int TrainImages, double MacroAuc, double MacroF1, IReadOnlyList<FindingScore> PerFinding, double Seconds);

/// <summary>One arm at one size over the seeds.</summary>
/// <param name="Arm">Arm key.</param>
/// <param name="Size">Real training-set size N.</param>
/// <param name="TrainImages">Images each run trained on.</param>
/// <param name="MacroAuc">Macro AUC: mean and 95 % Student-t interval over the seeds.</param>
/// <param name="MacroF1">Macro F1 over the seeds.</param>
public sealed record ArmSummary(string Arm, int Size, int TrainImages, Summary MacroAuc, Summary MacroF1);

/// <summary>
/// The relative change of a metric from a baseline arm to another arm, seed by seed: 100 · (arm / baseline − 1) %.
/// </summary>
/// <param name="PerSeedPercent">The change of each seed pair (NaN where either value is missing).</param>
/// <param name="Summary">Mean change and its 95 % Student-t interval over the seeds.</param>
/// <param name="P">
/// One-sided p-value that the arm is better (paired by seed: the t-test of the per-seed changes against 0,
/// <see cref="Alternative.Greater"/>); NaN with fewer than two pairs or no variance.
/// </param>
public sealed record RelativeChangeResult(IReadOnlyList<double> PerSeedPercent, Summary Summary, double P)
{
    /// <summary>
    /// Computes the change of <paramref name="arm"/> over <paramref name="baseline"/> (values of one metric, the same
    /// seeds in the same order).
    /// </summary>
    /// <exception cref="ArgumentException">The lists differ in length.</exception>
    public static RelativeChangeResult Of(IReadOnlyList<double> arm, IReadOnlyList<double> baseline, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(arm);
        ArgumentNullException.ThrowIfNull(baseline);
        if (arm.Count != baseline.Count) throw new ArgumentException($"a paired change needs one baseline value per arm value: {arm.Count} against {baseline.Count}", nameof(baseline));
        var change = arm.Zip(baseline, (a, b) => double.IsFinite(a) && double.IsFinite(b) && b != 0 ? 100 * (a / b - 1) : double.NaN).ToArray();
        var finite = change.Where(double.IsFinite).ToArray();
        double p = double.NaN;
        if (finite.Length >= 2 && finite.Any(v => v != finite[0])) p = TTest.OneSample(finite, 0, Alternative.Greater).P;
        return new RelativeChangeResult(change, Summary.OfFinite(change, level), p);
    }

    /// <summary>"helps" (interval above 0), "hurts" (below 0), "no detectable change" (includes 0), or "undecided" with one seed.</summary>
    public string Verdict => Summary.N < 2 || !double.IsFinite(Summary.Lower) ? $"undecided ({Summary.N} seed{(Summary.N == 1 ? "" : "s")}: no interval)"
        : Summary.Lower > 0 ? "helps" : Summary.Upper < 0 ? "hurts" : "no detectable change (the interval includes 0)";
}

/// <summary>One arm's change against the real-only arm at one size, next to the paper's figure.</summary>
/// <param name="Size">Real training-set size N.</param>
/// <param name="Arm">Arm key.</param>
/// <param name="Metric">"macro_auc" or "macro_f1".</param>
/// <param name="Change">The change and its statistics.</param>
/// <param name="PaperPercent">RoentGen's figure for this arm (NaN where the paper gives none).</param>
public sealed record ArmChange(int Size, string Arm, string Metric, RelativeChangeResult Change, double PaperPercent)
{
    /// <summary>Whether the paper's figure lies inside the 95 % interval (null without an interval or a figure).</summary>
    public bool? PaperInsideInterval => double.IsFinite(PaperPercent) && double.IsFinite(Change.Summary.Lower)
        ? PaperPercent >= Change.Summary.Lower && PaperPercent <= Change.Summary.Upper : null;
}

/// <summary>Adherence of one finding: the judge's AUC on the synthetic images and on the real images of the same reports.</summary>
/// <param name="Finding">The observation.</param>
/// <param name="SyntheticAuc">AUC on the synthetic images (copy 0 of each report).</param>
/// <param name="RealAuc">AUC on the real images of the same reports (the judge's ceiling).</param>
/// <param name="ReportsNaming">Reports whose prompt names the finding.</param>
public sealed record FindingAdherencePair(
    [property: JsonConverter(typeof(JsonStringEnumConverter<Observation>))] Observation Finding, double SyntheticAuc, double RealAuc, int ReportsNaming);

/// <summary>
/// How good the synthetic images are as training data: prompt adherence (the judge's per-finding AUC, as
/// <see cref="PromptAdherence.Score"/>) on the synthetic images next to the same on the real images of those reports,
/// and diversity as mean pairwise MS-SSIM (<see cref="Diversity"/>; 1 = identical, lower = more diverse).
/// </summary>
/// <param name="Images">Reports scored (the largest N).</param>
/// <param name="SyntheticAdherence">Mean adherence AUC on the synthetic images (0.5 = the report is ignored).</param>
/// <param name="RealAdherence">The same on the real images (what a perfect generator would reach with this judge).</param>
/// <param name="Findings">Per finding.</param>
/// <param name="SameReportMsSsim">MS-SSIM between the k synthetic copies of one report (NaN with k = 1).</param>
/// <param name="SyntheticMsSsim">MS-SSIM between synthetic images of different reports.</param>
/// <param name="RealMsSsim">MS-SSIM between real images of different reports.</param>
public sealed record GeneratorQuality(int Images, double SyntheticAdherence, double RealAdherence, IReadOnlyList<FindingAdherencePair> Findings,
    double SameReportMsSsim, double SyntheticMsSsim, double RealMsSsim)
{
    /// <summary>Measures adherence and diversity of the synthetic copies (each (N, 1, S, S), report order) against the real images.</summary>
    /// <param name="synthetic">Per copy, the synthetic images.</param>
    /// <param name="real">(N, 1, S, S) the real images of the same reports.</param>
    /// <param name="prompts">The N prompts.</param>
    /// <param name="judge">The finding classifier.</param>
    /// <param name="groups">Groups of images per MS-SSIM figure.</param>
    public static GeneratorQuality Measure(IReadOnlyList<Tensor> synthetic, Tensor real, IReadOnlyList<string> prompts, IFindingScorer judge, int groups)
    {
        ArgumentNullException.ThrowIfNull(synthetic);
        ArgumentNullException.ThrowIfNull(prompts);
        using var scope = NewDisposeScope();
        var adherencePrompts = prompts.Select(AdherencePrompt.FromText).ToList();
        var s = PromptAdherence.Score(synthetic[0], adherencePrompts, judge);
        var r = PromptAdherence.Score(real, adherencePrompts, judge, s.Findings.Select(f => f.Finding).ToList());
        var findings = s.Findings.Zip(r.Findings, (a, b) => new FindingAdherencePair(a.Finding, a.Auc, b.Auc, a.ImagesNamed)).ToList();
        int n = prompts.Count, k = synthetic.Count, g = Math.Max(2, k);
        double sameReport = k < 2 ? double.NaN
            : Diversity.MsSsim(Enumerable.Range(0, Math.Min(groups, n)).Select(i => cat(synthetic.Select(c => c.narrow(0, i, 1)).ToArray(), 0)));
        double Across(Tensor images) => n < g ? double.NaN
            : Diversity.MsSsim(Enumerable.Range(0, Math.Min(groups, n / g)).Select(i => images.narrow(0, i * g, g)));
        return new GeneratorQuality(n, s.MeanAuc, r.MeanAuc, findings, sameReport, Across(synthetic[0]), Across(real));
    }
}

/// <summary>The generator and the phantom worlds a study used.</summary>
/// <param name="Dir">The generator's folder.</param>
/// <param name="TrainedHere">Whether the study trained it (no generator given).</param>
/// <param name="ImageSize">Image side in pixels (the classifier's input too).</param>
/// <param name="World">The training world: the generator's training phantoms, the real training set and the validation set.</param>
/// <param name="GeneratorTrainImages">Phantoms the generator trained on (indices 0.. of <paramref name="World"/>).</param>
/// <param name="GeneratorSteps">Its denoiser steps.</param>
/// <param name="PromptSource">Which part of a report is its prompt.</param>
/// <param name="ValidationStart">First validation phantom (after every phantom the generator or a classifier trained on).</param>
/// <param name="TestWorld">The test phantoms' world.</param>
public sealed record GeneratorInfo(string Dir, bool TrainedHere, int ImageSize, long World, int GeneratorTrainImages, int GeneratorSteps, string PromptSource,
    int ValidationStart, long TestWorld);

/// <summary>What <see cref="AugmentationStudy.Run"/> measured: every run, the arms over the seeds, the changes against real-only, the generator's quality and the memorization audit.</summary>
public sealed record AugmentationStudyResult
{
    /// <summary>The budget (with the sizes and seeds of this call).</summary>
    public required AugmentationStudyConfig Config { get; init; }
    /// <summary>The generator and the worlds.</summary>
    public required GeneratorInfo Generator { get; init; }
    /// <summary>Every classifier run.</summary>
    public required IReadOnlyList<ArmRun> Runs { get; init; }
    /// <summary>Every arm and size over the seeds.</summary>
    public required IReadOnlyList<ArmSummary> Arms { get; init; }
    /// <summary>Changes of arms (2) and (3) against (1), per size and metric.</summary>
    public required IReadOnlyList<ArmChange> Changes { get; init; }
    /// <summary>The generator's adherence and diversity on the synthetic images.</summary>
    public required GeneratorQuality Quality { get; init; }
    /// <summary>The memorization audit.</summary>
    public required MemorizationAudit Memorization { get; init; }
    /// <summary>Wall time of the call that wrote the result (runs finished earlier cost nothing here).</summary>
    public double Seconds { get; init; }

    /// <summary>RoentGen's relative improvement from adding synthetic images to a fixed real training set (Chambon et al. 2022, abstract: "5%").</summary>
    public const double PaperAugmentedPercent = 5;
    /// <summary>RoentGen's relative improvement from training on a larger, purely synthetic set (Chambon et al. 2022, abstract: "3%").</summary>
    public const double PaperSyntheticPercent = 3;

    /// <summary>The JSON settings of results.json and the per-run files (snake_case, NaN as "NaN", enums as strings).</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Summarises the runs into arms and changes.</summary>
    public static AugmentationStudyResult Build(AugmentationStudyConfig config, GeneratorInfo generator, IReadOnlyList<ArmRun> runs,
        GeneratorQuality quality, MemorizationAudit audit, double seconds)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(runs);
        var arms = new List<ArmSummary>();
        var changes = new List<ArmChange>();
        foreach (var n in config.Sizes)
        {
            foreach (var arm in AugmentationStudy.Arms.Select(AugmentationStudy.Key))
            {
                var these = runs.Where(r => r.Size == n && r.Arm == arm).ToList();
                if (these.Count == 0) continue;
                arms.Add(new ArmSummary(arm, n, these[0].TrainImages, Summary.OfFinite(these.Select(r => r.MacroAuc)), Summary.OfFinite(these.Select(r => r.MacroF1))));
            }
            foreach (var (arm, paper) in new[] { (AugmentationArm.RealPlusSynthetic, PaperAugmentedPercent), (AugmentationArm.Synthetic, PaperSyntheticPercent) })
                foreach (var (metric, get) in new (string, Func<ArmRun, double>)[] { ("macro_auc", r => r.MacroAuc), ("macro_f1", r => r.MacroF1) })
                {
                    double[] PerSeed(string key) => config.Seeds.Select(s => runs.FirstOrDefault(r => r.Size == n && r.Arm == key && r.Seed == s) is { } r ? get(r) : double.NaN).ToArray();
                    changes.Add(new ArmChange(n, AugmentationStudy.Key(arm), metric,
                        RelativeChangeResult.Of(PerSeed(AugmentationStudy.Key(arm)), PerSeed(AugmentationStudy.Key(AugmentationArm.Real))), paper));
                }
        }
        return new AugmentationStudyResult
        {
            Config = config, Generator = generator, Runs = runs, Arms = arms, Changes = changes, Quality = quality, Memorization = audit, Seconds = seconds,
        };
    }

    /// <summary>The result as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Writes <see cref="ToJson"/> atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    /// <summary>Reads results.json (a file, or the output folder holding one).</summary>
    /// <exception cref="FileNotFoundException">No results file.</exception>
    /// <exception cref="InvalidDataException">Not an augmentation study result.</exception>
    public static AugmentationStudyResult Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, AugmentationStudy.ResultFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"no augmentation study results at {path} (run roentgen augment-study --out DIR first)", path);
        try
        {
            return JsonSerializer.Deserialize<AugmentationStudyResult>(File.ReadAllText(path), JsonOptions)
                   ?? throw new InvalidDataException($"{path} is empty; expected an augmentation study result");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not an augmentation study result ({e.Message})", e); }
    }

    /// <summary>The change of an arm at a size on a metric.</summary>
    /// <exception cref="KeyNotFoundException">No such change.</exception>
    public ArmChange ChangeOf(int size, AugmentationArm arm, string metric = "macro_auc") =>
        Changes.FirstOrDefault(c => c.Size == size && c.Arm == AugmentationStudy.Key(arm) && c.Metric == metric)
        ?? throw new KeyNotFoundException($"no {metric} change of {AugmentationStudy.Key(arm)} at size {size}");

    /// <summary>The arms table: per size and arm, macro AUC and macro F1 with 95 % intervals over the seeds.</summary>
    public DataFrame ArmTable() => new(
        new Int32DataFrameColumn("N (real)", Arms.Select(a => a.Size)),
        new StringDataFrameColumn("arm", Arms.Select(a => AugmentationStudy.Describe(ArmOf(a.Arm), Config.SyntheticMultiple))),
        new Int32DataFrameColumn("train images", Arms.Select(a => a.TrainImages)),
        new DoubleDataFrameColumn("macro AUC", Arms.Select(a => N(a.MacroAuc.Mean))),
        new StringDataFrameColumn("AUC 95% CI", Arms.Select(a => Ci(a.MacroAuc, "0.000"))),
        new DoubleDataFrameColumn("macro F1", Arms.Select(a => N(a.MacroF1.Mean))),
        new StringDataFrameColumn("F1 95% CI", Arms.Select(a => Ci(a.MacroF1, "0.000"))),
        new Int32DataFrameColumn("seeds", Arms.Select(a => a.MacroAuc.N)));

    /// <summary>
    /// The claims table: RoentGen's figures next to the relative change of macro AUC measured here (mean over the seeds,
    /// 95 % interval, one-sided paired t-test that the arm is better), per size.
    /// </summary>
    public DataFrame ClaimTable()
    {
        var rows = Changes.Where(c => c.Metric == "macro_auc").ToList();
        return new DataFrame(
            new StringDataFrameColumn("claim", rows.Select(c => c.Arm == AugmentationStudy.Key(AugmentationArm.Synthetic)
                ? $"a larger purely synthetic set ({Config.SyntheticMultiple}·N) beats real N" : "real N + synthetic N beats real N")),
            new StringDataFrameColumn("paper (Chambon et al. 2022)", rows.Select(c => c.PaperPercent.ToString("+0'%'", CultureInfo.InvariantCulture))),
            new Int32DataFrameColumn("N (real)", rows.Select(c => c.Size)),
            new DoubleDataFrameColumn("measured change of macro AUC (%)", rows.Select(c => N(c.Change.Summary.Mean))),
            new StringDataFrameColumn("95% CI (%)", rows.Select(c => Ci(c.Change.Summary, "0.00"))),
            new DoubleDataFrameColumn("p (one-sided, paired)", rows.Select(c => N(c.Change.P))),
            new Int32DataFrameColumn("seeds", rows.Select(c => c.Change.Summary.N)),
            new StringDataFrameColumn("verdict here", rows.Select(c => c.Change.Verdict)),
            new StringDataFrameColumn("paper's figure in the CI", rows.Select(c => c.PaperInsideInterval switch { true => "yes", false => "no", _ => "n/a" })));
    }

    /// <summary>Every change: both metrics, both synthetic arms, every size.</summary>
    public DataFrame ChangeTable() => new(
        new Int32DataFrameColumn("N (real)", Changes.Select(c => c.Size)),
        new StringDataFrameColumn("arm", Changes.Select(c => c.Arm)),
        new StringDataFrameColumn("metric", Changes.Select(c => c.Metric)),
        new DoubleDataFrameColumn("change (%)", Changes.Select(c => N(c.Change.Summary.Mean))),
        new StringDataFrameColumn("95% CI (%)", Changes.Select(c => Ci(c.Change.Summary, "0.00"))),
        new DoubleDataFrameColumn("p (one-sided)", Changes.Select(c => N(c.Change.P))),
        new StringDataFrameColumn("verdict", Changes.Select(c => c.Change.Verdict)));

    /// <summary>Per finding at one size: each arm's test AUC and F1, means over the seeds.</summary>
    public DataFrame PerFindingTable(int size)
    {
        var findings = Observations.All;
        var columns = new List<DataFrameColumn> { new StringDataFrameColumn("finding", findings.Select(f => f.Name())) };
        foreach (var arm in AugmentationStudy.Arms.Select(AugmentationStudy.Key))
        {
            columns.Add(new DoubleDataFrameColumn($"{arm} AUC", findings.Select(f => N(FindingMean(size, arm, f, s => s.Auc)))));
            columns.Add(new DoubleDataFrameColumn($"{arm} F1", findings.Select(f => N(FindingMean(size, arm, f, s => s.F1)))));
        }
        columns.Add(new Int32DataFrameColumn("test positives", findings.Select(f => Runs.FirstOrDefault(r => r.Size == size)?.PerFinding.FirstOrDefault(p => p.Finding == f)?.Positives ?? 0)));
        return new DataFrame(columns);
    }

    /// <summary>Per-finding test AUC (or F1) at one size, one bar series per arm (means over the seeds).</summary>
    /// <param name="size">Real training-set size N.</param>
    /// <param name="metric">"auc" or "f1".</param>
    public Figure PerFindingFigure(int size, string metric = "auc")
    {
        bool f1 = metric.Equals("f1", StringComparison.OrdinalIgnoreCase);
        var names = Observations.All.Select(o => o.Name()).ToArray();
        string[] colours = ["#7f7f7f", "#1f77b4", "#d62728"];
        var traces = AugmentationStudy.Arms.Select((a, i) =>
        {
            var key = AugmentationStudy.Key(a);
            var values = Observations.All.Select(o => FindingMean(size, key, o, s => f1 ? s.F1 : s.Auc)).ToArray();
            var keep = Enumerable.Range(0, names.Length).Where(j => double.IsFinite(values[j])).ToArray();
            return (Trace)new BarTrace { Name = AugmentationStudy.Describe(a, Config.SyntheticMultiple), Categories = keep.Select(j => names[j]).ToArray(), Values = keep.Select(j => values[j]).ToArray(), Color = colours[i] };
        }).ToList();
        return new Figure($"Per-finding test {(f1 ? "F1" : "AUC")} by training set, N = {size} real", traces,
            new FigureLayout { BarMode = BarMode.Group, YAxis = new FigureAxis { Title = f1 ? "test F1 (threshold from validation)" : "test AUC" } });
    }

    /// <summary>
    /// The relative change of macro AUC against the real-only arm by real training-set size: one solid line per synthetic
    /// arm (mean over the seeds), its 95 % interval dotted, the paper's figure dashed.
    /// </summary>
    public Figure ChangeFigure()
    {
        var rows = Changes.Where(c => c.Metric == "macro_auc").ToList();
        var traces = new List<Trace>();
        foreach (var (arm, colour) in new[] { (AugmentationArm.RealPlusSynthetic, "#1f77b4"), (AugmentationArm.Synthetic, "#d62728") })
        {
            var mine = rows.Where(r => r.Arm == AugmentationStudy.Key(arm)).OrderBy(r => r.Size).ToList();
            if (mine.Count == 0) continue;
            var x = mine.Select(r => (double)r.Size).ToArray();
            string name = AugmentationStudy.Describe(arm, Config.SyntheticMultiple);
            traces.Add(new ScatterTrace { Name = $"{name}: measured", Mode = ScatterMode.LinesMarkers, X = x, Y = mine.Select(r => r.Change.Summary.Mean).ToArray(), Line = new LineStyle { Color = colour } });
            if (mine.Any(r => r.Change.Summary.N >= 2))
            {
                traces.Add(new ScatterTrace { Name = $"{name} 95% CI", ShowLegend = false, X = x, Y = mine.Select(r => r.Change.Summary.Lower).ToArray(), Line = new LineStyle { Color = colour, Dash = LineDash.Dot, Width = 1 } });
                traces.Add(new ScatterTrace { Name = $"{name} 95% CI", ShowLegend = false, X = x, Y = mine.Select(r => r.Change.Summary.Upper).ToArray(), Line = new LineStyle { Color = colour, Dash = LineDash.Dot, Width = 1 } });
            }
            double[] px = x.Length == 1 ? [x[0] * 0.8, x[0] * 1.2] : x;
            traces.Add(new ScatterTrace { Name = string.Create(CultureInfo.InvariantCulture, $"{name}: paper {mine[0].PaperPercent:+0}%"), X = px, Y = px.Select(_ => mine[0].PaperPercent).ToArray(), Line = new LineStyle { Color = colour, Dash = LineDash.Dash } });
        }
        return new Figure("Relative change of macro AUC against real-only (dotted: 95% interval over seeds; dashed: the paper's figure)", traces,
            new FigureLayout { XAxis = new FigureAxis { Title = "real training images N" }, YAxis = new FigureAxis { Title = "change of macro AUC (%)" } });
    }

    /// <summary>The generator's quality: adherence on synthetic vs real images of the same reports, and MS-SSIM diversity.</summary>
    public DataFrame QualityTable() => new(
        new StringDataFrameColumn("measure", ["adherence mean AUC (judge), synthetic images", "adherence mean AUC (judge), real images of the same reports",
            "MS-SSIM within one report's synthetic copies", "MS-SSIM across synthetic images of different reports", "MS-SSIM across real images of different reports"]),
        new DoubleDataFrameColumn("value", new[] { Quality.SyntheticAdherence, Quality.RealAdherence, Quality.SameReportMsSsim, Quality.SyntheticMsSsim, Quality.RealMsSsim }.Select(N)));

    /// <summary>The memorization audit: near-duplicate rates of the synthetic images next to held-out real images (both against the real training set).</summary>
    public DataFrame MemorizationTable()
    {
        var m = Memorization;
        var rates = new[] { ("synthetic vs training", m.GeneratedRate), ("held-out real vs training (baseline)", m.RealRate) };
        return new DataFrame(
            new StringDataFrameColumn("images", rates.Select(r => r.Item1)),
            new Int32DataFrameColumn("count", rates.Select(r => r.Item2.Images)),
            new DoubleDataFrameColumn($"share with SSIM >= {m.Options.SsimThreshold.ToString(CultureInfo.InvariantCulture)}", rates.Select(r => N(r.Item2.SsimRate))),
            new DoubleDataFrameColumn($"share with cosine >= {m.Options.CosineThreshold.ToString(CultureInfo.InvariantCulture)}", rates.Select(r => N(r.Item2.CosineRate))),
            new DoubleDataFrameColumn("mean nearest SSIM", rates.Select(r => N(r.Item2.MeanNearestSsim))),
            new DoubleDataFrameColumn("mean nearest cosine", rates.Select(r => N(r.Item2.MeanNearestCosine))));
    }

    /// <summary>
    /// The findings in words: per size, what the synthetic arms did against real-only (negative results stated plainly),
    /// with the generator's adherence and diversity as the likely reason, and the memorization audit.
    /// </summary>
    public IReadOnlyList<string> Narrative()
    {
        var lines = new List<string>();
        var q = Quality;
        string why = string.Create(CultureInfo.InvariantCulture,
                $"The likely why: the judge's adherence on the synthetic images is {q.SyntheticAdherence:F3} against {q.RealAdherence:F3} on the real images of the same reports ")
            + string.Create(CultureInfo.InvariantCulture,
                $"(0.5 = the report is ignored), and one report's synthetic copies have MS-SSIM {q.SameReportMsSsim:F3} against {q.RealMsSsim:F3} between real images of different reports ")
            + "(higher = less diverse): labels that the images do not show, or images too alike, teach a classifier little.";
        bool anyNotHelping = false;
        foreach (var c in Changes.Where(c => c.Metric == "macro_auc"))
        {
            var s = c.Change.Summary;
            string what = c.Arm == AugmentationStudy.Key(AugmentationArm.Synthetic) ? $"training on {Config.SyntheticMultiple}·N synthetic images only" : "adding N synthetic images to the N real ones";
            string ci = s.N >= 2 ? string.Create(CultureInfo.InvariantCulture, $" (95 % CI {s.Lower:+0.00;-0.00}% to {s.Upper:+0.00;-0.00}%, p = {c.Change.P:F3})") : "";
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"N = {c.Size}: {what} changed macro AUC by {s.Mean:+0.00;-0.00}%{ci} over {s.N} seed(s): {c.Change.Verdict}; the paper reports {c.PaperPercent:+0}%."));
            if (!(s.N >= 2 && s.Lower > 0)) anyNotHelping = true;
        }
        if (anyNotHelping) lines.Add("Synthetic data did not measurably help here in at least one setting. " + why);
        var m = Memorization;
        lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"Memorization: {m.GeneratedRate.SsimRate:P1} of {m.GeneratedRate.Images} synthetic images have a training image with SSIM >= {m.Options.SsimThreshold} ")
            + string.Create(CultureInfo.InvariantCulture,
                $"(held-out real images: {m.RealRate.SsimRate:P1}); by judge-feature cosine >= {m.Options.CosineThreshold}: {m.GeneratedRate.CosineRate:P1} against {m.RealRate.CosineRate:P1}."));
        return lines;
    }

    /// <summary>
    /// The closest (synthetic, training) pairs of the audit side by side, read from the study folder: the synthetic
    /// images from its cache, the training phantoms regenerated from the training world.
    /// </summary>
    /// <param name="outDir">The study's output folder.</param>
    /// <param name="count">Pairs to show (null: all the audit kept).</param>
    /// <exception cref="FileNotFoundException">A cached synthetic image is missing.</exception>
    public ImageGrid MemorizationGrid(string outDir, int? count = null)
    {
        int nMax = Config.Sizes.Max();
        var pairs = Memorization.ClosestPairs.Take(count ?? int.MaxValue).ToList();
        using var scope = NewDisposeScope();
        var generated = new List<Tensor>();
        var training = new List<Tensor>();
        var renumbered = new List<MemorizationPair>();
        foreach (var (p, i) in pairs.Select((p, i) => (p, i)))
        {
            var file = AugmentationStudy.SyntheticPath(outDir, p.Generated / nMax, p.Generated % nMax);
            if (!File.Exists(file)) throw new FileNotFoundException($"the audit's synthetic image {p.Generated} is not cached at {file}", file);
            generated.Add(ImageTensors.ToTensor(Data.ImageIO.Read(file)).unsqueeze(0));                                          // (1, 1, S, S)
            training.Add(ProxyFindingClassifier.PhantomData(Generator.ImageSize, p.Training, 1, Generator.World).Images);        // (1, 1, S, S)
            renumbered.Add(p with { Generated = i, Training = i });
        }
        if (renumbered.Count == 0) return new ImageGrid(4, "no pairs");
        // Short captions that fit a 64-px cell in three lines: "syn R/C" is copy C of training report R, beside phantom J.
        return Evaluation.Memorization.PairGrid(renumbered, cat(generated, 0), cat(training, 0),
            "Nearest training image by SSIM",
            q => string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"syn {pairs[q.Generated].Generated % nMax}/{pairs[q.Generated].Generated / nMax} SSIM {q.Ssim:F3} cos {q.Cosine:F3}"),
            q => $"phantom {pairs[q.Training].Training}");
    }

    /// <summary>
    /// A few training reports with their real image and their synthetic copies, one report per row (real first), read
    /// from the study folder: what the classifier of each arm sees for the same label.
    /// </summary>
    /// <param name="outDir">The study's output folder.</param>
    /// <param name="reports">Reports to show (the first ones of the training set).</param>
    /// <exception cref="FileNotFoundException">A cached synthetic image is missing.</exception>
    public ImageGrid ExamplesGrid(string outDir, int reports = 4)
    {
        int k = Config.SyntheticMultiple, n = Math.Min(reports, Config.Sizes.Max());
        var records = Data.Phantoms.PhantomRecords.Create(new Data.Phantoms.PhantomOptions { Size = Math.Max(64, Generator.ImageSize), Seed = Generator.World }, n, 0, masks: false).Prefetch();
        var grid = new ImageGrid(k + 1, "Each row: a training report's real image, then its synthetic copies");
        for (int i = 0; i < n; i++)
        {
            var labels = records[i].Labels;
            var named = Observations.All.Where(o => o != Observation.NoFinding && labels[o] is Mention.Positive or Mention.Uncertain).Select(o => o.Name()).ToList();
            grid.Add(records.LoadImage(records[i], Generator.ImageSize), $"real {i}: {(named.Count == 0 ? "no finding" : string.Join(", ", named))}");
            for (int c = 0; c < k; c++)
            {
                var file = AugmentationStudy.SyntheticPath(outDir, c, i);
                if (!File.Exists(file)) throw new FileNotFoundException($"synthetic image {c} of report {i} is not cached at {file}", file);
                grid.Add(Data.ImageIO.Read(file), $"synthetic {i}.{c}");
            }
        }
        return grid;
    }

    private double FindingMean(int size, string arm, Observation f, Func<FindingScore, double> get) =>
        Summary.OfFinite(Runs.Where(r => r.Size == size && r.Arm == arm).Select(r => r.PerFinding.FirstOrDefault(p => p.Finding == f) is { } s ? get(s) : double.NaN)).Mean;

    private static AugmentationArm ArmOf(string key) => AugmentationStudy.Arms.First(a => AugmentationStudy.Key(a) == key);

    private static double? N(double v) => double.IsFinite(v) ? v : null;

    private static string Ci(Summary s, string format) => s.N < 2 || !double.IsFinite(s.Lower) ? "n/a"
        : $"[{s.Lower.ToString(format, CultureInfo.InvariantCulture)}, {s.Upper.ToString(format, CultureInfo.InvariantCulture)}]";
}
