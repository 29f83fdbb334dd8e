using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>The samplers the library offers.</summary>
public enum SchedulerKind
{
    /// <summary>Ancestral DDPM (Ho et al. 2020).</summary>
    Ddpm,
    /// <summary>DDIM (Song et al. 2021), stochastic with eta &gt; 0.</summary>
    Ddim,
    /// <summary>DPM-Solver++ 2M, second-order multistep on data predictions (Lu et al. 2022).</summary>
    DpmSolverPlusPlus,
    /// <summary>Euler method on the probability-flow ODE in σ space (Karras et al. 2022).</summary>
    Euler,
}

/// <summary>
/// A sampler over a trained noise schedule. Use: <see cref="SetTimesteps"/>, start from noise times
/// <see cref="InitNoiseSigma"/>, then for each index i: model(<see cref="ScaleModelInput"/>(x, i), Timesteps[i])
/// and x = <see cref="Step"/>(output, i, x).
/// </summary>
public abstract class NoiseScheduler
{
    /// <summary>Creates a sampler over a schedule.</summary>
    protected NoiseScheduler(NoiseSchedule schedule) { Schedule = schedule; }

    /// <summary>The training schedule.</summary>
    public NoiseSchedule Schedule { get; }

    /// <summary>The descending training timesteps visited, set by <see cref="SetTimesteps"/>.</summary>
    public IReadOnlyList<int> Timesteps { get; private set; } = [];

    /// <summary>Standard deviation of the initial noise (1 except for σ-space samplers).</summary>
    public virtual double InitNoiseSigma => 1.0;

    /// <summary>
    /// Chooses <paramref name="steps"/> descending timesteps as the schedule's <see cref="NoiseScheduleConfig.Spacing"/>
    /// says. The default, evenly from T−1 down to 0 ("linspace" spacing), matters at both ends: starting at T−1 starts
    /// from the noisiest level, and ending at 0 makes the last step a small one (ending higher, as "trailing" spacing
    /// does with few steps, returns a visibly blurred posterior mean). "leading" (Stable Diffusion's) and "trailing"
    /// follow diffusers' definitions, for models trained and tuned with them.
    /// </summary>
    /// <exception cref="ArgumentException">Steps out of [1, T], or leading spacing whose offset runs past T−1.</exception>
    public virtual void SetTimesteps(int steps)
    {
        int T = Schedule.TrainTimesteps;
        if (steps < 1 || steps > T) throw new ArgumentException($"steps must be in [1, {T}], got {steps}");
        var ts = new int[steps];
        switch (Schedule.Config.Spacing)
        {
            case TimestepSpacing.Leading:
                int ratio = T / steps;
                for (int i = 0; i < steps; i++) ts[i] = (steps - 1 - i) * ratio + Schedule.Config.StepsOffset;
                if (ts[0] > T - 1)
                    throw new ArgumentException($"{steps} steps with leading spacing and steps offset {Schedule.Config.StepsOffset} start at timestep {ts[0]}, beyond the last training timestep {T - 1}; use fewer steps");
                break;
            case TimestepSpacing.Trailing:
                double r = T / (double)steps;
                for (int i = 0; i < steps; i++) ts[i] = (int)Math.Round(T - i * r) - 1;
                break;
            default:
                for (int i = 0; i < steps; i++) ts[i] = steps == 1 ? T - 1 : (int)Math.Round((T - 1) * (1 - i / (double)(steps - 1)));
                break;
        }
        Timesteps = ts;
        Reset();
    }

    /// <summary>The timestep after index i (−1 after the last: the clean sample).</summary>
    protected int Next(int index) => index + 1 < Timesteps.Count ? Timesteps[index + 1] : -1;

    /// <summary>Scales the sample before the model sees it (identity except for σ-space samplers).</summary>
    public virtual Tensor ScaleModelInput(Tensor sample, int index) => sample.alias();

    /// <summary>One denoising step from Timesteps[index] to the next timestep.</summary>
    public abstract Tensor Step(Tensor modelOutput, int index, Tensor sample, Generator? generator = null);

    /// <summary>Clears multistep history.</summary>
    protected virtual void Reset() { }

    /// <summary>Builds a sampler by kind.</summary>
    public static NoiseScheduler Create(SchedulerKind kind, NoiseSchedule schedule, double ddimEta = 0) => kind switch
    {
        SchedulerKind.Ddpm => new DdpmScheduler(schedule),
        SchedulerKind.Ddim => new DdimScheduler(schedule, ddimEta),
        SchedulerKind.DpmSolverPlusPlus => new DpmSolverMultistepScheduler(schedule),
        SchedulerKind.Euler => new EulerScheduler(schedule),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown scheduler"),
    };

