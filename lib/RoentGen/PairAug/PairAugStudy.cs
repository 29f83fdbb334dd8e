using System.Diagnostics;
using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using RoentGen.Evaluation.Probes;
using RoentGen.Methods;
using RoentGen.Platform;
using RoentGen.Training;
using static TorchSharp.torch;

namespace RoentGen.PairAug;

/// <summary>
/// PairAug's experiment (Xie et al., CVPR 2024) on phantoms: rewrite reports (offline rule-based rewriter) → InterAug
/// (new patients drawn by the text-to-CXR generator, pruned by the scorer's scaled image-text score) → IntraAug (the same
/// patient with a changed condition by prompt-to-prompt refine; <see cref="PairAugStudyConfig.RealEdits"/> of them edit the
/// real image through DDIM inversion and null-text optimisation) → hybrid pruning → CLIP-style pretraining on real-only,
/// +InterAug, +IntraAug and +both, with the same config, steps and seeds → zero-shot AUCs with bootstrap intervals and
/// linear probes at 1/10/100 % of labels, each augmented arm tested against real-only over the seeds (paired one-sided t,
/// Holm across metrics) → t-SNE of real vs synthetic images and real vs rewritten reports in the +both model's space →
/// DIR/results.json. The scorer is the real-only arm of the first seed (PairAug scores with a CLIP model pretrained on
/// real pairs). Layout of DIR (every stage written atomically, a finished one skipped by a later call):
/// <code>
/// config.json                 the pinned study config (another config in the same folder is refused)
/// pins.json                   what the cached artefacts were made with: generator, scorer seed, real sample (<see cref="PinsFile"/>)
/// generator/                  the text-to-CXR experiment (unless a generator folder was given)
/// rewrites/inter.jsonl, intra.jsonl (+ .dropped.jsonl), rewrites.json (counts; written last)
/// arms/ARM/seed-S/            a CLIP run folder (model/ is the unit ClipModel.Load reads) + eval.json
/// inter/, intra/              images/ and pairs.jsonl (written last) of each branch, stage.json with its counts
/// tsne.json, real-tb.json     the t-SNE views; the real sample's TB-vs-normal zero-shot (when the sample exists)
/// results.json                everything above in one file
/// </code>
/// </summary>
public static class PairAugStudy
{
    /// <summary>The arms, in order.</summary>
    public static IReadOnlyList<string> Arms { get; } = ["real", "inter", "intra", "both"];
    /// <summary>The results file.</summary>
    public const string ResultFile = "results.json";
    /// <summary>The evaluation file of each arm × seed folder.</summary>
    public const string EvalFile = "eval.json";
    /// <summary>
    /// The study folder's pins (<see cref="StudyPins"/>): "generator" (what drew inter/ and intra/), "scorer seed" (whose
    /// real-only CLIP pruned them and whose +both model placed the t-SNE views: the first seed) and "real sample" (the TB
    /// zero-shot cached in each arm's eval.json, or "none"). A call that names another value is refused before anything trains.
    /// </summary>
    public const string PinsFile = "pins.json";
    /// <summary>The "generator" pin of a generator passed in memory.</summary>
    public const string InMemoryGenerator = "in-memory generator";
    /// <summary>The "generator" pin of the generator trained in the study folder's generator/.</summary>
    public const string TrainedGenerator = "trained in this folder's generator/";

    /// <summary>What each arm trains on.</summary>
    public static string Describe(string arm) => arm switch
    {
        "real" => "real pairs only",
        "inter" => "real + InterAug pairs (kept)",
        "intra" => "real + IntraAug pairs (kept)",
        "both" => "real + InterAug + IntraAug pairs (kept)",
        _ => throw new ArgumentException($"unknown arm '{arm}'; arms: {string.Join(", ", Arms)}"),
    };

    /// <summary>The run folder of one arm and seed.</summary>
    public static string ArmFolder(string outDir, string arm, long seed) => Path.Combine(outDir, "arms", arm, $"seed-{seed}");

