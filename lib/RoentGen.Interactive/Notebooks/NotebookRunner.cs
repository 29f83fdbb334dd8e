using System.Collections.Immutable;
using System.Diagnostics;
using System.Reflection;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Scripting;
using RoentGen.Interactive.Notebooks.RunnerGlobals;

namespace RoentGen.Interactive.Notebooks;

/// <summary>
/// Runs the C# cells of a Polyglot notebook headlessly, in order, with Roslyn scripting (state carries
/// from cell to cell; top-level await works), and records Jupyter outputs: console text as stream outputs,
/// a trailing expression as execute_result, <c>display(x)</c> / <c>x.Display()</c> as display_data,
/// exceptions and compile errors as error outputs naming the cell and line. Cells of other kernels are
/// skipped with a note; markdown is copied unchanged.
/// </summary>
/// <remarks>
/// Console output and <see cref="NotebookHost.DisplayHook"/> are process-wide, so one notebook runs at a
/// time per process (others wait).
/// </remarks>
public sealed class NotebookRunner
{
    private static readonly SemaphoreSlim OneAtATime = new(1, 1);

    /// <summary>Namespaces imported into every notebook, as dotnet-interactive's C# kernel does (plus the runner's display).</summary>
    public static IReadOnlyList<string> Imports { get; } =
    [
        "System", "System.Collections", "System.Collections.Generic", "System.Linq", "System.Text", "System.Threading.Tasks",
        typeof(DisplayExtensions).Namespace!,
    ];

    /// <summary>Creates a runner.</summary>
    public NotebookRunner(NotebookRunOptions? options = null) => Options = options ?? new NotebookRunOptions();

    /// <summary>The options of this runner.</summary>
    public NotebookRunOptions Options { get; }

    /// <summary>The default output path for <paramref name="inputPath"/>: "name.executed.ipynb" beside it.</summary>
    public static string DefaultOutputPath(string inputPath)
    {
        var full = Path.GetFullPath(inputPath);
        var name = Path.GetFileName(full);
        var stem = name.EndsWith(".ipynb", StringComparison.OrdinalIgnoreCase) ? name[..^".ipynb".Length] : name;
        return Path.Combine(Path.GetDirectoryName(full)!, stem + ".executed.ipynb");
    }

    /// <summary>Reads a notebook, runs it, and writes the executed notebook atomically (also when cells failed).</summary>
    /// <exception cref="FileNotFoundException">The input does not exist.</exception>
    /// <exception cref="NotebookFormatException">The input is not an nbformat 4 notebook.</exception>
    /// <exception cref="NotebookParameterException">A parameter is unknown or has a value of the wrong type.</exception>
    public async Task<NotebookRunResult> RunFileAsync(string inputPath, string? outputPath = null, CancellationToken cancellationToken = default)
    {
        var notebook = Notebook.Load(inputPath);
        var result = await RunAsync(notebook, inputPath, cancellationToken).ConfigureAwait(false);
        result.Notebook.Save(outputPath ?? DefaultOutputPath(inputPath));
        return result;
    }

