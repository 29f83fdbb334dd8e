using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Methods;

#pragma warning disable IDE1006 // snake_case parameter fields keep PyTorch-style state-dict keys

/// <summary>
/// The DINO projection head: a 3-layer MLP to a bottleneck, L2 normalisation, then a weight-normalised
/// linear layer onto the prototypes whose norm is fixed to 1 (DINOv2's norm_last_layer). With
/// <c>batchNorm</c>, each hidden layer is followed by batch normalisation (DINO's <c>use_bn_in_head</c>), which
/// removes what every image in the batch shares before the prototypes see it.
/// </summary>
public sealed class DinoHead : nn.Module<Tensor, Tensor>
{
    private readonly Sequential mlp;
    private readonly Parameter last_layer_weight_v;   // (prototypes, bottleneck), direction only

    /// <summary>Builds a head.</summary>
    public DinoHead(int inDim, int prototypes, int hiddenDim = 512, int bottleneckDim = 128, bool batchNorm = false) : base(nameof(DinoHead))
    {
        mlp = batchNorm
            ? nn.Sequential(nn.Linear(inDim, hiddenDim), nn.BatchNorm1d(hiddenDim), nn.GELU(),
                            nn.Linear(hiddenDim, hiddenDim), nn.BatchNorm1d(hiddenDim), nn.GELU(), nn.Linear(hiddenDim, bottleneckDim))
            : nn.Sequential(nn.Linear(inDim, hiddenDim), nn.GELU(), nn.Linear(hiddenDim, hiddenDim), nn.GELU(), nn.Linear(hiddenDim, bottleneckDim));
        last_layer_weight_v = nn.Parameter(empty(prototypes, bottleneckDim));
        RegisterComponents();
        using var _ = no_grad();
        RoentGen.Nn.Init.TruncatedNormal(last_layer_weight_v, 0.02);
        foreach (var (name, p) in mlp.named_parameters())
        {
            if (p.dim() >= 2) RoentGen.Nn.Init.TruncatedNormal(p, 0.02);
            else if (name.EndsWith("bias", StringComparison.Ordinal)) p.zero_();   // batch-norm scales stay 1
        }
    }

    /// <summary>The prototypes' weight (direction only); DINO keeps it frozen early in training (freeze_last_layer).</summary>
    public Parameter Prototypes => last_layer_weight_v;

    /// <summary>(B, D) or (B, N, D) → (B, prototypes) or (B, N, prototypes) logits.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var flat = x.dim() > 2 ? x.reshape(-1, x.shape[^1]) : x;    // batch norm wants (rows, features)
        var z = nn.functional.normalize(mlp.call(flat), dim: -1);
        if (x.dim() > 2) z = z.reshape([.. x.shape[..^1], z.shape[^1]]);
        var w = nn.functional.normalize(last_layer_weight_v, dim: 1);
        return nn.functional.linear(z, w).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// What DINO's and iBOT's losses share: a student temperature and a centre (an EMA of the teacher's logits)
/// that is subtracted before the teacher's sharpened softmax, which keeps the teacher from collapsing.
/// </summary>
public abstract class CenteredTeacherLoss : IDisposable
{
    /// <summary>Creates the shared state.</summary>
    protected CenteredTeacherLoss(int prototypes, double studentTemperature, double centerMomentum)
    {
        Center = zeros(1, prototypes);
        StudentTemperature = studentTemperature;
        CenterMomentum = centerMomentum;
    }

    /// <summary>(1, prototypes): running mean of the teacher's logits.</summary>
    public Tensor Center { get; private set; }
    /// <summary>Student softmax temperature.</summary>
    public double StudentTemperature { get; }
    /// <summary>EMA momentum of the centre.</summary>
    public double CenterMomentum { get; }

    /// <summary>Teacher targets by centring and sharpening: softmax((t − c) / τ_t), for (…, K) logits.</summary>
    public Tensor TeacherTargets(Tensor teacherLogits, double teacherTemperature) =>
        ((teacherLogits - Center) / teacherTemperature).softmax(-1);

