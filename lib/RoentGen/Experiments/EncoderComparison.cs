using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Analysis;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation.Probes;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Training;
using RoentGen.Visualization;
using RoentGen.Methods;
using RoentGen.Vision;

namespace RoentGen.Experiments;

/// <summary>
/// The shared budget and setup of an encoder comparison: the DINO recipe whose ViT every encoder shares, the training
/// phantoms (count and world seed), the steps, batch and seed every encoder trains with, and the held-out probe
/// phantoms (another world seed). Round-trips through JSON.
/// </summary>
public sealed record EncoderComparisonConfig
{
    /// <summary>The DINO recipe (its Steps, BatchSize and Seed are replaced by the budget's).</summary>
    public DinoConfig Dino { get; init; } = DinoConfig.Quick;
    /// <summary>Training phantoms P shared by every encoder (cases 0 … P − 1 of world <see cref="WorldSeed"/>).</summary>
    public int Phantoms { get; init; } = 4000;
    /// <summary>World seed of the training phantoms.</summary>
    public long WorldSeed { get; init; } = 1;
    /// <summary>Optimizer steps of every trained encoder.</summary>
    public int Steps { get; init; } = 300;
    /// <summary>Images per step of every trained encoder.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Seed of the weights, data order and augmentations (the random encoder uses it too).</summary>
    public long Seed { get; init; }
    /// <summary>Held-out phantoms for the probes (split 60/20/20 into probe train, validation and test).</summary>
    public int ProbePhantoms { get; init; } = 1000;
    /// <summary>World seed of the probe phantoms (must differ from <see cref="WorldSeed"/>).</summary>
    public long ProbeWorldSeed { get; init; } = 1000;

    /// <summary>Names of the presets.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick"];

    /// <summary>Seconds-long comparison for tests: the tiny DINO ViT, 24 phantoms, 3 steps of 4, 40 probe phantoms.</summary>
    public static EncoderComparisonConfig Tiny { get; } = new()
    {
        Dino = DinoConfig.Tiny, Phantoms = 24, Steps = 3, BatchSize = 4, ProbePhantoms = 40,
    };

    /// <summary>
    /// The CPU comparison: the quick DINO recipe (4-layer ViT of width 128 at 64 px), 4,000 phantoms, 300 steps of 16
    /// images for each encoder, 1,000 held-out probe phantoms.
    /// </summary>
    public static EncoderComparisonConfig Quick { get; } = new();

