using RoentGen.Training;

namespace RoentGen.Tests.Training;

public class TrainingChartsTests
{
    [Fact]
    public void Loss_curve_has_the_raw_loss_its_mean_and_optionally_the_metrics()
    {
        var history = new TrainingHistory { Loss = [4, 3, 2, 1] };
        history.Metrics["kl"] = [0.4, 0.3, 0.2, 0.1];
        var plain = TrainingCharts.LossCurve(history, "VAE loss", window: 2);
        Assert.Equal("VAE loss", plain.Title);
        var lines = plain.Traces.Select(t => Assert.IsType<ScatterTrace>(t)).ToList();
        Assert.Equal(["loss", "loss (2-step mean)"], lines.Select(l => l.Name));
        Assert.Equal(0.35, lines[0].Opacity);
        Assert.Equal([1.0, 2, 3, 4], lines[0].X);
        Assert.Equal([4.0, 3.5, 2.5, 1.5], lines[1].Y);
        Assert.Equal(lines[0].Line!.Color, lines[1].Line!.Color);    // the raw loss is the mean's faint version

        var withMetrics = TrainingCharts.LossCurve(history, window: 2, metrics: true);
        Assert.Equal(["loss", "loss (2-step mean)", "kl"], withMetrics.Traces.Select(t => t.Name));
        Assert.Equal("training loss", withMetrics.Title);
    }
}
