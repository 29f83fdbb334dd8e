using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace RoentGen.Platform;

/// <summary>One item a sharded job produced: its table row and the files it wrote (relative to the job folder).</summary>
/// <param name="Index">The item's index in the whole job.</param>
/// <param name="Row">Its row of the job's table (empty when the job has no table).</param>
/// <param name="Files">The files it wrote, relative paths with '/' separators.</param>
public sealed record ShardItem(int Index, IReadOnlyList<string> Row, IReadOnlyList<string> Files);

/// <summary>What <see cref="ShardJob.Run"/> did.</summary>
/// <param name="Manifest">The shard's manifest (read back when the shard was already finished).</param>
/// <param name="AlreadyFinished">The shard was complete before this run, so nothing was produced.</param>
/// <param name="ChunksReused">Chunks of an interrupted earlier run that were kept (their files checked).</param>
/// <param name="ChunksProduced">Chunks produced by this run.</param>
public sealed record ShardRunResult(ShardManifest Manifest, bool AlreadyFinished, int ChunksReused, int ChunksProduced);

/// <summary>
/// A job of <see cref="TotalItems"/> independent items that runs as one shard of N into a shared folder DIR, and its
/// bookkeeping under DIR/shards/:
/// <list type="bullet">
/// <item>the shard's items (<see cref="ShardPartition"/>) are produced in chunks of <see cref="ChunkSize"/> items
/// aligned to multiples of the chunk size; after a chunk's files are on disk, a chunk record (its rows and each file's
/// size and SHA-256) is written atomically to KIND-IIII-of-NNNN.parts/. That record is the chunk's commit: a run killed
/// mid-chunk leaves no record, and the next run redoes that chunk only;</item>
/// <item>when every chunk is recorded, the shard manifest (<see cref="ShardManifest"/>) is written atomically, then the
/// completion marker. A re-run of a finished shard (marker present, manifest of this config, files of the recorded
/// sizes) does nothing;</item>
/// <item>a folder that holds shards of another config or another shard count is refused before any work.</item>
/// </list>
/// <c>roentgen merge</c> (<see cref="ShardMerge"/>) then checks and combines the shards.
/// </summary>
public sealed record ShardJob
{
    /// <summary>The job kind: a file-name prefix of letters, digits and '-' ("phantoms", "samples").</summary>
    public required string Kind { get; init; }
    /// <summary>SHA-256 of the job's settings (<see cref="HashConfig"/>).</summary>
    public required string ConfigHash { get; init; }
    /// <summary>Items of the whole job.</summary>
    public required int TotalItems { get; init; }
    /// <summary>The table the merge writes, relative to the job folder (e.g. "labels.csv"), or null.</summary>
    public string? TableFile { get; init; }
    /// <summary>The table's header.</summary>
    public IReadOnlyList<string> TableHeader { get; init; } = [];
    /// <summary>Items per chunk (the unit of resumption).</summary>
    public int ChunkSize { get; init; } = 64;

