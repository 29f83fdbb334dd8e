using System.Diagnostics;
using System.Text.Json;
using RoentGen.Interactive.Notebooks;

namespace RoentGen.Tests.Interactive;

/// <summary>
/// Runs small Polyglot notebooks through <see cref="NotebookRunner.RunFileAsync"/> in the real .NET Interactive kernel
/// (the pinned dotnet-interactive tool, over its stdio protocol) and checks the outputs of the notebook file written to
/// disk, so the model's write and read are exercised too.
/// </summary>
// Kernels are separate processes, but two at once on a 2-core machine only slow each other down.
[Collection(ProcessStateCollection.Name)]
public sealed class NotebookRunnerTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-nbrun");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private async Task<(NotebookRunResult Result, Notebook Written, string Path)> Run(NotebookRunOptions? options, params NotebookCell[] cells)
    {
        var nb = Notebook.CreatePolyglot();
        nb.Cells.AddRange(cells);
        var input = Path.Combine(_dir, $"nb-{Guid.NewGuid():N}.ipynb");
        nb.Save(input);
        var output = NotebookRunner.DefaultOutputPath(input);
        var result = await new NotebookRunner(options).RunFileAsync(input, output);
        return (result, Notebook.Load(output), output);
    }

    private Task<(NotebookRunResult Result, Notebook Written, string Path)> Run(params NotebookCell[] cells) => Run(null, cells);

    /// <summary>The library as a notebook references it (the build's configuration-independent output).</summary>
    private static string LibraryReferences()
    {
        var bin = Path.Combine(TestPaths.RepoRoot, "lib", "RoentGen.Interactive", "bin", "net10.0");
        // The paths must resolve in the configuration the tests were built in, or the cells would only pass by chance.
        foreach (var dll in new[] { "RoentGen.dll", "RoentGen.Interactive.dll", "Microsoft.Data.Analysis.dll" })
            Assert.True(File.Exists(Path.Combine(bin, dll)), $"#r target {Path.Combine(bin, dll)} does not exist");
        return $"#r \"{Path.Combine(bin, "RoentGen.dll")}\"\n#r \"{Path.Combine(bin, "RoentGen.Interactive.dll")}\"\n";
    }

    [Fact]
    public async Task Console_output_becomes_stdout_and_stderr_streams_and_a_cell_value_an_execute_result()
    {
        var (result, nb, _) = await Run(
            NotebookCell.Code("Console.WriteLine(\"hello\");\nConsole.Error.WriteLine(\"careful\");"),
            NotebookCell.Code("var answer = 6 * 7;"),
            NotebookCell.Code("answer"));

        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        var outputs = nb.Cells[0].Outputs;
        Assert.Contains(outputs, o => o.OutputType == "stream" && o.Name == "stdout" && o.Text == "hello\n");
        Assert.Contains(outputs, o => o.OutputType == "stream" && o.Name == "stderr" && o.Text == "careful\n");
        Assert.Empty(nb.Cells[1].Outputs);   // a statement has no value
        var value = Assert.Single(nb.Cells[2].Outputs);
        Assert.Equal("execute_result", value.OutputType);
        Assert.Equal(3, value.ExecutionCount);
        Assert.Contains("42", value.GetData("text/html") ?? value.GetData("text/plain"));
        Assert.Equal([1, 2, 3], nb.Cells.Select(c => c.ExecutionCount ?? 0));
    }

    [Fact]
    public async Task Library_images_and_grids_display_as_pngs_through_the_kernels_formatters()
    {
        var (result, nb, _) = await Run(
            NotebookCell.Code(LibraryReferences() + "using RoentGen.Data;\nusing RoentGen.Visualization;\nusing RoentGen.Interactive;\nDisplay.Register();"),
            NotebookCell.Code("var img = new GrayImage(16, 16, Enumerable.Range(0, 256).Select(i => i / 255f).ToArray(), 8);\ndisplay(img);"),
            NotebookCell.Code("ImageGrid.FromImages([img, img], columns: 2, captions: [\"a\", \"b\"])"));

        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        var shown = Assert.Single(nb.Cells[1].Outputs, o => o.OutputType == "display_data");
        Assert.Contains("data:image/png;base64,", shown.GetData("text/html"));
        var grid = Assert.Single(nb.Cells[2].Outputs, o => o.OutputType == "execute_result");
        Assert.Contains("data:image/png;base64,", grid.GetData("text/html"));
    }

    [Fact]
    public async Task A_display_updated_in_place_keeps_one_output_with_the_last_value()
    {
        var (result, nb, _) = await Run(NotebookCell.Code("var h = display(\"a\"); h.Update(\"b\"); h.Update(\"c\");\nvar g = display(\"d\"); g.Update(\"e\");"));
        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        Assert.Equal(["c", "e"], nb.Cells[0].Outputs.Select(o => o.GetData("text/plain")));
    }

    [Fact]
    public async Task Variables_and_classes_carry_across_cells_and_top_level_await_works()
    {
        var (result, nb, _) = await Run(
            NotebookCell.Code("record Point(int X, int Y);\nvar p = new Point(1, 2);"),
            NotebookCell.Code("await Task.Delay(10);\nConsole.WriteLine(p with { Y = 5 });"));
        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        Assert.Equal("Point { X = 1, Y = 5 }\n", Assert.Single(nb.Cells[1].Outputs).Text);
    }

    [Fact]
    public async Task Runtime_and_compile_errors_are_error_outputs_and_stop_the_run_unless_keep_going()
    {
        NotebookCell[] Cells() =>
        [
            NotebookCell.Code("Console.WriteLine(\"before\");"),
            NotebookCell.Code("throw new InvalidOperationException(\"boom\");"),
            NotebookCell.Code("var y = undefinedThing + 1;"),
            NotebookCell.Code("Console.WriteLine(\"after\");"),
        ];
        var (stopped, nb, _) = await Run(Cells());
        Assert.True(stopped.AnyFailed);
        Assert.Equal([CellRunStatus.Succeeded, CellRunStatus.Failed, CellRunStatus.NotRun, CellRunStatus.NotRun], stopped.Cells.Select(c => c.Status));
        var error = Assert.Single(nb.Cells[1].Outputs);
        Assert.Equal(("error", "System.InvalidOperationException", "boom"), (error.OutputType, error.EName, error.EValue));
        Assert.Empty(nb.Cells[3].Outputs);

        var (going, nbGoing, _) = await Run(new NotebookRunOptions { KeepGoing = true }, Cells());
        Assert.Equal([CellRunStatus.Succeeded, CellRunStatus.Failed, CellRunStatus.Failed, CellRunStatus.Succeeded], going.Cells.Select(c => c.Status));
        var compile = Assert.Single(nbGoing.Cells[2].Outputs);
        Assert.Equal("error", compile.OutputType);
        Assert.Contains("CS0103", compile.EValue);
        Assert.Contains("undefinedThing", compile.EValue);
        Assert.Equal("after\n", Assert.Single(nbGoing.Cells[3].Outputs).Text);
    }

    [Fact]
    public async Task A_runaway_cell_past_the_timeout_is_stopped_by_killing_its_kernel()
    {
        // Generous enough for the kernel's first compilation on a busy 2-core machine; the runaway cell needs it all.
        var options = new NotebookRunOptions { TimeoutPerCell = TimeSpan.FromSeconds(25), KeepGoing = true };
        var clock = Stopwatch.StartNew();
        var (result, nb, _) = await Run(options,
            NotebookCell.Code("Console.WriteLine(System.Diagnostics.Process.GetCurrentProcess().Id);"),
            NotebookCell.Code("while (true) { }"),
            NotebookCell.Code("Console.WriteLine(\"never\");"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(120), $"the run took {clock.Elapsed}");
        Assert.Equal([CellRunStatus.Succeeded, CellRunStatus.TimedOut, CellRunStatus.NotRun], result.Cells.Select(c => c.Status));
        var timeout = Assert.Single(nb.Cells[1].Outputs);
        Assert.Equal("TimeoutError", timeout.EName);
        Assert.Contains("25 s", timeout.EValue);
        var pid = int.Parse(nb.Cells[0].Outputs.Single().Text!.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        // The kernel that spun is gone (a reused pid would be another program, not a dotnet kernel).
        await Task.Delay(500);
        Assert.True(!Process.GetProcesses().Any(p => p.Id == pid) || !Process.GetProcessById(pid).ProcessName.Contains("dotnet", StringComparison.Ordinal),
            $"kernel process {pid} is still running");
    }

    [Fact]
    public async Task Parameters_are_injected_after_the_parameters_cell_with_their_types()
    {
        var options = new NotebookRunOptions { Parameters = new Dictionary<string, string> { ["steps"] = "7", ["lr"] = "0.5", ["name"] = "a \"b\"" } };
        var (result, nb, _) = await Run(options,
            NotebookCell.Code("int steps = 100;\ndouble lr = 1e-3;\nstring name = \"x\";", NotebookParameters.ParametersTag),
            NotebookCell.Code("Console.WriteLine($\"{steps} {lr} {name} {steps.GetType().Name}\");"));
        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        Assert.Contains(NotebookParameters.InjectedTag, nb.Cells[1].Tags);
        Assert.Equal("7 0.5 a \"b\" Int32\n", nb.Cells[2].Outputs.Single().Text);
    }

    [Fact]
    public async Task A_parameter_value_of_the_wrong_type_or_an_unknown_name_is_a_clear_error()
    {
        NotebookCell[] Cells() => [NotebookCell.Code("int steps = 100;\ndouble lr = 1e-3;", NotebookParameters.ParametersTag)];
        var wrong = await Assert.ThrowsAsync<NotebookParameterException>(() =>
            Run(new NotebookRunOptions { Parameters = new Dictionary<string, string> { ["steps"] = "many" } }, Cells()));
        Assert.Contains("'steps' is declared as int", wrong.Message);
        var unknown = await Assert.ThrowsAsync<NotebookParameterException>(() =>
            Run(new NotebookRunOptions { Parameters = new Dictionary<string, string> { ["epochs"] = "3" } }, Cells()));
        Assert.Contains("'epochs'", unknown.Message);
        Assert.Contains("steps (int)", unknown.Message);
    }

    [SkippableFact]
    public async Task Output_file_is_nbformat_4_5_with_unique_cell_ids_and_keeps_metadata_and_markdown()
    {
        var markdown = NotebookCell.Markdown("# Title\n\nSome *text*.");
        var code = NotebookCell.Code("Console.WriteLine(1);\nConsole.WriteLine(2);");
        code.Id = null; // a cell without id gets one on writing
        var nb = Notebook.CreatePolyglot();
        nb.Metadata["roentgen_custom"] = "kept";
        nb.Cells.AddRange([markdown, code, NotebookCell.Code("1")]);
        nb.Cells[2].Id = markdown.Id; // a duplicate id is replaced
        var input = Path.Combine(_dir, "meta.ipynb");
        nb.Save(input);

        var result = await new NotebookRunner().RunFileAsync(input);

        Assert.False(result.AnyFailed);
        var output = NotebookRunner.DefaultOutputPath(input);
        using var doc = JsonDocument.Parse(File.ReadAllText(output));
        var root = doc.RootElement;
        Assert.Equal(4, root.GetProperty("nbformat").GetInt32());
        Assert.Equal(5, root.GetProperty("nbformat_minor").GetInt32());
        Assert.Equal("kept", root.GetProperty("metadata").GetProperty("roentgen_custom").GetString());
        Assert.Equal(".net-csharp", root.GetProperty("metadata").GetProperty("kernelspec").GetProperty("name").GetString());
        var cells = root.GetProperty("cells").EnumerateArray().ToList();
        var ids = cells.Select(c => c.GetProperty("id").GetString()!).ToList();
        Assert.Equal(3, ids.Distinct().Count());
        Assert.All(ids, id => Assert.True(NotebookCell.IsValidId(id), id));
        Assert.Equal(["# Title\n", "\n", "Some *text*."], cells[0].GetProperty("source").EnumerateArray().Select(l => l.GetString()));
        Assert.False(cells[0].TryGetProperty("outputs", out _));
        Assert.Equal(["1\n", "2\n"], cells[1].GetProperty("outputs")[0].GetProperty("text").EnumerateArray().Select(l => l.GetString()));
        NbformatValidator.AssertValid(output);
    }

    [Fact]
    public async Task Cells_of_other_kernels_run_in_their_kernel_as_in_vs_code()
    {
        var (result, nb, _) = await Run(
            NotebookCell.CodeIn("html", "<b id=\"x\">bold</b>"),
            NotebookCell.Code("#!html\n<i>magic line</i>"),
            NotebookCell.Code("\"csharp ran\""));
        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        Assert.Contains("<b id=\"x\">bold</b>", nb.Cells[0].Outputs.Single().GetData("text/html"));
        Assert.Contains("<i>magic line</i>", nb.Cells[1].Outputs.Single().GetData("text/html"));
        Assert.Contains("csharp ran", nb.Cells[2].Outputs.Single() is var r ? r.GetData("text/html") ?? r.GetData("text/plain") : null);
    }

    [Fact]
    public async Task A_figure_and_a_DataFrame_display_as_html_tables_and_plotly_charts_in_the_kernel()
    {
        var bin = Path.Combine(TestPaths.RepoRoot, "lib", "RoentGen.Interactive", "bin", "net10.0");
        var (result, nb, _) = await Run(
            NotebookCell.Code(LibraryReferences() + $"#r \"{Path.Combine(bin, "Microsoft.Data.Analysis.dll")}\"\n" +
                "using Microsoft.Data.Analysis;\nusing RoentGen.Visualization;\nRoentGen.Interactive.Display.Register();\n" +
                "var df = new DataFrame(new PrimitiveDataFrameColumn<double>(\"x\", new[] { 1.0, 2.0, 3.0 }), new PrimitiveDataFrameColumn<double>(\"y\", new[] { 2.0, 4.0, 8.0 }));\n" +
                "var chart = new Figure(\"doubling\", [new ScatterTrace { Name = \"doubling\", Mode = ScatterMode.Markers, X = [1.0, 2.0, 3.0], Y = [2.0, 4.0, 8.0] }]);"),
            NotebookCell.Code("df"),
            NotebookCell.Code("chart"),
            NotebookCell.Code("display(chart);"));

        Assert.False(result.AnyFailed, string.Join("\n", nb.Cells.SelectMany(c => c.Outputs).Select(o => o.EValue)));
        Assert.Contains("<table", nb.Cells[1].Outputs.Single().GetData("text/html"));
        var first = nb.Cells[2].Outputs.Single().GetData("text/html")!;
        var second = nb.Cells[3].Outputs.Single().GetData("text/html")!;
        Assert.Contains("Plotly.newPlot", first);
        Assert.Contains("doubling", first);
        Assert.True(first.Length > 500_000, "the first chart of a kernel session carries plotly.js");
        Assert.True(second.Length < 100_000, "later charts reuse the library already loaded");
        // (plotly.js's own source names its CDN as a default; what matters is that no script is loaded from anywhere.)
        Assert.DoesNotMatch("<script[^>]+src=\"(https?:)?//", first + second);
    }

    [Fact]
    public async Task A_missing_kernel_is_a_clear_error_that_says_how_to_install_it()
    {
        var options = new NotebookRunOptions { KernelCommand = [Path.Combine(_dir, "no-such-kernel")] };
        var e = await Assert.ThrowsAsync<KernelUnavailableException>(() => Run(options, NotebookCell.Code("1")));
        Assert.Contains("no-such-kernel", e.Message);
    }

    [Fact]
    public void The_pinned_kernel_version_is_the_one_in_the_tool_manifest()
    {
        var manifest = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "dotnet-tools.json"));
        using var doc = JsonDocument.Parse(manifest);
        var version = doc.RootElement.GetProperty("tools").GetProperty("microsoft.dotnet-interactive").GetProperty("version").GetString();
        Assert.Equal(KernelProcess.PinnedVersion, version);
        Assert.Contains(KernelProcess.PinnedVersion, File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "lib", "RoentGen.Interactive", "RoentGen.Interactive.csproj")));
    }

    [Fact]
    public async Task Malformed_notebook_is_a_format_error_naming_the_file()
    {
        var input = Path.Combine(_dir, "broken.ipynb");
        File.WriteAllText(input, "{ \"cells\": [ { \"cell_type\": \"code\" ");
        var e = await Assert.ThrowsAsync<NotebookFormatException>(() => new NotebookRunner().RunFileAsync(input));
        Assert.Contains("broken.ipynb", e.Message);
    }
}
