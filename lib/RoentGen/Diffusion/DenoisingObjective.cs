using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>One training batch of the denoiser.</summary>
/// <param name="Latents">Clean scaled latents x₀ (B, C, h, w).</param>
/// <param name="TokenIds">Prompt token ids (B, L).</param>
/// <param name="Weights">Per-latent-pixel loss weights (B, 1, h, w), e.g. <see cref="DenoisingObjective.FindingWeights"/>; null: uniform.</param>
public sealed record DenoisingBatch(Tensor Latents, Tensor TokenIds, Tensor? Weights = null);

/// <summary>
/// The denoising training objective of a latent diffusion model (Ho et al. 2020; Rombach et al. 2022), separate from
/// the network and from the training loop: replace some prompts by the empty prompt (classifier-free guidance
/// training, Ho and Salimans 2022), noise the latents at uniformly drawn timesteps, and regress the UNet's output on
/// the schedule's target (ε or v, as <see cref="NoiseScheduleConfig.Prediction"/> says, so that training and the
/// samplers agree), optionally weighted per sample by Min-SNR-γ (Hang et al. 2023).
/// </summary>
public sealed class DenoisingObjective
{
    /// <summary>Creates the objective.</summary>
    /// <param name="schedule">The noise schedule (and prediction type) the model is trained for.</param>
    /// <param name="promptDropout">Probability of replacing a prompt by the empty prompt.</param>
    /// <param name="minSnrGamma">Min-SNR-γ weighting; null: the plain mean squared error.</param>
    /// <exception cref="ArgumentOutOfRangeException">The dropout is outside [0, 1] or γ is not positive.</exception>
    public DenoisingObjective(NoiseScheduleConfig schedule, double promptDropout = 0.1, double? minSnrGamma = 5.0)
    {
        if (!(promptDropout >= 0 && promptDropout <= 1)) throw new ArgumentOutOfRangeException(nameof(promptDropout), promptDropout, "prompt dropout must be in [0, 1]");
        if (minSnrGamma is double g && !(g > 0)) throw new ArgumentOutOfRangeException(nameof(minSnrGamma), g, "Min-SNR gamma must be positive");
        Schedule = new NoiseSchedule(schedule);
        PromptDropout = promptDropout;
        MinSnrGamma = minSnrGamma;
    }

    /// <summary>The objective of an experiment config (its schedule, prompt dropout and Min-SNR-γ).</summary>
    public static DenoisingObjective For(LdmExperimentConfig cfg) => new(cfg.Schedule, cfg.PromptDropout, cfg.MinSnrGamma);

    /// <summary>The noise schedule.</summary>
    public NoiseSchedule Schedule { get; }
    /// <summary>What the UNet is trained to predict (the schedule's).</summary>
    public PredictionType Prediction => Schedule.Config.Prediction;
    /// <summary>Probability of replacing a prompt by the empty prompt.</summary>
    public double PromptDropout { get; }
    /// <summary>Min-SNR-γ, or null for the plain mean squared error.</summary>
    public double? MinSnrGamma { get; }

