using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Vision;

// Parameter fields keep Hugging Face Dinov2Model's snake_case names so that state-dict keys match
// (embeddings.*, encoder.layer.{i}.*, layernorm.*): the microsoft/rad-dino checkpoint layout.
#pragma warning disable IDE1006

/// <summary>Shape of a ViT encoder in the DINOv2 style. Defaults are a laptop-sized ViT.</summary>
public sealed record VitConfig : IModelConfig
{
    /// <summary>Training image side (position embeddings are made for it and interpolated for others).</summary>
    public int ImageSize { get; init; } = 64;
    /// <summary>Patch side in pixels.</summary>
    public int PatchSize { get; init; } = 8;
    /// <summary>Input channels (1 for grayscale CXRs; RAD-DINO uses 3).</summary>
    public int Channels { get; init; } = 1;
    /// <summary>Token width.</summary>
    public int HiddenSize { get; init; } = 192;
    /// <summary>Transformer layers.</summary>
    public int Layers { get; init; } = 6;
    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 3;
    /// <summary>MLP width as a multiple of the token width.</summary>
    public double MlpRatio { get; init; } = 4;
    /// <summary>Initial LayerScale value (DINOv2 uses 1e-5 at scale; 1.0 disables its effect).</summary>
    public double LayerScaleInit { get; init; } = 0.1;
    /// <summary>Stochastic-depth rate of the last layer (linearly increasing from 0).</summary>
    public double DropPathRate { get; init; }
    /// <summary>Register tokens after the CLS token (Darcet et al. 2024); 0 for none.</summary>
    public int RegisterTokens { get; init; }
    /// <summary>LayerNorm epsilon (1e-6 in DINOv2).</summary>
    public double LayerNormEps { get; init; } = 1e-6;

    /// <summary>Patches per side at the training size.</summary>
    public int GridSize => ImageSize / PatchSize;

    /// <summary>
    /// The number of parameters of the encoder this config describes (patch embedding, CLS, mask and register tokens,
    /// position embeddings, the layers, the final LayerNorm), computed in double precision so that no field overflows it.
    /// </summary>
    public double ParameterCount()
    {
        {
            double d = HiddenSize, p = PatchSize, grid = PatchSize > 0 ? ImageSize / PatchSize : 0;
            double m = Math.Floor(HiddenSize * MlpRatio);
            double embeddings = Channels * p * p * d + d + d + d + RegisterTokens * d + (1 + grid * grid) * d;
            double layer = 4 * d * d + 2 * d * m + 11 * d + m;
            return embeddings + Layers * layer + 2 * d;
        }
    }

    /// <inheritdoc />
    double IModelConfig.ParameterEstimate() => ParameterCount();

    /// <summary>
    /// Checks every field that sizes a tensor (positive and bounded, PatchSize dividing ImageSize, Heads dividing
    /// HiddenSize) and the total parameter count (<see cref="ModelSize.MaxParameters"/>), before anything is allocated.
    /// </summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and what was expected.</exception>
    public void Validate()
    {
        ModelSize.InRange(nameof(ImageSize), ImageSize, 1, 8192);
        ModelSize.InRange(nameof(PatchSize), PatchSize, 1, ImageSize);
        ModelSize.MultipleOf(nameof(ImageSize), ImageSize, nameof(PatchSize), PatchSize);
        ModelSize.InRange(nameof(Channels), Channels, 1, 64);
        ModelSize.InRange(nameof(HiddenSize), HiddenSize, 1, ModelSize.MaxWidth);
        ModelSize.InRange(nameof(Layers), Layers, 1, ModelSize.MaxDepth);
        ModelSize.InRange(nameof(Heads), Heads, 1, HiddenSize);
        if (HiddenSize % Heads != 0) throw new ArgumentException($"HiddenSize {HiddenSize} is not divisible by Heads {Heads}");
        ModelSize.InRange(nameof(MlpRatio), MlpRatio, 1.0 / HiddenSize, 64);
        ModelSize.InRange(nameof(RegisterTokens), RegisterTokens, 0, 1024);
        ModelSize.InRange(nameof(LayerNormEps), LayerNormEps, double.Epsilon, 1);
        ModelSize.InRange(nameof(DropPathRate), DropPathRate, 0, 1);
        ModelSize.InRange(nameof(LayerScaleInit), LayerScaleInit, -1e6, 1e6);
        ModelSize.CheckParameters("ViT", ParameterCount());
    }
}

