using System.Diagnostics;
using System.Text.RegularExpressions;
using RoentGen.Data;
using RoentGen.Evaluation;
using RoentGen.Interactive;
using RoentGen.Training;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using RoentGen.Methods;

namespace RoentGen.Tests.Interactive;

/// <summary>
/// A figure written as a fully offline HTML page (<see cref="FigureHtml.ToPage"/>, plotly.js inline) really draws:
/// headless Chromium, with every network fetch made to fail, renders it to a screenshot that shows the trace, and
/// plotly.js builds its SVG in the page. Needs chromium (environment/install-test-packages.sh); without it the browser
/// tests report skipped. Set ROENTGEN_CHART_SCREENSHOTS to a folder to keep the pages and screenshots for a look.
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

    private static Figure RedLine()
    {
        var xs = Enumerable.Range(0, 20).Select(i => (double)i).ToArray();
        return new Figure("offline chart",
            [new ScatterTrace
            {
                Name = "training loss", Mode = ScatterMode.LinesMarkers, X = xs, Y = xs.Select(x => Math.Exp(-x / 6)).ToArray(),
                Line = new LineStyle { Color = "#FF0000", Width = 8 }, Marker = new MarkerStyle { Color = "#FF0000" },
            }],
            new FigureLayout { XAxis = new FigureAxis { Title = "step" }, YAxis = new FigureAxis { Title = "loss" } });
    }

    [Fact]
    public void Offline_page_embeds_plotly_js_and_fetches_nothing()
    {
        var html = FigureHtml.ToPage(RedLine());
        Assert.True(html.Length > 1_000_000, $"expected plotly.js inline (~1.1 MB), got {html.Length} characters");
        Assert.Equal(1, FigureHtmlTests.LibraryCopies(html));
        // (plotly.js's own source mentions its CDN as a default; what matters is that no script is loaded from it.)
        Assert.DoesNotMatch("<script[^>]+src=\"(https?:)?//", html);
        Assert.Contains("training loss", html);
    }

    private sealed record Rendered(Image<Rgb24> Bitmap, string Dom) : IDisposable
    {
        public void Dispose() => Bitmap.Dispose();
    }

    /// <summary>Writes the page, screenshots it and dumps its DOM after the scripts ran (two chromium runs).</summary>
    private Rendered Render(string chromium, Figure figure, string name)
    {
        var keep = Environment.GetEnvironmentVariable("ROENTGEN_CHART_SCREENSHOTS");
        var dir = keep is { Length: > 0 } ? Directory.CreateDirectory(keep).FullName : _dir;
        var html = Path.Combine(dir, name + ".html");
        FigureHtml.SavePage(figure, html);
        var png = Path.Combine(dir, name + ".png");
        File.Delete(png);
        Chromium(chromium, "--screenshot=" + png, html);
        Assert.True(File.Exists(png), $"chromium wrote no screenshot of {name}");
        var dom = Chromium(chromium, "--dump-dom", html);
        var bitmap = Image.Load<Rgb24>(png);
        Assert.NotNull(bitmap);
        return new Rendered(bitmap, dom);
    }

    private string Chromium(string chromium, string action, string page)
    {
        var profile = Path.Combine(_dir, "profile-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(profile);
        var psi = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--no-first-run", "--disable-extensions", "--disable-sync",
            "--user-data-dir=" + profile, "--hide-scrollbars", "--window-size=900,600",
            // Any network fetch goes to a closed local port and fails: the page must be self-contained.
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            "--virtual-time-budget=5000",
            action, new Uri(page).AbsoluteUri,
        }) psi.ArgumentList.Add(arg);

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"chromium {action} did not finish within 90 s");
        }
        Assert.True(p.ExitCode == 0, $"chromium {action} exited with {p.ExitCode}:\n{stderr.Result}");
        return stdout.Result;
    }

    // The inline library mentions the class name too, but only a drawn chart has the element.
    private static bool DrewSvg(string dom) => Regex.IsMatch(dom, "<svg[^>]*class=\"main-svg\"");

    private static IEnumerable<Rgb24> Pixels(Image<Rgb24> bitmap)
    {
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
                yield return bitmap[x, y];
    }

    private static (double NonWhite, double Variance) Ink(Image<Rgb24> bitmap)
    {
        long nonWhite = 0;
        double sum = 0, sumSq = 0;
        foreach (var c in Pixels(bitmap))
        {
            if (c.R < 235 || c.G < 235 || c.B < 235) nonWhite++;
            double luma = 0.299 * c.R + 0.587 * c.G + 0.114 * c.B;
            sum += luma; sumSq += luma * luma;
        }
        double n = (double)bitmap.Width * bitmap.Height;
        return (nonWhite / n, sumSq / n - (sum / n) * (sum / n));
    }

    [SkippableFact]
    public void Offline_chart_renders_in_headless_chromium_without_network()
    {
        var chromium = FindChromium();
        Skip.If(chromium is null, "chromium not found: run environment/install-test-packages.sh (or set CHROMIUM_PATH) to check chart rendering");

        using var r = Render(chromium!, RedLine(), "red-line");
        Assert.Equal((900, 600), (r.Bitmap.Width, r.Bitmap.Height));
        // plotly.js ran and built its SVG (a page whose script failed has only the empty div).
        Assert.True(DrewSvg(r.Dom), "plotly.js drew no <svg class=\"main-svg\"> into the page");
        Assert.Matches("<text[^>]*>step</text>", r.Dom);   // the x axis title, drawn by plotly.js
        var (nonWhite, variance) = Ink(r.Bitmap);
        long red = Pixels(r.Bitmap).LongCount(c => c.R > 200 && c.G < 80 && c.B < 80);
        // A blank page is uniformly white; a drawn chart has axes, grid, labels and the red trace.
        Assert.True(nonWhite > 0.01, $"screenshot is nearly blank: {nonWhite:P2} non-white pixels");
        Assert.True(variance > 50, $"screenshot is nearly uniform: luma variance {variance:F1}");
        Assert.True(red > 500, $"the red trace is missing from the screenshot: {red} red pixels");
    }

    [SkippableFact]
    public void Library_charts_render_bars_two_y_axes_and_a_colour_bar()
    {
        var chromium = FindChromium();
        Skip.If(chromium is null, "chromium not found: run environment/install-test-packages.sh (or set CHROMIUM_PATH) to check chart rendering");

        var rng = new Random(5);
        var rows = Enumerable.Range(0, 300).Select(i => ((string?)(i % 2 == 0 ? "F" : "M"), (double?)(20 + rng.NextDouble() * 65 + (i % 2) * 5), (string?)(i % 3 == 0 ? "AP" : "PA"))).ToList();
        var (age, _) = DataTour.MetadataCharts(rows);
        var history = new TrainingHistory();
        for (int s = 0; s < 200; s++)
        {
            history.Loss.Add(5 - s / 100.0);
            history.Metrics.TryAdd("teacher_entropy", []);
            history.Metrics.TryAdd("effective_prototypes", []);
            history.Metrics["teacher_entropy"].Add(Math.Log(256) - 1.5 * (1 - Math.Exp(-s / 60.0)));
            history.Metrics["effective_prototypes"].Add(256 * Math.Exp(-s / 90.0) + 20);
        }
        var collapse = DinoCharts.Collapse(history, prototypes: 256);
        var embedding = new float[80, 2];
        for (int i = 0; i < 80; i++) { embedding[i, 0] = (float)Math.Cos(i / 6.0) * i; embedding[i, 1] = (float)Math.Sin(i / 6.0) * i; }
        var tsne = TSneCharts.ScatterContinuous(embedding, Enumerable.Range(0, 80).Select(i => 20.0 + i).ToList(), "t-SNE by age", "age");

        var labels = DataTour.LabelChart(Enumerable.Range(0, 40).Select(i => CxrLabels.FromPositives(Observations.All.Where((o, j) => (i + j) % 5 == 0))).ToList());
        foreach (var (figure, name) in new[] { (age, "age-by-sex"), (collapse, "collapse"), (tsne, "tsne-age"), (labels, "labels") })
        {
            using var r = Render(chromium!, figure, name);
            Assert.True(DrewSvg(r.Dom), $"{name}: plotly.js drew no <svg class=\"main-svg\">");
            Assert.Matches("<text[^>]*class=\"gtitle\"", r.Dom);
            var (nonWhite, variance) = Ink(r.Bitmap);
            Assert.True(nonWhite > 0.02 && variance > 50, $"{name}: screenshot is nearly blank ({nonWhite:P2} non-white, variance {variance:F1})");
        }
    }

    [SkippableFact]
    public async Task A_chart_produced_by_the_real_kernel_renders_in_headless_chromium()
    {
        var chromium = FindChromium();
        Skip.If(chromium is null, "chromium not found: run environment/install-test-packages.sh (or set CHROMIUM_PATH) to check chart rendering");

        // The kernel (the pinned dotnet-interactive) formats a library chart as VS Code would show it ...
        var bin = Path.Combine(TestPaths.RepoRoot, "lib", "RoentGen.Interactive", "bin", "net10.0");
        var nb = RoentGen.Interactive.Notebooks.Notebook.CreatePolyglot();
        nb.Cells.Add(RoentGen.Interactive.Notebooks.NotebookCell.Code(
            $"#r \"{Path.Combine(bin, "RoentGen.dll")}\"\n#r \"{Path.Combine(bin, "RoentGen.Interactive.dll")}\"\n" +
            "RoentGen.Interactive.Display.Register();\nvar xs = Enumerable.Range(0, 20).Select(i => (double)i).ToArray();"));
        nb.Cells.Add(RoentGen.Interactive.Notebooks.NotebookCell.Code(
            "new RoentGen.Visualization.Figure(\"kernel chart\", [new RoentGen.Visualization.ScatterTrace { Name = \"loss\", X = xs, Y = xs.Select(x => Math.Exp(-x / 6)).ToArray() }],\n" +
            "    new RoentGen.Visualization.FigureLayout { XAxis = new RoentGen.Visualization.FigureAxis { Title = \"step\" } })"));
        var result = await new RoentGen.Interactive.Notebooks.NotebookRunner().RunAsync(nb, Path.Combine(_dir, "kernel.ipynb"));
        Assert.False(result.AnyFailed, string.Join("\n", nb.Cells.SelectMany(c => c.Outputs).Select(o => o.EValue)));
        var output = Assert.Single(nb.Cells[1].Outputs).GetData("text/html")!;

        // ... and that output, in the page a reader opens, draws in a browser with no network.
        var html = Path.Combine(_dir, "kernel-chart.html");
        File.WriteAllText(html, RoentGen.Interactive.Notebooks.NotebookHtml.ToPage(nb, "kernel chart"));
        var dom = Chromium(chromium!, "--dump-dom", html);
        Assert.True(DrewSvg(dom), "plotly.js drew no <svg class=\"main-svg\"> from the kernel's output");
        Assert.Matches("<text[^>]*>step</text>", dom);
        Assert.Contains("Plotly.newPlot", output);
    }
}
