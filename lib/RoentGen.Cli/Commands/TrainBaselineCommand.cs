using System.CommandLine;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Interop;
using RoentGen.Training;
using RoentGen.Methods;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen train supervised|clip --preset tiny|quick [--config FILE] --data phantoms|FOLDER --out DIR [--steps N] [--phantoms N]</c>:
/// the baselines of the encoder comparison (the DINO preset's ViT trained on the labels, or CLIP-style against the
/// reports), on phantoms or on the records of a labels.csv folder (an image folder has neither labels nor reports, and
/// is refused with a message naming it). Resumes when DIR holds a checkpoint; the ViT ends up in DIR/encoder (readable
/// by <c>roentgen probe --encoder</c>).
/// </summary>
internal static class TrainBaselineCommand
{
    public static Command BuildSupervised() => Build("supervised",
        "Supervised baseline: the DINO preset's ViT trained on the 14 CheXpert labels of phantoms or of a labels.csv folder (BCE on a linear CLS head); resumes from --out.",
        SupervisedConfig.PresetNames, (preset, config, steps, phantoms, data, dir, outside) =>
        {
            var cfg = Resolve(dir, config, () => SupervisedConfig.FromPreset(preset), p => SupervisedConfig.Load(p));
            cfg = cfg with { Steps = steps ?? cfg.Steps, Phantoms = phantoms ?? cfg.Phantoms };
            cfg.Validate();
            var pool = Records(data, cfg, SupervisedTraining.RequireLabels, outside);
            Console.WriteLine($"supervised: ViT {cfg.Vit.Layers}x{cfg.Vit.HiddenSize} at {cfg.Vit.ImageSize} px, batch {cfg.BatchSize}, {cfg.Steps} steps; data: {pool.Description}");
            return EncoderRuns.Supervised(cfg, pool, dir);
        });

    public static Command BuildClip() => Build("clip",
        "Language-supervised baseline: the DINO preset's ViT and a small text encoder trained CLIP-style (symmetric InfoNCE) on the images and reports of phantoms or of a labels.csv folder; resumes from --out.",
        ClipConfig.PresetNames, (preset, config, steps, phantoms, data, dir, outside) =>
        {
            var cfg = Resolve(dir, config, () => ClipConfig.FromPreset(preset), p => ClipConfig.Load(p));
            cfg = cfg with { Steps = steps ?? cfg.Steps, Phantoms = phantoms ?? cfg.Phantoms };
            cfg.Validate();
            var pool = Records(data, cfg, ClipTraining.WithReports, outside);
            Console.WriteLine($"CLIP: ViT {cfg.Vit.Layers}x{cfg.Vit.HiddenSize} at {cfg.Vit.ImageSize} px + text {cfg.Text.Layers}x{cfg.Text.HiddenSize}, batch {cfg.BatchSize}, {cfg.Steps} steps; data: {pool.Description}");
            return EncoderRuns.Clip(cfg, pool, dir);
        });

    // Phantoms of the config's world, or the records of a folder that pass the baseline's check (labels, reports).
    private static TrainingRecords Records(string data, EncoderTrainingBudget cfg, Func<CxrDataset, CxrDataset> usable, bool allowOutsideRoot)
    {
        if (data.Equals("phantoms", StringComparison.OrdinalIgnoreCase))
            return TrainingRecords.Phantoms(new PhantomOptions { Size = cfg.SourceSize, Seed = cfg.WorldSeed }, cfg.Phantoms);
        var all = ImageFolderLoader.LoadFolder(data, new LoadOptions { AllowOutsideRoot = allowOutsideRoot });
        var kept = usable(all);
        if (kept.Count < all.Count) Console.WriteLine($"using {kept.Count} of the {all.Count} records of {data} (the others lack what this baseline trains on)");
        return new TrainingRecords(kept, cfg.SourceSize);
    }

    // A run folder that pins a config keeps it (so its checkpoints fit); else --config, else the preset.
    internal static T Resolve<T>(string dir, string? configPath, Func<T> preset, Func<string, T> load) where T : class
    {
        if (RunFolder.ReadPinned<T>(dir) is { } pinned)
        {
            Console.WriteLine($"continuing the run in {dir} with the config pinned there");
            return pinned;
        }
        return configPath is not null ? load(configPath) : preset();
    }

    private static Command Build(string name, string description, IReadOnlyList<string> presets, Func<string, string?, int?, int?, string, string, bool, EncoderRun> run)
    {
        var preset = new Option<string>("--preset") { Description = $"Starting config: {string.Join(", ", presets)}.", DefaultValueFactory = _ => "quick" };
        var config = new Option<string?>("--config") { Description = $"A {name} config JSON file (overrides --preset)." };
        var data = new Option<string>("--data")
        {
            Description = "'phantoms' (the config's world and count), or a folder with labels.csv in the generic layout (records without labels or reports are refused).",
            DefaultValueFactory = _ => "phantoms",
        };
        var output = new Option<string>("--out") { Description = "Run folder: checkpoints, config.json, metrics.json, loss.plotly.json, loss.html, encoder/.", Required = true };
        var steps = new Option<int?>("--steps") { Description = "Total optimizer steps (overrides the config)." };
        var phantoms = new Option<int?>("--phantoms") { Description = "Training phantoms (overrides the config; with --data phantoms)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var outside = Cli.AllowOutsideRootOption();
        var cmd = new Command(name, description) { preset, config, data, output, steps, phantoms, threads, outside };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var r = run(parse.GetValue(preset)!, parse.GetValue(config), parse.GetValue(steps), parse.GetValue(phantoms), parse.GetValue(data)!, parse.GetValue(output)!, parse.GetValue(outside));
            LossPage.WriteFromFigureFile(r.Folder);
            Console.WriteLine(r.TrainedNow
                ? $"done: {r.Steps} steps in {r.Seconds:F0} s, final loss {r.FinalLoss:F4}; encoder in {r.EncoderFolder}"
                : $"nothing to do: {r.EncoderFolder} already holds the {r.Steps}-step encoder");
        }));
        return cmd;
    }
}
