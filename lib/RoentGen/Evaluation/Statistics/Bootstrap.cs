namespace RoentGen.Evaluation.Statistics;

/// <summary>A bootstrap percentile interval.</summary>
/// <param name="Estimate">The statistic on the original sample.</param>
/// <param name="Lower">The (1 − level)/2 quantile of the resampled statistics.</param>
/// <param name="Upper">The 1 − (1 − level)/2 quantile of the resampled statistics.</param>
/// <param name="Level">Confidence level (0.95 for 95%).</param>
/// <param name="Resamples">Number of bootstrap resamples B.</param>
/// <param name="Seed">Seed of the <see cref="Random"/> that drew the resamples.</param>
public sealed record BootstrapInterval(double Estimate, double Lower, double Upper, double Level, int Resamples, int Seed);

/// <summary>
/// Nonparametric bootstrap percentile intervals (Efron and Tibshirani 1993, An Introduction to the Bootstrap, ch. 13):
/// draw B resamples of size n with replacement, compute the statistic on each, and take its (1 − level)/2 and
/// 1 − (1 − level)/2 quantiles (linear interpolation between order statistics, Hyndman and Fan 1996 type 7).
/// Resamples come from <c>new Random(seed)</c>, so the same input, B and seed always give the same interval.
/// </summary>
public static class Bootstrap
{
    /// <summary>Percentile interval of <paramref name="statistic"/> on one sample.</summary>
    /// <param name="sample">The observations (at least one, all finite).</param>
    /// <param name="statistic">Any statistic of a sample (mean, median, AUC of stored scores, ...).</param>
    /// <param name="resamples">B, at least 1.</param>
    /// <param name="seed">Seed of the resampling.</param>
    /// <param name="level">Confidence level, strictly between 0 and 1.</param>
    /// <exception cref="ArgumentException">An empty sample, a non-finite value, B &lt; 1 or a level outside (0, 1).</exception>
    public static BootstrapInterval Percentile(IReadOnlyList<double> sample, Func<IReadOnlyList<double>, double> statistic,
        int resamples = 2000, int seed = 0, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(statistic);
        if (sample.Count == 0) throw new ArgumentException("a bootstrap needs at least one observation", nameof(sample));
        for (int i = 0; i < sample.Count; i++)
            if (!double.IsFinite(sample[i])) throw new ArgumentException($"observation {i} is {sample[i]}, not a finite number", nameof(sample));
        if (resamples < 1) throw new ArgumentException($"the number of bootstrap resamples must be at least 1, got {resamples}", nameof(resamples));
        Summary.CheckLevel(level);

        var data = sample.ToArray();
        var random = new Random(seed);
        var stats = new double[resamples];
        for (int b = 0; b < resamples; b++)
        {
            var resample = new double[data.Length];   // fresh each time: a statistic may keep what it is given
            for (int i = 0; i < resample.Length; i++) resample[i] = data[random.Next(data.Length)];
            stats[b] = statistic(resample);
        }
        Array.Sort(stats);
        double alpha = (1 - level) / 2;
        return new BootstrapInterval(statistic(data), Quantile(stats, alpha), Quantile(stats, 1 - alpha), level, resamples, seed);
    }

    /// <summary>Percentile interval of <paramref name="statistic"/> on the paired differences aᵢ − bᵢ (pairs are resampled together).</summary>
    /// <exception cref="ArgumentException">Arms of different lengths, or as for <see cref="Percentile"/>.</exception>
    public static BootstrapInterval PairedDifference(IReadOnlyList<double> a, IReadOnlyList<double> b, Func<IReadOnlyList<double>, double> statistic,
        int resamples = 2000, int seed = 0, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count != b.Count) throw new ArgumentException($"paired differences need as many values in each arm: a has {a.Count}, b has {b.Count}", nameof(b));
        return Percentile(a.Zip(b, (x, y) => x - y).ToArray(), statistic, resamples, seed, level);
    }

    /// <summary>The mean of a sample, for use as a <c>statistic</c>.</summary>
    public static double Mean(IReadOnlyList<double> values) => values.Average();

    /// <summary>Quantile q of ascending <paramref name="sorted"/> values: x[h] with h = (n − 1) q, interpolated linearly (Hyndman and Fan 1996, type 7).</summary>
    /// <exception cref="ArgumentException">No value, or q outside [0, 1].</exception>
    public static double Quantile(IReadOnlyList<double> sorted, double q)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0) throw new ArgumentException("a quantile needs at least one value", nameof(sorted));
        if (!(q >= 0 && q <= 1)) throw new ArgumentException($"quantile must lie in [0, 1], got {q}", nameof(q));
        double h = (sorted.Count - 1) * q;
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }
}
