using TorchSharp;
using static TorchSharp.torch;
using RoentGen.Methods;

namespace RoentGen.Tests.Methods;

public class SslLossTests
{
    [Fact]
    public void Dino_loss_is_the_cross_entropy_over_pairs_of_different_views()
    {
        using var scope = NewDisposeScope();
        using var loss = new DinoClsLoss(prototypes: 4, studentTemperature: 0.5);
        var s0 = tensor(new float[] { 1, 0, 0, 0 }).reshape(1, 4);
        var s1 = tensor(new float[] { 0, 2, 0, 0 }).reshape(1, 4);
        var t0 = tensor(new float[] { 0.7f, 0.1f, 0.1f, 0.1f }).reshape(1, 4);
        var t1 = tensor(new float[] { 0.25f, 0.25f, 0.25f, 0.25f }).reshape(1, 4);
        double value = loss.Forward([s0, s1], [t0, t1]).item<float>();
        // Pairs (student 0, teacher 1) and (student 1, teacher 0).
        static double Ce(float[] t, float[] s, double temp)
        {
            var z = s.Select(v => v / temp).ToArray();
            double lse = Math.Log(z.Sum(Math.Exp));
            return -t.Select((p, i) => p * (z[i] - lse)).Sum();
        }
        double expected = (Ce([0.25f, 0.25f, 0.25f, 0.25f], [1, 0, 0, 0], 0.5) + Ce([0.7f, 0.1f, 0.1f, 0.1f], [0, 2, 0, 0], 0.5)) / 2;
        Assert.Equal(expected, value, 5);
    }

    [Fact]
    public void Center_is_an_exponential_moving_average_of_teacher_logits()
    {
        using var scope = NewDisposeScope();
        using var loss = new DinoClsLoss(prototypes: 3, centerMomentum: 0.9);
        loss.UpdateCenter(tensor(new float[] { 1, 2, 3, 3, 2, 1 }).reshape(2, 3));   // batch mean (2, 2, 2)
        loss.UpdateCenter(tensor(new float[] { 10, 0, 0 }).reshape(1, 3));
        var c = loss.Center.data<float>().ToArray();
        Assert.Equal(0.9 * 0.2 + 0.1 * 10, c[0], 5);
        Assert.Equal(0.9 * 0.2, c[1], 5);
        // Centring removes a constant offset the teacher puts on one prototype.
        var targets = loss.TeacherTargets(tensor(new float[] { 1.18f, 0.18f, 0.18f }).reshape(1, 3), 1.0);
        Assert.True((targets - 1.0 / 3).abs().max().item<float>() < 1e-5, "centring should cancel the offset");
    }

    [Fact]
    public void Sinkhorn_targets_are_distributions_that_share_prototypes_evenly()
    {
        using var scope = NewDisposeScope();
        manual_seed(0);
        var logits = randn(64, 8) + tensor(new float[] { 4, 0, 0, 0, 0, 0, 0, 0 });   // prototype 0 dominates
        var q = DinoClsLoss.SinkhornKnopp(logits, 0.5, iterations: 10);
        Assert.True((q.sum(1) - 1).abs().max().item<float>() < 1e-4, "rows do not sum to 1");
        var share = (q.sum(0, keepdim: false) / 64).data<float>().ToArray();                    // each about 1/8
        Assert.All(share, v => Assert.InRange(v, 0.105, 0.145));
        var plain = (logits / 0.5).softmax(-1).sum(0, keepdim: false) / 64; // note: sum(0) alone binds to sum(ScalarType)
        Assert.True(plain[0].item<float>() > 0.5, "test setup: plain softmax should collapse onto prototype 0");
    }

    [Fact]
    public void Sinkhorn_targets_stay_finite_and_exact_at_low_teacher_temperatures()
    {
        // Cosine logits near 1 at τ = 0.01 give exp(100), past float32's range: the old linear-domain iteration returned
        // NaN here. Reference: the same three iterations in double precision, with the largest logit taken out first
        // (exact, since the first normalisation divides a global constant away).
        using var scope = NewDisposeScope();
        manual_seed(3);
        var logits = (rand(6, 5) * 2 - 1).to(ScalarType.Float32);
        logits[0, 2] = tensor(0.999f);
        const double tau = 0.01;
        var q = DinoClsLoss.SinkhornKnopp(logits, tau);
        Assert.False(q.isnan().any().item<bool>() || q.isinf().any().item<bool>(), "Sinkhorn-Knopp targets are not finite");
        var l = logits.to(ScalarType.Float64).data<double>().ToArray();
        int b = 6, k = 5;
        var r = new double[b, k];
        double m = l.Max();
        for (int i = 0; i < b; i++)
            for (int j = 0; j < k; j++) r[i, j] = Math.Exp((l[i * k + j] - m) / tau);
        for (int it = 0; it < 3; it++)
        {
            for (int j = 0; j < k; j++) { double c = 0; for (int i = 0; i < b; i++) c += r[i, j]; for (int i = 0; i < b; i++) r[i, j] /= c * k; }
            for (int i = 0; i < b; i++) { double c = 0; for (int j = 0; j < k; j++) c += r[i, j]; for (int j = 0; j < k; j++) r[i, j] /= c * b; }
        }
        var got = q.to(ScalarType.Float64).data<double>().ToArray();
        for (int i = 0; i < b; i++)
            for (int j = 0; j < k; j++) Assert.Equal(r[i, j] * b, got[i * k + j], 4);
    }

