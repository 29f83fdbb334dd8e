namespace RoentGen.Evaluation.Statistics;

/// <summary>Standard error of a ROC AUC from its value and the class counts alone.</summary>
public static class HanleyMcNeil
{
    /// <summary>
    /// Hanley and McNeil (1982), "The meaning and use of the area under a ROC curve", Radiology 143, eq. 2:
    /// SE² = [A(1 − A) + (n₊ − 1)(Q₁ − A²) + (n₋ − 1)(Q₂ − A²)] / (n₊ n₋), with
    /// Q₁ = A / (2 − A) and Q₂ = 2A² / (1 + A). NaN when the AUC is undefined.
    /// </summary>
    /// <param name="auc">The area A.</param>
    /// <param name="positives">n₊, the number of positive cases.</param>
    /// <param name="negatives">n₋, the number of negative cases.</param>
    public static double StandardError(double auc, int positives, int negatives)
    {
        if (!double.IsFinite(auc) || positives < 1 || negatives < 1) return double.NaN;
        double q1 = auc / (2 - auc), q2 = 2 * auc * auc / (1 + auc);
        double v = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / ((double)positives * negatives);
        return Math.Sqrt(Math.Max(0, v));
    }
}
