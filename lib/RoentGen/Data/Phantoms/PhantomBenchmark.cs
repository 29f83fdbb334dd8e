using System.Diagnostics;

namespace RoentGen.Data.Phantoms;

/// <summary>Result of <see cref="PhantomBenchmark.Run"/>.</summary>
/// <param name="ImagesPerSecond">Cases (image, masks, report, labels) per second over all threads.</param>
/// <param name="MillisecondsPerImage">Wall milliseconds per case.</param>
/// <param name="Threads">Worker threads used.</param>
/// <param name="Size">Image side.</param>
/// <param name="Count">Cases timed.</param>
public sealed record PhantomBenchmarkResult(double ImagesPerSecond, double MillisecondsPerImage, int Threads, int Size, int Count)
{
    /// <inheritdoc />
    public override string ToString() => $"{ImagesPerSecond:F0} images/s at {Size}x{Size} ({MillisecondsPerImage:F2} ms/image, {Threads} threads, {Count} images)";
}

/// <summary>Times phantom generation in memory (no disk).</summary>
public static class PhantomBenchmark
{
    /// <summary>Generates <paramref name="count"/> cases of side <paramref name="size"/> in parallel after a short warm-up and reports the rate.</summary>
    public static PhantomBenchmarkResult Run(int size, int count, int? threads = null)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be positive");
        var gen = new PhantomGenerator(new PhantomOptions { Size = size, Seed = 12345 });
        int t = threads ?? Environment.ProcessorCount;
        gen.Generate(1_000_000, Math.Min(16, count), t); // warm-up (JIT)
        var sw = Stopwatch.StartNew();
        gen.Generate(0, count, t);
        sw.Stop();
        double s = sw.Elapsed.TotalSeconds;
        return new PhantomBenchmarkResult(count / s, 1000 * s / count, t, size, count);
    }
}
