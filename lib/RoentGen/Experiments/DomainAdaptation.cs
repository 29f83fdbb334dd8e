using System.Diagnostics;
using System.Text.Json;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using RoentGen.Interop;
using RoentGen.Platform;
using static TorchSharp.torch;

namespace RoentGen.Experiments;

/// <summary>How a chest X-ray model is made from the foundation model (or without it), RoentGen's fine-tuning variants.</summary>
public enum AdaptationVariant
{
    /// <summary>(a) UNet fine-tuned from the foundation model; text encoder, tokenizer and VAE taken from it and frozen.</summary>
    UnetOnly,
    /// <summary>(b) UNet and text encoder fine-tuned from the foundation model; VAE and tokenizer frozen (RoentGen's recipe).</summary>
    UnetAndText,
    /// <summary>(c) Every part trained from scratch on the chest X-rays at the same denoiser budget (VAE and tokenizer included).</summary>
    Scratch,
    /// <summary>(d) As (b), but the foundation VAE is first fine-tuned on the chest X-rays instead of kept frozen.</summary>
    VaeFineTuned,
}

/// <summary>
/// The budget and setup of <see cref="DomainAdaptation"/>: the chest X-ray experiment (architecture, training phantoms,
/// the scratch model's VAE stage), the foundation model's pretraining on the general-domain scenes, the fine-tuning
/// budget and the step counts the curves are evaluated at, the evaluation (judge, held-out phantoms, prompts) and the
/// text-encoder probe. Round-trips through JSON (written to results.json).
/// </summary>
public sealed record DomainAdaptationConfig
{
    /// <summary>
    /// The chest X-ray experiment every variant shares: architecture, training phantoms, prompt source, learning rates;
    /// its LdmSteps and Seed are replaced by <see cref="FineTuneSteps"/> and the seed, its VaeSteps is the scratch
    /// model's VAE stage. No EMA by default, so the curve's points (raw weights at each step count) and the saved model agree.
    /// Prompts get 96 tokens rather than the quickstart's 48: the foundation model's tokenizer learned its merges on scene
    /// captions, so it spells radiology words in byte pieces and a report takes many more of its tokens.
    /// </summary>
    public LdmExperimentConfig Cxr { get; init; } = LdmExperimentConfig.Quick with
    {
        EmaDecay = null, VaeSteps = 300, LdmSteps = 400, MaxTokens = 96, Text = LdmExperimentConfig.Quick.Text with { MaxPositions = 96 },
        // The template reports this study was measured on (Quick's varied wording came later), and no text-encoder
        // pretraining: the variants compare where the text encoder comes from (the foundation model, or scratch).
        ReportStyle = Data.Reports.ReportStyle.Templates, TextPretrainSteps = 0, TextPretrainPhrases = 0,
        // Nor the finding-weighted loss (it came later still; the general-domain scenes have no finding masks).
        FindingLossWeight = null,
    };
    /// <summary>General-domain scenes the foundation model is pretrained on.</summary>
    public int SceneImages { get; init; } = 4000;
    /// <summary>World seed of the scenes.</summary>
    public long SceneSeed { get; init; } = 7;
    /// <summary>The foundation model's VAE steps.</summary>
    public int FoundationVaeSteps { get; init; } = 300;
    /// <summary>The foundation model's denoiser steps.</summary>
    public int FoundationSteps { get; init; } = 1500;
    /// <summary>EMA decay of the foundation model's pretraining (null: none).</summary>
    public double? FoundationEmaDecay { get; init; } = 0.999;
    /// <summary>Seed of the foundation model (one foundation model serves every fine-tuning seed, as one Stable Diffusion served RoentGen).</summary>
    public long FoundationSeed { get; init; } = 100;
    /// <summary>Denoiser steps of every variant (the one step budget).</summary>
    public int FineTuneSteps { get; init; } = 400;
    /// <summary>Step counts at which every variant is evaluated (the curves' x values); each at most <see cref="FineTuneSteps"/>.</summary>
    public IReadOnlyList<int> EvalSteps { get; init; } = [50, 100, 200, 400];
    /// <summary>VAE fine-tuning steps of variant (d).</summary>
    public int VaeFineTuneSteps { get; init; } = 100;
    /// <summary>Checkpoint every this many denoiser steps (an interrupted variant resumes from the last one).</summary>
    public int CheckpointEvery { get; init; } = 50;
    /// <summary>Adherence prompts used (the first this many of <see cref="PromptAdherence.DefaultPrompts"/>; null: all).</summary>
    public int? PromptCount { get; init; }
    /// <summary>
    /// Held-out phantom reports (the first this many of <see cref="WorldSeeds.HeldOut"/>, worded and cut as the training
    /// prompts are) from which one image each is generated at every evaluation for report adherence; the real images of
    /// the same reports give its ceiling.
    /// </summary>
    public int ReportPrompts { get; init; } = 128;
    /// <summary>Images generated per adherence prompt at each evaluation.</summary>
    public int ImagesPerPrompt { get; init; } = 2;
    /// <summary>Sampler (DPM-Solver++) steps of the evaluation images.</summary>
    public int SamplerSteps { get; init; } = 20;
    /// <summary>Classifier-free guidance scale of the evaluation images.</summary>
    public double GuidanceScale { get; init; } = 4;
    /// <summary>Held-out phantoms, the FID reference.</summary>
    public int HeldOutImages { get; init; } = 500;
    /// <summary>Phantoms the judge (proxy finding classifier) trains on.</summary>
    public int JudgeImages { get; init; } = 4000;
    /// <summary>Judge training steps.</summary>
    public int JudgeSteps { get; init; } = 600;
    /// <summary>Held-out phantom reports for the text-encoder probe.</summary>
    public int ProbeReports { get; init; } = 1000;
    /// <summary>The text-encoder probe's settings.</summary>
    public TextProbeOptions Probe { get; init; } = new();

