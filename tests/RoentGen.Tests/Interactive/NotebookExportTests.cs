using System.Diagnostics;
using RoentGen.Interactive.Notebooks;

namespace RoentGen.Tests.Interactive;

/// <summary>Notebooks exported as C# file-based apps: the translation, and the apps run with <c>dotnet run</c> as a user runs them.</summary>
// The apps build lib/RoentGen.Interactive into the folder the kernel tests load from: never at the same time.
[Collection(ProcessStateCollection.Name)]
public sealed class NotebookExportTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-export");
    private static readonly string Project = Path.Combine(TestPaths.RepoRoot, "lib", "RoentGen.Interactive", "RoentGen.Interactive.csproj");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static Notebook Sample()
    {
        var nb = Notebook.CreatePolyglot();
        nb.Cells.Add(NotebookCell.Markdown("# Sample\n\nA **small** notebook with `code`."));
        nb.Cells.Add(NotebookCell.Code("#r \"../lib/RoentGen.Interactive/bin/net10.0/RoentGen.dll\"\nusing System.Text;\nusing RoentGen.Interactive;"));
        nb.Cells.Add(NotebookCell.Code("int n = 3;\nstring who = \"world\";", NotebookParameters.ParametersTag));
        nb.Cells.Add(NotebookCell.Code("var sb = new StringBuilder();\nfor (int i = 0; i < n; i++) sb.Append(i);\nConsole.WriteLine($\"hello {who} {sb}\");"));
        nb.Cells.Add(NotebookCell.Code("new Box(n * 2)"));
        nb.Cells.Add(NotebookCell.Code("record Box(int Size);"));
        nb.Cells.Add(NotebookCell.CodeIn("html", "<b>html cell</b>"));
        return nb;
    }

    [Fact]
    public void Translation_hoists_usings_displays_trailing_values_reads_parameters_and_moves_types_to_the_end()
    {
        var code = NotebookExport.ToFileBasedApp(Sample(), "sample", "../lib/RoentGen.Interactive/RoentGen.Interactive.csproj", "..");
        Assert.StartsWith("#!/usr/bin/env -S dotnet run\n", code);
        Assert.Contains("#:project ../lib/RoentGen.Interactive/RoentGen.Interactive.csproj\n", code);
        var usingAt = code.IndexOf("using System.Text;", StringComparison.Ordinal);
        var startAt = code.IndexOf("FileApp.Start(", StringComparison.Ordinal);
        Assert.True(usingAt > 0 && usingAt < startAt, "using directives come before the statements");
        Assert.Contains("n = app.Parameter(nameof(n), n);", code);
        Assert.Contains("who = app.Parameter(nameof(who), who);", code);
        Assert.Contains("display(new Box(n * 2));", code);
        Assert.True(code.LastIndexOf("record Box(int Size);", StringComparison.Ordinal) > code.IndexOf("app.Finish();", StringComparison.Ordinal), "types follow the top-level statements");
        Assert.Contains("app.Html(", code);
        Assert.Contains("app.Markdown(", code);
    }

    [Fact]
    public void A_variable_declared_in_two_cells_or_a_cell_of_another_language_is_a_clear_error()
    {
        var twice = Notebook.CreatePolyglot();
        twice.Cells.Add(NotebookCell.Code("var x = 1;"));
        twice.Cells.Add(NotebookCell.Code("var x = 2;"));
        var e = Assert.Throws<NotebookExportException>(() => NotebookExport.ToFileBasedApp(twice, "t", "p.csproj", "."));
        Assert.Contains("cell 2 declares 'x' again (cell 1", e.Message);

        var fsharp = Notebook.CreatePolyglot();
        fsharp.Cells.Add(NotebookCell.CodeIn("fsharp", "printfn \"hi\""));
        Assert.Contains("'fsharp' kernel", Assert.Throws<NotebookExportException>(() => NotebookExport.ToFileBasedApp(fsharp, "f", "p.csproj", ".")).Message);

        var broken = Notebook.CreatePolyglot();
        broken.Cells.Add(NotebookCell.Code("var y = ;"));
        Assert.Contains("cell 1, line 1", Assert.Throws<NotebookExportException>(() => NotebookExport.ToFileBasedApp(broken, "b", "p.csproj", ".")).Message);
    }

    [Fact]
    public void Every_project_notebook_exports()
    {
        foreach (var path in Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "notebooks"), "*.ipynb"))
        {
            var app = NotebookExport.ExportFile(path, Path.Combine(_dir, Path.GetFileNameWithoutExtension(path) + ".cs"), Project);
            Assert.Contains("FileApp.Start(", File.ReadAllText(app));
        }
    }

    /// <summary><c>dotnet run -c Release APP.cs</c> (Release: the configuration the test suite built), as a user runs an exported notebook.</summary>
    internal static (int Code, string Output) RunApp(string app, TimeSpan limit, params string[] args)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var folder = Path.GetDirectoryName(app)!;
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = folder };
        // The build output (about 0.5 GB of libtorch where hard links are impossible) and the notebook's scratch
        // folders go beside the app, which the test deletes, not into the per-user runfile cache and /tmp.
        var scratch = Directory.CreateDirectory(Path.Combine(folder, "scratch")).FullName;
        psi.Environment["TMPDIR"] = scratch;
        foreach (var a in new[] { "run", "-c", "Release", "--artifacts-path", Path.Combine(folder, "artifacts"), app, "--" }.Concat(args))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{app} did not finish within {limit}");
        }
        return (p.ExitCode, output.Result + err.Result);
    }

    [Fact]
    public void An_exported_app_runs_with_parameters_and_writes_one_page_with_every_output()
    {
        var nbPath = Path.Combine(_dir, "sample.ipynb");
        Sample().Save(nbPath);
        var app = NotebookExport.ExportFile(nbPath, Path.Combine(_dir, "apps", "sample.cs"), Project);

        var (code, output) = RunApp(app, TimeSpan.FromMinutes(5), "-p", "n=4", "-p", "who=file apps");
        Assert.True(code == 0, output);
        Assert.Contains("hello file apps 0123", output);
        var page = File.ReadAllText(Path.ChangeExtension(app, ".html"));
        Assert.Contains("<h1>Sample</h1>", page);
        Assert.Contains("<b>small</b>", page);
        Assert.Contains("hello file apps 0123", page);
        Assert.Contains("Box { Size = 8 }", page);
        Assert.Contains("<b>html cell</b>", page);

        var (bad, badOutput) = RunApp(app, TimeSpan.FromMinutes(5), "-p", "steps=9");
        Assert.NotEqual(0, bad);
        Assert.Contains("unknown parameter(s) steps", badOutput);
    }
}

