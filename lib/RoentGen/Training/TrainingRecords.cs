using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;

namespace RoentGen.Training;

/// <summary>One training step's examples: the records and their images at the source size.</summary>
/// <param name="Records">The records, in draw order (a record drawn twice appears twice).</param>
/// <param name="Images">Their images, square at <see cref="TrainingRecords.SourceSize"/>, intensities in [0, 1].</param>
public sealed record TrainingBatch(IReadOnlyList<CxrRecord> Records, IReadOnlyList<GrayImage> Images)
{
    /// <summary>Number of examples.</summary>
    public int Count => Records.Count;

    /// <summary>(B · 14) values, row-major in <see cref="Observations.All"/> order: 1 where the record's label is Positive, else 0.</summary>
    public float[] PositiveLabels() => Records.SelectMany(r => r.Labels.ToBinaryVector()).ToArray();

    /// <summary>Each record's report as a training text (<see cref="CxrReport.FullText"/>).</summary>
    public IReadOnlyList<string> ReportTexts() => Records.Select(r => r.Report.FullText).ToList();
}

/// <summary>
/// Where every encoder trainer (DINO, supervised, CLIP) gets its examples: <see cref="CxrRecord"/>s, from phantoms
/// (<see cref="Phantoms"/>), a labels.csv or bare image folder (<see cref="ImageFolderLoader.LoadFolder"/>) or any
/// loader, with images made square at one source size.
/// <para>
/// Two ways to draw a step's batch of B. Over a dataset (a pool), B indices come from the step's random stream, one
/// <c>rng.Next(Count)</c> per example in order, with replacement; images are loaded once and kept (file images up to a
/// cache limit; in-memory images, such as phantoms, are the records' own). As a stream (<see cref="Stream"/>,
/// <see cref="FreshPhantoms"/>), step s gets its own records from a function of (s, B) and nothing is kept. Either
/// way a batch depends only on (step, the random stream), so a resumed run sees the same examples.
/// </para>
/// </summary>
public sealed class TrainingRecords
{
    /// <summary>File images kept in memory at most, by default.</summary>
    public const int DefaultCacheLimit = 4096;

    private readonly CxrDataset? _dataset;
    private readonly Func<int, int, CxrDataset>? _stream;
    private readonly ConcurrentDictionary<int, GrayImage> _cache = new();
    private readonly int _cacheLimit;

    /// <summary>Draws from the records of <paramref name="dataset"/>.</summary>
    /// <param name="dataset">The records (at least one).</param>
    /// <param name="sourceSize">Side at which images are made square (<see cref="CxrDataset.LoadImage"/>); in-memory images already of that size are used as they are.</param>
    /// <param name="cacheLimit">File images kept in memory at most.</param>
    /// <param name="description">For logs (default: the dataset's name, count, folder and size).</param>
    /// <exception cref="ArgumentException">No records, or a size below 1.</exception>
    public TrainingRecords(CxrDataset dataset, int sourceSize, int cacheLimit = DefaultCacheLimit, string? description = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (sourceSize < 1) throw new ArgumentException($"sourceSize must be at least 1 pixel, got {sourceSize}", nameof(sourceSize));
        if (dataset.Count == 0) throw new ArgumentException($"{Where(dataset)} holds no records to train on", nameof(dataset));
        _dataset = dataset;
        _cacheLimit = cacheLimit;
        SourceSize = sourceSize;
        Description = description ?? $"{dataset.Name}: {dataset.Count} images{(dataset.Root.Length > 0 ? $" from {dataset.Root}" : "")}, at {sourceSize} px";
    }

    private TrainingRecords(string description, int sourceSize, Func<int, int, CxrDataset> stream)
    {
        if (sourceSize < 1) throw new ArgumentException($"sourceSize must be at least 1 pixel, got {sourceSize}", nameof(sourceSize));
        _stream = stream;
        SourceSize = sourceSize;
        Description = description;
    }

