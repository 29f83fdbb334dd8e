using System.CommandLine;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Evaluation;
using RoentGen.Platform;
using RoentGen.Vision.Segmentation;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen data stats --data phantoms|PATH/labels.csv [--reference PATH/labels.csv] [--count N] [--size PX] --json FILE</c>:
/// image statistics (<see cref="ImageStatistics"/>) of a set, beside a reference set's, with the histogram distances.
/// </summary>
internal static class DataStatsCommand
{
    public static Command Build()
    {
        var data = new Option<string>("--data") { Description = "'phantoms' (the built-in world) or a labels.csv (or its folder).", Required = true };
        var reference = new Option<string?>("--reference") { Description = "A labels.csv (or its folder) to compare with, e.g. real radiographs." };
        var count = new Option<int>("--count") { Description = "Images per set (the first ones; phantoms: cases 0..N-1).", DefaultValueFactory = _ => 64 };
        var size = new Option<int>("--size") { Description = "Square side the images are resized (padded) to.", DefaultValueFactory = _ => 128 };
        var seed = new Option<long>("--seed") { Description = "Phantom world seed.", DefaultValueFactory = _ => 0 };
        var json = new Option<FileInfo>("--json") { Description = "Write the statistics as JSON to this file.", Required = true };
        var outside = new Option<bool>("--allow-outside-root") { Description = "Accept image paths outside the labels.csv folder." };
        var cmd = new Command("stats", "Image statistics (body intensity histogram, noise power spectrum slope, edge density) of a set, beside a reference set.")
        {
            data, reference, count, size, seed, json, outside,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            int n = parse.GetValue(count), px = parse.GetValue(size);
            if (n < 1) throw new ArgumentException($"--count must be at least 1, got {n}");
            if (px < 16 || px > 1024) throw new ArgumentException($"--size must be 16..1024, got {px}");
            var jsonFile = parse.GetValue(json)!;
            AtomicFile.EnsureWritable(jsonFile.FullName, "--json");
            bool allow = parse.GetValue(outside);
            var set = Load(parse.GetValue(data)!, n, px, parse.GetValue(seed), allow);
            var refSet = parse.GetValue(reference) is string r ? Load(r, n, px, parse.GetValue(seed), allow) : null;
            var result = ImageStatistics.Compare(set, refSet);
            Console.WriteLine($"set: {Cli.Escape(set.Name)}, {set.Images.Count} images" + (refSet is null ? "" : $"; reference: {Cli.Escape(refSet.Name)}, {refSet.Images.Count} images"));
            Cli.Print(result.ToDataFrame());
            if (refSet is not null)
                Console.WriteLine($"body histogram: Wasserstein-1 {ImageStatistics.Format(result.HistogramW1)}, Jensen-Shannon {ImageStatistics.Format(result.HistogramJs)} ({Cli.Escape(set.Name)} vs {Cli.Escape(refSet.Name)})");
            result.Save(jsonFile.FullName);
            Console.WriteLine($"wrote {Cli.Escape(jsonFile.FullName)}");
            return 0;
        }));
        return cmd;
    }

    private static ImageSetStats Load(string source, int count, int size, long seed, bool allowOutsideRoot)
    {
        CxrDataset ds = source.Equals(SegmentationData.Phantoms, StringComparison.OrdinalIgnoreCase)
            ? SegmentationData.PhantomRecords(size, seed, count)
            : SegmentationData.LabelsCsv(source, allowOutsideRoot);
        if (ds.Count == 0) throw new InvalidDataException($"{ds.Name}: no images");
        var images = ds.Take(count).Select(rec => ds.LoadImage(rec, size)).ToList();
        return ImageStatistics.OfSet(ds.Name, images);
    }
}
