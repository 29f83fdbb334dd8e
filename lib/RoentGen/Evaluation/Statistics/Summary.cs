using MathNet.Numerics.Distributions;

namespace RoentGen.Evaluation.Statistics;

/// <summary>
/// Mean, spread and Student-t confidence interval of a few values (a metric over seeds):
/// sd = √(Σ(x − x̄)² / (n − 1)), SE = sd / √n, CI = x̄ ± t(1 − (1 − level)/2; n − 1) · SE
/// (Student 1908; any textbook, e.g. Rice, Mathematical Statistics and Data Analysis, 3rd ed., §7.3.3).
/// </summary>
/// <param name="N">Number of values summarised.</param>
/// <param name="Mean">Arithmetic mean (NaN when <paramref name="N"/> is 0).</param>
/// <param name="StandardDeviation">Sample standard deviation with n − 1 (NaN when <paramref name="N"/> &lt; 2).</param>
/// <param name="StandardError">Standard error of the mean, sd / √n (NaN when <paramref name="N"/> &lt; 2).</param>
/// <param name="Level">Confidence level of the interval (0.95 for 95%).</param>
/// <param name="Lower">Lower end of the Student-t interval (NaN when <paramref name="N"/> &lt; 2).</param>
/// <param name="Upper">Upper end of the Student-t interval (NaN when <paramref name="N"/> &lt; 2).</param>
public sealed record Summary(int N, double Mean, double StandardDeviation, double StandardError, double Level, double Lower, double Upper)
{
    /// <summary>Summarises <paramref name="values"/>, all of which must be finite.</summary>
    /// <param name="values">The values (e.g. one metric, one per seed).</param>
    /// <param name="level">Confidence level, strictly between 0 and 1.</param>
    /// <exception cref="ArgumentException">No value, a non-finite value (its index is named), or a level outside (0, 1).</exception>
    public static Summary Of(IEnumerable<double> values, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(values);
        var v = values.ToArray();
        if (v.Length == 0) throw new ArgumentException("a summary needs at least one value", nameof(values));
        int bad = Array.FindIndex(v, x => !double.IsFinite(x));
        if (bad >= 0) throw new ArgumentException($"value {bad} is {v[bad]}, not a finite number (use {nameof(OfFinite)} to skip such values)", nameof(values));
        return Compute(v, level);
    }

    /// <summary>Summarises the finite values of <paramref name="values"/>, skipping NaN and infinities; with none left the mean is NaN and N is 0.</summary>
    /// <param name="values">The values; undefined ones (NaN) are left out.</param>
    /// <param name="level">Confidence level, strictly between 0 and 1.</param>
    /// <exception cref="ArgumentException">A level outside (0, 1).</exception>
    public static Summary OfFinite(IEnumerable<double> values, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(values);
        return Compute(values.Where(double.IsFinite).ToArray(), level);
    }

    /// <summary>The two-sided Student-t quantile t(1 − (1 − level)/2; df) that scales a standard error into a half-width.</summary>
    /// <exception cref="ArgumentException">A level outside (0, 1) or degrees of freedom that are not positive.</exception>
    public static double CriticalT(double level, double degreesOfFreedom)
    {
        CheckLevel(level);
        if (!(degreesOfFreedom > 0)) throw new ArgumentException($"degrees of freedom must be positive, got {degreesOfFreedom}", nameof(degreesOfFreedom));
        return StudentT.InvCDF(0, 1, degreesOfFreedom, 1 - (1 - level) / 2);
    }

    internal static void CheckLevel(double level)
    {
        if (!(level > 0 && level < 1)) throw new ArgumentException($"confidence level must lie strictly between 0 and 1 (0.95 for 95%), got {level}", nameof(level));
    }

    private static Summary Compute(double[] v, double level)
    {
        CheckLevel(level);
        int n = v.Length;
        if (n == 0) return new Summary(0, double.NaN, double.NaN, double.NaN, level, double.NaN, double.NaN);
        double mean = v.Average();
        if (n < 2) return new Summary(1, mean, double.NaN, double.NaN, level, double.NaN, double.NaN);
        double sd = Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (n - 1));
        double se = sd / Math.Sqrt(n);
        double half = CriticalT(level, n - 1) * se;
        return new Summary(n, mean, sd, se, level, mean - half, mean + half);
    }
}
