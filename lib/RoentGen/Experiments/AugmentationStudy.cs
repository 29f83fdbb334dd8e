using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using RoentGen.Platform;
using RoentGen.Training;
using static TorchSharp.torch;

namespace RoentGen.Experiments;

/// <summary>The training sets compared by <see cref="AugmentationStudy"/>.</summary>
public enum AugmentationArm
{
    /// <summary>(1) The N real training phantoms only.</summary>
    Real,
    /// <summary>(2) The N real phantoms plus one synthetic image generated from each of their reports (2N images).</summary>
    RealPlusSynthetic,
    /// <summary>(3) Synthetic images only: k generated from each of the N training reports (k·N images), no real image.</summary>
    Synthetic,
}

/// <summary>
/// The budget and setup of <see cref="AugmentationStudy"/>: the training-set sizes N, the classifier seeds, the
/// synthetic multiple k, the classifier (one architecture and one training budget for every arm), the validation and
/// test phantoms, the sampler that draws the synthetic images, the judge (adherence and the audit's features), the
/// memorization audit, and the generator trained when none is given. Round-trips through JSON (written to results.json).
/// </summary>
public sealed record AugmentationStudyConfig
{
    /// <summary>Real training-set sizes N (phantoms 0..N−1 of the generator's training world); each size is a separate study.</summary>
    public IReadOnlyList<int> Sizes { get; init; } = [250, 1000];
    /// <summary>Classifier seeds (initialisation, batch order, augmentation); the data are the same for every seed, so runs pair by seed.</summary>
    public IReadOnlyList<long> Seeds { get; init; } = [0, 1, 2, 3, 4];
    /// <summary>k: the purely synthetic arm has k images per training report (k·N in all).</summary>
    public int SyntheticMultiple { get; init; } = 4;
    /// <summary>The downstream classifier's shape (<see cref="ProxyFindingClassifier"/>; its input size becomes the generator's image size).</summary>
    public ProxyClassifierConfig Classifier { get; init; } = new();
    /// <summary>The downstream classifier's training (the same steps, batch and learning rate for every arm; its Seed is set per run).</summary>
    public ProxyTrainingOptions Training { get; init; } = new() { Steps = 600, BatchSize = 64 };
    /// <summary>Validation phantoms from the training world (indices after both the largest N and the generator's training images): the thresholds for F1.</summary>
    public int ValidationImages { get; init; } = 500;
    /// <summary>Test phantoms from another world (<see cref="WorldSeeds.HeldOut"/> of the training world).</summary>
    public int TestImages { get; init; } = 1000;
    /// <summary>Sampler (DPM-Solver++) steps of the synthetic images.</summary>
    public int SamplerSteps { get; init; } = 20;
    /// <summary>Classifier-free guidance scale of the synthetic images.</summary>
    public double GuidanceScale { get; init; } = 4;
    /// <summary>Images per sampler call.</summary>
    public int SampleBatch { get; init; } = 16;
    /// <summary>Base noise seed: synthetic copy c of report i starts from the noise of seed SampleSeed + c·1,000,000 + i.</summary>
    public long SampleSeed { get; init; } = 5000;
    /// <summary>Phantoms the judge (adherence and the audit's features) is trained on, from <see cref="WorldSeeds.Judge"/> of the training world.</summary>
    public int JudgeImages { get; init; } = 4000;
    /// <summary>Judge training steps.</summary>
    public int JudgeSteps { get; init; } = 600;
    /// <summary>Reports whose k synthetic copies are compared for diversity (MS-SSIM within a report's copies).</summary>
    public int DiversityGroups { get; init; } = 50;
    /// <summary>
    /// Generated images audited for memorization (copy 0 of every report first, then copy 1, ...), and at most as many
    /// held-out real images for the baseline; null: every generated image (and every test image).
    /// </summary>
    public int? AuditImages { get; init; }
    /// <summary>The memorization audit's thresholds.</summary>
    public MemorizationOptions Memorization { get; init; } = new();
    /// <summary>
    /// The generator trained inside the output folder when none is given: a small latent diffusion model on the
    /// phantoms (its world is the study's training world), with the plain loss the study's results were measured with
    /// (before Quick took the finding-weighted one).
    /// </summary>
    public LdmExperimentConfig Generator { get; init; } = LdmExperimentConfig.Quick with { TrainImages = 2000, VaeSteps = 300, LdmSteps = 800, TextPretrainSteps = 0, TextPretrainPhrases = 0, FindingLossWeight = null };

