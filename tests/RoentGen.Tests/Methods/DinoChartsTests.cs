using RoentGen.Training;
using RoentGen.Methods;

namespace RoentGen.Tests.Methods;

public class DinoChartsTests
{
    private static TrainingHistory History()
    {
        var h = new TrainingHistory { Loss = [3, 2.5, 2, 1.8] };
        h.Metrics["dino"] = [2, 1.5, 1.2, 1.1];
        h.Metrics["ibot"] = [1, 0.9, 0.8, 0.7];
        h.Metrics["teacher_entropy"] = [5.5, 5.4, 5.0, 4.8];
        h.Metrics["effective_prototypes"] = [250, 240, 180, 120];
        return h;
    }

    [Fact]
    public void Collapse_chart_puts_prototype_counts_on_a_second_axis_with_a_dashed_log_K_line()
    {
        var chart = DinoCharts.Collapse(History(), prototypes: 256);
        Assert.Equal("teacher targets (collapse monitors)", chart.Title);
        var lines = chart.Traces.Select(t => Assert.IsType<ScatterTrace>(t)).ToList();
        Assert.Equal("teacher_entropy", lines[0].Name);
        Assert.StartsWith("log K = 5.55", lines[1].Name);
        Assert.Equal("effective_prototypes", lines[2].Name);
        Assert.Equal([false, false, true], lines.Select(l => l.SecondYAxis));
        Assert.Equal(LineDash.Dash, lines[1].Line!.Dash);
        Assert.All(lines[1].Y, y => Assert.Equal(Math.Log(256), y, 12));
        Assert.Equal([1.0, 4.0], lines[1].X);
        Assert.NotNull(chart.Layout.YAxis2);
        Assert.Equal(256 * 1.05, chart.Layout.YAxis2!.Range!.Value.Max, 9);
        Assert.True(chart.Layout.YAxis!.Range!.Value.Max > Math.Log(256));
        Assert.Contains("\"yaxis\":\"y2\"", chart.ToJson());

        var unknownK = DinoCharts.Collapse(History());
        Assert.Equal(["teacher_entropy", "effective_prototypes"], unknownK.Traces.Select(t => t.Name));
        Assert.Null(unknownK.Layout.YAxis!.Range);
        Assert.True(unknownK.Layout.YAxis.FromZero && unknownK.Layout.YAxis2!.FromZero);
        Assert.Throws<ArgumentException>(() => DinoCharts.Collapse(History(), prototypes: 1));
    }

    [Fact]
    public void Collapse_chart_without_monitors_says_so_and_losses_draw_the_reported_terms()
    {
        var empty = DinoCharts.Collapse(new TrainingHistory { Loss = [1, 2] });
        Assert.Equal(["no collapse metrics reported"], empty.Traces.Select(t => t.Name));
        var losses = DinoCharts.Losses(History(), "smoothed", window: 2);
        Assert.Equal(["total", "dino", "ibot"], losses.Traces.Select(t => t.Name));
        Assert.Equal([3.0, 2.75, 2.25, 1.9], ((ScatterTrace)losses.Traces[0]).Y);
    }
}
