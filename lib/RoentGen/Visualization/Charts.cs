using Microsoft.FSharp.Core;
using Plotly.NET;
using RoentGen.Platform;

namespace RoentGen.Visualization;

/// <summary>Plotly.NET charts as self-contained HTML: plotly.js is embedded inline, so reports open with no network.</summary>
public static class Charts
{
    /// <summary>
    /// A complete HTML document for the chart with plotly.js embedded inline (about 3.6 MB; no CDN
    /// <c>&lt;script src&gt;</c>). Other display options already set on the chart are kept.
    /// </summary>
    public static string ToOfflineHtml(GenericChart chart)
    {
        ArgumentNullException.ThrowIfNull(chart);
        // F# optional arguments are mandatory from C#: null is None.
        var options = DisplayOptions.init(null, null, null, null, null, null, FSharpOption<PlotlyJSReference>.Some(PlotlyJSReference.Full));
        var offline = GenericChart.addDisplayOptions(options, chart);
        return GenericChart.toEmbeddedHTML(offline);
    }

    /// <summary>
    /// The chart as an HTML fragment (a div and its plotting script) that loads no plotly.js: for a page that embeds
    /// plotly.js once, e.g. through one <see cref="ToOfflineHtml"/> chart placed before it (see <c>HtmlReport</c>).
    /// </summary>
    public static string ToFragmentWithoutLibrary(GenericChart chart)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var options = DisplayOptions.init(null, null, null, null, null, null, FSharpOption<PlotlyJSReference>.Some(PlotlyJSReference.NoReference));
        return GenericChart.toChartHTML(GenericChart.addDisplayOptions(options, chart));
    }

    /// <summary>Writes <see cref="ToOfflineHtml"/> to a file, atomically.</summary>
    public static void SaveHtml(GenericChart chart, string path) => AtomicFile.WriteAllText(path, ToOfflineHtml(chart));
}