    /// <summary>Names of the presets.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick"];

    /// <summary>The CPU preset: N = 250 and 1,000, five seeds, k = 4, 600 classifier steps, 64 px.</summary>
    public static AugmentationStudyConfig Quick { get; } = new();

    /// <summary>A seconds-long preset for tests: N = 16, two seeds, k = 2, the tiny generator at 32 px, a narrow classifier, a few steps everywhere.</summary>
    public static AugmentationStudyConfig Tiny { get; } = new()
    {
        Sizes = [16], Seeds = [0, 1], SyntheticMultiple = 2, Classifier = new ProxyClassifierConfig { Channels = [8, 16], FeatureWidth = 16, NormGroups = 4 },
        Training = new ProxyTrainingOptions { Steps = 3, BatchSize = 8, WarmupSteps = 1 },
        ValidationImages = 12, TestImages = 16, SamplerSteps = 2, SampleBatch = 32, JudgeImages = 32, JudgeSteps = 3, DiversityGroups = 4,
        AuditImages = 16, Memorization = new MemorizationOptions { ClosestPairs = 4 }, Generator = LdmExperimentConfig.Tiny,
    };

    /// <summary>A preset by name.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static AugmentationStudyConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Tiny,
        "quick" => Quick,
        _ => throw new ArgumentException($"unknown augment-study preset '{name}'; known presets: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and what was expected.</exception>
    public void Validate()
    {
        if (Sizes is null || Sizes.Count == 0) throw new ArgumentException("Sizes needs at least one training-set size, e.g. [250, 1000]");
        foreach (var n in Sizes)
            if (n < 2 || n > AugmentationStudy.MaxSize) throw new ArgumentException($"Sizes: {n} is outside 2..{AugmentationStudy.MaxSize}");
        if (Sizes.Distinct().Count() != Sizes.Count) throw new ArgumentException($"Sizes repeats a size: {string.Join(", ", Sizes)}");
        if (Seeds is null || Seeds.Count == 0) throw new ArgumentException("Seeds needs at least one classifier seed, e.g. [0, 1, 2, 3, 4]");
        if (Seeds.Distinct().Count() != Seeds.Count) throw new ArgumentException($"Seeds repeats a seed: {string.Join(", ", Seeds)}");
        if (SyntheticMultiple < 1 || SyntheticMultiple > 100) throw new ArgumentException($"SyntheticMultiple (k) must be 1..100, got {SyntheticMultiple}");
        Classifier.Validate();
        if (Training.Steps < 1 || Training.BatchSize < 1) throw new ArgumentException($"Training.Steps and Training.BatchSize must be at least 1, got {Training.Steps} and {Training.BatchSize}");
        if (ValidationImages < 2) throw new ArgumentException($"ValidationImages must be at least 2, got {ValidationImages}");
        if (TestImages < 2) throw new ArgumentException($"TestImages must be at least 2, got {TestImages}");
        if (SamplerSteps < 1) throw new ArgumentException($"SamplerSteps must be at least 1, got {SamplerSteps}");
        if (!double.IsFinite(GuidanceScale) || GuidanceScale < 0) throw new ArgumentException($"GuidanceScale must be a finite number >= 0, got {GuidanceScale}");
        if (SampleBatch < 1) throw new ArgumentException($"SampleBatch must be at least 1, got {SampleBatch}");
        if (JudgeImages < 1 || JudgeSteps < 1) throw new ArgumentException($"JudgeImages and JudgeSteps must be at least 1, got {JudgeImages} and {JudgeSteps}");
        if (DiversityGroups < 1) throw new ArgumentException($"DiversityGroups must be at least 1, got {DiversityGroups}");
        if (AuditImages is < 1) throw new ArgumentException($"AuditImages must be at least 1 (or null: every generated image), got {AuditImages}");
        Memorization.Validate();
    }

    /// <summary>Reads a config file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not an AugmentationStudyConfig.</exception>
    public static AugmentationStudyConfig Load(string path) => RunFolder.ReadConfig<AugmentationStudyConfig>(path, "augmentation study config");
}

/// <summary>The generator a study samples from: its folder and the experiment it was trained as.</summary>
/// <param name="Dir">The model folder (full path).</param>
/// <param name="Experiment">Its experiment.json: image size, training world and images, prompt source.</param>
/// <param name="TrainedHere">True when the study trained it inside its output folder.</param>
public sealed record AugmentationGenerator(string Dir, LdmExperimentConfig Experiment, bool TrainedHere);

/// <summary>
/// RoentGen's downstream claim (Chambon et al. 2022: a classifier trained on a fixed real training set augmented with
/// synthetic images improved by 5 %, and one trained on a larger, purely synthetic set by 3 %), at this project's scale:
/// the same small CNN (<see cref="ProxyFindingClassifier"/>) for the 14 observations trained on each
/// <see cref="AugmentationArm"/>, with the synthetic images generated from the real training set's own reports, tested on
/// phantoms of another world, over several seeds; next to it the generator's adherence and diversity on those images
/// and a memorization audit (<see cref="Evaluation.Memorization"/>).
/// <para>
/// Layout of the output folder: generator/ (the model trained when none is given), study/ (the pinned settings),
/// synthetic/copy-C/image-IIIIII.png (the cached synthetic images), judge/, quality-nN.json, runs/size-N/ARM/seed-S.json
/// (one file per finished classifier run, written atomically), memorization-nN.json (N the largest size), results.json. A second call skips
/// everything that is written and continues the rest.
/// </para>
/// </summary>
public static class AugmentationStudy
{
    /// <summary>File name of the results inside the output folder.</summary>
    public const string ResultFile = "results.json";
    /// <summary>The largest real training-set size; validation phantoms start beyond it (or beyond the generator's training set).</summary>
    public const int MaxSize = 1_000_000;
    /// <summary>Folder of the generator trained when none is given.</summary>
    public const string GeneratorFolder = "generator";
    /// <summary>Folder of the synthetic image cache.</summary>
    public const string SyntheticFolder = "synthetic";
    /// <summary>Folder of the judge.</summary>
    public const string JudgeFolder = "judge";
    /// <summary>
    /// The generator's adherence and diversity on the synthetic images of the largest size <paramref name="nMax"/>: one
    /// file per largest size, so a study extended with a larger size measures again instead of reading the smaller one.
    /// </summary>
    public static string QualityFile(int nMax) => $"quality-n{nMax}.json";
    /// <summary>The memorization audit of the synthetic images of the largest size <paramref name="nMax"/> (one file per largest size).</summary>
    public static string MemorizationFile(int nMax) => $"memorization-n{nMax}.json";
    /// <summary>Folder of the classifier runs.</summary>
    public const string RunsFolder = "runs";

