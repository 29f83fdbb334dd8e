using RoentGen.Evaluation.Probes;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation.Probes;

public class LinearProbeTests
{
    // Features whose first column is label 0 (with noise) and whose other columns are noise; label 1 is pure noise.
    private static (Tensor X, float[,] Y) Synthetic(int n, int d, int seed, double signal)
    {
        var rng = new Random(seed);
        var x = new float[n, d];
        var y = new float[n, 2];
        for (int i = 0; i < n; i++)
        {
            y[i, 0] = rng.NextDouble() < 0.4 ? 1 : 0;
            y[i, 1] = rng.NextDouble() < 0.5 ? 1 : 0;
            for (int j = 0; j < d; j++) x[i, j] = (float)Gauss(rng);
            x[i, 0] += (float)(signal * (y[i, 0] * 2 - 1));
        }
        return (tensor(x), y);
    }

    internal static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    [Fact]
    public void Grid_finds_the_linear_signal_and_noise_stays_near_chance()
    {
        var (xtr, ytr) = Synthetic(200, 16, 1, 2.5);
        var (xva, yva) = Synthetic(100, 16, 2, 2.5);
        var (xte, yte) = Synthetic(200, 16, 3, 2.5);
        var r = LinearProbe.TrainMultiLabel(xtr, ytr, xva, yva, xte, yte, ["signal", "noise"], LinearProbeOptions.Quick);
        Assert.True(r.PerLabel[0].Auc > 0.95, $"signal AUC {r.PerLabel[0].Auc}");
        Assert.InRange(r.PerLabel[1].Auc, 0.35, 0.65);
        Assert.Equal(4, r.Grid.Count);
        // The chosen point is the validation maximum of the grid.
        Assert.Equal(r.Grid.Max(g => g.ValidationScore), r.ValidationMacroAuc, 9);
        var chosen = r.Grid.First(g => g.ValidationScore == r.ValidationMacroAuc);
        Assert.Equal(chosen.LearningRate, r.BestLearningRate);
    }

    [Fact]
    public void Grid_points_train_independently_of_each_other()
    {
        // Training one point alone or inside a larger grid must give the same validation score:
        // the batched weight tensor shares nothing between points.
        var (xtr, ytr) = Synthetic(40, 50, 4, 1.0);
        var (xva, yva) = Synthetic(100, 50, 5, 1.0);
        var alone = LinearProbe.TrainMultiLabel(xtr, ytr, xva, yva, xva, yva, ["signal", "noise"],
            new LinearProbeOptions { LearningRates = [1e-1], WeightDecays = [0.1], Steps = 60 });
        var grid = LinearProbe.TrainMultiLabel(xtr, ytr, xva, yva, xva, yva, ["signal", "noise"],
            new LinearProbeOptions { LearningRates = [1e-4, 1e-1], WeightDecays = [0, 0.1], Steps = 60 });
        var same = grid.Grid.Single(g => g.LearningRate == 1e-1 && g.WeightDecay == 0.1);
        Assert.Equal(alone.Grid[0].ValidationScore, same.ValidationScore, 5);
        Assert.True(grid.Grid.Select(g => g.ValidationScore).Distinct().Count() > 1, "grid points should differ");
        Assert.Equal(grid.Grid.Max(g => g.ValidationScore), grid.ValidationMacroAuc, 9);
    }

    [Fact]
    public void Labels_missing_a_class_are_not_scored()
    {
        var (xtr, ytr) = Synthetic(60, 8, 7, 2);
        var (xte, yte) = Synthetic(40, 8, 8, 2);
        for (int i = 0; i < 40; i++) yte[i, 1] = 0;
        var r = LinearProbe.TrainMultiLabel(xtr, ytr, xtr, ytr, xte, yte, ["a", "b"], LinearProbeOptions.Quick);
        Assert.True(double.IsNaN(r.PerLabel[1].Auc));
        Assert.Equal(r.PerLabel[0].Auc, r.MacroAuc, 9);
    }

    [Fact]
    public void Binary_and_regression_probes_read_sex_and_age_from_features()
    {
        var rng = new Random(9);
        (Tensor X, bool[] Sex, double[] Age) Make(int n)
        {
            var x = new float[n, 12]; var sex = new bool[n]; var age = new double[n];
            for (int i = 0; i < n; i++)
            {
                sex[i] = rng.NextDouble() < 0.5; age[i] = 20 + 70 * rng.NextDouble();
                for (int j = 0; j < 12; j++) x[i, j] = (float)Gauss(rng);
                x[i, 0] += sex[i] ? 2f : -2f;
                x[i, 1] = (float)((age[i] - 55) / 20 + 0.1 * Gauss(rng));
            }
            return (tensor(x), sex, age);
        }
        var tr = Make(150); var va = Make(60); var te = Make(100);
        var s = LinearProbe.TrainBinary(tr.X, tr.Sex, va.X, va.Sex, te.X, te.Sex, "female", LinearProbeOptions.Quick);
        Assert.True(s.MacroAuc > 0.95, $"sex AUC {s.MacroAuc}");
        var a = LinearProbe.TrainRegression(tr.X, tr.Age, va.X, va.Age, te.X, te.Age, new LinearProbeOptions { Steps = 300, LearningRates = [3e-2, 1e-1], WeightDecays = [0] });
        Assert.True(a.Mae < 5, $"age MAE {a.Mae}");
        Assert.True(a.Pearson > 0.95, $"age r {a.Pearson}");
        // Noise features: age is not predictable beyond the mean (MAE near the spread's mean deviation, about 17 years).
        var n = LinearProbe.TrainRegression(randn(150, 12), tr.Age, randn(60, 12), va.Age, randn(100, 12), te.Age, LinearProbeOptions.Quick);
        Assert.True(n.Mae > 12, $"noise age MAE {n.Mae}");
    }

    [Fact]
    public void Knn_separates_clusters_and_not_noise()
    {
        var rng = new Random(10);
        (Tensor X, float[,] Y) Clusters(int n)
        {
            var x = new float[n, 6]; var y = new float[n, 2];
            for (int i = 0; i < n; i++)
            {
                y[i, 0] = i % 2; y[i, 1] = rng.NextDouble() < 0.5 ? 1 : 0;
                for (int j = 0; j < 6; j++) x[i, j] = (float)(0.3 * Gauss(rng));
                x[i, y[i, 0] > 0 ? 2 : 3] += 1f;
            }
            return (tensor(x), y);
        }
        var tr = Clusters(100); var te = Clusters(60);
        var r = KnnProbe.Evaluate(tr.X, tr.Y, te.X, te.Y, ["cluster", "noise"]);
        Assert.True(r.PerLabel[0].Auc > 0.98, $"cluster AUC {r.PerLabel[0].Auc}");
        Assert.InRange(r.PerLabel[1].Auc, 0.3, 0.7);
    }

    [Fact]
    public void Auc_matches_hand_counts()
    {
        Assert.Equal(1.0, ProbeMetrics.Auc([0.1, 0.2, 0.8, 0.9], [false, false, true, true]));
        Assert.Equal(0.0, ProbeMetrics.Auc([0.9, 0.8, 0.2, 0.1], [false, false, true, true]));
        Assert.Equal(0.5, ProbeMetrics.Auc([0.5, 0.5, 0.5, 0.5], [false, true, false, true]));
        Assert.Equal(0.75, ProbeMetrics.Auc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]));
        Assert.True(double.IsNaN(ProbeMetrics.Auc([0.1, 0.2], [true, true])));
    }
}
