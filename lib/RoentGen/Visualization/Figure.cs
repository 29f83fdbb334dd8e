using System.Collections.ObjectModel;

namespace RoentGen.Visualization;

/// <summary>
/// A chart as plotly.js draws it: a title, traces and a layout. <see cref="ToJson"/> writes plotly's figure JSON
/// (<c>{"data": [...], "layout": {...}}</c>), which RoentGen.Interactive's <c>FigureHtml</c> draws with the plotly.js
/// it embeds (in notebooks, CLI reports and HTML exports alike); <see cref="FromJson"/> reads it back.
/// </summary>
/// <remarks>
/// Only what the library's charts need is modelled: scatter traces (<see cref="ScatterTrace"/>) and bar traces
/// (<see cref="BarTrace"/>). The plotly.js bundle shipped is the "basic" one (scatter, bar, pie), which has no
/// histogram, heatmap or scattergl traces: histograms are binned in C# by <see cref="Histogram"/> and drawn as bars.
/// Lists are copied when set, so a figure does not change when the caller's arrays do. Record equality compares
/// those lists by reference: compare <see cref="ToJson"/> outputs to compare content.
/// </remarks>
public sealed record Figure
{
    private readonly IReadOnlyList<Trace> _traces = ReadOnly.Empty<Trace>();
    private readonly FigureLayout _layout = new();

    /// <summary>An empty figure (no title, no traces, default layout).</summary>
    public Figure() { }

    /// <summary>A figure with a title, traces and (optionally) a layout.</summary>
    /// <param name="title">Chart title (null: none).</param>
    /// <param name="traces">The traces, drawn in this order.</param>
    /// <param name="layout">Axes, size, legend and bar mode (null: plotly's defaults).</param>
    public Figure(string? title, IEnumerable<Trace> traces, FigureLayout? layout = null)
    {
        Title = title;
        Traces = ReadOnly.Copy(traces, nameof(traces));
        Layout = layout ?? new FigureLayout();
    }

    /// <summary>Chart title (plotly's <c>layout.title.text</c>); null for none.</summary>
    public string? Title { get; init; }

    /// <summary>The traces, in drawing (and legend) order.</summary>
    public IReadOnlyList<Trace> Traces
    {
        get => _traces;
        init => _traces = ReadOnly.Copy(value, nameof(Traces));
    }

    /// <summary>Axes, size, legend and bar mode.</summary>
    public FigureLayout Layout
    {
        get => _layout;
        init => _layout = value ?? throw new ArgumentNullException(nameof(Layout));
    }

    /// <summary>
    /// Plotly's figure JSON, <c>{"data": [...], "layout": {...}}</c>: invariant culture, NaN and infinities written
    /// as null (plotly leaves a gap there), properties left unset omitted.
    /// </summary>
    /// <param name="indented">Indent the JSON (for files people read).</param>
    /// <exception cref="InvalidOperationException">A trace is inconsistent, e.g. x and y of different lengths.</exception>
    public string ToJson(bool indented = false) => FigureJson.Write(this, indented);

    /// <summary>
    /// Reads figure JSON as <see cref="ToJson"/> writes it (null numbers become NaN). Properties this model does not
    /// have are ignored.
    /// </summary>
    /// <exception cref="InvalidDataException">The text is not JSON, or not a figure of scatter and bar traces.</exception>
    public static Figure FromJson(string json) => FigureJson.Read(json);

    /// <summary>Title and trace count, e.g. <c>figure "views": 1 trace (bar)</c>.</summary>
    public override string ToString()
    {
        var types = string.Join(", ", Traces.Select(t => t.Type).Distinct());
        return $"figure \"{Title}\": {Traces.Count} trace{(Traces.Count == 1 ? "" : "s")}{(types.Length > 0 ? $" ({types})" : "")}";
    }
}

/// <summary>One series of a <see cref="Figure"/>: a <see cref="ScatterTrace"/> or a <see cref="BarTrace"/>.</summary>
public abstract record Trace
{
    private protected Trace() { }

    /// <summary>plotly's trace type: "scatter" or "bar".</summary>
    public abstract string Type { get; }

    /// <summary>Legend entry (and hover label); null for none.</summary>
    public string? Name { get; init; }

    /// <summary>Opacity of the whole trace, 0 to 1; null for plotly's default (1).</summary>
    public double? Opacity { get; init; }

    /// <summary>Whether the trace has a legend entry; null for plotly's default (shown when there are several traces).</summary>
    public bool? ShowLegend { get; init; }