    /// <summary>Every arm, in table order.</summary>
    public static IReadOnlyList<AugmentationArm> Arms { get; } = [AugmentationArm.Real, AugmentationArm.RealPlusSynthetic, AugmentationArm.Synthetic];

    /// <summary>An arm's short name (its folder name too): real, real-synthetic, synthetic.</summary>
    public static string Key(AugmentationArm arm) => arm switch
    {
        AugmentationArm.Real => "real",
        AugmentationArm.RealPlusSynthetic => "real-synthetic",
        AugmentationArm.Synthetic => "synthetic",
        _ => throw new ArgumentOutOfRangeException(nameof(arm), arm, "unknown arm"),
    };

    /// <summary>An arm in words, for tables.</summary>
    public static string Describe(AugmentationArm arm, int k) => arm switch
    {
        AugmentationArm.Real => "(1) real N",
        AugmentationArm.RealPlusSynthetic => "(2) real N + synthetic N",
        AugmentationArm.Synthetic => $"(3) synthetic {k}·N",
        _ => throw new ArgumentOutOfRangeException(nameof(arm), arm, "unknown arm"),
    };

    /// <summary>The result file of one classifier run.</summary>
    public static string RunPath(string outDir, int size, AugmentationArm arm, long seed) =>
        Path.Combine(outDir, RunsFolder, $"size-{size}", Key(arm), $"seed-{seed}.json");

