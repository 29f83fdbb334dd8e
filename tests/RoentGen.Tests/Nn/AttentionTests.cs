using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Tests.Nn;

#pragma warning disable IDE1006 // snake_case fields as the library's attention modules name them

/// <summary>The one attention core against a computation written out with loops over plain arrays.</summary>
public class AttentionTests
{
    /// <summary>A plain attention with public projections, so the test can read the weights.</summary>
    private sealed class PlainAttention : MultiHeadAttention
    {
        public readonly Linear q, k, v, o;
        public PlainAttention(int width, int contextWidth, int heads, bool causal, bool cross)
            : base("plain", heads, isCrossAttention: cross, isCausal: causal)
        {
            q = nn.Linear(width, width);
            k = nn.Linear(contextWidth, width);
            v = nn.Linear(contextWidth, width);
            o = nn.Linear(width, width);
            RegisterComponents();
        }
        protected override Tensor ProjectQuery(Tensor x) => q.call(x);
        protected override Tensor ProjectKey(Tensor context) => k.call(context);
        protected override Tensor ProjectValue(Tensor context) => v.call(context);
        protected override Tensor ProjectOutput(Tensor merged) => o.call(merged);
    }

    private static double[,] Matrix(Tensor t)
    {
        var a = t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();
        int r = (int)t.shape[0], c = (int)t.shape[1];
        var m = new double[r, c];
        for (int i = 0; i < r; i++) for (int j = 0; j < c; j++) m[i, j] = a[i * c + j];
        return m;
    }

    private static double[] Vector(Tensor t) => t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();

    // y[t, o] = Σ_i x[t, i]·W[o, i] + b[o]
    private static double[,] Linear(double[,] x, Linear layer)
    {
        var w = Matrix(layer.weight!);
        var b = Vector(layer.bias!);
        int n = x.GetLength(0), din = x.GetLength(1), dout = w.GetLength(0);
        var y = new double[n, dout];
        for (int t = 0; t < n; t++)
            for (int o = 0; o < dout; o++)
            {
                double s = b[o];
                for (int i = 0; i < din; i++) s += x[t, i] * w[o, i];
                y[t, o] = s;
            }
        return y;
    }

    /// <summary>
    /// One batch row by hand: returns the output (T, C) and the probabilities [head][i, j]. Scores are
    /// q_i·k_j/√d + mask[i, j]; with <paramref name="causal"/> keys j &gt; i are left out of the softmax.
    /// </summary>
    private static (double[,] Output, double[][,] Probs) ByHand(PlainAttention m, double[,] x, double[,] ctx, int heads, bool causal, double[,]? mask)
    {
        var q = Linear(x, m.q);
        var k = Linear(ctx, m.k);
        var v = Linear(ctx, m.v);
        int tq = x.GetLength(0), tk = ctx.GetLength(0), width = q.GetLength(1), d = width / heads;
        var merged = new double[tq, width];
        var probs = new double[heads][,];
        for (int h = 0; h < heads; h++)
        {
            probs[h] = new double[tq, tk];
            for (int i = 0; i < tq; i++)
            {
                var score = new double[tk];
                double max = double.NegativeInfinity;
                for (int j = 0; j < tk; j++)
                {
                    if (causal && j > i) { score[j] = double.NegativeInfinity; continue; }
                    double s = 0;
                    for (int e = 0; e < d; e++) s += q[i, h * d + e] * k[j, h * d + e];
                    score[j] = s / Math.Sqrt(d) + (mask?[i, j] ?? 0);
                    max = Math.Max(max, score[j]);
                }
                double sum = 0;
                for (int j = 0; j < tk; j++) { score[j] = double.IsNegativeInfinity(score[j]) ? 0 : Math.Exp(score[j] - max); sum += score[j]; }
                for (int j = 0; j < tk; j++) probs[h][i, j] = score[j] / sum;
                for (int e = 0; e < d; e++)
                {
                    double a = 0;
                    for (int j = 0; j < tk; j++) a += probs[h][i, j] * v[j, h * d + e];
                    merged[i, h * d + e] = a;
                }
            }
        }
        return (Linear(merged, m.o), probs);
    }

