using MathNet.Numerics.LinearAlgebra;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>KID as a mean and spread over random subsets.</summary>
/// <param name="Mean">Mean of the per-subset unbiased MMD² estimates.</param>
/// <param name="Std">Population standard deviation of the per-subset estimates (0 with one subset).</param>
/// <param name="Subsets">Number of subsets.</param>
/// <param name="SubsetSize">Samples drawn from each set per subset.</param>
public sealed record KidResult(double Mean, double Std, int Subsets, int SubsetSize)
{
    /// <inheritdoc />
    public override string ToString() => $"{Mean:G4} ± {Std:G3} ({Subsets} subsets of {SubsetSize})";
}

/// <summary>
/// Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimate of the
/// squared maximum mean discrepancy between two feature sets under the cubic polynomial kernel
/// k(x, y) = (x·y / d + 1)³, averaged over random subsets. Unlike FID it is unbiased in the sample size, and it can be
/// slightly negative when the two sets come from one distribution.
/// </summary>
public static class KernelInceptionDistance
{
    /// <summary>
    /// KID between (N_A, F) and (N_B, F) features. Each subset draws <paramref name="subsetSize"/> rows from each set
    /// without replacement (independently per subset), and its estimate is
    /// MMD²ᵤ = Σ_{i≠j} k(aᵢ,aⱼ)/(m(m−1)) + Σ_{i≠j} k(bᵢ,bⱼ)/(m(m−1)) − 2 Σ_{i,j} k(aᵢ,bⱼ)/m².
    /// </summary>
    /// <param name="featuresA">First set, (N_A, F).</param>
    /// <param name="featuresB">Second set, (N_B, F).</param>
    /// <param name="subsets">Number of random subsets (the reference implementation uses 100).</param>
    /// <param name="subsetSize">Rows per subset from each set (the reference uses 1000); at least 2 and at most min(N_A, N_B).</param>
    /// <param name="seed">Seed of the subset draws.</param>
    /// <exception cref="ArgumentException">Bad shapes, widths that differ, or a subset size outside [2, min(N_A, N_B)].</exception>
    public static KidResult Compute(Tensor featuresA, Tensor featuresB, int subsets = 100, int subsetSize = 1000, int seed = 0)
    {
        var a = FeatureMatrix.From(featuresA, nameof(featuresA), 2);
        var b = FeatureMatrix.From(featuresB, nameof(featuresB), 2);
        if (a.ColumnCount != b.ColumnCount)
            throw new ArgumentException($"feature widths differ: {nameof(featuresA)} has {a.ColumnCount} columns, {nameof(featuresB)} has {b.ColumnCount}");
        if (subsets < 1) throw new ArgumentOutOfRangeException(nameof(subsets), subsets, "KID needs at least one subset");
        int maxSize = Math.Min(a.RowCount, b.RowCount);
        if (subsetSize < 2 || subsetSize > maxSize)
            throw new ArgumentOutOfRangeException(nameof(subsetSize), subsetSize,
                $"KID subset size must be between 2 and the smaller set's size ({maxSize}: {a.RowCount} and {b.RowCount} rows)");

        int d = a.ColumnCount, m = subsetSize;
        var rng = new Random(seed);
        var estimates = new double[subsets];
        for (int s = 0; s < subsets; s++)
        {
            var x = Rows(a, Draw(rng, a.RowCount, m));
            var y = Rows(b, Draw(rng, b.RowCount, m));
            var kxx = Kernel(x, x, d);
            var kyy = Kernel(y, y, d);
            var kxy = Kernel(x, y, d);
            double sumXx = kxx.Enumerate().Sum() - kxx.Diagonal().Sum();
            double sumYy = kyy.Enumerate().Sum() - kyy.Diagonal().Sum();
            estimates[s] = sumXx / (m * (m - 1.0)) + sumYy / (m * (m - 1.0)) - 2 * kxy.Enumerate().Sum() / ((double)m * m);
        }
        double mean = estimates.Average();
        double std = Math.Sqrt(estimates.Sum(e => (e - mean) * (e - mean)) / subsets);
        return new KidResult(mean, std, subsets, m);
    }

    // (x·y/d + 1)³ for every row pair: (m, m).
    private static Matrix<double> Kernel(Matrix<double> x, Matrix<double> y, int d) =>
        (x.TransposeAndMultiply(y) / d + 1).PointwisePower(3);

    private static Matrix<double> Rows(Matrix<double> source, int[] rows) =>
        Matrix<double>.Build.Dense(rows.Length, source.ColumnCount, (r, c) => source[rows[r], c]);

    // m distinct indices out of n (partial Fisher–Yates).
    private static int[] Draw(Random rng, int n, int m)
    {
        var idx = Enumerable.Range(0, n).ToArray();
        for (int i = 0; i < m; i++)
        {
            int j = rng.Next(i, n);
            (idx[i], idx[j]) = (idx[j], idx[i]);
        }
        return idx[..m];
    }
}
