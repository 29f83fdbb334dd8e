using RoentGen.Evaluation.Statistics;

namespace RoentGen.Tests.Evaluation.Statistics;

public class SeedSweepTests
{
    private static readonly long[] Seeds = [1, 2, 3, 4];

    private static IReadOnlyDictionary<string, double> Base(long seed) => new Dictionary<string, double>
    {
        ["auc"] = 0.70 + 0.01 * seed,
        ["dice"] = 0.50 + (seed % 2 == 0 ? 0.02 : -0.02),
    };

    [Fact]
    public void Each_metric_is_summarised_over_the_seeds_with_its_raw_values()
    {
        var sweep = SeedSweep.Run(Seeds, Base);
        Assert.Equal(Seeds, sweep.Seeds);
        Assert.Equal(["auc", "dice"], sweep.Metrics.Select(m => m.Metric));
        var auc = sweep["auc"];
        Assert.Equal([0.71, 0.72, 0.73, 0.74], auc.Values.Select(v => Math.Round(v, 12)));
        Assert.Equal(Summary.Of(auc.Values), auc.Summary);
        Assert.Equal(0.725, auc.Summary.Mean, 12);
        Assert.Throws<KeyNotFoundException>(() => sweep["fid"]);
    }

    [Fact]
    public void A_metric_missing_from_a_seed_is_NaN_there_and_left_out_of_its_summary()
    {
        var sweep = SeedSweep.Run(Seeds, s => s == 2 ? new Dictionary<string, double> { ["auc"] = 0.7 } : Base(s));
        Assert.True(double.IsNaN(sweep["dice"].Values[1]));
        Assert.Equal(3, sweep["dice"].Summary.N);
        Assert.Contains("seed 2 is given 2 times", Assert.Throws<ArgumentException>(() => SeedSweep.Run([1, 2, 2], Base)).Message);
        Assert.Contains("at least one seed", Assert.Throws<ArgumentException>(() => SeedSweep.Run([], Base)).Message);
    }

    [Fact]
    public void Two_arms_are_compared_by_paired_tests_per_metric_and_Holm_across_metrics()
    {
        var b = SeedSweep.Run(Seeds, Base);
        // Arm A: AUC higher by 0.03, 0.05, 0.04, 0.06 in the four seeds; Dice differing by ±0.01 (no real effect).
        double[] aucGain = [0.03, 0.05, 0.04, 0.06], diceGain = [0.01, -0.01, 0.01, -0.005];
        var a = SeedSweep.Run(Seeds, s => new Dictionary<string, double>
        {
            ["auc"] = Base(s)["auc"] + aucGain[s - 1],
            ["dice"] = Base(s)["dice"] + diceGain[s - 1],
        });
        var cmp = SeedSweep.Compare(a, b);
        Assert.Equal((Alternative.Greater, Correction.Holm, 0.05), (cmp.Alternative, cmp.Correction, cmp.Alpha));
        var aucTest = TTest.Paired(a["auc"].Values, b["auc"].Values, Alternative.Greater);
        var diceTest = TTest.Paired(a["dice"].Values, b["dice"].Values, Alternative.Greater);
        Assert.Equal(aucTest, cmp["auc"].Test);
        Assert.Equal(diceTest, cmp["dice"].Test);
        // Differences 0.03..0.06: mean 0.045, sd √(0.0005/3), t = 0.045 / (sd / 2) with 3 df.
        Assert.Equal(0.045 / (Math.Sqrt(0.0005 / 3) / 2), cmp["auc"].Test.T, 8);
        var holm = MultipleComparisons.Holm([aucTest.P, diceTest.P]);
        Assert.Equal(holm[0], cmp["auc"].AdjustedP, 15);
        Assert.Equal(holm[1], cmp["dice"].AdjustedP, 15);
        Assert.True(cmp["auc"].Rejected);
        Assert.False(cmp["dice"].Rejected);

        var bonf = SeedSweep.Compare(a, b, correction: Correction.Bonferroni, metrics: ["auc"]);
        Assert.Single(bonf.Metrics);
        Assert.Equal(aucTest.P, bonf["auc"].AdjustedP, 15);   // one metric: nothing to correct
    }

    [Fact]
    public void Comparisons_that_cannot_be_paired_or_tested_are_refused_with_the_reason()
    {
        var b = SeedSweep.Run(Seeds, Base);
        Assert.Contains("same seeds", Assert.Throws<ArgumentException>(() => SeedSweep.Compare(SeedSweep.Run([1, 2, 3, 5], Base), b)).Message);
        Assert.Contains("arm A has no metric 'fid'", Assert.Throws<ArgumentException>(() => SeedSweep.Compare(b, b, metrics: ["fid"])).Message);
        // A constant shift leaves the paired differences without variance: the metric is named.
        var shifted = SeedSweep.Run(Seeds, s => Base(s).ToDictionary(kv => kv.Key, kv => kv.Value + 0.25));
        var e = Assert.Throws<ArgumentException>(() => SeedSweep.Compare(shifted, b));
        Assert.Contains("metric 'auc'", e.Message);
        Assert.Contains("zero variance", e.Message);
    }
}
