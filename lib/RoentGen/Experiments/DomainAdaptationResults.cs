using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Analysis;
using RoentGen.Evaluation.Statistics;
using RoentGen.Platform;
using RoentGen.Visualization;

namespace RoentGen.Experiments;

/// <summary>One evaluation of a model at a step count.</summary>
/// <param name="Step">Denoiser steps trained (0: the foundation model itself).</param>
/// <param name="Fid">FID of the judge's features against the held-out phantoms (lower is closer).</param>
/// <param name="Kid">KID mean on the same features.</param>
/// <param name="AdherenceMeanAuc">Prompt adherence: mean AUC over the findings the prompts name (0.5 = prompts ignored).</param>
/// <param name="PneumothoraxAuc">Adherence AUC of pneumothorax.</param>
/// <param name="Images">Images generated.</param>
/// <param name="Seconds">Evaluation wall time.</param>
public sealed record CurvePoint(int Step, double Fid, double Kid, double AdherenceMeanAuc, double PneumothoraxAuc, int Images, double Seconds)
{
    /// <summary>
    /// Report adherence: mean AUC of the judge on images generated from held-out phantom reports (worded as the training
    /// prompts are), each finding scored against the report's labels; NaN where not measured (points written before
    /// this measure existed). Its ceiling is the same measure on the real images of those reports
    /// (<see cref="DomainAdaptationResult.ReportAdherenceCeiling"/>).
    /// </summary>
    public double ReportAdherenceMeanAuc { get; init; } = double.NaN;

    /// <summary>A step whose evaluation is missing (every number NaN).</summary>
    public static CurvePoint Missing(int step) => new(step, double.NaN, double.NaN, double.NaN, double.NaN, 0, 0);
}

/// <summary>One variant trained with one seed: its curve.</summary>
/// <param name="Variant">Variant key (<see cref="DomainAdaptation.Key"/>).</param>
/// <param name="Seed">Fine-tuning seed.</param>
/// <param name="Points">Evaluations in step order (step 0, the foundation model, for the variants that start from all of it).</param>
public sealed record VariantRun(string Variant, long Seed, IReadOnlyList<CurvePoint> Points)
{
    /// <summary>For variant (a): whether its text encoder is bit-identical to the foundation model's after training; null for the others.</summary>
    public bool? TextEncoderUnchanged { get; init; }
    /// <summary>Training wall time of the calls that finished its stages (a resumed stage counts its last call only).</summary>
    public double Seconds { get; init; }
    /// <summary>The point at a step count, or null.</summary>
    public CurvePoint? At(int step) => Points.FirstOrDefault(p => p.Step == step);
}

/// <summary>The text probe of one encoder on one report set.</summary>
/// <param name="Encoder">"foundation" or a variant key.</param>
/// <param name="Seed">The variant's seed (null for the foundation model).</param>
/// <param name="Reports">Which reports.</param>
/// <param name="Result">The probe's result.</param>
public sealed record TextProbeRow(string Encoder, long? Seed, string Reports, TextProbeResult Result);

/// <summary>A metric of a variant at a step over the seeds.</summary>
/// <param name="Variant">Variant key.</param>
/// <param name="Step">Step count.</param>
/// <param name="Metric">"adherence", "fid" or "pneumothorax_adherence".</param>
/// <param name="Summary">Mean, spread and 95 % Student-t interval over the seeds (<see cref="Evaluation.Statistics.Summary"/>).</param>
public sealed record CurveSummary(string Variant, int Step, string Metric, Summary Summary);

/// <summary>One of RoentGen's claims next to what this study measured.</summary>
/// <param name="Claim">The claim in words.</param>
/// <param name="Paper">What the paper reports.</param>
/// <param name="Measure">What is measured here (the difference, in which direction).</param>
/// <param name="Estimate">Mean over the seeds.</param>
/// <param name="Lower">Lower end of the 95 % interval (Student t over the seeds; NaN with one seed).</param>
/// <param name="Upper">Upper end.</param>
/// <param name="P">One-sided p-value of the paired t-test in the claimed direction (NaN where not defined).</param>
/// <param name="Seeds">Seeds with a value.</param>
/// <param name="Verdict">"supported" (interval on the claimed side of 0), "contradicted" (on the other side), or "undecided".</param>
public sealed record AdaptationClaim(string Claim, string Paper, string Measure, double Estimate, double Lower, double Upper, double P, int Seeds, string Verdict);

