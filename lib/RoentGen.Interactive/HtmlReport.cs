using System.Net;
using System.Text;
using RoentGen.Platform;

namespace RoentGen.Interactive;

/// <summary>
/// A self-contained HTML report (opens offline): headings, text, images, tables and charts (<see cref="Figure"/>s),
/// with plotly.js embedded once, in the page's head, however many charts there are (none when there is no chart); each
/// chart is a <see cref="FigureHtml.ToFragment"/>.
/// </summary>
public sealed class HtmlReport
{
    private readonly StringBuilder body = new();
    private int charts;

    /// <summary>Starts a report.</summary>
    public HtmlReport(string title) => Title = title;

    /// <summary>Page title (also the first heading).</summary>
    public string Title { get; }

    /// <summary>Adds a heading (level 2 by default).</summary>
    public HtmlReport Heading(string text, int level = 2)
    {
        body.Append($"<h{level}>").Append(WebUtility.HtmlEncode(text)).Append($"</h{level}>\n");
        return this;
    }

    /// <summary>Adds a paragraph of plain text (HTML-encoded).</summary>
    public HtmlReport Paragraph(string text)
    {
        body.Append("<p>").Append(WebUtility.HtmlEncode(text)).Append("</p>\n");
        return this;
    }

    /// <summary>Adds raw HTML as it is.</summary>
    public HtmlReport Raw(string html)
    {
        body.Append(html).Append('\n');
        return this;
    }

    /// <summary>Adds anything <see cref="Display.ToHtml"/> renders (images, grids, tables, tensors), charts included.</summary>
    public HtmlReport Add(object? value)
    {
        if (value is Figure figure) return Chart(figure);
        body.Append(Display.ToHtml(value)).Append('\n');
        return this;
    }

    /// <summary>Adds a chart (drawn by the page's one copy of plotly.js).</summary>
    public HtmlReport Chart(Figure figure)
    {
        body.Append(FigureHtml.ToFragment(figure)).Append('\n');
        charts++;
        return this;
    }

    /// <summary>Charts added so far.</summary>
    public int ChartCount => charts;

    /// <summary>The whole page.</summary>
    public string ToHtml() =>
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + WebUtility.HtmlEncode(Title) + "</title>" +
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:2px 8px;text-align:left}.miss{color:#b00}.ok{color:#070}</style>" +
        (charts > 0 ? FigureHtml.PlotlyScriptTag : "") + "</head><body>" +
        "<h1>" + WebUtility.HtmlEncode(Title) + "</h1>\n" + body + "</body></html>";

    /// <summary>Writes the page atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToHtml());
}
