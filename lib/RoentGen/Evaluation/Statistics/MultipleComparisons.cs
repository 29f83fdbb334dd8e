namespace RoentGen.Evaluation.Statistics;

/// <summary>
/// Family-wise error control for several p-values. Adjusted p-values come back in the input order, capped at 1;
/// a hypothesis is rejected at level α when its adjusted p ≤ α.
/// Bonferroni: pᵢ' = min(1, m pᵢ) (Dunn 1961). Holm's step-down (Holm 1979, "A simple sequentially rejective multiple
/// test procedure"): with p₍₁₎ ≤ … ≤ p₍ₘ₎, p₍ᵢ₎' = min(1, maxⱼ≤ᵢ (m − j + 1) p₍ⱼ₎); uniformly more powerful than Bonferroni.
/// </summary>
public static class MultipleComparisons
{
    /// <summary>Bonferroni-adjusted p-values: min(1, m · pᵢ).</summary>
    /// <exception cref="ArgumentException">A p-value that is NaN or outside [0, 1] (its index is named).</exception>
    public static IReadOnlyList<double> Bonferroni(IReadOnlyList<double> p)
    {
        Check(p);
        return p.Select(x => Math.Min(1, x * p.Count)).ToArray();
    }

    /// <summary>Holm step-down adjusted p-values, in the order given.</summary>
    /// <exception cref="ArgumentException">A p-value that is NaN or outside [0, 1] (its index is named).</exception>
    public static IReadOnlyList<double> Holm(IReadOnlyList<double> p)
    {
        Check(p);
        int m = p.Count;
        var order = Enumerable.Range(0, m).OrderBy(i => p[i]).ToArray();   // stable: ties keep their input order
        var adjusted = new double[m];
        double running = 0;
        for (int rank = 0; rank < m; rank++)
        {
            running = Math.Max(running, Math.Min(1, (m - rank) * p[order[rank]]));
            adjusted[order[rank]] = running;
        }
        return adjusted;
    }

    /// <summary>Adjusted p-values by <paramref name="correction"/>.</summary>
    /// <exception cref="ArgumentException">An invalid p-value or an unknown correction.</exception>
    public static IReadOnlyList<double> Adjust(IReadOnlyList<double> p, Correction correction) => correction switch
    {
        Correction.Holm => Holm(p),
        Correction.Bonferroni => Bonferroni(p),
        Correction.None => Check(p).ToArray(),
        _ => throw new ArgumentException($"unknown correction {correction}", nameof(correction)),
    };

    /// <summary>Which hypotheses are rejected at <paramref name="alpha"/>: adjusted p ≤ α, in the order given.</summary>
    /// <exception cref="ArgumentException">α outside (0, 1) or an invalid p-value.</exception>
    public static IReadOnlyList<bool> Reject(IReadOnlyList<double> adjusted, double alpha = 0.05)
    {
        if (!(alpha > 0 && alpha < 1)) throw new ArgumentException($"alpha must lie strictly between 0 and 1, got {alpha}", nameof(alpha));
        Check(adjusted, nameof(adjusted));
        return adjusted.Select(x => x <= alpha).ToArray();
    }

    private static IReadOnlyList<double> Check(IReadOnlyList<double> p, string param = "p")
    {
        ArgumentNullException.ThrowIfNull(p, param);
        for (int i = 0; i < p.Count; i++)
            if (!(p[i] >= 0 && p[i] <= 1)) throw new ArgumentException($"p-value {i} is {p[i]}, not a probability in [0, 1]", param);
        return p;
    }
}

/// <summary>Correction for multiple comparisons.</summary>
public enum Correction
{
    /// <summary>Holm's step-down procedure (Holm 1979).</summary>
    Holm,
    /// <summary>Bonferroni's correction (Dunn 1961).</summary>
    Bonferroni,
    /// <summary>No correction: the raw p-values.</summary>
    None,
}