    /// <summary>A preset by name.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static EncoderComparisonConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Tiny,
        "quick" => Quick,
        _ => throw new ArgumentException($"unknown comparison preset '{name}'; known presets: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>
    /// Probe settings that go with a preset: seconds for tiny; otherwise <see cref="ProbeSuiteOptions.Quick"/> with the
    /// report decoder trained for 1500 steps instead of 120 (shorter decoders wrote the same normal report whatever
    /// the encoder; the measurements are in the Evaluation README).
    /// </summary>
    public static ProbeSuiteOptions ProbesFor(string preset) => preset.Equals("tiny", StringComparison.OrdinalIgnoreCase)
        ? ProbeSuiteOptions.Quick with
        {
            KnnK = 5, BatchSize = 16,
            Linear = LinearProbeOptions.Quick with { LearningRates = [3e-2], WeightDecays = [0], Steps = 20 },
            Segmentation = SegmentationProbeOptions.Quick with { Epochs = 2 },
            Report = ReportProbeOptions.Quick with { Steps = 4, VocabSize = 600, MaxTokens = 48 },
        }
        : ProbeSuiteOptions.Quick with { Report = ReportProbeOptions.Quick with { Steps = 1500 } };

    /// <summary>The DINO run of the comparison: the recipe with the budget's steps, batch and seed (warm-ups kept inside short runs).</summary>
    public DinoConfig DinoRun() => Dino.ForRun(Steps, BatchSize) with { Seed = Seed };

    /// <summary>The supervised run: the DINO run's ViT and schedule on the same phantoms.</summary>
    public SupervisedConfig SupervisedRun() => SupervisedConfig.Matching(DinoRun(), Phantoms, WorldSeed);

    /// <summary>The CLIP-style run: the DINO run's ViT and schedule on the same phantoms and their reports.</summary>
    public ClipConfig ClipRun() => ClipConfig.Matching(DinoRun(), Phantoms, WorldSeed);

    /// <summary>The ViT every encoder shares (at the global crop size).</summary>
    public VitConfig Vit() => Dino.Vit with { ImageSize = Dino.Crops.GlobalSize };

    /// <summary>The training phantoms as records (the side the DINO recipe loads sources at, 64 to 512 px), drawn on first use.</summary>
    public TrainingRecords CreatePool(int? phantoms = null) =>
        TrainingRecords.Phantoms(new PhantomOptions { Size = Math.Clamp(Dino.SourceSize, 64, 512), Seed = WorldSeed }, phantoms ?? Phantoms);

    /// <summary>Checks the setup.</summary>
    /// <exception cref="ArgumentException">A field is out of range, or probe and training phantoms share a world.</exception>
    public void Validate()
    {
        DinoRun().Validate();
        if (Phantoms < 2) throw new ArgumentException($"Phantoms must be at least 2, got {Phantoms}");
        if (BatchSize < 2) throw new ArgumentException($"BatchSize must be at least 2 (CLIP needs negatives, KoLeo neighbours), got {BatchSize}");
        if (ProbePhantoms < 6) throw new ArgumentException($"ProbePhantoms must be at least 6 (train, validation and test need images), got {ProbePhantoms}");
        if (ProbeWorldSeed == WorldSeed) throw new ArgumentException($"ProbeWorldSeed must differ from WorldSeed ({WorldSeed}): probes are judged on held-out phantoms");
    }

    /// <summary>The config as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, SafeTensors.ConfigJsonOptions);

    /// <summary>Reads a config file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not an EncoderComparisonConfig.</exception>
    public static EncoderComparisonConfig Load(string path) => RunFolder.ReadConfig<EncoderComparisonConfig>(path, "encoder comparison");
}

/// <summary>What the probes measured for one encoder (read back from JSON as well as made from a <see cref="ProbeResults"/>).</summary>
/// <param name="Encoder">Column name.</param>
/// <param name="Metrics">Every number.</param>
/// <param name="NotAvailable">Probes that could not run, with the reason.</param>
/// <param name="Seconds">Probe wall time.</param>
public sealed record EncoderProbes(string Encoder, IReadOnlyList<ProbeMetric> Metrics, IReadOnlyDictionary<string, string> NotAvailable, double Seconds)
{
    /// <summary>The value of a metric key ("linear/macro_auc"), NaN when absent.</summary>
    public double this[string key] => Metrics.FirstOrDefault(m => m.Key == key)?.Value ?? double.NaN;

    /// <summary>From a probe suite's result, renamed.</summary>
    public static EncoderProbes From(ProbeResults r, string name) => new(name, r.Metrics, new Dictionary<string, string>(r.NotAvailable), r.Seconds);

    /// <summary>Parses <see cref="ProbeResults.ToJson"/> output (metrics, not_available, seconds).</summary>
    /// <exception cref="InvalidDataException">The JSON lacks a metrics array.</exception>
    public static EncoderProbes FromJson(JsonNode node, string name)
    {
        var metrics = node["metrics"] as JsonArray ?? throw new InvalidDataException($"probe results of {name} have no 'metrics' array");
        var list = metrics.Select(m => new ProbeMetric(m!["probe"]!.GetValue<string>(), m["metric"]!.GetValue<string>(),
            m["value"] is JsonNode v ? v.GetValue<double>() : double.NaN)).ToList();
        var na = (node["not_available"] as JsonObject)?.ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<string>() ?? "") ?? new Dictionary<string, string>();
        return new EncoderProbes(name, list, na, node["seconds"]?.GetValue<double>() ?? 0);
    }