    [Fact]
    public void IBot_loss_counts_only_masked_patches_and_weights_images_equally()
    {
        using var scope = NewDisposeScope();
        using var loss = new IBotPatchLoss(prototypes: 2, studentTemperature: 1.0);
        var student = zeros(2, 3, 2);
        student[0, 0] = tensor(new float[] { 5, 0 });
        var teacher = full(2, 3, 2, 0.5f);
        var mask = tensor(new bool[] { true, false, false, true, true, true }).reshape(2, 3);
        double value = loss.Forward(student, teacher, mask).item<float>();
        double ce0 = -(0.5 * (5 - Math.Log(Math.Exp(5) + 1)) + 0.5 * (0 - Math.Log(Math.Exp(5) + 1)));
        double ceUniform = Math.Log(2);
        Assert.Equal((ce0 + ceUniform) / 2, value, 5);
        // Changing an unmasked student patch does not change the loss.
        student[0, 1] = tensor(new float[] { -9, 9 });
        Assert.Equal(value, loss.Forward(student, teacher, mask).item<float>(), 6);
    }

    [Fact]
    public void KoLeo_prefers_spread_out_features()
    {
        using var scope = NewDisposeScope();
        var spread = eye(4);
        var clustered = tensor(new float[] { 1, 0.01f, 0, 0, 1, -0.01f, 0, 0, 0, 1, 0.01f, 0, 0, 1, -0.01f, 0 }).reshape(4, 4);
        double a = KoLeoLoss.Forward(spread).item<float>();
        double b = KoLeoLoss.Forward(clustered).item<float>();
        Assert.Equal(-Math.Log(Math.Sqrt(2)), a, 4);     // orthonormal: every nearest neighbour at distance sqrt(2)
        Assert.True(b > a + 3, $"clustered {b} vs spread {a}");
    }

    [Fact]
    public void Block_masks_cover_the_ratio_in_contiguous_blocks_and_are_deterministic()
    {
        var m1 = BlockMasking.Sample(14, 14, 0.4, new Random(3));
        var m2 = BlockMasking.Sample(14, 14, 0.4, new Random(3));
        Assert.Equal(m1, m2);
        Assert.InRange(m1.Count(b => b), 70, 79);
        // Most masked patches have a masked 4-neighbour (blocks, not scattered pixels).
        int withNeighbour = 0, total = 0;
        for (int r = 0; r < 14; r++)
            for (int c = 0; c < 14; c++)
            {
                if (!m1[r * 14 + c]) continue;
                total++;
                bool nb = (r > 0 && m1[(r - 1) * 14 + c]) || (r < 13 && m1[(r + 1) * 14 + c]) || (c > 0 && m1[r * 14 + c - 1]) || (c < 13 && m1[r * 14 + c + 1]);
                if (nb) withNeighbour++;
            }
        Assert.True(withNeighbour > 0.9 * total);
    }

    [Fact]
    public void Dino_head_output_ignores_the_scale_of_the_prototype_weights()
    {
        using var scope = NewDisposeScope();
        using var head = new DinoHead(16, 10, hiddenDim: 32, bottleneckDim: 8);
        var x = randn(3, 16);
        var y1 = head.forward(x);
        Assert.Equal([3L, 10], y1.shape);
        Assert.True(y1.abs().max().item<float>() <= 1.0001f, "logits are cosine similarities");
        using (no_grad()) head.named_parameters().First(p => p.name == "last_layer_weight_v").parameter.mul_(7);
        Assert.True(head.forward(x).allclose(y1, atol: 1e-5));
    }

    [Fact]
    public void Dino_head_with_batch_norm_removes_what_the_batch_shares_and_takes_patch_tokens()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var plain = new DinoHead(16, 10, hiddenDim: 32, bottleneckDim: 8);
        using var bn = new DinoHead(16, 10, hiddenDim: 32, bottleneckDim: 8, batchNorm: true);
        // Batch-norm scales start at 1 (not zeroed with the biases), so the head is not dead at step 0.
        Assert.All(bn.named_parameters().Where(p => p.parameter.dim() == 1 && p.name.EndsWith("weight")), p => Assert.True(p.parameter.eq(1).all().item<bool>(), p.name));
        // Eight inputs that share a large common part and differ a little: without batch norm every row picks nearly
        // the same logits; with it the rows spread apart.
        var common = randn(1, 16) * 10;
        var x = common + randn(8, 16) * 0.01;
        plain.train(); bn.train();
        double Spread(Tensor logits) => logits.std([0]).mean().item<float>();
        double sPlain = Spread(plain.forward(x)), sBn = Spread(bn.forward(x));
        Assert.True(sBn > 10 * sPlain, $"logit spread across the batch: plain {sPlain:G3}, batch norm {sBn:G3}");
        // (B, N, D) patch tokens give (B, N, K).
        Assert.Equal([2L, 5, 10], bn.forward(randn(2, 5, 16)).shape);
    }
}
