using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using RoentGen.Platform;
using RoentGen.Synthetic;
using RoentGen.Vision.Segmentation;
using static TorchSharp.torch;

using RoentGen.Training;

namespace RoentGen.Experiments;

/// <summary>What a study run uses besides its config: generators, expert ratings, the real sample, seeds.</summary>
public sealed record SyntheticDataStudyOptions
{
    /// <summary>The text-to-image generator (an LDM run folder's pipeline), or null: the text arms are skipped.</summary>
    public TextToImagePipeline? TextGenerator { get; init; }
    /// <summary>How results name the text generator (e.g. its folder).</summary>
    public string TextGeneratorName { get; init; } = "none";
    /// <summary>The mask-conditioned generator, or null for the <see cref="PhantomOracleGenerator"/> (an upper bound, labelled as such).</summary>
    public IMaskConditionedGenerator? MaskGenerator { get; init; }
    /// <summary>How results name the mask generator (null: the oracle's label).</summary>
    public string? MaskGeneratorName { get; init; }
    /// <summary>
    /// A content fingerprint of the text generator's weights (<see cref="ModelFingerprint.Of"/>), pinned beside its name
    /// so a folder retrained in place is not taken for the one that drew the cached images; null: not checked.
    /// </summary>
    public string? TextGeneratorWeights { get; init; }
    /// <summary>The same for the mask generator (<see cref="MaskConditionedModels.Fingerprint"/>); null: not checked.</summary>
    public string? MaskGeneratorWeights { get; init; }
    /// <summary>Synthetic image ids an expert rejected (from an exported ratings CSV); the filtered arms drop them too.</summary>
    public IReadOnlySet<string>? ExpertRejected { get; init; }
    /// <summary>A labels.csv folder of real images with lung masks for the real-sample experiment, or null to skip it.</summary>
    public string? RealSample { get; init; }
    /// <summary>The seeds (null: 0 … Seeds − 1 of the config).</summary>
    public IReadOnlyList<long>? Seeds { get; init; }
}

/// <summary>
/// The downstream synthetic-data study after Prakash et al. 2024: for each real-set size and seed, a classifier
/// (<see cref="ProxyFindingClassifier"/>'s architecture; F1 per finding at validation thresholds and AUC,
/// <see cref="FindingClassification"/>) and a segmenter (<see cref="SegmentationRuns"/>; Dice per structure,
/// <see cref="SegmentationEvaluation"/>) are trained on the real images alone and on the real images plus synthetic ones
/// (<see cref="SyntheticArm.All"/>), tested on phantoms of the held-out world; the real-only models are also the proxies
/// of the filtered arms (<see cref="ProxyFilter"/>). Arms are compared with real-only by the mean paired difference over
/// seeds, its 95 % interval and a one-sided paired t-test, Bonferroni and Holm over every comparison.
/// <para>Layout of the output folder: config.json, expert-rejected.json and generators.json (pinned), synthetic/nN-sS/SOURCE/ (cached images, manifest.json last),
/// cells/nN/sS/ARM.json (one per trained arm, atomic), cells/nN/sS/real-classifier/ and real-seg/ (the proxies),
/// filter-SOURCE.json per cell and source, real-sample/, results.json. A second call reads finished cells back and trains the rest.</para>
/// </summary>
public static class SyntheticDataStudy
{
    /// <summary>The results file inside the output folder.</summary>
    public const string ResultFile = "results.json";

    /// <summary>The pinned config inside the output folder.</summary>
    public const string ConfigFile = "config.json";