    /// <summary>JSON in the layout of <see cref="ProbeResults.ToJson"/> (without details).</summary>
    public JsonObject ToJson() => new()
    {
        ["encoder"] = Encoder, ["seconds"] = Math.Round(Seconds, 2),
        ["metrics"] = new JsonArray(Metrics.Select(m => (JsonNode)new JsonObject
            { ["probe"] = m.Probe, ["metric"] = m.Metric, ["value"] = double.IsFinite(m.Value) ? JsonValue.Create(m.Value) : null }).ToArray()),
        ["not_available"] = new JsonObject(NotAvailable.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
    };

    /// <summary>
    /// A table of several encoders: one row per metric key (first-seen order), one column per encoder, null where a
    /// value is missing or undefined.
    /// </summary>
    public static DataFrame Table(IReadOnlyList<EncoderProbes> encoders)
    {
        var keys = new List<string>();
        foreach (var e in encoders) foreach (var m in e.Metrics) if (!keys.Contains(m.Key)) keys.Add(m.Key);
        var cols = new List<DataFrameColumn> { new StringDataFrameColumn("metric", keys) };
        foreach (var e in encoders)
            cols.Add(new DoubleDataFrameColumn(e.Encoder, keys.Select(k => double.IsFinite(e[k]) ? e[k] : (double?)null)));
        return new DataFrame(cols);
    }
}

/// <summary>One row of the claim table: what RAD-DINO claims for a probe and whether this comparison measured it.</summary>
/// <param name="Metric">Metric key.</param>
/// <param name="What">What the metric measures.</param>
/// <param name="Claim">The paper's claim for it.</param>
/// <param name="Dino">Images-only encoder.</param>
/// <param name="Clip">Language-supervised encoder.</param>
/// <param name="Supervised">Label-supervised encoder.</param>
/// <param name="Random">Random-init encoder.</param>
/// <param name="Advantage">DINO's advantage over CLIP (positive = DINO better; for errors, CLIP's error minus DINO's, relative).</param>
/// <param name="Holds">Whether the claim holds here (null when a value is missing, or when all four encoders score the same, which decides nothing).</param>
public sealed record ClaimCheck(string Metric, string What, string Claim, double Dino, double Clip, double Supervised, double Random, double Advantage, bool? Holds);

/// <summary>The four-encoder comparison: each encoder's training, each encoder's probes, the tables.</summary>
public sealed class EncoderComparisonResult
{
    /// <summary>Column order of the tables.</summary>
    public static IReadOnlyList<string> EncoderNames { get; } = ["dino", "clip", "supervised", "random"];

    /// <summary>Creates a result.</summary>
    /// <param name="config">The setup.</param>
    /// <param name="runs">Training of the trained encoders.</param>
    /// <param name="probes">Probe results per encoder.</param>
    /// <param name="folder">The comparison folder (comparison.json and the run folders), when there is one.</param>
    public EncoderComparisonResult(EncoderComparisonConfig config, IReadOnlyList<EncoderRun> runs, IReadOnlyList<EncoderProbes> probes, string? folder = null)
    {
        Config = config; Runs = runs; Probes = probes; Folder = folder;
    }

    /// <summary>
    /// The folder the comparison was run into or loaded from (null for one built in memory); <see cref="OpenEncoders()"/>
    /// looks for the run folders there first.
    /// </summary>
    public string? Folder { get; }

    /// <summary>The setup.</summary>
    public EncoderComparisonConfig Config { get; }
    /// <summary>Training of the three trained encoders.</summary>
    public IReadOnlyList<EncoderRun> Runs { get; }
    /// <summary>Probe results per encoder (column order).</summary>
    public IReadOnlyList<EncoderProbes> Probes { get; }

    /// <summary>The probes of one encoder by name.</summary>
    /// <exception cref="KeyNotFoundException">No such encoder.</exception>
    public EncoderProbes this[string encoder] => Probes.FirstOrDefault(p => p.Encoder == encoder)
        ?? throw new KeyNotFoundException($"no encoder '{encoder}' in the comparison; it has {string.Join(", ", Probes.Select(p => p.Encoder))}");

