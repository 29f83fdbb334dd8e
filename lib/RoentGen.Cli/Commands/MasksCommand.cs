using System.CommandLine;
using RoentGen.Data;
using RoentGen.Diffusion;
using RoentGen.Platform;
using RoentGen.Synthetic;
using RoentGen.Vision.Segmentation;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen masks train|transform|generate|eval</c>: mask-conditioned generation (ControlNet or input-concat over a
/// trained LDM), new conditions by geometric mask transforms, generation from a conditions folder, and mask adherence
/// (Dice between the conditioning masks and a segmenter's masks of the generated images, beside the text-only model).
/// </summary>
internal static class MasksCommand
{
    public static Command Build()
    {
        var cmd = new Command("masks", "Mask-conditioned generation: train (ControlNet or input-concat), transform masks, generate, evaluate mask adherence.");
        cmd.Subcommands.Add(BuildTrain());
        cmd.Subcommands.Add(BuildTransform());
        cmd.Subcommands.Add(BuildGenerate());
        cmd.Subcommands.Add(BuildEval());
        return cmd;
    }

    private static Option<int?> Threads() => new("--threads") { Description = "libtorch intra-op threads." };

    /// <summary><c>roentgen masks train --variant controlnet|concat --from LDM_DIR --out DIR [--preset quick|tiny]</c>.</summary>
    private static Command BuildTrain()
    {
        var variant = new Option<string>("--variant") { Description = "controlnet (a trainable encoder copy joined by zero convolutions to the frozen UNet) or concat (masks concatenated to the latents, UNet fine-tuned).", Required = true };
        var from = new Option<string>("--from") { Description = "A trained latent diffusion folder (roentgen train ldm --out, or the quickstart's).", Required = true };
        var output = new Option<string>("--out") { Description = "Run folder: config.json, checkpoints/, model/, run.json. Resumes an interrupted run.", Required = true };
        var preset = new Option<string>("--preset") { Description = $"Starting config: {string.Join(", ", MaskConditioningConfig.PresetNames)}.", DefaultValueFactory = _ => "quick" };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps (overrides the preset)." };
        var images = new Option<int?>("--train-images") { Description = "Phantom cases trained on (overrides the preset)." };
        var seed = new Option<long?>("--seed") { Description = "Seed of the initial weights and the training streams (default 0)." };
        var threads = Threads();
        var cmd = new Command("train", "Train a mask-conditioned model from a trained LDM on phantom masks and reports (the base stays frozen).")
        {
            variant, from, output, preset, steps, images, seed, threads,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var cfg = MaskConditioningConfig.FromPreset(parse.GetValue(preset)!) with { Variant = ParseVariant(parse.GetValue(variant)!), From = parse.GetValue(from)! };
            if (parse.GetValue(steps) is int s) cfg = cfg with { Steps = s };
            if (parse.GetValue(images) is int m) cfg = cfg with { TrainImages = m };
            if (parse.GetValue(seed) is long sd) cfg = cfg with { Seed = sd };
            try { cfg.Validate(); }
            catch (ArgumentException e) { throw new ArgumentException($"masks train: {e.Message}", e); }
            var run = MaskConditioningRuns.Train(cfg, parse.GetValue(output)!, new MaskConditioningRunOptions { Log = line => Console.WriteLine(Cli.Escape(line)) });
            Console.WriteLine(run.Skipped
                ? $"nothing to do: {Cli.Escape(run.Dir)} already holds the finished {cfg.Steps}-step run"
                : $"done: {run.StepsTrained} steps in {run.Seconds:F0} s, final loss {(run.History.Loss.Count > 0 ? run.History.Loss[^1] : double.NaN):F4}; model: {Cli.Escape(Path.Combine(run.Dir, MaskConditioningRuns.ModelFolder))}");
            return 0;
        }));
        return cmd;
    }

    /// <summary><c>roentgen masks transform --data phantoms --n N --out DIR [--size PX] [--seed N] [--world N] [--start I]</c>.</summary>
    private static Command BuildTransform()
    {
        var data = new Option<string>("--data") { Description = "Where the cases come from: phantoms (the built-in world).", Required = true };
        var n = new Option<int>("--n") { Description = "Conditions to make.", Required = true };
        var output = new Option<string>("--out") { Description = "Folder: masks/ (PNG per mask) and labels.csv (id, labels, report, edits, truth, mask paths).", Required = true };
        var size = new Option<int>("--size") { Description = "Mask side in pixels.", DefaultValueFactory = _ => 64 };
        var seed = new Option<long>("--seed") { Description = "Seed of the edits.", DefaultValueFactory = _ => 1 };
        var world = new Option<long>("--world") { Description = "Seed of the phantom world.", DefaultValueFactory = _ => 1 };
        var start = new Option<int>("--start") { Description = "First phantom case (use one past the training cases for held-out conditions).", DefaultValueFactory = _ => 100_000 };
        var cmd = new Command("transform", $"New conditions from phantom cases: one random edit of a finding each ({string.Join(", ", MaskConditionSets.EditKinds)}), truth and report changed to match.")
        {
            data, n, output, size, seed, world, start,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            if (!string.Equals(parse.GetValue(data), "phantoms", StringComparison.OrdinalIgnoreCase))
                return Cli.Fail($"--data: '{parse.GetValue(data)}' is not supported; expected phantoms (the only source with exact masks)");
            int count = parse.GetValue(n);
            if (count < 1 || count > 100_000) return Cli.Fail($"--n: expected 1 to 100000 conditions, got {count}");
            int px = parse.GetValue(size);
            if (px < 16 || px > 1024) return Cli.Fail($"--size: expected 16 to 1024 pixels, got {px}");
            var conditions = MaskConditionSets.Transformed(count, px, parse.GetValue(world), parse.GetValue(start), (ulong)parse.GetValue(seed));
            var dir = parse.GetValue(output)!;
            MaskConditionSets.Write(dir, conditions);
            foreach (var c in conditions.Take(5)) Console.WriteLine($"{Cli.Escape(c.Id)}: {Cli.Escape(string.Join("; ", c.Edits))}");
            Console.WriteLine($"wrote {conditions.Count} conditions to {Cli.Escape(Path.GetFullPath(dir))}");
            return 0;
        }));
        return cmd;
    }

    /// <summary><c>roentgen masks generate --model DIR --conditions DIR --out DIR [--seed N] [--steps N] [--guidance W] [--scale S]</c>.</summary>
    private static Command BuildGenerate()
    {
        var model = new Option<string>("--model") { Description = "A masks-train run folder (or its model/ folder).", Required = true };
        var conditions = new Option<string>("--conditions") { Description = "A conditions folder (roentgen masks transform --out).", Required = true };
        var output = new Option<string>("--out") { Description = "Folder: images/NNNNN.png and samples.csv (id, file, prompt, edits).", Required = true };
        var seed = new Option<long>("--seed") { Description = "Seed of image 0 (image i from seed + i).", DefaultValueFactory = _ => 1 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 20 };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance over the text.", DefaultValueFactory = _ => 4.0 };
        var scale = new Option<double?>("--scale") { Description = "ControlNet conditioning scale (default: the model's)." };
        var threads = Threads();
        var cmd = new Command("generate", "Generate one image per condition (masks + report) with a mask-conditioned model.")
        {
            model, conditions, output, seed, steps, guidance, scale, threads,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var pipeline = new MaskConditioningPipeline(MaskConditionedModel.Load(parse.GetValue(model)!))
            {
                Steps = parse.GetValue(steps), GuidanceScale = parse.GetValue(guidance),
            };
            if (parse.GetValue(scale) is double s) pipeline.Model.ConditioningScale = s;
            var conds = MaskConditionSets.Read(parse.GetValue(conditions)!);
            using var progress = ProgressReporter.Start("masks generate", conds.Count, "images");
            int shown = 0;
            var images = pipeline.Generate(conds, parse.GetValue(seed), (done, _) => { progress.Advance(done - shown); shown = done; });
            var dir = parse.GetValue(output)!;
            Directory.CreateDirectory(Path.Combine(dir, "images"));
            var rows = new List<IReadOnlyList<string?>>();
            for (int i = 0; i < images.Count; i++)
            {
                var rel = $"images/{i:D5}.png";
                AtomicFile.WriteAllBytes(Path.Combine(dir, rel), images[i].ToPng());
                rows.Add([conds[i].Id, rel, pipeline.Model.PromptOf(conds[i]), string.Join(" | ", conds[i].Edits)]);
            }
            var csv = new StringWriter();
            Csv.Write(csv, ["id", "file", "prompt", "edits"], rows);
            AtomicFile.WriteAllText(Path.Combine(dir, "samples.csv"), csv.ToString());
            Console.WriteLine($"wrote {images.Count} images to {Cli.Escape(Path.GetFullPath(dir))}");
            return 0;
        }));
        return cmd;
    }

    /// <summary><c>roentgen masks eval --model DIR --json F [--segmenter DIR] [--conditions DIR] [--n N]</c>.</summary>
    private static Command BuildEval()
    {
        var model = new Option<string>("--model") { Description = "A masks-train run folder (or its model/ folder).", Required = true };
        var json = new Option<FileInfo>("--json") { Description = "Write the Dice per generator and structure as JSON here.", Required = true };
        var segmenterDir = new Option<string?>("--segmenter") { Description = "A segment-train run folder; default: train one on phantoms at the model's size into MODEL/adherence-segmenter (resumable)." };
        var segmenterPreset = new Option<string>("--segmenter-preset") { Description = "Preset of that segmenter when it is trained here.", DefaultValueFactory = _ => "quick" };
        var conditions = new Option<string?>("--conditions") { Description = "A conditions folder (default: held-out phantom cases of the training world)." };
        var n = new Option<int>("--n") { Description = "Held-out phantom conditions (without --conditions).", DefaultValueFactory = _ => 32 };
        var seed = new Option<long>("--seed") { Description = "Seed of image 0.", DefaultValueFactory = _ => 1 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 20 };
        var noBaseline = new Option<bool>("--no-text-only") { Description = "Skip the text-only baseline." };
        var threads = Threads();
        var cmd = new Command("eval", "Mask adherence: Dice between each conditioning mask and a segmenter's mask of the generated image, for the model and the text-only base.")
        {
            model, json, segmenterDir, segmenterPreset, conditions, n, seed, steps, noBaseline, threads,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var jsonFile = parse.GetValue(json)!;
            AtomicFile.EnsureWritable(jsonFile.FullName, "--json");
            var modelDir = parse.GetValue(model)!;
            var mask = MaskConditionedModel.Load(modelDir);
            var pipeline = new MaskConditioningPipeline(mask) { Steps = parse.GetValue(steps) };
            IReadOnlyList<MaskCondition> conds;
            IReadOnlyList<RoentGen.Data.Phantoms.PhantomCase>? cases = null;
            if (parse.GetValue(conditions) is string cdir) conds = MaskConditionSets.Read(cdir);
            else
            {
                // Held-out cases begin after the ones the model trained on, which only its run's config knows.
                var cfg = MaskConditioningRuns.FindRunConfig(modelDir)
                    ?? throw new ArgumentException($"--model {modelDir}: no run config.json there or beside it, so the phantoms it trained on are unknown; give --conditions (e.g. from 'roentgen masks transform') to score it");
                cases = MaskConditioningData.PhantomCases(parse.GetValue(n), Math.Max(mask.ImageSize, 64), cfg.DataSeed, cfg.DataStart + cfg.TrainImages + 1000);
                conds = cases.Select(MaskCondition.FromCase).ToList();
            }
            string segFolder = parse.GetValue(segmenterDir) ?? Path.Combine(modelDir, "adherence-segmenter");
            if (parse.GetValue(segmenterDir) is null)
            {
                var segCfg = SegmentationConfig.FromPreset(parse.GetValue(segmenterPreset)!) with { Size = mask.ImageSize };
                SegmentationRuns.Train(segCfg, segFolder, log: line => Console.WriteLine(Cli.Escape(line)));
            }
            using var segmenter = Segmenter.Load(segFolder);
            var results = new List<MaskAdherenceResult>
            {
                MaskAdherence.Evaluate(mask.Variant.ToString().ToLowerInvariant(), pipeline, conds, segmenter, parse.GetValue(seed)),
            };
            if (!parse.GetValue(noBaseline))
            {
                var text = new TextOnlyMaskBaseline(mask.Base.ToPipeline(), mask.Prompt) { Steps = parse.GetValue(steps) };
                results.Add(MaskAdherence.Evaluate("text-only", text, conds, segmenter, parse.GetValue(seed)));
            }
            // Phantom conditions have true images: the segmenter's Dice on them is the ceiling the rows above are read against.
            if (cases is not null) results.Add(MaskAdherence.OnPhantoms(cases, segmenter));
            Cli.Print(MaskAdherence.Table(results));
            if (cases is not null) Console.WriteLine($"'{MaskAdherence.PhantomsName}': the segmenter on the phantoms' own images, the ceiling for each structure");
            MaskAdherence.Save(jsonFile.FullName, results, new Dictionary<string, string>
            {
                ["model"] = Path.GetFullPath(modelDir), ["segmenter"] = Path.GetFullPath(segFolder), ["conditions"] = conds.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
            Console.WriteLine($"wrote {Cli.Escape(jsonFile.FullName)}");
            return 0;
        }));
        return cmd;
    }

    private static MaskConditioningVariant ParseVariant(string name) => name.ToLowerInvariant() switch
    {
        "controlnet" => MaskConditioningVariant.ControlNet,
        "concat" => MaskConditioningVariant.Concat,
        _ => throw new ArgumentException($"--variant: '{name}' is not one of controlnet, concat"),
    };
}
