using RoentGen.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

public class SchedulerTests
{
    [Fact]
    public void Min_snr_weights_follow_the_closed_form()
    {
        var eps = new NoiseSchedule(new NoiseScheduleConfig());
        var v = new NoiseSchedule(new NoiseScheduleConfig { Prediction = PredictionType.VPrediction });
        var t = torch.tensor(new long[] { 0, 100, 500, 999 });
        var we = eps.MinSnrWeights(t, 5).data<float>().ToArray();
        var wv = v.MinSnrWeights(t, 5).data<float>().ToArray();
        long[] steps = [0, 100, 500, 999];
        for (int i = 0; i < steps.Length; i++)
        {
            double ab = eps.AlphaBar((int)steps[i]), snr = ab / (1 - ab);
            Assert.Equal(Math.Min(snr, 5) / snr, we[i], 5);
            Assert.Equal(Math.Min(snr, 5) / (snr + 1), wv[i], 5);
        }
        Assert.True(we[0] < 0.01 && we[3] == 1f, "noise-free steps weighted down, noisy steps kept at 1");
        Assert.Throws<ArgumentOutOfRangeException>(() => eps.MinSnrWeights(t, 0));
    }

    [Fact]
    public void Beta_schedules_match_their_closed_forms()
    {
        var sd = new NoiseSchedule(new NoiseScheduleConfig());
        Assert.Equal(0.00085, sd.Betas[0], 12);
        Assert.Equal(0.012, sd.Betas[999], 12);
        Assert.Equal(Math.Pow((Math.Sqrt(0.00085) + Math.Sqrt(0.012)) / 2, 2), (sd.Betas[499] + sd.Betas[500]) / 2, 6);
        // Stable Diffusion's final ᾱ is about 0.0047.
        Assert.InRange(sd.AlphasCumprod[999], 0.0045, 0.0049);

        var ddpm = new NoiseSchedule(new NoiseScheduleConfig { Schedule = BetaSchedule.Linear, BetaStart = 1e-4, BetaEnd = 0.02 });
        Assert.Equal(1e-4 + (0.02 - 1e-4) * 500 / 999.0, ddpm.Betas[500], 12);
        Assert.InRange(ddpm.AlphasCumprod[999], 3.9e-5, 4.2e-5);   // Ho et al.'s schedule ends near 4e-5

        var cos = new NoiseSchedule(new NoiseScheduleConfig { Schedule = BetaSchedule.Cosine });
        static double F(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
        foreach (int t in new[] { 0, 100, 500, 900 })
            Assert.Equal(F((t + 1) / 1000.0) / F(0), cos.AlphasCumprod[t], 9);
        Assert.All(cos.Betas, b => Assert.InRange(b, 0, 0.999));
    }

    [Theory]
    [InlineData(PredictionType.Epsilon)]
    [InlineData(PredictionType.VPrediction)]
    public void Split_recovers_x0_and_noise_from_the_training_target(PredictionType prediction)
    {
        using var scope = NewDisposeScope();
        var s = new NoiseSchedule(new NoiseScheduleConfig { Prediction = prediction });
        var x0 = randn(3, 4, 8, 8);
        var eps = randn(3, 4, 8, 8);
        foreach (int t in new[] { 0, 400, 999 })
        {
            var ts = full(3, t, dtype: ScalarType.Int64);
            var xt = s.AddNoise(x0, eps, ts);
            var (x0Hat, epsHat) = s.Split(s.Target(x0, eps, ts), xt, t);
            Assert.True(x0Hat.allclose(x0, rtol: 1e-3, atol: 1e-3), $"x0 at t={t}");
            Assert.True(epsHat.allclose(eps, rtol: 1e-3, atol: 1e-3), $"eps at t={t}");
        }
    }

    [Fact]
    public void Ddim_step_inverted_and_reapplied_returns_the_start()
    {
        using var scope = NewDisposeScope();
        var schedule = new NoiseSchedule(new NoiseScheduleConfig());
        var ddim = new DdimScheduler(schedule, eta: 0);
        ddim.SetTimesteps(25);
        var start = randn(2, 4, 8, 8);
        var eps = randn(2, 4, 8, 8);
        for (int i = 0; i < 24; i++)
        {
            var up = ddim.InvertStep(eps, i, start);       // to Timesteps[i]
            var down = ddim.Step(eps, i, up);               // back to Timesteps[i + 1]
            Assert.True(down.allclose(start, rtol: 1e-4, atol: 1e-4), $"step {i}");
        }
    }

    [Fact]
    public void Timesteps_run_from_T_minus_one_down_to_zero()
    {
        var ddim = new DdimScheduler(new NoiseSchedule(new NoiseScheduleConfig()));
        ddim.SetTimesteps(20);
        Assert.Equal(999, ddim.Timesteps[0]);
        Assert.Equal(0, ddim.Timesteps[^1]);
        Assert.Equal(20, ddim.Timesteps.Distinct().Count());
        Assert.True(ddim.Timesteps.Zip(ddim.Timesteps.Skip(1)).All(p => p.First > p.Second));
        Assert.Throws<ArgumentException>(() => ddim.SetTimesteps(0));
    }

    // Data distributed N(mu, s²) per coordinate: the exact denoiser is known in closed form, so a sampler
    // driven by it must reproduce that distribution, up to its discretisation error, which must shrink as
    // the steps grow. s = 1 is the regime of scaled VAE latents. (Measured here with 20 steps: DDIM and
    // Euler give std 0.937, DPM-Solver++ 1.066; with 200 steps 0.998 and 1.007.)
    private static (double Mean, double Std) SampleGaussian(SchedulerKind kind, int steps, PredictionType prediction, double mu, double s)
    {
        using var scope = NewDisposeScope();
        var schedule = new NoiseSchedule(new NoiseScheduleConfig { Prediction = prediction });
        var sampler = NoiseScheduler.Create(kind, schedule);
        sampler.SetTimesteps(steps);
        var gen = new Generator(seed: 11);
        // Start from the true marginal at the first timestep (SD's schedule does not reach ᾱ = 0), in the
        // sampler's own parameterisation (the σ-space Euler sampler works on x_t/√ᾱ).
        double abT = schedule.AlphaBar(sampler.Timesteps[0]);
        var xt = Math.Sqrt(abT) * mu + Math.Sqrt(abT * s * s + 1 - abT) * randn(20000, dtype: ScalarType.Float64, generator: gen);
        var x = xt * (kind == SchedulerKind.Euler ? sampler.InitNoiseSigma : 1.0);
        for (int i = 0; i < sampler.Timesteps.Count; i++)
        {
            var input = sampler.ScaleModelInput(x, i);
            int t = sampler.Timesteps[i];
            double ab = schedule.AlphaBar(t), sa = Math.Sqrt(ab), so = Math.Sqrt(1 - ab);
            var x0 = mu + sa * s * s / (ab * s * s + 1 - ab) * (input - sa * mu);
            var eps = (input - sa * x0) / so;
            var output = prediction == PredictionType.Epsilon ? eps : sa * eps - so * x0;
            x = sampler.Step(output, i, x, gen);
        }
        return (x.mean().item<double>(), x.std().item<double>());
    }

    [Theory]
    [InlineData(SchedulerKind.Ddim, 20, PredictionType.Epsilon)]
    [InlineData(SchedulerKind.DpmSolverPlusPlus, 20, PredictionType.Epsilon)]
    [InlineData(SchedulerKind.DpmSolverPlusPlus, 20, PredictionType.VPrediction)]
    [InlineData(SchedulerKind.Euler, 20, PredictionType.Epsilon)]
    [InlineData(SchedulerKind.Ddpm, 250, PredictionType.Epsilon)]
    public void Samplers_driven_by_the_exact_denoiser_reproduce_a_gaussian(SchedulerKind kind, int steps, PredictionType prediction)
    {
        const double mu = 0.7, s = 1.0;
        var (mean, std) = SampleGaussian(kind, steps, prediction, mu, s);
        Assert.InRange(mean, mu - 0.02, mu + 0.02);
        Assert.InRange(std, 0.9 * s, 1.1 * s);
        if (kind != SchedulerKind.Ddpm)
        {
            var (_, fine) = SampleGaussian(kind, 200, prediction, mu, s);
            Assert.True(Math.Abs(fine - s) < Math.Abs(std - s) / 3, $"{kind}: 200 steps (std {fine}) is not much closer than {steps} steps (std {std})");
        }
    }

    [Fact]
    public void Scheduler_names_parse()
    {
        Assert.Equal(SchedulerKind.DpmSolverPlusPlus, NoiseScheduler.ParseKind("dpmpp"));
        Assert.Equal(SchedulerKind.Euler, NoiseScheduler.ParseKind("Euler"));
        var ex = Assert.Throws<ArgumentException>(() => NoiseScheduler.ParseKind("heun"));
        Assert.Contains("heun", ex.Message);
    }
}
