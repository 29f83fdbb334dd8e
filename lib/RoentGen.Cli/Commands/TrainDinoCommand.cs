using RoentGen.Reporting;
using System.CommandLine;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Interop;
using RoentGen.Training;
using RoentGen.Methods;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen train dino --preset quick|small [--config FILE] --data DIR|phantoms --out DIR [--steps N]</c>:
/// DINOv2-style self-supervised pre-training of a ViT (RAD-DINO's recipe). Resumes when DIR holds a checkpoint.
/// </summary>
internal static class TrainDinoCommand
{
    public static Command Build()
    {
        var preset = new Option<string>("--preset") { Description = $"Starting config: {string.Join(", ", DinoConfig.PresetNames)}.", DefaultValueFactory = _ => "quick" };
        var config = new Option<string?>("--config") { Description = "A DinoConfig JSON file (overrides --preset)." };
        var data = new Option<string>("--data") { Description = "'phantoms' (generated on the fly), or a folder with labels.csv in the generic layout or PNG/JPEG files.", Required = true };
        var output = new Option<string>("--out") { Description = "Run folder: checkpoints, config.json, metrics.json, loss.plotly.json, loss.html, teacher_backbone/.", Required = true };
        var steps = new Option<int?>("--steps") { Description = "Total optimizer steps (overrides the config)." };
        var threads = new Option<int?>("--threads")
        {
            Description = "libtorch intra-op threads. On a busy shared machine 1 can be several times faster than the default (spinning threads wait on each other).",
        };
        var outside = Cli.AllowOutsideRootOption();
        var cmd = new Command("dino", "Self-supervised ViT pre-training (DINO + iBOT + KoLeo, EMA teacher, multi-crop); resumes from --out.")
        {
            preset, config, data, output, steps, threads, outside,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            return Run(parse.GetValue(preset)!, parse.GetValue(config), parse.GetValue(data)!, parse.GetValue(output)!, parse.GetValue(steps), parse.GetValue(outside));
        }));
        return cmd;
    }

    private static int Run(string presetName, string? configPath, string data, string outDir, int? steps, bool allowOutsideRoot)
    {
        var cfg = TrainBaselineCommand.Resolve(outDir, configPath, () => DinoConfig.FromPreset(presetName), DinoConfig.Load);
        if (steps is int n) cfg = cfg with { Steps = n };
        cfg.Validate();
        var source = data.Equals("phantoms", StringComparison.OrdinalIgnoreCase)
            ? TrainingRecords.FreshPhantoms(new PhantomOptions { Size = Math.Clamp(cfg.SourceSize, 64, 512), Seed = cfg.Seed })
            : new TrainingRecords(ImageFolderLoader.LoadFolder(data, new LoadOptions { AllowOutsideRoot = allowOutsideRoot }), cfg.SourceSize);
        Console.WriteLine($"DINO: ViT {cfg.Vit.Layers}x{cfg.Vit.HiddenSize}, {cfg.Crops.GlobalSize}/{cfg.Crops.LocalSize} px crops, batch {cfg.BatchSize}, {cfg.Steps} steps; data: {source.Description}");
        var run = EncoderRuns.Dino(cfg, source, outDir);
        LossPage.WriteFromFigureFile(run.Folder);
        Console.WriteLine(run.TrainedNow
            ? $"done: {run.Steps} steps in {run.Seconds:F0} s, final loss {run.FinalLoss:F4}; wrote {RunReport.MetricsFileName}, {RunReport.ChartFileName}, {EncoderRuns.DinoEncoderFolder}/ in {outDir}"
            : $"nothing to do: {run.EncoderFolder} already holds the {run.Steps}-step encoder");
        return 0;
    }
}
