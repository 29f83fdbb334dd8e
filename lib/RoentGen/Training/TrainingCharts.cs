using RoentGen.Visualization;

namespace RoentGen.Training;

/// <summary>Charts of training runs.</summary>
public static class TrainingCharts
{
    /// <summary>Colour of the loss lines (plotly's first palette colour): the raw loss is its faint version.</summary>
    private const string LossColor = "#1f77b4";

    /// <summary>
    /// Loss per step (faint) with a moving average (bold) in the same colour, and, with <paramref name="metrics"/>, each
    /// reported metric's moving average as an extra line.
    /// </summary>
    public static Figure LossCurve(TrainingHistory history, string title = "training loss", int window = 20, bool metrics = false)
    {
        var steps = Enumerable.Range(1, history.Steps).Select(i => (double)i).ToArray();
        var traces = new List<Trace>
        {
            new ScatterTrace { Name = "loss", X = steps, Y = history.Loss, Opacity = 0.35, Line = new LineStyle { Color = LossColor, Width = 1 } },
            new ScatterTrace { Name = $"loss ({window}-step mean)", X = steps, Y = MovingAverage(history.Loss, window), Line = new LineStyle { Color = LossColor } },
        };
        if (metrics)
            foreach (var (name, values) in history.Metrics)
            {
                int n = Math.Min(values.Count, steps.Length);
                traces.Add(new ScatterTrace { Name = name, X = steps[..n], Y = MovingAverage(values, window)[..n] });
            }
        return new Figure(title, traces, new FigureLayout { XAxis = new FigureAxis { Title = "step" }, YAxis = new FigureAxis { Title = "loss" } });
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