    /// <summary>
    /// Runs (or resumes) the study into <paramref name="outDir"/> and writes results.json.
    /// </summary>
    /// <param name="config">The budget.</param>
    /// <param name="outDir">The study folder.</param>
    /// <param name="seeds">VLP seeds (distinct); null: 0 … DefaultSeeds − 1.</param>
    /// <param name="generatorDir">A trained text-to-CXR folder to use instead of training one in DIR/generator.</param>
    /// <param name="realSample">The real sample's folder (labels.csv) for the TB-vs-normal zero-shot; skipped when null or absent.</param>
    /// <param name="log">One line per stage.</param>
    /// <param name="cancellation">Stops between training steps; a later call resumes.</param>
    /// <param name="generator">A generator already in memory (tests, notebooks); it replaces <paramref name="generatorDir"/> and the trained one.</param>
    /// <exception cref="ArgumentException">A repeated seed or a config out of range.</exception>
    /// <exception cref="RunStateException">The folder holds a study of another config.</exception>
    /// <exception cref="RunStateException">The folder's artefacts were made with another generator, scorer seed or real sample (<see cref="PinsFile"/>).</exception>
    public static PairAugStudyResult Run(PairAugStudyConfig config, string outDir, IReadOnlyList<long>? seeds = null, string? generatorDir = null,
        string? realSample = null, Action<string>? log = null, CancellationToken cancellation = default, TextToImagePipeline? generator = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        seeds ??= config.Seeds();
        if (seeds.Count == 0) throw new ArgumentException("give at least one seed");
        if (seeds.Distinct().Count() != seeds.Count) throw new ArgumentException($"seeds repeat: {string.Join(", ", seeds)}");
        log ??= Console.WriteLine;
        outDir = Path.GetFullPath(outDir);
        var clock = Stopwatch.StartNew();
        RunFolder.Open(outDir, "pairaug-study", config).Start();
        // The real sample is read first so that what the cached artefacts were made with is checked before anything trains.
        var tb = RealTbData.TryLoad(realSample is null ? null : Path.GetFullPath(realSample), config.Clip.Vit.ImageSize, log);
        string? generatorPin = GeneratorPin(outDir, generatorDir, generator);
        Pin(outDir, generatorPin, seeds[0], tb);
        if (generatorPin is not null && generatorDir is not null && generator is null)
            StudyPins.CheckAndRecord(Path.Combine(outDir, PinsFile), new Dictionary<string, string?> { ["generator weights"] = ModelFingerprint.Of(generatorDir) },
                "the --generator folder's weights changed since inter/ and intra/ were drawn (retrained or overwritten in place): use another --out");
        var stageSeconds = new Dictionary<string, double>();
        void Timed(string stage, Action body)
        {
            var sw = Stopwatch.StartNew();
            body();
            stageSeconds[stage] = Math.Round(sw.Elapsed.TotalSeconds, 1);
        }

        // 1. The real pool and the generator.
        var pool = TrainingRecords.Phantoms(new PhantomOptions { Size = config.Clip.SourceSize, Seed = config.Clip.WorldSeed }, config.Clip.Phantoms);
        var real = pool.Dataset!;
        TextToImagePipeline? pipeline = generator;
        string generatorFolder = generatorDir ?? Path.Combine(outDir, "generator");
        TextToImagePipeline Pipeline()
        {
            if (pipeline is not null) return pipeline;
            if (generatorDir is not null)
            {
                log($"generator: {generatorDir}");
                pipeline = LatentDiffusionRuns.LoadPipeline(generatorDir);
            }
            else
            {
                log($"generator: {config.Generator.TrainImages} phantoms, VAE {config.Generator.VaeSteps} + denoiser {config.Generator.LdmSteps} steps -> {generatorFolder}");
                var trained = LatentDiffusionRuns.EnsureTrained(config.Generator, LdmTrainingData.FromPhantoms(config.Generator), generatorFolder,
                    new LdmRunOptions { Cancellation = cancellation });
                log(trained.Skipped ? "generator: finished before, loaded" : $"generator: trained {trained.StepsTrained} denoiser steps");
                pipeline = trained.Model.ToPipeline();
            }
            return pipeline;
        }

        // 2. Rewrites.
        RewriteStage rewrites = null!;
        Timed("rewrite", () => rewrites = Rewrite(config, real, Path.Combine(outDir, "rewrites"), log, cancellation));

        // 3. The scorer: the real-only arm of the first seed.
        ClipModel Arm(string arm, long seed, CxrDataset data)
        {
            var dir = ArmFolder(outDir, arm, seed);
            var run = EncoderRuns.Clip(config.Clip with { Seed = seed }, new TrainingRecords(data, config.Clip.SourceSize), dir, cancellation);
            log(run.TrainedNow ? $"{arm} seed {seed}: {data.Count} pairs, {run.Steps} steps in {run.Seconds:F0} s, final loss {run.FinalLoss:F3}" : $"{arm} seed {seed}: finished before");
            return ClipModel.Load(dir);
        }
        ClipModel scorer = null!;
        Timed("scorer", () => scorer = Arm("real", seeds[0], real));
        double logitScale;
        using (no_grad()) logitScale = scorer.Heads.LogitScale().item<float>();
        var embedder = new ClipModelEmbedder(scorer);

        // 4. InterAug and IntraAug, each pruned.
        StageCounts inter = null!, intra = null!;
        Timed("inter", () => inter = Branch(Path.Combine(outDir, "inter"), "InterAug", log, dir =>
            PairAugmentation.InterAug(Pipeline(), embedder, rewrites.Inter, config.Inter with { LogitScale = logitScale }, dir)));
        Timed("intra", () => intra = Branch(Path.Combine(outDir, "intra"), "IntraAug", log, dir =>
        {
            var p = Pipeline();
            int size = p.LatentSize * p.Vae.Config.DownsampleFactor;
            using var scope = NewDisposeScope();
            var realImages = new Dictionary<string, Tensor>();
            foreach (var r in rewrites.Intra.Take(config.RealEdits))
            {
                var record = real.First(x => x.Id == r.Id);
                realImages[r.Id] = ImageTensors.Stack([real.LoadImage(record, size)]).MoveToOuterDisposeScope();   // (1, 1, S, S)
            }
            return PairAugmentation.IntraAug(p, embedder, rewrites.Intra, config.Intra, dir, config.IntraSeed, realImages);
        }));
        scorer.Dispose();
        pipeline = null;

        // 5. The arms.
        var interPairs = PairAugmentation.ToDataset(Path.Combine(outDir, "inter", PairAugmentation.PairsFileName), name: "interaug");
        var intraPairs = PairAugmentation.ToDataset(Path.Combine(outDir, "intra", PairAugmentation.PairsFileName), name: "intraaug");
        CxrDataset ArmData(string arm) => arm switch
        {
            "real" => real,
            "inter" => CxrDataset.Concat("real+inter", real, interPairs),
            "intra" => CxrDataset.Concat("real+intra", real, intraPairs),
            _ => CxrDataset.Concat("real+both", real, interPairs, intraPairs),
        };
        var evalData = ProbeData.FromPhantoms(config.EvalImages, config.Clip.Vit.ImageSize, config.EvalSeed);
        var runs = new List<PairAugArmRun>();
        var armClock = Stopwatch.StartNew();
        foreach (var seed in seeds)
            foreach (var arm in Arms)
            {
                var data = ArmData(arm);
                var dir = ArmFolder(outDir, arm, seed);
                var evalPath = Path.Combine(dir, EvalFile);
                PairAugArmRun? done = File.Exists(evalPath) && ClipModel.Exists(dir) ? PairAugArmRun.Load(evalPath) : null;
                if (done is null)
                {
                    using var model = Arm(arm, seed, data);
                    var evaluation = VlpEvaluation.Run(model, evalData, config.Evaluation with { ZeroShot = config.Evaluation.ZeroShot with { Seed = (int)seed } },
                        Path.GetRelativePath(outDir, dir));
                    var tbResult = tb?.Evaluate(model, config.Evaluation.ZeroShot with { Seed = (int)seed });
                    done = new PairAugArmRun(arm, seed, data.Count, evaluation, tbResult, ReadSeconds(dir));
                    done.Save(evalPath);
                    log($"  {arm} seed {seed}: zero-shot macro AUC {evaluation.ZeroShotMacroAuc:F3}, probe 1/10/100 %: "
                        + string.Join(" / ", evaluation.Probes.Select(p => p.MacroAuc.ToString("F3", System.Globalization.CultureInfo.InvariantCulture))));
                }
                runs.Add(done);
            }
        stageSeconds["arms"] = Math.Round(armClock.Elapsed.TotalSeconds, 1);

        // 6. t-SNE views in the space of the +both model of the first seed.
        var tsnePath = Path.Combine(outDir, "tsne.json");
        PairAugTsne tsne;
        if (File.Exists(tsnePath)) tsne = PairAugTsne.Load(tsnePath);
        else
        {
            var sw = Stopwatch.StartNew();
            using var model = ClipModel.Load(ArmFolder(outDir, "both", seeds[0]));
            tsne = PairAugTsne.Compute(model, config.TsnePoints, real, interPairs, intraPairs, rewrites, seeds[0]);
            tsne.Save(tsnePath);
            stageSeconds["tsne"] = Math.Round(sw.Elapsed.TotalSeconds, 1);
            log("t-SNE views written");
        }

        var result = PairAugStudyResult.Build(config, seeds, rewrites.Counts, inter, intra, runs, tsne, tb is null ? null : tb.Description,
            stageSeconds, clock.Elapsed.TotalSeconds);
        result.Save(Path.Combine(outDir, ResultFile));
        log($"wrote {Path.Combine(outDir, ResultFile)} ({clock.Elapsed.TotalSeconds:F0} s)");
        return result;
    }

