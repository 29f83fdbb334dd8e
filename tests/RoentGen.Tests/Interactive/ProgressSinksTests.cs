using Microsoft.AspNetCore.Html;
using RoentGen.Interactive;
using Spectre.Console;

namespace RoentGen.Tests.Interactive;

[Collection(ProcessStateCollection.Name)]
public class ProgressSinksTests
{
    private sealed class FakeHandle(List<string> log) : IDisplayHandle
    {
        public void Update(object value) => log.Add("update " + value);
    }

    private static T WithFakeNotebook<T>(List<string> log, Func<T> body)
    {
        var saved = NotebookHost.DisplayHook;
        NotebookHost.DisplayHook = v => { log.Add("display " + v); return new FakeHandle(log); };
        try { return body(); }
        finally { NotebookHost.DisplayHook = saved; }
    }

    [Fact]
    public void Notebook_sink_displays_once_then_updates_in_place()
    {
        var log = new List<string>();
        WithFakeNotebook(log, () =>
        {
            using var p = ProgressReporter.Start("train", total: 100, unit: "steps", sink: ProgressSinks.Notebook(TimeSpan.Zero));
            for (int i = 0; i < 3; i++) { p.SetMetric("loss", 0.5 / (i + 1)); p.Advance(); }
            return 0;
        });
        Assert.Equal(4, log.Count);
        Assert.StartsWith("display <div class=\"roentgen-progress\"><progress value=\"1\" max=\"100\"", log[0]);
        Assert.All(log.Skip(1), l => Assert.StartsWith("update ", l));
        Assert.Contains("value=\"3\" max=\"100\"", log[^1]);
        Assert.Contains("loss=0.1667", log[^1]);
        Assert.Contains(" done", log[^1]);
    }

    [Fact]
    public void Notebook_sink_throttles_updates_but_always_shows_the_end()
    {
        var log = new List<string>();
        var sink = ProgressSinks.Notebook(TimeSpan.FromHours(1));
        WithFakeNotebook(log, () =>
        {
            using var p = ProgressReporter.Start("sample", total: null, sink: sink);
            for (int i = 0; i < 200; i++) p.Advance();
            return 0;
        });
        Assert.Equal(2, log.Count);
        Assert.Equal(2, ((ProgressSinks.NotebookSink)sink).Renders);
        Assert.Contains("<progress style", log[0]); // unknown total: indeterminate bar
        Assert.Contains("sample 200 it", log[1]);
    }

    [Fact]
    public void Default_picks_the_notebook_sink_only_inside_a_notebook()
    {
        var log = new List<string>();
        Assert.IsType<ProgressSinks.NotebookSink>(WithFakeNotebook(log, ProgressSinks.Default));
        Assert.IsType<LogLineProgressSink>(ProgressSinks.Default());
    }

    [Fact]
    public void Log_sink_throttles_and_writes_the_end()
    {
        var w = new StringWriter();
        using (var p = ProgressReporter.Start("eval", total: 1000, unit: "images", sink: new LogLineProgressSink(w, TimeSpan.FromHours(1))))
            for (int i = 0; i < 1000; i++) p.Advance();
        var lines = w.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("eval 1/1000 images", lines[0]);
        Assert.StartsWith("eval 1000/1000 images", lines[1]);
        Assert.EndsWith(" done", lines[1]);
    }

    [Fact]
    public void Spectre_sink_falls_back_to_log_lines_on_a_non_interactive_console()
    {
        var w = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(w), Interactive = InteractionSupport.No, Ansi = AnsiSupport.No });
        var sink = ProgressSinks.SpectreConsole(console);
        Assert.IsType<LogLineProgressSink>(sink);
        Func<IProgressSink> factory = ProgressSinks.SpectreConsole; // what the CLI installs as ProgressReporter.SinkFactory
        using (var fromFactory = factory()) Assert.IsType<LogLineProgressSink>(fromFactory); // stderr is redirected under the test runner
        using (var p = ProgressReporter.Start("ci-job", total: 5, sink: sink)) p.Advance(5);
        Assert.Contains("ci-job 5/5 it", w.ToString());
    }

    [Fact]
    public void Spectre_sink_draws_a_bar_with_rate_and_metrics_on_an_interactive_console()
    {
        var w = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(w), Interactive = InteractionSupport.Yes, Ansi = AnsiSupport.Yes });
        var sink = ProgressSinks.SpectreConsole(console);
        Assert.IsNotType<LogLineProgressSink>(sink);
        using (var p = ProgressReporter.Start("fit", total: 10, unit: "steps", sink: sink))
            for (int i = 0; i < 10; i++) { p.SetMetric("loss", 0.25); p.Advance(); }
        var text = w.ToString();
        Assert.Contains("fit", text);
        Assert.Contains("10/10 steps", text);
        Assert.Contains("steps/s", text);
        Assert.Contains("loss=0.25", text);
        Assert.Contains("100%", text);
    }

    [Fact]
    public void Progress_html_is_encoded()
    {
        var s = new ProgressState("a<b>", 1, 2, TimeSpan.FromSeconds(1), "it", new Dictionary<string, double>());
        var html = ProgressSinks.ProgressHtml(s);
        Assert.Contains("a&lt;b&gt;", html);
        Assert.Contains("<b>", Display.ToHtml(new HtmlString("<b>")));
    }
}