    /// <summary>Names of the presets.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick", "study"];

    /// <summary>The CPU preset: 64 px, the quickstart's architecture, 1,500 foundation steps on 4,000 scenes, 400 fine-tuning steps per variant.</summary>
    public static DomainAdaptationConfig Quick { get; } = new();

    /// <summary>
    /// Quick's foundation model and evaluation with three times its fine-tuning budget (1,200 steps per variant, curves at
    /// 100, 400 and 1,200): at 400 steps no variant gets near the report-adherence ceiling, so the claims about what
    /// fine-tuning reaches need the longer budget. Its foundation/ and judge/ are the same runs as Quick's.
    /// </summary>
    public static DomainAdaptationConfig Study { get; } = new() { FineTuneSteps = 1200, EvalSteps = [100, 400, 1200] };

    /// <summary>A seconds-long preset for tests: the tiny architecture at 32 px, a handful of steps everywhere.</summary>
    public static DomainAdaptationConfig Tiny { get; } = new()
    {
        Cxr = LdmExperimentConfig.Tiny with { EmaDecay = null, LdmSteps = 4, VaeSteps = 3 },
        SceneImages = 48, FoundationVaeSteps = 3, FoundationSteps = 6, FoundationEmaDecay = null, FineTuneSteps = 4, EvalSteps = [2, 4],
        VaeFineTuneSteps = 2, CheckpointEvery = 2, PromptCount = 12, ReportPrompts = 12, ImagesPerPrompt = 1, SamplerSteps = 3, HeldOutImages = 16,
        JudgeImages = 48, JudgeSteps = 4, ProbeReports = 60,
        Probe = new TextProbeOptions { KnnK = 5, Linear = Evaluation.Probes.LinearProbeOptions.Quick with { LearningRates = [3e-2], WeightDecays = [0], Steps = 20 } },
    };

