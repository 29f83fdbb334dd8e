using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Text;

#pragma warning disable IDE1006 // snake_case fields keep Hugging Face CLIPTextModel's state-dict keys

/// <summary>
/// Shape of the CLIP-style text encoder. Defaults are a CPU-sized encoder; CLIP ViT-L/14's text tower
/// (Stable Diffusion 1.x) is VocabSize 49408, MaxPositions 77, HiddenSize 768, Layers 12, Heads 12.
/// </summary>
public sealed record ClipTextConfig : IModelConfig
{
    /// <summary>Token ids.</summary>
    public int VocabSize { get; init; } = 2048;
    /// <summary>Longest sequence (position embeddings).</summary>
    public int MaxPositions { get; init; } = 64;
    /// <summary>Token width (the UNet's cross-attention width).</summary>
    public int HiddenSize { get; init; } = 256;
    /// <summary>Transformer layers.</summary>
    public int Layers { get; init; } = 4;
    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>MLP width.</summary>
    public int IntermediateSize { get; init; } = 1024;
    /// <summary>LayerNorm epsilon.</summary>
    public double LayerNormEps { get; init; } = 1e-5;
    /// <summary>Id of the end-of-text token whose state is the pooled output.</summary>
    public int EndTokenId { get; init; } = 2047;
    /// <summary>
    /// The MLP's activation, as transformers names it: "quick_gelu" (x·σ(1.702x), OpenAI CLIP and SD 1.x; the default)
    /// or "gelu" (the exact erf GELU, OpenCLIP ViT-H in SD 2.x).
    /// </summary>
    public string HiddenAct { get; init; } = "quick_gelu";

    /// <summary>The exact parameter count of the encoder this config describes, in double precision so that no field overflows it.</summary>
    public double ParameterCount()
    {
        {
            double d = HiddenSize, m = IntermediateSize;
            double layer = 4 * (d * d + d) + 4 * d + 2 * d * m + m + d;
            return (double)VocabSize * d + (double)MaxPositions * d + Layers * layer + 2 * d;
        }
    }

    /// <inheritdoc />
    double IModelConfig.ParameterEstimate() => ParameterCount();

    /// <summary>
    /// Checks every field that sizes a tensor (positive and bounded, Heads dividing HiddenSize, EndTokenId inside the
    /// vocabulary) and the parameter count (<see cref="ModelSize.MaxParameters"/>), before anything is allocated.
    /// </summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and what was expected.</exception>
    public void Validate()
    {
        ModelSize.InRange(nameof(VocabSize), VocabSize, 1, 1 << 21);
        ModelSize.InRange(nameof(MaxPositions), MaxPositions, 1, 1 << 16);
        ModelSize.InRange(nameof(HiddenSize), HiddenSize, 1, ModelSize.MaxWidth);
        ModelSize.InRange(nameof(Layers), Layers, 1, ModelSize.MaxDepth);
        ModelSize.InRange(nameof(Heads), Heads, 1, HiddenSize);
        if (HiddenSize % Heads != 0) throw new ArgumentException($"HiddenSize {HiddenSize} is not divisible by {Heads} heads");
        ModelSize.InRange(nameof(IntermediateSize), IntermediateSize, 1, 4 * ModelSize.MaxWidth);
        ModelSize.InRange(nameof(LayerNormEps), LayerNormEps, double.Epsilon, 1);
        if (HiddenAct is not ("quick_gelu" or "gelu")) throw new ArgumentException($"HiddenAct is \"{HiddenAct}\"; expected quick_gelu or gelu");
        if (EndTokenId < 0 || EndTokenId >= VocabSize) throw new ArgumentException($"EndTokenId {EndTokenId} is outside the vocabulary of {VocabSize}");
        ModelSize.CheckParameters("CLIP text encoder", ParameterCount());
    }
}

/// <summary>Outputs of the text encoder.</summary>
/// <param name="LastHiddenState">(B, L, D) after the final LayerNorm: the UNet's cross-attention context.</param>
/// <param name="Pooled">(B, D): the state at each sequence's first end token (CLIP's text embedding before projection).</param>
public sealed record ClipTextOutput(Tensor LastHiddenState, Tensor Pooled);

/// <summary>
/// A causal transformer text encoder with Hugging Face CLIPTextModel's parameter names
/// (text_model.embeddings.token_embedding, position_embedding, text_model.encoder.layers.{i}.self_attn.{q,k,v,out}_proj,
/// layer_norm1/2, mlp.fc1/fc2, text_model.final_layer_norm), so CLIP weights load by name.
/// </summary>
public sealed class ClipTextModel : nn.Module<Tensor, Tensor>
{
    private readonly ClipTextTransformer text_model;

    /// <summary>The configuration.</summary>
    public ClipTextConfig Config { get; }

