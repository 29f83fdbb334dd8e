using System.CommandLine;
using System.Diagnostics;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Interop;
using RoentGen.Training;
using RoentGen.Vision;

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
        var cmd = new Command("dino", "Self-supervised ViT pre-training (DINO + iBOT + KoLeo, EMA teacher, multi-crop); resumes from --out.")
        {
            preset, config, data, output, steps, threads,
        };
        cmd.SetAction(parse =>
        {
            try
            {
                if (parse.GetValue(threads) is int t)
                {
                    if (t < 1) throw new ArgumentException($"--threads must be at least 1, got {t}");
                    TorchSharp.torch.set_num_threads(t);
                }
                return Run(parse.GetValue(preset)!, parse.GetValue(config), parse.GetValue(data)!, parse.GetValue(output)!, parse.GetValue(steps));
            }
            catch (Exception ex) when (ex is ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                       or DatasetFormatException or StateDictMismatchException or InvalidOperationException)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 1;
            }
        });
        return cmd;
    }

    private static int Run(string presetName, string? configPath, string data, string outDir, int? steps)
    {
        // A run folder with a checkpoint keeps the config it was started with (so the weights fit).
        var latest = Trainer.LatestCheckpoint(outDir);
        var saved = latest is null ? null : Path.Combine(latest, "config.json");
        DinoConfig cfg;
        if (saved is not null && File.Exists(saved))
        {
            cfg = DinoConfig.Load(saved);
            Console.WriteLine($"resuming {outDir} from {Path.GetFileName(latest)}");
        }
        else cfg = configPath is not null ? DinoConfig.Load(configPath) : DinoConfig.FromPreset(presetName);
        if (steps is int n) cfg = cfg with { Steps = n };
        cfg.Validate();

        var source = data.Equals("phantoms", StringComparison.OrdinalIgnoreCase)
            ? TrainingRecords.FreshPhantoms(new PhantomOptions { Size = Math.Clamp(cfg.SourceSize, 64, 512), Seed = cfg.Seed })
            : new TrainingRecords(ImageFolderLoader.LoadFolder(data), cfg.SourceSize);
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "config.json"), cfg.ToJson());
        Console.WriteLine($"DINO: ViT {cfg.Vit.Layers}x{cfg.Vit.HiddenSize}, {cfg.Crops.GlobalSize}/{cfg.Crops.LocalSize} px crops, batch {cfg.BatchSize}, {cfg.Steps} steps; data: {source.Description}");

        using var training = new DinoTraining(cfg);
        var trainer = training.CreateTrainer(outDir);
        int startStep = StepsAtStart(latest);
        var sw = Stopwatch.StartNew();
        var history = training.Train(trainer, source);
        sw.Stop();
        int thisSession = history.Steps - startStep;
        LossPage.Write(DinoRunReport.Save(history, outDir, thisSession, sw.Elapsed.TotalSeconds), outDir);
        Checkpoint.Save(Path.Combine(outDir, "teacher_backbone"), training.TeacherBackbone, training.TeacherBackbone.Config);
        Console.WriteLine($"done: {history.Steps} steps, final loss {history.Loss[^1]:F4}; {thisSession / Math.Max(sw.Elapsed.TotalSeconds, 1e-9):F2} steps/s; "
                          + $"wrote {DinoRunReport.MetricsFileName}, {DinoRunReport.ChartFileName}, teacher_backbone/ in {outDir}");
        return 0;
    }

    private static int StepsAtStart(string? checkpoint) =>
        checkpoint is null ? 0 : int.Parse(Path.GetFileName(checkpoint).Replace("step-", ""), System.Globalization.CultureInfo.InvariantCulture);
}
