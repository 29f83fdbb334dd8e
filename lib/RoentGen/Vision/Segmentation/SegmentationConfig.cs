using System.Text.Json.Serialization;
using RoentGen.Nn;
using RoentGen.Training;

namespace RoentGen.Vision.Segmentation;

/// <summary>
/// Everything a segmentation run depends on: the data, the structures, the network, the optimisation, the
/// randomisation and the input normalisation. Pinned in the run folder's config.json; a model folder reads it back to
/// predict exactly as it was trained.
/// </summary>
public sealed record SegmentationConfig : IModelConfig
{
    /// <summary>"phantoms" (the built-in world, <see cref="TrainImages"/> cases from case 0) or the full path of a labels.csv.</summary>
    public string Data { get; init; } = SegmentationData.Phantoms;
    /// <summary>Structures, one output channel each (mask names: "lungs", "heart", a finding's mask name).</summary>
    public IReadOnlyList<string> Structures { get; init; } = ["lungs", "heart"];
    /// <summary>Image side in pixels (training and prediction); a multiple of 2^(levels − 1).</summary>
    public int Size { get; init; } = 128;
    /// <summary>U-Net level widths, full resolution first.</summary>
    public IReadOnlyList<int> Widths { get; init; } = [8, 16, 32, 64];
    /// <summary>GroupNorm groups.</summary>
    public int Groups { get; init; } = 4;
    /// <summary>Phantom cases generated for training (with labels.csv data: at most this many rows with a mask are used, first ones first).</summary>
    public int TrainImages { get; init; } = 600;
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 500;
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Peak AdamW learning rate (warm-up then cosine).</summary>
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>AdamW weight decay.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 20;
    /// <summary>Weight of the soft Dice term added to the BCE.</summary>
    public double DiceWeight { get; init; } = 1.0;
    /// <summary>Training-time randomisation (null: none).</summary>
    public DomainRandomization? Augment { get; init; } = new();
    /// <summary>Per-image input normalisation, at training and at prediction.</summary>
    [JsonConverter(typeof(JsonStringEnumConverter))]
    public InputNormalization Normalization { get; init; } = InputNormalization.Equalize;
    /// <summary>Checkpoint every this many steps.</summary>
    public int CheckpointEvery { get; init; } = 100;
    /// <summary>Seed of the phantom world, the initial weights and every training stream.</summary>
    public long Seed { get; init; }

    /// <summary>The preset names.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick"];

    /// <summary>
    /// A starting config: "tiny" (64 px, a 3-level U-Net of 8-32 channels, 64 phantoms, 40 steps: seconds, for tests)
    /// or "quick" (128 px, a 4-level U-Net of 8-64 channels, 600 phantoms, 500 steps of 16: sized to about 10 minutes on 2 cores).
    /// </summary>
    /// <exception cref="ArgumentException">An unknown preset (the message lists the known ones).</exception>
    public static SegmentationConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => new SegmentationConfig
        {
            Size = 64, Widths = [8, 16, 32], Groups = 4, TrainImages = 64, Steps = 40, BatchSize = 8, LearningRate = 5e-3, WarmupSteps = 4,
            CheckpointEvery = 20,
        },
        "quick" => new SegmentationConfig(),
        _ => throw new ArgumentException($"unknown segmentation preset '{name}'; expected one of: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>The network's shape (one output per structure).</summary>
    [JsonIgnore]
    public UNetConfig Network => new() { Widths = Widths, Groups = Groups, OutChannels = Structures.Count };

    /// <inheritdoc />
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Data)) throw new ArgumentException("SegmentationConfig.Data must be 'phantoms' or a labels.csv path");
        if (Structures is null || Structures.Count == 0 || Structures.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("SegmentationConfig.Structures must name at least one mask (e.g. lungs)");
        if (Structures.Distinct(StringComparer.Ordinal).Count() != Structures.Count)
            throw new ArgumentException($"SegmentationConfig.Structures names a structure twice: {string.Join(", ", Structures)}");
        Network.Validate();
        if (Size < 32 || Size > 1024 || Size % Network.SizeMultiple != 0)
            throw new ArgumentException($"SegmentationConfig.Size must be 32..1024 and divisible by {Network.SizeMultiple} ({Widths.Count} levels), got {Size}");
        if (TrainImages < 1) throw new ArgumentException($"SegmentationConfig.TrainImages must be at least 1, got {TrainImages}");
        if (Steps < 1) throw new ArgumentException($"SegmentationConfig.Steps must be at least 1, got {Steps}");
        if (BatchSize < 1) throw new ArgumentException($"SegmentationConfig.BatchSize must be at least 1, got {BatchSize}");
        if (!(LearningRate > 0)) throw new ArgumentException($"SegmentationConfig.LearningRate must be positive, got {LearningRate}");
        if (!(WeightDecay >= 0)) throw new ArgumentException($"SegmentationConfig.WeightDecay must be 0 or more, got {WeightDecay}");
        if (WarmupSteps < 0) throw new ArgumentException($"SegmentationConfig.WarmupSteps must be 0 or more, got {WarmupSteps}");
        if (!(DiceWeight >= 0)) throw new ArgumentException($"SegmentationConfig.DiceWeight must be 0 or more, got {DiceWeight}");
        if (CheckpointEvery < 0) throw new ArgumentException($"SegmentationConfig.CheckpointEvery must be 0 or more, got {CheckpointEvery}");
        Augment?.Validate();
    }

    /// <inheritdoc />
    public double ParameterEstimate() => Network.ParameterEstimate();

    /// <summary>Reads a config JSON file.</summary>
    public static SegmentationConfig Load(string path) => RunFolder.ReadConfig<SegmentationConfig>(path, "segmentation");
}
