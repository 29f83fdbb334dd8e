using RoentGen.Data;
using RoentGen.Data.Reports;
using RoentGen.Platform;
using RoentGen.Training;

namespace RoentGen.PairAug;

/// <summary>
/// InterAug and IntraAug split over a cluster (<c>--shard i/N</c>): shard i draws its contiguous slice of the rewrites
/// (<see cref="Shard.Select{T}"/>, seeds kept as in the whole run) into OUT/shards/TAG/ (images/ and pairs.jsonl, the
/// latter written last, so a folder with it is finished and skipped; a shard that owns no rewrite writes an empty one,
/// <see cref="FinishEmpty"/>). Pruning rules see the whole batch (IntraAug's
/// thresholds are means over all pairs), so when every shard has finished, <see cref="MergeIfComplete"/> lists all pairs
/// in OUT/pairs.jsonl (image paths relative to OUT) and prunes them again together from their scores.
/// </summary>
public static class PairAugShards
{
    /// <summary>The pinned settings of an inter/intra output folder (shared by its shards).</summary>
    public const string SettingsFile = "settings.json";

    /// <summary>
    /// Pins what an inter/intra output folder's pairs are drawn with (the rewrites used, generator and scorer with their
    /// weights, sampler and pruning settings): a later call or another shard with other settings would put pairs of two
    /// set-ups in one pairs.jsonl (or skip a finished folder as if it were done with the new ones), so it is refused.
    /// </summary>
    /// <exception cref="RunStateException">A setting differs from the pinned one; the message names it.</exception>
    public static void PinSettings(string outDir, IReadOnlyDictionary<string, string?> settings) =>
        StudyPins.CheckAndRecord(Path.Combine(outDir, SettingsFile), settings,
            "this folder's pairs (or its other shards') were drawn with that value: give the same options, or use another --out");

    /// <summary>The folder of one shard's pairs.</summary>
    public static string ShardFolder(string outDir, Shard shard) => Path.Combine(outDir, "shards", shard.FileTag);

    /// <summary>True when a branch folder (whole run or shard) holds its pairs.jsonl.</summary>
    public static bool IsDone(string folder) => File.Exists(Path.Combine(folder, PairAugmentation.PairsFileName));

    /// <summary>
    /// Finishes a shard that owns no rewrite (more shards than rewrites): an empty pairs.jsonl, written as every branch
    /// writes its pairs, so <see cref="IsDone"/> holds and <see cref="MergeIfComplete"/> can count the shard.
    /// </summary>
    /// <param name="folder">The shard's folder (<see cref="ShardFolder"/>).</param>
    public static AugmentationResult FinishEmpty(string folder)
    {
        Directory.CreateDirectory(folder);
        return PairAugmentation.Finish(folder, [], [new("rewrites", 0), new("generated", 0), new("kept", 0), new("pruned", 0)]);
    }

    /// <summary>
    /// When all <paramref name="count"/> shards of <paramref name="outDir"/> are done, writes OUT/pairs.jsonl with every
    /// pair and re-prunes it (<see cref="PairAugmentation.Prune"/>); null while a shard is missing.
    /// </summary>
    public static AugmentationResult? MergeIfComplete(string outDir, int count, double threshold = PairPruning.InterAugThreshold, double margin = PairPruning.IntraAugMargin)
    {
        var folders = Enumerable.Range(0, count).Select(i => ShardFolder(outDir, new Shard(i, count))).ToList();
        if (!folders.All(IsDone)) return null;
        var pairs = folders.SelectMany(f => PairAugmentation.ReadPairs(Path.Combine(f, PairAugmentation.PairsFileName))
            .Select(p => p with { Image = Path.GetRelativePath(outDir, Path.Combine(f, p.Image)).Replace('\\', '/') })).ToList();
        var file = Path.Combine(outDir, PairAugmentation.PairsFileName);
        AtomicFile.WriteAllText(file, string.Concat(pairs.Select(p => System.Text.Json.JsonSerializer.Serialize(p) + "\n")));
        return PairAugmentation.Prune(file, threshold, margin);
    }
}

/// <summary>
/// A folder of pairs as a generic-layout dataset: labels.csv beside pairs.jsonl with one row per kept pair (file, id,
/// patient_id = the source report's id, dataset, report, and the 14 CheXpert columns from <see cref="ReportLabeler"/>), so
/// the folder is a <c>--data DIR</c> for every verb that reads a labels.csv (train clip, probe, data inspect).
/// </summary>
public static class PairsCsv
{
    /// <summary>The file's name.</summary>
    public const string FileName = "labels.csv";

    /// <summary>Writes DIR/labels.csv (atomically) for the kept pairs of DIR/pairs.jsonl and returns its path.</summary>
    /// <param name="pairsFile">A pairs.jsonl.</param>
    /// <param name="dataset">The dataset column (e.g. "interaug").</param>
    public static string Write(string pairsFile, string dataset)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(pairsFile))!;
        var labeler = new ReportLabeler();
        var header = new List<string> { "file", "id", "patient_id", "dataset", "report" };
        header.AddRange(Observations.Names);
        var rows = PairAugmentation.ReadPairs(pairsFile).Where(p => p.Kept).Select(p =>
        {
            var labels = labeler.Label(p.Report);
            var row = new List<string?> { p.Image, p.Id, p.SourceId, dataset, p.Report };
            row.AddRange(Observations.All.Select(o => labels[o].Code()));
            return (IReadOnlyList<string?>)row;
        }).ToList();
        var path = Path.Combine(dir, FileName);
        Csv.WriteFile(path, header, rows);
        return path;
    }
}
