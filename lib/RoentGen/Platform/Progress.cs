using System.Diagnostics;

namespace RoentGen.Platform;

/// <summary>A snapshot of a long job: how far it is, how fast, and its latest metrics.</summary>
/// <param name="Title">What is running.</param>
/// <param name="Done">Units done.</param>
/// <param name="Total">Units in all, when known.</param>
/// <param name="Elapsed">Time since the start.</param>
/// <param name="Unit">The unit's name (steps, images, ...).</param>
/// <param name="Metrics">Latest values, e.g. loss.</param>
public sealed record ProgressState(string Title, long Done, long? Total, TimeSpan Elapsed, string Unit,
    IReadOnlyDictionary<string, double> Metrics)
{
    /// <summary>Units per second so far.</summary>
    public double Rate => Elapsed.TotalSeconds > 0 ? Done / Elapsed.TotalSeconds : 0;

    /// <summary>Estimated time left, when the total is known and the rate positive.</summary>
    public TimeSpan? Eta => Total is long t && Rate > 0 ? TimeSpan.FromSeconds(Math.Max(0, t - Done) / Rate) : null;

    /// <summary>Fraction done in [0, 1], when the total is known.</summary>
    public double? Fraction => Total is long t && t > 0 ? Math.Clamp((double)Done / t, 0, 1) : null;

    /// <summary>One line: "title 40/100 steps (12.3 steps/s, ETA 00:05) loss=0.123".</summary>
    public override string ToString()
    {
        var total = Total is long t ? $"/{t}" : "";
        var eta = Eta is TimeSpan e ? $", ETA {e:hh\\:mm\\:ss}" : "";
        var metrics = string.Join(" ", Metrics.Select(kv => $"{kv.Key}={kv.Value:G4}"));
        return $"{Title} {Done}{total} {Unit} ({Rate:F1} {Unit}/s{eta}) {metrics}".TrimEnd();
    }
}

/// <summary>Where progress goes: a console bar, a notebook display, a log.</summary>
public interface IProgressSink : IDisposable
{
    /// <summary>Called on every update (sinks throttle themselves).</summary>
    void Report(ProgressState state);
    /// <summary>Called once at the end.</summary>
    void Complete(ProgressState state);
}

/// <summary>
/// The one progress abstraction of the library: long jobs call <see cref="Start"/>, then
/// <see cref="Advance"/> and <see cref="SetMetric"/>. The sink is chosen by the host: the CLI sets
/// <see cref="SinkFactory"/> to a console bar, notebooks get an updating display.
/// </summary>
public sealed class ProgressReporter : IDisposable
{
    private readonly IProgressSink _sink;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Dictionary<string, double> _metrics = new();
    private readonly object _gate = new();
    private long _done;
    private bool _completed;

    /// <summary>Chooses the sink for new reporters. Hosts replace it (the CLI with a console bar, a notebook with an updating display); null means log lines on standard error.</summary>
    public static Func<IProgressSink>? SinkFactory { get; set; }

    private ProgressReporter(string title, long? total, string unit, IProgressSink sink)
    {
        Title = title; Total = total; Unit = unit; _sink = sink;
    }

    /// <summary>
    /// Starts reporting a job. Without an explicit sink: the host's <see cref="SinkFactory"/>, else a
    /// <see cref="LogLineProgressSink"/> on standard error.
    /// </summary>
    public static ProgressReporter Start(string title, long? total = null, string unit = "it", IProgressSink? sink = null) =>
        new(title, total, unit, sink ?? SinkFactory?.Invoke() ?? new LogLineProgressSink(Console.Error, LogLineProgressSink.DefaultInterval));

    /// <summary>What is running.</summary>
    public string Title { get; }
    /// <summary>Units in all, when known.</summary>
    public long? Total { get; }
    /// <summary>The unit's name.</summary>
    public string Unit { get; }
    /// <summary>Units done so far.</summary>
    public long Done => Interlocked.Read(ref _done);

    /// <summary>Adds done units (thread-safe).</summary>
    public void Advance(long units = 1)
    {
        Interlocked.Add(ref _done, units);
        _sink.Report(Snapshot());
    }

    /// <summary>Sets a metric shown next to the bar (e.g. the current loss).</summary>
    public void SetMetric(string name, double value)
    {
        lock (_gate) _metrics[name] = value;
    }

    /// <summary>The current state.</summary>
    public ProgressState Snapshot()
    {
        lock (_gate) return new ProgressState(Title, Done, Total, _clock.Elapsed, Unit, new Dictionary<string, double>(_metrics));
    }

    /// <summary>Marks the job finished (also done by <see cref="Dispose"/>).</summary>
    public void Complete()
    {
        if (_completed) return;
        _completed = true;
        _sink.Complete(Snapshot());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Complete();
        _sink.Dispose();
    }
}

/// <summary>Discards progress.</summary>
public sealed class NullProgressSink : IProgressSink
{
    /// <inheritdoc />
    public void Report(ProgressState state) { }
    /// <inheritdoc />
    public void Complete(ProgressState state) { }
    /// <inheritdoc />
    public void Dispose() { }
}

/// <summary>Writes a line at most every <paramref name="interval"/>, and one at the end: the default sink of the library.</summary>
public sealed class LogLineProgressSink(TextWriter writer, TimeSpan interval) : IProgressSink
{
    private readonly object _gate = new();
    private DateTime _last = DateTime.MinValue;

    /// <summary>How often log-line sinks write by default.</summary>
    public static TimeSpan DefaultInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <inheritdoc />
    public void Report(ProgressState state)
    {
        lock (_gate)
        {
            var now = DateTime.UtcNow;
            if (now - _last < interval) return;
            _last = now;
            writer.WriteLine(state.ToString());
        }
    }

    /// <inheritdoc />
    public void Complete(ProgressState state)
    {
        lock (_gate) writer.WriteLine(state + " done");
    }

    /// <inheritdoc />
    public void Dispose() { }
}