    /// <summary>c ← m·c + (1 − m)·mean over the rows of <paramref name="teacherRows"/> (M, K).</summary>
    protected void MoveCenter(Tensor teacherRows)
    {
        using var _ = no_grad();
        var updated = Center * CenterMomentum + teacherRows.detach().mean([0], keepdim: true) * (1 - CenterMomentum);
        Center.Dispose();
        Center = updated.DetachFromDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Center.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// DINO's CLS-token loss (Caron et al. 2021; Oquab et al. 2023): cross-entropy between the teacher's
/// centred, sharpened softmax and the student's softmax over the prototypes, over every pair of a student
/// crop and a teacher (global) crop showing a different view. Owns its centre (an EMA of teacher logits).
/// </summary>
public sealed class DinoClsLoss : CenteredTeacherLoss
{
    /// <summary>Creates the loss.</summary>
    public DinoClsLoss(int prototypes, double studentTemperature = 0.1, double centerMomentum = 0.9)
        : base(prototypes, studentTemperature, centerMomentum) { }

    /// <summary>
    /// Teacher targets by three Sinkhorn-Knopp normalisations (as in SwAV and DINOv2): every sample's row
    /// sums to 1 and every prototype receives an equal share of the batch.
    /// </summary>
    public static Tensor SinkhornKnopp(Tensor teacherLogits, double teacherTemperature, int iterations = 3)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        // In the log domain: exp(logit / τ) overflows float32 once logit / τ passes about 88 (a cosine logit of 0.9 at
        // τ = 0.01), and the normalisations below are subtractions of log-sums, which cannot overflow or divide by zero.
        var lq = (teacherLogits.to(ScalarType.Float32) / teacherTemperature).t();          // (K, B), log of the unnormalised q
        long k = lq.shape[0], b = lq.shape[1];
        lq = lq - lq.flatten().logsumexp(0);
        for (int i = 0; i < iterations; i++)
        {
            lq = lq - lq.logsumexp(1, keepdim: true) - Math.Log(k);   // each prototype gets mass 1/K
            lq = lq - lq.logsumexp(0, keepdim: true) - Math.Log(b);   // each sample gets mass 1/B
        }
        return (lq + Math.Log(b)).exp().t().MoveToOuterDisposeScope();                  // (B, K), rows sum to 1
    }

    /// <summary>
    /// The loss. <paramref name="studentLogits"/>: one (B, K) tensor per crop, global crops first;
    /// <paramref name="teacherTargets"/>: one (B, K) probability tensor per global crop. A student global crop is
    /// not compared with the teacher's view of the same crop.
    /// </summary>
    public Tensor Forward(IReadOnlyList<Tensor> studentLogits, IReadOnlyList<Tensor> teacherTargets)
    {
        using var scope = NewDisposeScope();
        Tensor total = zeros(1);
        int pairs = 0;
        for (int s = 0; s < studentLogits.Count; s++)
        {
            var logp = (studentLogits[s] / StudentTemperature).log_softmax(-1);
            for (int t = 0; t < teacherTargets.Count; t++)
            {
                if (s == t) continue;
                total = total - (teacherTargets[t] * logp).sum(-1).mean();
                pairs++;
            }
        }
        if (pairs == 0) throw new ArgumentException("DINO loss needs at least two crops");
        return (total / pairs).squeeze().MoveToOuterDisposeScope();
    }

    /// <summary>Moves the centre towards the batch mean of the teacher's logits: c ← m·c + (1 − m)·mean(t).</summary>
    public void UpdateCenter(Tensor teacherLogits) => MoveCenter(teacherLogits);
}

/// <summary>
/// iBOT's masked-patch loss (Zhou et al. 2022): for each patch masked in the student's input, the
/// cross-entropy between the teacher's centred, sharpened softmax on the unmasked image and the
/// student's softmax; averaged per image, then over images. Owns its own centre.
/// </summary>
public sealed class IBotPatchLoss : CenteredTeacherLoss
{
    /// <summary>Creates the loss.</summary>
    public IBotPatchLoss(int prototypes, double studentTemperature = 0.1, double centerMomentum = 0.9)
        : base(prototypes, studentTemperature, centerMomentum) { }

