using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Analysis;
using RoentGen.Evaluation;
using RoentGen.Platform;
using RoentGen.Visualization;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>Settings of <see cref="DiffusionEvaluation.Run"/>.</summary>
public sealed record DiffusionEvaluationOptions
{
    /// <summary>Images generated per prompt of the adherence prompt set.</summary>
    public int ImagesPerPrompt { get; init; } = 8;
    /// <summary>Classifier-free guidance scale.</summary>
    public double GuidanceScale { get; init; } = 4;
    /// <summary>Sampler steps of the main evaluation.</summary>
    public int Steps { get; init; } = 20;
    /// <summary>Sampler of the main evaluation.</summary>
    public SchedulerKind Scheduler { get; init; } = SchedulerKind.DpmSolverPlusPlus;
    /// <summary>Seed of the first image (image i uses seed + i).</summary>
    public long Seed { get; init; } = 1000;
    /// <summary>Images per sampling batch.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Also score the same pipeline with a randomly initialised UNet (the untrained baseline).</summary>
    public bool UntrainedBaseline { get; init; } = true;
    /// <summary>Images for the sampler comparison (the main sampler against DDPM with <see cref="DdpmSteps"/>); 0 skips it.</summary>
    public int SamplerComparisonImages { get; init; } = 128;
    /// <summary>Steps of the DDPM reference.</summary>
    public int DdpmSteps { get; init; } = 250;
    /// <summary>Prompts with the findings they name (null: <see cref="PromptAdherence.DefaultPrompts"/>).</summary>
    public IReadOnlyList<AdherencePrompt>? Prompts { get; init; }
    /// <summary>
    /// A second prompt set phrased apart from the report writer (usually <see cref="ParaphrasePrompts.All"/>), sampled with
    /// the same settings, <see cref="ParaphraseImagesPerPrompt"/> images each and seeds of its own, and scored for adherence beside the main set
    /// (null: skipped).
    /// </summary>
    public IReadOnlyList<AdherencePrompt>? ParaphrasePrompts { get; init; }
    /// <summary>Images generated per paraphrase prompt (the set is larger than the main one, so fewer per prompt by default).</summary>
    public int ParaphraseImagesPerPrompt { get; init; } = 3;
    /// <summary>Offset of the paraphrase images' seeds from <see cref="Seed"/> (seeds neither the main set nor the sampler comparison uses).</summary>
    public const long ParaphraseSeedOffset = 2_000_000;
}

/// <summary>FID of one sampler setting on a shared prompt subset.</summary>
/// <param name="Sampler">Sampler and steps, e.g. "dpmpp 20".</param>
/// <param name="Fid">FID against the real held-out images.</param>
/// <param name="Kid">KID mean.</param>
/// <param name="Seconds">Sampling time.</param>
public sealed record SamplerFid(string Sampler, double Fid, double Kid, double Seconds);

/// <summary>Everything <see cref="DiffusionEvaluation.Run"/> measured.</summary>
public sealed record DiffusionEvaluationResult
{
    /// <summary>The trained model on the full prompt set.</summary>
    public required GenerationEvaluationResult Trained { get; init; }
    /// <summary>Adherence of the trained model on <see cref="DiffusionEvaluationOptions.ParaphrasePrompts"/> (null when skipped).</summary>
    public PromptAdherenceResult? Paraphrase { get; init; }
    /// <summary>The same pipeline with an untrained UNet, same prompts and seeds (null when skipped).</summary>
    public GenerationEvaluationResult? Untrained { get; init; }
    /// <summary>The main sampler and the DDPM reference on the same prompts and seeds (empty when skipped).</summary>
    public IReadOnlyList<SamplerFid> Samplers { get; init; } = [];
    /// <summary>Images of the comparison.</summary>
    public int SamplerComparisonImages { get; init; }
    /// <summary>Laterality of the main set's images (prompts naming one lateralised finding on one side); null without a side judge.</summary>
    public LateralityResult? Laterality { get; init; }
    /// <summary>Laterality of the paraphrase set's images; null without a side judge or paraphrase prompts.</summary>
    public LateralityResult? ParaphraseLaterality { get; init; }
    /// <summary>
    /// The judge's ceiling for the main set's adherence: real held-out images showing exactly what each prompt names,
    /// scored as if generated from it (<see cref="PromptAdherence.JudgeCeiling"/>); null without the real images' labels.
    /// </summary>
    public PromptAdherenceResult? JudgeCeiling { get; init; }
    /// <summary>Prompts for which the real pool held fewer than <see cref="DiffusionEvaluationOptions.ImagesPerPrompt"/> matching images.</summary>
    public IReadOnlyList<string> JudgeCeilingShortPrompts { get; init; } = [];
    /// <summary>
    /// FID of the trained model's images against the real held-out images that show exactly what each prompt names (the
    /// judge ceiling's images), prompt by prompt as many generated images as real ones: the two sets have the same
    /// finding mix, which the plain <see cref="GenerationEvaluationResult.Fid"/> against all held-out images (mostly normal
    /// studies) does not have. A model that draws the prompted findings moves away from the held-out mix, so its plain FID
    /// can rise while this one falls. Null without the real images' labels or when no real image matches a prompt.
    /// </summary>
    public double? MatchedFid { get; init; }
    /// <summary>Images on each side of <see cref="MatchedFid"/>.</summary>
    public int MatchedFidImages { get; init; }
    /// <summary>Settings used.</summary>
    public required DiffusionEvaluationOptions Options { get; init; }
    /// <summary>Sampling images/s of the main evaluation.</summary>
    public double SampleImagesPerSecond { get; init; }