    private static void AssertClose(double[,] expected, Tensor actual, double tol = 1e-5)
    {
        var a = Matrix(actual);
        Assert.Equal(expected.GetLength(0), a.GetLength(0));
        Assert.Equal(expected.GetLength(1), a.GetLength(1));
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++)
                Assert.True(Math.Abs(expected[i, j] - a[i, j]) < tol, $"[{i}, {j}]: expected {expected[i, j]}, got {a[i, j]}");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Self_attention_matches_a_hand_computation(bool causal, bool withMask)
    {
        using var scope = NewDisposeScope();
        const int B = 2, T = 4, C = 6, Heads = 2;
        using var m = new PlainAttention(C, C, Heads, causal, cross: false);
        var x = randn(B, T, C, dtype: ScalarType.Float64).to(ScalarType.Float32);
        // An additive mask over (T, T): a slope, with key 2 hidden from query 0 and key 0 hidden from query 3.
        double[,]? mask = null;
        Tensor? maskTensor = null;
        if (withMask)
        {
            mask = new double[T, T];
            for (int i = 0; i < T; i++) for (int j = 0; j < T; j++) mask[i, j] = 0.25 * (j - i);
            mask[0, 2] = double.NegativeInfinity;
            mask[3, 0] = double.NegativeInfinity;
            maskTensor = tensor(Enumerable.Range(0, T * T).Select(n => (float)mask[n / T, n % T]).ToArray()).view(T, T);
        }
        var y = m.Attend(x, null, maskTensor);                 // (B, T, C)
        var w = m.Weights(x, null, maskTensor);                // (B, heads, T, T)
        Assert.Equal([(long)B, T, C], y.shape);
        Assert.Equal([(long)B, Heads, T, T], w.shape);
        for (int b = 0; b < B; b++)
        {
            var xb = Matrix(x[b]);
            var (expected, probs) = ByHand(m, xb, xb, Heads, causal, mask);
            AssertClose(expected, y[b]);
            for (int h = 0; h < Heads; h++) AssertClose(probs[h], w[b, h]);
        }
        if (causal)
            Assert.Equal(0, w.triu(1).abs().max().item<float>());
    }

    [Fact]
    public void Cross_attention_matches_a_hand_computation()
    {
        using var scope = NewDisposeScope();
        const int T = 3, S = 5, C = 4, Cctx = 7, Heads = 2;
        using var m = new PlainAttention(C, Cctx, Heads, causal: false, cross: true);
        var x = randn(1, T, C);
        var ctx = randn(1, S, Cctx);
        var y = m.call(x, ctx);
        var (expected, probs) = ByHand(m, Matrix(x[0]), Matrix(ctx[0]), Heads, false, null);
        AssertClose(expected, y[0]);
        var w = m.Weights(x, ctx);
        for (int h = 0; h < Heads; h++) AssertClose(probs[h], w[0, h]);
    }

