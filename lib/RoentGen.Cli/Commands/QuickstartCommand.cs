using System.CommandLine;
using RoentGen.Experiments;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen quickstart [--out DIR]</c>: the main job on the built-in data.</summary>
internal static class QuickstartCommand
{
    public static Command Build()
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder.", DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("data", "generated", "quickstart")) };
        var n = new Option<int>("--n") { Description = "Phantoms written to disk.", DefaultValueFactory = _ => 500 };
        var noNotebooks = new Option<bool>("--no-notebooks") { Description = "Do not execute the notebooks." };
        var noDiffusion = new Option<bool>("--no-diffusion") { Description = "Skip the latent diffusion part (data stages only, seconds)." };
        var preset = new Option<string>("--preset") { Description = "quick (the full job, about 13-14 minutes measured on 2 cores), study (longer training with class-balanced sampling and varied report wording, and the laterality check; 66 minutes measured on 2 cores with bf16, sized for at most 75) or tiny (a smoke check in about a minute; numbers meaningless).", DefaultValueFactory = _ => "quick" };
        var precision = TrainCommand.PrecisionOption();
        var cmd = new Command("quickstart", "The main job: build the CXR world, train a text-to-CXR latent diffusion model, sample and evaluate it, run the quick notebooks, write report.html and metrics.json.")
            { output, n, noNotebooks, noDiffusion, preset, precision };
        cmd.SetAction((parse, ct) => Cli.RunAsync(parse, async () =>
        {
            if (parse.GetValue(n) < 1) return Cli.Fail($"--n must be at least 1, got {parse.GetValue(n)}");
            var root = RepositoryRoot();
            var options = new QuickstartOptions
            {
                OutputDir = parse.GetValue(output)!.FullName,
                PhantomCount = parse.GetValue(n),
                NotebookDir = parse.GetValue(noNotebooks) || root is null ? null : Path.Combine(root, "notebooks"),
                RealSampleDir = root is null ? null : Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "real-cxr-sample")),
            };
            switch (parse.GetValue(preset))
            {
                case "quick": break;
                case "tiny": options = Quickstart.TinyOptions(options); break;
                case "study": options = Quickstart.StudyOptions(options); break;
                case var p:
                    return Cli.Fail($"unknown preset '{p}'; expected quick, study or tiny");
            }
            options = options with { Diffusion = !parse.GetValue(noDiffusion) };
            if (parse.GetValue(precision) is { } chosen) options = options with { Ldm = options.Ldm with { Precision = Cli.ParsePrecision(chosen) } };
            var result = await Quickstart.RunAsync(options);
            Console.WriteLine($"done in {result.Seconds:F0} s: {options.OutputDir}/report.html, metrics.json");
            return result.Notebooks.Values.All(ok => ok) ? 0 : 1;
        }));
        return cmd;
    }

    // The repository holding the notebooks: walk up from the working directory, then from the program.
    internal static string? RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "RoentGen.Notebooks.sln"))) return d.FullName;
        return null;
    }
}
