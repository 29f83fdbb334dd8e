using System.Collections;
using Plotly.NET;
using RoentGen.Data;
using RoentGen.Evaluation;

namespace RoentGen.Tests.Evaluation;

public class TSneChartsTests
{
    private static float[,] Embedding(int n)
    {
        var e = new float[n, 2];
        for (int i = 0; i < n; i++) { e[i, 0] = i; e[i, 1] = -2 * i; }
        return e;
    }

    private static int Count(object? values) => values is IEnumerable e ? e.Cast<object>().Count() : throw new InvalidOperationException($"not a sequence: {values}");

    [Fact]
    public void Categorical_scatter_has_one_trace_per_group_with_its_points()
    {
        string[] labels = ["F", "M", "M", "F", "M", "other"];
        var e = Embedding(labels.Length);
        var groups = TSneCharts.Groups(e, labels);
        Assert.Equal(["M", "F", "other"], groups.Select(g => g.Name));                 // largest first
        Assert.Equal([1, 2, 4], groups[0].Indices);
        Assert.Equal([1.0, 2, 4], groups[0].X);
        Assert.Equal([-2.0, -4, -8], groups[0].Y);
        Assert.Equal(labels.Length, groups.Sum(g => g.Count));

        var chart = TSneCharts.Scatter(e, labels, "t-SNE by sex");
        var traces = GenericChart.getTraces(chart).ToList();
        Assert.Equal(3, traces.Count);
        Assert.Equal(["M (3)", "F (2)", "other (1)"], traces.Select(t => (string)t.GetPropertyValue("name")));
        Assert.Equal([3, 2, 1], traces.Select(t => Count(t.GetPropertyValue("x"))));
        Assert.Equal([3, 2, 1], traces.Select(t => Count(t.GetPropertyValue("y"))));
        Assert.Contains("t-SNE by sex", GenericChart.toChartHTML(chart));

        Assert.Throws<ArgumentException>(() => TSneCharts.Scatter(e, labels.Take(5).ToArray(), "short"));
        Assert.Throws<ArgumentException>(() => TSneCharts.Groups(new float[6, 3], labels));
    }

    [Fact]
    public void Continuous_scatter_colours_every_point_by_its_value()
    {
        var e = Embedding(5);
        double[] ages = [30, 45, 60, 75, 90];
        var chart = TSneCharts.ScatterContinuous(e, ages, "t-SNE by age", "age");
        var traces = GenericChart.getTraces(chart).ToList();
        Assert.Single(traces);
        Assert.Equal(5, Count(traces[0].GetPropertyValue("x")));
        var html = GenericChart.toChartHTML(chart);
        Assert.Contains("Viridis", html);
        Assert.Contains("\"showscale\":true", html);
        Assert.Contains("[30.0,45.0,60.0,75.0,90.0]", html);
        Assert.Throws<ArgumentException>(() => TSneCharts.ScatterContinuous(e, [1, 2, double.NaN, 4, 5], "nan"));
    }

    [Fact]
    public void Finding_group_names_one_finding_none_or_several()
    {
        Assert.Equal("No Finding", TSneCharts.FindingGroup([]));
        Assert.Equal("No Finding", TSneCharts.FindingGroup([Observation.SupportDevices]));
        Assert.Equal("Pleural Effusion", TSneCharts.FindingGroup([Observation.PleuralEffusion, Observation.SupportDevices]));
        Assert.Equal("multiple", TSneCharts.FindingGroup([Observation.Edema, Observation.Cardiomegaly]));
    }

    [Fact]
    public void Feature_tensor_rows_and_perplexity_fit_tsne()
    {
        using var t = TorchSharp.torch.arange(6, dtype: TorchSharp.torch.ScalarType.Float64).view(3, 2);
        var rows = TSne.Rows(t);
        Assert.Equal(3, rows.GetLength(0));
        Assert.Equal(2, rows.GetLength(1));
        Assert.Equal(5f, rows[2, 1]);
        Assert.Equal(2f, rows[1, 0]);
        Assert.Throws<ArgumentException>(() => TSne.Rows(TorchSharp.torch.zeros(3)));
        Assert.Equal(30, TSne.PerplexityFor(1000));
        double p = TSne.PerplexityFor(24);
        Assert.True(3 * p < 24 && p > 7, $"perplexity {p} for 24 points");
    }
}