    /// <summary>The kept rewrites of both operations and the counts of the rewrite stage.</summary>
    internal sealed record RewriteStage(IReadOnlyList<ReportRewrite> Inter, IReadOnlyList<ReportRewrite> Intra, IReadOnlyDictionary<string, int> Counts);

    /// <summary>Counts of one augmentation branch (generated, after each rule, kept, pruned).</summary>
    /// <param name="Branch">InterAug or IntraAug.</param>
    /// <param name="Counts">Counts by stage, in order.</param>
    public sealed record StageCounts(string Branch, IReadOnlyList<KeyValuePair<string, int>> Counts)
    {
        /// <summary>A count by name (0 when absent).</summary>
        public int this[string name] => Counts.FirstOrDefault(kv => kv.Key == name).Value;
    }

    private static RewriteStage Rewrite(PairAugStudyConfig config, CxrDataset real, string dir, Action<string> log, CancellationToken cancellation)
    {
        var countsPath = Path.Combine(dir, "rewrites.json");
        string interFile = Path.Combine(dir, "inter.jsonl"), intraFile = Path.Combine(dir, "intra.jsonl");
        if (!File.Exists(countsPath))
        {
            Directory.CreateDirectory(dir);
            var rewriter = new RuleBasedReportRewriter();
            var counts = new Dictionary<string, int>();
            foreach (var (op, n, file, key) in new[]
            {
                (RewriteOperation.PartialOpposite, config.InterRewrites, interFile, "inter"),
                (RewriteOperation.ChangeInSymptoms, config.IntraRewrites, intraFile, "intra"),
            })
            {
                var requests = real.Take(n).Select((r, i) => new RewriteRequest(r.Id, r.Report.FullText, op, config.RewriteSeed + i)).ToList();
                var batch = RewriteBatch.RunAsync(rewriter, requests, cancellationToken: cancellation).GetAwaiter().GetResult();
                RewriteFiles.WriteJsonl(batch, file, Path.ChangeExtension(file, ".dropped.jsonl"));
                counts[$"{key}_requested"] = batch.Requested;
                counts[$"{key}_kept"] = batch.Kept.Count;
                counts[$"{key}_dropped"] = batch.Dropped.Count;
                counts[$"{key}_not_applicable"] = batch.NotApplicable.Count;
                log($"rewrite {op.CliName()}: {batch.Kept.Count} kept, {batch.Dropped.Count} dropped, {batch.NotApplicable.Count} not applicable of {batch.Requested}");
            }
            AtomicFile.WriteAllText(countsPath, JsonSerializer.Serialize(counts, new JsonSerializerOptions { WriteIndented = true }));
        }
        else log("rewrites: finished before");
        var c = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(countsPath))
            ?? throw new InvalidDataException($"{countsPath}: empty rewrite counts");
        var inter = RewriteFiles.ReadRewrites(interFile);
        var intra = RewriteFiles.ReadRewrites(intraFile);
        if (inter.Count == 0 || intra.Count == 0)
            throw new InvalidDataException($"{dir}: the rewriter kept {inter.Count} InterAug and {intra.Count} IntraAug rewrites; each branch needs at least one (raise InterRewrites / IntraRewrites)");
        return new RewriteStage(inter, intra, c);
    }

    // What drew the branches: null (not checked) when no generator is given and both branches are drawn already, since
    // then nothing is drawn in this call.
    private static string? GeneratorPin(string outDir, string? generatorDir, TextToImagePipeline? generator)
    {
        if (generator is not null) return InMemoryGenerator;
        if (generatorDir is not null) return Path.GetFullPath(generatorDir);
        return BranchDone(Path.Combine(outDir, "inter")) && BranchDone(Path.Combine(outDir, "intra")) ? null : TrainedGenerator;
    }

    // One key at a time, so that each refusal says what to do about that key.
    private static void Pin(string outDir, string? generator, long scorerSeed, RealTbData? tb)
    {
        var path = Path.Combine(outDir, PinsFile);
        StudyPins.CheckAndRecord(path, new Dictionary<string, string?> { ["generator"] = generator },
            "inter/ and intra/ hold pairs it drew: give the same generator (the same --generator, or none for the one trained in generator/), or use another --out");
        StudyPins.CheckAndRecord(path, new Dictionary<string, string?> { ["scorer seed"] = scorerSeed.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            "the real-only CLIP of the first seed pruned inter/ and intra/ and placed the t-SNE views: list that seed first in --seeds, or use another --out");
        StudyPins.CheckAndRecord(path, new Dictionary<string, string?> { ["real sample"] = tb?.Description ?? "none" },
            "each arm's eval.json holds the TB zero-shot of that sample: give the same --real-sample (with the same TB and normal rows; none where 'none' is pinned), or use another --out");
    }

    private static bool BranchDone(string dir) => File.Exists(Path.Combine(dir, "stage.json")) && File.Exists(Path.Combine(dir, PairAugmentation.PairsFileName));

    private static StageCounts Branch(string dir, string name, Action<string> log, Func<string, AugmentationResult> run)
    {
        var stagePath = Path.Combine(dir, "stage.json");
        if (BranchDone(dir))
        {
            log($"{name}: finished before");
            var saved = JsonSerializer.Deserialize<List<KeyValuePair<string, int>>>(File.ReadAllText(stagePath))
                ?? throw new InvalidDataException($"{stagePath}: empty stage record");
            return new StageCounts(name, saved);
        }
        var result = run(dir);
        AtomicFile.WriteAllText(stagePath, JsonSerializer.Serialize(result.Counts));
        log($"{name}: {string.Join(", ", result.Counts.Select(kv => $"{kv.Key} {kv.Value}"))}");
        return new StageCounts(name, result.Counts);
    }

    private static double ReadSeconds(string dir)
    {
        var file = Path.Combine(dir, RunFolder.RunFile);
        if (!File.Exists(file)) return double.NaN;
        try { return JsonDocument.Parse(File.ReadAllText(file)).RootElement.TryGetProperty("Seconds", out var s) && s.TryGetDouble(out var v) ? v : double.NaN; }
        catch (JsonException) { return double.NaN; }
    }
}