    /// <summary>Every probe metric (rows) for every encoder (columns: dino, clip, supervised, random).</summary>
    public DataFrame ToDataFrame() => EncoderProbes.Table(Probes);

    /// <summary>
    /// RAD-DINO's claims (Pérez-García et al. 2024) next to what was measured here: images-only (DINO) matches or beats
    /// language supervision (CLIP) on findings, segmentation and report generation, and beats it clearly on what reports
    /// never say (sex, age). "Matches" allows <paramref name="margin"/> (AUC, Dice, F1, r; relative for the age error).
    /// </summary>
    public IReadOnlyList<ClaimCheck> Claims(double margin = 0.02)
    {
        var rows = new (string Key, string What, string Claim, bool LowerBetter, bool Clearly)[]
        {
            ("linear/macro_auc", "14 findings, linear probe (macro AUC)", "matches or beats language supervision", false, false),
            ("knn/macro_auc", "14 findings, k-NN (macro AUC)", "matches or beats language supervision", false, false),
            ("segmentation/mean_dice", "lungs, heart, effusion from patch tokens (mean Dice)", "matches or beats language supervision", false, false),
            ("report/macro_f1", "report generation from frozen tokens (labeler macro F1)", "matches or beats language supervision", false, false),
            ("sex/auc", "sex, never in the report (AUC)", "beats language supervision clearly", false, true),
            ("age/mae_years", "age, never in the report (MAE, years; lower is better)", "beats language supervision clearly", true, true),
            ("age/pearson", "age, never in the report (Pearson r)", "beats language supervision clearly", false, true),
        };
        double V(string enc, string key) => Probes.FirstOrDefault(p => p.Encoder == enc)?[key] ?? double.NaN;
        return rows.Select(r =>
        {
            double d = V("dino", r.Key), c = V("clip", r.Key);
            double adv = r.LowerBetter ? (c - d) / Math.Max(Math.Abs(c), 1e-9) : d - c;
            double[] all = [d, c, V("supervised", r.Key), V("random", r.Key)];
            // All four equal (e.g. every report decoder writes the same report) decides nothing either way.
            bool informative = all.All(double.IsFinite) && all.Max() - all.Min() > 1e-9;
            bool? holds = double.IsFinite(adv) && informative ? (r.Clearly ? adv > margin : adv >= -margin) : null;
            return new ClaimCheck(r.Key, r.What, r.Claim, d, c, V("supervised", r.Key), V("random", r.Key), adv, holds);
        }).ToList();
    }

    /// <summary><see cref="Claims"/> as a table: metric, what, claim, the four encoders, DINO − CLIP, holds here.</summary>
    public DataFrame ClaimTable(double margin = 0.02)
    {
        var c = Claims(margin);
        static double? N(double v) => double.IsFinite(v) ? v : null;
        return new DataFrame(
            new StringDataFrameColumn("metric", c.Select(x => x.Metric)),
            new StringDataFrameColumn("measures", c.Select(x => x.What)),
            new StringDataFrameColumn("RAD-DINO claim (images-only vs text-supervised)", c.Select(x => x.Claim)),
            new DoubleDataFrameColumn("dino", c.Select(x => N(x.Dino))),
            new DoubleDataFrameColumn("clip", c.Select(x => N(x.Clip))),
            new DoubleDataFrameColumn("supervised", c.Select(x => N(x.Supervised))),
            new DoubleDataFrameColumn("random", c.Select(x => N(x.Random))),
            new DoubleDataFrameColumn("dino advantage", c.Select(x => N(x.Advantage))),
            new StringDataFrameColumn("measured here", c.Select(x => x.Holds switch { true => "holds", false => "does not hold", null => "undecided (missing, or all four encoders equal)" })));
    }

