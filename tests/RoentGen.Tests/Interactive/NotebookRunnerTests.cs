using System.Text.Json;
using RoentGen.Interactive.Notebooks;

namespace RoentGen.Tests.Interactive;

/// <summary>
/// Runs small Polyglot notebooks in-process through <see cref="NotebookRunner.RunFileAsync"/> and checks the
/// outputs of the notebook file written to disk (so the model's write and read are exercised too).
/// </summary>
// Console capture is process-wide: run alone so other tests' output cannot land in a notebook.
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

    private static NotebookOutput Single(NotebookCell cell, string outputType) =>
        Assert.Single(cell.Outputs, o => o.OutputType == outputType);

    [Fact]
    public async Task Console_output_becomes_stdout_and_stderr_streams()
    {
        var (result, nb, _) = await Run(NotebookCell.Code("Console.WriteLine(\"hello\");\nConsole.Error.WriteLine(\"careful\");\nConsole.Write(\"again\");"));

        Assert.False(result.AnyFailed);
        var outputs = nb.Cells[0].Outputs;
        Assert.Equal(["stream", "stream", "stream"], outputs.Select(o => o.OutputType));
        Assert.Equal(("stdout", "hello\n"), (outputs[0].Name, outputs[0].Text));
        Assert.Equal(("stderr", "careful\n"), (outputs[1].Name, outputs[1].Text));
        Assert.Equal(("stdout", "again"), (outputs[2].Name, outputs[2].Text));
        Assert.Equal(1, nb.Cells[0].ExecutionCount);
    }

    [Fact]
    public async Task Trailing_expression_is_an_execute_result_and_statements_are_not()
    {
        var (_, nb, _) = await Run(
            NotebookCell.Code("var a = 20;"),
            NotebookCell.Code("a * 2 + 2"),
            NotebookCell.Code("Console.WriteLine(a)"));

        Assert.Empty(nb.Cells[0].Outputs);
        var result = Single(nb.Cells[1], "execute_result");
        Assert.Equal("42", result.GetData("text/plain"));
        Assert.Equal(2, result.ExecutionCount);
        Assert.Equal(2, nb.Cells[1].ExecutionCount);
        // A void call without a semicolon prints, but has no value.
        Assert.DoesNotContain(nb.Cells[2].Outputs, o => o.OutputType == "execute_result");
        Assert.Equal("20\n", Single(nb.Cells[2], "stream").Text);
    }

    [Fact]
    public async Task Display_and_Display_extension_emit_display_data_with_png_for_IPngDisplayable()
    {
        var (result, nb, _) = await Run(NotebookCell.Code("""
            class Dot : RoentGen.Interactive.IPngDisplayable
            {
                public byte[] ToPng() => new byte[] { 137, 80, 78, 71, 1, 2, 3 };
                public override string ToString() => "a dot";
            }
            display("first");
            "second".Display();
            new Dot().Display();
            """));

        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        var shown = nb.Cells[0].Outputs.Where(o => o.OutputType == "display_data").ToList();
        Assert.Equal(3, shown.Count);
        Assert.Equal("first", shown[0].GetData("text/plain"));
        Assert.Equal("second", shown[1].GetData("text/plain"));
        Assert.Null(shown[0].GetData("image/png"));
        Assert.Equal("a dot", shown[2].GetData("text/plain"));
        Assert.Equal(new byte[] { 137, 80, 78, 71, 1, 2, 3 }, Convert.FromBase64String(shown[2].GetData("image/png")!));
    }

    [Fact]
    public async Task A_registered_html_formatter_adds_text_html_to_the_bundle()
    {
        var (result, nb, _) = await Run(NotebookCell.Code("""
            record Finding(string Name, double P);
            Microsoft.DotNet.Interactive.Formatting.Formatter.Register<Finding>(
                (f, w) => w.Write($"<b>{f.Name}</b> p={f.P}"), "text/html");
            display(new Finding("cardiomegaly", 0.8));
            display(3.5);
            display(new Finding("effusion", 0.1), "text/html");
            display(new[] { 1, 2 }, "text/html");
            """));

        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        var shown = nb.Cells[0].Outputs.Where(o => o.OutputType == "display_data").ToList();
        Assert.Equal("<b>cardiomegaly</b> p=0.8", shown[0].GetData("text/html"));
        Assert.Contains("cardiomegaly", shown[0].GetData("text/plain"));
        Assert.Null(shown[1].GetData("text/html")); // no formatter registered for double: plain text only
        Assert.Equal("3.5", shown[1].GetData("text/plain"));
        // display(x, mimeTypes): the requested types, from the built-in formatters when none was registered.
        Assert.Equal("<b>effusion</b> p=0.1", shown[2].GetData("text/html"));
        Assert.StartsWith("<", shown[3].GetData("text/html"));
        Assert.Contains("1, 2", shown[3].GetData("text/html"));
        Assert.NotNull(shown[3].GetData("text/plain"));
    }

    [Fact]
    public async Task Display_handle_update_replaces_the_output_in_place_also_through_NotebookHost()
    {
        var (_, nb, _) = await Run(
            NotebookCell.Code("var h = display(\"step 0\");\nConsole.WriteLine(\"between\");"),
            NotebookCell.Code("""
                for (var i = 1; i <= 3; i++) h.Update($"step {i}");
                var viaHost = RoentGen.Interactive.NotebookHost.Display("progress 0%");
                viaHost!.Update("progress 100%");
                """));

        var first = nb.Cells[0].Outputs;
        Assert.Equal(["display_data", "stream"], first.Select(o => o.OutputType));
        Assert.Equal("step 3", first[0].GetData("text/plain"));
        var second = Single(nb.Cells[1], "display_data");
        Assert.Equal("progress 100%", second.GetData("text/plain"));
    }

    [Fact]
    public async Task Variables_and_classes_carry_across_cells_and_top_level_await_works()
    {
        var (result, nb, _) = await Run(
            NotebookCell.Code("var start = 40;\nrecord Point(int X, int Y);"),
            NotebookCell.Code("await Task.Delay(1);\nvar p = new Point(start, 2);"),
            NotebookCell.Code("p.X + p.Y"));

        Assert.False(result.AnyFailed);
        Assert.Equal("42", Single(nb.Cells[2], "execute_result").GetData("text/plain"));
    }

    [Fact]
    public async Task Runtime_exception_is_an_error_output_naming_the_cell_and_line()
    {
        var (result, nb, _) = await Run(
            NotebookCell.Code("var x = 1;"),
            NotebookCell.Code("var y = 2;\nConsole.WriteLine(\"before\");\nthrow new InvalidOperationException(\"boom\");"));

        Assert.True(result.AnyFailed);
        Assert.Equal(CellRunStatus.Failed, result.Cells[1].Status);
        Assert.Equal("before\n", Single(nb.Cells[1], "stream").Text);
        var error = Single(nb.Cells[1], "error");
        Assert.Equal("System.InvalidOperationException", error.EName);
        Assert.Contains("boom", error.EValue);
        Assert.Contains("cell 2, line 3", error.EValue);
        Assert.Contains(error.Traceback, l => l.Contains("cell-2:line 3"));
    }

    [Fact]
    public async Task Magic_lines_are_blanked_and_line_numbers_kept()
    {
        var (_, nb, _) = await Run(NotebookCell.Code("#!csharp\n#!about\n\nthrow new Exception(\"line four\");"));

        var error = Single(nb.Cells[0], "error");
        Assert.Contains("cell 1, line 4", error.EValue);
    }

    [Fact]
    public async Task Compile_error_is_an_error_output_with_the_line_within_the_cell()
    {
        var (result, nb, _) = await Run(NotebookCell.Code("var ok = 1;\nint bad = \"text\";"));

        Assert.Equal(CellRunStatus.Failed, result.Cells[0].Status);
        var error = Single(nb.Cells[0], "error");
        Assert.Equal("CompilationError", error.EName);
        var line = Assert.Single(error.Traceback);
        Assert.Contains("cell 1, line 2", line);
        Assert.Contains("CS0029", line);
    }

    [Fact]
    public async Task A_failure_stops_the_run_unless_keep_going()
    {
        NotebookCell[] Cells() =>
        [
            NotebookCell.Code("throw new Exception(\"first fails\");"),
            NotebookCell.Code("Console.WriteLine(\"later\");"),
        ];

        var (stopped, nbStopped, _) = await Run(Cells());
        Assert.Equal([CellRunStatus.Failed, CellRunStatus.NotRun], stopped.Cells.Select(c => c.Status));
        Assert.Empty(nbStopped.Cells[1].Outputs);
        Assert.Null(nbStopped.Cells[1].ExecutionCount);

        var (going, nbGoing, _) = await Run(new NotebookRunOptions { KeepGoing = true }, Cells());
        Assert.Equal([CellRunStatus.Failed, CellRunStatus.Succeeded], going.Cells.Select(c => c.Status));
        Assert.True(going.AnyFailed);
        Assert.Equal("later\n", Single(nbGoing.Cells[1], "stream").Text);
    }

    [Fact]
    public async Task A_cell_past_the_timeout_gets_an_error_and_stops_the_run()
    {
        var options = new NotebookRunOptions { TimeoutPerCell = TimeSpan.FromMilliseconds(300), KeepGoing = true };
        var (result, nb, _) = await Run(options,
            NotebookCell.Code("System.Threading.Thread.Sleep(2000);"),
            NotebookCell.Code("Console.WriteLine(\"never\");"));

        Assert.Equal([CellRunStatus.TimedOut, CellRunStatus.NotRun], result.Cells.Select(c => c.Status));
        var error = Single(nb.Cells[0], "error");
        Assert.Equal("TimeoutError", error.EName);
        Assert.Contains("cannot abort", error.EValue);
    }

    [Fact]
    public async Task Parameters_are_injected_after_the_parameters_cell_with_their_types()
    {
        var options = new NotebookRunOptions
        {
            Parameters = new Dictionary<string, string> { ["steps"] = "7", ["lr"] = "0.25", ["name"] = "x \"y\"", ["quick"] = "true", ["seed"] = "12345678901" },
        };
        var (result, nb, _) = await Run(options,
            NotebookCell.Code("int steps = 5;\nvar lr = 0.1;\nstring name = \"a\";\nbool quick = false;\nlong seed = 1L;", NotebookParameters.ParametersTag),
            NotebookCell.Code("Console.WriteLine($\"{steps} {lr * 2} {name} {quick} {seed} {steps.GetType().Name} {lr.GetType().Name}\");"));

        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        Assert.Equal(3, nb.Cells.Count);
        Assert.Contains(NotebookParameters.InjectedTag, nb.Cells[1].Tags);
        Assert.Equal("7 0.5 x \"y\" True 12345678901 Int32 Double\n", Single(nb.Cells[2], "stream").Text);
    }

    [Fact]
    public async Task A_parameter_value_of_the_wrong_type_or_an_unknown_name_is_a_clear_error()
    {
        var cells = () => new[] { NotebookCell.Code("int steps = 5;\ndouble lr = 1e-3;", NotebookParameters.ParametersTag) };

        var mismatch = await Assert.ThrowsAsync<NotebookParameterException>(() =>
            Run(new NotebookRunOptions { Parameters = new Dictionary<string, string> { ["steps"] = "many" } }, cells()));
        Assert.Contains("'steps'", mismatch.Message);
        Assert.Contains("int", mismatch.Message);
        Assert.Contains("'many'", mismatch.Message);

        var badDouble = await Assert.ThrowsAsync<NotebookParameterException>(() =>
            Run(new NotebookRunOptions { Parameters = new Dictionary<string, string> { ["lr"] = "fast" } }, cells()));
        Assert.Contains("double", badDouble.Message);

        var unknown = await Assert.ThrowsAsync<NotebookParameterException>(() =>
            Run(new NotebookRunOptions { Parameters = new Dictionary<string, string> { ["epochs"] = "3" } }, cells()));
        Assert.Contains("'epochs'", unknown.Message);
        Assert.Contains("steps (int)", unknown.Message);
        Assert.Contains("lr (double)", unknown.Message);
    }

    [Fact]
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
        using var doc = JsonDocument.Parse(File.ReadAllText(NotebookRunner.DefaultOutputPath(input)));
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
        Assert.Equal(["Console.WriteLine(1);\n", "Console.WriteLine(2);"], cells[1].GetProperty("source").EnumerateArray().Select(l => l.GetString()));
        Assert.Equal("csharp", cells[1].GetProperty("metadata").GetProperty("polyglot_notebook").GetProperty("kernelName").GetString());
        Assert.Equal(["1\n", "2\n"], cells[1].GetProperty("outputs")[0].GetProperty("text").EnumerateArray().Select(l => l.GetString()));
    }

    [Fact]
    public async Task Cells_of_other_kernels_are_skipped_with_a_note()
    {
        var (result, nb, _) = await Run(
            NotebookCell.CodeIn("fsharp", "printfn \"hi\""),
            NotebookCell.Code("#!pwsh\nGet-ChildItem"),
            NotebookCell.Code("\"csharp ran\""));

        Assert.Equal([CellRunStatus.Skipped, CellRunStatus.Skipped, CellRunStatus.Succeeded], result.Cells.Select(c => c.Status));
        Assert.Contains("fsharp", Single(nb.Cells[0], "stream").Text);
        Assert.Null(nb.Cells[0].ExecutionCount);
        Assert.Equal(1, nb.Cells[2].ExecutionCount);
    }

    [Fact]
    public async Task Nuget_directive_of_a_shipped_package_is_accepted_and_an_unknown_one_rejected()
    {
        var (result, nb, _) = await Run(new NotebookRunOptions { KeepGoing = true },
            NotebookCell.Code("#r \"nuget: MathNet.Numerics, 5.0.0\"\n#r \"nuget: Microsoft.Data.Analysis\"\n1 + 1"),
            NotebookCell.Code("// a comment\n#r \"nuget: No.Such.Package.Anywhere, 1.0.0\""),
            NotebookCell.Code("#r \"lib/Missing.Assembly.dll\""));

        Assert.Equal(CellRunStatus.Succeeded, result.Cells[0].Status);
        Assert.Equal("2", Single(nb.Cells[0], "execute_result").GetData("text/plain"));
        Assert.Equal(CellRunStatus.Failed, result.Cells[1].Status);
        var error = Single(nb.Cells[1], "error");
        Assert.Contains("No.Such.Package.Anywhere", error.EValue);
        Assert.Contains("cell 2, line 2", error.EValue);
        var missing = Single(nb.Cells[2], "error");
        Assert.Contains("Missing.Assembly.dll", missing.EValue);
        Assert.Contains("file not found", missing.EValue);
    }

    [Fact]
    public async Task Library_reference_directive_is_accepted()
    {
        var (result, nb, _) = await Run(NotebookCell.Code(
            "#r \"../lib/RoentGen/bin/Debug/net10.0/RoentGen.dll\"\nusing RoentGen.Interactive;\ntypeof(IPngDisplayable).Assembly.GetName().Name"));

        Assert.False(result.AnyFailed, string.Join("\n", result.Cells.Select(c => c.Message)));
        Assert.Equal("RoentGen", Single(nb.Cells[0], "execute_result").GetData("text/plain"));
    }

    [Fact]
    public async Task Figure_chart_and_DataFrame_work_in_a_notebook()
    {
        var (result, nb, _) = await Run(
            NotebookCell.Code("""
                #r "nuget: Microsoft.Data.Analysis, 0.23.1"
                using Microsoft.Data.Analysis;
                using RoentGen.Visualization;
                var df = new DataFrame(
                    new PrimitiveDataFrameColumn<double>("x", new[] { 1.0, 2.0, 3.0 }),
                    new PrimitiveDataFrameColumn<double>("y", new[] { 2.0, 4.0, 8.0 }));
                var chart = new Figure("doubling", [new ScatterTrace { Name = "doubling", Mode = ScatterMode.Markers,
                    X = df.Columns["x"].Cast<double>().ToArray(), Y = df.Columns["y"].Cast<double>().ToArray() }]);
                """),
            NotebookCell.Code("""
                $"{chart.ToJson().Contains("doubling")} {df.Rows.Count}"
                """),
            NotebookCell.Code("chart"));

        Assert.False(result.AnyFailed, string.Join("\n", nb.Cells.SelectMany(c => c.Outputs).Select(o => o.EValue + string.Join("\n", o.Traceback))));
        Assert.Equal("True 3", Single(nb.Cells[1], "execute_result").GetData("text/plain"));
        Assert.Contains("Plotly.newPlot", Single(nb.Cells[2], "execute_result").GetData("text/html"));
    }

    [Fact]
    public async Task Malformed_notebook_is_a_format_error_naming_the_file()
    {
        var path = Path.Combine(_dir, "broken.ipynb");
        File.WriteAllText(path, "{ \"cells\": [ ");
        var e = await Assert.ThrowsAsync<NotebookFormatException>(() => new NotebookRunner().RunFileAsync(path));
        Assert.Contains("broken.ipynb", e.Message);

        File.WriteAllText(path, "{ \"nbformat\": 3, \"cells\": [] }");
        e = await Assert.ThrowsAsync<NotebookFormatException>(() => new NotebookRunner().RunFileAsync(path));
        Assert.Contains("nbformat 3", e.Message);
    }
}