    /// <summary>Runs (or resumes) the study into <paramref name="outDir"/>.</summary>
    /// <exception cref="ArgumentException">The config is out of range.</exception>
    /// <exception cref="RunStateException">The folder holds a study of another config, or its cached images were drawn by other generators (pinned names and weights).</exception>
    /// <exception cref="OperationCanceledException">Cancelled between cells (finished cells stay).</exception>
    public static SyntheticDataStudyResult Run(SyntheticDataStudyConfig config, string outDir, SyntheticDataStudyOptions? options = null,
        Action<string>? log = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var o = options ?? new SyntheticDataStudyOptions();
        log ??= _ => { };
        var watch = Stopwatch.StartNew();
        Directory.CreateDirectory(outDir);
        Pin(config, outDir, o.ExpertRejected);
        var seeds = o.Seeds ?? Enumerable.Range(0, config.Seeds).Select(s => (long)s).ToList();
        if (seeds.Count == 0) throw new ArgumentException("give at least one seed");
        if (seeds.Distinct().Count() != seeds.Count) throw new ArgumentException($"seeds repeat: {string.Join(", ", seeds)}");
        foreach (long s in seeds) config.RealCaseStart(s);   // a seed out of range fails before any work
        var world = new PhantomOptions { Size = Math.Max(64, config.ImageSize), Seed = config.WorldSeed };
        var maskGenerator = o.MaskGenerator ?? new PhantomOracleGenerator(world);
        string maskName = o.MaskGeneratorName ?? (o.MaskGenerator is null ? PhantomOracleGenerator.Label : maskGenerator.GetType().Name);
        PinSources(outDir, o.TextGenerator is null ? null : o.TextGeneratorName, maskName, o.RealSample is null ? null : Path.GetFullPath(o.RealSample),
            o.TextGenerator is null ? null : o.TextGeneratorWeights, o.MaskGenerator is null ? null : o.MaskGeneratorWeights);
        var skipped = new List<string>();
        if (o.TextGenerator is null)
            skipped.AddRange(SyntheticArm.All.Where(a => a.NeedsText).Select(a => $"{a.Name}: no text-to-image generator (--generator DIR)"));
        var arms = SyntheticArm.All.Where(a => !a.NeedsText || o.TextGenerator is not null).ToList();

        var eval = new Lazy<EvaluationData>(() => EvaluationData.Create(config, world, log));
        var cells = new List<StudyCell>();
        var filters = new List<FilterSummary>();
        int computed = 0, total = config.Sizes.Count * seeds.Count * arms.Count, done = 0;
        try
        {
            foreach (int size in config.Sizes)
                foreach (long seed in seeds)
                {
                    var cell = new CellContext(config, outDir, size, seed, world);
                    foreach (var arm in arms)
                    {
                        cancellation.ThrowIfCancellationRequested();
                        if (cell.TryLoad(arm) is { } finished) { cells.Add(finished); done++; continue; }
                        var trained = arm.Synthetic
                            ? TrainArm(cell, arm, o, maskGenerator, eval.Value, log, cancellation)
                            : TrainReal(cell, eval.Value, log, cancellation);
                        cell.Save(trained);
                        cells.Add(trained);
                        computed++; done++;
                        string dice = trained.MeanDice is double md ? FormattableString.Invariant($", mean Dice {md:0.000}") : "";
                        log(FormattableString.Invariant(
                            $"[{done}/{total}] n={size} seed={seed} {arm.Name}: {trained.SyntheticKept} synthetic, macro F1 {trained.MacroF1:0.000}, AUC {trained.MacroAuc:0.000}{dice} ({trained.Seconds:0.0} s)"));
                    }
                    filters.AddRange(cell.FilterSummaries());
                }
        }
        finally
        {
            if (eval.IsValueCreated) eval.Value.Dispose();
        }

        RealSampleResult? realSample = null;
        string note;
        if (o.RealSample is null || config.RealSampleSeeds == 0) note = "skipped: no real sample given";
        else if (!Directory.Exists(o.RealSample) && !File.Exists(o.RealSample)) note = $"skipped: {o.RealSample} is absent";
        else (realSample, note) = RealSampleLungs(config, outDir, o.RealSample, maskGenerator, maskName, world, log, cancellation);

        var result = new SyntheticDataStudyResult(config, seeds, o.TextGeneratorName, maskName, skipped, cells,
            SyntheticDataStudyResult.Compare(cells), filters, realSample, note, computed, watch.Elapsed.TotalSeconds);
        result.Save(Path.Combine(outDir, ResultFile));
        log($"synth-study: {cells.Count} cells ({computed} trained now) in {watch.Elapsed.TotalSeconds:0} s; wrote {Path.Combine(outDir, ResultFile)}");
        return result;
    }

