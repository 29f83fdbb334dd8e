using System.Globalization;
using RoentGen.Data.Datasets;
using RoentGen.Platform;
using RoentGen.Visualization;

namespace RoentGen.Data.Phantoms;

/// <summary>What <see cref="PhantomDataset.WriteFolder"/> wrote.</summary>
/// <param name="Directory">The dataset folder.</param>
/// <param name="LabelsCsv">Path of labels.csv.</param>
/// <param name="Count">Cases written.</param>
/// <param name="Elapsed">Wall time.</param>
public sealed record PhantomDatasetSummary(string Directory, string LabelsCsv, int Count, TimeSpan Elapsed);

/// <summary>Writes phantom cases as a folder in the project's generic dataset layout.</summary>
public static class PhantomDataset
{
    /// <summary>The first columns of the generic layout, in order.</summary>
    public static IReadOnlyList<string> GenericColumns { get; } = ["file", "dataset", "labels", "sex", "age", "view", "report", "mask"];

    /// <summary>
    /// Writes <paramref name="count"/> cases (indices start..start+count-1) to <paramref name="dir"/>:
    /// images/phantom_NNNNNN.png, masks/phantom_NNNNNN_{name}.png, and labels.csv (written atomically, last)
    /// with the columns file, dataset ("phantom"), labels (pipe-separated names of positive observations,
    /// "No Finding" for normals; empty when the report only hedges), sex, age, view, report, mask (the lungs
    /// mask), then patient_id, masks (name=path|...), the 14 CheXpert columns (1, 0, -1, blank) and the
    /// attribute columns of <see cref="PhantomGenerator.AttributeKeys"/> (blank where absent). Paths are
    /// relative to <paramref name="dir"/>. Progress goes through <see cref="ProgressReporter"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">count or start is negative, or an option is out of range.</exception>
    public static PhantomDatasetSummary WriteFolder(string dir, PhantomOptions options, int count, int start = 0, IProgressSink? sink = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be 0 or more");
        if (start < 0) throw new ArgumentOutOfRangeException(nameof(start), start, "start must be 0 or more");
        options.Validate();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string full = Path.GetFullPath(dir);
        Directory.CreateDirectory(Path.Combine(full, "images"));
        Directory.CreateDirectory(Path.Combine(full, "masks"));
        var header = LabelsHeader();
        var rows = new string[count][];
        using var progress = ProgressReporter.Start($"phantoms {options.Size}px", count, "images", sink);
        const int batch = 64;
        for (int b = 0; b < count; b += batch)
        {
            int n = Math.Min(batch, count - b);
            var records = PhantomRecords.Create(options, n, start + b);   // one batch at a time: memory stays flat
            Parallel.For(0, n, i =>
            {
                rows[b + i] = WriteRecord(full, records[i], header.Count).Row;
                progress.Advance();
            });
            progress.SetMetric("images/s", progress.Snapshot().Rate);
        }
        string csv = Path.Combine(full, "labels.csv");
        Csv.WriteFile(csv, header, rows);
        return new PhantomDatasetSummary(full, csv, count, clock.Elapsed);
    }

    /// <summary>The header of labels.csv: <see cref="GenericColumns"/>, patient_id, masks, the CheXpert columns, the attribute columns.</summary>
    public static IReadOnlyList<string> LabelsHeader()
    {
        var header = new List<string>(GenericColumns) { "patient_id", "masks" };
        header.AddRange(Observations.Names);
        header.AddRange(PhantomGenerator.AttributeKeys);
        return header;
    }

    /// <summary>
    /// Runs <paramref name="shard"/> of the job that <see cref="WriteFolder"/> does in one go (cases 0..count − 1), into
    /// <paramref name="dir"/>, which the job's other shards share (<see cref="ShardJob"/>: chunks of 64 cases, resumable;
    /// a finished shard is skipped). <c>roentgen merge</c> then writes labels.csv; images/, masks/ and labels.csv of the
    /// merged folder are byte for byte those of <see cref="WriteFolder"/>(dir, options, count), since case i depends only
    /// on the world seed and i.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">count is negative, or an option is out of range.</exception>
    /// <exception cref="RunStateException">The folder holds shards of another phantom job.</exception>
    public static ShardRunResult WriteShard(string dir, PhantomOptions options, int count, Shard shard, IProgressSink? sink = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(shard);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be 0 or more");
        options.Validate();
        string full = Path.GetFullPath(dir);
        var header = LabelsHeader();
        var job = new ShardJob
        {
            Kind = "phantoms", ConfigHash = ShardJob.HashConfig("phantoms", new { options, count }), TotalItems = count,
            TableFile = "labels.csv", TableHeader = header, ChunkSize = 64,
        };
        var range = shard.Range(count);
        ProgressReporter? progress = null;   // started with the first chunk to produce: a refused or finished shard shows none
        try
        {
            return job.Run(full, shard, chunk => ProduceChunk(chunk, progress ??= ProgressReporter.Start($"phantoms {options.Size}px shard {shard}", range.Count, "images", sink)), log);
        }
        finally
        {
            progress?.Dispose();
        }

        ShardItem[] ProduceChunk(ItemRange chunk, ProgressReporter progress)
        {
            Directory.CreateDirectory(Path.Combine(full, "images"));
            Directory.CreateDirectory(Path.Combine(full, "masks"));
            var records = PhantomRecords.Create(options, chunk.Count, chunk.Start);
            var items = new ShardItem[chunk.Count];
            Parallel.For(0, chunk.Count, i =>
            {
                var (row, files) = WriteRecord(full, records[i], header.Count);
                items[i] = new ShardItem(chunk.Start + i, row, files);
                progress.Advance();
            });
            return items;
        }
    }

    // One row of labels.csv from a phantom record (see PhantomRecords for what each field holds), writing its image and
    // masks; returns the row and the files written (relative paths).
    private static (string[] Row, List<string> Files) WriteRecord(string dir, CxrRecord r, int columns)
    {
        string image = $"images/{r.Id}.png";
        File.WriteAllBytes(Path.Combine(dir, image), ImageIO.EncodePng(r.Image.Load()));
        var maskPaths = new List<string>();
        foreach (var (name, mask) in r.Masks.OrderBy(kv => kv.Key == "lungs" ? 0 : kv.Key == "heart" ? 1 : 2).ThenBy(kv => kv.Key, StringComparer.Ordinal))
        {
            string rel = $"masks/{r.Id}_{name}.png";
            File.WriteAllBytes(Path.Combine(dir, rel), ImageIO.EncodePng(mask.Load()));
            maskPaths.Add($"{name}={rel}");
        }
        var row = new List<string>
        {
            image, r.Dataset, string.Join("|", r.SourceLabels), r.Sex ?? "", r.Age?.ToString(CultureInfo.InvariantCulture) ?? "", r.View ?? "",
            r.Report.Full ?? "", $"masks/{r.Id}_lungs.png", r.PatientId, string.Join("|", maskPaths),
        };
        row.AddRange(Observations.All.Select(o => r.Labels[o].Code()));
        row.AddRange(PhantomGenerator.AttributeKeys.Select(k => r.Attributes.TryGetValue(k, out var v) ? v : ""));
        if (row.Count != columns) throw new InvalidOperationException($"internal: row has {row.Count} fields, header {columns}");
        return (row.ToArray(), [image, .. maskPaths.Select(m => m[(m.IndexOf('=') + 1)..])]);
    }
}
