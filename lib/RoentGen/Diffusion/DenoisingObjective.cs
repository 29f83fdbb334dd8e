using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>One training batch of the denoiser.</summary>
/// <param name="Latents">Clean scaled latents x₀ (B, C, h, w).</param>
/// <param name="TokenIds">Prompt token ids (B, L).</param>
public sealed record DenoisingBatch(Tensor Latents, Tensor TokenIds);

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
        if (MinSnrGamma is not double gamma) return nn.functional.mse_loss(pred, Schedule.Target(x0, noise, t));
        var perSample = (pred - Schedule.Target(x0, noise, t)).pow(2).mean([1, 2, 3]);   // (B)
        return (perSample * Schedule.MinSnrWeights(t, gamma)).mean();
    }

    private static Tensor WithNoGrad(Func<Tensor> f)
    {
        using var _ = no_grad();
        return f();
    }
}