    /// <summary>A preset by name.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static DomainAdaptationConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Tiny,
        "quick" => Quick,
        "study" => Study,
        _ => throw new ArgumentException($"unknown adapt preset '{name}'; known presets: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>The foundation model's experiment: the chest X-ray architecture pretrained on the scenes.</summary>
    public LdmExperimentConfig Foundation() => Cxr with
    {
        TrainImages = SceneImages, DataSeed = SceneSeed, VaeSteps = FoundationVaeSteps, LdmSteps = FoundationSteps,
        EmaDecay = FoundationEmaDecay, Seed = FoundationSeed, TrainTextEncoder = true, Parts = new LdmPartsConfig(),
    };

    /// <summary>The experiment of one variant and seed, its parts taken from the foundation model folder <paramref name="foundationDir"/>.</summary>
    public LdmExperimentConfig Variant(AdaptationVariant variant, long seed, string foundationDir)
    {
        var cxr = Cxr with { LdmSteps = FineTuneSteps, Seed = seed };
        var foundation = Foundation();
        return variant switch
        {
            AdaptationVariant.UnetOnly => (cxr with { TrainTextEncoder = false }).InitFrom(foundation, foundationDir, trainVae: false),
            AdaptationVariant.UnetAndText => (cxr with { TrainTextEncoder = true }).InitFrom(foundation, foundationDir, trainVae: false),
            AdaptationVariant.Scratch => cxr with { TrainTextEncoder = true, Parts = new LdmPartsConfig() },
            AdaptationVariant.VaeFineTuned => (cxr with { TrainTextEncoder = true, VaeSteps = VaeFineTuneSteps }).InitFrom(foundation, foundationDir, trainVae: true),
            _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, "unknown variant"),
        };
    }

    /// <summary>Checks the budget (the experiments' own checks come from <see cref="LdmExperimentConfig.Validate"/>).</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and what was expected.</exception>
    public void Validate()
    {
        Cxr.Validate();
        Foundation().Validate();
        if (FineTuneSteps < 1) throw new ArgumentException($"FineTuneSteps must be at least 1, got {FineTuneSteps}");
        if (EvalSteps.Count == 0) throw new ArgumentException("EvalSteps needs at least one step count, e.g. [50, 100, 200, 400]");
        foreach (var s in EvalSteps)
            if (s < 1 || s > FineTuneSteps) throw new ArgumentException($"EvalSteps: {s} is outside 1..FineTuneSteps ({FineTuneSteps})");
        if (EvalSteps.Distinct().Count() != EvalSteps.Count) throw new ArgumentException($"EvalSteps repeats a step: {string.Join(", ", EvalSteps)}");
        if (VaeFineTuneSteps < 1) throw new ArgumentException($"VaeFineTuneSteps must be at least 1, got {VaeFineTuneSteps}");
        if (ImagesPerPrompt < 1) throw new ArgumentException($"ImagesPerPrompt must be at least 1, got {ImagesPerPrompt}");
        if (PromptCount is int p && (p < 2 || p > PromptAdherence.DefaultPrompts.Count))
            throw new ArgumentException($"PromptCount must be 2..{PromptAdherence.DefaultPrompts.Count} (the default adherence prompts), got {p}");
        if (ReportPrompts < 2) throw new ArgumentException($"ReportPrompts must be at least 2, got {ReportPrompts}");
        if (HeldOutImages < 2) throw new ArgumentException($"HeldOutImages must be at least 2, got {HeldOutImages}");
        if (JudgeImages < 1 || JudgeSteps < 1) throw new ArgumentException($"JudgeImages and JudgeSteps must be at least 1, got {JudgeImages} and {JudgeSteps}");
        if (ProbeReports < 10) throw new ArgumentException($"ProbeReports must be at least 10, got {ProbeReports}");
        if (SceneSeed == Cxr.DataSeed) throw new ArgumentException($"SceneSeed equals Cxr.DataSeed ({SceneSeed}); give the scenes their own world seed");
    }

