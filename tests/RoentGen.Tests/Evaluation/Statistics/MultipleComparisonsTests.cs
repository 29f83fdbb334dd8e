using RoentGen.Evaluation.Statistics;

namespace RoentGen.Tests.Evaluation.Statistics;

public class MultipleComparisonsTests
{
    private static readonly double[] P = [0.01, 0.04, 0.03, 0.005];

    [Fact]
    public void Holm_adjusts_a_known_list_in_its_original_order()
    {
        // Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running maximum 0.06.
        var adjusted = MultipleComparisons.Holm(P);
        Assert.Equal(4, adjusted.Count);
        foreach (var (want, got) in new[] { 0.03, 0.06, 0.06, 0.02 }.Zip(adjusted)) Assert.Equal(want, got, 12);
    }

    [Fact]
    public void Bonferroni_multiplies_by_the_count_and_caps_at_one()
    {
        foreach (var (want, got) in new[] { 0.04, 0.16, 0.12, 0.02 }.Zip(MultipleComparisons.Bonferroni(P))) Assert.Equal(want, got, 12);
        Assert.Equal([0.6, 1.0], MultipleComparisons.Bonferroni([0.3, 0.6]));
        Assert.Equal([1.0, 1.0], MultipleComparisons.Holm([0.5, 0.6]));
        Assert.Equal([0.02, 0.02], MultipleComparisons.Holm([0.01, 0.01]));
        Assert.Empty(MultipleComparisons.Holm([]));
    }

    [Fact]
    public void Holm_never_exceeds_Bonferroni_and_rejects_more_at_a_tight_alpha()
    {
        var holm = MultipleComparisons.Holm(P);
        var bonf = MultipleComparisons.Bonferroni(P);
        Assert.All(holm.Zip(bonf), x => Assert.True(x.First <= x.Second + 1e-15));
        Assert.Equal([true, false, false, true], MultipleComparisons.Reject(holm, 0.05));
        Assert.Equal([true, false, false, true], MultipleComparisons.Reject(holm, 0.035));
        Assert.Equal([false, false, false, true], MultipleComparisons.Reject(bonf, 0.035));
        Assert.Equal(holm, MultipleComparisons.Adjust(P, Correction.Holm));
        Assert.Equal(P, MultipleComparisons.Adjust(P, Correction.None));
    }

    [Fact]
    public void Values_that_are_not_probabilities_are_refused_by_index()
    {
        Assert.Contains("p-value 1 is 1.5", Assert.Throws<ArgumentException>(() => MultipleComparisons.Holm([0.1, 1.5])).Message);
        Assert.Contains("p-value 0 is NaN", Assert.Throws<ArgumentException>(() => MultipleComparisons.Bonferroni([double.NaN])).Message);
        Assert.Contains("alpha", Assert.Throws<ArgumentException>(() => MultipleComparisons.Reject([0.1], 0)).Message);
    }
}