/// <summary>Output of the encoder: normalised CLS token, register tokens and patch tokens.</summary>
/// <param name="Cls">(B, D).</param>
/// <param name="Patches">(B, N, D), N = (H/p)·(W/p).</param>
/// <param name="LastHiddenState">(B, 1 + R + N, D), after the final LayerNorm.</param>
public sealed record VitOutput(Tensor Cls, Tensor Patches, Tensor LastHiddenState);

/// <summary>A DINOv2-style ViT: patch embedding, CLS (+ registers), LayerScale, stochastic depth.</summary>
public sealed class VisionTransformer : nn.Module<Tensor, Tensor>
{
    private readonly Dinov2Embeddings embeddings;
    private readonly Dinov2Encoder encoder;
    private readonly LayerNorm layernorm;

    /// <summary>The configuration.</summary>
    public VitConfig Config { get; }

    /// <summary>Builds a randomly initialised encoder (truncated-normal 0.02 weights, as in DINOv2).</summary>
    public VisionTransformer(VitConfig config) : base(nameof(VisionTransformer))
    {
        config.Validate();
        Config = config;
        embeddings = new Dinov2Embeddings(config);
        encoder = new Dinov2Encoder(config);
        layernorm = Layers.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
        InitWeights();
        MultiHeadAttention.AssignPaths(this);
    }

    /// <summary>Every attention module with its path (e.g. "encoder.layer.3.attention"), first layer first.</summary>
    public IEnumerable<MultiHeadAttention> AttentionModules => modules().OfType<MultiHeadAttention>();

    /// <summary>Installs a processor on every attention module, chosen per module (as the UNet's).</summary>
    public void SetAttentionProcessor(Func<MultiHeadAttention, IAttentionProcessor> choose)
    {
        foreach (var a in AttentionModules) a.Processor = choose(a);
    }

    /// <summary>Token width.</summary>
    public int EmbedDim => Config.HiddenSize;

    /// <summary>The CLS embedding of each image: (B, C, H, W) → (B, D).</summary>
    public override Tensor forward(Tensor pixels)
    {
        using var scope = NewDisposeScope();
        var output = Forward(pixels);
        return output.Cls.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Full forward pass. <paramref name="patchMask"/> (B, N) bool replaces masked patch embeddings by the
    /// learned mask token before position embeddings are added (iBOT).
    /// </summary>
    public VitOutput Forward(Tensor pixels, Tensor? patchMask = null)
    {
        using var scope = NewDisposeScope();
        var x = embeddings.forward(pixels, patchMask);             // (B, 1 + R + N, D)
        x = encoder.call(x);
        x = layernorm.call(x);
        int skip = 1 + Config.RegisterTokens;
        var cls = x.select(1, 0);                                    // (B, D)
        var patches = x.narrow(1, skip, x.shape[1] - skip);          // (B, N, D)
        return new VitOutput(cls.MoveToOuterDisposeScope(), patches.MoveToOuterDisposeScope(), x.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Attention maps of the last layer: (B, heads, T, T), for showing where the CLS token looks. The weights are
    /// <see cref="MultiHeadAttention.Weights"/>' softmax(QKᵀ/√d) (the default processor's, whatever processor is set).
    /// </summary>
    public Tensor LastAttention(Tensor pixels)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = embeddings.forward(pixels, null);
        x = encoder.ForwardUpToLast(x, out var lastLayer);
        return lastLayer.AttentionWeights(x).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Where the CLS token looks in the last layer: the attention weights of its query over the patch tokens,
    /// (B, C, H, W) → (B, heads, H/p, W/p), row-major over the patch grid (Caron et al. 2021, fig. 1). Weights are
    /// the softmax row's entries, not renormalised: each map sums to 1 minus what the CLS token gives itself and the
    /// register tokens. Put the model in eval mode first (stochastic depth would otherwise drop layers).
    /// </summary>
    public Tensor ClsAttentionMaps(Tensor pixels)
    {
        using var scope = NewDisposeScope();
        var att = LastAttention(pixels);                                     // (B, heads, T, T)
        long gh = pixels.shape[2] / Config.PatchSize, gw = pixels.shape[3] / Config.PatchSize;
        var cls = att.select(2, 0).narrow(2, 1 + Config.RegisterTokens, gh * gw); // (B, heads, N)
        return cls.reshape(pixels.shape[0], att.shape[1], gh, gw).MoveToOuterDisposeScope();
    }

    private void InitWeights()
    {
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith(".weight") && p.dim() >= 2) Init.TruncatedNormal(p, 0.02);
            else if (name.EndsWith("bias") && !name.Contains("norm")) p.zero_();
        }
        Init.TruncatedNormal(embeddings.position_embeddings, 0.02);
        Init.TruncatedNormal(embeddings.cls_token, 1e-6);
        embeddings.mask_token.zero_();
        if (embeddings.register_tokens is not null) Init.TruncatedNormal(embeddings.register_tokens, 1e-6);
    }
}

internal sealed class Dinov2PatchEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d projection;
    public Dinov2PatchEmbeddings(VitConfig c) : base("patch_embeddings")
    {
        projection = nn.Conv2d(c.Channels, c.HiddenSize, c.PatchSize, stride: c.PatchSize);
        RegisterComponents();
    }
    // (B, C, H, W) -> (B, N, D)
    public override Tensor forward(Tensor x) => projection.forward(x).flatten(2).transpose(1, 2);
}

