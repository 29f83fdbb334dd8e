using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Interop;
using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using RoentGen.Vision;

namespace RoentGen.Methods;

/// <summary>
/// A supervised baseline run: the ViT trained on the 14 CheXpert labels of phantoms or other labelled records (multi-label binary
/// cross-entropy on a linear head over the CLS token), with light augmentation (a random resized crop from the
/// shared augmentation code; no flips, no jitter). Round-trips through JSON.
/// </summary>
public sealed record SupervisedConfig : EncoderTrainingBudget
{
    /// <summary>The backbone (its ImageSize is the training crop side).</summary>
    public VitConfig Vit { get; init; } = new();

    /// <summary>Names of the presets.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick"];

    /// <summary>
    /// The supervised counterpart of a DINO run: the same ViT (trained at the global crop size), source size,
    /// steps, batch, seed, learning-rate schedule and gradient clip, on <paramref name="phantoms"/> phantoms of world
    /// <paramref name="worldSeed"/>.
    /// </summary>
    public static SupervisedConfig Matching(DinoConfig dino, int phantoms, long worldSeed) =>
        new(MatchingDino(dino, phantoms, worldSeed)) { Vit = dino.Vit with { ImageSize = dino.Crops.GlobalSize } };

    /// <summary>A config with the default budget.</summary>
    public SupervisedConfig() { }

    private SupervisedConfig(EncoderTrainingBudget budget) : base(budget) { }

    /// <summary>A preset by name: the counterpart (<see cref="Matching"/>) of the DINO preset of that name.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static SupervisedConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Matching(DinoConfig.Tiny, 48, 1),
        "quick" => Matching(DinoConfig.Quick, 4000, 1),
        _ => throw new ArgumentException($"unknown supervised preset '{name}'; known presets: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>Checks the run is consistent.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public void Validate()
    {
        Vit.Validate();
        ValidateBudget();
        if (SourceSize < 64 || SourceSize > 512) throw new ArgumentException($"SourceSize must be 64 to 512 pixels, got {SourceSize}");
        if (!(CropScaleMin > 0 && CropScaleMin <= CropScaleMax && CropScaleMax <= 1)) throw new ArgumentException($"crop scale range must satisfy 0 < min <= max <= 1, got [{CropScaleMin}, {CropScaleMax}]");
        if (LearningRate <= 0 || WeightDecay < 0) throw new ArgumentException($"LearningRate must be > 0 and WeightDecay >= 0, got {LearningRate} and {WeightDecay}");
        if (Steps < 1 || BatchSize < 1) throw new ArgumentException($"Steps and BatchSize must be at least 1, got {Steps} and {BatchSize}");
    }

    /// <summary>The config as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, SafeTensors.ConfigJsonOptions);

    /// <summary>Reads a config file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a SupervisedConfig.</exception>
    public static SupervisedConfig Load(string path) => RunFolder.ReadConfig<SupervisedConfig>(path, "supervised");
}

/// <summary>
/// The supervised baseline: a <see cref="VisionTransformer"/> ("backbone") and a linear head on its CLS token
/// ("head", 14 logits), trained with multi-label binary cross-entropy on the records' labels (<see cref="TrainingRecords"/>) through the shared
/// <see cref="Trainer"/> (warm-up + cosine learning rate, clipping, atomic checkpoints, resume).
/// </summary>
public sealed class SupervisedTraining : IDisposable
{
    private readonly Linear _head;
    private readonly RandomResizedCrop _crop;

