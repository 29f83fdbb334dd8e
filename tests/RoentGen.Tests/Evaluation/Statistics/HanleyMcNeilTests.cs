using RoentGen.Evaluation.Probes;
using RoentGen.Evaluation.Statistics;

namespace RoentGen.Tests.Evaluation.Statistics;

public class HanleyMcNeilTests
{
    [Fact]
    public void Standard_error_of_a_known_area_and_counts_matches_the_hand_computation()
    {
        // A = 0.8, n+ = 10, n- = 20: Q1 = 2/3, Q2 = 32/45, Q1 − A² = 2/75, Q2 − A² = 16/225,
        // SE² = (4/25 + 9·2/75 + 19·16/225) / 200 = (394/225) / 200.
        Assert.Equal(Math.Sqrt(394.0 / 225 / 200), HanleyMcNeil.StandardError(0.8, 10, 20), 12);
        Assert.Equal(0, HanleyMcNeil.StandardError(1, 8, 8), 12);
        Assert.True(HanleyMcNeil.StandardError(0.8, 80, 80) < HanleyMcNeil.StandardError(0.8, 8, 8));
        Assert.True(double.IsNaN(HanleyMcNeil.StandardError(double.NaN, 8, 8)));
        Assert.True(double.IsNaN(HanleyMcNeil.StandardError(0.7, 0, 8)));
    }

    [Fact]
    public void RealDataCheck_reports_the_same_standard_error()
    {
        foreach (double a in new[] { 0.5, 0.63, 0.9, 1.0 })
            foreach (var (p, n) in new[] { (1, 1), (5, 40), (30, 12) })
                Assert.Equal(HanleyMcNeil.StandardError(a, p, n), RealDataCheck.AucStandardError(a, p, n));
    }
}