    /// <summary>Reads a config file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a DomainAdaptationConfig.</exception>
    public static DomainAdaptationConfig Load(string path) => Training.RunFolder.ReadConfig<DomainAdaptationConfig>(path, "domain adaptation config");
}

/// <summary>
/// RoentGen's adaptation study (Chambon et al. 2022) at this project's scale: a "foundation model" (VAE, text encoder
/// and UNet) pretrained on the general-domain scenes; the domain shift (the foundation model prompted with radiology
/// reports, judged by prompt adherence and FID against phantoms); the fine-tuning variants of <see cref="AdaptationVariant"/>
/// at one step budget, each evaluated at <see cref="DomainAdaptationConfig.EvalSteps"/> over several seeds; and what
/// the text encoder learned (<see cref="TextEncoderProbe"/>), before and after fine-tuning.
/// <para>
/// Layout of the output folder: foundation/ (an experiment folder, <see cref="LatentDiffusionRuns"/>), judge/ (the
/// proxy classifier), foundation-shift.json, seed-S/VARIANT/ (each an experiment folder with curve/step-N.json, one
/// file per evaluated step count), results.json. Every stage is a run folder: a finished one is skipped, an
/// interrupted one resumes, and evaluations already written are read back.
/// </para>
/// </summary>
public static class DomainAdaptation
{
    /// <summary>File name of the results inside the output folder.</summary>
    public const string ResultFile = "results.json";
    /// <summary>Folder of the foundation model.</summary>
    public const string FoundationFolder = "foundation";
    /// <summary>Folder of the judge.</summary>
    public const string JudgeFolder = "judge";
    /// <summary>The foundation model's evaluation on chest X-ray prompts.</summary>
    public const string ShiftFile = "foundation-shift.json";
    /// <summary>Folder of a variant's curve points inside its experiment folder.</summary>
    public const string CurveFolder = "curve";

    /// <summary>Every variant, in table order.</summary>
    public static IReadOnlyList<AdaptationVariant> Variants { get; } =
        [AdaptationVariant.UnetOnly, AdaptationVariant.UnetAndText, AdaptationVariant.Scratch, AdaptationVariant.VaeFineTuned];

    /// <summary>A variant's short name (its folder name too): unet-only, unet-text, scratch, vae-tuned.</summary>
    public static string Key(AdaptationVariant v) => v switch
    {
        AdaptationVariant.UnetOnly => "unet-only",
        AdaptationVariant.UnetAndText => "unet-text",
        AdaptationVariant.Scratch => "scratch",
        AdaptationVariant.VaeFineTuned => "vae-tuned",
        _ => throw new ArgumentOutOfRangeException(nameof(v), v, "unknown variant"),
    };

    /// <summary>A variant in words, for tables.</summary>
    public static string Describe(AdaptationVariant v) => v switch
    {
        AdaptationVariant.UnetOnly => "(a) UNet fine-tuned, text encoder frozen",
        AdaptationVariant.UnetAndText => "(b) UNet + text encoder fine-tuned, VAE frozen (RoentGen)",
        AdaptationVariant.Scratch => "(c) from scratch on chest X-rays",
        AdaptationVariant.VaeFineTuned => "(d) as (b), VAE fine-tuned too",
        _ => throw new ArgumentOutOfRangeException(nameof(v), v, "unknown variant"),
    };

    /// <summary>The experiment folder of one variant and seed.</summary>
    public static string VariantFolder(string outDir, long seed, AdaptationVariant v) => Path.Combine(outDir, $"seed-{seed}", Key(v));