    /// <summary>
    /// The loss. Student and teacher: (B, N, K); <paramref name="mask"/>: (B, N) bool, true where the student's
    /// patch was masked. Images with no masked patch do not count.
    /// </summary>
    public Tensor Forward(Tensor studentPatchLogits, Tensor teacherPatchTargets, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var perPatch = -(teacherPatchTargets * (studentPatchLogits / StudentTemperature).log_softmax(-1)).sum(-1); // (B, N)
        var m = mask.to(perPatch.dtype);
        var counts = m.sum(1);                                                                         // (B)
        var valid = counts > 0;
        if (!valid.any().item<bool>()) throw new ArgumentException("iBOT loss needs at least one masked patch");
        var perImage = (perPatch * m).sum(1) / counts.clamp_min(1);
        return perImage.masked_select(valid).mean().MoveToOuterDisposeScope();
    }

    /// <summary>Updates the centre with the mean teacher logits over the masked patches.</summary>
    public void UpdateCenter(Tensor teacherPatchLogits, Tensor mask)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var selected = teacherPatchLogits.detach()[mask];                                            // (M, K)
        if (selected.shape[0] > 0) MoveCenter(selected);
    }
}

/// <summary>
/// The KoLeo regulariser (Sablayrolles et al. 2019, used by DINOv2): −mean log of each L2-normalised
/// feature's distance to its nearest neighbour in the batch, which spreads features out uniformly.
/// </summary>
public static class KoLeoLoss
{
    /// <summary>(B, D) features → scalar loss.</summary>
    public static Tensor Forward(Tensor features, double eps = 1e-8)
    {
        using var scope = NewDisposeScope();
        if (features.shape[0] < 2) throw new ArgumentException("KoLeo needs a batch of at least two features");
        var x = nn.functional.normalize(features, dim: -1);
        Tensor nn_idx;
        using (no_grad())
        {
            var dots = x.mm(x.t()) - eye(x.shape[0], dtype: x.dtype) * 4;   // exclude each point itself
            nn_idx = dots.argmax(1);
        }
        var dist = (x - x.index_select(0, nn_idx)).pow(2).sum(1).sqrt();   // (B)
        return (-(dist + eps).log().mean()).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// iBOT block masking: rectangles of random area and aspect ratio are masked on the patch grid until
/// the wanted fraction is covered.
/// </summary>
public static class BlockMasking
{
    /// <summary>A (rows · cols) bool mask, row-major, with about <paramref name="ratio"/> of the patches masked.</summary>
    public static bool[] Sample(int rows, int cols, double ratio, Random rng, int minBlock = 4, double minAspect = 0.3)
    {
        if (ratio < 0 || ratio > 1) throw new ArgumentException($"mask ratio must be in [0, 1], got {ratio}");
        int n = rows * cols, target = (int)Math.Round(ratio * n), masked = 0;
        var mask = new bool[n];
        int attempts = 0;
        while (masked < target && attempts++ < 1000)
        {
            int left = target - masked;
            int maxBlock = Math.Max(minBlock, left);
            double area = minBlock + rng.NextDouble() * (maxBlock - minBlock);
            double logAspect = Math.Log(minAspect) + rng.NextDouble() * (Math.Log(1 / minAspect) - Math.Log(minAspect));
            double aspect = Math.Exp(logAspect);
            int h = (int)Math.Round(Math.Sqrt(area * aspect)), w = (int)Math.Round(Math.Sqrt(area / aspect));
            if (h < 1 || w < 1 || h > rows || w > cols) continue;
            int top = rng.Next(rows - h + 1), lft = rng.Next(cols - w + 1);
            int added = 0;
            for (int r = top; r < top + h; r++)
                for (int c = lft; c < lft + w; c++)
                {
                    if (mask[r * cols + c] || masked + added >= target) continue;
                    mask[r * cols + c] = true;
                    added++;
                }
            masked += added;
        }
        return mask;
    }
}
