using System.Diagnostics;
using System.Text.Json.Nodes;

namespace RoentGen.Interactive.Notebooks;

/// <summary>
/// Runs a Polyglot notebook headlessly in the real .NET Interactive kernel (<see cref="KernelProcess"/>: the
/// dotnet-interactive tool that VS Code and Jupyter run), cell by cell in order, and records Jupyter outputs:
/// console text as stream outputs, a cell's value as execute_result, <c>display(x)</c> as display_data (updated in
/// place when the cell updates it), failures as error outputs. Markdown is copied unchanged; each code cell goes to
/// the kernel its metadata names (C# unless it says otherwise).
/// </summary>
/// <remarks>
/// Each run starts a fresh kernel in the notebook's folder (or <see cref="NotebookRunOptions.WorkingDirectory"/>), as
/// VS Code does, so relative paths in cells start there. A cell that exceeds <see cref="NotebookRunOptions.TimeoutPerCell"/>
/// is stopped by killing the kernel; the cells after it are not run.
/// </remarks>
public sealed class NotebookRunner
{
    /// <summary>Creates a runner.</summary>
    public NotebookRunner(NotebookRunOptions? options = null) => Options = options ?? new NotebookRunOptions();

    /// <summary>The options of this runner.</summary>
    public NotebookRunOptions Options { get; }

    /// <summary>NAME.executed.ipynb beside the input.</summary>
    public static string DefaultOutputPath(string inputPath)
    {
        var full = Path.GetFullPath(inputPath);
        var name = Path.GetFileName(full);
        var stem = name.EndsWith(".ipynb", StringComparison.OrdinalIgnoreCase) ? name[..^".ipynb".Length] : name;
        return Path.Combine(Path.GetDirectoryName(full)!, stem + ".executed.ipynb");
    }

    /// <summary>Runs a notebook file and writes it with its outputs (also when a cell failed), atomically.</summary>
    /// <exception cref="NotebookFormatException">The file is not a notebook.</exception>
    /// <exception cref="NotebookParameterException">A parameter is unknown or of the wrong type.</exception>
    /// <exception cref="KernelUnavailableException">The kernel could not be started.</exception>
    public async Task<NotebookRunResult> RunFileAsync(string inputPath, string? outputPath = null, CancellationToken cancellationToken = default)
    {
        var notebook = Notebook.Load(inputPath);
        var result = await RunAsync(notebook, inputPath, cancellationToken).ConfigureAwait(false);
        result.Notebook.Save(outputPath ?? DefaultOutputPath(inputPath));
        return result;
    }

    /// <summary>Runs a notebook in place (its outputs are replaced); <paramref name="notebookPath"/> sets the kernel's folder.</summary>
    public async Task<NotebookRunResult> RunAsync(Notebook notebook, string? notebookPath = null, CancellationToken cancellationToken = default)
    {
        NotebookParameters.Inject(notebook, Options.Parameters);
        var folder = Options.WorkingDirectory is { } wd ? Path.GetFullPath(wd)
            : notebookPath is null ? Environment.CurrentDirectory : Path.GetDirectoryName(Path.GetFullPath(notebookPath))!;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"working directory for the notebook not found: {folder}");

        var defaultKernel = notebook.DefaultKernelName;
        notebook.EnsureCellIds();
        foreach (var c in notebook.Cells.Where(c => c.IsCode))
        {
            c.Outputs.Clear();
            c.ExecutionCount = null;
        }

