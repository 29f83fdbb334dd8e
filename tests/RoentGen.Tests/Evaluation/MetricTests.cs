using MathNet.Numerics.LinearAlgebra;
using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation;

public class AucTests
{
    [Fact]
    public void Perfectly_separated_scores_give_one_and_reversed_give_zero()
    {
        double[] scores = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9];
        bool[] labels = [false, false, false, true, true, true];
        Assert.Equal(1.0, Auc.Compute(scores, labels), 12);
        Assert.Equal(0.0, Auc.Compute(scores.Select(s => -s).ToArray(), labels), 12);
    }

    [Fact]
    public void All_tied_scores_give_one_half()
    {
        Assert.Equal(0.5, Auc.Compute([0.3, 0.3, 0.3, 0.3, 0.3], [true, false, true, false, false]), 12);
    }

    [Fact]
    public void Small_cases_match_hand_counted_pairs()
    {
        // Positives {0.35, 0.8} against negatives {0.1, 0.4}: 3 of the 4 pairs ordered correctly.
        Assert.Equal(0.75, Auc.Compute([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 12);
        // Positives {0.5, 0.9} against negatives {0.5, 0.2}: the 0.5–0.5 tie counts one half: (0.5 + 1 + 1 + 1) / 4.
        Assert.Equal(0.875, Auc.Compute([0.5, 0.5, 0.2, 0.9], [true, false, false, true]), 12);
    }

    [Fact]
    public void A_missing_class_gives_nan_and_bad_input_names_the_problem()
    {
        Assert.True(double.IsNaN(Auc.Compute([0.1, 0.2], [true, true])));
        Assert.True(double.IsNaN(Auc.Compute([0.1, 0.2], [false, false])));
        Assert.Contains("2 scores and 3 labels", Assert.Throws<ArgumentException>(() => Auc.Compute([0.1, 0.2], [true, false, true])).Message);
        Assert.Contains("score 1 is NaN", Assert.Throws<ArgumentException>(() => Auc.Compute([0.1, double.NaN], [true, false])).Message);
    }
}

public class FrechetDistanceTests
{
    /// <summary>N samples whose sample mean is exactly μ and whose sample covariance (divisor N − 1) is exactly Σ.</summary>
    private static Tensor ExactMoments(Vector<double> mu, Matrix<double> sigma, int n, int seed)
    {
        var rng = new Random(seed);
        int d = mu.Count;
        var x = Matrix<double>.Build.Dense(n, d, (_, _) => rng.NextDouble() * 2 - 1);
        var mean = x.ColumnSums() / n;
        for (int r = 0; r < n; r++) x.SetRow(r, x.Row(r) - mean);
        var cov = x.TransposeThisAndMultiply(x) / (n - 1);
        // Whiten with the sample covariance's Cholesky factor, colour with Σ's, then shift to μ.
        var white = x * cov.Cholesky().Factor.Transpose().Inverse();
        var y = white * sigma.Cholesky().Factor.Transpose();
        for (int r = 0; r < n; r++) y.SetRow(r, y.Row(r) + mu);
        var flat = new double[n * d];
        for (int r = 0; r < n; r++) for (int c = 0; c < d; c++) flat[r * d + c] = y[r, c];
        return tensor(flat, [n, d]);
    }

    [Fact]
    public void Identical_sets_are_at_distance_zero_even_when_covariance_is_singular()
    {
        using var scope = NewDisposeScope();
        var gen = new TorchSharp.torch.Generator(3);
        var wide = randn(200, 16, generator: gen);
        Assert.Equal(0.0, FrechetDistance.Compute(wide, wide.clone()), 8);
        var fewRows = randn(6, 32, generator: gen);          // rank-5 covariance in 32 dimensions
        double d = FrechetDistance.Compute(fewRows, fewRows.clone());
        Assert.True(Math.Abs(d) < 1e-6, $"FID of a singular set with itself was {d}");
    }

    [Fact]
    public void Diagonal_gaussians_match_the_closed_form()
    {
        var mu1 = Vector<double>.Build.DenseOfArray([0.0, 1.0, -2.0]);
        var mu2 = Vector<double>.Build.DenseOfArray([1.0, 1.0, 0.5]);
        double[] v1 = [1.0, 4.0, 0.25], v2 = [9.0, 1.0, 0.25];
        var s1 = Matrix<double>.Build.DenseOfDiagonalArray(v1);
        var s2 = Matrix<double>.Build.DenseOfDiagonalArray(v2);
        // ‖μ1 − μ2‖² + Σ (σ1² + σ2² − 2 σ1 σ2) = (1 + 0 + 6.25) + (4 + 1 + 0) = 12.25
        double expected = (mu1 - mu2).DotProduct(mu1 - mu2) + v1.Zip(v2).Sum(p => p.First + p.Second - 2 * Math.Sqrt(p.First * p.Second));
        Assert.Equal(12.25, expected, 12);
        Assert.Equal(expected, FrechetDistance.FromMoments(mu1, s1, mu2, s2), 9);
        using var scope = NewDisposeScope();
        Assert.Equal(expected, FrechetDistance.Compute(ExactMoments(mu1, s1, 50, 1), ExactMoments(mu2, s2, 80, 2)), 8);
    }

    [Fact]
    public void Rotated_gaussians_with_shared_axes_match_the_closed_form()
    {
        // Σ_A = R diag(a) Rᵀ and Σ_B = R diag(b) Rᵀ commute, so tr((Σ_A Σ_B)^½) = Σ √(aᵢ bᵢ).
        var rng = new Random(5);
        var q = Matrix<double>.Build.Dense(4, 4, (_, _) => rng.NextDouble() - 0.5).QR().Q;
        double[] a = [2.0, 0.5, 3.0, 1.0], b = [0.5, 0.5, 1.0, 4.0];
        var sA = q * Matrix<double>.Build.DenseOfDiagonalArray(a) * q.Transpose();
        var sB = q * Matrix<double>.Build.DenseOfDiagonalArray(b) * q.Transpose();
        var mu = Vector<double>.Build.Dense(4, 0.0);
        double expected = a.Zip(b).Sum(p => p.First + p.Second - 2 * Math.Sqrt(p.First * p.Second));
        using var scope = NewDisposeScope();
        Assert.Equal(expected, FrechetDistance.Compute(ExactMoments(mu, sA, 40, 3), ExactMoments(mu, sB, 40, 4)), 8);
    }

    [Fact]
    public void Mismatched_widths_are_rejected_with_both_named()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => FrechetDistance.Compute(zeros(5, 3), zeros(5, 4)));
        Assert.Contains("3 columns", ex.Message);
        Assert.Contains("4", ex.Message);
        Assert.Contains("(N, F)", Assert.Throws<ArgumentException>(() => FrechetDistance.Compute(zeros(5), zeros(5, 4))).Message);
    }
}

