using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Html;
using RoentGen.Platform;
using Spectre.Console;

namespace RoentGen.Interactive;

/// <summary>The built-in progress sinks.</summary>
public static class ProgressSinks
{
    /// <summary>How often log-line sinks write by default (<see cref="LogLineProgressSink.DefaultInterval"/>).</summary>
    public static TimeSpan LogInterval { get => LogLineProgressSink.DefaultInterval; set => LogLineProgressSink.DefaultInterval = value; }

    /// <summary>How often the notebook sink refreshes its display by default.</summary>
    public static TimeSpan NotebookInterval { get; set; } = TimeSpan.FromSeconds(0.5);

    /// <summary>
    /// The sink used when no host chose one: an updating HTML progress bar inside a notebook
    /// (<see cref="NotebookHost.IsNotebook"/>), else log lines on standard error.
    /// </summary>
    public static IProgressSink Default() =>
        NotebookHost.IsNotebook ? Notebook() : new LogLineProgressSink(Console.Error, LogInterval);

    /// <summary>Discards progress.</summary>
    public static IProgressSink None() => new NullProgressSink();

    /// <summary>
    /// A live Spectre.Console progress bar on standard error (description, bar, percentage, elapsed, remaining,
    /// rate and metrics) for the CLI: install with <c>ProgressReporter.SinkFactory = ProgressSinks.SpectreConsole</c>.
    /// Falls back to throttled log lines when standard error is redirected or the console is not interactive
    /// (CI), and when another live bar is already showing.
    /// </summary>
    public static IProgressSink SpectreConsole()
    {
        if (Console.IsErrorRedirected) return new LogLineProgressSink(Console.Error, LogInterval);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return SpectreConsole(console);
    }

    /// <summary>A Spectre.Console progress bar on a given console (log lines on its writer when it is not interactive).</summary>
    public static IProgressSink SpectreConsole(IAnsiConsole console)
    {
        if (!console.Profile.Capabilities.Interactive || !console.Profile.Capabilities.Ansi || SpectreBarSink.Active > 0)
            return new LogLineProgressSink(console.Profile.Out.Writer, LogInterval);
        return new SpectreBarSink(console);
    }

    /// <summary>
    /// An HTML progress element shown with <see cref="NotebookHost.Display"/> and updated in place through the
    /// returned <see cref="IDisplayHandle"/> at most every <paramref name="interval"/> (default
    /// <see cref="NotebookInterval"/>), and once at the end.
    /// </summary>
    public static IProgressSink Notebook(TimeSpan? interval = null) => new NotebookSink(interval ?? NotebookInterval);

    /// <summary>The HTML the notebook sink shows for a state.</summary>
    public static string ProgressHtml(ProgressState state, bool done = false)
    {
        var bar = state.Total is long t && t > 0
            ? $"<progress value=\"{Math.Min(state.Done, t)}\" max=\"{t}\" style=\"width: 320px\"></progress>"
            : "<progress style=\"width: 320px\"></progress>";
        var text = WebUtility.HtmlEncode(state + (done ? " done" : ""));
        return $"<div class=\"roentgen-progress\">{bar} <code>{text}</code></div>";
    }

    /// <summary>Shows an HTML progress element in a notebook and updates it in place, throttled.</summary>
    public sealed class NotebookSink(TimeSpan interval) : IProgressSink
    {
        private readonly object _gate = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private IDisplayHandle? _handle;
        private bool _shown;
        private TimeSpan _last;

        /// <summary>How many times the display was created or updated (for diagnostics and tests).</summary>
        public int Renders { get; private set; }

        /// <inheritdoc />
        public void Report(ProgressState state)
        {
            lock (_gate)
            {
                var now = _clock.Elapsed;
                if (_shown && now - _last < interval) return;
                _last = now;
                Show(new HtmlString(ProgressHtml(state)));
            }
        }

        /// <inheritdoc />
        public void Complete(ProgressState state)
        {
            lock (_gate) Show(new HtmlString(ProgressHtml(state, done: true)));
        }

        private void Show(HtmlString html)
        {
            Renders++;
            if (!_shown)
            {
                _shown = true;
                _handle = NotebookHost.Display(html);
            }
            else _handle?.Update(html);
        }

        /// <inheritdoc />
        public void Dispose() { }
    }

    // Spectre's live display is pull-based (it runs a callback until done), so it runs on a background task
    // and polls the latest state pushed by Report.
    private sealed class SpectreBarSink : IProgressSink
    {
        internal static int Active;
        private readonly IAnsiConsole _console;
        private readonly object _gate = new();
        private ProgressState? _latest;
        private volatile bool _finished;
        private Task? _loop;

        public SpectreBarSink(IAnsiConsole console)
        {
            _console = console;
            Interlocked.Increment(ref Active);
        }

        public void Report(ProgressState state)
        {
            lock (_gate)
            {
                _latest = state;
                _loop ??= Task.Run(Run);
            }
        }

        public void Complete(ProgressState state)
        {
            lock (_gate)
            {
                _latest = state;
                _loop ??= Task.Run(Run);
            }
            _finished = true;
            try { _loop.Wait(TimeSpan.FromSeconds(5)); }
            catch (AggregateException) { Console.Error.WriteLine(state + " done"); }
        }

        private async Task Run()
        {
            await _console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                    new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(async ctx =>
                {
                    ProgressTask? task = null;
                    while (true)
                    {
                        bool last = _finished;
                        ProgressState? s;
                        lock (_gate) s = _latest;
                        if (s is not null)
                        {
                            task ??= ctx.AddTask(Markup.Escape(s.Title), autoStart: true, maxValue: s.Total ?? 1);
                            task.IsIndeterminate = s.Total is null;
                            task.Description = Describe(s);
                            task.Value = s.Total is null ? 0 : Math.Min(s.Done, s.Total.Value);
                        }
                        if (last)
                        {
                            if (task is not null) { if (s?.Total is null) task.Value = task.MaxValue; task.StopTask(); }
                            break;
                        }
                        await Task.Delay(100);
                    }
                });
        }

        private static string Describe(ProgressState s)
        {
            var total = s.Total is long t ? $"/{t}" : "";
            var metrics = string.Join(" ", s.Metrics.Select(kv => $"{kv.Key}={kv.Value.ToString("G4", CultureInfo.InvariantCulture)}"));
            var rate = s.Rate.ToString("F1", CultureInfo.InvariantCulture);
            return Markup.Escape(s.Title) + $" [grey]{s.Done}{total} {Markup.Escape(s.Unit)} · {rate} {Markup.Escape(s.Unit)}/s[/]"
                + (metrics.Length > 0 ? $" [aqua]{Markup.Escape(metrics)}[/]" : "");
        }

        public void Dispose()
        {
            if (!_finished && _latest is { } s) Complete(s);
            Interlocked.Decrement(ref Active);
        }
    }
}
