using System.Diagnostics;
using RoentGen.Interactive.Notebooks;

namespace RoentGen.Tests.Interactive;

/// <summary>`roentgen notebook run` through the built RoentGen.Cli.dll, as a user runs it (a separate process).</summary>
public sealed class NotebookCommandTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-nbcli");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private (int ExitCode, string Out, string Err) Cli(params string[] args)
    {
        var cliDll = Path.Combine(AppContext.BaseDirectory, "RoentGen.Cli.dll");
        Assert.True(File.Exists(cliDll), $"{cliDll} missing: the test project references RoentGen.Cli, so the build copies it");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
            : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _dir };
        psi.ArgumentList.Add(cliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("roentgen notebook run did not finish within 2 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void Notebook_run_writes_the_executed_notebook_and_exits_by_outcome()
    {
        var nb = Notebook.CreatePolyglot();
        nb.Cells.Add(NotebookCell.Code("int n = 2;", NotebookParameters.ParametersTag));
        nb.Cells.Add(NotebookCell.Code("Console.WriteLine($\"n squared is {n * n}\");\nSystem.IO.File.WriteAllText(\"made-here.txt\", \"\");"));
        nb.Cells.Add(NotebookCell.Code("if (n > 3) throw new ArgumentException(\"n too large\");"));
        var input = Path.Combine(_dir, "notebooks", "square.ipynb");
        Directory.CreateDirectory(Path.GetDirectoryName(input)!);
        nb.Save(input);
        var output = Path.Combine(_dir, "out", "square-run.ipynb");

        var ok = Cli("notebook", "run", input, "--out", output, "-p", "n=3");
        Assert.True(ok.ExitCode == 0, ok.Out + ok.Err);
        Assert.Contains("cell 2", ok.Out); // per-cell progress
        var written = Notebook.Load(output);
        Assert.Equal("n squared is 9\n", written.Cells[2].Outputs.Single().Text);
        Assert.True(File.Exists(Path.Combine(_dir, "notebooks", "made-here.txt")), "cells run in the notebook's folder, as in VS Code");

        var failing = Cli("notebook", "run", input, "-p", "n=4");
        Assert.True(failing.ExitCode == 1, failing.Out + failing.Err);
        Assert.Contains("n too large", failing.Out);
        Assert.True(File.Exists(NotebookRunner.DefaultOutputPath(input)), "the executed notebook is written also when a cell fails");

        var keepGoing = Cli("notebook", "run", input, "-p", "n=4", "--keep-going");
        Assert.True(keepGoing.ExitCode == 0, keepGoing.Out + keepGoing.Err);
    }

    [Fact]
    public void Notebook_run_exits_2_with_a_clear_message_on_bad_arguments()
    {
        var missing = Cli("notebook", "run", Path.Combine(_dir, "absent.ipynb"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("absent.ipynb", missing.Err);

        var malformed = Path.Combine(_dir, "malformed.ipynb");
        File.WriteAllText(malformed, "not json");
        var bad = Cli("notebook", "run", malformed);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("malformed.ipynb", bad.Err);
        Assert.Contains("not valid JSON", bad.Err);

        var noEquals = Cli("notebook", "run", malformed, "-p", "steps");
        Assert.Equal(2, noEquals.ExitCode);
        Assert.Contains("name=value", noEquals.Err);
    }
}