public class KernelInceptionDistanceTests
{
    [Fact]
    public void Same_distribution_is_near_zero_and_a_shift_is_clearly_positive()
    {
        using var scope = NewDisposeScope();
        var gen = new TorchSharp.torch.Generator(11);
        var a = randn(300, 8, generator: gen);
        var b = randn(300, 8, generator: gen);
        var same = KernelInceptionDistance.Compute(a, b, subsets: 10, subsetSize: 100, seed: 1);
        var shifted = KernelInceptionDistance.Compute(a, b + 0.7, subsets: 10, subsetSize: 100, seed: 1);
        Assert.True(Math.Abs(same.Mean) < 0.1, $"KID of one distribution was {same}");
        Assert.True(shifted.Mean > 10 * Math.Abs(same.Mean) + 0.2, $"KID of a shifted distribution was {shifted} (same: {same})");
        Assert.True(shifted.Std > 0);
    }

    [Fact]
    public void Whole_set_subset_equals_the_unbiased_mmd_written_out()
    {
        double[,] x = { { 0.0, 1.0 }, { 1.0, 0.5 }, { -1.0, 2.0 } };
        double[,] y = { { 2.0, 0.0 }, { 0.5, -1.0 }, { 1.0, 1.0 } };
        double K(double[,] p, int i, double[,] q, int j) => Math.Pow((p[i, 0] * q[j, 0] + p[i, 1] * q[j, 1]) / 2 + 1, 3);
        double xx = 0, yy = 0, xy = 0;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
            {
                if (i != j) { xx += K(x, i, x, j); yy += K(y, i, y, j); }
                xy += K(x, i, y, j);
            }
        double expected = xx / 6 + yy / 6 - 2 * xy / 9;
        using var scope = NewDisposeScope();
        var kid = KernelInceptionDistance.Compute(tensor(x), tensor(y), subsets: 3, subsetSize: 3, seed: 7);
        Assert.Equal(expected, kid.Mean, 9);
        Assert.Equal(0.0, kid.Std, 9);                      // every subset is the whole set, in some order
    }

    [Fact]
    public void Subset_larger_than_a_set_is_rejected()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => KernelInceptionDistance.Compute(zeros(10, 2), zeros(4, 2), subsets: 2, subsetSize: 5));
        Assert.Contains("(4", ex.Message);
    }
}

public class DiversityTests
{
    [Fact]
    public void Identical_images_score_one_and_different_ones_lower()
    {
        using var scope = NewDisposeScope();
        var cases = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 3 }).Generate(0, 4);
        var one = ImageTensors.Stack([cases[0].Image]);                      // (1, 1, 64, 64) in [-1, 1]
        var copies = one.expand(3, 1, 64, 64).contiguous();
        var different = ImageTensors.Stack(cases.Select(c => c.Image));      // (4, 1, 64, 64)
        var gen = new TorchSharp.torch.Generator(1);
        var noise = rand(4, 1, 64, 64, generator: gen) * 2 - 1;

        Assert.Equal(1.0, Diversity.MsSsim([copies]), 5);
        double phantoms = Diversity.MsSsim([different]);
        double noisy = Diversity.MsSsim([noise]);
        Assert.InRange(phantoms, 0.2, 0.999);
        Assert.True(noisy < phantoms, $"noise ({noisy}) should be more diverse than phantoms ({phantoms})");

        // Pooled over pairs: 3 identical pairs and 6 phantom pairs.
        var perGroup = Diversity.MsSsimPerGroup([copies, different, one]);
        Assert.Equal(3, perGroup[0].Pairs);
        Assert.Equal(6, perGroup[1].Pairs);
        Assert.Equal(0, perGroup[2].Pairs);
        Assert.Equal((3 * 1.0 + 6 * phantoms) / 9, Diversity.MsSsim([copies, different, one]), 5);
    }

    [Fact]
    public void Groups_of_different_image_sizes_are_rejected()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => Diversity.MsSsim([zeros(2, 1, 32, 32), zeros(2, 1, 48, 48)]));
        Assert.Contains("group 1", ex.Message);
        Assert.Throws<ArgumentException>(() => Diversity.MsSsim([zeros(1, 1, 32, 32)]));
    }
}
