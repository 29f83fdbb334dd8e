using System.CommandLine;
using System.Globalization;
using RoentGen.Experiments;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen augment-study --preset quick|tiny --out DIR [--generator DIR] [--seeds 0,1,2,3,4] [--sizes 250,1000] [--audit-candidates K]</c>:
/// RoentGen's downstream claim (<see cref="AugmentationStudy"/>): a classifier trained on real phantoms, on real plus
/// synthetic images and on a larger purely synthetic set, over seeds, with the memorization audit; DIR/results.json and
/// DIR/report.html. Every classifier run and synthetic image is written as it finishes, so a second call resumes.
/// </summary>
internal static class AugmentStudyCommand
{
    public static Command Build()
    {
        var preset = new Option<string>("--preset") { Description = $"Budget: {string.Join(", ", AugmentationStudyConfig.PresetNames)}.", DefaultValueFactory = _ => "quick" };
        var config = new Option<string?>("--config") { Description = "An AugmentationStudyConfig JSON file (overrides --preset)." };
        var output = new Option<string>("--out") { Description = "Output folder: generator/, synthetic/, judge/, runs/, results.json, report.html.", Required = true };
        var generator = new Option<string?>("--generator") { Description = "A trained model folder (roentgen train, quickstart, or an adapt variant), or a roentgen adapt output folder (its RoentGen variant is used); default: train a small one inside --out." };
        var seeds = new Option<string?>("--seeds") { Description = "Comma-separated classifier seeds (default: the preset's)." };
        var sizes = new Option<string?>("--sizes") { Description = "Comma-separated real training-set sizes N (default: the preset's)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var candidates = new Option<int?>("--audit-candidates")
        {
            Description = "Memorization audit: SSIM against each image's K most pixel-correlated training images instead of all of them (MemorizationOptions.SsimCandidates). Against a 16,000-image training set, 5,000 images take about 30 minutes in the full search and 4 with K = 1024, which found 88 of the full search's 90 near-duplicates in s18's check (256: 85). A new setting for a study folder: use a new --out.",
        };
        var cmd = new Command("augment-study",
            "RoentGen's downstream claim: train one classifier on real phantoms, real + synthetic, and a larger purely synthetic set over seeds; relative changes with intervals and the paper's +5 % / +3 %; a memorization audit; resumes from --out.")
            { preset, config, output, generator, seeds, sizes, threads, candidates };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var cfg = parse.GetValue(config) is string path ? AugmentationStudyConfig.Load(path) : AugmentationStudyConfig.FromPreset(parse.GetValue(preset)!);
            if (parse.GetValue(seeds) is string s) cfg = cfg with { Seeds = EncoderComparisonSeeds.ParseSeeds(s, "--seeds") };
            if (parse.GetValue(sizes) is string z) cfg = cfg with { Sizes = ParseSizes(z) };
            if (parse.GetValue(candidates) is int k) cfg = cfg with { Memorization = cfg.Memorization with { SsimCandidates = k } };
            cfg.Validate();
            var outDir = Path.GetFullPath(parse.GetValue(output)!);
            var result = AugmentationStudy.Run(cfg, outDir, parse.GetValue(generator), line => Console.WriteLine(Cli.Escape(line)));
            Cli.Print(result.ArmTable());
            Cli.Print(result.ClaimTable());
            Cli.Print(result.MemorizationTable());
            foreach (var line in result.Narrative()) Console.WriteLine(Cli.Escape(line));
            Console.WriteLine($"wrote {Cli.Escape(Path.Combine(outDir, AugmentationStudy.ResultFile))}");
            Console.WriteLine($"wrote {Cli.Escape(AugmentationStudyReport.Save(result, outDir))}");
        }));
        return cmd;
    }

    /// <summary>Parses "250,1000" into sizes.</summary>
    /// <exception cref="ArgumentException">An entry that is not a positive integer, or none.</exception>
    internal static IReadOnlyList<int> ParseSizes(string list)
    {
        var parts = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ArgumentException("--sizes needs at least one size, e.g. 250,1000");
        return parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v : throw new ArgumentException($"--sizes: '{p}' is not a positive integer")).ToList();
    }
}