    /// <summary>
    /// Runs (or resumes) the whole study into <paramref name="outDir"/> and writes results.json there.
    /// </summary>
    /// <param name="config">The budget.</param>
    /// <param name="seeds">Fine-tuning seeds (distinct); every variant runs with each.</param>
    /// <param name="outDir">Output folder.</param>
    /// <param name="iuReportsCsv">The real IU reports for the text probe (skipped when null or absent).</param>
    /// <param name="log">Receives one line per stage.</param>
    /// <param name="cancellation">Stops between training steps; a later call resumes.</param>
    /// <exception cref="ArgumentException">No seed, a repeated seed, or a config out of range.</exception>
    public static DomainAdaptationResult Run(DomainAdaptationConfig config, IReadOnlyList<long> seeds, string outDir, string? iuReportsCsv = null,
        Action<string>? log = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(seeds);
        if (seeds.Count == 0) throw new ArgumentException("give at least one seed");
        if (seeds.Distinct().Count() != seeds.Count) throw new ArgumentException($"seeds repeat: {string.Join(", ", seeds)}");
        config.Validate();
        log ??= Console.WriteLine;
        outDir = Path.GetFullPath(outDir);
        Directory.CreateDirectory(outDir);
        var clock = Stopwatch.StartNew();
        var cxr = config.Cxr;

        // 1. The foundation model on the scenes.
        var foundationDir = Path.Combine(outDir, FoundationFolder);
        var fcfg = config.Foundation();
        log($"foundation model: {fcfg.SceneImagesText()} -> {foundationDir}");
        var foundation = LatentDiffusionRuns.EnsureTrained(fcfg, LdmTrainingData.From(LdmTrainingData.Scenes, fcfg), foundationDir,
            new LdmRunOptions { Cancellation = cancellation, CheckpointEvery = config.CheckpointEvery });
        log(foundation.Skipped ? "foundation model: finished before, loaded" : $"foundation model: trained {foundation.StepsTrained} denoiser steps");

        // 2. The judge and the held-out phantoms, shared by every evaluation.
        var judge = ProxyFindingClassifier.LoadOrTrain(Path.Combine(outDir, JudgeFolder), cxr.ImageSize, config.JudgeImages, config.JudgeSteps, WorldSeeds.Judge(cxr.DataSeed));
        var (real, _) = ProxyFindingClassifier.PhantomData(cxr.ImageSize, 0, config.HeldOutImages, WorldSeeds.HeldOut(cxr.DataSeed));
        var evaluator = new Evaluator(config, judge, real);
        log($"report adherence of the real held-out phantoms (the ceiling): {evaluator.ReportCeiling:F3} on {config.ReportPrompts} reports");

        // 3. The domain shift: the foundation model prompted with radiology text (re-evaluated when written before report adherence existed).
        var shiftPath = Path.Combine(outDir, ShiftFile);
        var shift = ReadMeasured(shiftPath) ?? WritePoint(shiftPath, evaluator.Evaluate(foundation.Model, 0));
        log($"domain shift: foundation model on chest X-ray prompts: report adherence {shift.ReportAdherenceMeanAuc:F3}, short-prompt adherence {shift.AdherenceMeanAuc:F3}, FID {shift.Fid:F2}");

        // 4. The fine-tuning variants, each seed.
        var data = LdmTrainingData.FromPhantoms(cxr);
        var runs = new List<VariantRun>();
        var probeEncoders = new List<(string Name, long? Seed, LatentDiffusionModel Model)> { ("foundation", null, foundation.Model) };
        foreach (var seed in seeds)
        {
            foreach (var v in Variants)
            {
                var dir = VariantFolder(outDir, seed, v);
                var vcfg = config.Variant(v, seed, foundationDir);
                var curveDir = Path.Combine(dir, CurveFolder);
                log($"seed {seed}, {Describe(v)} -> {dir}");
                var options = new LdmRunOptions
                {
                    Cancellation = cancellation, CheckpointEvery = config.CheckpointEvery,
                    AfterLdmStep = (model, step) =>
                    {
                        int done = step + 1;
                        if (!config.EvalSteps.Contains(done)) return;
                        var path = PointPath(curveDir, done);
                        if (ReadMeasured(path) is not null) return;
                        var p = WritePoint(path, evaluator.Evaluate(model, done));
                        log($"  step {done}: report adherence {p.ReportAdherenceMeanAuc:F3}, short-prompt adherence {p.AdherenceMeanAuc:F3}, FID {p.Fid:F2}");
                    },
                };
                var result = LatentDiffusionRuns.EnsureTrained(vcfg, data, dir, options);
                // A variant finished before evaluations were kept (or before report adherence was measured) has its last point
                // taken from the saved model (the same weights when there is no EMA); earlier points cannot be re-made.
                var lastPath = PointPath(curveDir, config.FineTuneSteps);
                if (config.EvalSteps.Contains(config.FineTuneSteps) && vcfg.EmaDecay is null && ReadMeasured(lastPath) is null)
                    WritePoint(lastPath, evaluator.Evaluate(result.Model, config.FineTuneSteps));
                var points = new List<CurvePoint>();
                if (v is AdaptationVariant.UnetOnly or AdaptationVariant.UnetAndText) points.Add(shift);   // step 0 is the foundation model itself
                points.AddRange(config.EvalSteps.Order().Select(s => ReadPoint(PointPath(curveDir, s)) ?? CurvePoint.Missing(s)));
                bool? textUnchanged = v == AdaptationVariant.UnetOnly ? SameWeights(foundation.Model.TextEncoder, result.Model.TextEncoder) : null;
                runs.Add(new VariantRun(Key(v), seed, points) { TextEncoderUnchanged = textUnchanged, Seconds = ReadSeconds(dir) });
                if (v != AdaptationVariant.UnetOnly) probeEncoders.Add((Key(v), seed, result.Model));
            }
        }

        // 5. What the text encoders learned.
        log("text-encoder probe");
        var reportSets = new List<LabelledReports> { LabelledReports.Phantoms(config.ProbeReports, WorldSeeds.HeldOut(cxr.DataSeed), cxr.Prompt) };
        if (iuReportsCsv is not null && LabelledReports.IuReports(iuReportsCsv) is { } iu) reportSets.Add(iu);
        else log($"real IU reports: {(iuReportsCsv is null ? "none given" : $"not found at {iuReportsCsv}")}, skipped");
        // Within each report set, and across wordings: fit on the phantom reports, scored on the paraphrase prompts.
        var probes = TextProbeComparison.Run(probeEncoders, reportSets, config.Probe, transferTest: LabelledReports.Paraphrases()).Rows;

        var summary = DomainAdaptationResult.Build(config, seeds, shift, runs, probes, clock.Elapsed.TotalSeconds, evaluator.ReportCeiling);
        summary.Save(Path.Combine(outDir, ResultFile));
        log($"wrote {Path.Combine(outDir, ResultFile)} ({clock.Elapsed.TotalSeconds:F0} s)");
        return summary;
    }

