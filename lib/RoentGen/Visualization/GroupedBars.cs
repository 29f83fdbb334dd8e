namespace RoentGen.Visualization;

/// <summary>Grouped bar charts of scores: one trace (colour) per series, bars per metric key.</summary>
internal static class GroupedBars
{
    /// <summary>One bar trace per series, only the keys whose value is finite, grouped side by side.</summary>
    public static Figure Of(string? title, IEnumerable<(string Name, IReadOnlyList<string> Keys, Func<string, double> Value)> series, string? yTitle = null)
    {
        var traces = series.Select(s =>
        {
            var keys = s.Keys.Where(k => double.IsFinite(s.Value(k))).ToArray();
            return (Trace)new BarTrace { Name = s.Name, Categories = keys, Values = keys.Select(s.Value).ToArray() };
        }).ToList();
        return new Figure(title, traces, new FigureLayout { BarMode = BarMode.Group, YAxis = yTitle is null ? null : new FigureAxis { Title = yTitle } });
    }
}
