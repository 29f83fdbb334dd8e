using System.CommandLine;
using System.Diagnostics;
using RoentGen.Data.Datasets;
using RoentGen.Evaluation.Probes;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Vision;
using RoentGen.Experiments;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen check-real --data PATH/labels.csv|DIR [--comparison DIR] [--encoder NAME=DIR ...] [--random] [--json FILE]</c>:
/// the real-data check (<see cref="RealDataCheck"/>) of frozen encoders: leave-one-out k-NN of a source label against
/// normals, and cross-validated segmentation Dice from the masks, with each encoder's difference to random init.
/// </summary>
internal static class CheckRealCommand
{
    public static Command Build()
    {
        var data = new Option<string>("--data") { Description = "A labels.csv in the generic layout, or its folder.", Required = true };
        var comparison = new Option<string?>("--comparison") { Description = "A compare-encoders output folder: checks its dino, clip, supervised and random encoders." };
        var encoders = new Option<string[]>("--encoder")
        {
            Description = "NAME=DIR: a ViT checkpoint folder to check under NAME (repeat for several; a bare DIR is named after its folder).",
            AllowMultipleArgumentsPerToken = false,
        };
        var random = new Option<bool>("--random") { Description = "Add a random-init ViT named 'random' (shaped like the first encoder) as the baseline." };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the result as JSON to this file." };
        var positive = new Option<string>("--positive") { Description = "Source label of the positive class.", DefaultValueFactory = _ => "tuberculosis" };
        var allNegatives = new Option<bool>("--negatives-from-all-datasets")
        {
            Description = "Take normal rows from every dataset, not only from the positives' datasets (lets the k-NN separate sources instead of findings).",
        };
        var k = new Option<int>("--k") { Description = "k-NN neighbours.", DefaultValueFactory = _ => 5 };
        var folds = new Option<int>("--folds") { Description = "Segmentation cross-validation folds (grouped by patient).", DefaultValueFactory = _ => 4 };
        var epochs = new Option<int>("--epochs") { Description = "Segmentation head epochs per fold.", DefaultValueFactory = _ => 60 };
        var seed = new Option<int>("--seed") { Description = "Seed of the folds, the heads and the random encoder.", DefaultValueFactory = _ => 0 };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var outside = Cli.AllowOutsideRootOption();
        var cmd = new Command("check-real",
            "Probe frozen encoders on a small real sample: leave-one-out k-NN (e.g. tuberculosis vs normal) and cross-validated Dice from its masks, next to random init.")
        {
            data, comparison, encoders, random, json, positive, allNegatives, k, folds, epochs, seed, threads, outside,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var options = new RealDataCheckOptions
            {
                PositiveLabel = parse.GetValue(positive)!, NegativesFromAllDatasets = parse.GetValue(allNegatives), K = parse.GetValue(k),
                Folds = parse.GetValue(folds), SegmentationEpochs = parse.GetValue(epochs), Seed = parse.GetValue(seed), AllowOutsideRoot = parse.GetValue(outside),
            };
            options.Validate();
            var jsonFile = parse.GetValue(json);
            if (jsonFile is not null) AtomicFile.EnsureWritable(jsonFile.FullName, "--json");
            var list = OpenEncoders(parse.GetValue(comparison), parse.GetValue(encoders) ?? [], parse.GetValue(random), options.Seed);
            var watch = Stopwatch.StartNew();
            var result = RealDataCheck.Run(list, parse.GetValue(data)!, options, line => Console.WriteLine(Cli.Escape(line)));
            Cli.Print(result.ToDataFrame(transfer: false));
            if (result.Random is not null && result.Encoders.Count > 1)
            {
                Console.WriteLine("transfer over random init (encoder minus random):");
                Cli.Print(result.TransferTable());
            }
            Console.WriteLine(result.Summary());
            Console.WriteLine($"{watch.Elapsed.TotalSeconds:0.#} s");
            Cli.SaveJson(jsonFile, result.Save);
            return 0;
        }));
        return cmd;
    }

    private static List<IImageEncoder> OpenEncoders(string? comparison, string[] specs, bool random, int seed)
    {
        var list = new List<IImageEncoder>();
        if (comparison is not null)
        {
            if (!Directory.Exists(comparison)) throw new DirectoryNotFoundException($"--comparison: no such folder: {comparison}");
            list.AddRange(EncoderComparisonResult.Load(Path.Combine(comparison, EncoderComparison.ResultFile)).OpenEncoders());
        }
        foreach (var spec in specs)
        {
            var (name, dir) = Cli.NamedFolder(spec, "--encoder");
            var loaded = VitEncoder.Load(dir);
            list.Add(name is null ? loaded : new VitEncoder(loaded.Model, name, loaded.Normalization));
        }
        if (random)
        {
            if (list.Any(e => e.Name == RealDataCheckResult.Baseline))
                Console.WriteLine("--random: an encoder named 'random' is already there (from --comparison); not adding another");
            else
            {
                var shape = list.OfType<VitEncoder>().FirstOrDefault()?.Model.Config ?? new VitConfig();
                list.Add(new VitEncoder(new RandomEncoder(shape, seed).Model, RealDataCheckResult.Baseline));
            }
        }
        if (list.Count == 0) throw new ArgumentException("no encoder to check: give --comparison DIR, --encoder NAME=DIR or --random");
        return list;
    }
}