/// <summary>
/// The real sample's TB-vs-normal rows whose reports are present (the Shenzhen rows: their reports say "normal" or
/// name the TB), scored zero-shot with the prompts "tuberculosis" and "no tuberculosis" (the positive and negative
/// templates of the options).
/// </summary>
public sealed class RealTbData
{
    private readonly Tensor _images;
    private readonly bool[] _labels;

    private RealTbData(Tensor images, bool[] labels, string description)
    {
        _images = images;
        _labels = labels;
        Description = description;
    }

    /// <summary>What rows were used.</summary>
    public string Description { get; }

    /// <summary>
    /// The TB and normal rows with a report of the datasets that hold TB rows, at <paramref name="size"/>; null (with a log
    /// line) when the folder is not given, absent, or lacks one of the classes.
    /// </summary>
    public static RealTbData? TryLoad(string? folder, int size, Action<string>? log = null)
    {
        if (folder is null || !File.Exists(Path.Combine(folder, "labels.csv")))
        {
            log?.Invoke($"real sample: {(folder is null ? "none given" : $"no labels.csv in {folder}")}, TB zero-shot skipped");
            return null;
        }
        var all = ImageFolderLoader.LoadFolder(folder, new LoadOptions { AllowOutsideRoot = true });
        static bool Has(CxrRecord r, string label) => r.SourceLabels.Any(l => l.Equals(label, StringComparison.OrdinalIgnoreCase));
        var tbSets = all.Where(r => Has(r, "tuberculosis")).Select(r => r.Dataset).ToHashSet();
        var rows = all.Where(r => tbSets.Contains(r.Dataset) && !r.Report.IsEmpty
            && (Has(r, "tuberculosis") || r.SourceLabels.All(l => l.Equals("normal", StringComparison.OrdinalIgnoreCase) || l.Equals("No Finding", StringComparison.OrdinalIgnoreCase)))).ToList();
        var labels = rows.Select(r => Has(r, "tuberculosis")).ToArray();
        if (labels.All(x => x) || labels.All(x => !x))
        {
            log?.Invoke($"real sample {folder}: {rows.Count} TB/normal rows with a report lack a class; TB zero-shot skipped");
            return null;
        }
        var images = ImageTensors.Stack(rows.Select(r => all.LoadImage(r, size)));
        var description = $"{folder}: {labels.Count(x => x)} TB and {labels.Count(x => !x)} normal images with reports ({string.Join(", ", rows.Select(r => r.Dataset).Distinct().Order())})";
        log?.Invoke($"real sample: {description}");
        return new RealTbData(images, labels, description);
    }

    /// <summary>TB-vs-normal zero-shot AUC with its stratified bootstrap interval.</summary>
    public ZeroShotFindingRow Evaluate(ClipModel model, ZeroShotOptions options)
    {
        using var scope = NewDisposeScope();
        var embedder = new ClipModelEmbedder(model);
        string pos = options.PositiveTemplate.Replace("{finding}", "tuberculosis", StringComparison.Ordinal);
        string neg = options.NegativeTemplate.Replace("{finding}", "tuberculosis", StringComparison.Ordinal);
        var img = embedder.EmbedImages(_images);
        var txt = embedder.EmbedTexts([pos, neg]);
        var p = ZeroShot.Probabilities(img, txt[0], txt[1]);
        var auc = ZeroShot.StratifiedAucInterval(p, _labels, options.Resamples, options.Seed, options.Level);
        return new ZeroShotFindingRow("Tuberculosis", pos, neg, auc.Estimate, auc.Lower, auc.Upper, _labels.Count(x => x), _labels.Length);
    }
}