    /// <summary>
    /// The noise seed of image 0 of a synthetic source (1 text-single, 2 text-report, 3 mask) of a seed's cells; image i
    /// starts from this + i. Hashed, so no two sources or seeds share a starting noise (the earlier seed · 1,000,003 +
    /// source gave text-report image j the noise of text-single image j + 1).
    /// </summary>
    internal static long SourceNoiseSeed(long seed, int source) =>
        (long)(PhantomRandom.Mix(unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)source)) >> 2);

    /// <summary>The pinned names of the generators whose images the output folder caches (<see cref="StudyPins"/>).</summary>
    public const string GeneratorsFile = "generators.json";

    /// <summary>
    /// Cached images and finished cells belong to the generators that drew them, and the real-sample results to the sample
    /// they were scored on: a later call with another mask generator (or another text generator or real sample, once one was
    /// used) would mix them under the new name, so it is refused. Adding a text generator or a real sample to a folder that
    /// had none is allowed (nothing of theirs was cached).
    /// </summary>
    private static void PinSources(string outDir, string? text, string mask, string? realSample, string? textWeights, string? maskWeights) =>
        StudyPins.CheckAndRecord(Path.Combine(outDir, GeneratorsFile),
            new Dictionary<string, string?>
            {
                ["text generator"] = text, ["mask generator"] = mask, ["real sample"] = realSample,
                ["text generator weights"] = textWeights, ["mask generator weights"] = maskWeights,
            },
            "use another --out for another generator (or the same folder retrained or overwritten in place) or real sample");

    private static void Pin(SyntheticDataStudyConfig config, string outDir, IReadOnlySet<string>? expertRejected)
    {
        // Sizes and seeds may grow between calls; everything else, and the expert vetoes the filtered arms were trained
        // with, must match the folder's study.
        string text = JsonSerializer.Serialize(config with { Sizes = [], Seeds = 1 }, SyntheticDataStudyResult.JsonOptions);
        string vetoes = JsonSerializer.Serialize((expertRejected ?? new HashSet<string>()).Order(StringComparer.Ordinal).ToList(), SyntheticDataStudyResult.JsonOptions);
        var path = Path.Combine(outDir, ConfigFile);
        var vetoPath = Path.Combine(outDir, ExpertRejectedFile);
        if (File.Exists(path))
        {
            if (File.ReadAllText(path) != text)
                throw new RunStateException($"{path}: this folder holds a synthetic-data study of another config; use another --out or the same preset/config (sizes and seeds may change)");
            if (File.Exists(vetoPath) && File.ReadAllText(vetoPath) != vetoes)
                throw new RunStateException($"{vetoPath}: this folder's filtered arms were trained with other expert ratings; use another --out for these --ratings");
        }
        if (!File.Exists(vetoPath)) AtomicFile.WriteAllText(vetoPath, vetoes);
        if (!File.Exists(path)) AtomicFile.WriteAllText(path, text);
    }

    /// <summary>The pinned list of image ids the expert ratings rejected, inside the output folder.</summary>
    public const string ExpertRejectedFile = "expert-rejected.json";

    /// <summary>
    /// Cached synthetic images of one source ("text-single", "text-report" or "mask") of a cell, captioned with their prompt,
    /// masks outlined where they have them; null when the source was not made.
    /// </summary>
    public static RoentGen.Visualization.ImageGrid? Examples(string outDir, int size, long seed, string source, int max = 8)
    {
        var images = SyntheticDataStudySets.TryLoad(Path.Combine(outDir, "synthetic", $"n{size}-s{seed}", source));
        if (images is null || images.Count == 0) return null;
        var grid = new RoentGen.Visualization.ImageGrid(4, $"{source}: synthetic images (n={size}, seed {seed})");
        foreach (var s in images.Take(max))
        {
            string caption = s.Prompt.Length > 60 ? s.Prompt[..57] + "..." : s.Prompt;
            var finding = s.Masks?.Where(kv => kv.Key is not ("lungs" or "heart")).Select(kv => kv.Value).FirstOrDefault();
            if (finding is not null) grid.AddWithMask(s.Image, finding, caption, RoentGen.Visualization.Rgb.Red, 0.35f);
            else grid.Add(s.Image, caption);
        }
        return grid;
    }

    /// <summary>Synthetic images of a cell the proxy filter kept and rejected (with the reason); null before the filter ran.</summary>
    public static RoentGen.Visualization.ImageGrid? FilterExamples(string outDir, int size, long seed, int max = 8)
    {
        var verdicts = new Dictionary<string, ProxyVerdict>(StringComparer.Ordinal);
        var images = new List<SyntheticImage>();
        foreach (var source in CellContext.Sources)
        {
            var file = Path.Combine(outDir, "cells", $"n{size}", $"s{seed}", $"filter-{source}.json");
            var cached = SyntheticDataStudySets.TryLoad(Path.Combine(outDir, "synthetic", $"n{size}-s{seed}", source));
            if (!File.Exists(file) || cached is null) continue;
            foreach (var v in JsonSerializer.Deserialize<List<ProxyVerdict>>(File.ReadAllText(file), SyntheticDataStudyResult.JsonOptions)!) verdicts[v.Id] = v;
            images.AddRange(cached.Where(s => verdicts.ContainsKey(s.Id)));
        }
        if (images.Count == 0) return null;
        var grid = new RoentGen.Visualization.ImageGrid(4, $"proxy filter (n={size}, seed {seed}): kept and rejected");
        var kept = images.Where(s => verdicts[s.Id].Keep).Take(max / 2).ToList();
        var rejected = images.Where(s => !verdicts[s.Id].Keep).Take(max - kept.Count).ToList();
        foreach (var s in kept.Concat(rejected))
        {
            var v = verdicts[s.Id];
            string why = v.Keep ? "kept" : v.ExpertRejected ? "rejected: expert" : v.ClassifierAgrees == false ? "rejected: " + string.Join("; ", v.Disagreements.Take(1)) : FormattableString.Invariant($"rejected: Dice {v.Dice:0.00}");
            grid.Add(s.Image, $"{s.Source}: {why}");
        }
        return grid;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // one (size, seed) cell of the design

    private sealed class CellContext(SyntheticDataStudyConfig config, string outDir, int size, long seed, PhantomOptions world)
    {
        private IReadOnlyList<PhantomCase>? _cases;
        private readonly Dictionary<string, IReadOnlyList<SyntheticImage>> _sources = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Dictionary<string, bool>> _keep = new(StringComparer.Ordinal);

        public SyntheticDataStudyConfig Config => config;
        public int Size => size;
        public long Seed => seed;
        public string Folder => Path.Combine(outDir, "cells", $"n{size}", $"s{seed}");
        public string SyntheticFolder => Path.Combine(outDir, "synthetic", $"n{size}-s{seed}");
        public string Prefix => $"n{size}-s{seed}";

        /// <summary>The real training cases: the first <c>size</c> of the seed's cases of the training world (<see cref="SyntheticDataStudyConfig.RealCaseStart"/>).</summary>
        public IReadOnlyList<PhantomCase> Cases => _cases ??= new PhantomGenerator(world).Generate(config.RealCaseStart(seed), size);

        public IReadOnlyList<GrayImage> RealImages => Cases.Select(c => SyntheticDataStudySets.Fit(c.Image, config.ImageSize, false)).ToList();

        public int SyntheticCount => Math.Max(1, (int)Math.Round(config.SyntheticPerReal * size));

        public StudyCell? TryLoad(SyntheticArm arm)
        {
            var path = Path.Combine(Folder, arm.Name + ".json");
            if (!File.Exists(path)) return null;
            try { return JsonSerializer.Deserialize<StudyCell>(File.ReadAllText(path), SyntheticDataStudyResult.JsonOptions); }
            catch (JsonException e) { throw new InvalidDataException($"{path}: malformed cell result ({e.Message}); delete it to retrain the cell", e); }
        }

        public void Save(StudyCell cell)
        {
            Directory.CreateDirectory(Folder);
            AtomicFile.WriteAllText(Path.Combine(Folder, cell.Arm + ".json"), JsonSerializer.Serialize(cell, SyntheticDataStudyResult.JsonOptions));
        }

        public IReadOnlyList<SyntheticImage> Source(string name, Func<IReadOnlyList<SyntheticImage>> make, Action<string> log)
        {
            if (_sources.TryGetValue(name, out var have)) return have;
            var folder = Path.Combine(SyntheticFolder, name);
            var images = SyntheticDataStudySets.TryLoad(folder);
            if (images is null)
            {
                var clock = Stopwatch.StartNew();
                images = make();
                SyntheticDataStudySets.Save(folder, name, images);
                // Train on the saved copies (8-bit PNG), as a resumed run does: otherwise the call that generated a source
                // trained on unquantised images and a rerun of the same cell on slightly different ones.
                images = SyntheticDataStudySets.TryLoad(folder)
                    ?? throw new InvalidDataException($"{folder}: the {name} images just saved could not be read back");
                log(string.Create(CultureInfo.InvariantCulture, $"n={size} seed={seed}: generated {images.Count} {name} images in {clock.Elapsed.TotalSeconds:0.0} s"));
            }
            return _sources[name] = images;
        }

        public static IReadOnlyList<string> Sources { get; } = ["text-single", "text-report", "mask"];

        public string FilterFile(string source) => Path.Combine(Folder, $"filter-{source}.json");

        /// <summary>The filter's verdict per image id of one source, judged once per cell and source and read back after.</summary>
        public Dictionary<string, bool> Keep(string source, IReadOnlyList<SyntheticImage> images, Func<IReadOnlyList<SyntheticImage>, IReadOnlyList<ProxyVerdict>> judge)
        {
            if (_keep.TryGetValue(source, out var have)) return have;
            var path = FilterFile(source);
            IReadOnlyList<ProxyVerdict> verdicts;
            if (File.Exists(path)) verdicts = JsonSerializer.Deserialize<List<ProxyVerdict>>(File.ReadAllText(path), SyntheticDataStudyResult.JsonOptions)!;
            else
            {
                verdicts = judge(images);
                Directory.CreateDirectory(Folder);
                AtomicFile.WriteAllText(path, JsonSerializer.Serialize(verdicts, SyntheticDataStudyResult.JsonOptions));
            }
            return _keep[source] = verdicts.ToDictionary(v => v.Id, v => v.Keep, StringComparer.Ordinal);
        }

        public IEnumerable<FilterSummary> FilterSummaries()
        {
            foreach (var source in Sources)
            {
                var path = FilterFile(source);
                if (!File.Exists(path)) continue;
                var v = JsonSerializer.Deserialize<List<ProxyVerdict>>(File.ReadAllText(path), SyntheticDataStudyResult.JsonOptions)!;
                yield return new FilterSummary(size, seed, source, v.Count, v.Count(x => x.Keep), v.Count(x => x.ClassifierAgrees == false),
                    v.Count(x => x.Dice is double d && d < config.FilterMinDice), v.Count(x => x.ExpertRejected));
            }
        }

    }

    // ---------------------------------------------------------------------------------------------------------------
    // training and testing one arm

    private static StudyCell TrainReal(CellContext cell, EvaluationData eval, Action<string> log, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var cfg = cell.Config;
        var real = cell.RealImages;
        var labels = cell.Cases.Select(c => c.Labels).ToList();
        using var classifier = TrainClassifier(cfg, real, labels, cell.Seed, cancellation);
        classifier.Save(Path.Combine(cell.Folder, "real-classifier"));
        var scores = eval.Score(classifier);
        var (seg, dice) = TrainSegmenter(cell, SyntheticArm.Real, Path.Combine(cell.Folder, "real-seg"), [], eval, log, cancellation);
        seg.Dispose();
        return Cell(SyntheticArm.Real, cell, 0, 0, scores, dice, clock);
    }

    private static StudyCell TrainArm(CellContext cell, SyntheticArm arm, SyntheticDataStudyOptions o, IMaskConditionedGenerator maskGenerator,
        EvaluationData eval, Action<string> log, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var cfg = cell.Config;
        var offered = new List<(string Source, IReadOnlyList<SyntheticImage> Images)>();
        int m = cell.SyntheticCount;
        if (arm.TextSingle)
            offered.Add(("text-single", cell.Source("text-single", () => SyntheticDataStudySets.FromText(o.TextGenerator!, "text-single", cell.Prefix,
                SyntheticDataStudySets.SingleDiseasePrompts(cell.Cases, m, cell.Seed), cfg.ImageSize, cfg.SamplingSteps, cfg.GuidanceScale, SourceNoiseSeed(cell.Seed, 1)), log)));
        if (arm.TextReport)
            offered.Add(("text-report", cell.Source("text-report", () => SyntheticDataStudySets.FromText(o.TextGenerator!, "text-report", cell.Prefix,
                Enumerable.Range(0, m).Select(i => cell.Cases[i % cell.Cases.Count]).Select(c =>
                    (LdmTrainingData.PromptOf(c.Impression, c.Findings, PromptSource.ImpressionAndFindings), c.Labels)).ToList(),
                cfg.ImageSize, cfg.SamplingSteps, cfg.GuidanceScale, SourceNoiseSeed(cell.Seed, 2)), log)));
        if (arm.Mask)
            offered.Add(("mask", cell.Source("mask", () => SyntheticDataStudySets.FromMasks(maskGenerator, cell.Prefix,
                SyntheticDataStudySets.TransformedConditions(cell.Cases, m, cell.Seed), cfg.ImageSize, SourceNoiseSeed(cell.Seed, 3)), log)));
        var used = new List<SyntheticImage>();
        foreach (var (source, images0) in offered)
        {
            if (!arm.Filtered) { used.AddRange(images0); continue; }
            var keep = cell.Keep(source, images0, all => Judge(cell, source, all, o, log));
            used.AddRange(images0.Where(s => keep[s.Id]));
        }
        int offeredCount = offered.Sum(x => x.Images.Count);
        var images = cell.RealImages.Concat(used.Select(s => s.Image)).ToList();
        var labels = cell.Cases.Select(c => c.Labels).Concat(used.Select(s => s.Labels)).ToList();
        using var classifier = TrainClassifier(cfg, images, labels, cell.Seed, cancellation);
        var scores = eval.Score(classifier);
        (double? Mean, Dictionary<string, double>? Per) dice = (null, null);
        if (arm.Segments)
        {
            var (seg, d) = TrainSegmenter(cell, arm, Path.Combine(cell.Folder, arm.Name + "-seg"), used.Where(s => s.Masks is not null).ToList(), eval, log, cancellation);
            seg.Dispose();
            dice = d;
        }
        return Cell(arm, cell, offeredCount, used.Count, scores, dice, clock);
    }

    // The proxies: the real-only classifier (validation thresholds from its cell) and segmenter of this cell.
    private static IReadOnlyList<ProxyVerdict> Judge(CellContext cell, string source, IReadOnlyList<SyntheticImage> images, SyntheticDataStudyOptions o, Action<string> log)
    {
        var realCell = cell.TryLoad(SyntheticArm.Real) ?? throw new InvalidOperationException($"{cell.Folder}: the real-only cell must be trained before the filter can use its models");
        using var classifier = ProxyFindingClassifier.Load(Path.Combine(cell.Folder, "real-classifier"));
        using var segmenter = Segmenter.Load(Path.Combine(cell.Folder, "real-seg"));
        var thresholds = Observations.All.Select(ob => realCell.Thresholds.GetValueOrDefault(ob.Name(), 0.5)).ToList();
        var filter = new ProxyFilter(classifier, thresholds, segmenter, new ProxyFilterOptions { MinDice = cell.Config.FilterMinDice }, o.ExpertRejected);
        var verdicts = filter.Judge(images);
        log($"n={cell.Size} seed={cell.Seed}: proxy filter kept {verdicts.Count(v => v.Keep)} of {verdicts.Count} {source} images");
        return verdicts;
    }

    private static ProxyFindingClassifier TrainClassifier(SyntheticDataStudyConfig cfg, IReadOnlyList<GrayImage> images, IReadOnlyList<CxrLabels> labels,
        long seed, CancellationToken cancellation)
    {
        random.manual_seed(seed);
        var model = new ProxyFindingClassifier(cfg.ClassifierAtSize);
        using var scope = NewDisposeScope();
        var x = ImageTensors.Stack(images, -1f, 1f);                              // (N, 1, S, S)
        var y = ProxyFindingClassifier.LabelTensor(labels);                       // (N, 14)
        model.Train(x, y, new ProxyTrainingOptions
        {
            Steps = cfg.ClassifierSteps, BatchSize = cfg.ClassifierBatchSize, Seed = seed, WarmupSteps = Math.Max(1, cfg.ClassifierSteps / 10),
        }, cancellation: cancellation);
        model.eval();
        return model;
    }

    private static (Segmenter Model, (double? Mean, Dictionary<string, double>? Per) Dice) TrainSegmenter(CellContext cell, SyntheticArm arm, string folder,
        IReadOnlyList<SyntheticImage> synthetic, EvaluationData eval, Action<string> log, CancellationToken cancellation)
    {
        var cfg = cell.Config.SegmentationAtSize with { Seed = cell.Seed, TrainImages = cell.Size + synthetic.Count };
        var images = cell.RealImages.Concat(synthetic.Select(s => s.Image)).ToList();
        var masks = cell.Cases.Select(c => (IReadOnlyDictionary<string, GrayImage>)c.Masks).Concat(synthetic.Select(s => s.Masks!)).ToList();
        using (var set = StackMasks(images, masks, cfg.Structures, cfg.Size))
            SegmentationRuns.Train(cfg, folder, set, $"{cell.Size} real + {synthetic.Count} synthetic ({arm.Name})", _ => { }, cancellation);
        var model = Segmenter.Load(folder);
        var result = SegmentationEvaluation.Evaluate(model, eval.TestRecords, arm.Name);
        var per = result.Structures.Where(s => double.IsFinite(s.MeanDice)).ToDictionary(s => s.Structure, s => s.MeanDice);
        return (model, (per.Count == 0 ? double.NaN : per.Values.Average(), per));
    }

    /// <summary>Images (N, 1, S, S) in [0, 1], masks (N, C, S, S) and presence (N, C) of in-memory images and their masks (a structure a record lacks is not present).</summary>
    public static SegmentationSet StackMasks(IReadOnlyList<GrayImage> images, IReadOnlyList<IReadOnlyDictionary<string, GrayImage>> masks, IReadOnlyList<string> structures, int size)
    {
        using var scope = NewDisposeScope();
        var x = ImageTensors.Stack(images.Select(i => SyntheticDataStudySets.Fit(i, size, false)), 0f, 1f);     // (N, 1, S, S)
        var present = new float[images.Count * structures.Count];
        var channels = new List<Tensor>();
        for (int c = 0; c < structures.Count; c++)
        {
            var per = new List<GrayImage>();
            for (int i = 0; i < images.Count; i++)
            {
                bool has = masks[i].TryGetValue(structures[c], out var m);
                present[i * structures.Count + c] = has ? 1f : 0f;
                per.Add(has ? SyntheticDataStudySets.Fit(m!, size, true) : new GrayImage(size, size));
            }
            channels.Add(ImageTensors.Stack(per, 0f, 1f).ge(0.5).to_type(ScalarType.Float32));               // (N, 1, S, S)
        }
        return new SegmentationSet([], x.MoveToOuterDisposeScope(), cat(channels, 1).MoveToOuterDisposeScope(),
            tensor(present, [images.Count, structures.Count]).MoveToOuterDisposeScope());
    }

    private static StudyCell Cell(SyntheticArm arm, CellContext cell, int offered, int kept, ClassificationResult scores,
        (double? Mean, Dictionary<string, double>? Per) dice, Stopwatch clock) =>
        new(arm.Name, cell.Size, cell.Seed, offered, kept, scores.MacroF1, scores.MacroAuc,
            scores.PerFinding.ToDictionary(f => f.Finding.Name(), f => f.F1),
            scores.PerFinding.ToDictionary(f => f.Finding.Name(), f => f.Auc),
            scores.PerFinding.ToDictionary(f => f.Finding.Name(), f => f.Threshold),
            dice.Mean, dice.Per, clock.Elapsed.TotalSeconds);

    /// <summary>Validation (training world) and test (held-out world) images and targets, made once per run.</summary>
    private sealed class EvaluationData : IDisposable
    {
        public required Tensor ValidationImages { get; init; }
        public required float[] ValidationTargets { get; init; }
        public required Tensor TestImages { get; init; }
        public required float[] TestTargets { get; init; }
        public required CxrDataset TestRecords { get; init; }

        public static EvaluationData Create(SyntheticDataStudyConfig cfg, PhantomOptions world, Action<string> log)
        {
            var clock = Stopwatch.StartNew();
            var val = PhantomRecords.Create(world, cfg.ValidationImages, cfg.ValidationStart, masks: false).Prefetch();
            var test = PhantomRecords.Create(world with { Seed = WorldSeeds.HeldOut(cfg.WorldSeed) }, cfg.TestImages, 0, masks: true).Prefetch();
            var (vx, vy) = ProxyFindingClassifier.RecordData(val, cfg.ImageSize, UncertainLabels.Ignore);
            var (tx, ty) = ProxyFindingClassifier.RecordData(test, cfg.ImageSize, UncertainLabels.Ignore);
            var data = new EvaluationData
            {
                ValidationImages = vx.DetachFromDisposeScope(), ValidationTargets = vy.data<float>().ToArray(),
                TestImages = tx.DetachFromDisposeScope(), TestTargets = ty.data<float>().ToArray(), TestRecords = test,
            };
            vy.Dispose(); ty.Dispose();
            log(string.Create(CultureInfo.InvariantCulture,
                $"synth-study: {cfg.ValidationImages} validation phantoms (world {world.Seed}) and {cfg.TestImages} test phantoms (held-out world {WorldSeeds.HeldOut(cfg.WorldSeed)}) in {clock.Elapsed.TotalSeconds:0.0} s"));
            return data;
        }

        public ClassificationResult Score(ProxyFindingClassifier model)
        {
            using var scope = NewDisposeScope();
            var v = model.Predict(ValidationImages).contiguous().data<float>().ToArray();
            var t = model.Predict(TestImages).contiguous().data<float>().ToArray();
            return FindingClassification.Score(v, ValidationTargets, t, TestTargets, ProxyFindingClassifier.Outputs);
        }

        public void Dispose()
        {
            ValidationImages.Dispose();
            TestImages.Dispose();
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // the real sample: lung segmentation on a few real masked images, with and without synthetic images

    private static (RealSampleResult? Result, string Note) RealSampleLungs(SyntheticDataStudyConfig cfg, string outDir, string sample,
        IMaskConditionedGenerator maskGenerator, string maskName, PhantomOptions world, Action<string> log, CancellationToken cancellation)
    {
        var data = SegmentationData.LabelsCsv(sample, allowOutsideRoot: true);
        var masked = data.Where(r => SegmentationData.MaskName(r, SegmentationData.LungsStructure) is not null);
        if (masked.Count < cfg.RealSampleTrain + 2)
            return (null, $"skipped: {sample} has {masked.Count} images with lung masks; need at least {cfg.RealSampleTrain + 2}");
        var folder = Path.Combine(outDir, "real-sample");
        var syntheticFolder = Path.Combine(folder, "synthetic");
        var synthetic = SyntheticDataStudySets.TryLoad(syntheticFolder);
        if (synthetic is null)
        {
            var cases = new PhantomGenerator(world).Generate(cfg.ValidationStart + cfg.ValidationImages, cfg.RealSampleSynthetic);
            synthetic = SyntheticDataStudySets.FromMasks(maskGenerator, "real-sample", SyntheticDataStudySets.TransformedConditions(cases, cfg.RealSampleSynthetic, 7),
                cfg.ImageSize, 7);
            SyntheticDataStudySets.Save(syntheticFolder, "mask", synthetic);
        }
        var seeds = Enumerable.Range(0, cfg.RealSampleSeeds).Select(s => (long)s).ToList();
        var without = new List<double>();
        var with = new List<double>();
        var seg = cfg.SegmentationAtSize with { Structures = [SegmentationData.LungsStructure], Steps = cfg.RealSampleSteps };
        foreach (long seed in seeds)
        {
            var order = masked.ToList();
            var rng = new Random((int)seed);
            for (int i = order.Count - 1; i > 0; i--) { int j = rng.Next(i + 1); (order[i], order[j]) = (order[j], order[i]); }
            var train = masked.Derive($"{data.Name} (train split {seed})", order.Take(cfg.RealSampleTrain));
            var test = masked.Derive($"{data.Name} (test split {seed})", order.Skip(cfg.RealSampleTrain));
            foreach (bool addSynthetic in new[] { false, true })
            {
                cancellation.ThrowIfCancellationRequested();
                string arm = addSynthetic ? "with-synthetic" : "real-only";
                var cellPath = Path.Combine(folder, $"s{seed}", arm + ".json");
                double dice;
                if (File.Exists(cellPath)) dice = JsonSerializer.Deserialize<double>(File.ReadAllText(cellPath), SyntheticDataStudyResult.JsonOptions);
                else
                {
                    var realImages = train.Select(r => train.LoadImage(r, cfg.ImageSize)).ToList();
                    var realMasks = train.Select(r => (IReadOnlyDictionary<string, GrayImage>)new Dictionary<string, GrayImage>
                    {
                        [SegmentationData.LungsStructure] = train.LoadMask(r, SegmentationData.MaskName(r, SegmentationData.LungsStructure)!, cfg.ImageSize),
                    }).ToList();
                    var extra = addSynthetic ? synthetic : [];
                    var config = seg with { Seed = seed, TrainImages = realImages.Count + extra.Count };
                    var runFolder = Path.Combine(folder, $"s{seed}", arm + "-seg");
                    using (var set = StackMasks(realImages.Concat(extra.Select(s => s.Image)).ToList(), realMasks.Concat(extra.Select(s => s.Masks!)).ToList(),
                               config.Structures, config.Size))
                        SegmentationRuns.Train(config, runFolder, set, $"{realImages.Count} real + {extra.Count} synthetic", _ => { }, cancellation);
                    using var model = Segmenter.Load(runFolder);
                    dice = SegmentationEvaluation.Evaluate(model, test, arm)[SegmentationData.LungsStructure].MeanDice;
                    Directory.CreateDirectory(Path.GetDirectoryName(cellPath)!);
                    AtomicFile.WriteAllText(cellPath, JsonSerializer.Serialize(dice, SyntheticDataStudyResult.JsonOptions));
                    log(string.Create(CultureInfo.InvariantCulture, $"real sample seed={seed} {arm}: lung Dice {dice:0.000} on {test.Count} real images"));
                }
                (addSynthetic ? with : without).Add(dice);
            }
        }
        var (d, lo, hi, p, _) = SyntheticDataStudyResult.PairedGain(with, without);
        return (new RealSampleResult(masked.Count, cfg.RealSampleTrain, synthetic.Count, maskName, seeds, without, with, d, lo, hi, p),
            $"{masked.Count} real images with lung masks, {cfg.RealSampleTrain} trained on and {masked.Count - cfg.RealSampleTrain} tested per split: a small-sample result, read its interval");
    }
}
