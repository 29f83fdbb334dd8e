using MathNet.Numerics.LinearAlgebra;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>Feature tensors as double-precision matrices, with the checks every distribution metric needs.</summary>
internal static class FeatureMatrix
{
    /// <summary>A (N, F) tensor of any real dtype and device as an N x F double matrix.</summary>
    /// <exception cref="ArgumentException">Not two-dimensional, fewer than <paramref name="minRows"/> rows, or non-finite values.</exception>
    public static Matrix<double> From(Tensor features, string name, int minRows)
    {
        ArgumentNullException.ThrowIfNull(features, name);
        if (features.dim() != 2)
            throw new ArgumentException($"{name} must be (N, F) features, got shape [{string.Join(", ", features.shape)}]", name);
        int n = checked((int)features.shape[0]), f = checked((int)features.shape[1]);
        if (n < minRows) throw new ArgumentException($"{name} has {n} rows; at least {minRows} are needed", name);
        if (f < 1) throw new ArgumentException($"{name} has no feature columns", name);
        using var scope = NewDisposeScope();
        var data = features.detach().to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        for (int i = 0; i < data.Length; i++)
            if (!double.IsFinite(data[i])) throw new ArgumentException($"{name} has a non-finite value at row {i / f}, column {i % f}", name);
        return Matrix<double>.Build.Dense(n, f, (r, c) => data[r * f + c]);
    }

    /// <summary>Column means (F) and the unbiased covariance (F x F, divisor N − 1).</summary>
    public static (Vector<double> Mean, Matrix<double> Covariance) MeanCovariance(Matrix<double> x)
    {
        var mean = x.ColumnSums() / x.RowCount;
        var centered = x.Clone();
        for (int r = 0; r < x.RowCount; r++) centered.SetRow(r, x.Row(r) - mean);
        var cov = centered.TransposeThisAndMultiply(centered) / (x.RowCount - 1);
        return (mean, cov);
    }
}
