namespace RoentGen.Methods;

/// <summary>
/// The data and optimisation budget shared by the baseline encoders (supervised, language-supervised), so that each is
/// trained on the same phantoms for the same steps as the self-supervised run it is compared with.
/// </summary>
public abstract record EncoderTrainingBudget
{
    /// <summary>Training phantoms P (cases 0 … P − 1 of the world <see cref="WorldSeed"/>) when the records are phantoms.</summary>
    public int Phantoms { get; init; } = 4000;
    /// <summary>Seed of the training phantoms' world.</summary>
    public long WorldSeed { get; init; } = 1;
    /// <summary>Side at which phantoms are rendered, and other records' images made square, before cropping.</summary>
    public int SourceSize { get; init; } = 128;
    /// <summary>Smallest area fraction of the random resized crop.</summary>
    public double CropScaleMin { get; init; } = 0.5;
    /// <summary>Largest area fraction of the random resized crop.</summary>
    public double CropScaleMax { get; init; } = 1.0;
    /// <summary>Peak learning rate (AdamW).</summary>
    public double LearningRate { get; init; } = 5e-4;
    /// <summary>Weight decay of weight matrices (biases, norms, tokens, LayerScale and a learned temperature get none).</summary>
    public double WeightDecay { get; init; } = 0.05;
    /// <summary>Learning-rate warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 30;
    /// <summary>Final learning rate as a fraction of the peak.</summary>
    public double MinLrFraction { get; init; } = 0.01;
    /// <summary>Global gradient-norm clip (0: none).</summary>
    public double GradClipNorm { get; init; } = 3.0;
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 300;
    /// <summary>Examples (images, or image-report pairs) per step.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Checkpoint every this many steps (0: only at the end).</summary>
    public int CheckpointEvery { get; init; } = 100;
    /// <summary>Seed of the weights, the data order and the augmentation.</summary>
    public long Seed { get; init; }

    /// <summary>
    /// The budget of a DINO run for a baseline compared with it: its source size, learning-rate schedule, clip, steps,
    /// batch, checkpoint interval and seed, on <paramref name="phantoms"/> phantoms of world <paramref name="worldSeed"/>.
    /// </summary>
    protected static EncoderTrainingBudget MatchingDino(DinoConfig dino, int phantoms, long worldSeed) => new Budget
    {
        Phantoms = phantoms, WorldSeed = worldSeed, SourceSize = dino.SourceSize,
        LearningRate = dino.LearningRate, WarmupSteps = dino.WarmupSteps, MinLrFraction = dino.MinLrFraction, GradClipNorm = dino.GradClipNorm,
        Steps = dino.Steps, BatchSize = dino.BatchSize, CheckpointEvery = dino.CheckpointEvery, Seed = dino.Seed,
    };

    /// <summary>Checks the fields every baseline shares.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    protected void ValidateBudget()
    {
        if (Phantoms < 2) throw new ArgumentException($"Phantoms must be at least 2, got {Phantoms}");
    }

    private sealed record Budget : EncoderTrainingBudget;
}