    private sealed class ExplicitProcessor : IAttentionProcessor
    {
        public readonly List<AttentionCall> Calls = [];
        public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call)
        {
            Calls.Add(call);
            return matmul(ScaledDotProductProcessor.Probabilities(query, key, call), value);
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Explicit_probabilities_agree_with_the_fused_kernel(bool causal, bool withMask)
    {
        using var scope = NewDisposeScope();
        using var m = new PlainAttention(8, 8, 2, causal, cross: false);
        var x = randn(3, 5, 8);
        var mask = withMask ? randn(3, 1, 5, 5) : null;           // broadcast over heads
        var fused = m.Attend(x, null, mask);
        var explicitProcessor = new ExplicitProcessor();
        m.Processor = explicitProcessor;
        var byProbabilities = m.Attend(x, null, mask);
        Assert.True(byProbabilities.allclose(fused, rtol: 1e-4, atol: 1e-5), "explicit attention differs from the fused one");
        var call = Assert.Single(explicitProcessor.Calls);
        Assert.Equal(causal, call.IsCausal);
        Assert.Equal(2, call.Heads);
        Assert.Null(call.Sampling);
        Assert.Equal(withMask, call.Mask is not null);
    }

    [Theory]
    [InlineData(false, false, 16)]
    [InlineData(true, false, 16)]
    [InlineData(true, true, 16)]
    [InlineData(false, false, 300)]   // above ExplicitHalfPrecisionMaxScores: the fused kernel
    public void Half_precision_attention_agrees_with_float32_in_values_and_gradients(bool causal, bool withMask, int tokens)
    {
        // The default processor computes small bfloat16 attention explicitly (libtorch's fused CPU kernel is slow there);
        // whichever path runs, outputs and the gradients of queries, keys and values must match float32's to bf16 precision.
        using var scope = NewDisposeScope();
        var g = new Generator(seed: 7);
        var q = randn([2, 2, tokens, 16], generator: g); var k = randn([2, 2, tokens, 16], generator: g); var v = randn([2, 2, tokens, 16], generator: g);
        var mask = withMask ? randn([2, 1, tokens, tokens], generator: g) : null;
        var upstream = randn([2, 2, tokens, 16], generator: g);
        var call = new AttentionCall("test", false, 2, IsCausal: causal, Mask: mask);
        (Tensor Out, Tensor[] Grads) Run(ScalarType dtype)
        {
            var leaves = new[] { q, k, v }.Select(t => t.to(dtype).detach().requires_grad_(true)).ToArray();
            var o = ScaledDotProductProcessor.Instance.Attend(leaves[0], leaves[1], leaves[2], call);
            Assert.Equal(dtype, o.dtype);
            (o.to(ScalarType.Float32) * upstream).sum().backward();
            return (o.detach().to(ScalarType.Float32), leaves.Select(l => l.grad!.to(ScalarType.Float32)).ToArray());
        }
        var (o32, g32) = Run(ScalarType.Float32);
        var (o16, g16) = Run(ScalarType.BFloat16);
        double Rel(Tensor a, Tensor b) => (a - b).norm().item<float>() / (b.norm().item<float>() + 1e-12);
        Assert.True(Rel(o16, o32) < 0.02, $"bf16 output differs from float32 by {Rel(o16, o32):P2} (relative norm)");
        string[] names = ["query", "key", "value"];
        for (int i = 0; i < 3; i++)
            Assert.True(Rel(g16[i], g32[i]) < 0.05, $"bf16 {names[i]} gradient differs from float32 by {Rel(g16[i], g32[i]):P2}");
        if (causal)   // the first query sees only the first key: its output is that value row
            Assert.True(o16[.., .., 0].allclose(v[.., .., 0], rtol: 0.02, atol: 0.02) || withMask, "causal bf16 attention let the first query see later keys");
    }

    [Fact]
    public void Masks_that_are_not_additive_or_do_not_broadcast_are_refused()
    {
        using var scope = NewDisposeScope();
        using var m = new PlainAttention(4, 4, 2, causal: false, cross: false);
        var x = randn(2, 3, 4);
        var boolMask = Assert.Throws<ArgumentException>(() => m.Attend(x, null, ones(3, 3, dtype: ScalarType.Bool)));
        Assert.Contains("additive floating-point mask", boolMask.Message);
        var wrongShape = Assert.Throws<ArgumentException>(() => m.Attend(x, null, zeros(3, 4)));
        Assert.Contains("(2, 2, 3, 3)", wrongShape.Message);
        Assert.Throws<ArgumentException>(() => m.Attend(randn(3, 4)));
        Assert.Throws<ArgumentNullException>(() => m.Processor = null!);
    }

    [Fact]
    public void Heads_split_and_merge_round_trip()
    {
        using var scope = NewDisposeScope();
        var y = randn(2, 5, 12);
        var split = MultiHeadAttention.SplitHeads(y, 3);
        Assert.Equal([2L, 3, 5, 4], split.shape);
        Assert.True(split[1, 2, 4].equal(y[1, 4].narrow(0, 8, 4)).all().item<bool>());
        Assert.True(MultiHeadAttention.MergeHeads(split).equal(y).all().item<bool>());
    }
}
