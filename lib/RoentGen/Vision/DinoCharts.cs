using Plotly.NET;
using RoentGen.Training;
using CSharpChart = Plotly.NET.CSharp.Chart;

namespace RoentGen.Vision;

/// <summary>Charts of a DINO run's history: the loss terms, and the signs of collapse.</summary>
public static class DinoCharts
{
    /// <summary>The loss terms, in the order they are drawn (those the run reported).</summary>
    public static IReadOnlyList<string> LossTerms { get; } = ["dino", "ibot", "koleo"];

    /// <summary>The collapse monitors reported by <see cref="DinoTraining.Step"/>.</summary>
    public static IReadOnlyList<string> CollapseMetrics { get; } = ["teacher_entropy", "effective_prototypes"];

    /// <summary>
    /// The weighted total and each reported loss term (DINO, iBOT, KoLeo, unweighted) per step, smoothed by a trailing
    /// mean of <paramref name="window"/> steps (1: raw). Terms whose weight was 0 are absent from the history and the chart.
    /// </summary>
    public static GenericChart Losses(TrainingHistory history, string title = "DINOv2 losses", int window = 1)
    {
        var steps = Enumerable.Range(1, history.Steps).Select(i => (double)i).ToArray();
        var lines = new List<GenericChart> { Line(steps, history.Loss, "total", window) };
        foreach (var name in LossTerms)
            if (history.Metrics.TryGetValue(name, out var values) && values.Count == steps.Length)
                lines.Add(Line(steps, values, name, window));
        return Chart.withTitle(title, null).Invoke(CSharpChart.Combine(lines));
    }

    /// <summary>
    /// The teacher's mean per-image entropy and its effective number of prototypes (exp of the entropy of the
    /// batch-mean distribution), per step: entropy near log(K) means uniform targets, few effective prototypes
    /// means one dominant prototype; both are how DINO collapses.
    /// </summary>
    public static GenericChart Collapse(TrainingHistory history, string title = "teacher targets (collapse monitors)")
    {
        var steps = Enumerable.Range(1, history.Steps).Select(i => (double)i).ToArray();
        var lines = CollapseMetrics.Where(n => history.Metrics.TryGetValue(n, out var v) && v.Count == steps.Length)
            .Select(n => Line(steps, history.Metrics[n], n, 1)).ToList();
        if (lines.Count == 0) lines.Add(Line([], [], "no collapse metrics reported", 1));
        return Chart.withTitle(title, null).Invoke(CSharpChart.Combine(lines));
    }

    private static GenericChart Line(double[] steps, IReadOnlyList<double> values, string name, int window) =>
        CSharpChart.Line<double, double, string>(x: steps, y: window > 1 ? TrainingCharts.MovingAverage(values, window) : values.ToArray(), Name: name);
}
