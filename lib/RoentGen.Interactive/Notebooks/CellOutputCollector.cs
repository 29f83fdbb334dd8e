using System.Text;

namespace RoentGen.Interactive.Notebooks;

/// <summary>
/// Collects the outputs of the running cell in order: console text becomes stream outputs (consecutive
/// writes to one stream are merged), display calls become display_data whose handle replaces it later.
/// Thread-safe: background work of a cell may write or display too.
/// </summary>
internal sealed class CellOutputCollector
{
    private readonly object _gate = new();
    private List<NotebookOutput> _outputs = new();

    /// <summary>Directs further outputs to a cell's list.</summary>
    public void StartCell(List<NotebookOutput> outputs)
    {
        lock (_gate) _outputs = outputs;
    }

    /// <summary>Stops collecting (writes after this go nowhere).</summary>
    public void StopCell()
    {
        lock (_gate) _outputs = new();
    }

    public void Write(string stream, string text)
    {
        if (text.Length == 0) return;
        lock (_gate)
        {
            if (_outputs.Count > 0 && _outputs[^1] is { OutputType: "stream" } last && last.Name == stream)
                last.Text += text;
            else
                _outputs.Add(NotebookOutput.Stream(stream, text));
        }
    }

    public IDisplayHandle Display(object? value)
    {
        var output = new NotebookOutput { OutputType = "display_data", Data = RunnerMimeBundle.Build(value) };
        lock (_gate) _outputs.Add(output);
        return new Handle(this, output);
    }

    public void Add(NotebookOutput output)
    {
        lock (_gate) _outputs.Add(output);
    }

    private sealed class Handle(CellOutputCollector owner, NotebookOutput output) : IDisplayHandle
    {
        public void Update(object value)
        {
            var data = RunnerMimeBundle.Build(value);
            lock (owner._gate) output.Data = data;
        }
    }

    /// <summary>A TextWriter that feeds one stream of the collector.</summary>
    public sealed class StreamWriter(CellOutputCollector owner, string stream) : TextWriter
    {
        public override Encoding Encoding => Encoding.UTF8;
        public override void Write(char value) => owner.Write(stream, value.ToString());
        public override void Write(string? value) => owner.Write(stream, value ?? "");
        public override void Write(char[] buffer, int index, int count) => owner.Write(stream, new string(buffer, index, count));
        public override void WriteLine(string? value) => owner.Write(stream, (value ?? "") + NewLine);
    }
}