    /// <summary>The cached synthetic image of report <paramref name="index"/>, copy <paramref name="copy"/>.</summary>
    public static string SyntheticPath(string outDir, int copy, int index) =>
        Path.Combine(outDir, SyntheticFolder, $"copy-{copy}", string.Create(CultureInfo.InvariantCulture, $"image-{index:D6}.png"));

    /// <summary>
    /// The generator in <paramref name="dir"/>: a trained experiment folder (model and experiment.json, as
    /// <c>roentgen train</c>, the quickstart and every <c>roentgen adapt</c> variant write), or a <c>roentgen adapt</c>
    /// output folder (it holds foundation/), whose RoentGen variant (b) of its lowest seed is taken.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="ArgumentException">The folder holds no trained model, or a model without its experiment.json; the message says what was expected.</exception>
    public static AugmentationGenerator ResolveGenerator(string dir)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dir);
        var full = Path.GetFullPath(dir);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"--generator {dir}: no such folder");
        if (!LatentDiffusionModel.Exists(full) && Directory.Exists(Path.Combine(full, DomainAdaptation.FoundationFolder)))
        {
            var adapted = Directory.GetDirectories(full, "seed-*")
                .Select(d => (Dir: Path.Combine(d, DomainAdaptation.Key(AdaptationVariant.UnetAndText)), Seed: long.TryParse(Path.GetFileName(d)[5..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : long.MaxValue))
                .Where(x => LatentDiffusionModel.Exists(x.Dir)).OrderBy(x => x.Seed).FirstOrDefault();
            if (adapted.Dir is null)
                throw new ArgumentException($"--generator {dir}: a roentgen adapt folder, but no finished seed-S/{DomainAdaptation.Key(AdaptationVariant.UnetAndText)} model in it; finish the adapt run or pass a model folder");
            full = adapted.Dir;
        }
        if (!LatentDiffusionModel.Exists(full))
            throw new ArgumentException($"--generator {dir}: not a trained latent-diffusion folder (expected model_index.json with vae/, tokenizer/, text_encoder/, unet/ and {LatentDiffusionRuns.ConfigFile}, as roentgen train, quickstart or adapt write)");
        if (!File.Exists(Path.Combine(full, LatentDiffusionRuns.ConfigFile)))
            throw new ArgumentException($"--generator {dir}: holds a model but no {LatentDiffusionRuns.ConfigFile}; the study reads the generator's image size, training world and prompt source from it");
        return new AugmentationGenerator(full, LatentDiffusionRuns.LoadConfig(full), false);
    }

    /// <summary>
    /// Runs (or resumes) the study into <paramref name="outDir"/> and writes results.json there.
    /// </summary>
    /// <param name="config">The budget (its Sizes and Seeds say which runs to do).</param>
    /// <param name="outDir">Output folder.</param>
    /// <param name="generatorDir">The generator (see <see cref="ResolveGenerator"/>); null trains <see cref="AugmentationStudyConfig.Generator"/> in outDir/generator.</param>
    /// <param name="log">Receives one line per stage and per finished run.</param>
    /// <param name="cancellation">Stops between classifier runs, sampler batches and training steps; a later call resumes.</param>
    /// <exception cref="ArgumentException">A config out of range, or a bad generator folder.</exception>
    /// <exception cref="RunStateException">The output folder holds a study of other settings (the message names the first differing field).</exception>
    public static AugmentationStudyResult Run(AugmentationStudyConfig config, string outDir, string? generatorDir = null,
        Action<string>? log = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        log ??= Console.WriteLine;
        outDir = Path.GetFullPath(outDir);
        var clock = Stopwatch.StartNew();

        // 1. The generator: given, or trained here (resumable). Only its description first: the folder's pin is checked
        //    before anything loads or trains, so a call that would be refused does not train a generator first.
        var generator = generatorDir is not null
            ? ResolveGenerator(generatorDir)
            : new AugmentationGenerator(Path.Combine(outDir, GeneratorFolder), config.Generator, true);
        var gen = generator.Experiment;
        int size = gen.ImageSize;
        long world = gen.DataSeed;
        int nMax = config.Sizes.Max();
        int k = config.SyntheticMultiple;
        // The classifier reads the generator's image size; results.json records the config it really trained with.
        config = config with { Classifier = config.Classifier with { InputSize = size } };
        var classifier = config.Classifier;
        classifier.Validate();

        // 2. Pin what the cached files depend on; sizes and seeds may change between calls.
        var pin = new StudyPin(config with { Sizes = [], Seeds = [] }, generator.Dir);
        var studyFolder = RunFolder.Open(Path.Combine(outDir, "study"), "augment-study", pin);
        // The pin names the generator by folder; its weights are pinned too (a file of their own, so folders made before
        // this was recorded still open), since a folder retrained in place keeps its path.
        if (!generator.TrainedHere)
            StudyPins.CheckAndRecord(Path.Combine(outDir, "study", WeightsPinFile), new Dictionary<string, string?> { ["generator weights"] = ModelFingerprint.Of(generator.Dir) },
                "the --generator folder's weights changed since the synthetic images were cached (retrained or overwritten in place): use another --out");
        studyFolder.Start();

        LatentDiffusionModel model;
        if (!generator.TrainedHere)
        {
            log($"generator: {generator.Dir}");
            model = LatentDiffusionModel.Load(generator.Dir);
        }
        else
        {
            var g = config.Generator;
            log($"generator: training {g.TrainImages} phantoms of world {g.DataSeed}, VAE {g.VaeSteps} + denoiser {g.LdmSteps} steps -> {generator.Dir}");
            var trained = LatentDiffusionRuns.EnsureTrained(g, LdmTrainingData.FromPhantoms(g), generator.Dir, new LdmRunOptions { Cancellation = cancellation });
            log(trained.Skipped ? "generator: finished before, loaded" : $"generator: trained {trained.StepsTrained} denoiser steps");
            model = trained.Model;
        }

        // 3. The data: real training phantoms 0..N_max−1 and validation phantoms of the generator's world, test phantoms of another world.
        log($"data: {nMax} training and {config.ValidationImages} validation phantoms of world {world}, {config.TestImages} test phantoms of world {WorldSeeds.HeldOut(world)}, {size} px");
        var trainRecords = PhantomRecords.Create(new PhantomOptions { Size = Math.Max(64, size), Seed = world }, nMax, 0, masks: false).Prefetch();
        var (realImages, realLabels) = ProxyFindingClassifier.RecordData(trainRecords, size);                       // (N_max, 1, S, S), (N_max, 14)
        var prompts = trainRecords.Select(r => LdmTrainingData.PromptOf(r.Report, gen.Prompt)).ToList();
        // Beyond every allowed size (Validate caps them at 1,000,000) rather than beyond this call's largest, so a study
        // extended later with a larger size keeps the validation set (and thresholds) its finished runs were scored with.
        int validationStart = Math.Max(MaxSize, gen.TrainImages);
        var (valImages, valLabels) = ProxyFindingClassifier.PhantomData(size, validationStart, config.ValidationImages, world);
        var (testImages, testLabels) = ProxyFindingClassifier.PhantomData(size, 0, config.TestImages, WorldSeeds.HeldOut(world));

        // 4. The synthetic images, cached as PNG (read back from disk, so a resumed run sees exactly what a fresh one does).
        var synthetic = EnsureSynthetic(config, generator, model, prompts, outDir, log, cancellation);            // [copy] (N_max, 1, S, S)

        // 5. The judge and the generator's adherence and diversity on these images.
        var judge = ProxyFindingClassifier.LoadOrTrain(Path.Combine(outDir, JudgeFolder), size, config.JudgeImages, config.JudgeSteps, WorldSeeds.Judge(world));
        var qualityPath = Path.Combine(outDir, QualityFile(nMax));
        var quality = ReadJson<GeneratorQuality>(qualityPath)
                      ?? WriteJson(qualityPath, GeneratorQuality.Measure(synthetic, realImages, prompts, judge, config.DiversityGroups));
        log(string.Create(CultureInfo.InvariantCulture,
            $"generator quality: adherence {quality.SyntheticAdherence:F3} on synthetic vs {quality.RealAdherence:F3} on the real images of the same reports; MS-SSIM within a report's copies {quality.SameReportMsSsim:F3}, across real images {quality.RealMsSsim:F3}"));

        // 6. The classifier runs: every size, seed and arm; a finished one is read back.
        var runs = new List<ArmRun>();
        foreach (var n in config.Sizes)
            foreach (var seed in config.Seeds)
                foreach (var arm in Arms)
                {
                    cancellation.ThrowIfCancellationRequested();
                    var path = RunPath(outDir, n, arm, seed);
                    if (ReadJson<ArmRun>(path) is { } done)
                    {
                        log($"size {n}, seed {seed}, {Key(arm)}: finished before, macro AUC {done.MacroAuc.ToString("F3", CultureInfo.InvariantCulture)}");
                        runs.Add(done);
                        continue;
                    }
                    using var scope = NewDisposeScope();
                    var (images, labels) = TrainingSet(arm, n, k, realImages, realLabels, synthetic);
                    var run = TrainAndScore(arm, n, seed, images, labels, classifier, config.Training, valImages, valLabels, testImages, testLabels, cancellation);
                    WriteJson(path, run);
                    log(string.Create(CultureInfo.InvariantCulture,
                        $"size {n}, seed {seed}, {Key(arm)}: wrote {path} (macro AUC {run.MacroAuc:F3}, macro F1 {run.MacroF1:F3}, {run.TrainImages} images, {run.Seconds:F0} s)"));
                    runs.Add(run);
                }

        // 7. The memorization audit: the synthetic images of the largest N against every image the generator trained on
        //    (phantoms 0.. of its world: the N real images of their reports first, then the rest of its training set).
        var auditPath = Path.Combine(outDir, MemorizationFile(nMax));
        int searched = Math.Max(nMax, gen.TrainImages);
        var audit = ReadJson<MemorizationAudit>(auditPath);
        if (audit is not null && audit.TrainingImages != searched)
        {
            log($"memorization audit: the cached one searched {audit.TrainingImages} training images, the generator trained on {searched}: auditing again");
            audit = null;
        }
        if (audit is null)
        {
            using var scope = NewDisposeScope();
            int generated = Math.Min(config.AuditImages ?? int.MaxValue, k * nMax), heldOut = Math.Min(config.AuditImages ?? int.MaxValue, config.TestImages);
            log($"memorization audit: {generated} synthetic and {heldOut} held-out real images against the generator's {searched} training images");
            var training = searched == nMax ? realImages : cat([realImages, ProxyFindingClassifier.PhantomData(size, nMax, searched - nMax, world).Images], 0);
            // The library's progress reporter (a console bar in the CLI, a display in a notebook): minutes at the quick preset.
            using var progress = ProgressReporter.Start("memorization audit", generated + heldOut, "images");
            audit = WriteJson(auditPath, Memorization.Audit(AuditedSynthetic(synthetic, generated), training,
                testImages.narrow(0, 0, heldOut), judge.Features, config.Memorization, (done, _) => progress.Advance(done - progress.Done)));
        }
        log(string.Create(CultureInfo.InvariantCulture,
            $"memorization: near-duplicates (SSIM >= {audit.Options.SsimThreshold}) {audit.GeneratedRate.SsimRate:P1} of synthetic vs {audit.RealRate.SsimRate:P1} of held-out real; closest pair SSIM {audit.ClosestPairs.FirstOrDefault()?.Ssim ?? double.NaN:F3}"));

        var info = new GeneratorInfo(generator.Dir, generator.TrainedHere, size, world, gen.TrainImages, gen.LdmSteps, gen.Prompt.ToString(),
            validationStart, WorldSeeds.HeldOut(world));
        var result = AugmentationStudyResult.Build(config, info, runs, quality, audit, clock.Elapsed.TotalSeconds);
        result.Save(Path.Combine(outDir, ResultFile));
        log($"wrote {Path.Combine(outDir, ResultFile)} ({clock.Elapsed.TotalSeconds:F0} s)");
        return result;
    }

    /// <summary>
    /// The synthetic images the audit looks at: copy 0 of every report first, then copy 1, ..., the first
    /// <paramref name="count"/> of them (indices of the result: copy · N + report).
    /// </summary>
    public static Tensor AuditedSynthetic(IReadOnlyList<Tensor> copies, int count)
    {
        ArgumentNullException.ThrowIfNull(copies);
        using var scope = NewDisposeScope();
        var all = cat(copies.ToArray(), 0);                                          // (k·N, 1, S, S)
        return all.narrow(0, 0, Math.Min(count, all.shape[0])).MoveToOuterDisposeScope();
    }

    /// <summary>The training images and targets of one arm at size <paramref name="n"/> (shares no storage it may not).</summary>
    /// <param name="arm">The arm.</param>
    /// <param name="n">Real training-set size.</param>
    /// <param name="k">Synthetic copies per report in the synthetic arm.</param>
    /// <param name="realImages">(N_max, 1, S, S) real images (the first n are used).</param>
    /// <param name="realLabels">(N_max, 14) their targets; a synthetic image takes its report's.</param>
    /// <param name="synthetic">Per copy, (N_max, 1, S, S) synthetic images in report order.</param>
    public static (Tensor Images, Tensor Labels) TrainingSet(AugmentationArm arm, int n, int k, Tensor realImages, Tensor realLabels, IReadOnlyList<Tensor> synthetic)
    {
        ArgumentNullException.ThrowIfNull(synthetic);
        if (n > realImages.shape[0]) throw new ArgumentException($"size {n} exceeds the {realImages.shape[0]} real training images loaded");
        if (arm != AugmentationArm.Real && synthetic.Count < (arm == AugmentationArm.Synthetic ? k : 1))
            throw new ArgumentException($"arm {Key(arm)} needs {(arm == AugmentationArm.Synthetic ? k : 1)} synthetic copies, got {synthetic.Count}");
        var real = realImages.narrow(0, 0, n);
        var labels = realLabels.narrow(0, 0, n);
        return arm switch
        {
            AugmentationArm.Real => (real, labels),
            AugmentationArm.RealPlusSynthetic => (cat([real, synthetic[0].narrow(0, 0, n)], 0), cat([labels, labels], 0)),                    // (2n, ...)
            AugmentationArm.Synthetic => (cat(synthetic.Take(k).Select(s => s.narrow(0, 0, n)).ToArray(), 0), cat(Enumerable.Repeat(labels, k).ToArray(), 0)),   // (k·n, ...)
            _ => throw new ArgumentOutOfRangeException(nameof(arm), arm, "unknown arm"),
        };
    }

    private static ArmRun TrainAndScore(AugmentationArm arm, int n, long seed, Tensor images, Tensor labels, ProxyClassifierConfig classifier,
        ProxyTrainingOptions training, Tensor valImages, Tensor valLabels, Tensor testImages, Tensor testLabels, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        manual_seed(seed);
        using var model = new ProxyFindingClassifier(classifier);
        model.Train(images, labels, training with { Seed = seed, OutputDir = null }, null, cancellation);
        model.eval();
        float[] Flat(Tensor t) => t.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var score = FindingClassification.Score(Flat(model.Predict(valImages)), Flat(valLabels), Flat(model.Predict(testImages)), Flat(testLabels), ProxyFindingClassifier.Outputs);
        return new ArmRun(Key(arm), n, seed, (int)images.shape[0], score.MacroAuc, score.MacroF1, score.PerFinding, clock.Elapsed.TotalSeconds);
    }

    private static List<Tensor> EnsureSynthetic(AugmentationStudyConfig config, AugmentationGenerator generator, LatentDiffusionModel model,
        IReadOnlyList<string> prompts, string outDir, Action<string> log, CancellationToken cancellation)
    {
        int n = prompts.Count, k = config.SyntheticMultiple;
        var missing = new List<(int Copy, int Index)>();
        for (int c = 0; c < k; c++)
            for (int i = 0; i < n; i++)
                if (!File.Exists(SyntheticPath(outDir, c, i))) missing.Add((c, i));
        if (missing.Count > 0)
        {
            log($"synthetic images: {missing.Count} of {k * n} to generate ({config.SamplerSteps} sampler steps, guidance {config.GuidanceScale.ToString(CultureInfo.InvariantCulture)})");
            var pipeline = model.ToPipeline();
            var clock = Stopwatch.StartNew();
            for (int b = 0; b < missing.Count; b += config.SampleBatch)
            {
                cancellation.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var batch = missing.Skip(b).Take(config.SampleBatch).ToList();
                // Each image's starting noise depends only on its report and copy, never on the batch it ran in.
                var noise = cat(batch.Select(x => pipeline.DrawNoise(1, config.SampleSeed + x.Copy * 1_000_000L + x.Index)).ToArray(), 0);   // (B, C, h, w)
                var images = pipeline.Sample(new SampleRequest
                {
                    Prompts = batch.Select(x => prompts[x.Index]).ToList(), GuidanceScale = config.GuidanceScale, Steps = config.SamplerSteps,
                    Scheduler = SchedulerKind.DpmSolverPlusPlus, Latents = noise, BatchSize = config.SampleBatch,
                });                                                                                                          // (B, 1, S, S)
                for (int j = 0; j < batch.Count; j++)
                {
                    var path = SyntheticPath(outDir, batch[j].Copy, batch[j].Index);
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    AtomicFile.WriteAllBytes(path, ImageIO.EncodePng(ImageTensors.FromTensor(images[j])));
                }
                int done = Math.Min(b + config.SampleBatch, missing.Count);
                if (done == missing.Count || (b / config.SampleBatch) % 10 == 9)
                    log(string.Create(CultureInfo.InvariantCulture, $"synthetic images: {done}/{missing.Count} ({clock.Elapsed.TotalSeconds:F0} s)"));
            }
        }
        else log($"synthetic images: all {k * n} cached");
        return Enumerable.Range(0, k).Select(c => ImageTensors.Stack(Enumerable.Range(0, n).Select(i => ImageIO.Read(SyntheticPath(outDir, c, i))))).ToList();
    }

    /// <summary>The pinned fingerprint of a given generator's weights, in study/.</summary>
    public const string WeightsPinFile = "weights.json";

    /// <summary>What the output folder pins: the settings every cached file depends on, and the generator.</summary>
    /// <param name="Config">The config without its sizes and seeds (those may change between calls).</param>
    /// <param name="Generator">The generator's folder.</param>
    public sealed record StudyPin(AugmentationStudyConfig Config, string Generator);

    internal static T? ReadJson<T>(string path) where T : class =>
        File.Exists(path) ? JsonSerializer.Deserialize<T>(File.ReadAllText(path), AugmentationStudyResult.JsonOptions) : null;

    internal static T WriteJson<T>(string path, T value)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, AugmentationStudyResult.JsonOptions));
        return value;
    }
}