    /// <summary>
    /// A pool of <paramref name="count"/> phantoms (cases 0 … count − 1 of the world of <paramref name="options"/>, at
    /// its size), each drawn on first use and kept without masks.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">count below 1 or an option out of range.</exception>
    public static TrainingRecords Phantoms(PhantomOptions options, int count)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "a phantom pool needs at least one case");
        return new TrainingRecords(PhantomRecords.Create(options, count, masks: false), options.Size,
            description: $"phantoms ({count}-case pool, world seed {options.Seed}, {options.Size} px)");
    }

    /// <summary>Fresh phantoms: step s uses cases s·B … s·B + B − 1 of the world (no image repeats, nothing is kept).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static TrainingRecords FreshPhantoms(PhantomOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new TrainingRecords($"phantoms (fresh per step, world seed {options.Seed}, {options.Size} px)", options.Size,
            (step, batch) => PhantomRecords.Create(options, batch, checked(step * batch), masks: false));
    }

    /// <summary>
    /// A stream: step s of batch B trains on the records <paramref name="recordsOfStep"/>(s, B) returns (exactly B, in
    /// order). The function must depend only on its arguments for a resumed run to match.
    /// </summary>
    public static TrainingRecords Stream(string description, int sourceSize, Func<int, int, CxrDataset> recordsOfStep)
    {
        ArgumentNullException.ThrowIfNull(recordsOfStep);
        return new TrainingRecords(description, sourceSize, recordsOfStep);
    }

    /// <summary>The records drawn from, or null for a stream.</summary>
    public CxrDataset? Dataset => _dataset;

    /// <summary>True for a stream (<see cref="Stream"/>, <see cref="FreshPhantoms"/>).</summary>
    public bool IsStream => _stream is not null;

    /// <summary>Number of records drawn from.</summary>
    /// <exception cref="InvalidOperationException">A stream has no fixed number.</exception>
    public int Count => _dataset?.Count ?? throw new InvalidOperationException($"{Description} is a stream: it has no fixed number of records");

    /// <summary>Side of the images.</summary>
    public int SourceSize { get; }

    /// <summary>A short description for logs.</summary>
    public string Description { get; }

    /// <summary>B random record indices from the stream (with replacement): one <c>rng.Next(Count)</c> each, in order.</summary>
    public int[] SampleIndices(int batchSize, Random rng)
    {
        int n = Count;
        return Enumerable.Range(0, batchSize).Select(_ => rng.Next(n)).ToArray();
    }

    /// <summary>
    /// The examples of training step <paramref name="step"/>: <see cref="SampleIndices"/> over the dataset, or the
    /// stream's records of that step.
    /// </summary>
    /// <exception cref="ArgumentException">A batch size below 1, or a stream that returned another number of records.</exception>
    /// <exception cref="DatasetFormatException">An image could not be loaded; the message names the file and source row.</exception>
    public TrainingBatch Batch(int step, int batchSize, Random rng)
    {
        if (batchSize < 1) throw new ArgumentException($"batch size must be at least 1, got {batchSize}", nameof(batchSize));
        if (_stream is null) return Examples(SampleIndices(batchSize, rng));
        var records = _stream(step, batchSize);
        if (records.Count != batchSize)
            throw new ArgumentException($"{Description}: step {step} gave {records.Count} records for a batch of {batchSize}");
        var images = new GrayImage[batchSize];
        Parallel(Enumerable.Range(0, batchSize), i => images[i] = Load(records, records[i]));
        return new TrainingBatch(Enumerable.Range(0, batchSize).Select(i => records[i]).ToList(), images);
    }

    /// <summary>The images of step <paramref name="step"/> (see <see cref="Batch"/>).</summary>
    public IReadOnlyList<GrayImage> Images(int step, int batchSize, Random rng) => Batch(step, batchSize, rng).Images;

    /// <summary>The records at <paramref name="indices"/> of the dataset with their images, loading missing ones in parallel.</summary>
    /// <exception cref="InvalidOperationException">A stream (it has no indices).</exception>
    public TrainingBatch Examples(IReadOnlyList<int> indices)
    {
        var ds = RequireDataset();
        var images = new ConcurrentDictionary<int, GrayImage>();
        Parallel(indices.Distinct(), i => images[i] = Image(i));
        return new TrainingBatch(indices.Select(i => ds[i]).ToList(), indices.Select(i => images[i]).ToList());
    }

    /// <summary>The image of record <paramref name="index"/> at the source size.</summary>
    /// <exception cref="InvalidOperationException">A stream.</exception>
    public GrayImage Image(int index)
    {
        var ds = RequireDataset();
        if (_cache.TryGetValue(index, out var cached)) return cached;
        var record = ds[index];
        var image = Load(ds, record);
        if (record.Image.IsFile && _cache.Count < _cacheLimit) _cache.TryAdd(index, image);
        return image;
    }

    /// <summary>The training texts (<see cref="CxrReport.FullText"/>) of the first <paramref name="max"/> records, made in parallel (e.g. to train a tokenizer).</summary>
    /// <exception cref="InvalidOperationException">A stream.</exception>
    public IReadOnlyList<string> Reports(int max)
    {
        var ds = RequireDataset();
        var first = Enumerable.Range(0, Math.Clamp(max, 0, ds.Count)).ToArray();
        Parallel(first, i => _ = ds[i]);
        return first.Select(i => ds[i].Report.FullText).ToList();
    }

    /// <inheritdoc />
    public override string ToString() => Description;

    // An in-memory image of the source size is the record's own (phantoms: the generator's pixels, not a copy).
    private GrayImage Load(CxrDataset ds, CxrRecord record)
    {
        if (!record.Image.IsFile)
        {
            var image = record.Image.Load();
            if (image.Width == SourceSize && image.Height == SourceSize) return image;
        }
        return ds.LoadImage(record, SourceSize);
    }

    private CxrDataset RequireDataset() =>
        _dataset ?? throw new InvalidOperationException($"{Description} is a stream: its records come per step, not by index");

    private static string Where(CxrDataset ds) => ds.Root.Length > 0 ? $"{ds.Name} ({ds.Root})" : ds.Name;

    // Parallel.ForEach, rethrowing a single failure as itself (not an AggregateException) so callers see what went wrong.
    private static void Parallel<T>(IEnumerable<T> items, Action<T> body)
    {
        try { System.Threading.Tasks.Parallel.ForEach(items, body); }
        catch (AggregateException ex) when (ex.InnerExceptions.Count >= 1)
        {
            ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
        }
    }
}
