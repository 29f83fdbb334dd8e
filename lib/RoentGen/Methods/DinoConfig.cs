using System.Text.Json;
using RoentGen.Interop;
using RoentGen.Vision;

namespace RoentGen.Methods;

/// <summary>
/// One DINOv2-style self-supervised run (Oquab et al. 2023; RAD-DINO, Pérez-García et al. 2025): the ViT,
/// the projection heads, the three losses and their weights (0 disables a loss), the temperature, momentum,
/// learning-rate and weight-decay schedules, the crops and the run length. Round-trips through JSON.
/// </summary>
public sealed record DinoConfig
{
    /// <summary>The backbone (ImageSize should equal the global crop size).</summary>
    public VitConfig Vit { get; init; } = new();
    /// <summary>Prototypes (output width) of the DINO and iBOT heads.</summary>
    public int Prototypes { get; init; } = 1024;
    /// <summary>Hidden width of the heads' MLP.</summary>
    public int HeadHidden { get; init; } = 512;
    /// <summary>Bottleneck width of the heads before the prototype layer.</summary>
    public int HeadBottleneck { get; init; } = 128;
    /// <summary>
    /// Batch normalisation after the heads' hidden layers (DINO's use_bn_in_head; off in DINOv2 and in every preset).
    /// It removes what the batch shares before the prototypes, which makes the teacher's first targets sharper (what it
    /// did at the quick budget is in notebook 05's reading notes).
    /// </summary>
    public bool HeadBatchNorm { get; init; }

    /// <summary>Weight of the DINO CLS-token loss (Caron et al. 2021); 0 disables it.</summary>
    public double DinoWeight { get; init; } = 1.0;
    /// <summary>Weight of the iBOT masked-patch loss (Zhou et al. 2022); 0 disables it (and masking).</summary>
    public double IBotWeight { get; init; } = 1.0;
    /// <summary>Weight of the KoLeo regulariser on the student's global CLS features; 0 disables it.</summary>
    public double KoLeoWeight { get; init; } = 0.1;

    /// <summary>Teacher temperature at step 0.</summary>
    public double TeacherTemperatureStart { get; init; } = 0.04;
    /// <summary>Teacher temperature after the warm-up.</summary>
    public double TeacherTemperature { get; init; } = 0.07;
    /// <summary>Steps of the linear teacher-temperature warm-up.</summary>
    public int TeacherTemperatureWarmupSteps { get; init; } = 100;
    /// <summary>Student temperature.</summary>
    public double StudentTemperature { get; init; } = 0.1;
    /// <summary>EMA momentum of the teacher at step 0 (cosine schedule to <see cref="MomentumEnd"/>).</summary>
    public double MomentumStart { get; init; } = 0.992;
    /// <summary>EMA momentum of the teacher at the last step.</summary>
    public double MomentumEnd { get; init; } = 1.0;
    /// <summary>Teacher targets by Sinkhorn-Knopp (DINOv2) instead of centring (DINO).</summary>
    public bool SinkhornKnopp { get; init; }
    /// <summary>EMA momentum of the centres (centring mode).</summary>
    public double CenterMomentum { get; init; } = 0.9;

    /// <summary>Smallest fraction of patches masked in an image chosen for masking.</summary>
    public double MaskRatioMin { get; init; } = 0.1;
    /// <summary>Largest fraction of patches masked.</summary>
    public double MaskRatioMax { get; init; } = 0.5;
    /// <summary>Fraction of global crops that are masked for iBOT.</summary>
    public double MaskProbability { get; init; } = 0.5;

    /// <summary>The crops.</summary>
    public MultiCropOptions Crops { get; init; } = new();
    /// <summary>Side at which source images are loaded (phantoms generated) before cropping.</summary>
    public int SourceSize { get; init; } = 128;

    /// <summary>Peak learning rate (AdamW).</summary>
    public double LearningRate { get; init; } = 5e-4;
    /// <summary>Learning-rate warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 30;
    /// <summary>Final learning rate as a fraction of the peak.</summary>
    public double MinLrFraction { get; init; } = 0.01;
    /// <summary>Weight decay at step 0 (cosine schedule to <see cref="WeightDecayEnd"/>).</summary>
    public double WeightDecayStart { get; init; } = 0.04;
    /// <summary>Weight decay at the last step.</summary>
    public double WeightDecayEnd { get; init; } = 0.2;
    /// <summary>
    /// Steps at the start during which the heads' prototype layers get no gradient (DINO's freeze_last_layer, one epoch
    /// there; 0 here). A free prototype layer is one way the student can make its outputs uniform (what freezing did at the
    /// quick budget is in notebook 05's reading notes).
    /// </summary>
    public int FreezePrototypesSteps { get; init; }
    /// <summary>Global gradient-norm clip (DINOv2: 3.0).</summary>
    public double GradClipNorm { get; init; } = 3.0;

    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 300;
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Checkpoint every this many steps (0: only at the end).</summary>
    public int CheckpointEvery { get; init; } = 100;
    /// <summary>Seed of the weights, the data order and the augmentations.</summary>
    public long Seed { get; init; }