    /// <summary>Drawn against the second y axis (<see cref="FigureLayout.YAxis2"/>, on the right) instead of the first.</summary>
    public bool SecondYAxis { get; init; }
}

/// <summary>How a scatter trace draws its points.</summary>
public enum ScatterMode
{
    /// <summary>Points only.</summary>
    Markers,
    /// <summary>A line through the points.</summary>
    Lines,
    /// <summary>A line and the points.</summary>
    LinesMarkers,
}

/// <summary>Points at numeric (x, y), drawn as markers, lines or both (plotly's "scatter" trace).</summary>
public sealed record ScatterTrace : Trace
{
    private readonly IReadOnlyList<double> _x = ReadOnly.Empty<double>();
    private readonly IReadOnlyList<double> _y = ReadOnly.Empty<double>();
    private readonly IReadOnlyList<string>? _text;

    /// <inheritdoc/>
    public override string Type => "scatter";

    /// <summary>Markers, lines (the default) or both.</summary>
    public ScatterMode Mode { get; init; } = ScatterMode.Lines;

    /// <summary>x of each point.</summary>
    public IReadOnlyList<double> X { get => _x; init => _x = ReadOnly.Copy(value, nameof(X)); }

    /// <summary>y of each point (as many as <see cref="X"/>); NaN leaves a gap.</summary>
    public IReadOnlyList<double> Y { get => _y; init => _y = ReadOnly.Copy(value, nameof(Y)); }

    /// <summary>Hover text of each point (as many as <see cref="X"/>), or null for none.</summary>
    public IReadOnlyList<string>? Text { get => _text; init => _text = ReadOnly.CopyOrNull(value, nameof(Text)); }

    /// <summary>How the points look (colour, size, a colour scale); null for plotly's defaults.</summary>
    public MarkerStyle? Marker { get; init; }

    /// <summary>How the line looks (colour, width, dash); null for plotly's defaults.</summary>
    public LineStyle? Line { get; init; }
}

/// <summary>
/// Bars (plotly's "bar" trace): one per category, or at numeric positions with a given width (how
/// <see cref="Histogram"/> draws bins). Exactly one of <see cref="Categories"/> and <see cref="Positions"/> is set.
/// </summary>
public sealed record BarTrace : Trace
{
    private readonly IReadOnlyList<string>? _categories;
    private readonly IReadOnlyList<double>? _positions;
    private readonly IReadOnlyList<double> _values = ReadOnly.Empty<double>();

    /// <inheritdoc/>
    public override string Type => "bar";

    /// <summary>The category of each bar (plotly's x as strings), or null when <see cref="Positions"/> is set.</summary>
    public IReadOnlyList<string>? Categories { get => _categories; init => _categories = ReadOnly.CopyOrNull(value, nameof(Categories)); }

    /// <summary>The x centre of each bar (plotly's x as numbers), or null when <see cref="Categories"/> is set.</summary>
    public IReadOnlyList<double>? Positions { get => _positions; init => _positions = ReadOnly.CopyOrNull(value, nameof(Positions)); }

    /// <summary>The height of each bar (plotly's y); NaN leaves the bar out.</summary>
    public IReadOnlyList<double> Values { get => _values; init => _values = ReadOnly.Copy(value, nameof(Values)); }

    /// <summary>Bar width in x units (e.g. a histogram's bin width); null for plotly's default.</summary>
    public double? Width { get; init; }

    /// <summary>Bar colour (any CSS colour, e.g. "#1f77b4"); null for the next colour of plotly's palette.</summary>
    public string? Color { get; init; }
}

/// <summary>Look of a scatter trace's points.</summary>
public sealed record MarkerStyle
{
    private readonly IReadOnlyList<double>? _colorValues;

    /// <summary>One colour for every point (any CSS colour); null for the trace's palette colour.</summary>
    public string? Color { get; init; }

    /// <summary>
    /// A number per point mapped to a colour through <see cref="ColorScale"/> (e.g. age); null for none. Not
    /// together with <see cref="Color"/>.
    /// </summary>
    public IReadOnlyList<double>? ColorValues { get => _colorValues; init => _colorValues = ReadOnly.CopyOrNull(value, nameof(ColorValues)); }

    /// <summary>Name of a plotly colour scale for <see cref="ColorValues"/>, e.g. "Viridis".</summary>
    public string? ColorScale { get; init; }

    /// <summary>Whether a colour bar shows the scale of <see cref="ColorValues"/>.</summary>
    public bool? ShowScale { get; init; }

    /// <summary>Title of that colour bar.</summary>
    public string? ColorBarTitle { get; init; }