    /// <summary>Parses a scheduler name: ddpm, ddim, dpmpp (dpm-solver++), euler.</summary>
    public static SchedulerKind ParseKind(string name) => name.ToLowerInvariant().Replace("_", "-") switch
    {
        "ddpm" => SchedulerKind.Ddpm,
        "ddim" => SchedulerKind.Ddim,
        "dpmpp" or "dpm-solver++" or "dpmsolver++" or "dpm++" or "dpmpp-2m" => SchedulerKind.DpmSolverPlusPlus,
        "euler" => SchedulerKind.Euler,
        _ => throw new ArgumentException($"unknown scheduler '{name}'; expected ddpm, ddim, dpmpp or euler"),
    };

    /// <summary>The short name <see cref="ParseKind"/> reads: ddpm, ddim, dpmpp or euler.</summary>
    public static string KindName(SchedulerKind kind) => kind switch
    {
        SchedulerKind.Ddpm => "ddpm",
        SchedulerKind.Ddim => "ddim",
        SchedulerKind.DpmSolverPlusPlus => "dpmpp",
        SchedulerKind.Euler => "euler",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown scheduler"),
    };

    /// <summary>Gaussian noise shaped like <paramref name="like"/>.</summary>
    protected static Tensor Noise(Tensor like, Generator? generator) =>
        randn(like.shape, dtype: like.dtype, device: like.device, generator: generator);
}