    /// <summary>Names of the presets.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick", "quick-mild", "small"];

    /// <summary>
    /// A run for tests and smoke checks (seconds for a few steps): 32 px globals, 16 px locals, a 2-layer ViT of
    /// width 32 with 2 heads, 64 prototypes. It shows that the loop runs, not what DINO learns.
    /// </summary>
    public static DinoConfig Tiny { get; } = new()
    {
        Vit = new VitConfig { ImageSize = 32, PatchSize = 8, HiddenSize = 32, Layers = 2, Heads = 2, LayerScaleInit = 0.1 },
        Prototypes = 64, HeadHidden = 64, HeadBottleneck = 16, SinkhornKnopp = true,
        Crops = new MultiCropOptions { GlobalSize = 32, LocalSize = 16, LocalCrops = 2, BlurSigmaMax = 1.0 },
        SourceSize = 64, Steps = 20, BatchSize = 4, WarmupSteps = 3, TeacherTemperatureWarmupSteps = 10, CheckpointEvery = 0,
        LearningRate = 2e-3,
    };

    /// <summary>
    /// A tiny run that trains in minutes on two CPU cores: 64 px globals, 32 px locals, a 4-layer ViT of width 128,
    /// Sinkhorn-Knopp teacher targets (in short runs, centring first drifts to uniform targets).
    /// </summary>
    public static DinoConfig Quick { get; } = new()
    {
        Vit = new VitConfig { ImageSize = 64, PatchSize = 8, HiddenSize = 128, Layers = 4, Heads = 4, LayerScaleInit = 0.1 },
        Prototypes = 256, HeadHidden = 256, HeadBottleneck = 64, SinkhornKnopp = true,
        Crops = new MultiCropOptions { GlobalSize = 64, LocalSize = 32, LocalCrops = 4, BlurSigmaMax = 1.0 },
        SourceSize = 128, Steps = 300, BatchSize = 16, WarmupSteps = 30, TeacherTemperatureWarmupSteps = 100, CheckpointEvery = 100,
    };

    /// <summary>
    /// <see cref="Quick"/>'s ViT with a recipe whose DINO (CLS) term learns on the quick budget, found by the runs in
    /// lib/RoentGen/Methods/README.md: 64 prototypes, a sharp and fixed teacher (τ = 0.01, Sinkhorn-Knopp), a teacher
    /// that follows the student faster (momentum from 0.99), LayerScale 1, and milder views (global crops of 80-100 %,
    /// two local crops of 30-50 %, no solarisation, less colour jitter), 900 steps (at 600 one seed of three ended 0.497
    /// nats below ln K, at 900 all three more than 0.59 below). With <see cref="Quick"/>'s settings the CLS term stays at
    /// ln K (uniform teacher targets).
    /// </summary>
    public static DinoConfig QuickMild { get; } = Quick with
    {
        Vit = Quick.Vit with { LayerScaleInit = 1.0 },
        Prototypes = 64,
        TeacherTemperatureStart = 0.01, TeacherTemperature = 0.01, MomentumStart = 0.99,
        Crops = Quick.Crops with { GlobalScaleMin = 0.8, LocalCrops = 2, LocalScaleMin = 0.3, LocalScaleMax = 0.5, SolarizeProbability = 0, JitterProbability = 0.3 },
        Steps = 900,
    };

    /// <summary>A ViT-S/16-shaped run at 128 px (hours on a CPU; meant for a GPU build).</summary>
    public static DinoConfig Small { get; } = new()
    {
        Vit = new VitConfig { ImageSize = 128, PatchSize = 16, HiddenSize = 384, Layers = 12, Heads = 6, LayerScaleInit = 1e-5, DropPathRate = 0.1, RegisterTokens = 4 },
        Prototypes = 4096, HeadHidden = 1024, HeadBottleneck = 256,
        Crops = new MultiCropOptions { GlobalSize = 128, LocalSize = 64, LocalCrops = 8, BlurSigmaMax = 2.0 },
        SourceSize = 256, Steps = 20000, BatchSize = 64, WarmupSteps = 1000, TeacherTemperatureWarmupSteps = 3000, CheckpointEvery = 1000,
        LearningRate = 1e-3,
    };

