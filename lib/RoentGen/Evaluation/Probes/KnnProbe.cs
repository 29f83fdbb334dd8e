using static TorchSharp.torch;

namespace RoentGen.Evaluation.Probes;

/// <summary>
/// Weighted k-nearest-neighbour classifier on frozen features, as in DINO's k-NN evaluation: cosine similarity to
/// the training features, the k most similar vote with weight exp(similarity / T). For each label the score is
/// the weighted fraction of positive neighbours; test AUC per label.
/// </summary>
public static class KnnProbe
{
    /// <summary>Scores every test row by its neighbours in the training rows.</summary>
    /// <param name="xTrain">(N, D) training features.</param>
    /// <param name="yTrain">(N, L) 0/1 training targets.</param>
    /// <param name="xTest">(M, D) test features.</param>
    /// <param name="yTest">(M, L) 0/1 test targets.</param>
    /// <param name="labelNames">L names.</param>
    /// <param name="k">Neighbours (capped at N); DINO uses 20.</param>
    /// <param name="temperature">Vote temperature; DINO uses 0.07.</param>
    public static ClassificationProbeResult Evaluate(Tensor xTrain, float[,] yTrain, Tensor xTest, float[,] yTest, IReadOnlyList<string> labelNames,
        int k = 20, double temperature = 0.07)
    {
        int l = labelNames.Count;
        if (yTrain.GetLength(1) != l || yTest.GetLength(1) != l || yTrain.GetLength(0) != xTrain.shape[0] || yTest.GetLength(0) != xTest.shape[0])
            throw new ArgumentException($"k-NN: targets {yTrain.GetLength(0)}x{yTrain.GetLength(1)} / {yTest.GetLength(0)}x{yTest.GetLength(1)} do not match features ({xTrain.shape[0]}, {xTest.shape[0]} rows) and {l} labels");
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1");
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "temperature must be positive");
        double[][] scores;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var a = nn.functional.normalize(xTest.to_type(ScalarType.Float32), p: 2, dim: 1);
            var bt = nn.functional.normalize(xTrain.to_type(ScalarType.Float32), p: 2, dim: 1);
            var sim = matmul(a, bt.t());                                         // (M, N)
            int kk = (int)Math.Min(k, xTrain.shape[0]);
            var (top, idx) = sim.topk(kk, dim: 1);                               // (M, k)
            var weights = (top / temperature).exp();
            var y = tensor(yTrain);                                              // (N, L)
            var neigh = y.index_select(0, idx.flatten()).view(idx.shape[0], kk, l); // (M, k, L)
            var s = (weights.unsqueeze(-1) * neigh).sum(1, keepdim: false) / weights.sum(1, keepdim: true); // (M, L)
            var t = s.t().contiguous().to_type(ScalarType.Float64);
            var flat = t.data<double>().ToArray();
            long m = xTest.shape[0];
            scores = Enumerable.Range(0, l).Select(j => flat.AsSpan((int)(j * m), (int)m).ToArray()).ToArray();
        }
        var trainHas = LinearProbe.BothClasses(yTrain);
        var testHas = LinearProbe.BothClasses(yTest);
        var per = new List<LabelScore>();
        for (int j = 0; j < l; j++)
        {
            var col = LinearProbe.Column(yTest, j);
            per.Add(new LabelScore(labelNames[j], trainHas[j] && testHas[j] ? ProbeMetrics.Auc(scores[j], col) : double.NaN, col.Count(c => c), col.Length));
        }
        return new ClassificationProbeResult(per, ProbeMetrics.MeanFinite(per.Select(p => p.Auc)), double.NaN, double.NaN, double.NaN, []);
    }
}