/// <summary>What <see cref="DomainAdaptation.Run"/> measured: the shift, every variant's curves, the text probe and the claims.</summary>
public sealed record DomainAdaptationResult
{
    /// <summary>The budget.</summary>
    public required DomainAdaptationConfig Config { get; init; }
    /// <summary>The fine-tuning seeds.</summary>
    public required IReadOnlyList<long> Seeds { get; init; }
    /// <summary>The foundation model prompted with radiology text (step 0).</summary>
    public required CurvePoint Shift { get; init; }
    /// <summary>Every variant and seed.</summary>
    public required IReadOnlyList<VariantRun> Runs { get; init; }
    /// <summary>Every curve point summarised over the seeds.</summary>
    public required IReadOnlyList<CurveSummary> Curves { get; init; }
    /// <summary>The text probe of every encoder on every report set.</summary>
    public required IReadOnlyList<TextProbeRow> TextProbes { get; init; }
    /// <summary>The claims table.</summary>
    public required IReadOnlyList<AdaptationClaim> Claims { get; init; }
    /// <summary>Wall time of the call that wrote the result (stages finished earlier cost nothing here).</summary>
    public double Seconds { get; init; }
    /// <summary>
    /// The report-adherence measure on the real held-out phantoms of the report prompts: what a generator that followed
    /// every report perfectly would score with this judge (NaN in results written before the measure existed).
    /// </summary>
    public double ReportAdherenceCeiling { get; init; } = double.NaN;

    /// <summary>The JSON settings of results.json (snake_case, NaN as "NaN", enums as strings).</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>RoentGen's headline relative improvement of the text encoder's pneumothorax representation after fine-tuning.</summary>
    public const double PaperTextImprovement = 0.25;

    /// <summary>Fewest pneumothorax reports in a text probe's test part for its claim to get a verdict.</summary>
    public const int MinTextProbePositives = 5;

    /// <summary>Summarises runs and probes into curves and claims.</summary>
    public static DomainAdaptationResult Build(DomainAdaptationConfig config, IReadOnlyList<long> seeds, CurvePoint shift, IReadOnlyList<VariantRun> runs,
        IReadOnlyList<TextProbeRow> probes, double seconds, double reportAdherenceCeiling = double.NaN)
    {
        var curves = new List<CurveSummary>();
        foreach (var v in runs.Select(r => r.Variant).Distinct())
            foreach (var step in runs.Where(r => r.Variant == v).SelectMany(r => r.Points.Select(p => p.Step)).Distinct().Order())
                foreach (var (metric, get) in Metrics)
                    curves.Add(new CurveSummary(v, step, metric, Summary.OfFinite(runs.Where(r => r.Variant == v).Select(r => r.At(step) is { } p ? get(p) : double.NaN))));
        var partial = new DomainAdaptationResult
        {
            Config = config, Seeds = seeds, Shift = shift, Runs = runs, Curves = curves, TextProbes = probes, Claims = [], Seconds = seconds,
            ReportAdherenceCeiling = reportAdherenceCeiling,
        };
        return partial with { Claims = partial.MakeClaims() };
    }

    private static readonly (string Name, Func<CurvePoint, double> Get)[] Metrics =
        [("report_adherence", p => p.ReportAdherenceMeanAuc), ("adherence", p => p.AdherenceMeanAuc), ("fid", p => p.Fid), ("pneumothorax_adherence", p => p.PneumothoraxAuc)];

    /// <summary>The summary of a metric of a variant at a step (N = 0 when absent).</summary>
    public Summary CurveAt(string variant, int step, string metric) =>
        Curves.FirstOrDefault(c => c.Variant == variant && c.Step == step && c.Metric == metric)?.Summary ?? Summary.OfFinite([]);

