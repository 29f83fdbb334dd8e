using RoentGen.Diffusion;

namespace RoentGen.Tests.Diffusion;

public class DiffusionChartsTests
{
    [Fact]
    public void Schedule_charts_have_a_line_per_schedule_over_every_timestep()
    {
        foreach (var chart in new[] { DiffusionCharts.AlphaBar(), DiffusionCharts.LogSnr() })
        {
            var lines = chart.Traces.Select(t => Assert.IsType<ScatterTrace>(t)).ToList();
            Assert.Equal(["Linear", "ScaledLinear", "Cosine"], lines.Select(l => l.Name));
            Assert.All(lines, l => Assert.Equal(ScatterMode.Lines, l.Mode));
            Assert.All(lines, l => Assert.Equal(l.X.Count, l.Y.Count));
            Assert.Equal("timestep t", chart.Layout.XAxis!.Title);
        }
        var alphaBar = DiffusionCharts.AlphaBar();
        Assert.StartsWith("ᾱ_t", alphaBar.Title);
        Assert.All(alphaBar.Traces.Cast<ScatterTrace>(), l => Assert.True(l.Y[0] > l.Y[^1], "ᾱ_t falls over the steps"));
        Assert.Equal("log signal-to-noise ratio", DiffusionCharts.LogSnr().Title);
    }
}
