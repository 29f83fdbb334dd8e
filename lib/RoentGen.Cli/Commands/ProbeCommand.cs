using System.CommandLine;
using RoentGen.Data.Datasets;
using RoentGen.Evaluation.Probes;
using RoentGen.Platform;
using RoentGen.Vision;
using Spectre.Console;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen probe --encoder DIR|random --data phantoms|PATH/labels.csv --target labels|sex|age|segmentation|report
/// [--json FILE] [--n N] [--size S]</c>: frozen-encoder probes.
/// </summary>
internal static class ProbeCommand
{
    public static Command Build()
    {
        var encoder = new Option<string>("--encoder")
        {
            Description = "A ViT checkpoint folder (config.json + model.safetensors or backbone.safetensors), or 'random' for a randomly initialised ViT.",
            Required = true,
        };
        var data = new Option<string>("--data") { Description = "'phantoms', or a labels.csv in the generic layout (or its folder).", Required = true };
        var target = new Option<string>("--target")
        {
            Description = "Probes to run, comma-separated: labels, sex, age, segmentation, report (default: all).",
            DefaultValueFactory = _ => "labels,sex,age,segmentation,report",
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results as JSON to this file." };
        var n = new Option<int?>("--n") { Description = "Phantom cases to generate (default 200), or the most labels.csv rows to read (default: all)." };
        var outside = Cli.AllowOutsideRootOption();
        var size = new Option<int?>("--size") { Description = "Image and mask side in pixels (default: the encoder's input size)." };
        var cmd = new Command("probe", "Judge a frozen image encoder with linear, k-NN, sex/age, segmentation and report-generation probes.")
            { encoder, data, target, json, n, size, outside };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var targets = parse.GetValue(target)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(ProbeSuiteOptions.ParseTarget).ToList();
            if (targets.Count == 0) throw new ArgumentException("--target names no probe");
            if (parse.GetValue(n) is int count && count < 6) throw new ArgumentException($"--n must be at least 6 (train, validation and test need images), got {count}");
            if (parse.GetValue(size) is int s && (s < 16 || s > 1024)) throw new ArgumentException($"--size must be between 16 and 1024 pixels, got {s}");
            var options = new ProbeSuiteOptions { Targets = targets };
            var jsonFile = parse.GetValue(json);
            if (jsonFile is not null) AtomicFile.EnsureWritable(jsonFile.FullName, "--json");

            var enc = OpenEncoder(parse.GetValue(encoder)!, parse.GetValue(size));
            int side = parse.GetValue(size) ?? enc.InputSize;
            var source = parse.GetValue(data)!;
            var probeData = string.Equals(source, "phantoms", StringComparison.OrdinalIgnoreCase)
                ? ProbeData.FromPhantoms(parse.GetValue(n) ?? 200, side)
                : ProbeData.FromCsv(source, side, limit: parse.GetValue(n), allowOutsideRoot: parse.GetValue(outside));
            Cli.Out.MarkupLine($"[grey]{Markup.Escape(Cli.Escape(enc.Name))} on {Markup.Escape(Cli.Escape(probeData.Name))}: {probeData.Train.Count} train, {probeData.Validation.Count} validation, {probeData.Test.Count} test[/]");
            var results = ProbeSuite.Run(enc, probeData, options);
            Print(results);
            if (jsonFile is not null)
            {
                AtomicFile.WriteAllText(jsonFile.FullName, results.ToJson());
                Console.WriteLine($"wrote {Cli.Escape(jsonFile.FullName)}");
            }
        }));
        return cmd;
    }

    private static IImageEncoder OpenEncoder(string spec, int? size)
    {
        if (!string.Equals(spec, "random", StringComparison.OrdinalIgnoreCase)) return VitEncoder.Load(spec);
        var config = new VitConfig();
        if (size is int s)
        {
            if (s % config.PatchSize != 0) throw new ArgumentException($"--size {s} must be a multiple of the random ViT's patch size {config.PatchSize}");
            config = config with { ImageSize = s };
        }
        return new RandomEncoder(config);
    }

    private static void Print(ProbeResults r)
    {
        var table = new Table().AddColumn("probe").AddColumn("metric").AddColumn("value", c => c.RightAligned());
        foreach (var m in r.Metrics)
            table.AddRow(Markup.Escape(Cli.Escape(m.Probe)), Markup.Escape(Cli.Escape(m.Metric)), double.IsFinite(m.Value) ? m.Value.ToString("0.###") : "n/a");
        foreach (var (probe, why) in r.NotAvailable) table.AddRow(Markup.Escape(Cli.Escape(probe)), "", Markup.Escape(Cli.Escape(why)));
        Cli.Out.Write(table);
        Cli.Out.MarkupLine($"[grey]{r.Seconds:0.#} s[/]");
    }
}