    /// <summary>Per seed, in seed order: a metric of a variant at a step (NaN where missing).</summary>
    public double[] PerSeed(string variant, int step, Func<CurvePoint, double> metric) =>
        Seeds.Select(s => Runs.FirstOrDefault(r => r.Variant == variant && r.Seed == s)?.At(step) is { } p ? metric(p) : double.NaN).ToArray();

    /// <summary>
    /// Relative change of the pneumothorax linear-probe AUC from the foundation text encoder to a variant's, per seed
    /// (after / before − 1), on one report set.
    /// </summary>
    public double[] TextImprovement(string variant, string reports, string measure = "linear")
    {
        var before = TextProbes.FirstOrDefault(p => p.Encoder == "foundation" && p.Reports == reports)?.Result["Pneumothorax"];
        double B(FindingProbeAuc? f) => f is null ? double.NaN : measure == "knn" ? f.KnnAuc : f.LinearAuc;
        return Seeds.Select(s =>
        {
            var after = TextProbes.FirstOrDefault(p => p.Encoder == variant && p.Seed == s && p.Reports == reports)?.Result["Pneumothorax"];
            return B(after) / B(before) - 1;
        }).ToArray();
    }

    private List<AdaptationClaim> MakeClaims()
    {
        int last = Config.FineTuneSteps, first = Config.EvalSteps.Min();
        string a = DomainAdaptation.Key(AdaptationVariant.UnetOnly), b = DomainAdaptation.Key(AdaptationVariant.UnetAndText);
        string c = DomainAdaptation.Key(AdaptationVariant.Scratch), d = DomainAdaptation.Key(AdaptationVariant.VaeFineTuned);
        // Adherence here is report adherence: prompts worded as the training reports are, with a known ceiling (the real
        // images of those reports). The short single-finding prompts of PromptAdherence.DefaultPrompts stay in the curves.
        double Adh(CurvePoint p) => p.ReportAdherenceMeanAuc;
        double Fid(CurvePoint p) => p.Fid;
        var claims = new List<AdaptationClaim>
        {
            Paired("The shift is large: a general-domain model prompted with radiology text fails, fine-tuning fixes it",
                "Stable Diffusion out of the box scores far below the fine-tuned model (FID and radiologist ratings)",
                $"report adherence AUC of (b) at {last} steps − the foundation model's", PerSeed(b, last, Adh), Seeds.Select(_ => Adh(Shift)).ToArray()),
            Paired("Fine-tuning the text encoder with the UNet helps",
                "UNet + text encoder beats UNet alone on FID and on the classifier's accuracy for the prompted finding",
                $"report adherence AUC (b) − (a) at {last} steps", PerSeed(b, last, Adh), PerSeed(a, last, Adh)),
            Paired("Pretraining makes adaptation sample-efficient",
                "starting from Stable Diffusion, good images after few fine-tuning steps",
                $"report adherence AUC (b) − (c, scratch) at {first} steps", PerSeed(b, first, Adh), PerSeed(c, first, Adh)),
            Paired("Pretraining makes adaptation sample-efficient (FID)",
                "as above",
                $"FID (c, scratch) − (b) at {first} steps (positive: pretrained is closer)", PerSeed(c, first, Fid), PerSeed(b, first, Fid)),
            Paired("Keeping the VAE frozen is enough",
                "RoentGen keeps Stable Diffusion's VAE frozen; it reconstructs chest X-rays well",
                $"FID (b, VAE frozen) − (d, VAE tuned) at {last} steps (positive: tuning the VAE helped; the claim expects about 0)",
                PerSeed(b, last, Fid), PerSeed(d, last, Fid), twoSided: true),
            Paired("Keeping the VAE frozen is enough (adherence)",
                "as above",
                $"report adherence AUC (d, VAE tuned) − (b, VAE frozen) at {last} steps (positive: tuning the VAE helped; the claim expects about 0)",
                PerSeed(d, last, Adh), PerSeed(b, last, Adh), twoSided: true),
        };
        foreach (var reports in TextProbes.Select(p => p.Reports).Distinct())
        {
            int positives = TextProbes.FirstOrDefault(p => p.Encoder == "foundation" && p.Reports == reports)?.Result["Pneumothorax"].TestPositives ?? 0;
            // The linear probe learns its own read-out (it can find the word even in an untrained encoder); the k-NN probe
            // reads the embedding's geometry as it is, closer to "how the encoder represents" the finding.
            foreach (var (measure, words) in new[] { ("linear", "linear-probe"), ("knn", "k-NN") })
            {
                var claim = Single("The fine-tuned text encoder represents pneumothorax better",
                    $"+{PaperTextImprovement:P0} for pneumothorax (their headline figure; the paper's exact measure is not restated here)",
                    $"relative change of the pneumothorax {words} AUC, (b) over the foundation text encoder, on {reports}",
                    TextImprovement(b, reports, measure));
                // An AUC over a handful of positives says nothing either way, whatever its interval.
                if (positives < MinTextProbePositives)
                    claim = claim with { Verdict = $"undecided (only {positives} pneumothorax report{(positives == 1 ? "" : "s")} in the probe's test part)" };
                claims.Add(claim);
            }
        }
        return claims;
    }

