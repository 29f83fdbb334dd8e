using MathNet.Numerics.Distributions;

namespace RoentGen.Evaluation.Statistics;

/// <summary>The alternative hypothesis of a test about a mean (difference) μ.</summary>
public enum Alternative
{
    /// <summary>μ ≠ 0: p = 2 · P(T ≥ |t|).</summary>
    TwoSided,
    /// <summary>μ &gt; 0 (the first arm is larger): p = P(T ≥ t).</summary>
    Greater,
    /// <summary>μ &lt; 0 (the first arm is smaller): p = P(T ≤ t).</summary>
    Less,
}

/// <summary>The outcome of a t-test.</summary>
/// <param name="T">The t statistic.</param>
/// <param name="DegreesOfFreedom">Degrees of freedom of its Student-t distribution (not an integer for Welch's test).</param>
/// <param name="P">p-value for <paramref name="Alternative"/>.</param>
/// <param name="Alternative">The alternative hypothesis the p-value is for.</param>
/// <param name="MeanDifference">Estimated difference: mean(a) − mean(b), or the mean paired difference.</param>
/// <param name="StandardError">Standard error of <paramref name="MeanDifference"/> (t = difference / SE).</param>
public sealed record TTestResult(double T, double DegreesOfFreedom, double P, Alternative Alternative, double MeanDifference, double StandardError);

/// <summary>
/// Student's t-tests: paired (one-sample on the differences), unpaired with pooled variance (Student 1908) and unpaired
/// without equal variances (Welch 1947, with the Welch–Satterthwaite degrees of freedom). p-values from MathNet's
/// Student-t distribution. Formulas as in Rice, Mathematical Statistics and Data Analysis, 3rd ed., §11.2–11.3.
/// </summary>
public static class TTest
{
    /// <summary>One-sample test of mean = <paramref name="mu"/>: t = (x̄ − μ) / (s / √n), df = n − 1.</summary>
    /// <exception cref="ArgumentException">Fewer than two values, a non-finite value, or values that are all equal (t undefined).</exception>
    public static TTestResult OneSample(IReadOnlyList<double> values, double mu = 0, Alternative alternative = Alternative.TwoSided)
    {
        Check(values, nameof(values), "sample");
        if (Constant(values)) throw new ArgumentException($"the sample's {values.Count} values all equal {values[0]}: zero variance leaves t undefined", nameof(values));
        var s = Summary.Of(values);
        double diff = s.Mean - mu;
        return Result(diff / s.StandardError, s.N - 1, alternative, diff, s.StandardError);
    }

