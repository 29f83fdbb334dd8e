namespace RoentGen.Evaluation;

/// <summary>
/// Area under the ROC curve through its rank form (the Mann–Whitney U statistic, Hanley and McNeil 1982):
/// AUC = (R₊ − n₊(n₊+1)/2) / (n₊·n₋), where R₊ is the sum of the positives' ranks among all scores. Tied scores
/// share their average rank, so a tie between a positive and a negative counts one half.
/// </summary>
public static class Auc
{
    /// <summary>
    /// ROC AUC of <paramref name="scores"/> (higher = more likely positive) against binary <paramref name="labels"/>.
    /// Returns <see cref="double.NaN"/> when either class is missing (the AUC is undefined there), so a table of
    /// per-finding AUCs can show the gap instead of failing.
    /// </summary>
    /// <exception cref="ArgumentException">The lengths differ, or a score is NaN.</exception>
    public static double Compute(IReadOnlyList<double> scores, IReadOnlyList<bool> labels)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(labels);
        if (scores.Count != labels.Count)
            throw new ArgumentException($"AUC needs one label per score, got {scores.Count} scores and {labels.Count} labels");
        int n = scores.Count;
        for (int i = 0; i < n; i++)
            if (double.IsNaN(scores[i])) throw new ArgumentException($"AUC score {i} is NaN; every score must be a number");
        long nPos = labels.Count(l => l), nNeg = n - nPos;
        if (nPos == 0 || nNeg == 0) return double.NaN;

        var order = Enumerable.Range(0, n).OrderBy(i => scores[i]).ToArray();
        double rankSumPos = 0;
        int start = 0;
        while (start < n)
        {
            int end = start;
            while (end + 1 < n && scores[order[end + 1]] == scores[order[start]]) end++;
            double averageRank = (start + end) / 2.0 + 1;   // 1-based ranks start+1 .. end+1
            for (int k = start; k <= end; k++)
                if (labels[order[k]]) rankSumPos += averageRank;
            start = end + 1;
        }
        return (rankSumPos - nPos * (nPos + 1) / 2.0) / ((double)nPos * nNeg);
    }

    /// <summary>ROC AUC of float scores (see <see cref="Compute(IReadOnlyList{double}, IReadOnlyList{bool})"/>).</summary>
    public static double Compute(IReadOnlyList<float> scores, IReadOnlyList<bool> labels) =>
        Compute(scores.Select(s => (double)s).ToArray(), labels);
}
