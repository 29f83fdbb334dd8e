using RoentGen.Evaluation.Statistics;

namespace RoentGen.Tests.Evaluation.Statistics;

public class TTestTests
{
    // Student's (1908) sleep data, as in R's datasets::sleep: extra hours of sleep with two drugs, same ten patients.
    private static readonly double[] Drug1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
    private static readonly double[] Drug2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];

    [Fact]
    public void Paired_test_on_three_pairs_matches_the_closed_form_of_t_with_two_df()
    {
        // Differences 1, 2, 4: mean 7/3, variance 7/3, SE = √7 / 3, so t = √7 with 2 df.
        // With 2 df, P(T ≤ t) = 1/2 + t / (2√(t² + 2)), so the one-sided p is 1/2 − √7/6.
        var r = TTest.Paired([11, 12, 14], [10, 10, 10], Alternative.Greater);
        Assert.Equal(Math.Sqrt(7), r.T, 10);
        Assert.Equal(2, r.DegreesOfFreedom);
        Assert.Equal(7.0 / 3, r.MeanDifference, 12);
        Assert.Equal(Math.Sqrt(7) / 3, r.StandardError, 12);
        Assert.Equal(0.5 - Math.Sqrt(7) / 6, r.P, 10);
        Assert.Equal(0.5 + Math.Sqrt(7) / 6, TTest.Paired([11, 12, 14], [10, 10, 10], Alternative.Less).P, 10);
        Assert.Equal(1 - Math.Sqrt(7) / 3, TTest.Paired([11, 12, 14], [10, 10, 10]).P, 10);
    }

    [Fact]
    public void Paired_test_on_the_sleep_data_matches_the_textbook_result()
    {
        // R: t.test(extra ~ group, data = sleep, paired = TRUE) gives t = -4.0621, df = 9, p-value = 0.002833.
        var r = TTest.Paired(Drug1, Drug2);
        Assert.Equal(-4.0621, r.T, 4);
        Assert.Equal(9, r.DegreesOfFreedom);
        Assert.Equal(0.002833, r.P, 6);
        Assert.Equal(-1.58, r.MeanDifference, 10);
        Assert.Equal(0.002833 / 2, TTest.Paired(Drug1, Drug2, Alternative.Less).P, 6);
        Assert.Equal(1 - 0.002833 / 2, TTest.Paired(Drug2, Drug1, Alternative.Less).P, 6);
    }

    [Fact]
    public void Welch_and_pooled_tests_on_the_sleep_data_match_the_textbook_results()
    {
        // R: t.test(extra ~ group, data = sleep) gives t = -1.8608, df = 17.776, p-value = 0.07939;
        // with var.equal = TRUE: t = -1.8608, df = 18, p-value = 0.07919.
        var welch = TTest.Welch(Drug1, Drug2);
        Assert.Equal(-1.8608, welch.T, 4);
        Assert.Equal(17.776, welch.DegreesOfFreedom, 3);
        Assert.Equal(0.07939, welch.P, 5);
        var pooled = TTest.Student(Drug1, Drug2);
        Assert.Equal(-1.8608, pooled.T, 4);
        Assert.Equal(18, pooled.DegreesOfFreedom);
        Assert.Equal(0.07919, pooled.P, 5);
        Assert.Equal(0.07939 / 2, TTest.Welch(Drug2, Drug1, Alternative.Greater).P, 5);
    }

    [Fact]
    public void Welch_degrees_of_freedom_follow_the_Satterthwaite_formula()
    {
        // s = 2 with n = 4 and s = 3 with n = 9: both s²/n are 1, so df = (1 + 1)² / (1/3 + 1/8) = 96/11.
        Assert.Equal(96.0 / 11, TTest.WelchDegreesOfFreedom(2, 4, 3, 9), 12);
        // Equal sizes and spreads: df = 2(n − 1), the pooled value.
        Assert.Equal(18, TTest.WelchDegreesOfFreedom(1.5, 10, 1.5, 10), 10);
    }

    [Fact]
    public void One_sided_p_values_of_both_directions_add_to_one_and_two_sided_is_twice_the_smaller()
    {
        foreach (double t in new[] { -2.5, -0.3, 0.0, 1.7 })
        {
            double g = TTest.PValue(t, 6.5, Alternative.Greater), l = TTest.PValue(t, 6.5, Alternative.Less);
            Assert.Equal(1, g + l, 12);
            Assert.Equal(2 * Math.Min(g, l), TTest.PValue(t, 6.5, Alternative.TwoSided), 12);
        }
        Assert.Equal(1, TTest.PValue(0, 3, Alternative.TwoSided), 12);
    }

    [Fact]
    public void Undefined_tests_are_refused_with_a_message_naming_the_problem()
    {
        Assert.Contains("at least two values", Assert.Throws<ArgumentException>(() => TTest.Paired([1], [2])).Message);
        Assert.Contains("a has 3, b has 2", Assert.Throws<ArgumentException>(() => TTest.Paired([1, 2, 3], [1, 2])).Message);
        Assert.Contains("zero variance", Assert.Throws<ArgumentException>(() => TTest.Paired([1.1, 2.1, 3.1], [0.1, 1.1, 2.1])).Message);
        Assert.Contains("zero variance", Assert.Throws<ArgumentException>(() => TTest.Welch([1, 1], [2, 2])).Message);
        Assert.Contains("zero variance", Assert.Throws<ArgumentException>(() => TTest.Student([1, 1, 1], [2, 2])).Message);
        Assert.Contains("zero variance", Assert.Throws<ArgumentException>(() => TTest.OneSample([0.3, 0.3, 0.3])).Message);
        Assert.Contains("second arm", Assert.Throws<ArgumentException>(() => TTest.Welch([1, 2], [3])).Message);
        Assert.Contains("value 1 of the first arm is NaN", Assert.Throws<ArgumentException>(() => TTest.Student([1, double.NaN], [3, 4])).Message);
        // One arm without spread is still defined for Welch and the pooled test.
        Assert.True(double.IsFinite(TTest.Welch([1, 1, 1], [2, 3, 4]).P));
        Assert.True(double.IsFinite(TTest.Student([1, 1, 1], [2, 3, 4]).P));
    }
}
