using System.CommandLine;
using RoentGen.Platform;
using Spectre.Console;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen bench [--only a,b] [--json FILE] [--config FILE] [--peer-script bench.py]</c>.</summary>
internal static class BenchCommand
{
    public static Command Build()
    {
        var json = new Option<FileInfo?>("--json") { Description = "Also write the figures as JSON to this file." };
        var only = new Option<string?>("--only") { Description = $"Comma-separated groups to run: {string.Join(", ", Benchmarks.Groups)} (default: all)." };
        var config = new Option<FileInfo?>("--config") { Description = "An experiment.json whose models the ldm group measures (default: the quick preset the quickstart trains)." };
        var peer = new Option<FileInfo?>("--peer-script") { Description = "The PyTorch peer script (shared/bench/peer-unet/bench.py): the peer-unet group runs it (unet_fp32, unet_bf16) alternately with ours and reports the ratios." };
        var cmd = new Command("bench", "Speed and memory benchmarks of the library on this machine.") { json, only, config, peer };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var groups = parse.GetValue(only)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var file = parse.GetValue(json);
            if (file is not null) AtomicFile.EnsureWritable(file.FullName, "--json");
            var ldm = parse.GetValue(config) is { } configFile ? RoentGen.Diffusion.LdmExperimentConfig.Load(configFile.FullName) : null;
            var peerScript = parse.GetValue(peer);
            if (peerScript is not null && !peerScript.Exists) throw new FileNotFoundException($"--peer-script: {peerScript.FullName} does not exist", peerScript.FullName);
            var report = Benchmarks.Run(groups, f => Cli.Out.MarkupLine($"[bold]{Markup.Escape(f.Name)}[/]: {f.Value:G4} {Markup.Escape(f.Unit)} [grey]({Markup.Escape(Cli.Escape(f.Detail))})[/]"), ldm,
                peerScript?.FullName);
            Cli.Out.MarkupLine($"peak RSS: {report.PeakRssMb:F0} MiB");
            if (file is not null)
            {
                AtomicFile.WriteAllText(file.FullName, report.ToJson());
                Console.WriteLine($"wrote {Cli.Escape(file.FullName)}");
            }
        }));
        return cmd;
    }
}
