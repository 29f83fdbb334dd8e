using static TorchSharp.torch;

namespace RoentGen.Evaluation.Probes;

/// <summary>The grid a <see cref="LinearProbe"/> searches and how long each point trains.</summary>
public sealed record LinearProbeOptions
{
    /// <summary>Peak learning rates (AdamW) of the grid.</summary>
    public IReadOnlyList<double> LearningRates { get; init; } = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1];
    /// <summary>Decoupled weight decays of the grid.</summary>
    public IReadOnlyList<double> WeightDecays { get; init; } = [0, 1e-3, 1e-2, 1e-1];
    /// <summary>Full-batch optimisation steps per grid point (all points step together).</summary>
    public int Steps { get; init; } = 200;

    /// <summary>A quick setting for tests and smoke runs.</summary>
    public static LinearProbeOptions Quick { get; } = new() { LearningRates = [3e-3, 3e-2], WeightDecays = [0, 1e-2], Steps = 100 };
}

/// <summary>One grid point and its validation score (macro AUC for classification, MAE for regression).</summary>
public sealed record GridPoint(double LearningRate, double WeightDecay, double ValidationScore);

/// <summary>Test AUC of one label. NaN when the label lacks a class in train or test (then it is not scored).</summary>
public sealed record LabelScore(string Label, double Auc, int TestPositives, int TestCount);

/// <summary>A classification probe's test result and the grid point chosen on validation.</summary>
/// <param name="PerLabel">Every label, scored or not.</param>
/// <param name="MacroAuc">Mean test AUC over the scored labels (NaN when none).</param>
/// <param name="BestLearningRate">Chosen learning rate (NaN for probes without a grid).</param>
/// <param name="BestWeightDecay">Chosen weight decay (NaN for probes without a grid).</param>
/// <param name="ValidationMacroAuc">Validation macro AUC of the chosen point.</param>
/// <param name="Grid">Every grid point's validation score.</param>
public sealed record ClassificationProbeResult(IReadOnlyList<LabelScore> PerLabel, double MacroAuc, double BestLearningRate, double BestWeightDecay,
    double ValidationMacroAuc, IReadOnlyList<GridPoint> Grid)
{
    /// <summary>Labels that were scored (both classes in train and test).</summary>
    public IEnumerable<LabelScore> Scored => PerLabel.Where(l => double.IsFinite(l.Auc));
}

/// <summary>A regression probe's test result (e.g. age in years).</summary>
/// <param name="Mae">Test mean absolute error, in the target's units.</param>
/// <param name="Pearson">Test Pearson correlation of prediction and truth.</param>
/// <param name="BestLearningRate">Chosen learning rate.</param>
/// <param name="BestWeightDecay">Chosen weight decay.</param>
/// <param name="ValidationMae">Validation MAE of the chosen point.</param>
/// <param name="TestCount">Test images with a known target.</param>
/// <param name="Grid">Every grid point's validation MAE.</param>
public sealed record RegressionProbeResult(double Mae, double Pearson, double BestLearningRate, double BestWeightDecay, double ValidationMae, int TestCount, IReadOnlyList<GridPoint> Grid);

