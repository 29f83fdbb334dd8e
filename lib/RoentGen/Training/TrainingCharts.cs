using Plotly.NET;
using CSharpChart = Plotly.NET.CSharp.Chart;

namespace RoentGen.Training;

/// <summary>Charts of training runs.</summary>
public static class TrainingCharts
{
    /// <summary>Loss per step (faint) with a moving average (bold), and any reported metrics as extra lines.</summary>
    public static GenericChart LossCurve(TrainingHistory history, string title = "training loss", int window = 20, bool metrics = false)
    {
        var steps = Enumerable.Range(1, history.Steps).Select(i => (double)i).ToArray();
        var charts = new List<GenericChart>
        {
            CSharpChart.Line<double, double, string>(x: steps, y: history.Loss.ToArray(), Name: "loss", Opacity: 0.35),
            CSharpChart.Line<double, double, string>(x: steps, y: MovingAverage(history.Loss, window), Name: $"loss ({window}-step mean)"),
        };
        if (metrics)
            foreach (var (name, values) in history.Metrics)
                charts.Add(CSharpChart.Line<double, double, string>(x: steps.Take(values.Count).ToArray(), y: MovingAverage(values, window), Name: name));
        return Chart.withTitle(title, null).Invoke(CSharpChart.Combine(charts));
    }

    /// <summary>Trailing moving average (shorter at the start).</summary>
    public static double[] MovingAverage(IReadOnlyList<double> values, int window)
    {
        var result = new double[values.Count];
        double sum = 0;
        for (int i = 0; i < values.Count; i++)
        {
            sum += values[i];
            if (i >= window) sum -= values[i - window];
            result[i] = sum / Math.Min(i + 1, window);
        }
        return result;
    }
}
