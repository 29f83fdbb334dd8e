using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Nn;

/// <summary>What a processor is told about the attention call it handles.</summary>
/// <param name="Name">
/// The module's path in its model, e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn2" (UNet),
/// "encoder.layer.3.attention" (ViT), "text_model.encoder.layers.0.self_attn" (text encoder).
/// </param>
/// <param name="IsCrossAttention">True for attention to another sequence (the UNet's attention to the text tokens).</param>
/// <param name="Heads">Number of heads.</param>
/// <param name="Sampling">
/// The sampling step this call belongs to and the guided batch layout of its rows, or null outside sampling
/// (training, a plain forward): <see cref="SamplingStep.Current"/> when the module ran.
/// </param>
/// <param name="IsCausal">True when query i may only see keys 0..i (the text encoder's causal self-attention).</param>
/// <param name="Mask">
/// An additive floating-point mask broadcastable to the scores (B, heads, Tq, Tk) (−∞ where a key must not be seen),
/// or null. Applied together with <paramref name="IsCausal"/> when both are set.
/// </param>
public sealed record AttentionCall(string Name, bool IsCrossAttention, int Heads, SamplingStep? Sampling = null,
    bool IsCausal = false, Tensor? Mask = null);

/// <summary>
/// The attention math of a <see cref="MultiHeadAttention"/> module, swappable at run time (as diffusers'
/// attention processors): the default computes softmax(QKᵀ/√d + mask)V; others capture the probabilities or
/// edit them (prompt-to-prompt).
/// </summary>
public interface IAttentionProcessor
{
    /// <summary>
    /// Attention output (B, heads, Tq, d) from per-head queries (B, heads, Tq, d), keys and values (B, heads, Tk, d).
    /// The causal flag and additive mask of <paramref name="call"/> are the processor's to apply.
    /// </summary>
    Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call);
}

/// <summary>Fused scaled-dot-product attention (libtorch's kernel); keeps no probabilities.</summary>
public sealed class ScaledDotProductProcessor : IAttentionProcessor
{
    /// <summary>The shared instance.</summary>
    public static readonly ScaledDotProductProcessor Instance = new();

    /// <summary>
    /// Largest Tq·Tk (scores per head) for which half-precision attention is computed explicitly rather than by libtorch's
    /// fused kernel. libtorch 2.10's CPU flash-attention kernel in bfloat16 runs its blocks through many small oneDNN
    /// matmuls, each created per call: at the quick UNet's shapes (32 images, 1-2 heads, 256 or 64 tokens, 48 text tokens)
    /// its forward + backward took 2.5-10x as long as the explicit form (bfloat16 matmuls, float32 softmax), which made a
    /// bfloat16 training step barely faster than a float32 one. From about 1,000 tokens on the fused kernel is the faster one
    /// (and the explicit form would hold all the scores), so it keeps those.
    /// </summary>
    public const long ExplicitHalfPrecisionMaxScores = 256 * 256;