/// <summary>
/// Linear probes on frozen features, as in DINOv2's linear evaluation: a grid of learning rates × weight decays
/// is trained at once (one weight tensor (G, D, L) holds every grid point; each point has its own AdamW step size and
/// decay) and the point with the best validation score is reported on test. Features are standardised with the
/// training mean and deviation.
/// </summary>
public static class LinearProbe
{
    /// <summary>
    /// Multi-label classification (binary cross-entropy per label). Validation selects by macro AUC over labels
    /// with both classes in train and validation; test reports AUC for labels with both classes in train and test.
    /// </summary>
    /// <param name="xTrain">(N, D) features.</param>
    /// <param name="yTrain">(N, L) 0/1 targets.</param>
    /// <param name="xVal">Validation features.</param>
    /// <param name="yVal">Validation targets.</param>
    /// <param name="xTest">Test features.</param>
    /// <param name="yTest">Test targets.</param>
    /// <param name="labelNames">L names.</param>
    /// <param name="options">Grid and steps.</param>
    public static ClassificationProbeResult TrainMultiLabel(Tensor xTrain, float[,] yTrain, Tensor xVal, float[,] yVal, Tensor xTest, float[,] yTest,
        IReadOnlyList<string> labelNames, LinearProbeOptions? options = null)
    {
        options ??= new LinearProbeOptions();
        int l = labelNames.Count;
        foreach (var (y, x, what) in new[] { (yTrain, xTrain, "train"), (yVal, xVal, "validation"), (yTest, xTest, "test") })
            if (y.GetLength(1) != l || y.GetLength(0) != x.shape[0])
                throw new ArgumentException($"linear probe: {what} targets are {y.GetLength(0)}x{y.GetLength(1)} but features have {x.shape[0]} rows and there are {l} labels");
        using var scope = NewDisposeScope();
        var (mean, std) = Standardiser(xTrain);
        Tensor Z(Tensor x) => (x - mean) / std;
        var grid = GridOf(options);
        var (w, b) = Fit(Z(xTrain), tensor(yTrain), grid, options.Steps, regression: false);
        var valScores = Scores(Z(xVal), w, b);                 // [g][label][i]
        var trainHas = BothClasses(yTrain);
        var valHas = BothClasses(yVal);
        var gridScores = new List<GridPoint>();
        int best = 0; double bestScore = double.NegativeInfinity;
        for (int g = 0; g < grid.Count; g++)
        {
            double s = ProbeMetrics.MeanFinite(Enumerable.Range(0, l).Where(j => trainHas[j] && valHas[j]).Select(j => ProbeMetrics.Auc(valScores[g][j], Column(yVal, j))));
            gridScores.Add(new GridPoint(grid[g].Lr, grid[g].Wd, s));
            if (double.IsFinite(s) && s > bestScore) { bestScore = s; best = g; }
        }
        var testScores = Scores(Z(xTest), w, b)[best];
        var testHas = BothClasses(yTest);
        var per = new List<LabelScore>();
        for (int j = 0; j < l; j++)
        {
            var col = Column(yTest, j);
            double auc = trainHas[j] && testHas[j] ? ProbeMetrics.Auc(testScores[j], col) : double.NaN;
            per.Add(new LabelScore(labelNames[j], auc, col.Count(c => c), col.Length));
        }
        return new ClassificationProbeResult(per, ProbeMetrics.MeanFinite(per.Select(p => p.Auc)), grid[best].Lr, grid[best].Wd,
            double.IsFinite(bestScore) ? bestScore : double.NaN, gridScores);
    }

    /// <summary>One binary target (e.g. sex: female = true); the result has one label, and MacroAuc is its test AUC.</summary>
    public static ClassificationProbeResult TrainBinary(Tensor xTrain, bool[] yTrain, Tensor xVal, bool[] yVal, Tensor xTest, bool[] yTest,
        string name, LinearProbeOptions? options = null) =>
        TrainMultiLabel(xTrain, ToMatrix(yTrain), xVal, ToMatrix(yVal), xTest, ToMatrix(yTest), [name], options);

    /// <summary>
    /// One real target (e.g. age in years) by least squares on the standardised target; validation selects by MAE;
    /// test reports MAE (in the target's units) and Pearson correlation.
    /// </summary>
    public static RegressionProbeResult TrainRegression(Tensor xTrain, double[] yTrain, Tensor xVal, double[] yVal, Tensor xTest, double[] yTest,
        LinearProbeOptions? options = null)
    {
        options ??= new LinearProbeOptions();
        if (yTrain.Length != xTrain.shape[0] || yVal.Length != xVal.shape[0] || yTest.Length != xTest.shape[0])
            throw new ArgumentException($"regression probe: targets ({yTrain.Length}, {yVal.Length}, {yTest.Length}) do not match feature rows ({xTrain.shape[0]}, {xVal.shape[0]}, {xTest.shape[0]})");
        if (yTrain.Length < 2) throw new ArgumentException($"regression probe: need at least 2 training targets, got {yTrain.Length}");
        using var scope = NewDisposeScope();
        var (mean, std) = Standardiser(xTrain);
        Tensor Z(Tensor x) => (x - mean) / std;
        double ym = yTrain.Average(), ys = Math.Sqrt(yTrain.Select(v => (v - ym) * (v - ym)).Average());
        if (ys == 0) ys = 1;
        var yz = new float[yTrain.Length, 1];
        for (int i = 0; i < yTrain.Length; i++) yz[i, 0] = (float)((yTrain[i] - ym) / ys);
        var grid = GridOf(options);
        var (w, b) = Fit(Z(xTrain), tensor(yz), grid, options.Steps, regression: true);
        double[] Predict(Tensor x, int g) => Outputs(Z(x), w, b)[g][0].Select(v => v * ys + ym).ToArray();
        var gridScores = new List<GridPoint>();
        int best = 0; double bestMae = double.PositiveInfinity;
        for (int g = 0; g < grid.Count; g++)
        {
            double mae = ProbeMetrics.MeanAbsoluteError(Predict(xVal, g), yVal);
            gridScores.Add(new GridPoint(grid[g].Lr, grid[g].Wd, mae));
            if (mae < bestMae) { bestMae = mae; best = g; }
        }
        var pred = Predict(xTest, best);
        return new RegressionProbeResult(ProbeMetrics.MeanAbsoluteError(pred, yTest), ProbeMetrics.Pearson(pred, yTest), grid[best].Lr, grid[best].Wd, bestMae, yTest.Length, gridScores);
    }