    /// <summary>(main sampler FID / DDPM FID) − 1; NaN without the comparison.</summary>
    [JsonIgnore]
    public double SamplerFidGap => Samplers.Count == 2 ? Samplers[0].Fid / Samplers[1].Fid - 1 : double.NaN;

    /// <summary>The generated images of the main evaluation (N, 1, H, W), for grids; not serialised.</summary>
    [JsonIgnore]
    public Tensor? Images { get; init; }

    /// <summary>The prompt of each image in <see cref="Images"/>.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> ImagePrompts { get; init; } = [];

    /// <summary>One row per headline number: trained, untrained, and the targets of the RoentGen issue.</summary>
    public DataFrame Summary()
    {
        var rows = new List<(string Metric, double Value, string Note)>
        {
            ("fid (trained)", Trained.Fid, "proxy-classifier features, real held-out phantoms"),
            ("kid (trained)", Trained.Kid.Mean, $"± {Trained.Kid.Std:F4}"),
            ("ms-ssim generated", Trained.MsSsimGenerated, "same prompt, lower = more diverse"),
            ("ms-ssim real", Trained.MsSsimReal, "random real groups of the same sizes"),
        };
        if (Untrained is { } u) rows.Add(("fid (untrained UNet)", u.Fid, "same prompts, seeds and sampler"));
        if (Trained.Adherence is { } a)
        {
            rows.Add(("adherence mean AUC", a.MeanAuc, "target >= 0.85"));
            rows.Add(("adherence min AUC", a.Findings.Where(f => double.IsFinite(f.Auc)).Select(f => f.Auc).DefaultIfEmpty(double.NaN).Min(), "target >= 0.75 for each finding"));
        }
        if (JudgeCeiling is { } c)
            rows.Add(("judge ceiling mean AUC (real images)", c.MeanAuc, $"{c.Images} real held-out images showing exactly what each prompt names, scored as if generated"));
        if (MatchedFid is double mf)
            rows.Add(("fid (trained, matched findings)", mf, $"against those {MatchedFidImages} real images, as many generated images per prompt"));
        if (Paraphrase is { } p)
            rows.Add(("adherence mean AUC (paraphrase prompts)", p.MeanAuc, $"{p.Images} images of prompts phrased apart from the report writer; target: as high as the writer's"));
        if (Laterality is { } l)
        {
            rows.Add(("laterality accuracy", l.Accuracy, $"{l.Images} images prompted with one finding on one side; target >= 0.9"));
            rows.Add(("laterality accuracy (finding seen)", l.SeenAccuracy, $"{l.Findings.Sum(f => f.Seen)} of them where the finding judge sees the finding"));
            if (l.ReliableImages > 0)
                rows.Add(("laterality accuracy (side judge reliable)", l.ReliableAccuracy,
                    $"{l.ReliableImages} of them, findings whose side the side judge reads with accuracy >= {LateralityResult.ReliableJudgeAccuracy} on real phantoms"));
        }
        if (ParaphraseLaterality is { } pl)
            rows.Add(("laterality accuracy (paraphrase prompts)", pl.Accuracy, $"{pl.Images} images"));
        foreach (var s in Samplers) rows.Add(($"fid {s.Sampler}", s.Fid, $"{SamplerComparisonImages} images, {s.Seconds:F0} s"));
        if (Samplers.Count == 2) rows.Add(("sampler fid gap", SamplerFidGap, "fast sampler's FID relative to DDPM; target <= +10%"));
        return new DataFrame(new StringDataFrameColumn("metric", rows.Select(r => r.Metric)),
            new DoubleDataFrameColumn("value", rows.Select(r => r.Value)), new StringDataFrameColumn("note", rows.Select(r => r.Note)));
    }