    /// <inheritdoc />
    public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call)
    {
        if (query.dtype is ScalarType.BFloat16 or ScalarType.Float16 && query.device_type == DeviceType.CPU
            && query.shape[^2] * key.shape[^2] <= ExplicitHalfPrecisionMaxScores)
            return ExplicitHalfPrecision(query, key, value, call);
        if (call.Mask is null)
            return nn.functional.scaled_dot_product_attention(query, key, value, is_casual: call.IsCausal);
        using var scope = NewDisposeScope();
        var mask = call.IsCausal ? CausalMask(query.shape[^2], key.shape[^2], call.Mask.dtype, query.device) + call.Mask : call.Mask;
        return nn.functional.scaled_dot_product_attention(query, key, value, attn_mask: mask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// softmax(QKᵀ/√d + mask)V with the two products in the inputs' half precision (float32 accumulation inside the
    /// matmuls) and the softmax in float32, cast back before the second product: autocast's recipe.
    /// </summary>
    private static Tensor ExplicitHalfPrecision(Tensor query, Tensor key, Tensor value, AttentionCall call)
    {
        using var scope = NewDisposeScope();
        var scores = matmul(query, key.transpose(-2, -1)).to(ScalarType.Float32).mul_(1.0 / Math.Sqrt(query.shape[^1]));
        if (call.IsCausal) scores = scores + CausalMask(query.shape[^2], key.shape[^2], ScalarType.Float32, scores.device);
        if (call.Mask is not null) scores = scores + call.Mask.to(ScalarType.Float32);
        var probabilities = scores.softmax(-1).to(query.dtype);
        return matmul(probabilities, value).MoveToOuterDisposeScope();
    }

    /// <summary>The explicit attention probabilities softmax(QKᵀ/√d): (B, heads, Tq, Tk).</summary>
    public static Tensor Probabilities(Tensor query, Tensor key) => Probabilities(query, key, causal: false, mask: null);

    /// <summary>
    /// The explicit attention probabilities softmax(QKᵀ/√d + mask) of a call, with its causal flag and additive mask
    /// applied: (B, heads, Tq, Tk). Rows sum to 1; masked keys get 0.
    /// </summary>
    public static Tensor Probabilities(Tensor query, Tensor key, AttentionCall call) =>
        Probabilities(query, key, call.IsCausal, call.Mask);

    private static Tensor Probabilities(Tensor query, Tensor key, bool causal, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var scores = matmul(query, key.transpose(-2, -1)).div(Math.Sqrt(query.shape[^1]));   // (B, heads, Tq, Tk)
        if (causal) scores = scores + CausalMask(query.shape[^2], key.shape[^2], scores.dtype, scores.device);
        if (mask is not null) scores = scores + mask;
        return scores.softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// (Tq, Tk) additive causal mask: 0 where key j ≤ query i, −∞ above the diagonal (aligned top-left, as
    /// libtorch's is_causal).
    /// </summary>
    private static Tensor CausalMask(long tq, long tk, ScalarType dtype, Device device) =>
        zeros(tq, tk, dtype: dtype, device: device).masked_fill(ones(tq, tk, dtype: ScalarType.Bool, device: device).triu(1), double.NegativeInfinity);
}

/// <summary>
/// The one multi-head attention of the library: project queries from the tokens and keys and values from the context
/// (the tokens themselves for self-attention), split heads, let the <see cref="Processor"/> attend, merge heads,
/// project out. The UNet's and VAE's diffusers-named attention, the ViT's Dinov2 attention and the text encoder's CLIP
/// attention derive from it and only name their projections (so their state-dict keys stay those of their checkpoints).
/// </summary>
/// <remarks>
/// Derived classes own their projection modules (as snake_case fields registered with RegisterComponents) and map
/// them in <see cref="ProjectQuery"/>, <see cref="ProjectKey"/>, <see cref="ProjectValue"/> and
/// <see cref="ProjectOutput"/>; none of them computes attention itself. A model sets <see cref="Path"/> of each of its
/// attention modules to the module's name in the model (<see cref="AssignPaths"/>), and processors see it in
/// <see cref="AttentionCall.Name"/>.
/// </remarks>
public abstract class MultiHeadAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private IAttentionProcessor _processor = ScaledDotProductProcessor.Instance;

    /// <summary>Creates the module.</summary>
    /// <param name="name">Module name.</param>
    /// <param name="heads">Heads (the projections' width must be a multiple of it).</param>
    /// <param name="isCrossAttention">True when keys and values come from a context sequence.</param>
    /// <param name="isCausal">True when query i may only see keys 0..i.</param>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than one head.</exception>
    protected MultiHeadAttention(string name, int heads, bool isCrossAttention = false, bool isCausal = false) : base(name)
    {
        if (heads < 1) throw new ArgumentOutOfRangeException(nameof(heads), heads, $"attention '{name}' needs at least one head");
        Heads = heads;
        IsCrossAttention = isCrossAttention;
        IsCausal = isCausal;
    }

    /// <summary>Number of heads.</summary>
    public int Heads { get; }
    /// <summary>True for cross-attention.</summary>
    public bool IsCrossAttention { get; }
    /// <summary>True for causal self-attention.</summary>
    public bool IsCausal { get; }
    /// <summary>
    /// When the tokens are half precision (float16, bfloat16), queries, keys and values are cast to float32 for the
    /// attention itself and the result cast back (diffusers' upcast_attention, which keeps the scores of large heads from
    /// overflowing). No effect in float32.
    /// </summary>
    public bool UpcastAttention { get; init; }
    /// <summary>This module's path in its model (set by the owning model), e.g. "encoder.layer.3.attention".</summary>
    public string Path { get; internal set; } = "";

    /// <summary>The processor doing the attention math (<see cref="ScaledDotProductProcessor"/> by default).</summary>
    /// <exception cref="ArgumentNullException">Set to null.</exception>
    public IAttentionProcessor Processor
    {
        get => _processor;
        set => _processor = value ?? throw new ArgumentNullException(nameof(value), $"attention '{Path}' needs a processor");
    }

    /// <summary>Tokens (B, T, C) and, for cross-attention, context (B, S, C_ctx) → (B, T, C).</summary>
    public override Tensor forward(Tensor x, Tensor? context) => Attend(x, context);

    /// <summary>
    /// Attention of tokens <paramref name="x"/> (B, T, C) to <paramref name="context"/> (B, S, C_ctx), or to themselves
    /// when it is null, with an optional additive <paramref name="mask"/> broadcastable to (B, heads, T, S): (B, T, C).
    /// </summary>
    /// <exception cref="ArgumentException">The tokens are not (B, T, C), or the mask is not a floating-point mask that broadcasts to the scores.</exception>
    public Tensor Attend(Tensor x, Tensor? context = null, Tensor? mask = null)
    {
        using var scope = NewDisposeScope();
        var ctx = context ?? x;
        var call = Describe(x, ctx, mask);
        var q = SplitHeads(ProjectQuery(x), Heads);                         // (B, heads, T, d)
        var k = SplitHeads(ProjectKey(ctx), Heads);                         // (B, heads, S, d)
        var v = SplitHeads(ProjectValue(ctx), Heads);                       // (B, heads, S, d)
        var dtype = q.dtype;
        bool upcast = UpcastAttention && dtype is ScalarType.Float16 or ScalarType.BFloat16;
        if (upcast) { q = q.to(ScalarType.Float32); k = k.to(ScalarType.Float32); v = v.to(ScalarType.Float32); }
        var a = Processor.Attend(q, k, v, call);                            // (B, heads, T, d)
        if (upcast) a = a.to(dtype);
        return ProjectOutput(MergeHeads(a)).MoveToOuterDisposeScope();      // (B, T, C)
    }

    /// <summary>
    /// The attention weights softmax(QKᵀ/√d + mask) this module's default processor uses, with its causal flag:
    /// (B, heads, T, S). The processor is not consulted (a processor that edits probabilities does not show here).
    /// </summary>
    /// <exception cref="ArgumentException">The tokens are not (B, T, C), or the mask does not broadcast to the scores.</exception>
    public Tensor Weights(Tensor x, Tensor? context = null, Tensor? mask = null)
    {
        using var scope = NewDisposeScope();
        var ctx = context ?? x;
        var call = Describe(x, ctx, mask);
        var q = SplitHeads(ProjectQuery(x), Heads);                         // (B, heads, T, d)
        var k = SplitHeads(ProjectKey(ctx), Heads);                         // (B, heads, S, d)
        return ScaledDotProductProcessor.Probabilities(q, k, call).MoveToOuterDisposeScope();
    }

    /// <summary>(B, T, heads·d) → (B, heads, T, d).</summary>
    public static Tensor SplitHeads(Tensor y, int heads) => y.view(y.shape[0], y.shape[1], heads, -1).transpose(1, 2);

    /// <summary>(B, heads, T, d) → (B, T, heads·d).</summary>
    public static Tensor MergeHeads(Tensor a) => a.transpose(1, 2).reshape(a.shape[0], a.shape[2], -1);

    /// <summary>Sets <see cref="Path"/> of every attention module inside <paramref name="model"/> to its name there.</summary>
    public static void AssignPaths(nn.Module model)
    {
        foreach (var (name, module) in model.named_modules())
            if (module is MultiHeadAttention a) a.Path = name;
    }

    /// <summary>Query projection of the tokens: (B, T, C) → (B, T, heads·d).</summary>
    protected abstract Tensor ProjectQuery(Tensor x);
    /// <summary>Key projection of the context: (B, S, C_ctx) → (B, S, heads·d).</summary>
    protected abstract Tensor ProjectKey(Tensor context);
    /// <summary>Value projection of the context: (B, S, C_ctx) → (B, S, heads·d).</summary>
    protected abstract Tensor ProjectValue(Tensor context);
    /// <summary>Output projection of the merged heads: (B, T, heads·d) → (B, T, C).</summary>
    protected abstract Tensor ProjectOutput(Tensor merged);

    private AttentionCall Describe(Tensor x, Tensor ctx, Tensor? mask)
    {
        if (x.dim() != 3)
            throw new ArgumentException($"attention '{Path}': expected tokens (B, T, C), got ({string.Join(", ", x.shape)})", nameof(x));
        if (mask is not null)
        {
            long[] scores = [x.shape[0], Heads, x.shape[1], ctx.shape[1]];
            bool broadcasts = mask.dim() <= 4 && mask.shape.Reverse().Zip(scores.Reverse()).All(p => p.First == 1 || p.First == p.Second);
            if (!mask.is_floating_point() || !broadcasts)
                throw new ArgumentException($"attention '{Path}': expected an additive floating-point mask broadcastable to the scores ({string.Join(", ", scores)}), got {mask.dtype} ({string.Join(", ", mask.shape)})", nameof(mask));
        }
        return new AttentionCall(Path, IsCrossAttention, Heads, SamplingStep.Current, IsCausal, mask);
    }
}
