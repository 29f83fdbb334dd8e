using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

#pragma warning disable IDE1006 // snake_case fields keep diffusers' state-dict keys

/// <summary>What a processor is told about the attention call it handles.</summary>
/// <param name="Name">The module's path in its model, e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn2".</param>
/// <param name="IsCrossAttention">True for attention to the text tokens.</param>
/// <param name="Heads">Number of heads.</param>
/// <param name="Sampling">
/// The sampling step this call belongs to and the guided batch layout of its rows, or null outside sampling
/// (training, a plain forward): <see cref="SamplingStep.Current"/> when the module ran.
/// </param>
public sealed record AttentionCall(string Name, bool IsCrossAttention, int Heads, SamplingStep? Sampling = null);

/// <summary>Which half of a classifier-free-guided UNet batch a row belongs to.</summary>
public enum GuidanceHalf
{
    /// <summary>Conditioned on the negative prompt ("" = unconditional): the first half of a guided batch.</summary>
    Unconditional,
    /// <summary>Conditioned on the row's prompt: the second half of a guided batch, or every row of an unguided one.</summary>
    Conditional,
}

/// <summary>
/// One denoising step of a sampling run, as the pipeline tells it to attention processors (through
/// <see cref="AttentionCall.Sampling"/>) and to step callbacks.
/// </summary>
/// <remarks>
/// The UNet batch of a step holds, when <see cref="Guided"/>, <see cref="BatchCount"/> unconditional rows followed
/// by <see cref="BatchCount"/> conditional rows of the same prompts (diffusers' layout); otherwise
/// <see cref="BatchCount"/> conditional rows. Row r is prompt <see cref="BatchStart"/> + r mod
/// <see cref="BatchCount"/> of the request.
/// <para>
/// The pipeline makes a step ambient with <see cref="Enter"/> around its UNet call, and <see cref="Attention"/>
/// reads <see cref="Current"/>. The ambient value lives in an <see cref="AsyncLocal{T}"/>: it flows with the calling
/// thread (and its async continuations) only, so samplings on different threads do not see each other's steps,
/// and a forward outside any <see cref="Enter"/> scope (training) sees null.
/// </para>
/// </remarks>
/// <param name="Step">Index of the step in the scheduler's timesteps (0 = the noisiest; img2img starts later).</param>
/// <param name="TotalSteps">Number of timesteps of the scheduler.</param>
/// <param name="Timestep">The training timestep the UNet is called at.</param>
/// <param name="BatchStart">Index in the request of the batch's first prompt.</param>
/// <param name="BatchCount">Prompts in the batch.</param>
/// <param name="Guided">True when the UNet batch stacks unconditional and conditional rows.</param>
public sealed record SamplingStep(int Step, int TotalSteps, long Timestep, int BatchStart, int BatchCount, bool Guided)
{
    private static readonly AsyncLocal<SamplingStep?> Ambient = new();

    /// <summary>The step the current thread is sampling, or null outside sampling.</summary>
    public static SamplingStep? Current => Ambient.Value;

    /// <summary>Rows of the UNet batch: 2·<see cref="BatchCount"/> when guided, else <see cref="BatchCount"/>.</summary>
    public int Rows => Guided ? 2 * BatchCount : BatchCount;

    /// <summary>The guidance half of UNet batch row <paramref name="row"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The row is outside 0..<see cref="Rows"/>−1.</exception>
    public GuidanceHalf HalfOf(long row)
    {
        CheckRow(row);
        return Guided && row < BatchCount ? GuidanceHalf.Unconditional : GuidanceHalf.Conditional;
    }

    /// <summary>Index in the request of the prompt of UNet batch row <paramref name="row"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The row is outside 0..<see cref="Rows"/>−1.</exception>
    public int PromptOf(long row)
    {
        CheckRow(row);
        return BatchStart + (int)(row % BatchCount);
    }

    /// <summary>Makes this step <see cref="Current"/> until the returned scope is disposed (which restores the previous one).</summary>
    public IDisposable Enter()
    {
        var previous = Ambient.Value;
        Ambient.Value = this;
        return new Restore(previous);
    }

    private void CheckRow(long row)
    {
        if (row < 0 || row >= Rows)
            throw new ArgumentOutOfRangeException(nameof(row), row, $"row must be in 0..{Rows - 1} for a {(Guided ? "guided" : "unguided")} batch of {BatchCount} prompts");
    }