internal sealed class Dinov2Embeddings : nn.Module
{
    public readonly Parameter cls_token;
    public readonly Parameter mask_token;
    public readonly Parameter position_embeddings;
    public readonly Parameter? register_tokens;
    private readonly Dinov2PatchEmbeddings patch_embeddings;
    private readonly VitConfig _c;

    public Dinov2Embeddings(VitConfig c) : base("embeddings")
    {
        _c = c;
        cls_token = nn.Parameter(zeros(1, 1, c.HiddenSize));
        mask_token = nn.Parameter(zeros(1, c.HiddenSize));
        position_embeddings = nn.Parameter(zeros(1, 1 + c.GridSize * c.GridSize, c.HiddenSize));
        register_tokens = c.RegisterTokens > 0 ? nn.Parameter(zeros(1, c.RegisterTokens, c.HiddenSize)) : null;
        patch_embeddings = new Dinov2PatchEmbeddings(c);
        RegisterComponents();
    }

    public Tensor forward(Tensor pixels, Tensor? patchMask)
    {
        using var scope = NewDisposeScope();
        if (pixels.dim() != 4 || pixels.shape[1] != _c.Channels)
            throw new ArgumentException($"expected pixels (B, {_c.Channels}, H, W), got ({string.Join(", ", pixels.shape)})");
        long b = pixels.shape[0], h = pixels.shape[2], w = pixels.shape[3];
        if (h % _c.PatchSize != 0 || w % _c.PatchSize != 0)
            throw new ArgumentException($"image size {h}x{w} is not a multiple of the patch size {_c.PatchSize}");
        var x = patch_embeddings.call(pixels);                    // (B, N, D)
        if (patchMask is not null)
            x = where(patchMask.unsqueeze(-1), mask_token.to(x.dtype).unsqueeze(0), x);
        x = cat([cls_token.expand(b, -1, -1), x], 1);               // (B, 1 + N, D)
        x = x + InterpolatedPositions(h / _c.PatchSize, w / _c.PatchSize);
        if (register_tokens is not null)
            x = cat([x.narrow(1, 0, 1), register_tokens.expand(b, -1, -1), x.narrow(1, 1, x.shape[1] - 1)], 1);
        return x.MoveToOuterDisposeScope();
    }

    // Bicubic interpolation of the patch position grid to another grid size (1, 1 + gh·gw, D).
    private Tensor InterpolatedPositions(long gh, long gw)
    {
        int g = _c.GridSize;
        if (gh == g && gw == g) return position_embeddings;
        var cls = position_embeddings.narrow(1, 0, 1);
        var grid = position_embeddings.narrow(1, 1, g * g).reshape(1, g, g, -1).permute(0, 3, 1, 2); // (1, D, g, g)
        var resized = nn.functional.interpolate(grid, size: [gh, gw], mode: InterpolationMode.Bicubic, align_corners: false);
        return cat([cls, resized.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)], 1);
    }
}

// The query, key and value projections under HF's attention.attention.{query,key,value}.
internal sealed class Dinov2SelfAttention : nn.Module
{
    internal readonly Linear query, key, value;
    public Dinov2SelfAttention(VitConfig c) : base("attention")
    {
        query = nn.Linear(c.HiddenSize, c.HiddenSize);
        key = nn.Linear(c.HiddenSize, c.HiddenSize);
        value = nn.Linear(c.HiddenSize, c.HiddenSize);
        RegisterComponents();
    }
}

