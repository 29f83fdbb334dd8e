using System.Globalization;
using System.Net;
using System.Text;

namespace RoentGen.Interactive;

/// <summary>
/// Draws a <see cref="Figure"/> with plotly.js, fully offline: the library (plotly.js 3.7.0, "basic" bundle: scatter,
/// bar, pie; MIT licence, Copyright Plotly, Inc.) is embedded in this assembly and written inline, never fetched from a CDN.
/// <list type="bullet">
/// <item><see cref="ToPage"/> / <see cref="SavePage"/>: a complete HTML document with the library inline.</item>
/// <item><see cref="ToFragment"/>: a div and a script that draws with <c>window.Plotly</c> once it is there (for pages
/// that load the library once, like <see cref="HtmlReport"/>).</item>
/// <item><see cref="ToNotebookHtml"/>: for kernel outputs: the library with the first figure of the process, fragments after.</item>
/// </list>
/// </summary>
public static class FigureHtml
{
    /// <summary>Manifest name of the embedded plotly.js.</summary>
    public const string PlotlyJsResourceName = "plotly-basic.min.js";

    /// <summary>How long a fragment waits for plotly.js to appear before it gives up (milliseconds).</summary>
    public const int WaitForPlotlyMs = 10_000;

    private static readonly Lazy<string> _plotlyJs = new(LoadPlotlyJs);
    private static int _notebookLibrarySent;
    private static long _nextId;

    /// <summary>The source of the embedded plotly.js (about 1.1 MB).</summary>
    /// <exception cref="InvalidOperationException">The assembly was built without it.</exception>
    public static string PlotlyJs => _plotlyJs.Value;

    /// <summary>The library as one inline script element (a page needs it once, before any fragment runs or while they wait).</summary>
    public static string PlotlyScriptTag => "<script type=\"text/javascript\">" + PlotlyJs + "</script>";

    /// <summary>
    /// A complete, self-contained HTML document showing the figure: plotly.js inline (no <c>&lt;script src&gt;</c>,
    /// nothing fetched), the page title from <paramref name="documentTitle"/> or else the figure's title.
    /// </summary>
    public static string ToPage(Figure figure, string? documentTitle = null)
    {
        ArgumentNullException.ThrowIfNull(figure);
        var title = documentTitle ?? figure.Title ?? "chart";
        return "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>" + WebUtility.HtmlEncode(title) + "</title>\n" +
               PlotlyScriptTag + "\n</head>\n<body style=\"margin:0\">\n" + ToFragment(figure) + "\n</body>\n</html>\n";
    }

    /// <summary>
    /// The figure as an HTML fragment without the library: a div, and a script that draws the figure into it with
    /// <c>window.Plotly.newPlot</c>; when plotly.js is not loaded yet it polls for up to <see cref="WaitForPlotlyMs"/>,
    /// then writes a note into the div instead.
    /// </summary>
    public static string ToFragment(Figure figure)
    {
        ArgumentNullException.ThrowIfNull(figure);
        var json = ScriptSafe(figure.ToJson());
        var id = "roentgen-figure-" + Guid.NewGuid().ToString("N")[..12] + "-" + Interlocked.Increment(ref _nextId).ToString(CultureInfo.InvariantCulture);
        var width = figure.Layout.Width is int w ? w.ToString(CultureInfo.InvariantCulture) + "px" : "100%";
        var height = (figure.Layout.Height ?? 450).ToString(CultureInfo.InvariantCulture) + "px";
        var missing = "plotly.js is not loaded on this page, so this chart is not drawn. In a notebook it comes with the first chart " +
                      "of the kernel session: call RoentGen.Interactive.FigureHtml.ResetNotebookLibrary() and run the cell again.";
        var sb = new StringBuilder();
        sb.Append("<div id=\"").Append(id).Append("\" class=\"roentgen-figure\" style=\"width:").Append(width).Append(";height:").Append(height).Append("\"></div>\n");
        sb.Append("<script type=\"text/javascript\">\n(function () {\n");
        sb.Append("  var figure = ").Append(json).Append(";\n");
        sb.Append("  var id = \"").Append(id).Append("\", waited = 0;\n");
        sb.Append("  function draw() {\n");
        sb.Append("    var el = document.getElementById(id);\n");
        sb.Append("    if (el && window.Plotly) { window.Plotly.newPlot(el, figure.data, figure.layout, {responsive: true, displaylogo: false}); return; }\n");
        sb.Append("    if (waited < ").Append(WaitForPlotlyMs.ToString(CultureInfo.InvariantCulture)).Append(") { waited += 50; setTimeout(draw, 50); return; }\n");
        sb.Append("    if (el) el.textContent = ").Append(JsString(missing)).Append(";\n");
        sb.Append("  }\n  draw();\n})();\n</script>");
        return sb.ToString();
    }

