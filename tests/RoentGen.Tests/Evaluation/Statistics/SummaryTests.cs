using RoentGen.Evaluation.Statistics;

namespace RoentGen.Tests.Evaluation.Statistics;

public class SummaryTests
{
    [Fact]
    public void Three_values_give_the_hand_computed_mean_sd_and_t_interval()
    {
        // 2, 4, 9: mean 5, squared deviations 9 + 1 + 16 = 26, variance 13, SE = √(13/3).
        // Student t with 2 df has the closed-form quantile t_p = (2p − 1) √(2 / (4p(1 − p))); p = 0.975 gives 4.30265.
        var s = Summary.Of([2, 4, 9]);
        double t = 0.95 * Math.Sqrt(2 / (4 * 0.975 * 0.025));
        Assert.Equal(3, s.N);
        Assert.Equal(5, s.Mean, 12);
        Assert.Equal(Math.Sqrt(13), s.StandardDeviation, 12);
        Assert.Equal(Math.Sqrt(13.0 / 3), s.StandardError, 12);
        Assert.Equal(0.95, s.Level);
        Assert.Equal(5 - t * Math.Sqrt(13.0 / 3), s.Lower, 9);
        Assert.Equal(5 + t * Math.Sqrt(13.0 / 3), s.Upper, 9);
    }

    [Fact]
    public void The_interval_uses_the_tabled_t_quantile_and_widens_with_the_level()
    {
        // 1..5: mean 3, sd √2.5; the 97.5% quantile of t with 4 df is 2.776445 (standard tables).
        var s = Summary.Of([1, 2, 3, 4, 5]);
        Assert.Equal(2.776445, Summary.CriticalT(0.95, 4), 1e-6);
        Assert.Equal(3 + 2.776445 * Math.Sqrt(2.5 / 5), s.Upper, 1e-6);
        var s99 = Summary.Of([1, 2, 3, 4, 5], 0.99);
        Assert.True(s99.Upper - s99.Lower > s.Upper - s.Lower);
        Assert.Equal(s.Mean, (s.Lower + s.Upper) / 2, 12);
    }

    [Fact]
    public void One_value_has_a_mean_but_no_spread_and_OfFinite_skips_undefined_values()
    {
        var one = Summary.Of([0.7]);
        Assert.Equal((1, 0.7), (one.N, one.Mean));
        Assert.True(double.IsNaN(one.StandardDeviation) && double.IsNaN(one.StandardError) && double.IsNaN(one.Lower) && double.IsNaN(one.Upper));

        var skipped = Summary.OfFinite([1, double.NaN, 3, double.PositiveInfinity]);
        Assert.Equal((2, 2.0), (skipped.N, skipped.Mean));
        Assert.Equal(Math.Sqrt(2), skipped.StandardDeviation, 12);
        var none = Summary.OfFinite([double.NaN]);
        Assert.Equal(0, none.N);
        Assert.True(double.IsNaN(none.Mean));
    }

    [Fact]
    public void Bad_input_is_refused_with_a_message_naming_it()
    {
        Assert.Contains("at least one value", Assert.Throws<ArgumentException>(() => Summary.Of([])).Message);
        Assert.Contains("value 1 is NaN", Assert.Throws<ArgumentException>(() => Summary.Of([1, double.NaN])).Message);
        Assert.Contains("confidence level", Assert.Throws<ArgumentException>(() => Summary.Of([1, 2], 95)).Message);
    }
}