    /// <summary>Marker diameter in pixels; null for plotly's default (6).</summary>
    public double? Size { get; init; }
}

/// <summary>Dash pattern of a line.</summary>
public enum LineDash
{
    /// <summary>Unbroken.</summary>
    Solid,
    /// <summary>Dots.</summary>
    Dot,
    /// <summary>Dashes.</summary>
    Dash,
    /// <summary>Dashes and dots.</summary>
    DashDot,
}

/// <summary>Look of a scatter trace's line.</summary>
public sealed record LineStyle
{
    /// <summary>Line colour (any CSS colour); null for the trace's palette colour.</summary>
    public string? Color { get; init; }

    /// <summary>Width in pixels; null for plotly's default (2).</summary>
    public double? Width { get; init; }

    /// <summary>Dash pattern; null for solid.</summary>
    public LineDash? Dash { get; init; }
}

/// <summary>How bar traces sharing an x position are placed.</summary>
public enum BarMode
{
    /// <summary>Side by side (plotly's default).</summary>
    Group,
    /// <summary>On top of each other, in front of one another (use <see cref="Trace.Opacity"/> to see through).</summary>
    Overlay,
    /// <summary>Stacked.</summary>
    Stack,
}

/// <summary>Where the legend sits.</summary>
public enum LegendPosition
{
    /// <summary>Right of the plot, entries stacked (plotly's default).</summary>
    Right,
    /// <summary>Above the plot, entries side by side: for figures whose right side holds a second y axis.</summary>
    Top,
}

/// <summary>The range an axis shows, in data units (also for log axes).</summary>
/// <param name="Min">Low end.</param>
/// <param name="Max">High end.</param>
public readonly record struct AxisRange(double Min, double Max);

/// <summary>One axis of a figure.</summary>
public sealed record FigureAxis
{
    /// <summary>Axis title; null for none.</summary>
    public string? Title { get; init; }

    /// <summary>The range shown; null to fit the data.</summary>
    public AxisRange? Range { get; init; }

    /// <summary>Logarithmic axis (values must be positive).</summary>
    public bool Log { get; init; }

    /// <summary>When fitting the data (no <see cref="Range"/>), include 0 (plotly's <c>rangemode: "tozero"</c>), so small changes do not look large.</summary>
    public bool FromZero { get; init; }
}

/// <summary>A figure's layout: axes, size, legend, bar placement.</summary>
public sealed record FigureLayout
{
    /// <summary>The x axis; null for plotly's defaults.</summary>
    public FigureAxis? XAxis { get; init; }

    /// <summary>The y axis (left); null for plotly's defaults.</summary>
    public FigureAxis? YAxis { get; init; }

    /// <summary>A second y axis on the right, for traces with <see cref="Trace.SecondYAxis"/>; null for none.</summary>
    public FigureAxis? YAxis2 { get; init; }

    /// <summary>Width in pixels; null to fill the container.</summary>
    public int? Width { get; init; }

    /// <summary>Height in pixels; null for plotly's default (450).</summary>
    public int? Height { get; init; }

    /// <summary>Whether the legend shows; null for plotly's default (shown when there are several traces).</summary>
    public bool? ShowLegend { get; init; }

    /// <summary>Legend title; null for none.</summary>
    public string? LegendTitle { get; init; }

    /// <summary>Where the legend sits; null for plotly's default (<see cref="LegendPosition.Right"/>).</summary>
    public LegendPosition? Legend { get; init; }

    /// <summary>How bars sharing an x are placed; null for plotly's default (<see cref="BarMode.Group"/>).</summary>
    public BarMode? BarMode { get; init; }

    /// <summary>Gap between bars of neighbouring x positions, as a fraction of their width (0 for histograms); null for plotly's default.</summary>
    public double? BarGap { get; init; }
}

/// <summary>Read-only copies of the lists a figure holds.</summary>
internal static class ReadOnly
{
    public static IReadOnlyList<T> Empty<T>() => Array.Empty<T>();

    public static IReadOnlyList<T> Copy<T>(IEnumerable<T>? values, string what)
    {
        ArgumentNullException.ThrowIfNull(values, what);
        var copy = values.ToArray();
        if (!typeof(T).IsValueType)
            for (int i = 0; i < copy.Length; i++)
                if (copy[i] is null) throw new ArgumentException($"{what}[{i}] is null", what);
        return new ReadOnlyCollection<T>(copy);
    }

    public static IReadOnlyList<T>? CopyOrNull<T>(IEnumerable<T>? values, string what) => values is null ? null : Copy(values, what);
}
