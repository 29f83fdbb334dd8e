using Plotly.NET;
using CSharpChart = Plotly.NET.CSharp.Chart;

namespace RoentGen.Diffusion;

/// <summary>Charts that explain a diffusion model's noise schedule.</summary>
public static class DiffusionCharts
{
    /// <summary>ᾱ_t (signal kept) over the training timesteps for each schedule.</summary>
    public static GenericChart AlphaBar(IEnumerable<NoiseScheduleConfig>? configs = null)
    {
        var charts = (configs ?? DefaultSchedules()).Select(c =>
        {
            var s = new NoiseSchedule(c);
            return CSharpChart.Line<double, double, string>(
                x: Enumerable.Range(0, s.TrainTimesteps).Select(t => (double)t).ToArray(), y: s.AlphasCumprod, Name: c.Schedule.ToString());
        });
        return Chart.withTitle("ᾱ_t: fraction of signal variance kept at step t", null).Invoke(CSharpChart.Combine(charts));
    }

    /// <summary>log-SNR, log(ᾱ/(1−ᾱ)), over the timesteps: where the schedule spends its steps.</summary>
    public static GenericChart LogSnr(IEnumerable<NoiseScheduleConfig>? configs = null)
    {
        var charts = (configs ?? DefaultSchedules()).Select(c =>
        {
            var s = new NoiseSchedule(c);
            return CSharpChart.Line<double, double, string>(
                x: Enumerable.Range(0, s.TrainTimesteps).Select(t => (double)t).ToArray(),
                y: s.AlphasCumprod.Select(a => Math.Log(a / (1 - a))).ToArray(), Name: c.Schedule.ToString());
        });
        return Chart.withTitle("log signal-to-noise ratio", null).Invoke(CSharpChart.Combine(charts));
    }

    private static IEnumerable<NoiseScheduleConfig> DefaultSchedules() =>
    [
        new NoiseScheduleConfig { Schedule = BetaSchedule.Linear, BetaStart = 1e-4, BetaEnd = 0.02 },
        new NoiseScheduleConfig { Schedule = BetaSchedule.ScaledLinear },
        new NoiseScheduleConfig { Schedule = BetaSchedule.Cosine },
    ];
}