    /// <summary>
    /// SHA-256 (lower-case hex) of a settings object serialised as JSON (its declared property order), together with
    /// the job kind: shards whose settings differ in any value get different hashes.
    /// </summary>
    public static string HashConfig(string kind, object settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var json = kind + "\n" + JsonSerializer.Serialize(settings, settings.GetType());
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(json)));
    }

    /// <summary>
    /// Runs <paramref name="shard"/> of this job into <paramref name="dir"/>. <paramref name="produce"/> gets a range of
    /// items, writes their files under <paramref name="dir"/> (plain writes are fine: the chunk record is the commit) and
    /// returns one <see cref="ShardItem"/> per item, in order.
    /// </summary>
    /// <exception cref="RunStateException">The folder holds shards of another config or shard count.</exception>
    /// <exception cref="InvalidOperationException">produce returned items that do not match the range asked for.</exception>
    public ShardRunResult Run(string dir, Shard shard, Func<ItemRange, IReadOnlyList<ShardItem>> produce, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(shard);
        ArgumentNullException.ThrowIfNull(produce);
        Validate();
        var full = Path.GetFullPath(dir);
        var shardsDir = Path.Combine(full, "shards");
        Directory.CreateDirectory(shardsDir);
        RefuseOtherJobs(shardsDir, shard);

        var manifestPath = Path.Combine(shardsDir, ShardManifest.FileName(Kind, shard));
        var markerPath = Path.Combine(shardsDir, ShardManifest.MarkerName(Kind, shard));
        if (FinishedManifest(full, manifestPath, markerPath, shard) is { } done)
        {
            log?.Invoke($"shard {shard} of {Kind} is already finished ({ShardManifest.MarkerName(Kind, shard)}); nothing to do");
            return new ShardRunResult(done, true, 0, 0);
        }
        if (File.Exists(markerPath)) File.Delete(markerPath);   // a marker without a valid manifest: redo the check below

        var range = shard.Range(TotalItems);
        var partsDir = Path.Combine(shardsDir, $"{Kind}-{shard.FileTag}.parts");
        Directory.CreateDirectory(partsDir);
        var rows = new List<IReadOnlyList<string>>(range.Count);
        var files = new List<ShardFile>();
        int reused = 0, produced = 0;
        for (int a = range.Start; a < range.End;)
        {
            int b = Math.Min(range.End, (a / ChunkSize + 1) * ChunkSize);
            var chunk = new ItemRange(a, b - a);
            var partPath = Path.Combine(partsDir, string.Create(CultureInfo.InvariantCulture, $"{a:D10}.json"));
            var part = ReusableChunk(full, partPath, chunk);
            if (part is not null) reused++;
            else
            {
                part = ProduceChunk(full, chunk, produce);
                AtomicFile.WriteAllText(partPath, JsonSerializer.Serialize(part, ShardManifest.Json));
                produced++;
            }
            rows.AddRange(part.Rows);
            files.AddRange(part.Files);
            a = b;
        }
        var manifest = new ShardManifest
        {
            Kind = Kind, ConfigHash = ConfigHash, ShardIndex = shard.Index, ShardCount = shard.Count, TotalItems = TotalItems,
            ItemStart = range.Start, ItemCount = range.Count, TableFile = TableFile, TableHeader = TableHeader, TableRows = rows, Files = files,
        };
        var json = manifest.ToJson();
        AtomicFile.WriteAllText(manifestPath, json);
        AtomicFile.WriteAllText(markerPath, Sha256Hex(json) + "\n");
        if (reused > 0) log?.Invoke($"shard {shard} of {Kind}: kept {reused} chunk(s) of an interrupted run, produced {produced}");
        return new ShardRunResult(manifest, false, reused, produced);
    }

    internal static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    private void Validate()
    {
        if (string.IsNullOrEmpty(Kind) || !Kind.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            throw new ArgumentException($"shard job kind '{Kind}' must be letters, digits and '-'");
        if (TotalItems < 0) throw new ArgumentOutOfRangeException(nameof(TotalItems), TotalItems, "the item count must be 0 or more");
        if (ChunkSize < 1) throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, "the chunk size must be at least 1");
        if (TableFile is not null && TableHeader.Count == 0) throw new ArgumentException($"shard job {Kind}: table {TableFile} has no header");
    }

    // Shards of another config or count in the same folder would merge into nonsense: refuse before any work.
    private void RefuseOtherJobs(string shardsDir, Shard shard)
    {
        foreach (var path in Directory.EnumerateFiles(shardsDir, Kind + "-*-of-*.json").Order(StringComparer.Ordinal))
        {
            ShardManifest other;
            try { other = ShardManifest.Read(path); }
            catch (InvalidDataException) { continue; }   // a damaged manifest is its own shard's business (re-run or merge reports it)
            if (other.Kind != Kind) continue;
            if (other.ConfigHash != ConfigHash)
                throw new RunStateException(
                    $"{path}: this folder holds shard {other.ShardIndex}/{other.ShardCount} of a {Kind} job with other settings (config hash {other.ConfigHash[..12]}..., "
                    + $"this job {ConfigHash[..12]}...); shards of one job must share every setting: use a new --out, or delete {shardsDir} and the outputs");
            if (other.ShardCount != shard.Count)
                throw new RunStateException(
                    $"{path}: this folder holds shard {other.ShardIndex}/{other.ShardCount} of this job split {other.ShardCount} ways, and this run is shard {shard}; "
                    + $"use the same N for every shard, or a new --out");
        }
    }

    private ShardManifest? FinishedManifest(string dir, string manifestPath, string markerPath, Shard shard)
    {
        if (!File.Exists(markerPath) || !File.Exists(manifestPath)) return null;
        var text = File.ReadAllText(manifestPath);
        if (File.ReadAllText(markerPath).Trim() != Sha256Hex(text)) return null;
        ShardManifest m;
        try { m = ShardManifest.Read(manifestPath); }
        catch (InvalidDataException) { return null; }
        if (m.ConfigHash != ConfigHash || m.Kind != Kind || m.ShardIndex != shard.Index || m.ShardCount != shard.Count || m.TotalItems != TotalItems) return null;
        // Sizes only: hashing every file of a finished shard on each re-run would cost as much as reading the outputs; merge checks hashes.
        return m.Files.All(f => f.Mismatch(dir, checkHash: false) is null) ? m : null;
    }

    private sealed record ChunkRecord(string ConfigHash, int Start, int Count, IReadOnlyList<IReadOnlyList<string>> Rows, IReadOnlyList<ShardFile> Files);

    private ChunkRecord? ReusableChunk(string dir, string partPath, ItemRange chunk)
    {
        if (!File.Exists(partPath)) return null;
        ChunkRecord? part;
        try { part = JsonSerializer.Deserialize<ChunkRecord>(File.ReadAllText(partPath), ShardManifest.Json); }
        catch (JsonException) { return null; }
        if (part is null || part.ConfigHash != ConfigHash || part.Start != chunk.Start || part.Count != chunk.Count) return null;
        return part.Files.All(f => f.Mismatch(dir) is null) ? part : null;
    }

    private ChunkRecord ProduceChunk(string dir, ItemRange chunk, Func<ItemRange, IReadOnlyList<ShardItem>> produce)
    {
        var items = produce(chunk);
        if (items.Count != chunk.Count)
            throw new InvalidOperationException($"internal: {Kind} produced {items.Count} items for items {chunk} ({chunk.Count} expected)");
        var rows = new List<IReadOnlyList<string>>(items.Count);
        var files = new List<ShardFile>();
        for (int i = 0; i < items.Count; i++)
        {
            if (items[i].Index != chunk.Start + i)
                throw new InvalidOperationException($"internal: {Kind} returned item {items[i].Index} where item {chunk.Start + i} was expected");
            if (TableFile is not null && items[i].Row.Count != TableHeader.Count)
                throw new InvalidOperationException($"internal: {Kind} item {items[i].Index} has {items[i].Row.Count} fields, the header {TableHeader.Count}");
            rows.Add(items[i].Row.ToArray());
            files.AddRange(items[i].Files.Select(f => ShardFile.Describe(dir, f)));
        }
        return new ChunkRecord(ConfigHash, chunk.Start, chunk.Count, rows, files);
    }
}
