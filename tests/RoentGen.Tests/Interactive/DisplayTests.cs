using Microsoft.AspNetCore.Html;
using Microsoft.Data.Analysis;
using Microsoft.DotNet.Interactive.Formatting;
using RoentGen.Data;
using RoentGen.Interactive;
using static TorchSharp.torch;

namespace RoentGen.Tests.Interactive;

public class DisplayTests
{
    private sealed class Dot : IPngDisplayable
    {
        public byte[] ToPng() => new GrayImage(1, 1, [1f]).ToPng();
    }

    private static Figure SmallChart() =>
        new("small chart", [new ScatterTrace { Name = "line", X = [1.0, 2.0, 3.0], Y = [2.0, 4.0, 3.0] }]);

    [Fact]
    public void Registered_formatters_embed_pngs_for_images_grids_and_png_displayables()
    {
        Display.Register();
        Display.Register(); // idempotent
        var img = new GrayImage(4, 4);
        Assert.Contains("<img src=\"data:image/png;base64,", img.ToDisplayString("text/html"));
        Assert.Contains("data:image/png;base64,", new ImageGrid().Add(img, "x").ToDisplayString("text/html"));
        Assert.Contains("data:image/png;base64,", new Dot().ToDisplayString("text/html"));
    }

    [Fact]
    public void Tensors_show_as_pictures_when_image_shaped_else_as_a_summary()
    {
        Display.Register();
        using var scope = NewDisposeScope();
        Assert.Contains("data:image/png;base64,", zeros(2, 1, 16, 16).ToDisplayString("text/html"));
        Assert.Contains("data:image/png;base64,", rand(16, 16).ToDisplayString("text/html"));
        var html = arange(10, dtype: ScalarType.Int64).ToDisplayString("text/html");
        Assert.DoesNotContain("<img", html);
        Assert.Contains("[10] Int64", html);
        Assert.Contains("0, 1, 2", html);
    }

    [Fact]
    public void Figure_html_draws_with_plotly_js_and_fetches_no_script()
    {
        Display.Register();
        // Whether this output carries plotly.js depends on earlier outputs of the process (FigureHtmlTests checks that).
        var html = SmallChart().ToDisplayString("text/html");
        Assert.DoesNotContain("src=\"https://cdn.plot.ly", html); // plotly.js itself mentions cdn.plot.ly as a config default
        Assert.DoesNotContain("<script src=", html);
        Assert.Contains("Plotly.newPlot", html);
        Assert.Contains("small chart", html);
        var bundle = Display.ToMimeBundle(SmallChart());
        Assert.Contains("Plotly.newPlot", bundle["text/html"]);
        Assert.Equal("figure \"small chart\": 1 trace (scatter)", bundle["text/plain"]);
    }

    [Fact]
    public void DataFrame_shows_as_a_table_with_header_and_size()
    {
        Display.Register();
        var df = new DataFrame(
            new PrimitiveDataFrameColumn<int>("age", Enumerable.Range(30, 25)),
            new StringDataFrameColumn("sex", Enumerable.Range(0, 25).Select(i => i % 2 == 0 ? "F" : "M<>")));
        var html = df.ToDisplayString("text/html");
        Assert.Contains("<table>", html);
        Assert.Contains("<th>age</th><th>sex</th>", html);
        Assert.Contains("M&lt;&gt;", html);
        Assert.Contains("25 rows x 2 columns", html);
        Assert.Equal(Display.DataFrameRows, html.Split("<tr><td>").Length - 1);
    }

    [Fact]
    public void MimeBundle_has_plain_text_always_html_when_known_and_png_for_displayables()
    {
        var b1 = Display.ToMimeBundle(new GrayImage(2, 2));
        Assert.Equal(["image/png", "text/html", "text/plain"], b1.Keys.Order());
        Assert.True(Convert.FromBase64String(b1["image/png"]).Length > 8);
        var b2 = Display.ToMimeBundle(42);
        Assert.Equal(["text/plain"], b2.Keys);
        Assert.Equal("42", b2["text/plain"]);
        var b3 = Display.ToMimeBundle(new HtmlString("<b>hi</b>"));
        Assert.Equal("<b>hi</b>", b3["text/html"]);
        Assert.Contains("<b>", Display.ToHtml(new HtmlString("<b>x</b>")));
    }
}