    /// <summary>A one-paragraph summary of the claim table, whichever way it came out.</summary>
    public string Summary(double margin = 0.02)
    {
        var c = Claims(margin).Where(x => x.Holds is not null).ToList();
        if (c.Count == 0) return "No claim could be checked: the DINO or CLIP probes are missing.";
        var held = c.Where(x => x.Holds == true).Select(x => x.Metric).ToList();
        var failed = c.Where(x => x.Holds == false).Select(x => x.Metric).ToList();
        return $"After {Config.Steps} steps of {Config.BatchSize} on {Config.Phantoms} phantoms, RAD-DINO's claim holds on {held.Count} of {c.Count} metrics"
               + (held.Count > 0 ? $" ({string.Join(", ", held)})" : "")
               + (failed.Count > 0 ? $" and does not hold on {string.Join(", ", failed)}" : "") + $" (margin {margin}).";
    }

    /// <summary>JSON: config, runs, per-encoder probes, and the claim table.</summary>
    public string ToJson()
    {
        static JsonNode? N(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
        var root = new JsonObject
        {
            ["config"] = JsonNode.Parse(Config.ToJson()),
            ["runs"] = new JsonArray(Runs.Select(r => (JsonNode)new JsonObject
            {
                ["kind"] = r.Kind, ["folder"] = r.Folder, ["encoder_folder"] = r.EncoderFolder, ["trained_now"] = r.TrainedNow,
                ["steps"] = r.Steps, ["seconds"] = Math.Round(r.Seconds, 2), ["final_loss"] = N(r.FinalLoss),
            }).ToArray()),
            ["encoders"] = new JsonArray(Probes.Select(p => (JsonNode)p.ToJson()).ToArray()),
            ["claims"] = new JsonArray(Claims().Select(c => (JsonNode)new JsonObject
            {
                ["metric"] = c.Metric, ["claim"] = c.Claim, ["dino"] = N(c.Dino), ["clip"] = N(c.Clip), ["supervised"] = N(c.Supervised),
                ["random"] = N(c.Random), ["dino_advantage"] = N(c.Advantage), ["holds"] = c.Holds,
            }).ToArray()),
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Reads a comparison.json written by <see cref="Save"/>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a comparison file.</exception>
    public static EncoderComparisonResult Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"comparison file not found: {path}", path);
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path} is empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        if (root["config"] is not JsonObject cfgNode || root["encoders"] is not JsonArray encoders)
            throw new InvalidDataException($"{path}: not an encoder comparison (needs 'config' and 'encoders')");
        var config = JsonSerializer.Deserialize<EncoderComparisonConfig>(cfgNode.ToJsonString(), SafeTensors.ConfigJsonOptions)!;
        var runs = (root["runs"] as JsonArray ?? new JsonArray()).Select(r => new EncoderRun(r!["kind"]!.GetValue<string>(), r["folder"]!.GetValue<string>(),
            r["encoder_folder"]!.GetValue<string>(), r["trained_now"]!.GetValue<bool>(), r["steps"]!.GetValue<int>(), r["seconds"]!.GetValue<double>(),
            r["final_loss"] is JsonNode l ? l.GetValue<double>() : double.NaN)).ToList();
        var probes = encoders.Select(e => EncoderProbes.FromJson(e!, e!["encoder"]!.GetValue<string>())).ToList();
        return new EncoderComparisonResult(config, runs, probes, Path.GetDirectoryName(Path.GetFullPath(path)));
    }

    /// <summary>Writes <see cref="ToJson"/> atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    /// <summary>Grouped bars of the headline metrics (<see cref="ProbeResults.HeadlineKeys"/>), one colour per encoder.</summary>
    public Figure Chart(string title = "probes of the four encoders (held-out phantoms)") =>
        GroupedBars.Of(title, Probes.Select(p => (p.Encoder, ProbeResults.HeadlineKeys, (Func<string, double>)(k => p[k]))), ProbeResults.HeadlineAxisTitle);

