using System.CommandLine;
using System.Globalization;
using RoentGen.Interactive.Notebooks;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen notebook run IN.ipynb [--out OUT.ipynb] [-p name=value ...] [--keep-going] [--timeout-per-cell S]</c>.</summary>
internal static class NotebookCommand
{
    public static Command Build()
    {
        var run = BuildRun();
        return new Command("notebook", "Work with Polyglot (C#) notebooks headlessly.") { run, BuildExport() };
    }

    private static Command BuildRun()
    {
        // Arity and unmatched tokens are checked in the action, so that bad arguments exit with 2 and a clear message.
        var input = new Argument<FileInfo?>("notebook") { Description = "The .ipynb notebook to run.", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<FileInfo?>("--out", "-o") { Description = "Where to write the executed notebook (default: NAME.executed.ipynb beside the input)." };
        var parameters = new Option<string[]>("--parameter", "-p")
        {
            Description = "A value for a variable of the cell tagged 'parameters', as name=value (repeatable).",
            AllowMultipleArgumentsPerToken = false,
        };
        var keepGoing = new Option<bool>("--keep-going") { Description = "Run every cell even after one fails; exit 0 anyway." };
        var timeout = new Option<string?>("--timeout-per-cell") { Description = "Stop the run when a cell takes longer than this many seconds.", HelpName = "seconds" };
        var cmd = new Command("run", "Run the C# cells of a notebook in order and write it with its outputs.")
        {
            input, output, parameters, keepGoing, timeout,
        };
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction((parse, ct) => Cli.RunAsync(parse, async () =>
        {
            if (parse.UnmatchedTokens.Count > 0) return Fail($"unexpected argument(s): {string.Join(" ", parse.UnmatchedTokens)} (see roentgen notebook run --help)");
            if (parse.GetValue(input) is not { } file) return Fail("which notebook? usage: roentgen notebook run IN.ipynb [--out OUT.ipynb] [-p name=value ...]");
            if (!file.Exists) return Fail($"notebook not found: {file.FullName}");
            if (!TryParseParameters(parse.GetValue(parameters) ?? [], out var values, out var problem)) return Fail(problem);
            double? seconds = null;
            if (parse.GetValue(timeout) is { } timeoutText)
            {
                if (!double.TryParse(timeoutText, NumberStyles.Float, CultureInfo.InvariantCulture, out var t) || !(t > 0) || double.IsInfinity(t))
                    return Fail($"--timeout-per-cell must be a positive number of seconds (got '{timeoutText}')");
                seconds = t;
            }

            var outPath = parse.GetValue(output)?.FullName ?? NotebookRunner.DefaultOutputPath(file.FullName);
            OutputPaths.RefuseSame(file.FullName, "notebook", outPath, "--out");
            AtomicFile.EnsureWritable(outPath, "--out");
            var log = Console.Out; // cells' console output is captured into the notebook; progress goes here
            var options = new NotebookRunOptions
            {
                Parameters = values,
                KeepGoing = parse.GetValue(keepGoing),
                TimeoutPerCell = seconds is double s ? TimeSpan.FromSeconds(s) : null,
                WorkingDirectory = file.DirectoryName, // as in VS Code: relative paths in cells start at the notebook

                CellStarting = (i, _) => log.Write($"cell {i + 1} ... "),
                CellFinished = r => PrintCell(log, r),
            };

            log.WriteLine($"running {Cli.Escape(file.FullName)}");
            var result = await new NotebookRunner(options).RunFileAsync(file.FullName, outPath, ct);

            var failed = result.Cells.Count(c => c.IsFailure);
            var ran = result.Cells.Count(c => c.Status is CellRunStatus.Succeeded or CellRunStatus.Failed or CellRunStatus.TimedOut);
            log.WriteLine($"{ran} code cells run, {failed} failed; wrote {Cli.Escape(outPath)}");
            if (failed > 0 && !options.KeepGoing) return 1;
            return 0;
        }));
        return cmd;
    }

    private static Command BuildExport()
    {
        var input = new Argument<FileInfo?>("notebook") { Description = "The .ipynb notebook (for --to html: an executed one).", Arity = ArgumentArity.ZeroOrOne };
        var to = new Option<string>("--to") { Description = "cs: a C# file-based app (dotnet run NAME.cs) that writes NAME.html; html: the notebook and its outputs as one page.", DefaultValueFactory = _ => "cs" };
        var output = new Option<FileInfo?>("--out", "-o") { Description = "Where to write (default: apps/NAME.cs beside the notebook; NAME.html beside it for html)." };
        var project = new Option<FileInfo?>("--project") { Description = "RoentGen.Interactive.csproj for the app's #:project line (default: found above the notebook)." };
        var cmd = new Command("export", "Write a notebook as a C# file-based app, or an executed notebook as an HTML page.") { input, to, output, project };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            if (parse.GetValue(input) is not { } file) return Fail("which notebook? usage: roentgen notebook export NB.ipynb --to cs|html [--out FILE]");
            if (!file.Exists) return Fail($"notebook not found: {file.FullName}");
            var kind = parse.GetValue(to);
            string written;
            if (kind == "cs")
            {
                written = NotebookExport.ExportFile(file.FullName, parse.GetValue(output)?.FullName, parse.GetValue(project)?.FullName);
                Console.WriteLine(Cli.Escape($"wrote {written}; run it with: dotnet run {Path.GetRelativePath(Environment.CurrentDirectory, written)}"));
            }
            else if (kind == "html")
            {
                written = NotebookHtml.Write(file.FullName, parse.GetValue(output)?.FullName);
                Console.WriteLine($"wrote {Cli.Escape(written)}");
            }
            else return Fail($"--to must be cs or html (got '{kind}')");
            return 0;
        }));
        return cmd;
    }

    private static void PrintCell(TextWriter log, CellRunResult r)
    {
        var time = r.Duration.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture);
        switch (r.Status)
        {
            case CellRunStatus.NotCode:
                return;
            case CellRunStatus.Succeeded:
                log.WriteLine($"ok ({time} s)");
                break;
            case CellRunStatus.Failed:
            case CellRunStatus.TimedOut:
                log.WriteLine($"{(r.Status == CellRunStatus.Failed ? "FAILED" : "TIMED OUT")} ({time} s): {Cli.Escape(r.Message)}");
                break;
            default:
                log.WriteLine($"cell {r.Index + 1} {r.Status.ToString().ToLowerInvariant()}: {Cli.Escape(r.Message)}");
                break;
        }
    }

    private static bool TryParseParameters(string[] items, out Dictionary<string, string> values, out string problem)
    {
        values = new Dictionary<string, string>(StringComparer.Ordinal);
        problem = "";
        foreach (var item in items)
        {
            var eq = item.IndexOf('=');
            if (eq <= 0)
            {
                problem = $"-p expects name=value, got '{item}'";
                return false;
            }
            var name = item[..eq].Trim();
            if (!values.TryAdd(name, item[(eq + 1)..]))
            {
                problem = $"parameter '{name}' given twice";
                return false;
            }
        }
        return true;
    }

    private static int Fail(string message) => Cli.Fail(message);
}