    private static List<(double Lr, double Wd)> GridOf(LinearProbeOptions o)
    {
        if (o.LearningRates.Count == 0 || o.WeightDecays.Count == 0) throw new ArgumentException("linear probe grid needs at least one learning rate and one weight decay");
        if (o.Steps < 1) throw new ArgumentException($"linear probe Steps must be at least 1, got {o.Steps}");
        return o.LearningRates.SelectMany(lr => o.WeightDecays.Select(wd => (lr, wd))).ToList();
    }

    private static (Tensor Mean, Tensor Std) Standardiser(Tensor x)
    {
        var xf = x.to_type(ScalarType.Float32);
        return (xf.mean([0], keepdim: true), xf.std(0, keepdim: true).clamp_min(1e-6));
    }

    // All grid points trained together by full-batch AdamW with a cosine-decayed step size per point.
    // Returns W (G, D, L) and b (G, 1, L).
    private static (Tensor W, Tensor B) Fit(Tensor x, Tensor y, List<(double Lr, double Wd)> grid, int steps, bool regression)
    {
        int g = grid.Count; long d = x.shape[1], l = y.shape[1];
        var w = zeros(g, d, l).requires_grad_(true);
        var b = zeros(g, 1, l).requires_grad_(true);
        var lr = tensor(grid.Select(p => (float)p.Lr).ToArray()).view(g, 1, 1);
        var wd = tensor(grid.Select(p => (float)p.Wd).ToArray()).view(g, 1, 1);
        var mw = zeros_like(w); var vw = zeros_like(w); var mb = zeros_like(b); var vb = zeros_like(b);
        const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
        var xb = x.unsqueeze(0);                                     // (1, N, D)
        var yb = y.unsqueeze(0).expand(g, -1, -1);                  // (G, N, L)
        for (int t = 1; t <= steps; t++)
        {
            using var stepScope = NewDisposeScope();
            var outp = matmul(xb, w) + b;                            // (G, N, L)
            // Summing over the grid keeps every point's gradient its own (the points share no parameters).
            var loss = regression
                ? (outp - yb).pow(2).mean([1, 2]).sum()
                : nn.functional.binary_cross_entropy_with_logits(outp, yb, reduction: nn.Reduction.None).mean([1, 2]).sum();
            var (gw, gb) = (autograd.grad([loss], [w, b]) is var gs ? (gs[0], gs[1]) : default);
            using (no_grad())
            {
                double cos = 0.5 * (1 + Math.Cos(Math.PI * (t - 1) / steps));
                var step = lr * cos;
                mw.mul_(beta1).add_(gw, alpha: 1 - beta1); vw.mul_(beta2).addcmul_(gw, gw, value: 1 - beta2);
                mb.mul_(beta1).add_(gb, alpha: 1 - beta1); vb.mul_(beta2).addcmul_(gb, gb, value: 1 - beta2);
                double c1 = 1 - Math.Pow(beta1, t), c2 = 1 - Math.Pow(beta2, t);
                w.mul_(1 - step * wd);
                w.sub_(step * (mw / c1) / ((vw / c2).sqrt() + eps));
                b.sub_(step * (mb / c1) / ((vb / c2).sqrt() + eps));
            }
        }
        return (w.detach().MoveToOuterDisposeScope(), b.detach().MoveToOuterDisposeScope());
    }

    // Outputs of every grid point: [g][label][i].
    private static double[][][] Outputs(Tensor x, Tensor w, Tensor b)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var o = (matmul(x.unsqueeze(0), w) + b).transpose(1, 2).contiguous(); // (G, L, N)
        long g = o.shape[0], l = o.shape[1], n = o.shape[2];
        var flat = o.to_type(ScalarType.Float64).data<double>().ToArray();
        var r = new double[g][][];
        for (int i = 0; i < g; i++)
        {
            r[i] = new double[l][];
            for (int j = 0; j < l; j++) r[i][j] = flat.AsSpan((int)((i * l + j) * n), (int)n).ToArray();
        }
        return r;
    }

    private static double[][][] Scores(Tensor x, Tensor w, Tensor b) => Outputs(x, w, b);

    internal static bool[] Column(float[,] y, int j) => Enumerable.Range(0, y.GetLength(0)).Select(i => y[i, j] > 0.5f).ToArray();

    internal static bool[] BothClasses(float[,] y) =>
        Enumerable.Range(0, y.GetLength(1)).Select(j => { var c = Column(y, j); return c.Any(v => v) && c.Any(v => !v); }).ToArray();

    internal static float[,] ToMatrix(bool[] y)
    {
        var m = new float[y.Length, 1];
        for (int i = 0; i < y.Length; i++) m[i, 0] = y[i] ? 1f : 0f;
        return m;
    }
}
