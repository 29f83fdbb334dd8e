using System.CommandLine;
using RoentGen.Platform;
using Spectre.Console;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen doctor [--json FILE] [--no-measure]</c>.</summary>
internal static class DoctorCommand
{
    public static Command Build()
    {
        var json = new Option<FileInfo?>("--json") { Description = "Also write the report as JSON to this file ('-' for standard output only)." };
        var noMeasure = new Option<bool>("--no-measure") { Description = "Skip the matmul timing." };
        var cmd = new Command("doctor", "Check that libtorch loads, report versions, threads, CPU features and matmul GFLOP/s.") { json, noMeasure };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var file = parse.GetValue(json);
            var toFile = file is not null && file.Name != "-";
            if (toFile) AtomicFile.EnsureWritable(file!.FullName, "--json");
            var report = Doctor.Run(measure: !parse.GetValue(noMeasure));
            if (file is not null && !toFile)
            {
                Console.WriteLine(report.ToJson());
            }
            else
            {
                Print(report);
                if (toFile)
                {
                    AtomicFile.WriteAllText(file!.FullName, report.ToJson());
                    Console.WriteLine($"wrote {Cli.Escape(file.FullName)}");
                }
            }
            if (!report.LibTorchLoaded) return Cli.Fail($"libtorch could not be loaded: {report.LoadError}");
            return 0;
        }));
        return cmd;
    }

    private static void Print(DoctorReport r)
    {
        var t = new Table().AddColumn("check").AddColumn("value");
        void Row(string k, string? v) => t.AddRow(Markup.Escape(k), Markup.Escape(v ?? "n/a"));
        Row("libtorch loaded", r.LibTorchLoaded ? "yes" : "NO: " + r.LoadError);
        Row("TorchSharp", r.TorchSharpVersion);
        Row("libtorch", r.LibTorchVersion);
        Row("backend", r.Backend);
        Row("threads (libtorch / logical CPUs)", $"{r.Threads?.ToString() ?? "?"} / {r.ProcessorCount}");
        Row("CPU", r.CpuModel);
        Row("CPU features", string.Join(" ", r.CpuFeatures));
        Row("OS / runtime", $"{r.Os} / {r.Runtime}");
        Row("GLIBCXX_3.4.32 fix needed", r.CompatFixNeeded?.ToString().ToLowerInvariant());
        Row("GLIBCXX_3.4.32 fix applied", r.CompatFixApplied?.ToString().ToLowerInvariant());
        Row("oneDNN", r.OneDnn);
        Row("float32 matmul", r.MatmulGflops is double g ? $"{g:F1} GFLOP/s" : null);
        Cli.Out.Write(t);
    }
}
