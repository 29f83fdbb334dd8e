using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Training;

namespace RoentGen.Vision;

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
/// Trains one encoder into a run folder, or finds it there finished. Layout of a run folder DIR: config.json (the
/// run's config), checkpoints/ (the <see cref="Trainer"/>'s, from which an interrupted run resumes), metrics.json
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
    public const string ConfigFile = "config.json";

    /// <summary>Trains (or resumes, or finds finished) a DINO run on the images of <paramref name="source"/> into <paramref name="dir"/>.</summary>
    /// <exception cref="InvalidOperationException">The folder holds a run of another config.</exception>
    public static EncoderRun Dino(DinoConfig config, TrainingRecords source, string dir, CancellationToken cancellation = default)
    {
        config.Validate();
        return Run("dino", config.ToJson(), Canonical<DinoConfig>(c => c.ToJson()), config.Steps, dir, DinoEncoderFolder, () =>
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
        return Run("supervised", config.ToJson(), Canonical<SupervisedConfig>(c => c.ToJson()), config.Steps, dir, EncoderFolder, () =>
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
    /// <paramref name="dir"/>; the tokenizer is kept in DIR/tokenizer and the text tower in DIR/text_encoder.
    /// </summary>
    /// <exception cref="InvalidOperationException">The folder holds a run of another config.</exception>
    public static EncoderRun Clip(ClipConfig config, TrainingRecords pool, string dir, CancellationToken cancellation = default)
    {
        config.Validate();
        return Run("clip", config.ToJson(), Canonical<ClipConfig>(c => c.ToJson()), config.Steps, dir, EncoderFolder, () =>
        {
            var tokenizer = ClipTraining.LoadOrTrainTokenizer(config, pool, dir);
            using var training = new ClipTraining(config, tokenizer);
            var trainer = training.CreateTrainer(dir);
            var history = training.Train(trainer, pool, cancellation);
            Checkpoint.Save(Path.Combine(dir, "text_encoder"), training.TextEncoder, training.TextEncoder.Config);
            Checkpoint.Save(Path.Combine(dir, EncoderFolder), training.Backbone, training.Backbone.Config);
            return (history, "CLIP: symmetric InfoNCE");
        });
    }

    /// <summary>True when <paramref name="encoderFolder"/> holds a saved ViT (config.json and model.safetensors).</summary>
    public static bool IsFinished(string encoderFolder) =>
        File.Exists(Path.Combine(encoderFolder, Checkpoint.WeightsFileName)) && File.Exists(Path.Combine(encoderFolder, Checkpoint.ConfigFileName));

    /// <summary>
    /// Throws when <paramref name="dir"/> already holds a run whose config.json differs from <paramref name="configJson"/>
    /// in anything but the top-level Steps (its checkpoints would not fit, or would answer another question). With
    /// <paramref name="canonical"/> (read a config text as its type and write it again), a field that a newer version
    /// added is compared at its default instead of counting as a difference.
    /// </summary>
    /// <exception cref="InvalidOperationException">The configs differ; the message names the folder and the first differing field.</exception>
    public static void EnsureSameConfig(string dir, string configJson, string what, Func<string, string>? canonical = null)
    {
        var path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) return;
        var text = File.ReadAllText(path);
        var existing = JsonNode.Parse(canonical is null ? text : canonical(text));
        var wanted = JsonNode.Parse(configJson);
        foreach (var node in new[] { existing, wanted })
            if (node is JsonObject o) o.Remove("Steps");
        if (JsonNode.DeepEquals(existing, wanted)) return;
        throw new InvalidOperationException(
            $"{dir} holds a {what} run with another config ({FirstDifference(existing, wanted, "")}); use another output folder or delete this one");
    }

    /// <summary>Reads a run config file of type <typeparamref name="T"/>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a <typeparamref name="T"/>.</exception>
    public static T LoadConfig<T>(string path, string what)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{what} config file not found: {path}", path);
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), SafeTensors.ConfigJsonOptions)
                   ?? throw new InvalidDataException($"{path}: the {what} config is null");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid {what} config ({typeof(T).Name}): {e.Message}", e); }
    }

    // Reads a config text as T and writes it again, so fields it lacks take their defaults.
    private static Func<string, string> Canonical<T>(Func<T, string> toJson) =>
        text => toJson(JsonSerializer.Deserialize<T>(text, SafeTensors.ConfigJsonOptions) ?? throw new InvalidDataException($"a {typeof(T).Name} file is null"));

    private static EncoderRun Run(string kind, string configJson, Func<string, string> canonical, int wantedSteps, string dir, string encoderName,
        Func<(TrainingHistory History, string Title)> train)
    {
        var encoder = Path.Combine(dir, encoderName);
        EnsureSameConfig(dir, configJson, kind, canonical);
        if (IsFinished(encoder))
        {
            var (steps, loss) = ReadMetrics(dir);
            if (steps == wantedSteps) return new EncoderRun(kind, dir, encoder, false, steps, 0, loss);
            if (steps > wantedSteps)
                throw new InvalidOperationException($"{dir} holds a {kind} run of {steps} steps, more than the {wantedSteps} asked for; use another output folder");
        }
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), configJson);
        int start = StepsDone(dir);
        var sw = Stopwatch.StartNew();
        var (history, title) = train();
        sw.Stop();
        DinoRunReport.Save(history, dir, history.Steps - start, sw.Elapsed.TotalSeconds, title);
        return new EncoderRun(kind, dir, encoder, true, history.Steps, sw.Elapsed.TotalSeconds, history.Steps > 0 ? history.Loss[^1] : double.NaN);
    }

    /// <summary>Steps of the newest checkpoint under a run folder (0 when none).</summary>
    public static int StepsDone(string dir)
    {
        var latest = Trainer.LatestCheckpoint(dir);
        return latest is null ? 0 : int.Parse(Path.GetFileName(latest).Replace("step-", ""), CultureInfo.InvariantCulture);
    }

    private static (int Steps, double Loss) ReadMetrics(string dir)
    {
        var path = Path.Combine(dir, DinoRunReport.MetricsFileName);
        if (!File.Exists(path)) return (StepsDone(dir), double.NaN);
        var root = JsonNode.Parse(File.ReadAllText(path));
        int steps = root?["steps"]?.GetValue<int>() ?? StepsDone(dir);
        double loss = root?["final"]?["loss"] is JsonNode l ? l.GetValue<double>() : double.NaN;
        return (steps, loss);
    }

    private static string FirstDifference(JsonNode? a, JsonNode? b, string path)
    {
        if (a is JsonObject oa && b is JsonObject ob)
        {
            foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
            {
                oa.TryGetPropertyValue(key, out var va);
                ob.TryGetPropertyValue(key, out var vb);
                if (!JsonNode.DeepEquals(va, vb)) return FirstDifference(va, vb, path.Length == 0 ? key : $"{path}.{key}");
            }
        }
        return $"{(path.Length == 0 ? "the config" : path)} is {a?.ToJsonString() ?? "absent"} there, {b?.ToJsonString() ?? "absent"} now";
    }
}
