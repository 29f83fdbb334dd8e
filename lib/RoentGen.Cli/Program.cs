using System.CommandLine;
using RoentGen.Cli.Commands;

// `roentgen`: thin verbs over the RoentGen library. One file per verb group under Commands/.
var root = new RootCommand("RoentGen.Notebooks: chest X-ray generative and representation learning, on CPU.");
root.Subcommands.Add(DoctorCommand.Build());
root.Subcommands.Add(DataCommand.Build());
return root.Parse(args).Invoke();