    /// <summary>Builds a randomly initialised encoder.</summary>
    public ClipTextModel(ClipTextConfig config) : base(nameof(ClipTextModel))
    {
        config.Validate();
        Config = config;
        text_model = new ClipTextTransformer(config);
        RegisterComponents();
        MultiHeadAttention.AssignPaths(this);
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("embedding.weight")) p.normal_(0, 0.02);
            else if (p.dim() >= 2) p.normal_(0, 0.02);
            else if (name.EndsWith("bias")) p.zero_();
        }
    }

    /// <summary>Every attention module with its path (e.g. "text_model.encoder.layers.0.self_attn"), first layer first.</summary>
    public IEnumerable<MultiHeadAttention> AttentionModules => modules().OfType<MultiHeadAttention>();

    /// <summary>Installs a processor on every attention module, chosen per module (as the UNet's).</summary>
    public void SetAttentionProcessor(Func<MultiHeadAttention, IAttentionProcessor> choose)
    {
        foreach (var a in AttentionModules) a.Processor = choose(a);
    }

    /// <summary>Token ids (B, L) → last hidden state (B, L, D).</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return Encode(ids).LastHiddenState.MoveToOuterDisposeScope();
    }

    /// <summary>Token ids (B, L) → hidden states and pooled output.</summary>
    public ClipTextOutput Encode(Tensor ids)
    {
        using var scope = NewDisposeScope();
        if (ids.dim() != 2) throw new ArgumentException($"expected token ids (B, L), got {ids.dim()} dimensions");
        if (ids.shape[1] > Config.MaxPositions) throw new ArgumentException($"sequence of {ids.shape[1]} tokens exceeds MaxPositions {Config.MaxPositions}");
        var hidden = text_model.call(ids);
        // First end token of each row (argmax over a 0/1 match returns the first maximum).
        var eosPos = ids.eq(Config.EndTokenId).to(ScalarType.Int32).argmax(1);
        var pooled = hidden[arange(ids.shape[0]), eosPos];
        return new ClipTextOutput(hidden.MoveToOuterDisposeScope(), pooled.MoveToOuterDisposeScope());
    }
}

internal sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Embedding token_embedding, position_embedding;
    public ClipTextEmbeddings(ClipTextConfig c) : base("embeddings")
    {
        token_embedding = nn.Embedding(c.VocabSize, c.HiddenSize);
        position_embedding = nn.Embedding(c.MaxPositions, c.HiddenSize);
        RegisterComponents();
    }
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var positions = arange(ids.shape[1], dtype: ScalarType.Int64, device: ids.device).unsqueeze(0);
        return (token_embedding.call(ids) + position_embedding.call(positions)).MoveToOuterDisposeScope();
    }
}

// HF CLIPAttention: names the projections (q_proj, k_proj, v_proj, out_proj); the causal attention is MultiHeadAttention's.
internal sealed class ClipAttention : MultiHeadAttention
{
    private readonly Linear q_proj, k_proj, v_proj, out_proj;
    public ClipAttention(ClipTextConfig c) : base("self_attn", c.Heads, isCausal: true)
    {
        q_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        k_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        v_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        out_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        RegisterComponents();
    }
    protected override Tensor ProjectQuery(Tensor x) => q_proj.call(x);
    protected override Tensor ProjectKey(Tensor context) => k_proj.call(context);
    protected override Tensor ProjectValue(Tensor context) => v_proj.call(context);
    protected override Tensor ProjectOutput(Tensor merged) => out_proj.call(merged);
}

internal sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2;
    private readonly bool _quick;
    public ClipMlp(ClipTextConfig c) : base("mlp")
    {
        _quick = c.HiddenAct == "quick_gelu";
        fc1 = nn.Linear(c.HiddenSize, c.IntermediateSize);
        fc2 = nn.Linear(c.IntermediateSize, c.HiddenSize);
        RegisterComponents();
    }
    // OpenAI CLIP's quick GELU x·σ(1.702x), or OpenCLIP's exact GELU.
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = fc1.call(x);
        var a = _quick ? h * (1.702 * h).sigmoid() : nn.functional.gelu(h);
        return fc2.call(a).MoveToOuterDisposeScope();
    }
}

internal sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly ClipAttention self_attn;
    private readonly LayerNorm layer_norm1, layer_norm2;
    private readonly ClipMlp mlp;
    public ClipEncoderLayer(ClipTextConfig c) : base("layer")
    {
        self_attn = new ClipAttention(c);
        layer_norm1 = Layers.LayerNorm(c.HiddenSize, c.LayerNormEps);
        mlp = new ClipMlp(c);
        layer_norm2 = Layers.LayerNorm(c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + self_attn.call(layer_norm1.call(x), null);
        x = x + mlp.call(layer_norm2.call(x));
        return x.MoveToOuterDisposeScope();
    }
}

internal sealed class ClipEncoder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ClipEncoderLayer> layers;
    public ClipEncoder(ClipTextConfig c) : base("encoder")
    {
        layers = new ModuleList<ClipEncoderLayer>();
        for (int i = 0; i < c.Layers; i++) layers.Add(new ClipEncoderLayer(c));
        RegisterComponents();
    }
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        foreach (var l in layers) x = l.call(x);
        return x.MoveToOuterDisposeScope();
    }
}

internal sealed class ClipTextTransformer : nn.Module<Tensor, Tensor>
{
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipEncoder encoder;
    private readonly LayerNorm final_layer_norm;
    public ClipTextTransformer(ClipTextConfig c) : base("text_model")
    {
        embeddings = new ClipTextEmbeddings(c);
        encoder = new ClipEncoder(c);
        final_layer_norm = Layers.LayerNorm(c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return final_layer_norm.call(encoder.call(embeddings.call(ids))).MoveToOuterDisposeScope();
    }
}