    private static AdaptationClaim Paired(string claim, string paper, string measure, double[] x, double[] y, bool twoSided = false) =>
        Single(claim, paper, measure, x.Zip(y, (u, v) => u - v).ToArray(), twoSided);

    private static AdaptationClaim Single(string claim, string paper, string measure, double[] diffs, bool twoSided = false)
    {
        var s = Summary.OfFinite(diffs);
        double p = double.NaN;
        var finite = diffs.Where(double.IsFinite).ToArray();
        if (finite.Length >= 2)
        {
            try { p = TTest.Paired(finite, new double[finite.Length], twoSided ? Alternative.TwoSided : Alternative.Greater).P; }
            catch (ArgumentException) { p = double.NaN; }   // e.g. every difference equal: no variance
        }
        string verdict = s.N < 2 || !double.IsFinite(s.Lower) ? $"undecided ({s.N} seed{(s.N == 1 ? "" : "s")}: no interval)"
            : twoSided ? (s.Lower > 0 || s.Upper < 0 ? "contradicted (the interval excludes 0)" : "supported (the interval includes 0)")
            : s.Lower > 0 ? "supported" : s.Upper < 0 ? "contradicted" : "undecided (the interval includes 0)";
        return new AdaptationClaim(claim, paper, measure, s.Mean, s.Lower, s.Upper, p, s.N, verdict);
    }

