using System.CommandLine;
using RoentGen.Cli.Commands;
using RoentGen.Interactive;

// `roentgen`: thin verbs over the RoentGen library. One file per verb group under Commands/.
// Long jobs show a Spectre.Console bar (log lines when output is redirected, as in CI).
ProgressReporter.SinkFactory = ProgressSinks.SpectreConsole;

var root = new RootCommand("RoentGen.Notebooks: chest X-ray generative and representation learning, on CPU.");
root.Subcommands.Add(DoctorCommand.Build());
root.Subcommands.Add(BenchCommand.Build());
root.Subcommands.Add(NotebookCommand.Build());
root.Subcommands.Add(DataCommand.Build());
root.Subcommands.Add(QuickstartCommand.Build());
root.Subcommands.Add(TrainCommand.Build());
root.Subcommands.Add(SampleCommand.Build());
root.Subcommands.Add(EvaluateCommand.Build());
root.Subcommands.Add(ProbeCommand.Build());
root.Subcommands.Add(CheckRealCommand.Build());
root.Subcommands.Add(CompareEncodersCommand.BuildCompare());
root.Subcommands.Add(CompareEncodersCommand.BuildAblate());

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 && !args.Contains("--help") && !args.Contains("-h"))
{
    // Bad arguments exit 2 (as the verbs' own argument checks do), with System.CommandLine's messages.
    foreach (var error in parsed.Errors) Console.Error.WriteLine($"error: {error.Message}");
    Console.Error.WriteLine("Run 'roentgen --help' (or 'roentgen VERB --help') for usage.");
    return 2;
}
return parsed.Invoke();
