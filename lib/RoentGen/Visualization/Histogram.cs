namespace RoentGen.Visualization;

/// <summary>Counts of values in consecutive bins (a histogram), drawn as bars by <see cref="ToBar"/>.</summary>
/// <remarks>
/// Bin i holds the values v with Edges[i] &lt;= v &lt; Edges[i + 1]; the last bin also holds v == Edges[^1].
/// Non-finite values and values outside the edges are not counted (see <see cref="Total"/>).
/// </remarks>
public sealed record HistogramBins
{
    internal HistogramBins(double[] edges, int[] counts)
    {
        Edges = Array.AsReadOnly(edges);
        Counts = Array.AsReadOnly(counts);
    }

    /// <summary>Bin edges, ascending: one more than there are bins.</summary>
    public IReadOnlyList<double> Edges { get; }

    /// <summary>Values counted in each bin.</summary>
    public IReadOnlyList<int> Counts { get; }

    /// <summary>Values counted in all bins.</summary>
    public int Total => Counts.Sum();

    /// <summary>The centre of each bin.</summary>
    public IReadOnlyList<double> Centers => Enumerable.Range(0, Counts.Count).Select(i => (Edges[i] + Edges[i + 1]) / 2).ToArray();

    /// <summary>
    /// The bins as a bar trace: a bar per bin at its centre, as wide as the bin (draw with
    /// <see cref="FigureLayout.BarGap"/> 0, and <see cref="BarMode.Overlay"/> plus an opacity for several groups).
    /// Needs equal-width bins, as <see cref="Histogram.Bin(IEnumerable{double}, int)"/> and <see cref="Histogram.EvenEdges"/> make.
    /// </summary>
    /// <param name="name">Legend entry.</param>
    /// <exception cref="InvalidOperationException">The bins are not of equal width.</exception>
    public BarTrace ToBar(string? name = null)
    {
        double width = Counts.Count == 0 ? 1 : Edges[1] - Edges[0];
        for (int i = 1; i < Counts.Count; i++)
            if (Math.Abs(Edges[i + 1] - Edges[i] - width) > 1e-9 * Math.Max(1, Math.Abs(width)))
                throw new InvalidOperationException($"bin {i} is {Edges[i + 1] - Edges[i]} wide, bin 0 is {width}: a bar trace needs bins of equal width");
        return new BarTrace { Name = name, Positions = Centers, Values = Counts.Select(c => (double)c).ToArray(), Width = width };
    }
}

/// <summary>Bins values into a histogram in C# (the plotly.js bundle shipped has no histogram trace).</summary>
public static class Histogram
{
    /// <summary>
    /// At most about <paramref name="bins"/> equal bins of a "nice" width (1, 2, 2.5 or 5 times a power of ten) that
    /// cover the values' finite range, starting at a multiple of the width.
    /// </summary>
    /// <param name="min">Smallest value to cover.</param>
    /// <param name="max">Largest value to cover (at least <paramref name="min"/>).</param>
    /// <param name="bins">Wanted number of bins, at least 1.</param>
    /// <exception cref="ArgumentException">The range is not finite or is reversed, or <paramref name="bins"/> is below 1.</exception>
    public static IReadOnlyList<double> EvenEdges(double min, double max, int bins)
    {
        if (bins < 1) throw new ArgumentException($"bins must be at least 1, got {bins}", nameof(bins));
        if (!double.IsFinite(min) || !double.IsFinite(max) || max < min)
            throw new ArgumentException($"the range to bin must be finite and ascending, got [{min}, {max}]", nameof(min));
        if (max == min) return [min - 0.5, min + 0.5];
        double raw = (max - min) / bins;
        double power = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double width = new[] { 1, 2, 2.5, 5, 10 }.Select(f => f * power).First(w => w >= raw * (1 - 1e-12));
        double start = Math.Floor(min / width) * width;
        int count = Math.Max(1, (int)Math.Ceiling((max - start) / width - 1e-9));
        if (start + count * width < max) count++;   // rounding: the last edge must not fall short of max (the last bin is closed)
        return Enumerable.Range(0, count + 1).Select(i => start + i * width).ToArray();
    }

    /// <summary>Bins values into about <paramref name="bins"/> nice equal bins over their finite range (<see cref="EvenEdges"/>).</summary>
    /// <param name="values">The values; non-finite ones are not counted.</param>
    /// <param name="bins">Wanted number of bins, at least 1.</param>
    /// <returns>The bins; with no finite value, no bins.</returns>
    public static HistogramBins Bin(IEnumerable<double> values, int bins)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (bins < 1) throw new ArgumentException($"bins must be at least 1, got {bins}", nameof(bins));
        var finite = values.Where(double.IsFinite).ToArray();
        if (finite.Length == 0) return new HistogramBins([], []);
        return Bin(finite, EvenEdges(finite.Min(), finite.Max(), bins));
    }

    /// <summary>Bins values into given bins (e.g. the same edges for several groups).</summary>
    /// <param name="values">The values; non-finite ones and those outside the edges are not counted.</param>
    /// <param name="edges">Bin edges, strictly ascending, at least two.</param>
    /// <exception cref="ArgumentException">Fewer than two edges, or edges not finite and strictly ascending.</exception>
    public static HistogramBins Bin(IEnumerable<double> values, IReadOnlyList<double> edges)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(edges);
        if (edges.Count < 2) throw new ArgumentException($"a histogram needs at least 2 bin edges, got {edges.Count}", nameof(edges));
        for (int i = 0; i < edges.Count; i++)
        {
            if (!double.IsFinite(edges[i])) throw new ArgumentException($"bin edge {i} is {edges[i]}, expected a finite number", nameof(edges));
            if (i > 0 && edges[i] <= edges[i - 1]) throw new ArgumentException($"bin edges must be strictly ascending: edge {i} ({edges[i]}) is not above edge {i - 1} ({edges[i - 1]})", nameof(edges));
        }
        var e = edges.ToArray();
        var counts = new int[e.Length - 1];
        foreach (var v in values)
        {
            if (!double.IsFinite(v) || v < e[0] || v > e[^1]) continue;
            int bin = Array.BinarySearch(e, v);
            // An exact edge hit belongs to the bin it opens (the last edge closes the last bin); else the bin below the insertion point.
            bin = bin >= 0 ? Math.Min(bin, counts.Length - 1) : ~bin - 1;
            counts[bin]++;
        }
        return new HistogramBins(e, counts);
    }
}