    /// <summary>
    /// The four encoders, named as in the tables: the trained ones loaded from their run folders (under
    /// <see cref="Folder"/> first, then as recorded; they must still exist), and the random-init ViT rebuilt from the
    /// config's seed.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">A run folder is gone.</exception>
    public IReadOnlyList<IImageEncoder> OpenEncoders() => OpenEncoders(Folder);

    /// <summary>
    /// The four encoders (see <see cref="OpenEncoders()"/>), with the trained ones looked up under
    /// <paramref name="comparisonFolder"/> first: comparison.json records run folders as they were given when it was
    /// written (often relative to another working directory), so a comparison opened from elsewhere or moved as a
    /// whole is found at COMPARISON/KIND/ENCODER_SUBFOLDER. Null uses the recorded paths only.
    /// </summary>
    /// <param name="comparisonFolder">The folder holding comparison.json and the run folders, or null.</param>
    /// <exception cref="DirectoryNotFoundException">A run folder is neither under the comparison folder nor at its recorded path.</exception>
    public IReadOnlyList<IImageEncoder> OpenEncoders(string? comparisonFolder)
    {
        var list = new List<IImageEncoder>();
        foreach (var name in EncoderNames)
        {
            if (name == "random") { list.Add(new VitEncoder(new RandomEncoder(Config.Vit(), Config.Seed).Model, name)); continue; }
            var run = Runs.FirstOrDefault(r => r.Kind == name);
            if (run is null) continue;
            list.Add(new VitEncoder(VitEncoder.Load(EncoderFolderOf(run, comparisonFolder)).Model, name));
        }
        return list;
    }

    // The run's encoder folder under the comparison folder when it is there, else as recorded.
    private static string EncoderFolderOf(EncoderRun run, string? comparisonFolder)
    {
        if (comparisonFolder is null) return run.EncoderFolder;
        var inside = Path.GetRelativePath(run.Folder, run.EncoderFolder);
        var candidate = Path.Combine(comparisonFolder, Path.GetFileName(Path.TrimEndingDirectorySeparator(run.Folder)), inside);
        if (Directory.Exists(candidate)) return candidate;
        if (Directory.Exists(run.EncoderFolder)) return run.EncoderFolder;
        throw new DirectoryNotFoundException($"encoder '{run.Kind}' of the comparison in {comparisonFolder} is neither at {candidate} nor at its recorded path {run.EncoderFolder}");
    }
}

/// <summary>
/// RAD-DINO's central comparison on phantoms: a DINOv2-style encoder (images only), a supervised encoder (the same ViT
/// on the 14 labels), a CLIP-style encoder (the same ViT against the reports) and a random-init encoder, the three
/// trained on the same phantoms for the same number of steps, judged by the same probes on held-out phantoms. Each
/// encoder trains into its own folder under the output folder (dino/, supervised/, clip/) and checkpoints; a rerun
/// finds finished encoders and cached probe results (DIR/NAME/probes.json) and redoes nothing.
/// </summary>
public static class EncoderComparison
{
    /// <summary>File name of the result inside the output folder.</summary>
    public const string ResultFile = "comparison.json";
    /// <summary>File name of the cached probe results inside an encoder folder.</summary>
    public const string ProbesFile = "probes.json";

    /// <summary>Runs (or resumes) the comparison into <paramref name="outDir"/> and writes comparison.json there.</summary>
    /// <param name="config">The setup.</param>
    /// <param name="outDir">Output folder.</param>
    /// <param name="probes">Probe settings (default: <see cref="ProbeSuiteOptions.Quick"/>).</param>
    /// <param name="log">Progress lines (default: the console).</param>
    /// <param name="cancellation">Stops training between steps.</param>
    /// <exception cref="ArgumentException">The config is inconsistent.</exception>
    /// <exception cref="InvalidOperationException">An encoder folder holds a run of another config.</exception>
    public static EncoderComparisonResult Run(EncoderComparisonConfig config, string outDir, ProbeSuiteOptions? probes = null,
        Action<string>? log = null, CancellationToken cancellation = default) => RunWithProbeData(config, outDir, probes, log, null, cancellation);