    /// <summary>Paired test: the one-sample test of the differences aᵢ − bᵢ against 0 (df = n − 1).</summary>
    /// <exception cref="ArgumentException">Lists of different lengths, fewer than two pairs, a non-finite value, or all differences equal.</exception>
    public static TTestResult Paired(IReadOnlyList<double> a, IReadOnlyList<double> b, Alternative alternative = Alternative.TwoSided)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count != b.Count) throw new ArgumentException($"a paired test needs as many values in each arm: a has {a.Count}, b has {b.Count}", nameof(b));
        Check(a, nameof(a), "first arm");
        Check(b, nameof(b), "second arm");
        var d = a.Zip(b, (x, y) => x - y).ToArray();
        if (Constant(d)) throw new ArgumentException($"all {d.Length} paired differences equal {d[0]}: zero variance leaves the paired t undefined", nameof(b));
        return OneSample(d, 0, alternative);
    }

    /// <summary>
    /// Welch's unequal-variance test: t = (ā − b̄) / √(s²ₐ/nₐ + s²ᵦ/nᵦ), with
    /// df = (s²ₐ/nₐ + s²ᵦ/nᵦ)² / [(s²ₐ/nₐ)²/(nₐ − 1) + (s²ᵦ/nᵦ)²/(nᵦ − 1)] (Welch 1947; Satterthwaite 1946).
    /// </summary>
    /// <exception cref="ArgumentException">An arm with fewer than two values, a non-finite value, or both arms without variance.</exception>
    public static TTestResult Welch(IReadOnlyList<double> a, IReadOnlyList<double> b, Alternative alternative = Alternative.TwoSided)
    {
        var (sa, sb) = (Arm(a, nameof(a), "first arm"), Arm(b, nameof(b), "second arm"));
        if (Constant(a) && Constant(b)) throw new ArgumentException("both arms have zero variance (each arm's values are all equal): Welch's t is undefined", nameof(b));
        double va = sa.StandardDeviation * sa.StandardDeviation / sa.N, vb = sb.StandardDeviation * sb.StandardDeviation / sb.N;
        double df = WelchDegreesOfFreedom(sa.StandardDeviation, sa.N, sb.StandardDeviation, sb.N);
        double se = Math.Sqrt(va + vb), diff = sa.Mean - sb.Mean;
        return Result(diff / se, df, alternative, diff, se);
    }

    /// <summary>The Welch–Satterthwaite degrees of freedom of two arms with sample standard deviations sₐ, sᵦ and sizes nₐ, nᵦ.</summary>
    /// <exception cref="ArgumentException">A size below two, or both deviations zero.</exception>
    public static double WelchDegreesOfFreedom(double sdA, int nA, double sdB, int nB)
    {
        if (nA < 2 || nB < 2) throw new ArgumentException($"Welch's degrees of freedom need at least two values per arm, got {nA} and {nB}");
        double va = sdA * sdA / nA, vb = sdB * sdB / nB;
        if (va + vb == 0) throw new ArgumentException("both arms have zero variance: Welch's degrees of freedom are undefined");
        return (va + vb) * (va + vb) / (va * va / (nA - 1) + vb * vb / (nB - 1));
    }

    /// <summary>
    /// Student's pooled-variance test: s²ₚ = [(nₐ − 1)s²ₐ + (nᵦ − 1)s²ᵦ] / (nₐ + nᵦ − 2),
    /// t = (ā − b̄) / (sₚ √(1/nₐ + 1/nᵦ)), df = nₐ + nᵦ − 2.
    /// </summary>
    /// <exception cref="ArgumentException">An arm with fewer than two values, a non-finite value, or no variance in either arm.</exception>
    public static TTestResult Student(IReadOnlyList<double> a, IReadOnlyList<double> b, Alternative alternative = Alternative.TwoSided)
    {
        var (sa, sb) = (Arm(a, nameof(a), "first arm"), Arm(b, nameof(b), "second arm"));
        if (Constant(a) && Constant(b)) throw new ArgumentException("both arms have zero variance (each arm's values are all equal): the pooled t is undefined", nameof(b));
        int df = sa.N + sb.N - 2;
        double pooled = ((sa.N - 1) * sa.StandardDeviation * sa.StandardDeviation + (sb.N - 1) * sb.StandardDeviation * sb.StandardDeviation) / df;
        double se = Math.Sqrt(pooled * (1.0 / sa.N + 1.0 / sb.N)), diff = sa.Mean - sb.Mean;
        return Result(diff / se, df, alternative, diff, se);
    }

    /// <summary>The p-value of statistic <paramref name="t"/> under Student's t with <paramref name="degreesOfFreedom"/>.</summary>
    /// <exception cref="ArgumentException">Non-finite t or non-positive degrees of freedom.</exception>
    public static double PValue(double t, double degreesOfFreedom, Alternative alternative)
    {
        if (!double.IsFinite(t)) throw new ArgumentException($"t must be finite, got {t}", nameof(t));
        if (!(degreesOfFreedom > 0)) throw new ArgumentException($"degrees of freedom must be positive, got {degreesOfFreedom}", nameof(degreesOfFreedom));
        return alternative switch
        {
            Alternative.Greater => 1 - StudentT.CDF(0, 1, degreesOfFreedom, t),
            Alternative.Less => StudentT.CDF(0, 1, degreesOfFreedom, t),
            Alternative.TwoSided => Math.Min(1, 2 * (1 - StudentT.CDF(0, 1, degreesOfFreedom, Math.Abs(t)))),
            _ => throw new ArgumentException($"unknown alternative {alternative}", nameof(alternative)),
        };
    }

    private static TTestResult Result(double t, double df, Alternative alternative, double diff, double se) =>
        new(t, df, PValue(t, df, alternative), alternative, diff, se);

    private static Summary Arm(IReadOnlyList<double> values, string param, string what)
    {
        Check(values, param, what);
        return Summary.Of(values);
    }

    private static bool Constant(IReadOnlyList<double> values) => values.All(x => x == values[0]);

    private static void Check(IReadOnlyList<double> values, string param, string what)
    {
        ArgumentNullException.ThrowIfNull(values, param);
        if (values.Count < 2) throw new ArgumentException($"a t-test needs at least two values in the {what}, got {values.Count}", param);
        for (int i = 0; i < values.Count; i++)
            if (!double.IsFinite(values[i])) throw new ArgumentException($"value {i} of the {what} is {values[i]}, not a finite number", param);
    }
}
