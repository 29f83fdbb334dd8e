using System.CommandLine;
using RoentGen.Experiments;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen adapt --preset quick|study|tiny --out DIR [--seeds 0,1,2] [--iu-reports FILE] [--threads N]</c>: RoentGen's
/// adaptation study (<see cref="DomainAdaptation"/>): the foundation model on the general-domain scenes, the domain
/// shift, the fine-tuning variants' curves over the seeds and the text-encoder probe; DIR/results.json and
/// DIR/report.html. Every stage is a run folder under DIR, so a second call resumes or skips.
/// </summary>
internal static class AdaptCommand
{
    public static Command Build()
    {
        var preset = new Option<string>("--preset") { Description = $"Budget: {string.Join(", ", DomainAdaptationConfig.PresetNames)}.", DefaultValueFactory = _ => "quick" };
        var config = new Option<string?>("--config") { Description = "A DomainAdaptationConfig JSON file (overrides --preset)." };
        var output = new Option<string>("--out") { Description = "Output folder: foundation/, judge/, seed-S/VARIANT/, results.json, report.html.", Required = true };
        var seeds = new Option<string>("--seeds") { Description = "Comma-separated fine-tuning seeds.", DefaultValueFactory = _ => "0,1,2" };
        var iu = new Option<FileInfo?>("--iu-reports") { Description = "Real IU reports CSV for the text probe (default: ../shared/data/real-cxr-sample/iu_xray_reports_sample.csv beside the repository, skipped when absent)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var cmd = new Command("adapt",
            "RoentGen's adaptation study: pretrain a foundation model on general-domain scenes, measure the domain shift, fine-tune it four ways (UNet only, UNet + text encoder, from scratch, VAE tuned) with curves over seeds, probe the text encoder; resumes from --out.")
            { preset, config, output, seeds, iu, threads };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var cfg = parse.GetValue(config) is string path ? DomainAdaptationConfig.Load(path) : DomainAdaptationConfig.FromPreset(parse.GetValue(preset)!);
            cfg.Validate();
            var seedList = EncoderComparisonSeeds.ParseSeeds(parse.GetValue(seeds)!, "--seeds");
            var outDir = Path.GetFullPath(parse.GetValue(output)!);
            var iuCsv = Cli.IuReportsCsv(parse.GetValue(iu));
            var result = DomainAdaptation.Run(cfg, seedList, outDir, iuCsv, line => Console.WriteLine(Cli.Escape(line)));
            Cli.Print(result.ShiftTable());
            Cli.Print(result.CurveTable());
            Cli.Print(result.TextProbeTable());
            Cli.Print(result.ClaimTable());
            Console.WriteLine($"wrote {Cli.Escape(Path.Combine(outDir, DomainAdaptation.ResultFile))}");
            Console.WriteLine($"wrote {Cli.Escape(DomainAdaptationReport.Save(result, outDir))}");
        }));
        return cmd;
    }
}
