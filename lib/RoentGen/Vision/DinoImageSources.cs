using System.Collections.Concurrent;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;

namespace RoentGen.Vision;

/// <summary>Where self-supervised training gets its unlabelled images.</summary>
public interface IDinoImageSource
{
    /// <summary>A short description for logs.</summary>
    string Description { get; }

    /// <summary>
    /// The images of training step <paramref name="step"/>, square, intensities in [0, 1]. Must depend only on
    /// (step, the random stream) so that a resumed run sees the same images.
    /// </summary>
    IReadOnlyList<GrayImage> Batch(int step, int batchSize, Random rng);
}

/// <summary>
/// Phantom chest X-rays generated on the fly: with no pool, step s uses cases s·B … s·B + B − 1 (nothing
/// is stored and no image repeats); with a pool of P cases, images are drawn from cases 0 … P − 1 (each
/// generated once and kept).
/// </summary>
public sealed class PhantomImageSource : IDinoImageSource
{
    private readonly PhantomGenerator _generator;
    private readonly int _pool;
    private readonly ConcurrentDictionary<int, GrayImage> _cache = new();

    /// <summary>Creates the source.</summary>
    /// <param name="options">The phantom world (its Size is the image side).</param>
    /// <param name="poolSize">0: a fresh stream of cases; P > 0: draw from the first P cases.</param>
    public PhantomImageSource(PhantomOptions options, int poolSize = 0)
    {
        if (poolSize < 0) throw new ArgumentException($"poolSize must be >= 0, got {poolSize}");
        _generator = new PhantomGenerator(options);
        _pool = poolSize;
    }

    /// <inheritdoc />
    public string Description => _pool > 0 ? $"phantoms ({_pool}-case pool, {_generator.Options.Size} px)" : $"phantoms (fresh per step, {_generator.Options.Size} px)";

    /// <inheritdoc />
    public IReadOnlyList<GrayImage> Batch(int step, int batchSize, Random rng)
    {
        if (_pool == 0) return _generator.Generate(checked(step * batchSize), batchSize).Select(c => c.Image).ToList();
        var idx = Enumerable.Range(0, batchSize).Select(_ => rng.Next(_pool)).ToArray();
        var missing = idx.Distinct().Where(i => !_cache.ContainsKey(i)).ToArray();
        Parallel.ForEach(missing, i => _cache[i] = _generator.Generate(i).Image);
        return idx.Select(i => _cache[i]).ToList();
    }
}

/// <summary>
/// Real images from a folder: a labels.csv in the generic layout (labels ignored) when the folder holds one,
/// else every PNG/JPEG under it. Images are made square (padded) at the source size and kept in memory.
/// </summary>
public sealed class FolderImageSource : IDinoImageSource
{
    private readonly Func<int, GrayImage> _load;
    private readonly ConcurrentDictionary<int, GrayImage> _cache = new();
    private readonly int _cacheLimit;

    /// <summary>Opens a folder.</summary>
    /// <param name="folder">A folder with labels.csv, or a folder of .png/.jpg/.jpeg files (searched recursively).</param>
    /// <param name="size">Side at which images are loaded.</param>
    /// <param name="cacheLimit">Images kept in memory at most.</param>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="InvalidDataException">The folder holds no images.</exception>
    public FolderImageSource(string folder, int size, int cacheLimit = 4096)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"image folder not found: {folder}");
        _cacheLimit = cacheLimit;
        var csv = Path.Combine(folder, GenericCsvLoader.DefaultFileName);
        if (File.Exists(csv))
        {
            var ds = GenericCsvLoader.Load(csv);
            Count = ds.Count;
            _load = i => ds.LoadImage(ds[i], size);
            Description = $"{ds.Name}: {ds.Count} images from {csv}";
        }
        else
        {
            var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
                .Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpeg", StringComparison.OrdinalIgnoreCase))
                .OrderBy(f => f, StringComparer.Ordinal).ToArray();
            Count = files.Length;
            _load = i => ImageResize.ToSquare(ImageIO.Read(files[i]), size);
            Description = $"{files.Length} PNG/JPEG images under {folder}";
        }
        if (Count == 0) throw new InvalidDataException($"no images in {folder}: expected a {GenericCsvLoader.DefaultFileName} or .png/.jpg/.jpeg files");
    }

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IReadOnlyList<GrayImage> Batch(int step, int batchSize, Random rng)
    {
        var idx = Enumerable.Range(0, batchSize).Select(_ => rng.Next(Count)).ToArray();
        var loaded = new GrayImage[batchSize];
        Parallel.For(0, batchSize, k =>
        {
            int i = idx[k];
            if (_cache.TryGetValue(i, out var img)) { loaded[k] = img; return; }
            img = _load(i);
            if (_cache.Count < _cacheLimit) _cache[i] = img;
            loaded[k] = img;
        });
        return loaded;
    }
}