// The output projection under HF's attention.output.dense.
internal sealed class Dinov2SelfOutput : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    public Dinov2SelfOutput(VitConfig c) : base("output") { dense = nn.Linear(c.HiddenSize, c.HiddenSize); RegisterComponents(); }
    public override Tensor forward(Tensor x) => dense.forward(x);
}

// HF Dinov2Attention: names the projections; the attention is MultiHeadAttention's.
internal sealed class Dinov2Attention : MultiHeadAttention
{
    private readonly Dinov2SelfAttention attention;
    private readonly Dinov2SelfOutput output;
    public Dinov2Attention(VitConfig c) : base("attention", c.Heads)
    {
        attention = new Dinov2SelfAttention(c);
        output = new Dinov2SelfOutput(c);
        RegisterComponents();
    }
    protected override Tensor ProjectQuery(Tensor x) => attention.query.call(x);
    protected override Tensor ProjectKey(Tensor context) => attention.key.call(context);
    protected override Tensor ProjectValue(Tensor context) => attention.value.call(context);
    protected override Tensor ProjectOutput(Tensor merged) => output.call(merged);
}

internal sealed class Dinov2LayerScale : nn.Module<Tensor, Tensor>
{
    private readonly Parameter lambda1;
    public Dinov2LayerScale(VitConfig c, string name) : base(name)
    {
        lambda1 = nn.Parameter(full(c.HiddenSize, c.LayerScaleInit));
        RegisterComponents();
    }
    public override Tensor forward(Tensor x) => x * lambda1;
}

internal sealed class Dinov2Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2;
    public Dinov2Mlp(VitConfig c) : base("mlp")
    {
        int hidden = (int)(c.HiddenSize * c.MlpRatio);
        fc1 = nn.Linear(c.HiddenSize, hidden);
        fc2 = nn.Linear(hidden, c.HiddenSize);
        RegisterComponents();
    }
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return fc2.call(nn.functional.gelu(fc1.call(x))).MoveToOuterDisposeScope();
    }
}

internal sealed class Dinov2Layer : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm1, norm2;
    private readonly Dinov2Attention attention;
    private readonly Dinov2LayerScale layer_scale1, layer_scale2;
    private readonly Dinov2Mlp mlp;
    private readonly double _dropPath;

    public Dinov2Layer(VitConfig c, double dropPath) : base("layer")
    {
        _dropPath = dropPath;
        norm1 = Layers.LayerNorm(c.HiddenSize, c.LayerNormEps);
        attention = new Dinov2Attention(c);
        layer_scale1 = new Dinov2LayerScale(c, "layer_scale1");
        norm2 = Layers.LayerNorm(c.HiddenSize, c.LayerNormEps);
        mlp = new Dinov2Mlp(c);
        layer_scale2 = new Dinov2LayerScale(c, "layer_scale2");
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + DropPath(layer_scale1.call(attention.call(norm1.call(x), null)));
        x = x + DropPath(layer_scale2.call(mlp.call(norm2.call(x))));
        return x.MoveToOuterDisposeScope();
    }

    public Tensor AttentionWeights(Tensor x) => attention.Weights(norm1.call(x));

    // Stochastic depth: drop the whole residual branch per sample, rescaling the kept ones.
    private Tensor DropPath(Tensor branch)
    {
        if (!training || _dropPath <= 0) return branch;
        var keep = empty(branch.shape[0], 1, 1, dtype: branch.dtype).bernoulli_(1 - _dropPath);
        return branch * keep / (1 - _dropPath);
    }
}

internal sealed class Dinov2Encoder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<Dinov2Layer> layer;
    public Dinov2Encoder(VitConfig c) : base("encoder")
    {
        layer = new ModuleList<Dinov2Layer>();
        for (int i = 0; i < c.Layers; i++)
            layer.Add(new Dinov2Layer(c, c.Layers > 1 ? c.DropPathRate * i / (c.Layers - 1) : c.DropPathRate));
        RegisterComponents();
    }
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        foreach (var l in layer) x = l.call(x);
        return x.MoveToOuterDisposeScope();
    }
    public Tensor ForwardUpToLast(Tensor x, out Dinov2Layer last)
    {
        for (int i = 0; i < layer.Count - 1; i++) x = layer[i].call(x);
        last = layer[layer.Count - 1];
        return x;
    }
}
