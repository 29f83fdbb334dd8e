using RoentGen.Data;
using RoentGen.Evaluation;

namespace RoentGen.Tests;

public class FindingClassificationTests
{
    [Fact]
    public void Threshold_is_chosen_on_validation_and_applied_unchanged_to_test()
    {
        // Validation: positives score 0.6 and 0.9, negatives 0.1, 0.3 and 0.7. Best F1 cut is >= 0.6 (tp 2, fp 1: F1 0.8).
        double t = FindingClassification.BestF1Threshold([0.1, 0.3, 0.6, 0.7, 0.9], [false, false, true, false, true]);
        Assert.Equal(0.6, t, 12);
        // Test at 0.6: scores 0.55 (pos, missed), 0.65 (pos), 0.8 (neg): tp 1, fp 1, fn 1 -> F1 0.5.
        Assert.Equal(0.5, FindingClassification.F1At([0.55, 0.65, 0.8], [true, true, false], t), 12);
    }

    [Fact]
    public void Score_reports_per_finding_auc_and_f1_and_skips_uncertain_targets()
    {
        int k = Observations.All.Count;
        // Two validation rows and three test rows; only observation 0 carries signal, the rest are left out (-1).
        float[] Rows(params (float Score, float Target)[] rows)
        {
            var a = new float[rows.Length * k];
            for (int i = 0; i < a.Length; i++) a[i] = -1;
            for (int r = 0; r < rows.Length; r++) a[r * k] = rows[r].Target;
            return a;
        }
        float[] Scores(params float[] s) { var a = new float[s.Length * k]; for (int r = 0; r < s.Length; r++) a[r * k] = s[r]; return a; }
        var result = FindingClassification.Score(Scores(0.2f, 0.8f), Rows((0, 0), (0, 1)), Scores(0.1f, 0.9f, 0.85f), Rows((0, 0), (0, 1), (0, 0)), k);
        var first = result.PerFinding[0];
        Assert.Equal(1.0, first.Auc, 12);           // the one test positive (0.9) outranks both negatives (0.1, 0.85)
        Assert.Equal(0.8, first.Threshold, 6);       // validation: the positive scored 0.8
        Assert.Equal(2.0 / 3.0, first.F1, 12);       // test at 0.8: 0.9 tp, 0.85 fp, 0.1 tn
        Assert.Equal((1, 2), (first.Positives, first.Negatives));
        Assert.True(double.IsNaN(result.PerFinding[1].Auc));   // no targets left after skipping -1
        Assert.Equal(1.0, result.MacroAuc, 12);      // macro means skip undefined findings
        Assert.Equal(2.0 / 3.0, result.MacroF1, 12);
        Assert.Throws<ArgumentException>(() => FindingClassification.Score(new float[3], new float[3], new float[k], new float[k], k));
    }
}
