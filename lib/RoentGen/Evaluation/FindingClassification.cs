using RoentGen.Data;
using RoentGen.Evaluation.Probes;

namespace RoentGen.Evaluation;

/// <summary>One observation's downstream result: AUC on the test set, and F1 at the threshold chosen on validation.</summary>
/// <param name="Finding">The observation.</param>
/// <param name="Auc">Test ROC AUC (NaN when the test set lacks positives or negatives).</param>
/// <param name="F1">Test F1 at <paramref name="Threshold"/> (NaN when test has no positives and nothing is predicted).</param>
/// <param name="Threshold">The probability threshold that maximised validation F1.</param>
/// <param name="Positives">Test positives.</param>
/// <param name="Negatives">Test negatives.</param>
public sealed record FindingScore(Observation Finding, double Auc, double F1, double Threshold, int Positives, int Negatives);

/// <summary>A classifier's test result over the observations: per finding, and macro means over the finite values.</summary>
public sealed record ClassificationResult(IReadOnlyList<FindingScore> PerFinding)
{
    /// <summary>Mean test AUC over the observations where it is defined.</summary>
    public double MacroAuc => ProbeMetrics.MeanFinite(PerFinding.Select(f => f.Auc));

    /// <summary>Mean test F1 over the observations where it is defined.</summary>
    public double MacroF1 => ProbeMetrics.MeanFinite(PerFinding.Select(f => f.F1));

    /// <summary>The result of one observation.</summary>
    public FindingScore this[Observation finding] => PerFinding.FirstOrDefault(f => f.Finding == finding)
        ?? throw new KeyNotFoundException($"no result for {finding}; have {string.Join(", ", PerFinding.Select(f => f.Finding))}");
}

/// <summary>
/// Scores multi-label predictions the way the synthetic-data studies report them (Prakash et al. 2024 choose each
/// finding's threshold on validation and report test F1; RoentGen reports AUC): thresholds are fitted on validation
/// scores only, then applied unchanged to the test scores.
/// </summary>
public static class FindingClassification
{
    /// <summary>
    /// The threshold in the validation scores that maximises F1 of one observation (ties: the lower threshold). With no
    /// validation positives, returns 0.5.
    /// </summary>
    public static double BestF1Threshold(IReadOnlyList<double> scores, IReadOnlyList<bool> positive)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(positive);
        if (scores.Count != positive.Count) throw new ArgumentException($"{scores.Count} scores but {positive.Count} labels");
        int totalPos = positive.Count(p => p);
        if (totalPos == 0) return 0.5;
        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();
        double bestF1 = -1, best = 0.5;
        int tp = 0, fp = 0;
        for (int k = 0; k < order.Length; k++)
        {
            if (positive[order[k]]) tp++; else fp++;
            // Predict positive for every score >= this one; only cut between distinct scores.
            if (k + 1 < order.Length && scores[order[k + 1]] == scores[order[k]]) continue;
            double f1 = ProbeMetrics.F1(tp, fp, totalPos - tp);
            if (f1 > bestF1) { bestF1 = f1; best = scores[order[k]]; }
        }
        return best;
    }

    /// <summary>F1 of predicting positive where score &gt;= threshold.</summary>
    public static double F1At(IReadOnlyList<double> scores, IReadOnlyList<bool> positive, double threshold)
    {
        int tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < scores.Count; i++)
        {
            bool predicted = scores[i] >= threshold;
            if (predicted && positive[i]) tp++; else if (predicted) fp++; else if (positive[i]) fn++;
        }
        return ProbeMetrics.F1(tp, fp, fn);
    }

    /// <summary>
    /// Per-observation test AUC and F1, thresholds chosen on validation. Scores and targets are row-major (N, K) with K
    /// observations in <see cref="Observation"/> order; targets are 1, 0, or −1 (left out, e.g. uncertain).
    /// </summary>
    /// <param name="validationScores">Validation probabilities, (Nv × K).</param>
    /// <param name="validationTargets">Validation targets, (Nv × K).</param>
    /// <param name="testScores">Test probabilities, (Nt × K).</param>
    /// <param name="testTargets">Test targets, (Nt × K).</param>
    /// <param name="observations">K, the number of observations per row.</param>
    public static ClassificationResult Score(float[] validationScores, float[] validationTargets, float[] testScores, float[] testTargets, int observations)
    {
        if (observations <= 0) throw new ArgumentOutOfRangeException(nameof(observations), "needs at least one observation");
        Check(validationScores, validationTargets, observations, "validation");
        Check(testScores, testTargets, observations, "test");
        var result = new List<FindingScore>();
        for (int o = 0; o < observations; o++)
        {
            var (vs, vt) = Column(validationScores, validationTargets, observations, o);
            var (ts, tt) = Column(testScores, testTargets, observations, o);
            double threshold = BestF1Threshold(vs, vt);
            int pos = tt.Count(t => t);
            double auc = pos == 0 || pos == tt.Count ? double.NaN : Auc.Compute(ts, tt);
            result.Add(new FindingScore((Observation)o, auc, F1At(ts, tt, threshold), threshold, pos, tt.Count - pos));
        }
        return new ClassificationResult(result);
    }

    static void Check(float[] scores, float[] targets, int k, string name)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(targets);
        if (scores.Length != targets.Length || scores.Length % k != 0)
            throw new ArgumentException($"{name}: {scores.Length} scores and {targets.Length} targets do not form rows of {k} observations");
    }

    static (List<double> Scores, List<bool> Positive) Column(float[] scores, float[] targets, int k, int o)
    {
        var s = new List<double>(); var p = new List<bool>();
        for (int i = o; i < scores.Length; i += k)
        {
            if (targets[i] < 0) continue;
            s.Add(scores[i]);
            p.Add(targets[i] > 0.5f);
        }
        return (s, p);
    }
}
