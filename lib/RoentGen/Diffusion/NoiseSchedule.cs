using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>How the variance β_t grows over the training timesteps.</summary>
public enum BetaSchedule
{
    /// <summary>β linear from BetaStart to BetaEnd (Ho et al. 2020).</summary>
    Linear,
    /// <summary>√β linear, then squared: Stable Diffusion's schedule.</summary>
    ScaledLinear,
    /// <summary>ᾱ follows a squared cosine (Nichol and Dhariwal 2021), β clipped at 0.999.</summary>
    Cosine,
}

/// <summary>What the denoising network predicts.</summary>
public enum PredictionType
{
    /// <summary>The added noise ε.</summary>
    Epsilon,
    /// <summary>The velocity v = √ᾱ·ε − √(1−ᾱ)·x₀ (Salimans and Ho 2022).</summary>
    VPrediction,
}

/// <summary>How a sampler picks its timesteps among the training ones (diffusers' timestep_spacing).</summary>
public enum TimestepSpacing
{
    /// <summary>Evenly from T−1 down to 0, rounded (this library's default; diffusers' "linspace").</summary>
    Linspace,
    /// <summary>k·⌊T/steps⌋ for k = steps−1 … 0, plus the steps offset (diffusers' "leading", Stable Diffusion's default: with offset 1, 50 steps visit 981, 961, …, 1).</summary>
    Leading,
    /// <summary>round(T − k·T/steps) − 1 for k = 0 … steps−1 (diffusers' "trailing": starts at T−1).</summary>
    Trailing,
}

/// <summary>Training noise schedule of a diffusion model.</summary>
public sealed record NoiseScheduleConfig
{
    /// <summary>Number of training timesteps T.</summary>
    public int TrainTimesteps { get; init; } = 1000;
    /// <summary>β₁ (linear and scaled-linear schedules).</summary>
    public double BetaStart { get; init; } = 0.00085;
    /// <summary>β_T (linear and scaled-linear schedules).</summary>
    public double BetaEnd { get; init; } = 0.012;
    /// <summary>The schedule's shape.</summary>
    public BetaSchedule Schedule { get; init; } = BetaSchedule.ScaledLinear;
    /// <summary>What the model predicts.</summary>
    public PredictionType Prediction { get; init; } = PredictionType.Epsilon;
    /// <summary>How samplers choose their timesteps (<see cref="TimestepSpacing.Linspace"/> unless a loaded model says otherwise).</summary>
    public TimestepSpacing Spacing { get; init; } = TimestepSpacing.Linspace;
    /// <summary>Added to every timestep of <see cref="TimestepSpacing.Leading"/> spacing (diffusers' steps_offset; SD: 1).</summary>
    public int StepsOffset { get; init; }
    /// <summary>
    /// DDIM's ᾱ after its last step: 1 (true, the default: the clean sample) or ᾱ₀ (false, diffusers' set_alpha_to_one
    /// false, as Stable Diffusion's scheduler configs say).
    /// </summary>
    public bool SetAlphaToOne { get; init; } = true;
}

/// <summary>
/// The forward (noising) process q(x_t | x₀) = N(√ᾱ_t x₀, (1 − ᾱ_t) I) and the conversions between
/// model outputs (ε, v) and the clean-sample estimate x̂₀ that every sampler needs.
/// </summary>
public sealed class NoiseSchedule
{
    /// <summary>Builds the tables.</summary>
    public NoiseSchedule(NoiseScheduleConfig config)
    {
        Config = config;
        int n = config.TrainTimesteps;
        if (n < 2) throw new ArgumentException($"TrainTimesteps must be at least 2, got {n}");
        if (n > 100_000) throw new ArgumentException($"TrainTimesteps is {n}; expected 2 to 100000");
        if (config.StepsOffset < 0 || config.StepsOffset >= n) throw new ArgumentException($"StepsOffset must be in [0, {n - 1}], got {config.StepsOffset}");
        if (!(config.BetaStart > 0 && config.BetaStart < 1 && config.BetaEnd > 0 && config.BetaEnd < 1))
            throw new ArgumentException($"BetaStart and BetaEnd must be finite numbers in (0, 1), got {config.BetaStart} and {config.BetaEnd}");
        Betas = new double[n];
        switch (config.Schedule)
        {
            case BetaSchedule.Linear:
                for (int i = 0; i < n; i++) Betas[i] = config.BetaStart + (config.BetaEnd - config.BetaStart) * i / (n - 1);
                break;
            case BetaSchedule.ScaledLinear:
                double a = Math.Sqrt(config.BetaStart), b = Math.Sqrt(config.BetaEnd);
                for (int i = 0; i < n; i++) { double s = a + (b - a) * i / (n - 1); Betas[i] = s * s; }
                break;
            case BetaSchedule.Cosine:
                static double F(double t) { const double s = 0.008; double c = Math.Cos((t + s) / (1 + s) * Math.PI / 2); return c * c; }
                for (int i = 0; i < n; i++) Betas[i] = Math.Min(1 - F((i + 1.0) / n) / F((double)i / n), 0.999);
                break;
        }
        AlphasCumprod = new double[n];
        double prod = 1;
        for (int i = 0; i < n; i++) { prod *= 1 - Betas[i]; AlphasCumprod[i] = prod; }
    }

