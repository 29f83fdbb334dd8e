using System.CommandLine;
using System.Globalization;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using RoentGen.Evaluation.Probes;
using RoentGen.Experiments;
using RoentGen.Methods;
using RoentGen.PairAug;
using RoentGen.Platform;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Cli.Commands;

/// <summary>
/// The image and vision-language verbs of <c>roentgen pairaug</c>:
/// <c>inter|intra --rewrites FILE.jsonl --generator DIR --clip DIR --out DIR [--shard i/N]</c> (new pairs, pruned),
/// <c>pretrain --data phantoms|FOLDER [--pairs pairs.jsonl ...] --out DIR</c> (the CLIP-style model as one unit),
/// <c>evaluate --model DIR --data phantoms|FOLDER --json F</c> (zero-shot with intervals, probes at 1/10/100 %), and
/// <c>study --preset quick|tiny --out DIR</c> (<see cref="PairAugStudy"/>: results.json and report.html, resumable).
/// </summary>
internal static class PairAugVlpCommands
{
    /// <summary>The verbs, to add under <c>pairaug</c>.</summary>
    public static IEnumerable<Command> Build() => [BuildBranch(inter: true), BuildBranch(inter: false), BuildPretrain(), BuildEvaluate(), BuildStudy()];

    private static Command BuildBranch(bool inter)
    {
        string name = inter ? "inter" : "intra";
        var rewrites = new Option<FileInfo>("--rewrites")
        {
            Description = $"Kept rewrites from 'roentgen pairaug rewrite --op {(inter ? "partial-opposite" : "change-in-symptoms")} --out FILE.jsonl'.", Required = true,
        };
        var generator = new Option<string>("--generator") { Description = "A trained text-to-CXR folder (roentgen train / quickstart output, or a diffusers folder).", Required = true };
        var clip = new Option<string>("--clip") { Description = "The CLIP-style model that scores the pairs (roentgen pairaug pretrain --out DIR).", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder: images/, pairs.jsonl (every pair, its scores and kept flag) and labels.csv (the kept pairs, generic layout); with --shard: shards/TAG/, merged when every shard is done.", Required = true };
        var steps = new Option<int>("--steps") { Description = $"DDIM steps (PairAug: {(inter ? 50 : 75)}).", DefaultValueFactory = _ => inter ? 50 : 75 };
        var guidance = new Option<double>("--guidance") { Description = "Guidance scale (PairAug: 4).", DefaultValueFactory = _ => 4 };
        var seed = new Option<long>("--seed") { Description = "Base seed: rewrite i draws from seed + i (the same with or without --shard).", DefaultValueFactory = _ => 0 };
        var limit = new Option<int?>("--limit") { Description = "Use at most this many rewrites (the first ones)." };
        var threshold = new Option<double>("--threshold") { Description = "InterAug: keep a pair when logit scale x cosine is above this (PairAug: 0.3).", DefaultValueFactory = _ => PairPruning.InterAugThreshold };
        var margin = new Option<double>("--margin") { Description = "IntraAug: keep a pair when each score is above its mean minus this (PairAug: 0.003).", DefaultValueFactory = _ => PairPruning.IntraAugMargin };
        var realImages = new Option<string?>("--real-images") { Description = "IntraAug: a labels.csv folder whose records (by id or file) are the rewrites' sources; the first --invert of them are edited from the real image." };
        var invert = new Option<int>("--invert") { Description = "IntraAug: how many sources to edit from their real image (DDIM inversion + null-text optimisation).", DefaultValueFactory = _ => 0 };
        var nullIterations = new Option<int>("--null-text-iterations") { Description = "IntraAug: Adam iterations per step of null-text optimisation (the paper: 10).", DefaultValueFactory = _ => 10 };
        var shard = ShardOption.Create();
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var cmd = new Command(name, inter
            ? "InterAug: draw each rewritten report (partial opposite) with the generator, score image and report with the CLIP model, keep pairs above the threshold; prints the counts."
            : "IntraAug: edit each original into its rewrite (change in symptoms) by prompt-to-prompt refine from one shared latent (or from the inverted real image), prune by the three scores; prints the counts.")
            { rewrites, generator, clip, output, steps, guidance, seed, limit, shard, threads };
        if (inter) cmd.Options.Add(threshold);
        else { cmd.Options.Add(margin); cmd.Options.Add(realImages); cmd.Options.Add(invert); cmd.Options.Add(nullIterations); }
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            double thresholdValue = inter ? parse.GetValue(threshold) : PairPruning.InterAugThreshold;
            double marginValue = inter ? PairPruning.IntraAugMargin : parse.GetValue(margin);
            if (parse.GetValue(limit) is int l && l < 1) throw new ArgumentException($"--limit must be at least 1, got {l}");
            var rewritesFile = parse.GetValue(rewrites)!.FullName;
            var all = RewriteFiles.ReadRewrites(rewritesFile);
            // InterAug draws partially opposite reports; IntraAug edits towards a change in symptoms. The other file would run without complaint.
            var expected = inter ? RewriteOperation.PartialOpposite : RewriteOperation.ChangeInSymptoms;
            if (all.FirstOrDefault(r => r.Operation != expected) is { } wrong)
                throw new ArgumentException($"--rewrites: {rewritesFile} holds {wrong.Operation.CliName()} rewrites (first: '{wrong.Id}'); pairaug {name} needs {expected.CliName()} rewrites (roentgen pairaug rewrite --op {expected.CliName()})");
            if (parse.GetValue(limit) is int n) all = all.Take(n).ToList();
            if (all.Count == 0) throw new ArgumentException($"--rewrites: {rewritesFile} holds no kept rewrite");
            var outDir = Path.GetFullPath(parse.GetValue(output)!);
            var part = ShardOption.Get(parse, shard);
            var range = (part ?? Shard.Whole).Range(all.Count);
            var mine = all.Skip(range.Start).Take(range.Count).ToList();
            string folder = part is null ? outDir : PairAugShards.ShardFolder(outDir, part);
            long baseSeed = parse.GetValue(seed) + range.Start;
            string generatorDir = Path.GetFullPath(parse.GetValue(generator)!), clipDir = Path.GetFullPath(parse.GetValue(clip)!);
            // Weights are pinned when the folders are there (a shard that owns no rewrite loads neither; a later shard adds them).
            string Text(double v) => v.ToString("R", CultureInfo.InvariantCulture);
            PairAugShards.PinSettings(outDir, new Dictionary<string, string?>
            {
                ["rewrites"] = $"{rewritesFile} ({all.Count} used, {ModelFingerprint.OfFiles(Path.GetDirectoryName(rewritesFile)!, [Path.GetFileName(rewritesFile)])})",
                ["generator"] = generatorDir, ["generator weights"] = Directory.Exists(generatorDir) ? ModelFingerprint.Of(generatorDir) : null,
                ["clip"] = clipDir, ["clip weights"] = ClipModel.Exists(clipDir) ? ClipModel.Fingerprint(clipDir) : null,
                ["steps"] = parse.GetValue(steps).ToString(CultureInfo.InvariantCulture), ["guidance"] = Text(parse.GetValue(guidance)),
                ["seed"] = parse.GetValue(seed).ToString(CultureInfo.InvariantCulture),
                ["threshold"] = inter ? Text(thresholdValue) : null, ["margin"] = inter ? null : Text(marginValue),
                ["invert"] = inter ? null : parse.GetValue(invert).ToString(CultureInfo.InvariantCulture),
                ["null-text iterations"] = inter || parse.GetValue(invert) == 0 ? null : parse.GetValue(nullIterations).ToString(CultureInfo.InvariantCulture),
                ["real images"] = inter || parse.GetValue(invert) == 0 ? null : Path.GetFullPath(parse.GetValue(realImages) ?? "-"),
            });
            if (PairAugShards.IsDone(folder)) Console.WriteLine($"{Cli.Escape(folder)} already holds its pairs; nothing to draw");
            else if (mine.Count == 0)
            {
                // Done with nothing to draw: an empty pairs.jsonl lets the merge count this shard.
                var empty = PairAugShards.FinishEmpty(folder);
                Console.WriteLine($"shard {part} owns none of the {all.Count} rewrites; wrote an empty {Cli.Escape(empty.PairsFile)}");
            }
            else
            {
                var pipeline = LatentDiffusionRuns.LoadPipeline(parse.GetValue(generator)!);
                using var model = ClipModel.Load(parse.GetValue(clip)!);
                double scale;
                using (no_grad()) scale = model.Heads.LogitScale().item<float>();
                var embedder = new ClipModelEmbedder(model);
                AugmentationResult result;
                if (inter)
                {
                    result = PairAugmentation.InterAug(pipeline, embedder, mine, new InterAugOptions
                    {
                        Steps = parse.GetValue(steps), GuidanceScale = parse.GetValue(guidance), Seed = baseSeed, Threshold = thresholdValue, LogitScale = scale,
                    }, folder);
                }
                else
                {
                    var defaults = new IntraAugOptions();
                    var options = defaults with
                    {
                        Edit = defaults.Edit with { Steps = parse.GetValue(steps), GuidanceScale = parse.GetValue(guidance) },
                        NullText = defaults.NullText with { InnerIterations = parse.GetValue(nullIterations) },
                        Margin = marginValue,
                    };
                    using var scope = NewDisposeScope();
                    // The first --invert sources of the whole list (not of this shard's part), so sharded and whole runs edit the same ones.
                    var reals = RealSources(parse.GetValue(realImages), parse.GetValue(invert), all, pipeline);
                    if (reals is not null)
                    {
                        var ids = mine.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
                        foreach (var key in reals.Keys.Where(k => !ids.Contains(k)).ToList()) { reals[key].Dispose(); reals.Remove(key); }
                        Console.WriteLine($"editing {reals.Count} real image(s) by DDIM inversion and null-text optimisation");
                        if (reals.Count == 0) reals = null;
                    }
                    result = PairAugmentation.IntraAug(pipeline, embedder, mine, options, folder, baseSeed, reals);
                }
                Console.WriteLine(string.Join(", ", result.Counts.Select(kv => $"{kv.Key} {kv.Value}")));
                Console.WriteLine($"wrote {Cli.Escape(result.PairsFile)}");
                if (part is null) Console.WriteLine($"wrote {Cli.Escape(PairsCsv.Write(result.PairsFile, inter ? "interaug" : "intraaug"))} (the kept pairs, generic layout)");
            }
            if (part is not null)
            {
                var merged = PairAugShards.MergeIfComplete(outDir, part.Count, thresholdValue, marginValue);
                Console.WriteLine(merged is null
                    ? $"shard {part} done; when all {part.Count} shards are done, any of them (or a rerun) writes {Cli.Escape(Path.Combine(outDir, PairAugmentation.PairsFileName))}"
                    : $"all {part.Count} shards done, pruned together: {string.Join(", ", merged.Counts.Select(kv => $"{kv.Key} {kv.Value}"))}; wrote {Cli.Escape(merged.PairsFile)} "
                      + $"and {Cli.Escape(PairsCsv.Write(merged.PairsFile, inter ? "interaug" : "intraaug"))}");
            }
        }));
        return cmd;
    }

    // The real images of the first `count` rewrites whose source is a record of the folder (matched by id or image file), at the generator's size.
    private static Dictionary<string, Tensor>? RealSources(string? folder, int count, IReadOnlyList<ReportRewrite> rewrites, TextToImagePipeline pipeline)
    {
        if (count < 0) throw new ArgumentException($"--invert must be 0 or more, got {count}");
        if (count == 0) return null;
        if (folder is null) throw new ArgumentException("--invert needs --real-images FOLDER (the labels.csv folder the rewritten reports came from)");
        var data = ImageFolderLoader.LoadFolder(folder, new LoadOptions { AllowOutsideRoot = true });
        int size = pipeline.LatentSize * pipeline.Vae.Config.DownsampleFactor;
        var byKey = new Dictionary<string, CxrRecord>(StringComparer.Ordinal);
        foreach (var r in data)
        {
            byKey.TryAdd(r.Id, r);
            if (r.ImagePath is { } p) byKey.TryAdd(Path.GetRelativePath(data.Root, p).Replace('\\', '/'), r);
        }
        var reals = new Dictionary<string, Tensor>();
        foreach (var rw in rewrites)
        {
            if (reals.Count == count) break;
            if (byKey.TryGetValue(rw.Id, out var record)) reals[rw.Id] = RoentGen.Data.ImageTensors.Stack([data.LoadImage(record, size)]).MoveToOuterDisposeScope();
        }
        if (reals.Count == 0) throw new ArgumentException($"--real-images {folder}: none of the rewrites' ids ({string.Join(", ", rewrites.Take(3).Select(r => r.Id))}, ...) is a record id or image file there");
        return reals;
    }

    private static Command BuildPretrain()
    {
        var preset = new Option<string>("--preset") { Description = $"Model and budget: {string.Join(", ", ClipConfig.PresetNames)}.", DefaultValueFactory = _ => "quick" };
        var config = new Option<string?>("--config") { Description = "A ClipConfig JSON file (overrides --preset)." };
        var data = new Option<string>("--data")
        {
            Description = "'phantoms' (the config's world and count), or a labels.csv folder whose records have reports.", DefaultValueFactory = _ => "phantoms",
        };
        var pairs = new Option<FileInfo[]>("--pairs") { Description = "Augmented pairs to add (pairs.jsonl of pairaug inter/intra; kept pairs only); repeatable.", AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--out") { Description = "Run folder (resumable); the model as one unit in DIR/model (config, towers, projections, temperature, tokenizer).", Required = true };
        var steps = new Option<int?>("--steps") { Description = "Total optimizer steps (overrides the config)." };
        var seed = new Option<long?>("--seed") { Description = "Seed (overrides the config)." };
        var phantoms = new Option<int?>("--phantoms") { Description = "Real phantom pairs (overrides the config; with --data phantoms)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var outside = Cli.AllowOutsideRootOption();
        var cmd = new Command("pretrain", "CLIP-style pretraining (symmetric InfoNCE, learnable temperature) on real pairs and optional augmented pairs; the model is saved as one unit.")
            { preset, config, data, pairs, output, steps, seed, phantoms, threads, outside };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var dir = Path.GetFullPath(parse.GetValue(output)!);
            var cfg = TrainBaselineCommand.Resolve(dir, parse.GetValue(config), () => ClipConfig.FromPreset(parse.GetValue(preset)!), ClipConfig.Load);
            cfg = cfg with { Steps = parse.GetValue(steps) ?? cfg.Steps, Seed = parse.GetValue(seed) ?? cfg.Seed, Phantoms = parse.GetValue(phantoms) ?? cfg.Phantoms };
            cfg.Validate();
            var source = parse.GetValue(data)!;
            CxrDataset real = source.Equals("phantoms", StringComparison.OrdinalIgnoreCase)
                ? TrainingRecords.Phantoms(new PhantomOptions { Size = cfg.SourceSize, Seed = cfg.WorldSeed }, cfg.Phantoms).Dataset!
                : ClipTraining.WithReports(ImageFolderLoader.LoadFolder(source, new LoadOptions { AllowOutsideRoot = parse.GetValue(outside) }));
            var pairFiles = parse.GetValue(pairs) ?? [];
            foreach (var f in pairFiles)
                if (!f.Exists) throw new FileNotFoundException($"--pairs: {f.FullName} does not exist; expected a pairs.jsonl of pairaug inter or intra", f.FullName);
            PairAugmentation.PinTrainingData(dir, $"{real.Name}: {real.Count} pairs", pairFiles.Select(f => f.FullName).ToList());
            var parts = new List<CxrDataset> { real };
            foreach (var f in pairFiles)
                parts.Add(PairAugmentation.ToDataset(f.FullName, name: Path.GetFileName(Path.GetDirectoryName(f.FullName)) ?? "pairs"));
            var all = parts.Count == 1 ? real : CxrDataset.Concat("real+augmented", [.. parts]);
            Console.WriteLine($"CLIP: ViT {cfg.Vit.Layers}x{cfg.Vit.HiddenSize} at {cfg.Vit.ImageSize} px + text {cfg.Text.Layers}x{cfg.Text.HiddenSize}, batch {cfg.BatchSize}, {cfg.Steps} steps, seed {cfg.Seed}; "
                + $"{all.Count} pairs ({string.Join(" + ", parts.Select(p => $"{p.Count} {p.Name}"))})");
            var r = EncoderRuns.Clip(cfg, new TrainingRecords(all, cfg.SourceSize), dir);
            LossPage.WriteFromFigureFile(r.Folder);
            Console.WriteLine(r.TrainedNow
                ? $"done: {r.Steps} steps in {r.Seconds:F0} s, final loss {r.FinalLoss:F4}; model in {Cli.Escape(Path.Combine(dir, ClipModel.RunModelFolder))}"
                : $"nothing to do: {Cli.Escape(dir)} already holds the {r.Steps}-step model");
        }));
        return cmd;
    }

    private static Command BuildEvaluate()
    {
        var model = new Option<string>("--model") { Description = "A CLIP model folder (pairaug pretrain --out DIR, or its model/).", Required = true };
        var data = new Option<string>("--data") { Description = "'phantoms' (held-out world, see --images and --data-seed) or a labels.csv folder with CheXpert labels.", DefaultValueFactory = _ => "phantoms" };
        var json = new Option<FileInfo>("--json") { Description = "Where to write the evaluation (zero-shot AUC per finding with intervals, probes per label fraction).", Required = true };
        var images = new Option<int>("--images") { Description = "Phantoms (split 60/20/20; zero-shot and probes are tested on the last part).", DefaultValueFactory = _ => 600 };
        var dataSeed = new Option<long>("--data-seed") { Description = "World seed of the held-out phantoms.", DefaultValueFactory = _ => new PairAugStudyConfig().EvalSeed };
        var resamples = new Option<int>("--resamples") { Description = "Bootstrap resamples of each zero-shot AUC interval.", DefaultValueFactory = _ => 1000 };
        var probeSteps = new Option<int>("--probe-steps") { Description = "Full-batch steps of each linear probe.", DefaultValueFactory = _ => LinearProbeOptions.Quick.Steps };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var outside = Cli.AllowOutsideRootOption();
        var cmd = new Command("evaluate", "Judge a CLIP-style model: CheXzero zero-shot AUC per finding with 1,000-resample 95 % intervals, and linear probes at 1 %, 10 % and 100 % of the labels.")
            { model, data, json, images, dataSeed, resamples, probeSteps, threads, outside };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var outFile = parse.GetValue(json)!.FullName;
            AtomicFile.EnsureWritable(outFile, "--json");
            var dir = parse.GetValue(model)!;
            using var clip = ClipModel.Load(dir);
            var source = parse.GetValue(data)!;
            var probeData = source.Equals("phantoms", StringComparison.OrdinalIgnoreCase)
                ? ProbeData.FromPhantoms(parse.GetValue(images), clip.ImageSize, parse.GetValue(dataSeed))
                : ProbeData.FromCsv(source, clip.ImageSize, allowOutsideRoot: parse.GetValue(outside));
            var options = new VlpEvaluationOptions
            {
                ZeroShot = new ZeroShotOptions { Resamples = parse.GetValue(resamples) },
                Probe = LinearProbeOptions.Quick with { Steps = parse.GetValue(probeSteps) },
            };
            var result = VlpEvaluation.Run(clip, probeData, options, Path.GetFullPath(dir));
            result.Save(outFile);
            Console.WriteLine($"zero-shot macro AUC {result.ZeroShotMacroAuc:F3} on {result.TestImages} test images of {Cli.Escape(result.Data)}");
            foreach (var f in result.ZeroShot.Where(f => double.IsFinite(f.Auc)))
                Console.WriteLine($"  {f.Finding}: {f.Auc:F3} [{f.Lower:F3}, {f.Upper:F3}] ({f.Positives}/{f.Count} positive)");
            foreach (var p in result.Probes) Console.WriteLine($"linear probe at {p.Fraction:P0} of labels ({p.TrainCount} images): test macro AUC {p.MacroAuc:F3}");
            Console.WriteLine($"wrote {Cli.Escape(outFile)}");
        }));
        return cmd;
    }

    private static Command BuildStudy()
    {
        var preset = new Option<string>("--preset") { Description = $"Budget: {string.Join(", ", PairAugStudyConfig.PresetNames)}.", DefaultValueFactory = _ => "quick" };
        var config = new Option<string?>("--config") { Description = "A PairAugStudyConfig JSON file (overrides --preset)." };
        var output = new Option<string>("--out") { Description = "Study folder: generator/, rewrites/, inter/, intra/, arms/ARM/seed-S/, tsne.json, results.json, report.html.", Required = true };
        var seeds = new Option<string?>("--seeds") { Description = "Comma-separated VLP seeds (default: 0,1,2 for quick, 0,1 for tiny)." };
        var generator = new Option<string?>("--generator") { Description = "A trained text-to-CXR folder to draw with (default: train the preset's generator in DIR/generator)." };
        var real = new Option<string?>("--real-sample") { Description = "Real sample folder for the TB-vs-normal zero-shot (default: ../shared/data/real-cxr-sample beside the repository, skipped when absent)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var cmd = new Command("study",
            "PairAug's experiment on phantoms: rewrite, InterAug, IntraAug (with real-image edits), pruning, CLIP-style pretraining on real / +Inter / +Intra / +both over seeds, zero-shot and probes with intervals and paired tests, t-SNE views; resumes from --out.")
            { preset, config, output, seeds, generator, real, threads };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var cfg = parse.GetValue(config) is string path ? PairAugStudyConfig.Load(path) : PairAugStudyConfig.FromPreset(parse.GetValue(preset)!);
            cfg.Validate();
            var seedList = parse.GetValue(seeds) is string s ? EncoderComparisonSeeds.ParseSeeds(s, "--seeds") : cfg.Seeds();
            var outDir = Path.GetFullPath(parse.GetValue(output)!);
            var realDir = parse.GetValue(real);
            if (realDir is null && QuickstartCommand.RepositoryRoot() is { } root)
                realDir = Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "real-cxr-sample"));
            else if (realDir is not null && !Directory.Exists(realDir)) throw new DirectoryNotFoundException($"--real-sample: no such folder: {realDir}");
            var result = PairAugStudy.Run(cfg, outDir, seedList, parse.GetValue(generator), realDir, line => Console.WriteLine(Cli.Escape(line)));
            Cli.Print(result.ResultsTable());
            Cli.Print(result.TestsTable());
            Cli.Print(result.CountsTable());
            Console.WriteLine(result.Claim);
            foreach (var v in result.Verdicts) Console.WriteLine(Cli.Escape(v));
            Console.WriteLine($"wrote {Cli.Escape(Path.Combine(outDir, PairAugStudy.ResultFile))}");
            Console.WriteLine($"wrote {Cli.Escape(PairAugStudyReport.Save(result, outDir))}");
        }));
        return cmd;
    }
}
