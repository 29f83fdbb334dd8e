using System.CommandLine;
using RoentGen.Platform;
using RoentGen.Vision.Segmentation;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen segment train|eval</c>: a U-Net segmenter trained on phantoms (or a labels.csv with masks) and scored by
/// Dice on labelled images, e.g. the real sample's lung masks (the sim-to-real check).
/// </summary>
internal static class SegmentCommand
{
    public static Command Build()
    {
        var cmd = new Command("segment", "Segmentation: train a U-Net on phantoms or a labels.csv with masks, evaluate Dice on labelled images.");
        cmd.Subcommands.Add(BuildTrain());
        cmd.Subcommands.Add(BuildEval());
        return cmd;
    }

    /// <summary><c>roentgen segment train --data phantoms|PATH/labels.csv --out DIR [--preset quick|tiny] [--seed N] [--size PX] [--structures a,b] [--steps N]</c>.</summary>
    private static Command BuildTrain()
    {
        var data = new Option<string>("--data") { Description = "'phantoms' (the built-in world) or a labels.csv (or its folder) with masks.", Required = true };
        var output = new Option<string>("--out") { Description = "Run folder: config.json, checkpoints/, segmenter/, run.json. Resumes an interrupted run.", Required = true };
        var preset = new Option<string>("--preset") { Description = $"Starting config: {string.Join(", ", SegmentationConfig.PresetNames)}.", DefaultValueFactory = _ => "quick" };
        var seed = new Option<long?>("--seed") { Description = "Seed of the phantom world, initial weights and training streams (default 0)." };
        var size = new Option<int?>("--size") { Description = "Image side in pixels (overrides the preset)." };
        var structures = new Option<string?>("--structures") { Description = "Comma-separated structures (mask names), e.g. lungs,heart (default: the preset's; with a labels.csv: lungs)." };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps (overrides the preset)." };
        var images = new Option<int?>("--train-images") { Description = "Phantom cases generated (or labels.csv rows used) for training (overrides the preset)." };
        var noAugment = new Option<bool>("--no-augment") { Description = "Train without domain randomisation (for comparison)." };
        var norm = new Option<string?>("--normalization") { Description = "Per-image input normalisation: equalize (default) or zscore." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var outside = Cli.AllowOutsideRootOption();
        var cmd = new Command("train", "Train a U-Net segmenter (domain-randomised, per-image normalised input) into a run folder.")
        {
            data, output, preset, seed, size, structures, steps, images, noAugment, norm, threads, outside,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var source = parse.GetValue(data)!;
            var cfg = SegmentationConfig.FromPreset(parse.GetValue(preset)!);
            bool phantoms = source.Equals(SegmentationData.Phantoms, StringComparison.OrdinalIgnoreCase);
            cfg = cfg with { Data = phantoms ? SegmentationData.Phantoms : Path.GetFullPath(RoentGen.Data.Datasets.GenericCsvLoader.FindCsv(source)) };
            if (!phantoms) cfg = cfg with { Structures = [SegmentationData.LungsStructure] };
            if (parse.GetValue(seed) is long s) cfg = cfg with { Seed = s };
            if (parse.GetValue(size) is int px) cfg = cfg with { Size = px };
            if (parse.GetValue(steps) is int n) cfg = cfg with { Steps = n };
            if (parse.GetValue(images) is int m) cfg = cfg with { TrainImages = m };
            if (parse.GetValue(structures) is string list)
                cfg = cfg with { Structures = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) };
            if (parse.GetValue(noAugment)) cfg = cfg with { Augment = null };
            if (parse.GetValue(norm) is string nm)
                cfg = cfg with
                {
                    Normalization = Enum.TryParse<InputNormalization>(nm, ignoreCase: true, out var v)
                        ? v : throw new ArgumentException($"--normalization: '{nm}' is not one of equalize, zscore"),
                };
            try { cfg.Validate(); }
            catch (ArgumentException e) { throw new ArgumentException($"segment train: {e.Message}", e); }
            var run = SegmentationRuns.Train(cfg, parse.GetValue(output)!, parse.GetValue(outside), line => Console.WriteLine(Cli.Escape(line)));
            Console.WriteLine(run.TrainedNow
                ? $"done: {run.Steps} steps in {run.Seconds:F0} s on {run.TrainImages} images, final loss {run.FinalLoss:F4}; model: {Cli.Escape(run.ModelFolder)}"
                : $"nothing to do: {Cli.Escape(run.Folder)} already holds the finished {run.Steps}-step run (model: {Cli.Escape(run.ModelFolder)})");
            return 0;
        }));
        return cmd;
    }

    /// <summary><c>roentgen segment eval --model DIR --data PATH/labels.csv --json FILE</c>.</summary>
    private static Command BuildEval()
    {
        var model = new Option<string>("--model") { Description = "A segment-train run folder (or its segmenter/ folder).", Required = true };
        var data = new Option<string>("--data") { Description = "A labels.csv (or its folder) with masks; its 'mask' column counts as lungs.", Required = true };
        var json = new Option<FileInfo>("--json") { Description = "Write Dice per structure, per image and the baselines as JSON to this file.", Required = true };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var outside = Cli.AllowOutsideRootOption();
        var cleanup = new Option<bool>("--cleanup") { Description = "Score the masks after anatomical clean-up: the two largest lung components (one for the heart), holes filled." };
        var overlays = new Option<FileInfo?>("--overlays") { Description = "Also write a PNG of each image's reference and predicted lungs (first 16 images with a mask)." };
        var tta = new Option<bool>("--tta") { Description = "Test-time augmentation: average the probabilities over zooms 0.9, 1 and 1/0.9 (three passes per image)." };
        var cmd = new Command("eval", "Dice of a trained segmenter on labelled images: per structure (with 'lungs'), per image, beside all-foreground and all-background baselines.")
        {
            model, data, json, threads, outside, overlays, cleanup, tta,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var jsonFile = parse.GetValue(json)!;
            AtomicFile.EnsureWritable(jsonFile.FullName, "--json");
            var overlayFile = parse.GetValue(overlays);
            if (overlayFile is not null) AtomicFile.EnsureWritable(overlayFile.FullName, "--overlays");
            var modelDir = parse.GetValue(model)!;
            using var segmenter = Segmenter.Load(modelDir);
            var dataset = SegmentationData.LabelsCsv(parse.GetValue(data)!, parse.GetValue(outside));
            var augmentation = parse.GetValue(tta) ? new TestTimeAugmentation() : null;
            var result = SegmentationEvaluation.Evaluate(segmenter, dataset, Path.GetFullPath(modelDir), parse.GetValue(cleanup), augmentation);
            Cli.Print(result.ToDataFrame());
            foreach (var line in result.Summary().Split(Environment.NewLine)) Console.WriteLine(Cli.Escape(line));
            if (result.SkippedWithoutMask > 0) Console.WriteLine($"skipped {result.SkippedWithoutMask} records without a mask of {string.Join(", ", segmenter.Structures)}");
            result.Save(jsonFile.FullName);
            Console.WriteLine($"wrote {Cli.Escape(jsonFile.FullName)}");
            if (overlayFile is not null)
            {
                var structure = result.Structures.Select(x => x.Structure).FirstOrDefault() ?? segmenter.Structures[0];
                AtomicFile.WriteAllBytes(overlayFile.FullName, SegmentationEvaluation.Overlays(segmenter, dataset, structure, cleanup: parse.GetValue(cleanup), tta: augmentation).ToPng());
                Console.WriteLine($"wrote {Cli.Escape(overlayFile.FullName)}");
            }
            return 0;
        }));
        return cmd;
    }
}
