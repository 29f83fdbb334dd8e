using System.CommandLine;
using RoentGen.Workflows;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen quickstart [--out DIR]</c>: the main job on the built-in data.</summary>
internal static class QuickstartCommand
{
    public static Command Build()
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder.", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("data", "generated", "quickstart")) };
        var n = new Option<int>("--n") { Description = "Phantoms written to disk.", DefaultValueFactory = _ => 500 };
        var noNotebooks = new Option<bool>("--no-notebooks") { Description = "Do not execute the notebooks." };
        var cmd = new Command("quickstart", "The main job: check the machine, build the CXR world, measure the labeler, run the notebooks, write report.html and metrics.json.") { output, n, noNotebooks };
        cmd.SetAction(async (parse, ct) =>
        {
            var root = RepositoryRoot();
            var options = new QuickstartOptions
            {
                OutputDir = parse.GetValue(output)!.FullName,
                PhantomCount = parse.GetValue(n),
                NotebookDir = parse.GetValue(noNotebooks) || root is null ? null : Path.Combine(root, "notebooks"),
                RealSampleDir = root is null ? null : Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "real-cxr-sample")),
            };
            var result = await Quickstart.RunAsync(options);
            Console.WriteLine($"done in {result.Seconds:F0} s: {options.OutputDir}/report.html, metrics.json");
            return result.Notebooks.Values.All(ok => ok) ? 0 : 1;
        });
        return cmd;
    }

    // The repository holding the notebooks: walk up from the working directory, then from the program.
    private static string? RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "RoentGen.Notebooks.sln"))) return d.FullName;
        return null;
    }
}