    /// <summary>The configuration.</summary>
    public NoiseScheduleConfig Config { get; }
    /// <summary>β_t for t = 0 … T−1.</summary>
    public double[] Betas { get; }
    /// <summary>ᾱ_t = ∏_{s ≤ t} (1 − β_s).</summary>
    public double[] AlphasCumprod { get; }
    /// <summary>T.</summary>
    public int TrainTimesteps => Config.TrainTimesteps;

    /// <summary>ᾱ at a timestep; −1 means "before the first step" (ᾱ = 1, no noise).</summary>
    public double AlphaBar(int t) => t < 0 ? 1.0 : AlphasCumprod[t];

    /// <summary>ᾱ after DDIM's last step: 1 with <see cref="NoiseScheduleConfig.SetAlphaToOne"/>, else ᾱ₀.</summary>
    public double FinalAlphaBar => Config.SetAlphaToOne ? 1.0 : AlphasCumprod[0];

    /// <summary>Noise scale of the equivalent variance-exploding process: σ_t = √((1 − ᾱ_t) / ᾱ_t).</summary>
    public double Sigma(int t) => Math.Sqrt((1 - AlphaBar(t)) / AlphaBar(t));

    /// <summary>x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε, per sample: <paramref name="timesteps"/> is (B) int64.</summary>
    public Tensor AddNoise(Tensor x0, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (sa, so) = Coefficients(timesteps, x0);
        return (sa * x0 + so * noise).MoveToOuterDisposeScope();
    }

    /// <summary>The training target for the configured prediction type.</summary>
    public Tensor Target(Tensor x0, Tensor noise, Tensor timesteps)
    {
        if (Config.Prediction == PredictionType.Epsilon) return noise.alias();
        using var scope = NewDisposeScope();
        var (sa, so) = Coefficients(timesteps, x0);
        return (sa * noise - so * x0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Min-SNR-γ loss weights (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy"): per
    /// sample, min(SNR_t, γ) / SNR_t for ε-prediction and min(SNR_t, γ) / (SNR_t + 1) for v-prediction, with
    /// SNR_t = ᾱ_t / (1 − ᾱ_t). Nearly noise-free timesteps, whose ε targets are hard but matter little to the
    /// image, are weighted down, so training spends itself on the noisy steps that decide layout and content.
    /// </summary>
    /// <param name="timesteps">(B) int64.</param>
    /// <param name="gamma">γ (the paper uses 5).</param>
    /// <returns>(B) float32 weights.</returns>
    public Tensor MinSnrWeights(Tensor timesteps, double gamma)
    {
        if (!(gamma > 0)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "Min-SNR gamma must be positive");
        using var scope = NewDisposeScope();
        var ab = tensor(AlphasCumprod, dtype: ScalarType.Float64).index_select(0, timesteps.to(ScalarType.Int64).cpu());
        var snr = ab / (1 - ab);
        var clipped = snr.clamp_max(gamma);
        var w = Config.Prediction == PredictionType.Epsilon ? clipped / snr : clipped / (snr + 1);
        return w.to(ScalarType.Float32).to(timesteps.device).MoveToOuterDisposeScope();
    }

    /// <summary>(x̂₀, ε̂) from a model output at one timestep.</summary>
    public (Tensor X0, Tensor Epsilon) Split(Tensor modelOutput, Tensor sample, int t)
    {
        double ab = AlphaBar(t), sa = Math.Sqrt(ab), so = Math.Sqrt(1 - ab);
        if (Config.Prediction == PredictionType.Epsilon)
            return ((sample - so * modelOutput) / sa, modelOutput.alias());
        // v = sa·ε − so·x₀ and x_t = sa·x₀ + so·ε  ⇒  x₀ = sa·x_t − so·v,  ε = so·x_t + sa·v
        return (sa * sample - so * modelOutput, so * sample + sa * modelOutput);
    }

    // (B, 1, 1, …) columns of √ᾱ and √(1−ᾱ) broadcastable against x.
    private (Tensor SqrtAlphaBar, Tensor SqrtOneMinus) Coefficients(Tensor timesteps, Tensor like)
    {
        var ab = tensor(AlphasCumprod, dtype: ScalarType.Float64).index_select(0, timesteps.to(ScalarType.Int64).cpu());
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = -1;
        var sa = ab.sqrt().to(like.dtype).view(shape).to(like.device);
        var so = (1 - ab).sqrt().to(like.dtype).view(shape).to(like.device);
        return (sa, so);
    }
}