    /// <summary>A preset by name (<see cref="PresetNames"/>).</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static DinoConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Tiny,
        "quick" => Quick,
        "quick-mild" => QuickMild,
        "small" => Small,
        _ => throw new ArgumentException($"unknown DINO preset '{name}'; known presets: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>
    /// This recipe for a run of <paramref name="steps"/> steps of <paramref name="batchSize"/> images, with the learning-rate and
    /// teacher-temperature warm-ups kept inside short runs (at most a tenth and a third of the steps): the rule the
    /// encoder comparison and notebook 04 share.
    /// </summary>
    public DinoConfig ForRun(int steps, int batchSize) => this with
    {
        Steps = steps, BatchSize = batchSize,
        WarmupSteps = Math.Min(WarmupSteps, Math.Max(1, steps / 10)),
        TeacherTemperatureWarmupSteps = Math.Min(TeacherTemperatureWarmupSteps, Math.Max(1, steps / 3)),
    };

    /// <summary>Checks the run is consistent.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public void Validate()
    {
        Vit.Validate();
        Crops.Validate();
        if (Crops.GlobalSize % Vit.PatchSize != 0 || Crops.LocalSize % Vit.PatchSize != 0)
            throw new ArgumentException($"crop sizes (global {Crops.GlobalSize}, local {Crops.LocalSize}) must be multiples of the patch size {Vit.PatchSize}");
        if (Prototypes < 1 || HeadHidden < 1 || HeadBottleneck < 1) throw new ArgumentException($"head sizes must be positive, got Prototypes {Prototypes}, HeadHidden {HeadHidden}, HeadBottleneck {HeadBottleneck}");
        if (DinoWeight < 0 || IBotWeight < 0 || KoLeoWeight < 0) throw new ArgumentException($"loss weights must be >= 0, got DINO {DinoWeight}, iBOT {IBotWeight}, KoLeo {KoLeoWeight}");
        if (DinoWeight + IBotWeight + KoLeoWeight <= 0) throw new ArgumentException("at least one loss weight (DinoWeight, IBotWeight, KoLeoWeight) must be above 0");
        if (!(MaskRatioMin >= 0 && MaskRatioMin <= MaskRatioMax && MaskRatioMax <= 1)) throw new ArgumentException($"mask ratio range must satisfy 0 <= min <= max <= 1, got [{MaskRatioMin}, {MaskRatioMax}]");
        if (MaskProbability < 0 || MaskProbability > 1) throw new ArgumentException($"MaskProbability must be in [0, 1], got {MaskProbability}");
        if (TeacherTemperatureStart <= 0 || TeacherTemperature <= 0 || StudentTemperature <= 0) throw new ArgumentException("temperatures must be positive");
        if (MomentumStart < 0 || MomentumStart > 1 || MomentumEnd < 0 || MomentumEnd > 1) throw new ArgumentException($"momenta must be in [0, 1], got {MomentumStart} -> {MomentumEnd}");
        if (FreezePrototypesSteps < 0) throw new ArgumentException($"FreezePrototypesSteps must be >= 0, got {FreezePrototypesSteps}");
        if (Steps < 1) throw new ArgumentException($"Steps must be at least 1, got {Steps}");
        if (BatchSize < 2 && KoLeoWeight > 0) throw new ArgumentException($"KoLeo needs BatchSize >= 2, got {BatchSize}");
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1, got {BatchSize}");
        if (SourceSize < Crops.GlobalSize / 2) throw new ArgumentException($"SourceSize {SourceSize} is too small for global crops of {Crops.GlobalSize}");
    }

    /// <summary>The config as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, SafeTensors.ConfigJsonOptions);

    /// <summary>Reads a config from JSON (missing fields take their defaults).</summary>
    /// <exception cref="InvalidDataException">Not a DinoConfig; the message names the source.</exception>
    public static DinoConfig FromJson(string json, string sourceName = "JSON")
    {
        try
        {
            return JsonSerializer.Deserialize<DinoConfig>(json, SafeTensors.ConfigJsonOptions)
                   ?? throw new InvalidDataException($"{sourceName}: the DINO config is null");
        }
        catch (JsonException e) { throw new InvalidDataException($"{sourceName}: not a valid DinoConfig: {e.Message}", e); }
    }

    /// <summary>Reads a config file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a DinoConfig.</exception>
    public static DinoConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"DINO config file not found: {path}", path);
        return FromJson(RoentGen.Platform.InputFile.ReadAllText(path, 1 << 20, "DINO config"), path);
    }
}
