using System.Diagnostics;
using Microsoft.FSharp.Core;
using Plotly.NET;
using SixLabors.ImageSharp.PixelFormats;

namespace RoentGen.Tests.Interactive;

/// <summary>
/// A Plotly.NET chart written as a fully offline HTML file (plotly.js inline) really draws: headless
/// Chromium, with every network fetch made to fail, renders it to a screenshot that shows the trace.
/// Needs chromium (environment/install-chromium.sh); without it the test reports skipped.
/// </summary>
public sealed class ChartRenderingTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-chart");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>chromium on PATH (or $CHROMIUM_PATH), else null.</summary>
    private static string? FindChromium()
    {
        if (Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } env && File.Exists(env)) return env;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        foreach (var name in new[] { "chromium", "chromium-browser", "google-chrome" })
            foreach (var d in dirs)
                if (File.Exists(Path.Combine(d, name))) return Path.Combine(d, name);
        return null;
    }

    private static string OfflineChartHtml()
    {
        var xs = Enumerable.Range(0, 20).Select(i => (double)i).ToArray();
        var ys = xs.Select(x => Math.Exp(-x / 6)).ToArray();
        var chart = Plotly.NET.CSharp.Chart.Line<double, double, string>(
            x: xs, y: ys, Name: "training loss", ShowMarkers: true,
            LineColor: Color.fromHex("#FF0000"), LineWidth: 8.0, MarkerColor: Color.fromHex("#FF0000"));
        // F# optional arguments are plain FSharpOption parameters from C#: every one is passed (null = None).
        var offline = DisplayOptions.init(
            DocumentTitle: FSharpOption<string>.Some("offline chart"),
            DocumentCharset: null, DocumentDescription: null, DocumentFavicon: null,
            AdditionalHeadTags: null, ChartDescription: null,
            PlotlyJSReference: FSharpOption<PlotlyJSReference>.Some(PlotlyJSReference.Full));
        chart = Chart.withDisplayOptions(offline).Invoke(chart);
        return GenericChart.toEmbeddedHTML(chart);
    }

    [Fact]
    public void Offline_html_embeds_plotly_js_and_fetches_nothing()
    {
        var html = OfflineChartHtml();
        Assert.True(html.Length > 1_000_000, $"expected plotly.js inline (~3.6 MB), got {html.Length} characters");
        // (plotly.js's own source mentions its CDN as a mapbox default; what matters is that no script is loaded from it.)
        Assert.DoesNotMatch("<script[^>]+src=\"(https?:)?//", html);
        Assert.Contains("training loss", html);
    }

    [SkippableFact]
    public void Offline_chart_renders_in_headless_chromium_without_network()
    {
        var chromium = FindChromium();
        Skip.If(chromium is null, "chromium not found: run environment/install-chromium.sh (or set CHROMIUM_PATH) to check chart rendering");

        var html = Path.Combine(_dir, "chart.html");
        File.WriteAllText(html, OfflineChartHtml());
        var png = Path.Combine(_dir, "chart.png");
        var profile = Path.Combine(_dir, "profile");
        Directory.CreateDirectory(profile);

        var psi = new ProcessStartInfo(chromium!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--no-first-run", "--disable-extensions", "--disable-sync",
            "--user-data-dir=" + profile, "--hide-scrollbars", "--window-size=900,600",
            // Any network fetch goes to a closed local port and fails: the page must be self-contained.
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            "--virtual-time-budget=5000",
            "--screenshot=" + png, new Uri(html).AbsoluteUri,
        }) psi.ArgumentList.Add(arg);

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("chromium did not finish within 90 s");
        }
        Assert.True(File.Exists(png), $"chromium wrote no screenshot (exit {p.ExitCode}):\n{stdout.Result}\n{stderr.Result}");

        using var bitmap = SixLabors.ImageSharp.Image.Load<Rgb24>(png);
        Assert.Equal((900, 600), (bitmap.Width, bitmap.Height));
        long nonWhite = 0, red = 0;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap[x, y];
                if (c.R < 235 || c.G < 235 || c.B < 235) nonWhite++;
                if (c.R > 200 && c.G < 80 && c.B < 80) red++;
            }
        var total = (double)bitmap.Width * bitmap.Height;
        // A page whose script failed is blank white; a drawn chart has axes, grid, labels and the red trace.
        Assert.True(nonWhite / total > 0.01, $"screenshot is nearly blank: {nonWhite} non-white pixels of {total}");
        Assert.True(red > 500, $"the red trace is missing from the screenshot: {red} red pixels");
    }
}
