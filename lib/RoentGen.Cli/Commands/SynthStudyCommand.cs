using System.CommandLine;
using RoentGen.Diffusion;
using RoentGen.Experiments;
using RoentGen.Feedback;
using RoentGen.Synthetic;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen synth-study --preset quick|tiny --out DIR [--generator DIR] [--mask-model DIR] [--ratings FILE] [--seeds 0,1]
/// [--sizes 100,300] [--real-sample DIR]</c>: the downstream synthetic-data study (<see cref="SyntheticDataStudy"/>);
/// DIR/results.json and DIR/report.html. Every cell is written as it finishes, so a second call resumes.
/// </summary>
internal static class SynthStudyCommand
{
    public static Command Build()
    {
        var preset = new Option<string>("--preset") { Description = $"Budget: {string.Join(", ", SyntheticDataStudyConfig.PresetNames)}.", DefaultValueFactory = _ => "quick" };
        var config = new Option<string?>("--config") { Description = "A SyntheticDataStudyConfig JSON file (overrides --preset)." };
        var output = new Option<string>("--out") { Description = "Output folder: config.json, synthetic/, cells/, real-sample/, results.json, report.html.", Required = true };
        var generator = new Option<DirectoryInfo?>("--generator") { Description = "LDM run folder (or diffusers folder) for the text-conditioned arms; without it they are skipped." };
        var maskModel = new Option<DirectoryInfo?>("--mask-model") { Description = "Mask-conditioned generator folder; without it the mask arms use the phantom oracle (an upper bound)." };
        var ratings = new Option<FileInfo?>("--ratings") { Description = "Expert ratings CSV from 'roentgen feedback export': images rated but not accepted (or rejected by anyone) are dropped by the filtered arms." };
        var seeds = new Option<string?>("--seeds") { Description = "Comma-separated seeds (default: 0 to the preset's count - 1)." };
        var sizes = new Option<string?>("--sizes") { Description = "Comma-separated real-set sizes (default: the preset's)." };
        var realSample = new Option<DirectoryInfo?>("--real-sample") { Description = "labels.csv folder of real images with lung masks (default: ../shared/data/real-cxr-sample beside the repository; skipped when absent)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var cmd = new Command("synth-study",
            "The synthetic-data study (Prakash et al. 2024): classifier and segmenter trained on real phantoms alone and with text- or mask-conditioned synthetic images, filtered by proxy models or not, over set sizes and seeds; paired differences with intervals, one-sided t-tests, Bonferroni and Holm; resumes from --out.")
            { preset, config, output, generator, maskModel, ratings, seeds, sizes, realSample, threads };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var cfg = parse.GetValue(config) is string path ? SyntheticDataStudyConfig.Load(path) : SyntheticDataStudyConfig.FromPreset(parse.GetValue(preset)!);
            if (parse.GetValue(sizes) is string sz)
                cfg = cfg with { Sizes = sz.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => int.TryParse(s, out int n) && n > 1 ? n
                    : throw new ArgumentException($"--sizes: '{s}' is not a set size of at least 2; expected e.g. 100,300,1000")).ToList() };
            cfg.Validate();
            var seedList = parse.GetValue(seeds) is string s ? EncoderComparisonSeeds.ParseSeeds(s, "--seeds") : null;
            var outDir = Path.GetFullPath(parse.GetValue(output)!);
            TextToImagePipeline? text = null;
            string textName = "none";
            if (parse.GetValue(generator) is { } g)
            {
                if (!g.Exists) throw new DirectoryNotFoundException($"--generator: no such folder: {g.FullName}");
                text = LatentDiffusionRuns.LoadPipeline(g.FullName);
                textName = g.FullName;
            }
            IMaskConditionedGenerator? mask = parse.GetValue(maskModel) is { } m ? LoadMaskGenerator(m.FullName) : null;
            IReadOnlySet<string>? rejected = null;
            if (parse.GetValue(ratings) is { } r)
            {
                if (!r.Exists) throw new FileNotFoundException($"--ratings: no such file: {r.FullName}", r.FullName);
                var verdicts = RatingSelection.Verdicts(RatingStore.ReadCsv(r.FullName));
                var keep = new RatingFilter { AcceptedOnly = true, KeepUnrated = true };
                rejected = verdicts.Values.Where(v => !RatingSelection.Passes(v, keep)).Select(v => v.ImageId).ToHashSet(StringComparer.Ordinal);
                Console.WriteLine($"--ratings: {verdicts.Count} rated images, {rejected.Count} not accepted (dropped by the filtered arms)");
            }
            var sample = parse.GetValue(realSample)?.FullName;
            if (sample is null && QuickstartCommand.RepositoryRoot() is { } root)
                sample = Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "real-cxr-sample"));
            var result = SyntheticDataStudy.Run(cfg, outDir, new SyntheticDataStudyOptions
            {
                TextGenerator = text, TextGeneratorName = textName, MaskGenerator = mask, MaskGeneratorName = mask is null ? null : parse.GetValue(maskModel)!.FullName,
                TextGeneratorWeights = text is null ? null : RoentGen.Platform.ModelFingerprint.Of(textName),
                MaskGeneratorWeights = mask is null ? null : RoentGen.Diffusion.MaskConditionedModels.Fingerprint(parse.GetValue(maskModel)!.FullName),
                ExpertRejected = rejected, RealSample = sample, Seeds = seedList,
            }, line => Console.WriteLine(Cli.Escape(line)));
            Cli.Print(result.HeadlineTable());
            Cli.Print(result.DifferenceTable());
            Cli.Print(result.FilterTable());
            Console.WriteLine(Cli.Escape($"real sample: {(result.RealSample is { } rs ? FormattableString.Invariant($"lung Dice {rs.Difference:+0.000;-0.000} (95% CI {rs.Lower:0.000} to {rs.Upper:0.000}, p {rs.P:0.0000}); ") : "")}{result.RealSampleNote}"));
            Console.WriteLine($"wrote {Cli.Escape(Path.Combine(outDir, SyntheticDataStudy.ResultFile))}");
            Console.WriteLine($"wrote {Cli.Escape(SyntheticDataStudyReport.Save(result, outDir))}");
        }));
        return cmd;
    }

    /// <summary>The mask-conditioned generator of <c>--mask-model DIR</c>: a <c>roentgen masks train</c> run folder (ControlNet or input-concat) or its model/ folder.</summary>
    static IMaskConditionedGenerator LoadMaskGenerator(string dir) => RoentGen.Diffusion.MaskConditionedModels.Load(dir);
}