    /// <summary>The result as indented JSON (NaN as the string "NaN").</summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        trained = JsonDocument.Parse(Trained.ToJson()).RootElement,
        untrained = Untrained is null ? (JsonElement?)null : JsonDocument.Parse(Untrained.ToJson()).RootElement,
        paraphrase_adherence = Paraphrase is null ? (JsonElement?)null : JsonDocument.Parse(Paraphrase.ToJson()).RootElement,
        judge_ceiling = JudgeCeiling is null ? (JsonElement?)null : JsonDocument.Parse(JudgeCeiling.ToJson()).RootElement,
        judge_ceiling_short_prompts = JudgeCeilingShortPrompts,
        fid_matched = MatchedFid,
        fid_matched_images = MatchedFidImages,
        laterality = Laterality is null ? (JsonElement?)null : JsonDocument.Parse(Laterality.ToJson()).RootElement,
        paraphrase_laterality = ParaphraseLaterality is null ? (JsonElement?)null : JsonDocument.Parse(ParaphraseLaterality.ToJson()).RootElement,
        samplers = Samplers,
        sampler_comparison_images = SamplerComparisonImages,
        sampler_fid_gap = SamplerFidGap,
        sample_images_per_second = SampleImagesPerSecond,
        options = new { Options.ImagesPerPrompt, Options.ParaphraseImagesPerPrompt, Options.GuidanceScale, Options.Steps, Scheduler = Options.Scheduler.ToString(), Options.Seed, Options.DdpmSteps },
    }, DiffusionJson.Options);
}

