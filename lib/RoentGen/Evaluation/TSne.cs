using System.Diagnostics;
using MathNet.Numerics.LinearAlgebra;
using RoentGen.Platform;
using RoentGen.Visualization;

namespace RoentGen.Evaluation;

/// <summary>Settings of a t-SNE run (van der Maaten 2014, Barnes-Hut approximation).</summary>
public sealed record TSneOptions
{
    /// <summary>Effective number of neighbours each point's Gaussian is calibrated to.</summary>
    public double Perplexity { get; init; } = 30;
    /// <summary>Total gradient-descent iterations.</summary>
    public int Iterations { get; init; } = 750;
    /// <summary>Iterations with early exaggeration (and momentum 0.5).</summary>
    public int ExaggerationIterations { get; init; } = 250;
    /// <summary>Factor on P during early exaggeration.</summary>
    public double EarlyExaggeration { get; init; } = 12;
    /// <summary>Learning rate; null = max(n / exaggeration / 4, 50), the usual automatic choice.</summary>
    public double? LearningRate { get; init; }
    /// <summary>Barnes-Hut opening angle; 0 computes exact repulsion (O(n²)).</summary>
    public double Theta { get; init; } = 0.5;
    /// <summary>Inputs with more dimensions are first projected onto this many principal components.</summary>
    public int PcaDimensions { get; init; } = 50;
    /// <summary>Seed for the tiny jitter added to the PCA initialisation.</summary>
    public int Seed { get; init; } = 0;
    /// <summary>Compute the KL divergence every this many iterations (0 = only at the end).</summary>
    public int KlEvery { get; init; } = 50;
}

/// <summary>What a t-SNE run produced.</summary>
/// <param name="Embedding">n x 2 coordinates.</param>
/// <param name="KlHistory">(iteration, KL divergence of P from Q) pairs, computed with the un-exaggerated P.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record TSneResult(float[,] Embedding, IReadOnlyList<(int Iteration, double Kl)> KlHistory, double Seconds)
{
    /// <summary>The final KL divergence.</summary>
    public double FinalKl => KlHistory.Count > 0 ? KlHistory[^1].Kl : double.NaN;
}

/// <summary>
/// Barnes-Hut t-SNE into two dimensions: perplexity calibration by binary search on each point's
/// precision over its 3·perplexity nearest neighbours, symmetrised sparse P, PCA initialisation, early
/// exaggeration, momentum with per-coordinate gains, and quadtree-approximated repulsion.
/// </summary>
public static class TSne
{
    /// <summary>Embeds the rows of <paramref name="data"/> (n x d) into 2-D.</summary>
    /// <exception cref="ArgumentException">Too few points for the perplexity, or non-finite values.</exception>
    public static TSneResult Fit(float[,] data, TSneOptions? options = null)
    {
        var o = options ?? new TSneOptions();
        int n = data.GetLength(0), d = data.GetLength(1);
        if (n < 4) throw new ArgumentException($"t-SNE needs at least 4 points, got {n}");
        if (3 * o.Perplexity >= n) throw new ArgumentException($"perplexity {o.Perplexity} is too large for {n} points (needs 3·perplexity < n)");
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                if (!float.IsFinite(data[i, j])) throw new ArgumentException($"t-SNE input has a non-finite value at row {i}, column {j}");

        var sw = Stopwatch.StartNew();
        using var progress = ProgressReporter.Start("t-SNE", o.Iterations + 1, "iterations");
        var (x, dims) = Center(data);
        var reduced = dims > o.PcaDimensions ? Pca(x, n, dims, o.PcaDimensions) : x;
        int rd = Math.Min(dims, o.PcaDimensions);
        var p = Affinities(reduced, n, rd, o.Perplexity);
        progress.Advance();

        var y = Pca(x, n, dims, 2);
        // Scale the initialisation to a standard deviation of 1e-4 along the first axis, as in openTSNE.
        double sd = Math.Sqrt(Enumerable.Range(0, n).Average(i => y[i * 2] * y[i * 2]));
        var rng = new Random(o.Seed);
        for (int i = 0; i < y.Length; i++) y[i] = y[i] / (sd > 0 ? sd : 1) * 1e-4 + (rng.NextDouble() - 0.5) * 1e-8;

        double eta = o.LearningRate ?? Math.Max(n / o.EarlyExaggeration / 4, 50);
        var gains = new double[2 * n];
        Array.Fill(gains, 1.0);
        var update = new double[2 * n];
        var grad = new double[2 * n];
        var history = new List<(int, double)>();
        for (int it = 0; it < o.Iterations; it++)
        {
            bool early = it < o.ExaggerationIterations;
            double exaggeration = early ? o.EarlyExaggeration : 1;
            double momentum = early ? 0.5 : 0.8;
            Gradient(p, y, n, exaggeration, o.Theta, grad);
            for (int k = 0; k < 2 * n; k++)
            {
                gains[k] = Math.Sign(grad[k]) != Math.Sign(update[k]) ? gains[k] + 0.2 : Math.Max(gains[k] * 0.8, 0.01);
                update[k] = momentum * update[k] - eta * gains[k] * grad[k];
                y[k] += update[k];
            }
            // Keep the embedding centred.
            double mx = 0, my = 0;
            for (int i = 0; i < n; i++) { mx += y[2 * i]; my += y[2 * i + 1]; }
            mx /= n; my /= n;
            for (int i = 0; i < n; i++) { y[2 * i] -= mx; y[2 * i + 1] -= my; }
            if ((o.KlEvery > 0 && (it + 1) % o.KlEvery == 0) || it == o.Iterations - 1)
            {
                double kl = KlDivergence(p, y, n);
                history.Add((it + 1, kl));
                progress.SetMetric("kl", kl);
            }
            progress.Advance();
        }
        var emb = new float[n, 2];
        for (int i = 0; i < n; i++) { emb[i, 0] = (float)y[2 * i]; emb[i, 1] = (float)y[2 * i + 1]; }
        return new TSneResult(emb, history, sw.Elapsed.TotalSeconds);
    }

