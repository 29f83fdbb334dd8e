using System.Text.RegularExpressions;
using RoentGen.Interactive;

namespace RoentGen.Tests.Interactive;

/// <summary>FigureHtml: plotly.js embedded once, inline, and fragments that wait for it. Notebook state is process-wide.</summary>
[Collection(ProcessStateCollection.Name)]
public class FigureHtmlTests
{
    private static Figure Small(string title = "small </script> chart") =>
        new(title, [new ScatterTrace { Name = "doubling", X = [1, 2, 3], Y = [2, 4, 8] }]);

    /// <summary>How many times the embedded library occurs in a text (counted by its opening, which is unique in it).</summary>
    internal static int LibraryCopies(string html)
    {
        var marker = FigureHtml.PlotlyJs[..400];
        return Regex.Matches(html, Regex.Escape(marker)).Count;
    }

    [Fact]
    public void Embedded_plotly_js_is_the_basic_bundle()
    {
        var js = FigureHtml.PlotlyJs;
        Assert.True(js.Length > 1_000_000, $"plotly.js is {js.Length} characters");
        Assert.Contains("plotly.js (basic - minified) v3.7.0", js);
        Assert.Contains("Licensed under the MIT license", js);
        Assert.Contains("window.Plotly", js);
    }

    [Fact]
    public void Page_contains_plotly_js_once_inline_and_no_network_script()
    {
        var page = FigureHtml.ToPage(Small());
        Assert.StartsWith("<!DOCTYPE html>", page);
        Assert.Equal(1, LibraryCopies(page));
        Assert.DoesNotMatch("<script[^>]+src=", page);
        Assert.Contains("<title>small &lt;/script&gt; chart</title>", page);
        Assert.Contains("Plotly.newPlot", page);
        // The title's "</script>" is escaped inside the script, so the figure's script element is not cut short.
        Assert.Contains("small \\u003c/script\\u003e chart", page);
        Assert.Equal(2, Regex.Matches(page, "</script>").Count);
    }

    [Fact]
    public void Fragment_has_no_library_and_waits_for_window_Plotly()
    {
        var fragment = FigureHtml.ToFragment(Small());
        Assert.Equal(0, LibraryCopies(fragment));
        Assert.Contains("window.Plotly.newPlot", fragment);
        Assert.Contains("setTimeout(draw, 50)", fragment);
        Assert.Contains("\"doubling\"", fragment);
        var ids = Regex.Matches(fragment + FigureHtml.ToFragment(Small()), "<div id=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(2, ids.Distinct().Count());
    }

    [Fact]
    public void Notebook_html_includes_the_library_only_the_first_time_until_reset()
    {
        FigureHtml.ResetNotebookLibrary();
        Assert.False(FigureHtml.NotebookLibrarySent);
        var first = FigureHtml.ToNotebookHtml(Small());
        var second = FigureHtml.ToNotebookHtml(Small());
        Assert.Equal(1, LibraryCopies(first));
        Assert.Equal(0, LibraryCopies(second));
        Assert.Contains("Plotly.newPlot", second);
        Assert.True(FigureHtml.NotebookLibrarySent);
        FigureHtml.ResetNotebookLibrary();
        Assert.Equal(1, LibraryCopies(FigureHtml.ToNotebookHtml(Small())));
    }

    [Fact]
    public void SavePage_writes_the_page_atomically_into_a_new_folder()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var path = Path.Combine(dir, "sub", "chart.html");
            FigureHtml.SavePage(Small("saved"), path);
            var text = File.ReadAllText(path);
            Assert.Equal(1, LibraryCopies(text));
            Assert.Contains("<title>saved</title>", text);
            Assert.Equal(["chart.html"], Directory.GetFiles(Path.Combine(dir, "sub")).Select(Path.GetFileName));   // no temporary file left
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Report_with_three_charts_embeds_the_library_exactly_once()
    {
        var report = new HtmlReport("three charts").Paragraph("text").Chart(Small("one")).Add(Small("two")).Chart(Small("three"));
        var html = report.ToHtml();
        Assert.Equal(3, report.ChartCount);
        Assert.Equal(1, LibraryCopies(html));
        Assert.Equal(3, Regex.Matches(html, "class=\"roentgen-figure\"").Count);
        Assert.True(html.IndexOf(FigureHtml.PlotlyJs[..400], StringComparison.Ordinal) < html.IndexOf("roentgen-figure", StringComparison.Ordinal),
            "the library must come before the charts");
        Assert.DoesNotMatch("<script[^>]+src=", html);

        var noCharts = new HtmlReport("text only").Paragraph("no chart").ToHtml();
        Assert.Equal(0, LibraryCopies(noCharts));
    }
}
