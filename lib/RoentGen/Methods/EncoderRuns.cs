using RoentGen.Reporting;
using System.Diagnostics;
using RoentGen.Training;

namespace RoentGen.Methods;

/// <summary>What training (or finding) one encoder did.</summary>
/// <param name="Kind">dino, supervised or clip.</param>
/// <param name="Folder">The run folder (checkpoints, config.json, metrics.json, loss.plotly.json).</param>
/// <param name="EncoderFolder">The ViT checkpoint folder inside it, readable by <c>VitEncoder.Load</c>.</param>
/// <param name="TrainedNow">False when the folder already held the finished encoder and nothing was trained.</param>
/// <param name="Steps">Optimizer steps of the run.</param>
/// <param name="Seconds">Training wall time of this call (0 when nothing was trained).</param>
/// <param name="FinalLoss">Loss of the last step (NaN when unknown).</param>
public sealed record EncoderRun(string Kind, string Folder, string EncoderFolder, bool TrainedNow, int Steps, double Seconds, double FinalLoss);

/// <summary>
/// Trains one encoder into a <see cref="RunFolder"/> (whose rules every long job shares), or finds it there finished.
/// Layout of a run folder DIR: config.json (the pinned config), run.json (written last, when finished), checkpoints/
/// (the <see cref="Trainer"/>'s, from which an interrupted run resumes), metrics.json
/// and loss.plotly.json (the loss chart as figure JSON; <c>roentgen train</c> also draws it to loss.html), and the final ViT in DIR/teacher_backbone (DINO, as <c>roentgen train dino</c> writes it) or
/// DIR/encoder (supervised, CLIP): config.json + model.safetensors, the layout <c>VitEncoder.Load</c> reads. A folder
/// whose encoder exists after the wanted number of steps is not trained again; asking for more steps than a finished
/// run had continues it from its last checkpoint; a folder holding a run of another config (besides Steps) is an error.
/// </summary>
public static class EncoderRuns
{
    /// <summary>The encoder folder name of a DINO run (the EMA teacher's backbone).</summary>
    public const string DinoEncoderFolder = "teacher_backbone";
    /// <summary>The encoder folder name of a supervised or CLIP run.</summary>
    public const string EncoderFolder = "encoder";
    /// <summary>The config file of a run folder.</summary>
    public const string ConfigFile = RunFolder.ConfigFile;

    /// <summary>Trains (or resumes, or finds finished) a DINO run on the images of <paramref name="source"/> into <paramref name="dir"/>.</summary>
    /// <exception cref="InvalidOperationException">The folder holds a run of another config.</exception>
    public static EncoderRun Dino(DinoConfig config, TrainingRecords source, string dir, CancellationToken cancellation = default)
    {
        config.Validate();
        return Run("dino", config, config.Steps, dir, DinoEncoderFolder, () =>
        {
            using var training = new DinoTraining(config);
            var trainer = training.CreateTrainer(dir);
            var history = training.Train(trainer, source, cancellation);
            Checkpoint.Save(Path.Combine(dir, DinoEncoderFolder), training.TeacherBackbone, training.TeacherBackbone.Config);
            return (history, "DINOv2 losses");
        });
    }

    /// <summary>Trains (or resumes, or finds finished) a supervised run on the labelled records of <paramref name="pool"/> into <paramref name="dir"/>.</summary>
    /// <exception cref="InvalidOperationException">The folder holds a run of another config.</exception>
    public static EncoderRun Supervised(SupervisedConfig config, TrainingRecords pool, string dir, CancellationToken cancellation = default)
    {
        config.Validate();
        return Run("supervised", config, config.Steps, dir, EncoderFolder, () =>
        {
            using var training = new SupervisedTraining(config);
            var trainer = training.CreateTrainer(dir);
            var history = training.Train(trainer, pool, cancellation);
            Checkpoint.Save(Path.Combine(dir, EncoderFolder), training.Backbone, training.Backbone.Config);
            return (history, "supervised: multi-label BCE");
        });
    }

    /// <summary>
    /// Trains (or resumes, or finds finished) a CLIP-style run on the (image, report) records of <paramref name="pool"/> into
    /// <paramref name="dir"/>; the tokenizer is kept in DIR/tokenizer and the text tower in DIR/text_encoder, and the whole
    /// model (towers, projections, temperature, tokenizer, config) as one unit in DIR/model (<see cref="ClipModel.Load"/>
    /// reads DIR or DIR/model). A finished run without DIR/model (saved before the unit existed) writes it from its last checkpoint.
    /// </summary>
    /// <exception cref="InvalidOperationException">The folder holds a run of another config.</exception>
    public static EncoderRun Clip(ClipConfig config, TrainingRecords pool, string dir, CancellationToken cancellation = default)
    {
        config.Validate();
        return Run("clip", config, config.Steps, dir, EncoderFolder, () =>
        {
            var tokenizer = ClipTraining.LoadOrTrainTokenizer(config, pool, dir);
            using var training = new ClipTraining(config, tokenizer);
            var trainer = training.CreateTrainer(dir);
            var history = training.Train(trainer, pool, cancellation);
            Checkpoint.Save(Path.Combine(dir, "text_encoder"), training.TextEncoder, training.TextEncoder.Config);
            Checkpoint.Save(Path.Combine(dir, EncoderFolder), training.Backbone, training.Backbone.Config);
            training.Model.Save(Path.Combine(dir, ClipModel.RunModelFolder));
            return (history, "CLIP: symmetric InfoNCE");
        }, () => ClipModel.Exists(Path.Combine(dir, ClipModel.RunModelFolder)));
    }

    /// <summary>True when <paramref name="encoderFolder"/> holds a saved ViT (config.json and model.safetensors).</summary>
    public static bool IsFinished(string encoderFolder) =>
        File.Exists(Path.Combine(encoderFolder, Checkpoint.WeightsFileName)) && File.Exists(Path.Combine(encoderFolder, Checkpoint.ConfigFileName));

    // The one lifecycle (RunFolder): config pinned and compared (Steps may grow), skip when finished, resume, run.json last.
    private static EncoderRun Run<TConfig>(string kind, TConfig config, int wantedSteps, string dir, string encoderName,
        Func<(TrainingHistory History, string Title)> train, Func<bool>? otherOutputsExist = null)
    {
        var run = RunFolder.Open(dir, kind, config, "Steps");
        var encoder = Path.Combine(dir, encoderName);
        if (run.IsFinishedAt(wantedSteps) && IsFinished(encoder) && (otherOutputsExist?.Invoke() ?? true))
            return new EncoderRun(kind, run.Path, encoder, false, wantedSteps, 0, run.Finished!.FinalLoss ?? double.NaN);
        run.Start();
        int start = run.StepsDone;
        var sw = Stopwatch.StartNew();
        var (history, title) = train();
        sw.Stop();
        RunReport.Save(history, dir, history.Steps - start, sw.Elapsed.TotalSeconds, title);
        double loss = history.Steps > 0 ? history.Loss[^1] : double.NaN;
        run.Finish(history.Steps, sw.Elapsed.TotalSeconds, loss);
        return new EncoderRun(kind, run.Path, encoder, true, history.Steps, sw.Elapsed.TotalSeconds, loss);
    }
}