    /// <summary>The held-out probe phantoms of a config (generated on first use).</summary>
    internal static Lazy<ProbeData> ProbeDataFor(EncoderComparisonConfig config) =>
        new(() => ProbeData.FromPhantoms(config.ProbePhantoms, config.Vit().ImageSize, config.ProbeWorldSeed));

    // As above, with probe data that runs of the same probe setup (e.g. other seeds) can share.
    internal static EncoderComparisonResult RunWithProbeData(EncoderComparisonConfig config, string outDir, ProbeSuiteOptions? probes,
        Action<string>? log, Lazy<ProbeData>? data, CancellationToken cancellation)
    {
        config.Validate();
        log ??= Console.WriteLine;
        probes ??= ProbeSuiteOptions.Quick;
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteAllText(Path.Combine(outDir, "comparison.config.json"), config.ToJson());
        var pool = config.CreatePool();
        log($"training pool: {pool.Description}; {config.Steps} steps of {config.BatchSize} per encoder");

        var runs = new List<EncoderRun>
        {
            Logged(log, EncoderRuns.Dino(config.DinoRun(), pool, Path.Combine(outDir, "dino"), cancellation)),
            Logged(log, EncoderRuns.Clip(config.ClipRun(), pool, Path.Combine(outDir, "clip"), cancellation)),
            Logged(log, EncoderRuns.Supervised(config.SupervisedRun(), pool, Path.Combine(outDir, "supervised"), cancellation)),
        };
        data ??= ProbeDataFor(config);
        var results = new List<EncoderProbes>();
        foreach (var run in runs)
            results.Add(ProbeCached(run.Kind, run.Folder, () => VitEncoder.Load(run.EncoderFolder), run.TrainedNow, config, data, probes, log));
        results.Add(ProbeCached("random", Path.Combine(outDir, "random"), () => new RandomEncoder(config.Vit(), config.Seed), false, config, data, probes, log));
        var result = new EncoderComparisonResult(config, runs, results, outDir);
        result.Save(Path.Combine(outDir, ResultFile));
        return result;
    }

    /// <summary>
    /// Probes an encoder, or reads its cached results from DIR/probes.json when they were made with the same probe data
    /// and settings and the encoder was not retrained since.
    /// </summary>
    internal static EncoderProbes ProbeCached(string name, string dir, Func<IImageEncoder> open, bool retrained, EncoderComparisonConfig config,
        Lazy<ProbeData> data, ProbeSuiteOptions probes, Action<string> log)
    {
        var path = Path.Combine(dir, ProbesFile);
        var spec = JsonSerializer.Serialize(new { config.ProbePhantoms, config.ProbeWorldSeed, Size = config.Vit().ImageSize, Probes = probes });
        if (!retrained && File.Exists(path))
        {
            var cached = JsonNode.Parse(File.ReadAllText(path));
            if (cached?["spec"]?.GetValue<string>() == spec && cached["results"] is JsonNode r)
            {
                log($"{name}: probe results from {path}");
                return EncoderProbes.FromJson(r, name);
            }
        }
        var encoder = open();
        log($"{name}: probing ({data.Value.Name})");
        var results = ProbeSuite.Run(encoder, data.Value, probes);
        var probed = EncoderProbes.From(results, name);
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(path, new JsonObject { ["spec"] = spec, ["results"] = JsonNode.Parse(results.ToJson()) }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        log($"{name}: {results}");
        return probed;
    }

    private static EncoderRun Logged(Action<string> log, EncoderRun run)
    {
        log(run.TrainedNow
            ? $"{run.Kind}: trained {run.Steps} steps in {run.Seconds:F0} s, final loss {run.FinalLoss:F4} ({run.EncoderFolder})"
            : $"{run.Kind}: finished encoder found in {run.EncoderFolder} ({run.Steps} steps); not retrained");
        return run;
    }
}
