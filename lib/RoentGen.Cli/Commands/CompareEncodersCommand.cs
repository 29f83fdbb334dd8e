using System.CommandLine;
using RoentGen.Data.Datasets;
using RoentGen.Evaluation.Probes;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Experiments;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen compare-encoders --preset tiny|quick --out DIR [--json FILE] [--steps N] [--phantoms N] [--probe-phantoms N]</c>
/// and <c>roentgen ablate-dino --preset tiny|quick --out DIR [--variant NAME,...] [--json FILE] ...</c>: RAD-DINO's
/// four-encoder comparison (DINO, CLIP-style, supervised, random) and the DINO ablations, on phantoms. Both resume.
/// </summary>
internal static class CompareEncodersCommand
{
    private sealed record Common(Option<string> Preset, Option<string?> Config, Option<string> Out, Option<FileInfo?> Json, Option<int?> Steps,
        Option<int?> Phantoms, Option<int?> ProbePhantoms, Option<int?> Threads)
    {
        public static Common Create() => new(
            new Option<string>("--preset") { Description = $"Budget and ViT: {string.Join(", ", EncoderComparisonConfig.PresetNames)}.", DefaultValueFactory = _ => "quick" },
            new Option<string?>("--config") { Description = "An EncoderComparisonConfig JSON file (overrides --preset; probes follow --preset)." },
            new Option<string>("--out") { Description = "Output folder: one run folder per encoder, probe caches, the result JSON.", Required = true },
            new Option<FileInfo?>("--json") { Description = "Also write the result JSON to this file." },
            new Option<int?>("--steps") { Description = "Optimizer steps of every encoder (overrides the preset)." },
            new Option<int?>("--phantoms") { Description = "Training phantoms (overrides the preset)." },
            new Option<int?>("--probe-phantoms") { Description = "Held-out probe phantoms (overrides the preset)." },
            new Option<int?>("--threads") { Description = "libtorch intra-op threads." });

        public void AddTo(Command cmd)
        {
            cmd.Options.Add(Preset); cmd.Options.Add(Config); cmd.Options.Add(Out); cmd.Options.Add(Json); cmd.Options.Add(Steps);
            cmd.Options.Add(Phantoms); cmd.Options.Add(ProbePhantoms); cmd.Options.Add(Threads);
        }

        public (EncoderComparisonConfig Config, ProbeSuiteOptions Probes) Resolve(ParseResult parse)
        {
            if (parse.GetValue(Threads) is int t)
            {
                if (t < 1) throw new ArgumentException($"--threads must be at least 1, got {t}");
                RoentGen.Platform.TorchThreads.Set(t);
            }
            var preset = parse.GetValue(Preset)!;
            var cfg = parse.GetValue(Config) is string path ? EncoderComparisonConfig.Load(path) : EncoderComparisonConfig.FromPreset(preset);
            cfg = cfg with
            {
                Steps = parse.GetValue(Steps) ?? cfg.Steps,
                Phantoms = parse.GetValue(Phantoms) ?? cfg.Phantoms,
                ProbePhantoms = parse.GetValue(ProbePhantoms) ?? cfg.ProbePhantoms,
            };
            cfg.Validate();
            return (cfg, EncoderComparisonConfig.ProbesFor(preset));
        }
    }

    public static Command BuildCompare()
    {
        var c = Common.Create();
        var cmd = new Command("compare-encoders",
            "RAD-DINO's comparison on phantoms: DINOv2-style, CLIP-style, supervised and random-init ViTs, same data and steps, judged by every probe on held-out phantoms; resumes from --out.");
        c.AddTo(cmd);
        var seeds = new Option<string?>("--seeds")
        {
            Description = "Comma-separated seeds (e.g. 0,1,2): one comparison per seed in OUT/seed-S, then each metric's mean and spread and in how many seeds each claim held (OUT/seeds.json).",
        };
        cmd.Options.Add(seeds);
        cmd.SetAction(parse => Guard(() =>
        {
            var (cfg, probes) = c.Resolve(parse);
            if (parse.GetValue(seeds) is string list)
            {
                var summary = EncoderComparisonSeeds.Run(cfg, EncoderComparisonSeeds.ParseSeeds(list, "--seeds"), parse.GetValue(c.Out)!, probes);
                Cli.Print(summary.ToDataFrame());
                Cli.Print(summary.ClaimTable());
                Console.WriteLine(summary.Summary());
                Console.WriteLine($"wrote {Path.Combine(parse.GetValue(c.Out)!, EncoderSeedSummary.ResultFile)}");
                if (parse.GetValue(c.Json) is { } seedsFile)
                {
                    summary.Save(seedsFile.FullName);
                    Console.WriteLine($"wrote {seedsFile.FullName}");
                }
                return;
            }
            var result = EncoderComparison.Run(cfg, parse.GetValue(c.Out)!, probes);
            Cli.Print(result.ToDataFrame());
            foreach (var claim in result.Claims())
                Console.WriteLine($"{claim.Metric}: RAD-DINO claims images-only {claim.Claim}; here dino {claim.Dino:0.###}, clip {claim.Clip:0.###} "
                                  + $"(supervised {claim.Supervised:0.###}, random {claim.Random:0.###}): "
                                  + (claim.Holds switch { true => "holds", false => "does not hold", null => "undecided (missing, or all four encoders equal)" }));
            Console.WriteLine(result.Summary());
            Console.WriteLine($"wrote {Path.Combine(parse.GetValue(c.Out)!, EncoderComparison.ResultFile)}");
            if (parse.GetValue(c.Json) is { } file)
            {
                result.Save(file.FullName);
                Console.WriteLine($"wrote {file.FullName}");
            }
        }));
        return cmd;
    }

    public static Command BuildAblate()
    {
        var c = Common.Create();
        var variant = new Option<string?>("--variant")
        {
            Description = "Variants to run, comma-separated (default: all): baseline, phantoms-N (a quarter, four times), no-ibot, no-koleo, no-local-crops, global-crops-0.6.",
        };
        var cmd = new Command("ablate-dino",
            "DINO ablations at the comparison's budget: data quantity, iBOT off, KoLeo off, crop settings; one row per variant; resumes from --out (the baseline reuses a comparison's dino/ there).");
        c.AddTo(cmd);
        cmd.Options.Add(variant);
        cmd.SetAction(parse => Guard(() =>
        {
            var (cfg, probes) = c.Resolve(parse);
            var only = parse.GetValue(variant)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var result = DinoAblation.Run(cfg, parse.GetValue(c.Out)!, probes, only);
            Cli.Print(result.ToDataFrame());
            Console.WriteLine($"wrote {Path.Combine(parse.GetValue(c.Out)!, DinoAblation.ResultFile)}");
            if (parse.GetValue(c.Json) is { } file)
            {
                AtomicFile.WriteAllText(file.FullName, result.ToJson());
                Console.WriteLine($"wrote {file.FullName}");
            }
        }));
        return cmd;
    }

    private static int Guard(Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (Exception ex) when (ex is ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                   or DatasetFormatException or StateDictMismatchException or InvalidOperationException or IOException)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 1;
        }
    }
}