    private static string SceneImagesText(this LdmExperimentConfig f) => $"{f.TrainImages} scenes of world {f.DataSeed}, VAE {f.VaeSteps} + denoiser {f.LdmSteps} steps";

    /// <summary>True when two modules hold bit-identical parameters (same names, shapes and values).</summary>
    public static bool SameWeights(TorchSharp.torch.nn.Module a, TorchSharp.torch.nn.Module b)
    {
        var pa = a.state_dict();
        var pb = b.state_dict();
        if (pa.Count != pb.Count) return false;
        foreach (var (k, t) in pa)
            if (!pb.TryGetValue(k, out var u) || !t.shape.SequenceEqual(u.shape) || !t.eq(u).all().item<bool>()) return false;
        return true;
    }

    private static string PointPath(string curveDir, int step) => Path.Combine(curveDir, $"step-{step:D6}.json");

    /// <summary>A written point that has every measure (points written before report adherence existed are evaluated again).</summary>
    private static CurvePoint? ReadMeasured(string path) => ReadPoint(path) is { } p && double.IsFinite(p.ReportAdherenceMeanAuc) ? p : null;

    private static CurvePoint? ReadPoint(string path) =>
        File.Exists(path) ? JsonSerializer.Deserialize<CurvePoint>(File.ReadAllText(path), DomainAdaptationResult.JsonOptions) : null;

