using RoentGen.Evaluation;

namespace RoentGen.Tests.Evaluation;

public class TSneTests
{
    // Three well-separated Gaussian blobs in 20 dimensions.
    private static (float[,] Data, int[] Labels) Blobs(int perBlob, int seed)
    {
        var rng = new Random(seed);
        int n = 3 * perBlob, d = 20;
        var x = new float[n, d];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            int c = i / perBlob;
            labels[i] = c;
            for (int j = 0; j < d; j++)
            {
                double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                x[i, j] = (float)(g + (j == c ? 12 : 0));
            }
        }
        return (x, labels);
    }

    [Fact]
    public void Separated_clusters_stay_separated_and_KL_falls()
    {
        var (x, labels) = Blobs(80, 1);
        var result = TSne.Fit(x, new TSneOptions { Perplexity = 15, Iterations = 500, KlEvery = 25 });
        var emb = result.Embedding;
        int n = labels.Length;

        // KL after the exaggeration phase keeps falling to the end.
        double klAfterExaggeration = result.KlHistory.First(h => h.Iteration >= 275).Kl;
        Assert.True(result.FinalKl < klAfterExaggeration, $"KL did not fall: {klAfterExaggeration} -> {result.FinalKl}");
        Assert.True(result.FinalKl < 1.5, $"final KL {result.FinalKl} is too high for three clean blobs");

        // Every point's nearest embedded neighbour belongs to its own cluster.
        int agree = 0;
        for (int i = 0; i < n; i++)
        {
            int best = -1; double bestD = double.MaxValue;
            for (int j = 0; j < n; j++)
            {
                if (j == i) continue;
                double dx = emb[i, 0] - emb[j, 0], dy = emb[i, 1] - emb[j, 1], d = dx * dx + dy * dy;
                if (d < bestD) { bestD = d; best = j; }
            }
            if (labels[best] == labels[i]) agree++;
        }
        Assert.Equal(n, agree);

        double t = TSne.Trustworthiness(x, emb, k: 5);
        Assert.True(t > 0.95, $"trustworthiness {t}");
    }

    [Fact]
    public void Barnes_Hut_matches_exact_gradient_quality()
    {
        var (x, _) = Blobs(40, 2);
        var bh = TSne.Fit(x, new TSneOptions { Perplexity = 10, Iterations = 400, Theta = 0.5 });
        var exact = TSne.Fit(x, new TSneOptions { Perplexity = 10, Iterations = 400, Theta = 0 });
        Assert.InRange(bh.FinalKl, exact.FinalKl - 0.1, exact.FinalKl + 0.1);
    }

    [Fact]
    public void Trustworthiness_detects_a_scrambled_embedding()
    {
        var (x, _) = Blobs(40, 3);
        var rng = new Random(0);
        var random = new float[x.GetLength(0), 2];
        for (int i = 0; i < random.GetLength(0); i++) { random[i, 0] = (float)rng.NextDouble(); random[i, 1] = (float)rng.NextDouble(); }
        Assert.True(TSne.Trustworthiness(x, random, 5) < 0.7);
    }

    [Fact]
    public void Bad_inputs_are_refused()
    {
        Assert.Throws<ArgumentException>(() => TSne.Fit(new float[3, 2]));
        var (x, _) = Blobs(5, 4);
        Assert.Throws<ArgumentException>(() => TSne.Fit(x, new TSneOptions { Perplexity = 30 }));
        x[2, 3] = float.NaN;
        var ex = Assert.Throws<ArgumentException>(() => TSne.Fit(x, new TSneOptions { Perplexity = 2 }));
        Assert.Contains("row 2", ex.Message);
    }
}
