using RoentGen.Evaluation.Statistics;

namespace RoentGen.Tests.Evaluation.Statistics;

public class BootstrapTests
{
    private static double[] Sample(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => r.NextDouble() * 2 + r.NextDouble()).ToArray();
    }

    [Fact]
    public void The_same_seed_gives_the_same_interval_and_another_seed_a_different_one()
    {
        var x = Sample(30, 1);
        var a = Bootstrap.Percentile(x, Bootstrap.Mean, 500, seed: 7);
        var b = Bootstrap.Percentile(x, Bootstrap.Mean, 500, seed: 7);
        var c = Bootstrap.Percentile(x, Bootstrap.Mean, 500, seed: 8);
        Assert.Equal(a, b);
        Assert.NotEqual(a.Lower, c.Lower);
        Assert.Equal((500, 7, 0.95), (a.Resamples, a.Seed, a.Level));
    }

    [Fact]
    public void The_interval_of_the_mean_contains_the_sample_mean_and_is_about_the_normal_width()
    {
        var x = Sample(60, 2);
        var ci = Bootstrap.Percentile(x, Bootstrap.Mean, 4000, seed: 3);
        double mean = x.Average();
        Assert.Equal(mean, ci.Estimate, 12);
        Assert.InRange(mean, ci.Lower, ci.Upper);
        // Percentile interval of a mean ≈ mean ± 1.96 σ̂/√n, σ̂ with divisor n (the bootstrap's plug-in spread).
        double plugIn = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / x.Length) / Math.Sqrt(x.Length);
        Assert.InRange((ci.Upper - ci.Lower) / 2 / (1.96 * plugIn), 0.9, 1.1);
        var wide = Bootstrap.Percentile(x, Bootstrap.Mean, 4000, seed: 3, level: 0.99);
        Assert.True(wide.Upper - wide.Lower > ci.Upper - ci.Lower);
    }

    [Fact]
    public void Any_statistic_can_be_bootstrapped_and_a_constant_sample_has_no_width()
    {
        var ci = Bootstrap.Percentile([4, 4, 4, 4], v => v.Max(), 100, seed: 0);
        Assert.Equal((4.0, 4.0, 4.0), (ci.Estimate, ci.Lower, ci.Upper));
        var median = Bootstrap.Percentile(Sample(25, 5), v => Bootstrap.Quantile(v.Order().ToArray(), 0.5), 300, seed: 1);
        Assert.True(median.Lower <= median.Estimate && median.Estimate <= median.Upper);
    }

    [Fact]
    public void Paired_difference_resamples_the_differences_of_pairs()
    {
        double[] a = [3, 5, 4, 8, 6, 7], b = [1, 4, 4, 5, 5, 3];
        var paired = Bootstrap.PairedDifference(a, b, Bootstrap.Mean, 800, seed: 11);
        var direct = Bootstrap.Percentile([2, 1, 0, 3, 1, 4], Bootstrap.Mean, 800, seed: 11);
        Assert.Equal(direct, paired);
        Assert.Equal(11.0 / 6, paired.Estimate, 12);
        Assert.Contains("a has 2, b has 1", Assert.Throws<ArgumentException>(() => Bootstrap.PairedDifference([1, 2], [1], Bootstrap.Mean)).Message);
    }

    [Fact]
    public void Quantiles_interpolate_between_order_statistics_and_bad_input_is_refused()
    {
        Assert.Equal(1.75, Bootstrap.Quantile([1, 2, 3, 4], 0.25), 12);
        Assert.Equal(4, Bootstrap.Quantile([1, 2, 3, 4], 1), 12);
        Assert.Equal(1, Bootstrap.Quantile([1, 2, 3, 4], 0), 12);
        Assert.Contains("at least one observation", Assert.Throws<ArgumentException>(() => Bootstrap.Percentile([], Bootstrap.Mean)).Message);
        Assert.Contains("at least 1, got 0", Assert.Throws<ArgumentException>(() => Bootstrap.Percentile([1], Bootstrap.Mean, 0)).Message);
        Assert.Contains("observation 1 is NaN", Assert.Throws<ArgumentException>(() => Bootstrap.Percentile([1, double.NaN], Bootstrap.Mean)).Message);
    }

    [Fact]
    public void Percentile_interval_of_the_mean_matches_the_exact_bootstrap_distribution()
    {
        // The exact bootstrap distribution of the mean of {0, 1, 2, 5}: all 4^4 = 256 equally likely resamples, enumerated
        // with python3 (no scipy here):
        //   python3 -c "import itertools as i,collections as c;n=c.Counter(sum(t)/4 for t in i.product([0,1,2,5],repeat=4));k=sorted(n);print([(v,sum(n[u] for u in k if u<=v)/256) for v in k])"
        // gives the cumulative probabilities P(mean <= 0.25) = 5/256 = 0.0195, P(mean <= 0.5) = 15/256 = 0.0586,
        // P(mean <= 3.75) = 247/256 = 0.9648, P(mean <= 4.0) = 251/256 = 0.9805. So the exact 2.5 % and 97.5 % quantiles are
        // 0.5 and 4.0, each at least 0.0055 (over 5 binomial standard deviations at B = 20000) from the neighbouring jump:
        // the percentile interval of a large bootstrap lands on them exactly.
        var ci = Bootstrap.Percentile([0.0, 1.0, 2.0, 5.0], Bootstrap.Mean, resamples: 20000, seed: 3);
        Assert.Equal(2.0, ci.Estimate, 12);
        Assert.Equal(0.5, ci.Lower, 12);
        Assert.Equal(4.0, ci.Upper, 12);
    }
}
