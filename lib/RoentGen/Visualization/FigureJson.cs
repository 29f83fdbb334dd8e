using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace RoentGen.Visualization;

/// <summary>
/// Writes and reads plotly's figure JSON for <see cref="Figure"/>. Written by hand (Utf8JsonWriter, JsonDocument) so
/// that the property names are plotly's, unset properties are left out and non-finite numbers become null.
/// </summary>
internal static class FigureJson
{
    public static string Write(Figure figure, bool indented)
    {
        ArgumentNullException.ThrowIfNull(figure);
        for (int i = 0; i < figure.Traces.Count; i++) Check(figure.Traces[i], i);
        using var buffer = new MemoryStream();
        // Relaxed escaping keeps titles such as "ᾱ_t" readable; HTML embedding escapes '<', '>' and '&' itself.
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartArray("data");
            foreach (var t in figure.Traces) WriteTrace(w, t);
            w.WriteEndArray();
            WriteLayout(w, figure.Title, figure.Layout);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void Check(Trace trace, int index)
    {
        string Where() => $"trace {index} ({trace.Type}{(trace.Name is null ? "" : $" \"{trace.Name}\"")})";
        switch (trace)
        {
            case ScatterTrace s:
                if (s.X.Count != s.Y.Count) throw new InvalidOperationException($"{Where()}: x has {s.X.Count} values, y has {s.Y.Count}");
                if (s.Text is { } text && text.Count != s.X.Count) throw new InvalidOperationException($"{Where()}: {text.Count} hover texts for {s.X.Count} points");
                if (s.Marker?.ColorValues is { } c && c.Count != s.X.Count) throw new InvalidOperationException($"{Where()}: {c.Count} marker colour values for {s.X.Count} points");
                if (s.Marker is { Color: not null, ColorValues: not null }) throw new InvalidOperationException($"{Where()}: the marker has both a colour and colour values; set one");
                break;
            case BarTrace b:
                if ((b.Categories is null) == (b.Positions is null))
                    throw new InvalidOperationException($"{Where()}: set exactly one of Categories and Positions (got {(b.Categories is null ? "neither" : "both")})");
                int n = b.Categories?.Count ?? b.Positions!.Count;
                if (n != b.Values.Count) throw new InvalidOperationException($"{Where()}: {n} x positions, {b.Values.Count} values");
                break;
            default:
                throw new InvalidOperationException($"{Where()}: unsupported trace type {trace.GetType().Name}");
        }
    }

    private static void WriteTrace(Utf8JsonWriter w, Trace t)
    {
        w.WriteStartObject();
        w.WriteString("type", t.Type);
        if (t.Name is not null) w.WriteString("name", t.Name);
        switch (t)
        {
            case ScatterTrace s:
                w.WriteString("mode", ModeName(s.Mode));
                Numbers(w, "x", s.X);
                Numbers(w, "y", s.Y);
                if (s.Text is not null) Strings(w, "text", s.Text);
                if (s.Marker is { } m)
                {
                    w.WriteStartObject("marker");
                    if (m.ColorValues is not null) Numbers(w, "color", m.ColorValues);
                    else if (m.Color is not null) w.WriteString("color", m.Color);
                    if (m.ColorScale is not null) w.WriteString("colorscale", m.ColorScale);
                    if (m.ShowScale is bool show) w.WriteBoolean("showscale", show);
                    if (m.ColorBarTitle is not null)
                    {
                        w.WriteStartObject("colorbar");
                        Title(w, m.ColorBarTitle);
                        w.WriteEndObject();
                    }
                    if (m.Size is double size) Number(w, "size", size);
                    w.WriteEndObject();
                }
                if (s.Line is { } l)
                {
                    w.WriteStartObject("line");
                    if (l.Color is not null) w.WriteString("color", l.Color);
                    if (l.Width is double width) Number(w, "width", width);
                    if (l.Dash is LineDash dash) w.WriteString("dash", DashName(dash));
                    w.WriteEndObject();
                }
                break;
            case BarTrace b:
                if (b.Categories is not null) Strings(w, "x", b.Categories);
                else Numbers(w, "x", b.Positions!);
                Numbers(w, "y", b.Values);
                if (b.Width is double bw) Number(w, "width", bw);
                if (b.Color is not null)
                {
                    w.WriteStartObject("marker");
                    w.WriteString("color", b.Color);
                    w.WriteEndObject();
                }
                break;
        }
        if (t.Opacity is double o) Number(w, "opacity", o);
        if (t.ShowLegend is bool legend) w.WriteBoolean("showlegend", legend);
        if (t.SecondYAxis) w.WriteString("yaxis", "y2");
        w.WriteEndObject();
    }

    private static void WriteLayout(Utf8JsonWriter w, string? title, FigureLayout l)
    {
        w.WriteStartObject("layout");
        if (title is not null) Title(w, title);
        // x and y are written even when unset, for their automargin.
        Axis(w, "xaxis", l.XAxis ?? new FigureAxis(), second: false);
        Axis(w, "yaxis", l.YAxis ?? new FigureAxis(), second: false);
        if (l.YAxis2 is not null) Axis(w, "yaxis2", l.YAxis2, second: true);
        if (l.Width is int width) w.WriteNumber("width", width);
        if (l.Height is int height) w.WriteNumber("height", height);
        if (l.ShowLegend is bool show) w.WriteBoolean("showlegend", show);
        if (l.LegendTitle is not null || l.Legend is not null)
        {
            w.WriteStartObject("legend");
            if (l.LegendTitle is not null) Title(w, l.LegendTitle);
            switch (l.Legend)
            {
                case LegendPosition.Right:
                    w.WriteString("orientation", "v");
                    break;
                case LegendPosition.Top:
                    w.WriteString("orientation", "h");
                    w.WriteNumber("x", 0);
                    w.WriteString("xanchor", "left");
                    w.WriteNumber("y", 1.02);
                    w.WriteString("yanchor", "bottom");
                    break;
            }
            w.WriteEndObject();
        }
        if (l.BarMode is BarMode mode) w.WriteString("barmode", mode.ToString().ToLowerInvariant());
        if (l.BarGap is double gap) Number(w, "bargap", gap);
        w.WriteEndObject();
    }

    private static void Axis(Utf8JsonWriter w, string name, FigureAxis a, bool second)
    {
        w.WriteStartObject(name);
        if (a.Title is not null) Title(w, a.Title);
        if (a.Log) w.WriteString("type", "log");
        if (a.FromZero) w.WriteString("rangemode", "tozero");
        // Room for long tick labels (finding names) and a right-hand axis's title, instead of clipping them.
        w.WriteBoolean("automargin", true);
        if (a.Range is AxisRange r)
        {
            // plotly gives a log axis's range as log10 of the data values.
            w.WriteStartArray("range");
            NumberValue(w, a.Log ? Math.Log10(r.Min) : r.Min);
            NumberValue(w, a.Log ? Math.Log10(r.Max) : r.Max);
            w.WriteEndArray();
        }
        if (second)
        {
            w.WriteString("overlaying", "y");
            w.WriteString("side", "right");
        }
        w.WriteEndObject();
    }

    private static void Title(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject("title");
        w.WriteString("text", text);
        w.WriteEndObject();
    }

    private static void Number(Utf8JsonWriter w, string name, double value)
    {
        w.WritePropertyName(name);
        NumberValue(w, value);
    }

    private static void NumberValue(Utf8JsonWriter w, double value)
    {
        if (double.IsFinite(value)) w.WriteNumberValue(value);
        else w.WriteNullValue();
    }

    private static void Numbers(Utf8JsonWriter w, string name, IReadOnlyList<double> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) NumberValue(w, v);
        w.WriteEndArray();
    }

    private static void Strings(Utf8JsonWriter w, string name, IReadOnlyList<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    private static string ModeName(ScatterMode mode) => mode switch
    {
        ScatterMode.Markers => "markers",
        ScatterMode.Lines => "lines",
        ScatterMode.LinesMarkers => "lines+markers",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown scatter mode"),
    };

    private static string DashName(LineDash dash) => dash switch
    {
        LineDash.Solid => "solid",
        LineDash.Dot => "dot",
        LineDash.Dash => "dash",
        LineDash.DashDot => "dashdot",
        _ => throw new ArgumentOutOfRangeException(nameof(dash), dash, "unknown line dash"),
    };

    // ---- reading ----

    public static Figure Read(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new InvalidDataException($"figure JSON is not valid JSON: {e.Message}", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"figure JSON: expected an object with \"data\" and \"layout\", got {root.ValueKind}");
            var traces = new List<Trace>();
            if (root.TryGetProperty("data", out var data))
            {
                if (data.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"figure JSON: \"data\" must be an array, got {data.ValueKind}");
                int i = 0;
                foreach (var t in data.EnumerateArray()) traces.Add(ReadTrace(t, $"data[{i++}]"));
            }
            string? title = null;
            var layout = new FigureLayout();
            if (root.TryGetProperty("layout", out var l))
            {
                if (l.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"figure JSON: \"layout\" must be an object, got {l.ValueKind}");
                title = TitleOf(l, "layout");
                layout = new FigureLayout
                {
                    XAxis = AxisOf(l, "xaxis"),
                    YAxis = AxisOf(l, "yaxis"),
                    YAxis2 = AxisOf(l, "yaxis2"),
                    Width = IntOf(l, "width", "layout"),
                    Height = IntOf(l, "height", "layout"),
                    ShowLegend = BoolOf(l, "showlegend", "layout"),
                    LegendTitle = l.TryGetProperty("legend", out var legend) ? TitleOf(legend, "layout.legend") : null,
                    Legend = StringOf(legend, "orientation", "layout.legend") switch
                    {
                        null => null,
                        "v" => LegendPosition.Right,
                        "h" => LegendPosition.Top,
                        var o => throw new InvalidDataException($"figure JSON: layout.legend.orientation \"{o}\" is not supported (v, h)"),
                    },
                    BarMode = StringOf(l, "barmode", "layout") is { } mode ? ParseBarMode(mode) : null,
                    BarGap = NumberOf(l, "bargap", "layout"),
                };
            }
            return new Figure(title, traces, layout);
        }
    }

    private static Trace ReadTrace(JsonElement t, string where)
    {
        if (t.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"figure JSON: {where} must be an object, got {t.ValueKind}");
        var type = StringOf(t, "type", where) ?? "scatter";   // plotly's default trace type
        string? name = StringOf(t, "name", where);
        double? opacity = NumberOf(t, "opacity", where);
        bool? showLegend = BoolOf(t, "showlegend", where);
        var yaxis = StringOf(t, "yaxis", where);
        if (yaxis is not null and not "y" and not "y2") throw new InvalidDataException($"figure JSON: {where}.yaxis is \"{yaxis}\"; only \"y\" and \"y2\" are supported");
        bool second = yaxis == "y2";
        switch (type)
        {
            case "scatter":
            {
                MarkerStyle? marker = null;
                if (t.TryGetProperty("marker", out var m))
                {
                    var mw = where + ".marker";
                    bool numeric = m.TryGetProperty("color", out var c) && c.ValueKind == JsonValueKind.Array;
                    marker = new MarkerStyle
                    {
                        Color = numeric ? null : StringOf(m, "color", mw),
                        ColorValues = numeric ? NumbersOf(c, mw + ".color") : null,
                        ColorScale = StringOf(m, "colorscale", mw),
                        ShowScale = BoolOf(m, "showscale", mw),
                        ColorBarTitle = m.TryGetProperty("colorbar", out var cb) ? TitleOf(cb, mw + ".colorbar") : null,
                        Size = NumberOf(m, "size", mw),
                    };
                }
                LineStyle? line = null;
                if (t.TryGetProperty("line", out var ln))
                {
                    var lw = where + ".line";
                    line = new LineStyle
                    {
                        Color = StringOf(ln, "color", lw),
                        Width = NumberOf(ln, "width", lw),
                        Dash = StringOf(ln, "dash", lw) is { } d ? ParseDash(d, lw) : null,
                    };
                }
                return new ScatterTrace
                {
                    Name = name, Opacity = opacity, ShowLegend = showLegend, SecondYAxis = second,
                    Mode = ParseMode(StringOf(t, "mode", where) ?? "lines", where),
                    X = t.TryGetProperty("x", out var x) ? NumbersOf(x, where + ".x") : [],
                    Y = t.TryGetProperty("y", out var y) ? NumbersOf(y, where + ".y") : [],
                    Text = t.TryGetProperty("text", out var text) ? StringsOf(text, where + ".text") : null,
                    Marker = marker, Line = line,
                };
            }
            case "bar":
            {
                IReadOnlyList<string>? categories = null;
                IReadOnlyList<double>? positions = null;
                if (t.TryGetProperty("x", out var x))
                {
                    if (x.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"figure JSON: {where}.x must be an array, got {x.ValueKind}");
                    if (x.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.String)) categories = StringsOf(x, where + ".x");
                    else positions = NumbersOf(x, where + ".x");
                }
                return new BarTrace
                {
                    Name = name, Opacity = opacity, ShowLegend = showLegend, SecondYAxis = second,
                    Categories = categories, Positions = positions,
                    Values = t.TryGetProperty("y", out var y) ? NumbersOf(y, where + ".y") : [],
                    Width = NumberOf(t, "width", where),
                    Color = t.TryGetProperty("marker", out var m) ? StringOf(m, "color", where + ".marker") : null,
                };
            }
            default:
                throw new InvalidDataException($"figure JSON: {where}.type \"{type}\" is not supported (scatter and bar only: the plotly.js bundle shipped is the basic one)");
        }
    }

    private static FigureAxis? AxisOf(JsonElement layout, string name)
    {
        if (!layout.TryGetProperty(name, out var a)) return null;
        var where = "layout." + name;
        if (a.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"figure JSON: {where} must be an object, got {a.ValueKind}");
        var type = StringOf(a, "type", where);
        bool log = type == "log";
        AxisRange? range = null;
        if (a.TryGetProperty("range", out var r))
        {
            var v = NumbersOf(r, where + ".range");
            if (v.Length != 2) throw new InvalidDataException($"figure JSON: {where}.range has {v.Length} values, expected 2");
            range = log ? new AxisRange(Math.Pow(10, v[0]), Math.Pow(10, v[1])) : new AxisRange(v[0], v[1]);
        }
        var rangeMode = StringOf(a, "rangemode", where);
        if (rangeMode is not null and not "normal" and not "tozero") throw new InvalidDataException($"figure JSON: {where}.rangemode \"{rangeMode}\" is not supported (normal, tozero)");
        return new FigureAxis { Title = TitleOf(a, where), Range = range, Log = log, FromZero = rangeMode == "tozero" };
    }

    // plotly's title is {"text": ...} (plotly.js 3); a bare string (older figures) is accepted too.
    private static string? TitleOf(JsonElement e, string where)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("title", out var title)) return null;
        return title.ValueKind switch
        {
            JsonValueKind.String => title.GetString(),
            JsonValueKind.Object => StringOf(title, "text", where + ".title"),
            JsonValueKind.Null => null,
            _ => throw new InvalidDataException($"figure JSON: {where}.title must be an object or a string, got {title.ValueKind}"),
        };
    }

    private static string? StringOf(JsonElement e, string name, string where)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw new InvalidDataException($"figure JSON: {where}.{name} must be a string, got {v.ValueKind}");
        return v.GetString();
    }

    private static double? NumberOf(JsonElement e, string name, string where)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number) throw new InvalidDataException($"figure JSON: {where}.{name} must be a number, got {v.ValueKind}");
        return v.GetDouble();
    }

    private static int? IntOf(JsonElement e, string name, string where) =>
        NumberOf(e, name, where) is double d
            ? d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue ? (int)d : throw new InvalidDataException($"figure JSON: {where}.{name} must be a whole number, got {d}")
            : null;

    private static bool? BoolOf(JsonElement e, string name, string where)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"figure JSON: {where}.{name} must be true or false, got {v.ValueKind}"),
        };
    }

    private static double[] NumbersOf(JsonElement array, string where)
    {
        if (array.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"figure JSON: {where} must be an array of numbers, got {array.ValueKind}");
        var result = new double[array.GetArrayLength()];
        int i = 0;
        foreach (var v in array.EnumerateArray())
        {
            result[i] = v.ValueKind switch
            {
                JsonValueKind.Number => v.GetDouble(),
                JsonValueKind.Null => double.NaN,   // how ToJson writes NaN and infinities
                _ => throw new InvalidDataException($"figure JSON: {where}[{i}] must be a number or null, got {v.ValueKind}"),
            };
            i++;
        }
        return result;
    }

    private static string[] StringsOf(JsonElement array, string where)
    {
        if (array.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"figure JSON: {where} must be an array of strings, got {array.ValueKind}");
        int i = 0;
        return array.EnumerateArray().Select(v =>
        {
            var s = v.ValueKind == JsonValueKind.String ? v.GetString()!
                : throw new InvalidDataException($"figure JSON: {where}[{i}] must be a string, got {v.ValueKind}");
            i++;
            return s;
        }).ToArray();
    }

    private static ScatterMode ParseMode(string mode, string where) => mode switch
    {
        "markers" => ScatterMode.Markers,
        "lines" => ScatterMode.Lines,
        "lines+markers" or "markers+lines" => ScatterMode.LinesMarkers,
        _ => throw new InvalidDataException($"figure JSON: {where}.mode \"{mode}\" is not supported (markers, lines, lines+markers)"),
    };

    private static LineDash ParseDash(string dash, string where) => dash switch
    {
        "solid" => LineDash.Solid,
        "dot" => LineDash.Dot,
        "dash" => LineDash.Dash,
        "dashdot" => LineDash.DashDot,
        _ => throw new InvalidDataException($"figure JSON: {where}.dash \"{dash}\" is not supported (solid, dot, dash, dashdot)"),
    };

    private static BarMode ParseBarMode(string mode) => mode switch
    {
        "group" => BarMode.Group,
        "overlay" => BarMode.Overlay,
        "stack" => BarMode.Stack,
        _ => throw new InvalidDataException($"figure JSON: layout.barmode \"{mode}\" is not supported (group, overlay, stack)"),
    };
}
