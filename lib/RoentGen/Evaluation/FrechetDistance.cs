using MathNet.Numerics.LinearAlgebra;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>
/// The Fréchet distance between Gaussians fitted to two feature sets, the quantity behind FID (Heusel et al. 2017):
/// d² = ‖μ_A − μ_B‖² + tr(Σ_A) + tr(Σ_B) − 2·tr((Σ_A Σ_B)^{1/2}).
/// <para>
/// Means and covariances (divisor N − 1) are computed in double precision. Σ_A Σ_B is not symmetric, so the
/// trace of its square root is taken from the similar symmetric matrix Σ_A^{1/2} Σ_B Σ_A^{1/2}, which has the same
/// eigenvalues: tr((Σ_A Σ_B)^{1/2}) = Σᵢ √λᵢ(Σ_A^{1/2} Σ_B Σ_A^{1/2}). Both square roots come from symmetric
/// eigen-decompositions, with the tiny negative eigenvalues that rounding leaves in singular covariances (fewer
/// samples than features) clamped to zero, so the result is real and never needs an ε added to the diagonal.
/// </para>
/// </summary>
public static class FrechetDistance
{
    /// <summary>The squared Fréchet distance between (N_A, F) and (N_B, F) features (FID when they are Inception features).</summary>
    /// <exception cref="ArgumentException">A set is not (N, F) with N ≥ 2, the widths differ, or a value is non-finite.</exception>
    public static double Compute(Tensor featuresA, Tensor featuresB)
    {
        var a = FeatureMatrix.From(featuresA, nameof(featuresA), 2);
        var b = FeatureMatrix.From(featuresB, nameof(featuresB), 2);
        if (a.ColumnCount != b.ColumnCount)
            throw new ArgumentException($"feature widths differ: {nameof(featuresA)} has {a.ColumnCount} columns, {nameof(featuresB)} has {b.ColumnCount}");
        var (muA, sigmaA) = FeatureMatrix.MeanCovariance(a);
        var (muB, sigmaB) = FeatureMatrix.MeanCovariance(b);
        return FromMoments(muA, sigmaA, muB, sigmaB);
    }

    /// <summary>The squared Fréchet distance between N(μ_A, Σ_A) and N(μ_B, Σ_B) (covariances symmetric positive semi-definite).</summary>
    /// <exception cref="ArgumentException">The dimensions do not agree.</exception>
    public static double FromMoments(Vector<double> meanA, Matrix<double> covarianceA, Vector<double> meanB, Matrix<double> covarianceB)
    {
        int d = meanA.Count;
        if (meanB.Count != d || covarianceA.RowCount != d || covarianceA.ColumnCount != d || covarianceB.RowCount != d || covarianceB.ColumnCount != d)
            throw new ArgumentException($"Fréchet distance needs means of length d and d x d covariances; got means {meanA.Count} and {meanB.Count}, " +
                                        $"covariances {covarianceA.RowCount}x{covarianceA.ColumnCount} and {covarianceB.RowCount}x{covarianceB.ColumnCount}");
        var sqrtA = SymmetricSqrt(covarianceA);
        var middle = sqrtA * covarianceB * sqrtA;
        middle = (middle + middle.Transpose()) / 2;                   // remove rounding asymmetry
        double traceSqrt = middle.Evd(Symmetricity.Symmetric).EigenValues.Sum(l => Math.Sqrt(Math.Max(l.Real, 0)));
        var diff = meanA - meanB;
        double d2 = diff.DotProduct(diff) + covarianceA.Trace() + covarianceB.Trace() - 2 * traceSqrt;
        return Math.Max(d2, 0);                                        // rounding can leave −1e-12 for equal sets
    }

    /// <summary>The principal square root of a symmetric positive semi-definite matrix (negative eigenvalues clamped to 0).</summary>
    internal static Matrix<double> SymmetricSqrt(Matrix<double> s)
    {
        var sym = (s + s.Transpose()) / 2;
        var evd = sym.Evd(Symmetricity.Symmetric);
        var v = evd.EigenVectors;
        var roots = Vector<double>.Build.Dense(sym.RowCount, i => Math.Sqrt(Math.Max(evd.EigenValues[i].Real, 0)));
        return v * Matrix<double>.Build.DenseOfDiagonalVector(roots) * v.Transpose();
    }
}