    /// <summary>
    /// The HTML for a kernel output (the text/html formatter of <see cref="Display"/>): plotly.js inline the first time
    /// in this process, then fragments that use the library the first output loaded (<see cref="ToFragment"/>).
    /// Thread-safe; <see cref="ResetNotebookLibrary"/> makes the next call include the library again.
    /// </summary>
    public static string ToNotebookHtml(Figure figure)
    {
        ArgumentNullException.ThrowIfNull(figure);
        var fragment = ToFragment(figure);
        return Interlocked.Exchange(ref _notebookLibrarySent, 1) == 0 ? PlotlyScriptTag + "\n" + fragment : fragment;
    }

    /// <summary>True once <see cref="ToNotebookHtml"/> has written the library in this process (since the last reset).</summary>
    public static bool NotebookLibrarySent => Volatile.Read(ref _notebookLibrarySent) == 1;

    /// <summary>
    /// Makes the next <see cref="ToNotebookHtml"/> include plotly.js again: for a new page showing the outputs (e.g. a
    /// notebook front end reloaded while the kernel kept running, or a new notebook run in the same process) and for tests.
    /// </summary>
    public static void ResetNotebookLibrary() => Volatile.Write(ref _notebookLibrarySent, 0);

    /// <summary>Writes <see cref="ToPage"/> to a file atomically (a reader never sees half a page), creating its folder.</summary>
    public static void SavePage(Figure figure, string path, string? documentTitle = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        AtomicFile.WriteAllText(path, ToPage(figure, documentTitle));
    }

    // JSON inside a <script> element: "</script>" or "<!--" in a string must not end or change the element; U+2028/9
    // are line ends in older JavaScript. Inside JSON these characters only occur in strings, where \u escapes mean the same.
    internal static string ScriptSafe(string json) => json
        .Replace("<", "\\u003c", StringComparison.Ordinal)
        .Replace(">", "\\u003e", StringComparison.Ordinal)
        .Replace("&", "\\u0026", StringComparison.Ordinal)
        .Replace("\u2028", "\\u2028", StringComparison.Ordinal)
        .Replace("\u2029", "\\u2029", StringComparison.Ordinal);

    private static string JsString(string text) =>
        "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static string LoadPlotlyJs()
    {
        using var stream = typeof(FigureHtml).Assembly.GetManifestResourceStream(PlotlyJsResourceName)
            ?? throw new InvalidOperationException(
                $"{typeof(FigureHtml).Assembly.GetName().Name} has no embedded resource '{PlotlyJsResourceName}': it is built from the Plotly.Blazor 7.2.0 " +
                "package's plotly-basic-3.7.0.min.js (PackageDownload in RoentGen.Interactive.csproj); rebuild after a restore");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var source = reader.ReadToEnd();
        // Inline, a "</script" inside the library would end its element early.
        if (source.Contains("</script", StringComparison.OrdinalIgnoreCase))
            source = source.Replace("</script", "<\\/script", StringComparison.OrdinalIgnoreCase);
        return source;
    }
}
