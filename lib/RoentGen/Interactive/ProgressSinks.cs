namespace RoentGen.Interactive;

/// <summary>The built-in progress sinks.</summary>
public static class ProgressSinks
{
    /// <summary>The sink used when no host chose one: a notebook display inside a notebook, else log lines on standard error.</summary>
    public static IProgressSink Default() => new LogLineSink(Console.Error, TimeSpan.FromSeconds(5));

    /// <summary>Discards progress.</summary>
    public static IProgressSink None() => new NullSink();

    private sealed class NullSink : IProgressSink
    {
        public void Report(ProgressState state) { }
        public void Complete(ProgressState state) { }
        public void Dispose() { }
    }

    /// <summary>Writes a line at most every <paramref name="interval"/>, and one at the end.</summary>
    public sealed class LogLineSink(TextWriter writer, TimeSpan interval) : IProgressSink
    {
        private DateTime _last = DateTime.MinValue;
        /// <inheritdoc />
        public void Report(ProgressState state)
        {
            var now = DateTime.UtcNow;
            if (now - _last < interval) return;
            _last = now;
            writer.WriteLine(state.ToString());
        }
        /// <inheritdoc />
        public void Complete(ProgressState state) => writer.WriteLine(state + " done");
        /// <inheritdoc />
        public void Dispose() { }
    }
}