    /// <summary>A (n, d) feature tensor (any real dtype, any device) as the n x d rows that <see cref="Fit"/> takes.</summary>
    /// <exception cref="ArgumentException">The tensor is not 2-D.</exception>
    public static float[,] Rows(TorchSharp.torch.Tensor features)
    {
        if (features.dim() != 2) throw new ArgumentException($"expected (n, d) features, got ({string.Join(", ", features.shape)})", nameof(features));
        int n = checked((int)features.shape[0]), d = checked((int)features.shape[1]);
        float[] flat;
        using (var scope = TorchSharp.torch.NewDisposeScope())
            flat = features.detach().to(TorchSharp.torch.ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var rows = new float[n, d];
        Buffer.BlockCopy(flat, 0, rows, 0, flat.Length * sizeof(float));
        return rows;
    }

    /// <summary>The largest perplexity <see cref="Fit"/> accepts for <paramref name="n"/> points, capped at <paramref name="preferred"/> (3·perplexity must stay below n).</summary>
    public static double PerplexityFor(int n, double preferred = 30) => Math.Max(1, Math.Min(preferred, (n - 1) / 3.0));

    /// <summary>
    /// Trustworthiness (Venna and Kaski 2001) of an embedding: 1 when the k nearest neighbours of every
    /// point in the embedding are also among its nearest neighbours in the original space; lower when the
    /// embedding brings in points that were far apart. Exact, O(n² d).
    /// </summary>
    public static double Trustworthiness(float[,] original, float[,] embedding, int k = 5)
    {
        int n = original.GetLength(0);
        if (embedding.GetLength(0) != n) throw new ArgumentException($"original has {n} rows but embedding has {embedding.GetLength(0)}");
        if (k < 1 || k >= n / 2) throw new ArgumentException($"k must be in [1, n/2), got {k} for n = {n}");
        double penalty = 0;
        var lockObj = new object();
        Parallel.For(0, n, () => 0.0, (i, _, local) =>
        {
            var dOrig = Distances(original, i);
            var dEmb = Distances(embedding, i);
            var rankOrig = new int[n];
            var orderOrig = Enumerable.Range(0, n).Where(j => j != i).OrderBy(j => dOrig[j]).ToArray();
            for (int r = 0; r < orderOrig.Length; r++) rankOrig[orderOrig[r]] = r + 1;
            foreach (var j in Enumerable.Range(0, n).Where(j => j != i).OrderBy(j => dEmb[j]).Take(k))
                if (rankOrig[j] > k) local += rankOrig[j] - k;
            return local;
        }, local => { lock (lockObj) penalty += local; });
        return 1 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1)) * penalty;
    }

    private static double[] Distances(float[,] m, int i)
    {
        int n = m.GetLength(0), d = m.GetLength(1);
        var r = new double[n];
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int c = 0; c < d; c++) { double t = m[i, c] - m[j, c]; s += t * t; }
            r[j] = s;
        }
        return r;
    }

    // Row-major centred copy as doubles.
    private static (double[] X, int D) Center(float[,] data)
    {
        int n = data.GetLength(0), d = data.GetLength(1);
        var x = new double[n * d];
        for (int j = 0; j < d; j++)
        {
            double mean = 0;
            for (int i = 0; i < n; i++) mean += data[i, j];
            mean /= n;
            for (int i = 0; i < n; i++) x[i * d + j] = data[i, j] - mean;
        }
        return (x, d);
    }

    // Projects centred rows onto the top k principal components (eigenvectors of the covariance).
    private static double[] Pca(double[] x, int n, int d, int k)
    {
        var cov = Matrix<double>.Build.Dense(d, d);
        var rows = Matrix<double>.Build.Dense(n, d, (i, j) => x[i * d + j]);
        cov = rows.TransposeThisAndMultiply(rows) / Math.Max(1, n - 1);
        var evd = cov.Evd(Symmetricity.Symmetric);
        // MathNet returns eigenvalues in ascending order for symmetric matrices.
        int kk = Math.Min(k, d);
        var basis = Matrix<double>.Build.Dense(d, kk, (r, c) => evd.EigenVectors[r, d - 1 - c]);
        var proj = rows * basis;
        var result = new double[n * k];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < kk; c++) result[i * k + c] = proj[i, c];
        return result;
    }

    /// <summary>Symmetric sparse affinities P (CSR), summing to 1.</summary>
    internal sealed record SparseP(int[] RowStart, int[] Cols, double[] Values);

    private static SparseP Affinities(double[] x, int n, int d, double perplexity)
    {
        int k = Math.Min(n - 1, (int)(3 * perplexity));
        var nbr = new int[n][];
        var cond = new double[n][];
        double targetEntropy = Math.Log(perplexity);
        Parallel.For(0, n, i =>
        {
            var dist = new double[n];
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int c = 0; c < d; c++) { double t = x[i * d + c] - x[j * d + c]; s += t * t; }
                dist[j] = s;
            }
            dist[i] = double.PositiveInfinity;
            var idx = Enumerable.Range(0, n).ToArray();
            var keys = (double[])dist.Clone();
            Array.Sort(keys, idx);
            var ids = idx.Take(k).ToArray();
            var dd = keys.Take(k).ToArray();
            // Binary search on beta = 1 / (2 sigma^2) so that the entropy of P(.|i) is log(perplexity).
            double beta = 1, lo = 0, hi = double.PositiveInfinity;
            var pr = new double[k];
            double dmin = dd[0];
            for (int iter = 0; iter < 200; iter++)
            {
                double sum = 0;
                for (int j = 0; j < k; j++) { pr[j] = Math.Exp(-beta * (dd[j] - dmin)); sum += pr[j]; }
                double h = 0;
                for (int j = 0; j < k; j++) { pr[j] /= sum; if (pr[j] > 1e-300) h -= pr[j] * Math.Log(pr[j]); }
                double diff = h - targetEntropy;
                if (Math.Abs(diff) < 1e-5) break;
                if (diff > 0) { lo = beta; beta = double.IsPositiveInfinity(hi) ? beta * 2 : (beta + hi) / 2; }
                else { hi = beta; beta = (beta + lo) / 2; }
            }
            nbr[i] = ids;
            cond[i] = pr;
        });
        // Symmetrise: p_ij = (p_j|i + p_i|j) / 2n.
        var rows = new Dictionary<int, double>[n];
        for (int i = 0; i < n; i++) rows[i] = new Dictionary<int, double>();
        for (int i = 0; i < n; i++)
            for (int t = 0; t < nbr[i].Length; t++)
            {
                int j = nbr[i][t];
                double v = cond[i][t] / (2.0 * n);
                rows[i][j] = rows[i].GetValueOrDefault(j) + v;
                rows[j][i] = rows[j].GetValueOrDefault(i) + v;
            }
        var start = new int[n + 1];
        for (int i = 0; i < n; i++) start[i + 1] = start[i] + rows[i].Count;
        var cols = new int[start[n]];
        var vals = new double[start[n]];
        for (int i = 0; i < n; i++)
        {
            int w = start[i];
            foreach (var kv in rows[i].OrderBy(kv => kv.Key)) { cols[w] = kv.Key; vals[w] = kv.Value; w++; }
        }
        return new SparseP(start, cols, vals);
    }

    private static void Gradient(SparseP p, double[] y, int n, double exaggeration, double theta, double[] grad)
    {
        var tree = theta > 0 ? QuadTree.Build(y, n) : null;
        var rep = new double[2 * n];
        var zParts = new double[n];
        Parallel.For(0, n, i =>
        {
            double yi0 = y[2 * i], yi1 = y[2 * i + 1];
            double fx = 0, fy = 0, z = 0;
            if (tree is not null) tree.Repulsion(yi0, yi1, theta * theta, ref fx, ref fy, ref z);
            else
                for (int j = 0; j < n; j++)
                {
                    if (j == i) continue;
                    double dx = yi0 - y[2 * j], dy = yi1 - y[2 * j + 1];
                    double q = 1 / (1 + dx * dx + dy * dy);
                    z += q; fx += q * q * dx; fy += q * q * dy;
                }
            rep[2 * i] = fx; rep[2 * i + 1] = fy; zParts[i] = z;
        });
        double zSum = zParts.Sum();
        Parallel.For(0, n, i =>
        {
            double yi0 = y[2 * i], yi1 = y[2 * i + 1], ax = 0, ay = 0;
            for (int t = p.RowStart[i]; t < p.RowStart[i + 1]; t++)
            {
                int j = p.Cols[t];
                double dx = yi0 - y[2 * j], dy = yi1 - y[2 * j + 1];
                double q = 1 / (1 + dx * dx + dy * dy);
                ax += exaggeration * p.Values[t] * q * dx;
                ay += exaggeration * p.Values[t] * q * dy;
            }
            grad[2 * i] = 4 * (ax - rep[2 * i] / zSum);
            grad[2 * i + 1] = 4 * (ay - rep[2 * i + 1] / zSum);
        });
    }

    private static double KlDivergence(SparseP p, double[] y, int n)
    {
        var tree = QuadTree.Build(y, n);
        double z = 0;
        var zs = new double[n];
        Parallel.For(0, n, i =>
        {
            double fx = 0, fy = 0, zi = 0;
            tree.Repulsion(y[2 * i], y[2 * i + 1], 0.25, ref fx, ref fy, ref zi);
            zs[i] = zi;
        });
        z = zs.Sum();
        double kl = 0;
        for (int i = 0; i < n; i++)
            for (int t = p.RowStart[i]; t < p.RowStart[i + 1]; t++)
            {
                int j = p.Cols[t];
                double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
                double q = 1 / (1 + dx * dx + dy * dy) / z;
                double pv = p.Values[t];
                if (pv > 0) kl += pv * Math.Log(pv / Math.Max(q, 1e-300));
            }
        return kl;
    }

    /// <summary>A point-region quadtree with centres of mass, for Barnes-Hut repulsion.</summary>
    private sealed class QuadTree
    {
        private readonly double _cx, _cy, _half;  // cell centre and half-width
        private double _comX, _comY;
        private int _count;
        private int _point = -1;                   // the single point of a leaf
        private QuadTree[]? _children;
        private readonly double[] _y;

        private QuadTree(double[] y, double cx, double cy, double half) { _y = y; _cx = cx; _cy = cy; _half = half; }

        public static QuadTree Build(double[] y, int n)
        {
            double minX = double.MaxValue, minY = double.MaxValue, maxX = double.MinValue, maxY = double.MinValue;
            for (int i = 0; i < n; i++)
            {
                minX = Math.Min(minX, y[2 * i]); maxX = Math.Max(maxX, y[2 * i]);
                minY = Math.Min(minY, y[2 * i + 1]); maxY = Math.Max(maxY, y[2 * i + 1]);
            }
            double half = Math.Max(maxX - minX, maxY - minY) / 2 + 1e-5;
            var root = new QuadTree(y, (minX + maxX) / 2, (minY + maxY) / 2, half);
            for (int i = 0; i < n; i++) root.Insert(i, 0);
            return root;
        }

        private void Insert(int i, int depth)
        {
            double px = _y[2 * i], py = _y[2 * i + 1];
            _comX = (_comX * _count + px) / (_count + 1);
            _comY = (_comY * _count + py) / (_count + 1);
            _count++;
            if (_count == 1) { _point = i; return; }
            if (depth > 48) return; // duplicate points: keep them as mass in this cell
            if (_children is null)
            {
                _children = new QuadTree[4];
                double h = _half / 2;
                _children[0] = new QuadTree(_y, _cx - h, _cy - h, h);
                _children[1] = new QuadTree(_y, _cx + h, _cy - h, h);
                _children[2] = new QuadTree(_y, _cx - h, _cy + h, h);
                _children[3] = new QuadTree(_y, _cx + h, _cy + h, h);
                if (_point >= 0) { Child(_y[2 * _point], _y[2 * _point + 1]).Insert(_point, depth + 1); _point = -1; }
            }
            Child(px, py).Insert(i, depth + 1);
        }

        private QuadTree Child(double px, double py) => _children![(px >= _cx ? 1 : 0) + (py >= _cy ? 2 : 0)];

        // Adds this cell's repulsive force on (px, py): sum over points j of q_ij^2 (y_i - y_j), and z += sum q_ij.
        public void Repulsion(double px, double py, double theta2, ref double fx, ref double fy, ref double z)
        {
            if (_count == 0) return;
            double dx = px - _comX, dy = py - _comY;
            double d2 = dx * dx + dy * dy;
            bool isLeaf = _children is null;
            if (isLeaf && d2 < 1e-24) return; // the point itself (or exact duplicates of it)
            double width = 2 * _half;
            if (isLeaf || width * width < theta2 * d2)
            {
                double q = 1 / (1 + d2);
                double m = _count * q;
                z += m;
                fx += m * q * dx;
                fy += m * q * dy;
                return;
            }
            foreach (var c in _children!) c.Repulsion(px, py, theta2, ref fx, ref fy, ref z);
        }
    }
}