/// <summary>
/// Evaluates a trained text-to-CXR pipeline as RoentGen did, with the proxy classifier standing in for the CXR
/// networks: prompt adherence per finding, FID/KID against real held-out images, MS-SSIM diversity, the same numbers
/// for an untrained UNet as the floor, and the fast sampler's FID against a many-step DDPM reference.
/// </summary>
public static class DiffusionEvaluation
{
    /// <summary>Runs the evaluation.</summary>
    /// <param name="pipeline">The trained pipeline.</param>
    /// <param name="proxy">The finding classifier (features and scores).</param>
    /// <param name="real">Real held-out images (N, 1, H, W) in [−1, 1] at the pipeline's image size.</param>
    /// <param name="options">Settings (null: defaults).</param>
    /// <param name="log">Receives one line per stage.</param>
    /// <param name="samples">The trained model's evaluation images (N, 1, H, W), already sampled with these options (by
    /// <see cref="EvaluationSampleShards"/>, one per expanded prompt); null samples them here. With given samples the
    /// result's <see cref="DiffusionEvaluationResult.SampleImagesPerSecond"/> is 0 (the time was spent elsewhere).</param>
    /// <param name="sides">A side judge: scores the laterality of the main and paraphrase sets (null: skipped).</param>
    /// <param name="sideJudgeAccuracy">The side judge's own accuracy per finding on real held-out images, shown beside it.</param>
    /// <param name="realLabels">Labels (N, 14) of <paramref name="real"/>: the judge's ceiling for adherence is measured on
    /// them (<see cref="DiffusionEvaluationResult.JudgeCeiling"/>); null skips it.</param>
    /// <exception cref="ArgumentException">The given samples are not one per expanded prompt.</exception>
    public static DiffusionEvaluationResult Run(TextToImagePipeline pipeline, ProxyFindingClassifier proxy, Tensor real,
        DiffusionEvaluationOptions? options = null, Action<string>? log = null, Tensor? samples = null,
        LateralityJudge? sides = null, IReadOnlyDictionary<Data.Observation, double>? sideJudgeAccuracy = null, Tensor? realLabels = null)
    {
        var o = options ?? new DiffusionEvaluationOptions();
        if (o.ImagesPerPrompt < 1) throw new ArgumentOutOfRangeException(nameof(options), o.ImagesPerPrompt, "ImagesPerPrompt must be at least 1");
        if (o.ParaphraseImagesPerPrompt < 1) throw new ArgumentOutOfRangeException(nameof(options), o.ParaphraseImagesPerPrompt, "ParaphraseImagesPerPrompt must be at least 1");
        log ??= _ => { };
        var prompts = o.Prompts ?? PromptAdherence.DefaultPrompts;
        var expanded = prompts.SelectMany(p => Enumerable.Repeat(p, o.ImagesPerPrompt)).ToList();
        var texts = expanded.Select(p => p.Text).ToList();
        var request = new SampleRequest
        {
            Prompts = texts, GuidanceScale = o.GuidanceScale, Steps = o.Steps, Scheduler = o.Scheduler, Seed = o.Seed, BatchSize = o.BatchSize,
        };

        // The real images' features are the same for every comparison: compute them once.
        using var fReal = proxy.Features(real);
        Tensor Features(Tensor x) => ReferenceEquals(x, real) ? fReal.alias() : proxy.Features(x);
        if (samples is not null && samples.shape[0] != texts.Count)
            throw new ArgumentException($"{samples.shape[0]} given evaluation samples for {texts.Count} expanded prompts ({prompts.Count} prompts x {o.ImagesPerPrompt})", nameof(samples));
        var sw = Stopwatch.StartNew();
        var images = samples ?? pipeline.SampleWithProgress(request, "evaluation samples");
        double ips = samples is null ? texts.Count / sw.Elapsed.TotalSeconds : 0;
        var trained = GenerationEvaluation.Run(real, images, expanded, Features, proxy);
        log($"trained: FID {trained.Fid:F2}, adherence mean AUC {trained.Adherence?.MeanAuc:F3} ({texts.Count} images, {ips:F1} images/s)");
        LateralityResult? Sides(Tensor imgs, IReadOnlyList<AdherencePrompt> ps)
        {
            if (sides is null) return null;
            using var scope = NewDisposeScope();
            return LateralityJudge.Score(sides.Predict(imgs), ps, proxy.Predict(imgs), sideJudgeAccuracy);
        }
        PromptAdherenceResult? ceiling = null;
        IReadOnlyList<string> ceilingShort = [];
        if (realLabels is not null)
        {
            try
            {
                (ceiling, ceilingShort) = PromptAdherence.JudgeCeiling(real, realLabels, prompts, proxy, o.ImagesPerPrompt);
                log($"judge ceiling: real images showing what the prompts name score mean AUC {ceiling.MeanAuc:F3} ({ceiling.Images} images"
                    + (ceilingShort.Count > 0 ? $"; {ceilingShort.Count} prompts had fewer than {o.ImagesPerPrompt}" : "") + ")");
            }
            catch (InvalidOperationException ex) { log($"judge ceiling skipped: {ex.Message}"); }   // too few real images (tiny runs)
        }
        double? matchedFid = null;
        int matchedImages = 0;
        if (ceiling is not null)
        {
            using var scope = NewDisposeScope();
            var (matches, _) = PromptAdherence.MatchingImages(realLabels!, prompts, o.ImagesPerPrompt);
            // The k-th real image of prompt p is paired with generated image p·ImagesPerPrompt + k (the expanded set is prompt-major).
            var counts = new int[prompts.Count];
            var genIdx = matches.Select(m => (long)m.Prompt * o.ImagesPerPrompt + counts[m.Prompt]++).ToArray();
            using var fr = fReal.index_select(0, tensor(matches.Select(m => m.Image).ToArray()));
            using var fg = proxy.Features(images.index_select(0, tensor(genIdx)));
            matchedFid = FrechetDistance.Compute(fr, fg);
            matchedImages = matches.Count;
            log($"FID against real images with the prompts' own findings: {matchedFid:F2} ({matchedImages} images a side; against all held-out images {trained.Fid:F2})");
        }
        var laterality = Sides(images, expanded);
        if (laterality is not null) log($"laterality: {laterality.Accuracy:P1} of {laterality.Images} side-prompted images on the named side ({laterality.SeenAccuracy:P1} where the judge sees the finding)");

        GenerationEvaluationResult? untrained = null;
        if (o.UntrainedBaseline)
        {
            using var scope = NewDisposeScope();
            var randomUnet = new UNet2DConditionModel(pipeline.Unet.Config);
            var baseline = new TextToImagePipeline(pipeline.Vae, randomUnet, pipeline.TextEncoder, pipeline.Tokenizer, pipeline.Schedule, pipeline.LatentSize, pipeline.MaxTokens)
            {
                Precision = pipeline.Precision, TrimNativeHeapEvery = pipeline.TrimNativeHeapEvery,   // sampled as the trained model is
            };
            untrained = GenerationEvaluation.Run(real, baseline.SampleWithProgress(request, "untrained baseline"), expanded, Features, proxy);
            log($"untrained UNet: FID {untrained.Fid:F2}");
        }

        var samplers = new List<SamplerFid>();
        int m = Math.Min(o.SamplerComparisonImages, texts.Count);
        if (m >= 2)
        {
            // Every k-th image of the prompt set, so the subset spans all prompts.
            var pick = Enumerable.Range(0, m).Select(i => (int)((long)i * texts.Count / m)).ToList();
            var subset = pick.Select(i => texts[i]).ToList();
            foreach (var (kind, steps) in new[] { (o.Scheduler, o.Steps), (SchedulerKind.Ddpm, o.DdpmSteps) })
            {
                using var scope = NewDisposeScope();
                var t0 = Stopwatch.StartNew();
                // Both samplers start from the same noise (same seeds), so the comparison is paired.
                var imgs = pipeline.SampleWithProgress(request with { Prompts = subset, Scheduler = kind, Steps = steps, Seed = o.Seed + 1_000_000 }, $"{NoiseScheduler.KindName(kind)} {steps} steps");
                double secs = t0.Elapsed.TotalSeconds;
                var fGen = proxy.Features(imgs);
                var name = $"{NoiseScheduler.KindName(kind)} {steps}";
                samplers.Add(new SamplerFid(name, FrechetDistance.Compute(fReal, fGen),
                    KernelInceptionDistance.Compute(fReal, fGen, 50, Math.Min(m, (int)real.shape[0]), 0).Mean, secs));
                log($"{name}: FID {samplers[^1].Fid:F2} on {m} images ({secs:F0} s)");
            }
        }

        PromptAdherenceResult? paraphrase = null;
        LateralityResult? paraphraseLaterality = null;
        if (o.ParaphrasePrompts is { Count: > 0 } pp)
        {
            using var scope = NewDisposeScope();
            var ppExpanded = pp.SelectMany(p => Enumerable.Repeat(p, o.ParaphraseImagesPerPrompt)).ToList();
            // Sampled last, so every number above is what it was without this set.
            var ppImages = pipeline.SampleWithProgress(request with { Prompts = ppExpanded.Select(p => p.Text).ToList(), Seed = o.Seed + DiffusionEvaluationOptions.ParaphraseSeedOffset },
                "paraphrase prompts");
            // The main set's findings, so both tables have the same rows.
            var rowsOf = trained.Adherence?.Findings.Select(f => f.Finding).ToList();
            paraphrase = PromptAdherence.Score(ppImages, ppExpanded, proxy, rowsOf);
            log($"paraphrase prompts: adherence mean AUC {paraphrase.MeanAuc:F3} ({ppExpanded.Count} images)");
            var least = paraphrase.LeastFollowed(3);
            if (least.Count > 0) log("least followed: " + string.Join("; ", least.Select(q => FormattableString.Invariant($"\"{q.Prompt}\" {q.Auc:F2}"))));
            paraphraseLaterality = Sides(ppImages, ppExpanded);
            if (paraphraseLaterality is not null) log($"paraphrase laterality: {paraphraseLaterality.Accuracy:P1} of {paraphraseLaterality.Images} images");
        }

        return new DiffusionEvaluationResult
        {
            Trained = trained, Paraphrase = paraphrase, Untrained = untrained, Samplers = samplers, SamplerComparisonImages = m >= 2 ? m : 0,
            Options = o, SampleImagesPerSecond = ips, Images = images, ImagePrompts = texts,
            Laterality = laterality, ParaphraseLaterality = paraphraseLaterality, JudgeCeiling = ceiling, JudgeCeilingShortPrompts = ceilingShort,
            MatchedFid = matchedFid, MatchedFidImages = matchedImages,
        };
    }

}

/// <summary>JSON settings of the diffusion results.</summary>
internal static class DiffusionJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };
}
