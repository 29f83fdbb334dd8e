using System.CommandLine;
using RoentGen.Cli.Commands;
using RoentGen.Interactive;

// `roentgen`: thin verbs over the RoentGen library. One file per verb group under Commands/.
// Long jobs show a Spectre.Console bar (log lines when output is redirected, as in CI).
ProgressReporter.SinkFactory = ProgressSinks.SpectreConsole;

var root = new RootCommand("RoentGen.Notebooks: chest X-ray generative and representation learning, on CPU.");
root.Options.Add(Cli.Verbose);
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
root.Subcommands.Add(SegmentCommand.Build());
root.Subcommands.Add(CompareEncodersCommand.BuildCompare());
root.Subcommands.Add(CompareEncodersCommand.BuildAblate());
root.Subcommands.Add(AdaptCommand.Build());
root.Subcommands.Add(TextProbeCommand.Build());
root.Subcommands.Add(AugmentStudyCommand.Build());
root.Subcommands.Add(WeightsCommand.Build());
root.Subcommands.Add(PairAugCommand.Build());
root.Subcommands.Add(MergeCommand.Build());
root.Subcommands.Add(FeedbackCommand.Build());
root.Subcommands.Add(FinetuneCommand.Build());
root.Subcommands.Add(MasksCommand.Build());
root.Subcommands.Add(SynthStudyCommand.Build());
foreach (var verb in JudgeCommand.Build()) root.Subcommands.Add(verb);

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 && !args.Contains("--help") && !args.Contains("-h"))
{
    // Bad arguments are user errors like any other (Cli's policy): one line, exit 2.
    return Cli.Fail(string.Join("; ", parsed.Errors.Select(e => e.Message)) + " (run 'roentgen VERB --help' for usage)");
}
// Every verb's action runs under Cli.Run, so an exception never reaches System.CommandLine's own handler (a raw trace).
return parsed.Invoke();