    private sealed class Restore(SamplingStep? previous) : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            Ambient.Value = previous;
        }
    }
}

/// <summary>
/// The attention math of an <see cref="Attention"/> module, swappable at run time (as diffusers'
/// attention processors): the default computes softmax(QKᵀ/√d)V; others capture the probabilities or
/// edit them (prompt-to-prompt).
/// </summary>
public interface IAttentionProcessor
{
    /// <summary>Attention output (B, heads, Tq, d) from per-head queries, keys and values (B, heads, T, d).</summary>
    Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call);
}

/// <summary>Fused scaled-dot-product attention; keeps no probabilities.</summary>
public sealed class ScaledDotProductProcessor : IAttentionProcessor
{
    /// <summary>The shared instance.</summary>
    public static readonly ScaledDotProductProcessor Instance = new();

    /// <inheritdoc />
    public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call) =>
        nn.functional.scaled_dot_product_attention(query, key, value);

    /// <summary>The explicit attention probabilities softmax(QKᵀ/√d): (B, heads, Tq, Tk).</summary>
    public static Tensor Probabilities(Tensor query, Tensor key) =>
        matmul(query, key.transpose(-2, -1)).mul(1.0 / Math.Sqrt(query.shape[^1])).softmax(-1);
}

/// <summary>
/// Multi-head attention with diffusers' parameter names (to_q, to_k, to_v, to_out.0); self-attention when
/// no context is given, cross-attention to the context otherwise.
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear to_q, to_k, to_v;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
    private readonly GroupNorm? group_norm;
    private readonly bool _cross;

    /// <summary>Creates the module.</summary>
    /// <param name="queryDim">Width of the queries' tokens.</param>
    /// <param name="contextDim">Width of the context tokens (cross-attention), or null for self-attention.</param>
    /// <param name="heads">Heads.</param>
    /// <param name="headDim">Width per head.</param>
    /// <param name="qkvBias">Bias on the projections (the VAE's mid-block attention has it; the UNet's does not).</param>
    /// <param name="groupNormGroups">When set, a GroupNorm on the (B, C, H, W) input first (the VAE's spatial attention).</param>
    public Attention(int queryDim, int? contextDim, int heads, int headDim, bool qkvBias = false, int? groupNormGroups = null)
        : base(nameof(Attention))
    {
        int inner = heads * headDim;
        Heads = heads;
        _cross = contextDim is not null;
        to_q = nn.Linear(queryDim, inner, hasBias: qkvBias);
        to_k = nn.Linear(contextDim ?? queryDim, inner, hasBias: qkvBias);
        to_v = nn.Linear(contextDim ?? queryDim, inner, hasBias: qkvBias);
        to_out = new ModuleList<nn.Module<Tensor, Tensor>>(nn.Linear(inner, queryDim), nn.Dropout(0));
        group_norm = groupNormGroups is int g ? Layers.GroupNorm(g, queryDim, 1e-6) : null;
        RegisterComponents();
    }

    /// <summary>Number of heads.</summary>
    public int Heads { get; }
    /// <summary>This module's path in its model (set by the owning model).</summary>
    public string Path { get; internal set; } = "";
    /// <summary>The processor doing the attention math.</summary>
    public IAttentionProcessor Processor { get; set; } = ScaledDotProductProcessor.Instance;
    /// <summary>True for cross-attention.</summary>
    public bool IsCrossAttention => _cross;

    /// <summary>
    /// Tokens (B, T, C) or, for the VAE's spatial attention, a feature map (B, C, H, W) (with residual);
    /// context (B, S, C_ctx) for cross-attention.
    /// </summary>
    public override Tensor forward(Tensor x, Tensor? context)
    {
        using var scope = NewDisposeScope();
        bool spatial = x.dim() == 4;
        var residual = x;
        long b = x.shape[0], c = x.shape[1], h = spatial ? x.shape[2] : 0, w = spatial ? x.shape[3] : 0;
        if (group_norm is not null) x = group_norm.call(x);
        if (spatial) x = x.view(b, c, h * w).transpose(1, 2);         // (B, HW, C)
        var ctx = context ?? x;
        long t = x.shape[1];
        Tensor Split(Tensor y) => y.view(b, y.shape[1], Heads, -1).transpose(1, 2);   // (B, heads, T, d)
        var q = Split(to_q.call(x));
        var k = Split(to_k.call(ctx));
        var v = Split(to_v.call(ctx));
        var a = Processor.Attend(q, k, v, new AttentionCall(Path, _cross, Heads, SamplingStep.Current));  // (B, heads, T, d)
        a = a.transpose(1, 2).reshape(b, t, -1);
        foreach (var m in to_out) a = m.call(a);
        if (spatial) a = a.transpose(1, 2).reshape(b, c, h, w) + residual;
        return a.MoveToOuterDisposeScope();
    }
}