    /// <summary>The result as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Writes <see cref="ToJson"/> atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    /// <summary>Reads results.json (a file, or the output folder holding one).</summary>
    /// <exception cref="FileNotFoundException">No results file.</exception>
    /// <exception cref="InvalidDataException">Not a domain adaptation result.</exception>
    public static DomainAdaptationResult Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, DomainAdaptation.ResultFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"no domain adaptation results at {path} (run roentgen adapt --out DIR first)", path);
        try
        {
            return JsonSerializer.Deserialize<DomainAdaptationResult>(File.ReadAllText(path), JsonOptions)
                   ?? throw new InvalidDataException($"{path} is empty; expected a domain adaptation result");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a domain adaptation result ({e.Message})", e); }
    }

    /// <summary>One row per variant and step: adherence and FID, mean and 95 % interval over the seeds.</summary>
    public DataFrame CurveTable()
    {
        var rows = Curves.Where(c => c.Metric == "adherence").ToList();
        string Ci(Summary s) => s.N < 2 ? "" : $"[{F(s.Lower)}, {F(s.Upper)}]";
        Summary Fid(CurveSummary r) => CurveAt(r.Variant, r.Step, "fid");
        Summary Report(CurveSummary r) => CurveAt(r.Variant, r.Step, "report_adherence");
        return new DataFrame(
            new StringDataFrameColumn("variant", rows.Select(r => r.Variant)),
            new Int32DataFrameColumn("step", rows.Select(r => r.Step)),
            new DoubleDataFrameColumn("report adherence", rows.Select(r => N(Report(r).Mean))),
            new StringDataFrameColumn("report adherence 95% CI", rows.Select(r => Ci(Report(r)))),
            new DoubleDataFrameColumn("short-prompt adherence", rows.Select(r => N(r.Summary.Mean))),
            new StringDataFrameColumn("short-prompt adherence 95% CI", rows.Select(r => Ci(r.Summary))),
            new DoubleDataFrameColumn("fid", rows.Select(r => N(Fid(r).Mean))),
            new StringDataFrameColumn("fid 95% CI", rows.Select(r => Ci(Fid(r)))),
            new Int32DataFrameColumn("seeds", rows.Select(r => r.Summary.N)));
    }

    /// <summary>The domain-shift table: the foundation model against each variant at the full budget (means over the seeds).</summary>
    public DataFrame ShiftTable()
    {
        int last = Config.FineTuneSteps;
        var names = new List<string> { "foundation model (scenes only)" };
        var report = new List<double?> { N(Shift.ReportAdherenceMeanAuc) };
        var adh = new List<double?> { N(Shift.AdherenceMeanAuc) };
        var fid = new List<double?> { N(Shift.Fid) };
        foreach (var v in DomainAdaptation.Variants)
        {
            names.Add($"{DomainAdaptation.Describe(v)}, {last} steps");
            report.Add(N(CurveAt(DomainAdaptation.Key(v), last, "report_adherence").Mean));
            adh.Add(N(CurveAt(DomainAdaptation.Key(v), last, "adherence").Mean));
            fid.Add(N(CurveAt(DomainAdaptation.Key(v), last, "fid").Mean));
        }
        names.Add("the held-out phantoms themselves (the judge's ceiling)");
        report.Add(N(ReportAdherenceCeiling));
        adh.Add(null);
        fid.Add(null);
        return new DataFrame(new StringDataFrameColumn("model", names), new DoubleDataFrameColumn("report adherence mean AUC", report),
            new DoubleDataFrameColumn("short-prompt adherence mean AUC", adh), new DoubleDataFrameColumn("fid", fid));
    }

    /// <summary>The text probe: per report set and encoder, pneumothorax and macro AUCs (means over the seeds).</summary>
    public DataFrame TextProbeTable()
    {
        var groups = TextProbes.GroupBy(p => (p.Reports, p.Encoder)).ToList();
        double M(IEnumerable<double> v) => Summary.OfFinite(v).Mean;
        return new DataFrame(
            new StringDataFrameColumn("reports", groups.Select(g => g.Key.Reports)),
            new StringDataFrameColumn("encoder", groups.Select(g => g.Key.Encoder)),
            new DoubleDataFrameColumn("pneumothorax linear AUC", groups.Select(g => N(M(g.Select(p => p.Result["Pneumothorax"].LinearAuc))))),
            new DoubleDataFrameColumn("pneumothorax k-NN AUC", groups.Select(g => N(M(g.Select(p => p.Result["Pneumothorax"].KnnAuc))))),
            new DoubleDataFrameColumn("linear macro AUC", groups.Select(g => N(M(g.Select(p => p.Result.LinearMacroAuc))))),
            new DoubleDataFrameColumn("k-NN macro AUC", groups.Select(g => N(M(g.Select(p => p.Result.KnnMacroAuc))))),
            new Int32DataFrameColumn("pneumothorax test positives", groups.Select(g => g.First().Result["Pneumothorax"].TestPositives)));
    }

    /// <summary>The claims table: paper against here, with intervals.</summary>
    public DataFrame ClaimTable() => new(
        new StringDataFrameColumn("claim", Claims.Select(c => c.Claim)),
        new StringDataFrameColumn("paper", Claims.Select(c => c.Paper)),
        new StringDataFrameColumn("measured here", Claims.Select(c => c.Measure)),
        new DoubleDataFrameColumn("estimate", Claims.Select(c => N(c.Estimate))),
        new StringDataFrameColumn("95% CI", Claims.Select(c => c.Seeds < 2 ? "n/a" : $"[{F(c.Lower)}, {F(c.Upper)}]")),
        new DoubleDataFrameColumn("p (one-sided)", Claims.Select(c => N(c.P))),
        new Int32DataFrameColumn("seeds", Claims.Select(c => c.Seeds)),
        new StringDataFrameColumn("verdict", Claims.Select(c => c.Verdict)));

    /// <summary>
    /// A metric against steps: one solid line per variant (mean over the seeds), its 95 % interval as two dotted lines of
    /// the same colour, and the foundation model at step 0 for the variants that start from all of it.
    /// </summary>
    /// <param name="metric">"report_adherence", "adherence", "fid" or "pneumothorax_adherence".</param>
    /// <exception cref="ArgumentException">An unknown metric.</exception>
    public Figure CurveFigure(string metric)
    {
        // The metric is checked before any trace is built.
        var (title, y) = metric switch
        {
            "fid" => ("FID against held-out phantoms by fine-tuning step (lower is better)", "FID (judge features)"),
            "pneumothorax_adherence" => ("Pneumothorax adherence (short prompts) by fine-tuning step", "adherence AUC"),
            "report_adherence" => ("Report adherence by fine-tuning step (held-out reports as prompts)", "adherence mean AUC"),
            "adherence" => ("Short-prompt adherence by fine-tuning step (one finding named per prompt)", "adherence mean AUC"),
            _ => throw new ArgumentException($"unknown metric '{metric}'; known: {string.Join(", ", Metrics.Select(m => m.Name))}", nameof(metric)),
        };
        string[] colours = ["#1f77b4", "#d62728", "#7f7f7f", "#2ca02c"];
        var traces = new List<Trace>();
        var variants = Curves.Select(c => c.Variant).Distinct().ToList();
        for (int i = 0; i < variants.Count; i++)
        {
            var rows = Curves.Where(c => c.Variant == variants[i] && c.Metric == metric).OrderBy(c => c.Step).ToList();
            var colour = colours[i % colours.Length];
            var x = rows.Select(r => (double)r.Step).ToArray();
            traces.Add(new ScatterTrace { Name = variants[i], Mode = ScatterMode.LinesMarkers, X = x, Y = rows.Select(r => r.Summary.Mean).ToArray(), Line = new LineStyle { Color = colour } });
            if (rows.Any(r => r.Summary.N >= 2))
            {
                traces.Add(new ScatterTrace { Name = $"{variants[i]} 95% CI", ShowLegend = false, X = x, Y = rows.Select(r => r.Summary.Lower).ToArray(), Line = new LineStyle { Color = colour, Dash = LineDash.Dot, Width = 1 } });
                traces.Add(new ScatterTrace { Name = $"{variants[i]} 95% CI", ShowLegend = false, X = x, Y = rows.Select(r => r.Summary.Upper).ToArray(), Line = new LineStyle { Color = colour, Dash = LineDash.Dot, Width = 1 } });
            }
        }
        return new Figure(title, traces, new FigureLayout { XAxis = new FigureAxis { Title = "denoiser steps on chest X-rays (0: the foundation model)" }, YAxis = new FigureAxis { Title = y } });
    }

    /// <summary>Per-finding linear-probe AUC of the report embeddings, one bar series per encoder (means over the seeds), on one report set.</summary>
    public Figure TextProbeFigure(string reports)
    {
        var rows = TextProbes.Where(p => p.Reports == reports).ToList();
        var findings = TextEncoderProbe.FindingOrder.Select(Data.Observations.Name).ToList();
        var traces = rows.GroupBy(r => r.Encoder).Select(g =>
        {
            var values = findings.Select(f => Summary.OfFinite(g.Select(r => r.Result[f].LinearAuc)).Mean).ToArray();
            var keep = Enumerable.Range(0, findings.Count).Where(i => double.IsFinite(values[i])).ToArray();
            return (Trace)new BarTrace { Name = g.Key, Categories = keep.Select(i => findings[i]).ToArray(), Values = keep.Select(i => values[i]).ToArray() };
        }).ToList();
        return new Figure($"Text-encoder probe: linear AUC per finding ({reports})", traces,
            new FigureLayout { BarMode = BarMode.Group, YAxis = new FigureAxis { Title = "held-out AUC" } });
    }

    private static double? N(double v) => double.IsFinite(v) ? v : null;

    private static string F(double v) => double.IsFinite(v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "n/a";
}
