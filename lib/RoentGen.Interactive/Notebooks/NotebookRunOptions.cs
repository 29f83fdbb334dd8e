namespace RoentGen.Interactive.Notebooks;

/// <summary>How <see cref="NotebookRunner"/> runs a notebook.</summary>
public sealed record NotebookRunOptions
{
    /// <summary>Values for the variables of the cell tagged "parameters" (name to value text, as given by <c>-p name=value</c>).</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();

    /// <summary>Run all cells even after a cell fails (a timed-out cell still stops the run).</summary>
    public bool KeepGoing { get; init; }

    /// <summary>Longest time one cell may run; null for no limit.</summary>
    public TimeSpan? TimeoutPerCell { get; init; }

    /// <summary>
    /// The current directory while cells run (restored afterwards); null leaves it unchanged. The current
    /// directory is process-wide: the CLI sets it to the notebook's folder (as VS Code does), in-process
    /// callers with other threads may prefer to leave it.
    /// </summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Called before a code cell runs: (0-based cell index, cell).</summary>
    public Action<int, NotebookCell>? CellStarting { get; init; }

    /// <summary>Called after each cell (run, skipped, or not run).</summary>
    public Action<CellRunResult>? CellFinished { get; init; }

    /// <summary>The kernel program and its leading arguments; null finds the pinned dotnet-interactive (<see cref="KernelProcess.FindKernelCommand"/>).</summary>
    public IReadOnlyList<string>? KernelCommand { get; init; }

    /// <summary>
    /// Extra environment variables for the kernel process (e.g. <c>TMPDIR</c>, so that a notebook's scratch folders
    /// land where the caller deletes them); null or empty inherits this process's environment unchanged.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }
}

/// <summary>What happened to one cell.</summary>
public enum CellRunStatus
{
    /// <summary>A markdown or raw cell: copied unchanged.</summary>
    NotCode,
    /// <summary>The cell ran without error.</summary>
    Succeeded,
    /// <summary>The cell failed (compile error, exception, or a directive the runner cannot honour).</summary>
    Failed,
    /// <summary>The cell ran past the per-cell timeout; the run stopped.</summary>
    TimedOut,
    /// <summary>Not reached: an earlier cell failed or timed out.</summary>
    NotRun,
}

/// <summary>The outcome of one cell.</summary>
/// <param name="Index">0-based index of the cell in the executed notebook.</param>
/// <param name="CellId">The cell's id.</param>
/// <param name="Kernel">The kernel the cell belongs to ("csharp", "fsharp", ...; "markdown" for markdown cells).</param>
/// <param name="Status">What happened.</param>
/// <param name="Duration">Time the cell took (zero when not run).</param>
/// <param name="Message">The error, timeout or skip reason, if any.</param>
public sealed record CellRunResult(int Index, string? CellId, string Kernel, CellRunStatus Status, TimeSpan Duration, string? Message)
{
    /// <summary>True for <see cref="CellRunStatus.Failed"/> and <see cref="CellRunStatus.TimedOut"/>.</summary>
    public bool IsFailure => Status is CellRunStatus.Failed or CellRunStatus.TimedOut;
}

/// <summary>The executed notebook and the outcome of each of its cells.</summary>
/// <param name="Notebook">The notebook with outputs (the injected-parameters cell included).</param>
/// <param name="Cells">One result per cell, in order.</param>
public sealed record NotebookRunResult(Notebook Notebook, IReadOnlyList<CellRunResult> Cells)
{
    /// <summary>True when any cell failed or timed out.</summary>
    public bool AnyFailed => Cells.Any(c => c.IsFailure);
}