/// <summary>Every project notebook, exported as a file-based app and run with <c>dotnet run</c> at the notebook tests' parameters.</summary>
[Collection(ProcessStateCollection.Name)]
public sealed class AppExecutionTests : IDisposable
{
    // Outside the repository on purpose: no Directory.Build.props applies, as for a user who exports elsewhere.
    private readonly string _dir = TestPaths.NewTempDir("roentgen-apps");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Theory]
    [MemberData(nameof(RoentGen.Tests.Notebooks.NotebookExecutionTests.Notebooks), MemberType = typeof(RoentGen.Tests.Notebooks.NotebookExecutionTests))]
    public void Notebook_runs_as_a_file_based_app_and_writes_its_page(string file, string parameters)
    {
        var notebook = Path.Combine(TestPaths.RepoRoot, "notebooks", file);
        var project = Path.Combine(TestPaths.RepoRoot, "lib", "RoentGen.Interactive", "RoentGen.Interactive.csproj");
        var app = NotebookExport.ExportFile(notebook, Path.Combine(_dir, Path.ChangeExtension(file, ".cs")), project);
        var args = parameters.Split(';', StringSplitOptions.RemoveEmptyEntries).SelectMany(p => new[] { "-p", p }).ToArray();
        var (code, output) = NotebookExportTests.RunApp(app, TimeSpan.FromMinutes(10), args);
        Assert.True(code == 0, $"{file} as an app failed:\n{output}");
        var page = File.ReadAllText(Path.ChangeExtension(app, ".html"));
        Assert.DoesNotContain("<pre class=\"error\">", page);
        Assert.Contains("<pre class=\"source\">", page);
        Assert.True(page.Contains("data:image/png;base64,", StringComparison.Ordinal) || page.Contains("Plotly.newPlot", StringComparison.Ordinal),
            $"{file}: the page shows no image and no chart");
    }
}
