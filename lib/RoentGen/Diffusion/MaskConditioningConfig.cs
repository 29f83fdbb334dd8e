using RoentGen.Nn;
using RoentGen.Training;

namespace RoentGen.Diffusion;

/// <summary>How a latent diffusion model is made to follow masks.</summary>
public enum MaskConditioningVariant
{
    /// <summary>
    /// A trainable copy of the frozen UNet's encoder reads the masks and adds zero-initialised residuals to the UNet
    /// (<see cref="ControlNetModel"/>, Zhang et al. 2023).
    /// </summary>
    ControlNet,
    /// <summary>The masks, resized to the latents, are concatenated to the UNet's input; the widened UNet is fine-tuned.</summary>
    Concat,
}

/// <summary>
/// A mask-conditioning run: which variant, the trained latent diffusion model it starts from, the masks it reads, the
/// phantoms it trains on (their masks and reports; images encoded by the model's frozen VAE) and the optimisation.
/// Pinned in the run folder; <see cref="Steps"/> may grow (the run continues).
/// </summary>
public sealed record MaskConditioningConfig
{
    /// <summary>The mask names a phantom case can carry (<see cref="RoentGen.Data.Phantoms.PhantomCase.Masks"/>), in channel order.</summary>
    public static IReadOnlyList<string> PhantomMaskNames { get; } =
        ["lungs", "heart", "pleural_effusion", "pneumothorax", "consolidation", "edema", "nodule", "mass", "atelectasis", "fracture", "support_devices"];

    /// <summary>The variant.</summary>
    public MaskConditioningVariant Variant { get; init; } = MaskConditioningVariant.ControlNet;
    /// <summary>The trained latent diffusion folder it starts from (a <c>roentgen train</c> experiment folder or a saved model).</summary>
    public string From { get; init; } = "";
    /// <summary>Mask names read, in channel order (a condition lacking one gets an empty channel).</summary>
    public IReadOnlyList<string> MaskChannels { get; init; } = PhantomMaskNames;
    /// <summary>ControlNet: channels of the conditioning network's convolutions.</summary>
    public int ConditioningWidth { get; init; } = 16;
    /// <summary>ControlNet: the scale of its residuals when sampling (training uses 1).</summary>
    public double ConditioningScale { get; init; } = 1.0;
    /// <summary>Phantom cases trained on.</summary>
    public int TrainImages { get; init; } = 800;
    /// <summary>Seed of the phantom world (the base model's quick preset trains on world 1).</summary>
    public long DataSeed { get; init; } = 1;
    /// <summary>Index of the first phantom case.</summary>
    public int DataStart { get; init; }
    /// <summary>Optimizer steps (may grow: the run continues).</summary>
    public int Steps { get; init; } = 600;
    /// <summary>Batch size.</summary>
    public int Batch { get; init; } = 16;
    /// <summary>Peak learning rate (AdamW, warm-up then cosine).</summary>
    public double Lr { get; init; } = 5e-4;
    /// <summary>Probability of training a sample with the empty prompt (so guidance works; the masks stay).</summary>
    public double PromptDropout { get; init; } = 0.1;
    /// <summary>Min-SNR-γ loss weighting, or null for the plain mean squared error.</summary>
    public double? MinSnrGamma { get; init; } = 5.0;
    /// <summary>EMA decay of the trained weights (null: none).</summary>
    public double? EmaDecay { get; init; } = 0.999;
    /// <summary>Seed of the initial weights (the conditioning network) and of every training stream.</summary>
    public long Seed { get; init; }

    /// <summary>The preset names.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick"];

    /// <summary>
    /// "tiny" (8 phantoms, 3 steps of 2, no EMA: seconds, for tests) or "quick" (800 phantoms, 600 steps of 16: sized for
    /// a quick LDM on 2 CPU cores).
    /// </summary>
    /// <exception cref="ArgumentException">An unknown preset; the message lists the known ones.</exception>
    public static MaskConditioningConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => new MaskConditioningConfig { TrainImages = 8, Steps = 3, Batch = 2, EmaDecay = null, ConditioningWidth = 8 },
        "quick" => new MaskConditioningConfig(),
        _ => throw new ArgumentException($"unknown mask-conditioning preset '{name}'; expected one of: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and the range.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(From)) throw new ArgumentException("From: the trained latent diffusion folder to start from is required (--from)");
        if (MaskChannels is null || MaskChannels.Count == 0) throw new ArgumentException("MaskChannels: at least one mask name is required");
        if (MaskChannels.Distinct(StringComparer.Ordinal).Count() != MaskChannels.Count)
            throw new ArgumentException($"MaskChannels: names repeat ({string.Join(", ", MaskChannels)})");
        ModelSize.InRange(nameof(ConditioningWidth), ConditioningWidth, 1, ModelSize.MaxWidth);
        ModelSize.InRange(nameof(ConditioningScale), ConditioningScale, 0, 100);
        ModelSize.InRange(nameof(TrainImages), TrainImages, 1, 1_000_000);
        ModelSize.InRange(nameof(DataStart), DataStart, 0, int.MaxValue / 2);
        ModelSize.InRange(nameof(Steps), Steps, 1, 10_000_000);
        ModelSize.InRange(nameof(Batch), Batch, 1, 4096);
        ModelSize.InRange(nameof(Lr), Lr, 1e-12, 1);
        ModelSize.InRange(nameof(PromptDropout), PromptDropout, 0, 1);
        if (MinSnrGamma is double g) ModelSize.InRange(nameof(MinSnrGamma), g, 1e-9, 1e6);
        if (EmaDecay is double d) ModelSize.InRange(nameof(EmaDecay), d, 0, 1);
    }

    /// <summary>Reads a pinned config.json.</summary>
    public static MaskConditioningConfig Load(string path) => RunFolder.ReadConfig<MaskConditioningConfig>(path, "mask-conditioning");
}
