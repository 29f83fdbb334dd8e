namespace RoentGen.Evaluation.Probes;

// The probes' own small metrics, kept in one internal place so that the shared Evaluation metrics can replace them.
internal static class ProbeMetrics
{
    /// <summary>ROC AUC (the shared <see cref="RoentGen.Evaluation.Auc"/>); NaN when a class is absent.</summary>
    public static double Auc(IReadOnlyList<double> scores, IReadOnlyList<bool> positive) => RoentGen.Evaluation.Auc.Compute(scores, positive);

    public static double Pearson(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        int n = a.Count;
        if (n < 2) return double.NaN;
        double ma = a.Average(), mb = b.Average(), sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < n; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb); }
        return saa == 0 || sbb == 0 ? double.NaN : sab / Math.Sqrt(saa * sbb);
    }

    public static double MeanAbsoluteError(IReadOnlyList<double> a, IReadOnlyList<double> b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    /// <summary>F1 of the positive class; NaN when there are no true and no predicted positives.</summary>
    public static double F1(int tp, int fp, int fn) => tp + fp + fn == 0 ? double.NaN : 2.0 * tp / (2.0 * tp + fp + fn);

    /// <summary>Mean of the finite values, NaN when none.</summary>
    public static double MeanFinite(IEnumerable<double> values)
    {
        var v = values.Where(double.IsFinite).ToList();
        return v.Count == 0 ? double.NaN : v.Average();
    }
}
