namespace RoentGen.Tests.Visualization;

public class HistogramTests
{
    [Fact]
    public void Counts_sum_to_the_number_of_finite_values_and_bins_are_nice()
    {
        var rng = new Random(3);
        var ages = Enumerable.Range(0, 500).Select(_ => 18 + rng.NextDouble() * 72).ToArray();
        var bins = Histogram.Bin(ages, 15);
        Assert.Equal(ages.Length, bins.Total);
        Assert.Equal(bins.Counts.Count + 1, bins.Edges.Count);
        Assert.InRange(bins.Counts.Count, 8, 16);
        double width = bins.Edges[1] - bins.Edges[0];
        Assert.Equal(5, width, 9);                                   // 72 / 15 = 4.8 -> 5
        Assert.True(bins.Edges[0] <= ages.Min() && bins.Edges[^1] >= ages.Max());
        Assert.Equal(0, bins.Edges[0] % width, 9);

        var withNaN = ages.Append(double.NaN).Append(double.PositiveInfinity);
        Assert.Equal(ages.Length, Histogram.Bin(withNaN, 15).Total);
    }

    [Fact]
    public void Edge_values_go_to_the_bin_they_open_and_the_last_edge_closes_the_last_bin()
    {
        var bins = Histogram.Bin([0, 1, 1.5, 2, 3, 3.5, 4, -1, 5], [0, 1, 2, 3, 4]);
        Assert.Equal([1, 2, 1, 3], bins.Counts);
        Assert.Equal(7, bins.Total);                                 // -1 and 5 lie outside
        Assert.Equal([0.5, 1.5, 2.5, 3.5], bins.Centers);
    }

    [Fact]
    public void Bins_become_bars_at_their_centres_as_wide_as_a_bin()
    {
        var bar = Histogram.Bin([1, 2, 2, 3], [0, 2, 4]).ToBar("x");
        Assert.Equal("x", bar.Name);
        Assert.Equal([1.0, 3.0], bar.Positions!);
        Assert.Equal([1.0, 3.0], bar.Values);
        Assert.Equal(2, bar.Width);
        Assert.Throws<InvalidOperationException>(() => Histogram.Bin([1], [0, 1, 3]).ToBar());
    }

    [Fact]
    public void Degenerate_inputs_give_one_or_no_bins_and_bad_edges_are_errors()
    {
        var same = Histogram.Bin([7, 7, 7], 10);
        Assert.Equal([3], same.Counts);
        Assert.Empty(Histogram.Bin([], 10).Counts);
        Assert.Empty(Histogram.Bin([double.NaN], 10).Counts);
        Assert.Contains("strictly ascending", Assert.Throws<ArgumentException>(() => Histogram.Bin([1], [0, 2, 2])).Message);
        Assert.Throws<ArgumentException>(() => Histogram.Bin([1], [0]));
        Assert.Throws<ArgumentException>(() => Histogram.Bin([1], 0));
    }
}