        await using var kernel = KernelProcess.Start(folder, Options.KernelCommand, Options.Environment);
        var results = new List<CellRunResult>();
        var executionCount = 0;
        string? stopReason = null;
        for (var i = 0; i < notebook.Cells.Count; i++)
        {
            var cell = notebook.Cells[i];
            CellRunResult result;
            var kernelName = cell.KernelNameFromMetadata ?? defaultKernel;
            if (!cell.IsCode)
                result = new CellRunResult(i, cell.Id, cell.CellType, CellRunStatus.NotCode, TimeSpan.Zero, null);
            else if (stopReason is not null)
                result = new CellRunResult(i, cell.Id, kernelName, CellRunStatus.NotRun, TimeSpan.Zero, stopReason);
            else if (string.IsNullOrWhiteSpace(cell.Source))
                result = new CellRunResult(i, cell.Id, kernelName, CellRunStatus.Succeeded, TimeSpan.Zero, null);
            else
            {
                Options.CellStarting?.Invoke(i, cell);
                cell.ExecutionCount = ++executionCount;
                var clock = Stopwatch.StartNew();
                var (status, message) = await RunCellAsync(kernel, cell, kernelName, i + 1, cancellationToken).ConfigureAwait(false);
                result = new CellRunResult(i, cell.Id, kernelName, status, clock.Elapsed, message);
                if (status == CellRunStatus.TimedOut) stopReason = $"not run: cell {i + 1} timed out and its kernel was stopped";
                else if (kernel.HasExited) stopReason = $"not run: the kernel exited during cell {i + 1}";
                else if (status == CellRunStatus.Failed && !Options.KeepGoing) stopReason = $"not run: cell {i + 1} failed";
            }
            results.Add(result);
            Options.CellFinished?.Invoke(result);
        }
        return new NotebookRunResult(notebook, results);
    }

    private async Task<(CellRunStatus, string?)> RunCellAsync(KernelProcess kernel, NotebookCell cell, string kernelName, int cellNumber, CancellationToken ct)
    {
        var outputs = new CellOutputs(cell);
        try
        {
            var final = await kernel.SubmitCodeAsync(cell.Source, kernelName, outputs.Add, Options.TimeoutPerCell, ct).ConfigureAwait(false);
            outputs.Complete();
            if (final.EventType == "CommandSucceeded") return (CellRunStatus.Succeeded, null);
            var message = final.Event["message"]?.GetValue<string>() ?? "the cell failed";
            outputs.AddError(message);
            return (CellRunStatus.Failed, $"cell {cellNumber}: {FirstLine(message)}");
        }
        catch (TimeoutException e)
        {
            outputs.Complete();
            var message = $"cell {cellNumber}: {e.Message}";
            cell.Outputs.Add(NotebookOutput.Error("TimeoutError", message, [message]));
            return (CellRunStatus.TimedOut, message);
        }
        catch (KernelDiedException e)
        {
            // Environment.Exit, a stack overflow or an exception on a background thread ends the kernel process: the cell
            // is failed with what the kernel said on the way out, and the notebook is still written.
            outputs.Complete();
            var message = $"cell {cellNumber}: {e.Message}";
            var trace = new List<string> { message };
            if (e.StandardError.Length > 0) trace.AddRange(e.StandardError.Replace("\r", "").Split('\n'));
            cell.Outputs.Add(NotebookOutput.Error("KernelExited", message, trace));
            return (CellRunStatus.Failed, message);
        }
        catch (KernelUnavailableException e)
        {
            outputs.Complete();
            var message = $"cell {cellNumber}: {e.Message}";
            cell.Outputs.Add(NotebookOutput.Error("KernelExited", message, [message]));
            return (CellRunStatus.Failed, message);
        }
    }

    private static string FirstLine(string s)
    {
        var line = s.Split('\n')[0].Trim();
        return line.Length > 300 ? line[..300] + "..." : line;
    }

    /// <summary>Turns the kernel's events for one cell into that cell's Jupyter outputs.</summary>
    private sealed class CellOutputs(NotebookCell cell)
    {
        private readonly Dictionary<string, NotebookOutput> _byValueId = new(StringComparer.Ordinal);
        private readonly object _gate = new();
        private readonly HashSet<string> _errors = new(StringComparer.Ordinal);
        private readonly HashSet<NotebookOutput> _claimed = new(ReferenceEqualityComparer.Instance);
        // The open stream output and its text so far: appending to a builder keeps capture linear in the output size
        // (string concatenation per event made 100k printed lines quadratic).
        private NotebookOutput? _stream;
        private readonly System.Text.StringBuilder _streamText = new();

        public void Add(KernelEvent e)
        {
            lock (_gate)
            {
                if (e.EventType is not ("StandardOutputValueProduced" or "StandardErrorValueProduced")) CloseStream();
                switch (e.EventType)
                {
                    case "StandardOutputValueProduced":
                        Stream("stdout", PlainText(e.Event));
                        break;
                    case "StandardErrorValueProduced":
                        Stream("stderr", PlainText(e.Event));
                        break;
                    case "DisplayedValueProduced":
                    {
                        var output = new NotebookOutput { OutputType = "display_data", Data = Bundle(e.Event) };
                        if (output.Data.Count == 0) break;
                        cell.Outputs.Add(output);
                        if (e.Event["valueId"]?.GetValue<string>() is { Length: > 0 } id) _byValueId[id] = output;
                        break;
                    }
                    case "DisplayedValueUpdated":
                    {
                        // As in VS Code: the update replaces what the display showed.
                        // dotnet-interactive 1.0.712001 gives updates their own valueId, stable across the updates of one
                        // displayed value but not the one its DisplayedValueProduced carried: an unknown id claims the most
                        // recent display of this cell that no update has claimed yet.
                        var data = Bundle(e.Event);
                        var id = e.Event["valueId"]?.GetValue<string>() ?? "";
                        if (!_byValueId.TryGetValue(id, out var shown)
                            && cell.Outputs.LastOrDefault(o => o.OutputType == "display_data" && !_claimed.Contains(o)) is { } unclaimed)
                        {
                            shown = unclaimed;
                            _claimed.Add(unclaimed);
                            if (id.Length > 0) _byValueId[id] = unclaimed;
                        }
                        if (shown is not null) shown.Data = data;
                        else if (data.Count > 0) cell.Outputs.Add(new NotebookOutput { OutputType = "display_data", Data = data });
                        break;
                    }
                    case "ReturnValueProduced":
                    {
                        var data = Bundle(e.Event);
                        if (data.Count > 0) cell.Outputs.Add(new NotebookOutput { OutputType = "execute_result", ExecutionCount = cell.ExecutionCount, Data = data });
                        break;
                    }
                    case "ErrorProduced":
                        AddError(e.Event["message"]?.GetValue<string>() ?? PlainText(e.Event));
                        break;
                }
            }
        }

        public void AddError(string message)
        {
            lock (_gate)
            {
                CloseStream();
                if (!_errors.Add(message)) return;
                var lines = message.Replace("\r", "").Split('\n').ToList();
                var first = lines[0].Trim();
                // "System.InvalidOperationException: text" -> ename System.InvalidOperationException; compile errors keep "Error".
                var colon = first.IndexOf(": ", StringComparison.Ordinal);
                var ename = colon > 0 && !first[..colon].Contains(' ') && first[..colon].EndsWith("Exception", StringComparison.Ordinal) ? first[..colon] : "Error";
                var evalue = ename == "Error" ? first : first[(colon + 2)..];
                cell.Outputs.Add(NotebookOutput.Error(ename, evalue, lines));
            }
        }

        private void Stream(string name, string text)
        {
            if (text.Length == 0) return;
            if (_stream is not null && cell.Outputs.Count > 0 && ReferenceEquals(cell.Outputs[^1], _stream) && _stream.Name == name)
            {
                _streamText.Append(text);
                return;
            }
            CloseStream();
            if (cell.Outputs.Count > 0 && cell.Outputs[^1] is { OutputType: "stream" } last && last.Name == name)
            {
                _stream = last;
                _streamText.Append(last.Text).Append(text);
                return;
            }
            _stream = NotebookOutput.Stream(name, "");
            _streamText.Append(text);
            cell.Outputs.Add(_stream);
        }

        // Writes the open stream's text into its output.
        private void CloseStream()
        {
            if (_stream is null) return;
            _stream.Text = _streamText.ToString();
            _stream = null;
            _streamText.Clear();
        }

        /// <summary>Writes pending stream text into the cell's outputs; called when the cell ends, however it ends.</summary>
        public void Complete()
        {
            lock (_gate) CloseStream();
        }

        private static string PlainText(JsonObject e) =>
            e["formattedValues"] is JsonArray values
                ? string.Concat(values.OfType<JsonObject>().Where(v => v["mimeType"]?.GetValue<string>() == "text/plain").Select(v => v["value"]?.GetValue<string>() ?? ""))
                : "";

        private static JsonObject Bundle(JsonObject e)
        {
            var data = new JsonObject();
            if (e["formattedValues"] is not JsonArray values) return data;
            foreach (var v in values.OfType<JsonObject>())
            {
                if (v["suppressDisplay"]?.GetValue<bool>() == true) continue;
                if (v["mimeType"]?.GetValue<string>() is { Length: > 0 } mime) data[mime] = v["value"]?.GetValue<string>() ?? "";
            }
            return data;
        }
    }
}