    /// <summary>Builds the model and AdamW optimizer, seeded by the config.</summary>
    /// <exception cref="ArgumentException">The config is inconsistent.</exception>
    public SupervisedTraining(SupervisedConfig config)
    {
        config.Validate();
        Config = config;
        manual_seed(config.Seed);
        Backbone = new VisionTransformer(config.Vit);
        _head = nn.Linear(config.Vit.HiddenSize, Observations.All.Count);
        _crop = new RandomResizedCrop(config.Vit.ImageSize, config.CropScaleMin, config.CropScaleMax);
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, p) in Backbone.named_parameters()) (DinoTraining.IsNoDecay(name, p) ? noDecay : decay).Add(p);
        foreach (var (name, p) in _head.named_parameters()) (DinoTraining.IsNoDecay(name, p) ? noDecay : decay).Add(p);
        Optimizer = new ScalarSafe.AdamW(new[]
        {
            new AdamW.ParamGroup(decay, config.LearningRate, 0.9, 0.999, 1e-8, config.WeightDecay),
            new AdamW.ParamGroup(noDecay, config.LearningRate, 0.9, 0.999, 1e-8, 0.0),
        });
    }

    /// <summary>The run's config.</summary>
    public SupervisedConfig Config { get; }
    /// <summary>The encoder being trained.</summary>
    public VisionTransformer Backbone { get; }
    /// <summary>The linear classification head (D → 14).</summary>
    public nn.Module<Tensor, Tensor> Head => _head;
    /// <summary>AdamW over backbone and head.</summary>
    public OptimizerHelper Optimizer { get; }

    /// <summary>What the trainer checkpoints: "backbone" and "head".</summary>
    public IReadOnlyDictionary<string, nn.Module> Modules => new Dictionary<string, nn.Module> { ["backbone"] = Backbone, ["head"] = _head };

    /// <summary>Crops each image (random resized crop, light) and stacks them as (B, 1, S, S) in [-1, 1].</summary>
    public Tensor Augment(IReadOnlyList<GrayImage> images, Random rng) =>
        ImageTensors.Stack(images.Select(img => _crop.Apply(CxrSample.Of(img), rng).Image));

    /// <summary>14 logits per image: the linear head on the CLS token of (B, 1, S, S) pixels.</summary>
    public Tensor Logits(Tensor pixels) => _head.call(Backbone.call(pixels));

    /// <summary>Mean binary cross-entropy of a batch (augmented with <paramref name="rng"/>) against its records' positive labels.</summary>
    /// <exception cref="ArgumentException">An empty batch.</exception>
    public Tensor Loss(TrainingBatch batch, Random rng)
    {
        if (batch.Count == 0) throw new ArgumentException("the supervised loss needs at least one example", nameof(batch));
        using var scope = NewDisposeScope();
        var x = Augment(batch.Images, rng);
        var y = tensor(batch.PositiveLabels(), [batch.Count, Observations.All.Count]);
        return nn.functional.binary_cross_entropy_with_logits(Logits(x), y).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <paramref name="records"/> when at least one of them has a CheXpert label (a record whose 14 observations are all
    /// unmentioned trains as all-negative).
    /// </summary>
    /// <exception cref="ArgumentException">No record has a label; the message names the dataset and its folder.</exception>
    public static CxrDataset RequireLabels(CxrDataset records)
    {
        if (records.Any(r => Observations.All.Any(o => r.Labels[o] != Mention.NotMentioned))) return records;
        throw new ArgumentException($"{records.Name}{(records.Root.Length > 0 ? $" ({records.Root})" : "")}: none of its {records.Count} records has a CheXpert label; "
            + "the supervised baseline trains on the 14 observations (a labels.csv needs a 'labels' column or the 14 CheXpert columns)");
    }

    /// <summary>A trainer over <see cref="Modules"/> with this run's schedule, checkpointing under <paramref name="outputDir"/>.</summary>
    public Trainer CreateTrainer(string? outputDir = null) =>
        new(Modules, Optimizer, new TrainerOptions
        {
            TotalSteps = Config.Steps, WarmupSteps = Math.Min(Config.WarmupSteps, Math.Max(0, Config.Steps - 1)), MinLrFraction = Config.MinLrFraction,
            GradClipNorm = Config.GradClipNorm, CheckpointEvery = Config.CheckpointEvery, Seed = Config.Seed, Title = "supervised",
        }, outputDir, Config);

    /// <summary>
    /// Trains to <see cref="EncoderTrainingBudget.Steps"/> (resuming from the trainer's latest checkpoint): per step, a batch of
    /// records from <paramref name="records"/>, the BCE loss against their positive labels; the trainer does backward,
    /// clipping and the AdamW step. Reports "bce" and "accuracy" (thresholded at 0.5, over all 14 labels).
    /// </summary>
    public TrainingHistory Train(Trainer trainer, TrainingRecords records, CancellationToken cancellation = default) =>
        trainer.Run(ctx =>
        {
            var batch = records.Batch(ctx.Step, Config.BatchSize, ctx.Random);
            var x = Augment(batch.Images, ctx.Random);
            var y = tensor(batch.PositiveLabels(), [batch.Count, Observations.All.Count]);
            var logits = Logits(x);
            var loss = nn.functional.binary_cross_entropy_with_logits(logits, y);
            using (no_grad())
            {
                trainer.Report("bce", loss.item<float>());
                trainer.Report("accuracy", logits.gt(0).to(ScalarType.Float32).eq(y).to(ScalarType.Float32).mean().item<float>());
            }
            return loss;
        }, cancellation);

    /// <inheritdoc />
    public void Dispose()
    {
        Optimizer.Dispose();
        Backbone.Dispose();
        _head.Dispose();
    }
}
