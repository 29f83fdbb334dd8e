using System.Collections.Concurrent;
using RoentGen.Data;
using RoentGen.Data.Phantoms;

namespace RoentGen.Vision;

/// <summary>One training phantom as the encoders see it: the image, its 14 binary labels and its report.</summary>
/// <param name="Image">The radiograph at the pool's source size, intensities in [0, 1].</param>
/// <param name="Labels">14 values in <see cref="Observations.All"/> order: 1 where the report's label is Positive, else 0.</param>
/// <param name="Report">"FINDINGS: ...\nIMPRESSION: ..." (never mentions sex or age).</param>
public sealed record PoolCase(GrayImage Image, float[] Labels, string Report);

/// <summary>
/// A fixed set of P phantom cases (cases 0 … P − 1 of one phantom world) shared by every encoder of a comparison,
/// so that self-supervised, supervised and language-supervised training see the same images. Cases are generated
/// on first use and kept (image, labels and report only; masks are dropped). As an <see cref="IDinoImageSource"/> it
/// draws B indices uniformly from the random stream, as <see cref="PhantomImageSource"/> with a pool does.
/// </summary>
public sealed class PhantomTrainingPool : IDinoImageSource
{
    private readonly PhantomGenerator _generator;
    private readonly ConcurrentDictionary<int, PoolCase> _cache = new();

    /// <summary>Creates the pool.</summary>
    /// <param name="count">Number of cases P (at least 2).</param>
    /// <param name="size">Image side at which cases are rendered (64 to 512).</param>
    /// <param name="worldSeed">Seed of the phantom world (use another seed for held-out evaluation phantoms).</param>
    /// <exception cref="ArgumentOutOfRangeException">Count below 2 or size outside 64 … 512.</exception>
    public PhantomTrainingPool(int count, int size, long worldSeed)
    {
        if (count < 2) throw new ArgumentOutOfRangeException(nameof(count), count, "a training pool needs at least 2 phantom cases");
        if (size < 64 || size > 512) throw new ArgumentOutOfRangeException(nameof(size), size, "phantoms are rendered at 64 to 512 pixels");
        Count = count;
        _generator = new PhantomGenerator(new PhantomOptions { Size = size, Seed = worldSeed });
    }

    /// <summary>Number of cases.</summary>
    public int Count { get; }
    /// <summary>Image side.</summary>
    public int Size => _generator.Options.Size;
    /// <summary>World seed.</summary>
    public long WorldSeed => _generator.Options.Seed;

    /// <inheritdoc />
    public string Description => $"phantoms ({Count}-case pool, world seed {WorldSeed}, {Size} px)";

    /// <summary>Case <paramref name="index"/> (generated on first use).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside the pool.</exception>
    public PoolCase this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"the pool holds cases 0 to {Count - 1}");
            return _cache.GetOrAdd(index, Make);
        }
    }

    /// <summary>B random case indices from the stream (with replacement).</summary>
    public int[] SampleIndices(int batchSize, Random rng) => Enumerable.Range(0, batchSize).Select(_ => rng.Next(Count)).ToArray();

    /// <summary>The cases at <paramref name="indices"/>, generating missing ones in parallel.</summary>
    public IReadOnlyList<PoolCase> Cases(IReadOnlyList<int> indices)
    {
        var missing = indices.Distinct().Where(i => !_cache.ContainsKey(i)).ToArray();
        Parallel.ForEach(missing, i => _ = this[i]);
        return indices.Select(i => this[i]).ToList();
    }

    /// <summary>The reports of the first <paramref name="max"/> cases (for training a tokenizer).</summary>
    public IReadOnlyList<string> Reports(int max) => Cases(Enumerable.Range(0, Math.Min(max, Count)).ToArray()).Select(c => c.Report).ToList();

    /// <inheritdoc />
    public IReadOnlyList<GrayImage> Batch(int step, int batchSize, Random rng) => Cases(SampleIndices(batchSize, rng)).Select(c => c.Image).ToList();

    private PoolCase Make(int index)
    {
        var c = _generator.Generate(index);
        return new PoolCase(c.Image, c.Labels.ToBinaryVector(), c.Report);
    }
}
