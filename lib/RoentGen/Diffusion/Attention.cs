using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

#pragma warning disable IDE1006 // snake_case fields keep diffusers' state-dict keys

/// <summary>
/// Multi-head attention with diffusers' parameter names (to_q, to_k, to_v, to_out.0, group_norm); self-attention when
/// no context is given, cross-attention to the context otherwise. The attention itself is
/// <see cref="MultiHeadAttention"/>'s; this class names the projections and adds the VAE's spatial form.
/// </summary>
public sealed class Attention : MultiHeadAttention
{
    private readonly Linear to_q, to_k, to_v;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;
    private readonly GroupNorm? group_norm;

    /// <summary>Creates the module.</summary>
    /// <param name="queryDim">Width of the queries' tokens.</param>
    /// <param name="contextDim">Width of the context tokens (cross-attention), or null for self-attention.</param>
    /// <param name="heads">Heads.</param>
    /// <param name="headDim">Width per head.</param>
    /// <param name="qkvBias">Bias on the projections (the VAE's mid-block attention has it; the UNet's does not).</param>
    /// <param name="groupNormGroups">When set, a GroupNorm on the (B, C, H, W) input first (the VAE's spatial attention).</param>
    public Attention(int queryDim, int? contextDim, int heads, int headDim, bool qkvBias = false, int? groupNormGroups = null)
        : base(nameof(Attention), heads, isCrossAttention: contextDim is not null)
    {
        int inner = heads * headDim;
        to_q = nn.Linear(queryDim, inner, hasBias: qkvBias);
        to_k = nn.Linear(contextDim ?? queryDim, inner, hasBias: qkvBias);
        to_v = nn.Linear(contextDim ?? queryDim, inner, hasBias: qkvBias);
        to_out = new ModuleList<nn.Module<Tensor, Tensor>>(nn.Linear(inner, queryDim), nn.Dropout(0));
        group_norm = groupNormGroups is int g ? Layers.GroupNorm(g, queryDim, 1e-6) : null;
        RegisterComponents();
    }

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
        var a = Attend(x, context);                                    // (B, T, C)
        if (spatial) a = a.transpose(1, 2).reshape(b, c, h, w) + residual;
        return a.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override Tensor ProjectQuery(Tensor x) => to_q.call(x);
    /// <inheritdoc />
    protected override Tensor ProjectKey(Tensor context) => to_k.call(context);
    /// <inheritdoc />
    protected override Tensor ProjectValue(Tensor context) => to_v.call(context);
    /// <inheritdoc />
    protected override Tensor ProjectOutput(Tensor merged)
    {
        foreach (var m in to_out) merged = m.call(merged);
        return merged;
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

    /// <summary>Creates the block; <paramref name="upcastAttention"/> computes attention in float32 under half precision.</summary>
    public BasicTransformerBlock(int dim, int heads, int headDim, int contextDim, bool upcastAttention = false) : base(nameof(BasicTransformerBlock))
    {
        norm1 = Layers.LayerNorm(dim);
        attn1 = new Attention(dim, null, heads, headDim) { UpcastAttention = upcastAttention };
        norm2 = Layers.LayerNorm(dim);
        attn2 = new Attention(dim, contextDim, heads, headDim) { UpcastAttention = upcastAttention };
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

/// <summary>
/// A spatial transformer (diffusers' Transformer2DModel): GroupNorm, proj_in, transformer blocks over the H·W tokens,
/// proj_out, residual. proj_in/proj_out are 1x1 convolutions on the feature map (SD 1.x, the default) or, with
/// <c>linearProjection</c>, Linear layers on the tokens (SD 2.x): the conv form projects before flattening to tokens and
/// after folding back, the linear form after flattening and before folding, so the two differ only in where the
/// reshape sits (a 1x1 conv is the same map as a Linear with weight[:, :, 0, 0]).
/// </summary>
public sealed class Transformer2DModel : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly GroupNorm norm;
    private readonly nn.Module<Tensor, Tensor> proj_in, proj_out;
    private readonly ModuleList<BasicTransformerBlock> transformer_blocks;
    private readonly bool _linear;

    /// <summary>Creates the block.</summary>
    /// <param name="channels">Feature channels (= heads × head width).</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="contextDim">Width of the cross-attention context.</param>
    /// <param name="groups">GroupNorm groups.</param>
    /// <param name="layers">Transformer blocks.</param>
    /// <param name="linearProjection">Linear proj_in/proj_out (SD 2.x) instead of 1x1 convolutions.</param>
    /// <param name="upcastAttention">Attention in float32 when the block runs in half precision.</param>
    public Transformer2DModel(int channels, int heads, int contextDim, int groups, int layers = 1, bool linearProjection = false, bool upcastAttention = false)
        : base(nameof(Transformer2DModel))
    {
        if (channels % heads != 0) throw new ArgumentException($"{channels} channels are not divisible by {heads} heads");
        _linear = linearProjection;
        norm = Layers.GroupNorm(groups, channels, 1e-6);
        proj_in = linearProjection ? nn.Linear(channels, channels) : nn.Conv2d(channels, channels, 1);
        transformer_blocks = new ModuleList<BasicTransformerBlock>();
        for (int i = 0; i < layers; i++) transformer_blocks.Add(new BasicTransformerBlock(channels, heads, channels / heads, contextDim, upcastAttention));
        proj_out = linearProjection ? nn.Linear(channels, channels) : nn.Conv2d(channels, channels, 1);
        RegisterComponents();
    }

    /// <summary>The transformer of a UNet level: that level's heads and depth, the config's projection kind and norm groups.</summary>
    internal static Transformer2DModel ForLevel(UNetConfig c, int level, int channels) =>
        new(channels, c.Heads(level), c.CrossAttentionDim, c.NormGroups, c.TransformerDepth(level), c.UseLinearProjection, c.UpcastAttention);

    /// <summary>(B, C, H, W) features, (B, S, C_ctx) context.</summary>
    public override Tensor forward(Tensor x, Tensor? context)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var residual = x;
        var y = norm.call(x);
        if (!_linear) y = proj_in.call(y);
        y = y.view(b, c, h * w).transpose(1, 2);                      // (B, HW, C)
        if (_linear) y = proj_in.call(y);
        foreach (var blk in transformer_blocks) y = blk.call(y, context);
        if (_linear) y = proj_out.call(y);
        y = y.transpose(1, 2).reshape(b, c, h, w);
        if (!_linear) y = proj_out.call(y);
        return (y + residual).MoveToOuterDisposeScope();
    }
}