/// <summary>GEGLU feed-forward (Shazeer 2020) with diffusers' names: net.0.proj, net.2.</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<nn.Module<Tensor, Tensor>> net;

    /// <summary>Creates the block with inner width mult·dim.</summary>
    public FeedForward(int dim, int mult = 4) : base(nameof(FeedForward))
    {
        net = new ModuleList<nn.Module<Tensor, Tensor>>(new GeGlu(dim, dim * mult), nn.Dropout(0), nn.Linear(dim * mult, dim));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        foreach (var m in net) x = m.call(x);
        return x.MoveToOuterDisposeScope();
    }

    private sealed class GeGlu : nn.Module<Tensor, Tensor>
    {
        private readonly Linear proj;
        public GeGlu(int dim, int inner) : base("GEGLU") { proj = nn.Linear(dim, 2 * inner); RegisterComponents(); }
        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var parts = proj.call(x).chunk(2, -1);
            return (parts[0] * nn.functional.gelu(parts[1])).MoveToOuterDisposeScope();
        }
    }
}

/// <summary>Self-attention, cross-attention to the text, feed-forward; each pre-normed with a residual.</summary>
public sealed class BasicTransformerBlock : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly LayerNorm norm1, norm2, norm3;
    private readonly Attention attn1, attn2;
    private readonly FeedForward ff;

    /// <summary>Creates the block.</summary>
    public BasicTransformerBlock(int dim, int heads, int headDim, int contextDim) : base(nameof(BasicTransformerBlock))
    {
        norm1 = Layers.LayerNorm(dim);
        attn1 = new Attention(dim, null, heads, headDim);
        norm2 = Layers.LayerNorm(dim);
        attn2 = new Attention(dim, contextDim, heads, headDim);
        norm3 = Layers.LayerNorm(dim);
        ff = new FeedForward(dim);
        RegisterComponents();
    }

    /// <summary>(B, T, C) tokens, (B, S, C_ctx) context.</summary>
    public override Tensor forward(Tensor x, Tensor? context)
    {
        using var scope = NewDisposeScope();
        x = x + attn1.call(norm1.call(x), null);
        x = x + attn2.call(norm2.call(x), context);
        x = x + ff.call(norm3.call(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>A spatial transformer: GroupNorm, 1x1 conv in, transformer blocks over the H·W tokens, 1x1 conv out, residual.</summary>
public sealed class Transformer2DModel : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly GroupNorm norm;
    private readonly Conv2d proj_in, proj_out;
    private readonly ModuleList<BasicTransformerBlock> transformer_blocks;

    /// <summary>Creates the block.</summary>
    public Transformer2DModel(int channels, int heads, int contextDim, int groups, int layers = 1) : base(nameof(Transformer2DModel))
    {
        if (channels % heads != 0) throw new ArgumentException($"{channels} channels are not divisible by {heads} heads");
        norm = Layers.GroupNorm(groups, channels, 1e-6);
        proj_in = nn.Conv2d(channels, channels, 1);
        transformer_blocks = new ModuleList<BasicTransformerBlock>();
        for (int i = 0; i < layers; i++) transformer_blocks.Add(new BasicTransformerBlock(channels, heads, channels / heads, contextDim));
        proj_out = nn.Conv2d(channels, channels, 1);
        RegisterComponents();
    }

    /// <summary>(B, C, H, W) features, (B, S, C_ctx) context.</summary>
    public override Tensor forward(Tensor x, Tensor? context)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var residual = x;
        var y = proj_in.call(norm.call(x));
        y = y.view(b, c, h * w).transpose(1, 2);                      // (B, HW, C)
        foreach (var blk in transformer_blocks) y = blk.call(y, context);
        y = y.transpose(1, 2).reshape(b, c, h, w);
        return (proj_out.call(y) + residual).MoveToOuterDisposeScope();
    }
}