/// <summary>
/// Ancestral DDPM: samples x_{t'} from the Gaussian posterior q(x_{t'} | x_t, x̂₀) (Ho et al. 2020, eq. 6-7),
/// with β recomputed between the visited timesteps so fewer steps than T also work.
/// </summary>
public sealed class DdpmScheduler(NoiseSchedule schedule) : NoiseScheduler(schedule)
{
    /// <inheritdoc />
    public override Tensor Step(Tensor modelOutput, int index, Tensor sample, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        int t = Timesteps[index], prev = Next(index);
        double ab = Schedule.AlphaBar(t), abPrev = Schedule.AlphaBar(prev);
        double beta = 1 - ab / abPrev, alpha = 1 - beta;
        var (x0, _) = Schedule.Split(modelOutput, sample, t);
        // Posterior mean: √ᾱ' β / (1−ᾱ) · x̂₀ + √α (1−ᾱ') / (1−ᾱ) · x_t
        var mean = Math.Sqrt(abPrev) * beta / (1 - ab) * x0 + Math.Sqrt(alpha) * (1 - abPrev) / (1 - ab) * sample;
        if (prev >= 0)
        {
            double variance = Math.Max((1 - abPrev) / (1 - ab) * beta, 1e-20);
            mean = mean + Math.Sqrt(variance) * Noise(sample, generator);
        }
        return mean.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// DDIM (Song et al. 2021, eq. 12): x_{t'} = √ᾱ' x̂₀ + √(1 − ᾱ' − σ²) ε̂ + σ z with
/// σ = η √((1 − ᾱ')/(1 − ᾱ)) √(1 − ᾱ/ᾱ'); deterministic and invertible with η = 0.
/// </summary>
public sealed class DdimScheduler(NoiseSchedule schedule, double eta = 0) : NoiseScheduler(schedule)
{
    /// <summary>The stochasticity η (0: deterministic, 1: DDPM-like).</summary>
    public double Eta { get; } = eta >= 0 ? eta : throw new ArgumentException($"eta must be >= 0, got {eta}");

    /// <inheritdoc />
    public override Tensor Step(Tensor modelOutput, int index, Tensor sample, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        int t = Timesteps[index], prev = Next(index);
        double ab = Schedule.AlphaBar(t), abPrev = prev >= 0 ? Schedule.AlphaBar(prev) : Schedule.FinalAlphaBar;
        var (x0, eps) = Schedule.Split(modelOutput, sample, t);
        double sigma = Eta * Math.Sqrt((1 - abPrev) / (1 - ab)) * Math.Sqrt(1 - ab / abPrev);
        var x = Math.Sqrt(abPrev) * x0 + Math.Sqrt(Math.Max(1 - abPrev - sigma * sigma, 0)) * eps;
        if (sigma > 0) x = x + sigma * Noise(sample, generator);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The inverse of a deterministic step: from the sample at the timestep after <paramref name="index"/> back
    /// up to Timesteps[index], given the model output there (DDIM inversion, used for editing real images).
    /// </summary>
    public Tensor InvertStep(Tensor modelOutput, int index, Tensor sampleAtNext)
    {
        using var scope = NewDisposeScope();
        int t = Timesteps[index], prev = Next(index);
        double ab = Schedule.AlphaBar(t), abPrev = prev >= 0 ? Schedule.AlphaBar(prev) : Schedule.FinalAlphaBar;
        // With η = 0: x' = √ᾱ' x̂₀ + √(1−ᾱ') ε̂ and x = √ᾱ x̂₀ + √(1−ᾱ) ε̂, with ε̂ the model's noise estimate.
        Tensor eps = Schedule.Config.Prediction == PredictionType.Epsilon
            ? modelOutput.alias()
            : throw new NotSupportedException("DDIM inversion is implemented for epsilon prediction");
        var x0 = (sampleAtNext - Math.Sqrt(1 - abPrev) * eps) / Math.Sqrt(abPrev);
        return (Math.Sqrt(ab) * x0 + Math.Sqrt(1 - ab) * eps).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): multistep second-order solver of the diffusion ODE in
/// λ = log(α/σ) using data predictions x̂₀; first order on the first and last steps.
/// </summary>
public sealed class DpmSolverMultistepScheduler(NoiseSchedule schedule) : NoiseScheduler(schedule)
{
    private Tensor? _previousX0;
    private double _previousLambda;

    /// <inheritdoc />
    protected override void Reset()
    {
        _previousX0?.Dispose();
        _previousX0 = null;
    }

    private static double Lambda(double ab) => 0.5 * Math.Log(ab / (1 - ab));

    /// <inheritdoc />
    public override Tensor Step(Tensor modelOutput, int index, Tensor sample, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        int t = Timesteps[index], prev = Next(index);
        double ab = Schedule.AlphaBar(t), abPrev = Schedule.AlphaBar(prev);
        var (x0, _) = Schedule.Split(modelOutput, sample, t);
        double lambdaS = Lambda(ab);
        Tensor result;
        if (prev < 0)
        {
            result = x0; // σ' = 0: the ODE solution at t = 0 is the data prediction itself
        }
        else
        {
            double sigmaS = Math.Sqrt(1 - ab), sigmaT = Math.Sqrt(1 - abPrev), alphaT = Math.Sqrt(abPrev);
            double lambdaT = Lambda(abPrev), h = lambdaT - lambdaS;
            Tensor d = x0;
            if (_previousX0 is not null)
            {
                double r = (lambdaS - _previousLambda) / h;
                d = x0 + (x0 - _previousX0) / (2 * r);
            }
            result = sigmaT / sigmaS * sample - alphaT * (Math.Exp(-h) - 1) * d;
        }
        _previousX0?.Dispose();
        _previousX0 = x0.detach().DetachFromDisposeScope();
        _previousLambda = lambdaS;
        return result.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Euler's method on the probability-flow ODE dx/dσ = (x − x̂₀)/σ in the variance-exploding
/// parameterisation x = x_t/√ᾱ (Karras et al. 2022, Algorithm 1 without churn).
/// </summary>
public sealed class EulerScheduler(NoiseSchedule schedule) : NoiseScheduler(schedule)
{
    /// <inheritdoc />
    public override double InitNoiseSigma
    {
        get { double s = Schedule.Sigma(Timesteps.Count > 0 ? Timesteps[0] : Schedule.TrainTimesteps - 1); return Math.Sqrt(s * s + 1); }
    }

    /// <inheritdoc />
    public override Tensor ScaleModelInput(Tensor sample, int index)
    {
        double s = Schedule.Sigma(Timesteps[index]);
        return sample / Math.Sqrt(s * s + 1);
    }

    /// <inheritdoc />
    public override Tensor Step(Tensor modelOutput, int index, Tensor sample, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        int t = Timesteps[index], prev = Next(index);
        double sigma = Schedule.Sigma(t), sigmaNext = prev < 0 ? 0 : Schedule.Sigma(prev);
        // The model saw x_t = sample / √(σ²+1); its x̂₀ is in data space, which is also the VE space's data.
        var (x0, _) = Schedule.Split(modelOutput, sample / Math.Sqrt(sigma * sigma + 1), t);
        var derivative = (sample - x0) / sigma;
        return (sample + derivative * (sigmaNext - sigma)).MoveToOuterDisposeScope();
    }
}