    /// <summary>
    /// Runs a notebook in place: injects parameters, clears old outputs, runs the cells, and returns the
    /// notebook with its outputs and each cell's outcome. <paramref name="notebookPath"/> (optional) is where
    /// relative <c>#r</c> paths are resolved (the current directory when null).
    /// </summary>
    /// <exception cref="NotebookParameterException">A parameter is unknown or has a value of the wrong type.</exception>
    public async Task<NotebookRunResult> RunAsync(Notebook notebook, string? notebookPath = null, CancellationToken cancellationToken = default)
    {
        NotebookParameters.Inject(notebook, Options.Parameters);
        var folder = notebookPath is null ? Environment.CurrentDirectory : Path.GetDirectoryName(Path.GetFullPath(notebookPath))!;
        var workingDirectory = Options.WorkingDirectory is { } wd ? Path.GetFullPath(wd) : null;
        if (workingDirectory is not null && !Directory.Exists(workingDirectory))
            throw new DirectoryNotFoundException($"working directory for the notebook not found: {workingDirectory}");

        await OneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        var previousHook = NotebookHost.DisplayHook;
        var previousDirectory = workingDirectory is null ? null : Environment.CurrentDirectory;
        var collector = new CellOutputCollector();
        try
        {
            NotebookHost.DisplayHook = collector.Display;
            if (workingDirectory is not null) Environment.CurrentDirectory = workingDirectory;
            return await RunCellsAsync(notebook, folder, collector, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            NotebookHost.DisplayHook = previousHook;
            if (previousDirectory is not null) RestoreDirectory(previousDirectory);
            OneAtATime.Release();
        }
    }

    private static void RestoreDirectory(string previous)
    {
        try
        {
            Environment.CurrentDirectory = previous;
        }
        catch (IOException)
        {
            // The previous directory was removed while the notebook ran: stay where the notebook ran.
        }
    }

    private async Task<NotebookRunResult> RunCellsAsync(Notebook notebook, string folder, CellOutputCollector collector, CancellationToken ct)
    {
        var scriptOptions = BaseScriptOptions();
        var defaultKernel = notebook.DefaultKernelName;
        notebook.EnsureCellIds();
        foreach (var c in notebook.Cells.Where(c => c.IsCode))
        {
            c.Outputs.Clear();
            c.ExecutionCount = null;
        }

        var results = new List<CellRunResult>();
        var globals = new NotebookGlobals();
        ScriptState<object>? state = null;
        var executionCount = 0;
        string? stopReason = null;

        for (var i = 0; i < notebook.Cells.Count; i++)
        {
            var cell = notebook.Cells[i];
            CellRunResult result;
            if (!cell.IsCode)
            {
                result = new CellRunResult(i, cell.Id, cell.CellType, CellRunStatus.NotCode, TimeSpan.Zero, null);
            }
            else if (CellPreprocessor.KernelOf(cell, defaultKernel) is var kernel && !CellPreprocessor.IsCSharp(kernel))
            {
                var why = $"skipped: the headless runner runs C# cells only (this cell's kernel is '{kernel}')";
                cell.Outputs.Add(NotebookOutput.Stream("stderr", why + "\n"));
                result = new CellRunResult(i, cell.Id, kernel, CellRunStatus.Skipped, TimeSpan.Zero, why);
            }
            else if (stopReason is not null)
            {
                result = new CellRunResult(i, cell.Id, "csharp", CellRunStatus.NotRun, TimeSpan.Zero, stopReason);
            }
            else
            {
                Options.CellStarting?.Invoke(i, cell);
                cell.ExecutionCount = ++executionCount;
                var clock = Stopwatch.StartNew();
                collector.StartCell(cell.Outputs);
                CellOutcome outcome;
                try
                {
                    outcome = await RunCellAsync(cell, i, state, globals, scriptOptions, folder, collector, ct).ConfigureAwait(false);
                }
                finally
                {
                    collector.StopCell();
                }
                state = outcome.State ?? state;
                scriptOptions = outcome.Options;
                result = new CellRunResult(i, cell.Id, "csharp", outcome.Status, clock.Elapsed, outcome.Message);
                if (outcome.Status == CellRunStatus.TimedOut)
                    stopReason = $"not run: cell {i + 1} timed out";
                else if (outcome.Status == CellRunStatus.Failed && !Options.KeepGoing)
                    stopReason = $"not run: cell {i + 1} failed";
            }
            results.Add(result);
            Options.CellFinished?.Invoke(result);
        }
        return new NotebookRunResult(notebook, results);
    }

    private static ScriptOptions BaseScriptOptions()
    {
        ScriptReferences.InstallResolver();
        return ScriptOptions.Default
            .WithReferences(ScriptReferences.References)
            .WithImports(Imports)
            .WithEmitDebugInformation(true)
            .WithFileEncoding(Encoding.UTF8) // without it, emitting debug information fails with CS8055
            .WithAllowUnsafe(true)
            .WithOptimizationLevel(OptimizationLevel.Debug);
    }

    private sealed record CellOutcome(CellRunStatus Status, string? Message, ScriptState<object>? State, ScriptOptions Options);

    private async Task<CellOutcome> RunCellAsync(NotebookCell cell, int index, ScriptState<object>? state, NotebookGlobals globals,
        ScriptOptions options, string folder, CellOutputCollector collector, CancellationToken ct)
    {
        var cellNumber = index + 1;
        var pre = CellPreprocessor.Process(cell.Source, folder);
        foreach (var note in pre.Notes) collector.Write("stderr", $"note: {note}\n");
        if (pre.Error is { } directive)
        {
            var message = $"cell {cellNumber}, line {directive.Line}: {directive.Message}";
            collector.Add(NotebookOutput.Error("DirectiveError", message, [message]));
            return new CellOutcome(CellRunStatus.Failed, message, null, options);
        }
        if (pre.References.Count > 0) options = options.AddReferences(pre.References);

        var cellOptions = options.WithFilePath(CellFile(cellNumber));
        var script = state is null
            ? CSharpScript.Create(pre.Code, cellOptions, typeof(NotebookGlobals))
            : state.Script.ContinueWith(pre.Code, cellOptions);

        var errors = script.Compile(ct).Where(d => d.Severity == DiagnosticSeverity.Error).ToImmutableArray();
        if (errors.Length > 0)
        {
            var error = CompilationError(errors, cellNumber);
            collector.Add(error);
            return new CellOutcome(CellRunStatus.Failed, error.EValue, null, options);
        }

        var originalOut = Console.Out;
        var originalError = Console.Error;
        Console.SetOut(new CellOutputCollector.StreamWriter(collector, "stdout"));
        Console.SetError(new CellOutputCollector.StreamWriter(collector, "stderr"));
        ScriptState<object> next;
        try
        {
            // Task.Run: a cell that blocks without awaiting must not block the timeout below.
            var run = Task.Run(() => state is null
                ? script.RunAsync(globals, _ => true, ct)
                : script.RunFromAsync(state, _ => true, ct), ct);
            if (Options.TimeoutPerCell is { } timeout)
            {
                var finished = await Task.WhenAny(run, Task.Delay(timeout, ct)).ConfigureAwait(false);
                if (finished != run)
                {
                    ct.ThrowIfCancellationRequested();
                    var message = $"cell {cellNumber} did not finish within the per-cell timeout of {timeout.TotalSeconds:0.###} s. " +
                                  ".NET cannot abort a running thread, so the cell's code may still be running in the background of this process; the run stops here.";
                    collector.Add(NotebookOutput.Error("TimeoutError", message, [message]));
                    return new CellOutcome(CellRunStatus.TimedOut, message, null, options);
                }
            }
            next = await run.ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Script exceptions come back in the state; this is the runner's own failure (e.g. an assembly that cannot load).
            var error = RuntimeError(e, cellNumber);
            collector.Add(error);
            return new CellOutcome(CellRunStatus.Failed, error.EValue, null, options);
        }
        finally
        {
            Console.Out.Flush();
            Console.SetOut(originalOut);
            Console.SetError(originalError);
        }

        if (next.Exception is { } exception)
        {
            var error = RuntimeError(exception, cellNumber);
            collector.Add(error);
            return new CellOutcome(CellRunStatus.Failed, error.EValue, next, options);
        }

        // `display(x)` as the last line returns its handle: that is not a result worth showing.
        if (HasTrailingExpression(script.GetCompilation()) && next.ReturnValue is not IDisplayHandle)
        {
            collector.Add(new NotebookOutput
            {
                OutputType = "execute_result",
                ExecutionCount = cell.ExecutionCount,
                Data = RunnerMimeBundle.Build(next.ReturnValue),
            });
        }
        return new CellOutcome(CellRunStatus.Succeeded, null, next, options);
    }

    // A submission has a value when it ends in an expression without a semicolon whose type is not void.
    private static bool HasTrailingExpression(Compilation compilation)
    {
        var tree = compilation.SyntaxTrees.LastOrDefault();
        if (tree?.GetRoot() is not CompilationUnitSyntax root) return false;
        if (root.Members.LastOrDefault() is not GlobalStatementSyntax { Statement: ExpressionStatementSyntax statement }
            || !statement.SemicolonToken.IsMissing) return false;
        var type = compilation.GetSemanticModel(tree).GetTypeInfo(statement.Expression).Type;
        return type is not null && type.SpecialType != SpecialType.System_Void;
    }

    private static string CellFile(int cellNumber) => $"cell-{cellNumber}";

    private static NotebookOutput CompilationError(ImmutableArray<Diagnostic> errors, int cellNumber)
    {
        var lines = errors.Select(d =>
        {
            var span = d.Location.GetLineSpan();
            return $"cell {cellNumber}, line {span.StartLinePosition.Line + 1}, column {span.StartLinePosition.Character + 1}: error {d.Id}: {d.GetMessage()}";
        }).ToList();
        var evalue = errors.Length == 1 ? lines[0] : $"{lines[0]} (and {errors.Length - 1} more)";
        return NotebookOutput.Error("CompilationError", evalue, lines);
    }

    private static NotebookOutput RuntimeError(Exception exception, int cellNumber)
    {
        while (exception is TargetInvocationException { InnerException: { } inner }) exception = inner;
        if (exception is AggregateException { InnerExceptions.Count: 1 } agg) exception = agg.InnerExceptions[0];

        // The innermost frame in notebook code: "cell-N" files carry the cell's own line numbers.
        var where = $"cell {cellNumber}";
        foreach (var frame in new StackTrace(exception, fNeedFileInfo: true).GetFrames())
        {
            if (frame.GetFileName() is { } file && file.StartsWith("cell-", StringComparison.Ordinal) && frame.GetFileLineNumber() > 0)
            {
                where = $"cell {file["cell-".Length..]}, line {frame.GetFileLineNumber()}";
                break;
            }
        }
        var typeName = exception.GetType().FullName ?? exception.GetType().Name;
        var traceback = new List<string> { $"{typeName}: {exception.Message}", $"   at {where}" };
        traceback.AddRange(exception.ToString().Split('\n').Skip(1)
            .Select(l => l.TrimEnd('\r'))
            .TakeWhile(l => !l.Contains("Microsoft.CodeAnalysis.Scripting", StringComparison.Ordinal)));
        return NotebookOutput.Error(typeName, $"{exception.Message} ({where})", traceback);
    }
}
