using System.Collections;

namespace RoentGen.Data.Datasets;

/// <summary>
/// A list of <see cref="CxrRecord"/>s from one source (or a merge of several), with the image loading that
/// every consumer needs: native or square-resized images, masks with the same geometry, an optional
/// on-disk cache of resized images, and the rows the loader skipped.
/// </summary>
public sealed class CxrDataset : IReadOnlyList<CxrRecord>
{
    private readonly IReadOnlyList<CxrRecord> _records;

    /// <summary>Creates a dataset over records.</summary>
    /// <param name="name">Dataset name.</param>
    /// <param name="root">The folder the records' relative paths were resolved against (or "" for in-memory sets).</param>
    /// <param name="records">The records.</param>
    /// <param name="skipped">Rows the loader left out (with <see cref="LoadOptions.SkipBadRows"/>).</param>
    public CxrDataset(string name, string root, IEnumerable<CxrRecord> records, IEnumerable<SkippedRow>? skipped = null)
    {
        Name = name;
        Root = root;
        _records = records.ToList();
        Skipped = skipped?.ToList() ?? [];
    }

    // Wraps a list without copying it (a lazily generated source stays lazy).
    private CxrDataset(string name, string root, IReadOnlyList<CxrRecord> records, IReadOnlyList<SkippedRow> skipped)
    {
        Name = name;
        Root = root;
        _records = records;
        Skipped = skipped;
    }

    /// <summary>
    /// A dataset that reads its records through <paramref name="records"/> when they are asked for, without copying
    /// the list: for sources that make each record on first use (e.g. <c>PhantomRecords</c>). Enumerating, filtering
    /// or splitting such a dataset makes every record.
    /// </summary>
    /// <param name="name">Dataset name.</param>
    /// <param name="root">The root folder (or "" for in-memory sets).</param>
    /// <param name="records">The list; it must return the same record for an index every time.</param>
    public static CxrDataset OnDemand(string name, string root, IReadOnlyList<CxrRecord> records) => new(name, root, records, Array.Empty<SkippedRow>());

    /// <summary>Dataset name.</summary>
    public string Name { get; }

    /// <summary>The root folder of the source files.</summary>
    public string Root { get; }

    /// <summary>Rows the loader left out, with reasons (never silently dropped).</summary>
    public IReadOnlyList<SkippedRow> Skipped { get; }

    /// <summary>Number of rows left out.</summary>
    public int SkippedCount => Skipped.Count;

    /// <summary>Square resizing mode used by <see cref="LoadImage"/> and <see cref="LoadMask"/> (default Pad).</summary>
    public SquareMode SquareMode { get; init; } = SquareMode.Pad;

    /// <summary>Cache for resized images, or null for none. Set with <see cref="WithCache"/>.</summary>
    public ImageCache? Cache { get; private init; }

    /// <inheritdoc />
    public int Count => _records.Count;

    /// <inheritdoc />
    public CxrRecord this[int index] => _records[index];

    /// <summary>The same records with resized images cached under a folder.</summary>
    public CxrDataset WithCache(string cacheDirectory) => new(Name, Root, _records, Skipped) { SquareMode = SquareMode, Cache = new ImageCache(cacheDirectory) };

    /// <summary>The records that satisfy a predicate (same name, root, cache and skipped list).</summary>
    public CxrDataset Where(Func<CxrRecord, bool> predicate) => Derive(Name, _records.Where(predicate));

    /// <summary>A dataset over some of these records, keeping root, cache and mode.</summary>
    public CxrDataset Derive(string name, IEnumerable<CxrRecord> records) =>
        new(name, Root, records, Skipped) { SquareMode = SquareMode, Cache = Cache };

    /// <summary>Several datasets as one (e.g. MIMIC-CXR and phantoms). Record ids must stay unique within each source.</summary>
    public static CxrDataset Concat(string name, params CxrDataset[] parts) =>
        new(name, "", parts.SelectMany(p => p), parts.SelectMany(p => p.Skipped));

    /// <summary>
    /// The image of a record: at native size when <paramref name="size"/> is null, else square size x size
    /// (through the cache when there is one).
    /// </summary>
    /// <exception cref="DatasetFormatException">The image is missing or not decodable; the message names the file and the source row.</exception>
    public GrayImage LoadImage(CxrRecord record, int? size = null)
    {
        try
        {
            if (size is not int s) return record.Image.Load();
            return Cache is not null ? Cache.GetOrCreate(record.Image, s, SquareMode) : ImageResize.ToSquare(record.Image.Load(), s, SquareMode);
        }
        catch (Exception ex) when (ex is FileNotFoundException or InvalidDataException or DirectoryNotFoundException)
        {
            throw new DatasetFormatException(record.SourceFile ?? Name, record.SourceLine, null,
                $"image of record '{record.Id}' could not be loaded from {record.Image.Description}: {ex.Message}", ex);
        }
    }

    /// <summary>A named mask of a record (values 0 or 1 after resizing), resized with the same geometry as the image.</summary>
    /// <exception cref="KeyNotFoundException">The record has no mask of that name.</exception>
    /// <exception cref="DatasetFormatException">The mask file is missing or not decodable.</exception>
    public GrayImage LoadMask(CxrRecord record, string name, int? size = null)
    {
        if (!record.Masks.TryGetValue(name, out var src))
            throw new KeyNotFoundException($"{record.Origin}: record '{record.Id}' has no mask '{name}'; it has: {(record.Masks.Count == 0 ? "none" : string.Join(", ", record.Masks.Keys))}");
        try
        {
            if (size is not int s) return src.Load();
            return Cache is not null ? Cache.GetOrCreate(src, s, SquareMode, isMask: true) : ImageResize.ToSquare(src.Load(), s, SquareMode, isMask: true);
        }
        catch (Exception ex) when (ex is FileNotFoundException or InvalidDataException or DirectoryNotFoundException)
        {
            throw new DatasetFormatException(record.SourceFile ?? Name, record.SourceLine, null,
                $"mask '{name}' of record '{record.Id}' could not be loaded from {src.Description}: {ex.Message}", ex);
        }
    }

    /// <summary>The underlying list (lazily made for <see cref="OnDemand"/> datasets).</summary>
    internal IReadOnlyList<CxrRecord> Source => _records;

    /// <summary>
    /// Asks for the records at <paramref name="indices"/> (all when null) in parallel, so that a lazily made source
    /// (<see cref="OnDemand"/>) makes them on every core instead of one by one on first enumeration. Costs nothing for
    /// records that already exist.
    /// </summary>
    /// <returns>This dataset.</returns>
    public CxrDataset Prefetch(IEnumerable<int>? indices = null)
    {
        var idx = (indices ?? Enumerable.Range(0, Count)).Distinct().ToArray();
        Parallel.ForEach(idx, i => _ = _records[i]);
        return this;
    }

    /// <inheritdoc />
    public IEnumerator<CxrRecord> GetEnumerator() => _records.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {Count} records{(SkippedCount > 0 ? $", {SkippedCount} skipped" : "")}";
}