    /// <summary>
    /// The scalar loss of one batch, in the latents' type (float32) whatever the UNet computes in. The text encoder runs with gradients only when it is trainable. Random draws, in
    /// this order, all from <paramref name="generator"/>: which prompts drop (drawn even at dropout 0), the noise, the
    /// timesteps.
    /// </summary>
    /// <exception cref="ArgumentException">The model was built for another noise schedule, or the batch's sizes differ.</exception>
    public Tensor Loss(LatentDiffusionModel model, DenoisingBatch batch, Generator generator)
    {
        if (model.Scheduler != Schedule.Config)
            throw new ArgumentException($"the objective's noise schedule ({Schedule.Config}) is not the model's ({model.Scheduler})", nameof(model));
        var x0 = batch.Latents;                                                     // (B, C, h, w)
        long b = x0.shape[0];
        if (batch.TokenIds.shape[0] != b)
            throw new ArgumentException($"the batch has {b} latents but {batch.TokenIds.shape[0]} prompts", nameof(batch));
        Tensor emptyIds;
        using (no_grad()) emptyIds = model.Tokenizer.EncodeBatch([""], model.MaxTokens).Ids;   // (1, L)
        // Classifier-free guidance training: some prompts become the empty prompt.
        var drop = rand(b, generator: generator).lt(PromptDropout).unsqueeze(1);   // (B, 1)
        var tok = where(drop, emptyIds.expand(b, -1), batch.TokenIds);             // (B, L)
        var context = model.IsTrainable(LdmPart.TextEncoder) ? model.TextEncoder.call(tok) : WithNoGrad(() => model.TextEncoder.call(tok));   // (B, L, D)
        var noise = randn(x0.shape, generator: generator);
        var t = randint(0, Schedule.TrainTimesteps, [b], dtype: ScalarType.Int64, generator: generator);   // (B)
        var pred = model.Unet.call(Schedule.AddNoise(x0, noise, t), t, context);
        if (pred.dtype != x0.dtype) pred = pred.to(x0.dtype);   // a bfloat16 UNet (mixed precision): the loss in float32
        if (batch.Weights is null && MinSnrGamma is not double) return nn.functional.mse_loss(pred, Schedule.Target(x0, noise, t));
        var squared = (pred - Schedule.Target(x0, noise, t)).pow(2);                 // (B, C, h, w)
        // Pixel weights: a weighted mean per sample (normalised by the sample's mean weight, so the loss keeps its scale).
        var perSample = batch.Weights is { } w ? (squared * w).mean([1, 2, 3]) / w.mean([1, 2, 3]) : squared.mean([1, 2, 3]);   // (B)
        return MinSnrGamma is double gamma ? (perSample * Schedule.MinSnrWeights(t, gamma)).mean() : perSample.mean();
    }

    /// <summary>
    /// Loss weights that make findings count: 1 + <paramref name="weight"/> on every latent pixel a finding mask touches
    /// (max-pooled from image to latent size, so a lesion smaller than one latent pixel still marks it), 1 elsewhere.
    /// Small findings (a 2-pixel nodule at 64 px is under 1 % of the latent) otherwise hardly move the mean squared error.
    /// </summary>
    /// <param name="masks">(N, 1, S, S) finding masks in [0, 1] (<see cref="LdmTrainingData.FindingMasks"/>).</param>
    /// <param name="latentSize">The latent side h = w; S must be a multiple of it.</param>
    /// <param name="weight">Extra weight of finding pixels (positive).</param>
    /// <returns>(N, 1, h, w).</returns>
    /// <exception cref="ArgumentException">The masks are not (N, 1, S, S) with S a multiple of the latent size, or the weight is not positive.</exception>
    public static Tensor FindingWeights(Tensor masks, long latentSize, double weight)
    {
        ArgumentNullException.ThrowIfNull(masks);
        if (!(weight > 0 && double.IsFinite(weight))) throw new ArgumentOutOfRangeException(nameof(weight), weight, "the finding loss weight must be positive");
        if (masks.dim() != 4 || masks.shape[1] != 1 || masks.shape[2] != masks.shape[3] || latentSize < 1 || masks.shape[2] % latentSize != 0)
            throw new ArgumentException($"finding masks of shape [{string.Join(", ", masks.shape)}] do not pool to {latentSize}x{latentSize} latents; expected (N, 1, S, S) with S a multiple of {latentSize}", nameof(masks));
        long k = masks.shape[2] / latentSize;
        using var _ = no_grad();
        var pooled = k == 1 ? masks.clone() : nn.functional.max_pool2d(masks, k, k);
        return pooled.mul_(weight).add_(1.0);
    }

    private static Tensor WithNoGrad(Func<Tensor> f)
    {
        using var _ = no_grad();
        return f();
    }
}
