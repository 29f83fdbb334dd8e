using RoentGen.Visualization;

namespace RoentGen.Diffusion;

/// <summary>Charts that explain a diffusion model's noise schedule.</summary>
public static class DiffusionCharts
{
    /// <summary>ᾱ_t (signal kept) over the training timesteps for each schedule (one line each).</summary>
    public static Figure AlphaBar(IEnumerable<NoiseScheduleConfig>? configs = null) =>
        PerSchedule(configs, "ᾱ_t: fraction of signal variance kept at step t", "ᾱ_t", s => s.AlphasCumprod);

    /// <summary>log-SNR, log(ᾱ/(1−ᾱ)), over the timesteps: where the schedule spends its steps (one line each).</summary>
    public static Figure LogSnr(IEnumerable<NoiseScheduleConfig>? configs = null) =>
        PerSchedule(configs, "log signal-to-noise ratio", "log SNR", s => s.AlphasCumprod.Select(a => Math.Log(a / (1 - a))).ToArray());

    private static Figure PerSchedule(IEnumerable<NoiseScheduleConfig>? configs, string title, string yTitle, Func<NoiseSchedule, IReadOnlyList<double>> y)
    {
        var traces = (configs ?? DefaultSchedules()).Select(c =>
        {
            var s = new NoiseSchedule(c);
            return new ScatterTrace { Name = c.Schedule.ToString(), X = Enumerable.Range(0, s.TrainTimesteps).Select(t => (double)t).ToArray(), Y = y(s) };
        }).ToList();
        return new Figure(title, traces, new FigureLayout { XAxis = new FigureAxis { Title = "timestep t" }, YAxis = new FigureAxis { Title = yTitle } });
    }

    private static IEnumerable<NoiseScheduleConfig> DefaultSchedules() =>
    [
        new NoiseScheduleConfig { Schedule = BetaSchedule.Linear, BetaStart = 1e-4, BetaEnd = 0.02 },
        new NoiseScheduleConfig { Schedule = BetaSchedule.ScaledLinear },
        new NoiseScheduleConfig { Schedule = BetaSchedule.Cosine },
    ];
}