    private static CurvePoint WritePoint(string path, CurvePoint p)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(p, DomainAdaptationResult.JsonOptions));
        return p;
    }

    private static double ReadSeconds(string dir)
    {
        double total = 0;
        foreach (var stage in new[] { LatentDiffusionRuns.VaeRunPath(dir), LatentDiffusionRuns.LdmRunPath(dir) })
        {
            var file = Path.Combine(stage, "run.json");
            if (!File.Exists(file)) continue;
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            foreach (var name in new[] { "seconds", "Seconds", "wall_seconds" })
                if (doc.RootElement.TryGetProperty(name, out var s) && s.ValueKind == JsonValueKind.Number) { total += s.GetDouble(); break; }
        }
        return total;
    }

    /// <summary>
    /// Samples the short adherence prompts and the held-out report prompts from a model and scores them with the judge
    /// (adherence) and against the held-out phantoms (FID on the short prompts' images).
    /// </summary>
    private sealed class Evaluator
    {
        private readonly DomainAdaptationConfig config;
        private readonly ProxyFindingClassifier judge;
        private readonly Tensor real;
        private readonly IReadOnlyList<AdherencePrompt> prompts;
        private readonly IReadOnlyList<AdherencePrompt> reportPrompts;
        private readonly IReadOnlyList<Data.Observation> reportFindings;

        public Evaluator(DomainAdaptationConfig config, ProxyFindingClassifier judge, Tensor real)
        {
            this.config = config;
            this.judge = judge;
            this.real = real;
            prompts = config.PromptCount is int n ? PromptAdherence.DefaultPrompts.Take(n).ToList() : PromptAdherence.DefaultPrompts;
            var cxr = config.Cxr;
            using var scope = NewDisposeScope();
            var reports = LdmTrainingData.FromPhantoms(config.ReportPrompts, cxr.ImageSize, WorldSeeds.HeldOut(cxr.DataSeed), 0, cxr.Prompt, cxr.ReportStyle);
            reportPrompts = reports.Prompts.Select(AdherencePrompt.FromText).ToList();
            // The ceiling fixes the findings scored (those the reports name), so every model is scored on the same ones.
            var ceiling = PromptAdherence.Score(reports.Images, reportPrompts, judge);
            reportFindings = ceiling.Findings.Select(f => f.Finding).ToList();
            ReportCeiling = ceiling.MeanAuc;
        }

        /// <summary>Report adherence of the real images of the report prompts.</summary>
        public double ReportCeiling { get; }

        public CurvePoint Evaluate(LatentDiffusionModel model, int step)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            var pipeline = model.ToPipeline();
            Tensor Sample(IEnumerable<string> texts) => pipeline.Sample(new SampleRequest
            {
                Prompts = texts.ToList(), GuidanceScale = config.GuidanceScale, Steps = config.SamplerSteps,
                Scheduler = SchedulerKind.DpmSolverPlusPlus, Seed = 1000, BatchSize = 16,
            });                                                                                       // (N, 1, S, S)
            var expanded = prompts.SelectMany(p => Enumerable.Repeat(p, config.ImagesPerPrompt)).ToList();
            var images = Sample(expanded.Select(p => p.Text));
            var ev = GenerationEvaluation.Run(real, images, expanded, judge.Features, judge);
            double ptx = ev.Adherence?.Findings.FirstOrDefault(f => f.Finding == Data.Observation.Pneumothorax)?.Auc ?? double.NaN;
            var fromReports = Sample(reportPrompts.Select(p => p.Text));
            double report = PromptAdherence.Score(fromReports, reportPrompts, judge, reportFindings).MeanAuc;
            return new CurvePoint(step, ev.Fid, ev.Kid.Mean, ev.Adherence?.MeanAuc ?? double.NaN, ptx, (int)(images.shape[0] + fromReports.shape[0]),
                clock.Elapsed.TotalSeconds) { ReportAdherenceMeanAuc = report };
        }
    }
}
