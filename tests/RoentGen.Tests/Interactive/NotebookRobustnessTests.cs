using System.CommandLine;
using System.Diagnostics;
using RoentGen.Cli.Commands;
using RoentGen.Interactive.Notebooks;
using RoentGen.Tests.Cli;
using Xunit.Abstractions;

namespace RoentGen.Tests.Interactive;

/// <summary>
/// Issue #12, root cause 7: the notebook runner in the real kernel under hostile cells. Output capture is linear in the
/// output size, and a cell that kills its kernel (Environment.Exit, a stack overflow, an exception on a background
/// thread) still leaves an output notebook with that cell failed and saying why, and a non-zero exit.
/// </summary>
[Collection(ProcessStateCollection.Name)]
public sealed class NotebookRobustnessTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-nbrobust");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private async Task<(NotebookRunResult Result, Notebook Written, string Input)> Run(params NotebookCell[] cells)
    {
        var nb = Notebook.CreatePolyglot();
        nb.Cells.AddRange(cells);
        var input = Path.Combine(_dir, $"nb-{Guid.NewGuid():N}.ipynb");
        nb.Save(input);
        var output = NotebookRunner.DefaultOutputPath(input);
        var result = await new NotebookRunner(new NotebookRunOptions { TimeoutPerCell = TimeSpan.FromSeconds(60) }).RunFileAsync(input, output);
        return (result, Notebook.Load(output), input);
    }

    // The cell that killed the kernel: failed, with one error output that says the kernel died and why; later cells not run.
    private static NotebookOutput AssertKernelDiedIn(NotebookRunResult result, Notebook written, int cell)
    {
        Assert.True(result.AnyFailed);
        Assert.Equal(CellRunStatus.Failed, result.Cells[cell].Status);
        Assert.Equal(CellRunStatus.Succeeded, result.Cells[cell - 1].Status);
        Assert.Equal(CellRunStatus.NotRun, result.Cells[cell + 1].Status);
        var error = Assert.Single(written.Cells[cell].Outputs, o => o.OutputType == "error");
        Assert.Equal("KernelExited", error.EName);
        Assert.Contains("kernel", error.EValue);
        Assert.Contains("died", error.EValue);
        Assert.Empty(written.Cells[cell + 1].Outputs);
        Assert.Equal("before\n", written.Cells[cell - 1].Outputs.Single().Text);
        return error;
    }

    [Fact]
    public async Task A_hundred_thousand_printed_lines_are_captured_completely()
    {
        var clock = Stopwatch.StartNew();
        var (result, nb, _) = await Run(NotebookCell.Code("for (var i = 0; i < 100_000; i++) Console.WriteLine(i);"));
        clock.Stop();
        log.WriteLine($"100k printed lines: the run took {clock.Elapsed.TotalSeconds:F1} s (kernel start included)");
        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        var text = string.Concat(nb.Cells[0].Outputs.Where(o => o.OutputType == "stream" && o.Name == "stdout").Select(o => o.Text));
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(100_000, lines.Length);
        Assert.Equal(Enumerable.Range(0, 100_000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), lines);
    }

    [Fact]
    public async Task A_cell_calling_Environment_Exit_fails_and_the_output_notebook_is_written()
    {
        var (result, nb, _) = await Run(
            NotebookCell.Code("Console.WriteLine(\"before\");"),
            NotebookCell.Code("Environment.Exit(3);"),
            NotebookCell.Code("Console.WriteLine(\"after\");"));
        var error = AssertKernelDiedIn(result, nb, 1);
        Assert.Contains("exit code 3", error.EValue);
    }

    [Fact]
    public async Task A_stack_overflow_fails_the_cell_and_says_so()
    {
        var (result, nb, _) = await Run(
            NotebookCell.Code("Console.WriteLine(\"before\");"),
            NotebookCell.Code("int Down(int n) => Down(n + 1) + 1;\nDown(0);"),
            NotebookCell.Code("Console.WriteLine(\"after\");"));
        var error = AssertKernelDiedIn(result, nb, 1);
        Assert.Contains("stack overflow", error.EValue, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task An_exception_on_a_background_thread_fails_the_cell_and_names_the_exception()
    {
        var (result, nb, _) = await Run(
            NotebookCell.Code("Console.WriteLine(\"before\");"),
            NotebookCell.Code("new System.Threading.Thread(() => throw new InvalidOperationException(\"boom from a thread\")).Start();\nSystem.Threading.Thread.Sleep(20_000);"),
            NotebookCell.Code("Console.WriteLine(\"after\");"));
        var error = AssertKernelDiedIn(result, nb, 1);
        Assert.Contains("InvalidOperationException: boom from a thread", error.EValue);
    }

    [Fact]
    public async Task Notebook_run_exits_non_zero_and_writes_the_notebook_when_the_kernel_dies()
    {
        var nb = Notebook.CreatePolyglot();
        nb.Cells.Add(NotebookCell.Code("Console.WriteLine(\"before\");"));
        nb.Cells.Add(NotebookCell.Code("Environment.Exit(0);"));
        nb.Cells.Add(NotebookCell.Code("Console.WriteLine(\"after\");"));
        var input = Path.Combine(_dir, "exits.ipynb");
        nb.Save(input);
        var inputHash = CliCases.Hash(input);
        var output = Path.Combine(_dir, "out", "exits.executed.ipynb");

        var (rc, _, _) = CliCases.Invoke(new RootCommand { NotebookCommand.Build() }, "notebook", "run", input, "--out", output);

        Assert.Equal(1, rc);   // a failed cell, as for any cell that throws (exit code 0 from the cell does not hide it)
        Assert.Equal(inputHash, CliCases.Hash(input));
        var written = Notebook.Load(output);
        Assert.Equal("KernelExited", Assert.Single(written.Cells[1].Outputs).EName);
    }
}
