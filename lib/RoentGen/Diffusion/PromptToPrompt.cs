using RoentGen.Nn;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>How an edited prompt's cross-attention maps come from the source prompt's.</summary>
public enum PromptEditKind
{
    /// <summary>Words swapped for others of the same token count: token i of the edit takes the source's map i.</summary>
    Replace,
    /// <summary>Words added or removed: tokens aligned to the source (<see cref="TokenAlignment.Refine"/>) take its maps, new tokens keep their own.</summary>
    Refine,
}

/// <summary>
/// Local blending (prompt-to-prompt §3.2): after each step, the edit's latents are kept only where the chosen words'
/// cross-attention (in the source or in the edit) is strong, and the source's latents are used elsewhere.
/// </summary>
public sealed record LocalBlendOptions
{
    /// <summary>The edited words whose attention maps define the region (looked up in every prompt).</summary>
    public IReadOnlyList<string> Words { get; init; } = [];
    /// <summary>A latent pixel is in the region when its map, divided by the map's maximum, exceeds this (the paper's 0.3).</summary>
    public double Threshold { get; init; } = 0.3;
    /// <summary>Max-pool radius in latent pixels that dilates the maps before thresholding (0: none; the reference uses 1).</summary>
    public int Dilation { get; init; } = 1;
    /// <summary>Blending starts at this fraction of the steps (the reference's start_blend, 0.2).</summary>
    public double StartFraction { get; init; } = 0.2;
}

/// <summary>
/// A prompt-to-prompt edit (Hertz et al. 2022): a source prompt and edited prompts sampled together from one starting
/// latent, with the source's attention injected into the edits.
/// </summary>
public sealed record PromptToPromptOptions
{
    /// <summary>Replace or refine.</summary>
    public PromptEditKind Kind { get; init; } = PromptEditKind.Refine;
    /// <summary>Cross-attention maps are injected for steps below this fraction of the steps (PairAug: 0.5).</summary>
    public double CrossReplaceSteps { get; init; } = 0.5;
    /// <summary>Self-attention maps are injected for steps below this fraction (PairAug: 0.2).</summary>
    public double SelfReplaceSteps { get; init; } = 0.2;
    /// <summary>Self-attention is injected only in layers with at most this many query tokens (the reference's 16×16).</summary>
    public int SelfReplaceMaxTokens { get; init; } = 256;
    /// <summary>Reweighting: each word's tokens' cross-attention in the edits is multiplied by its factor while maps are injected.</summary>
    public IReadOnlyDictionary<string, double>? Reweight { get; init; }
    /// <summary>Local blending, or null for none.</summary>
    public LocalBlendOptions? LocalBlend { get; init; }
    /// <summary>Classifier-free guidance scale (PairAug: 4).</summary>
    public double GuidanceScale { get; init; } = 4;
    /// <summary>DDIM steps (PairAug: 75 for IntraAug).</summary>
    public int Steps { get; init; } = 50;
    /// <summary>Seed of the shared starting latent when none is given.</summary>
    public long Seed { get; init; }
    /// <summary>Keep the per-word cross-attention maps averaged over steps and layers (<see cref="PromptToPromptController.AverageMaps"/>).</summary>
    public bool RecordMaps { get; init; }

    /// <summary>Checks the fractions, steps and guidance.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        ModelSize.InRange(nameof(CrossReplaceSteps), CrossReplaceSteps, 0, 1);
        ModelSize.InRange(nameof(SelfReplaceSteps), SelfReplaceSteps, 0, 1);
        ModelSize.InRange(nameof(Steps), Steps, 1, 10_000);
        ModelSize.InRange(nameof(GuidanceScale), GuidanceScale, 0, SampleRequest.MaxGuidanceScale);
        if (LocalBlend is { } b)
        {
            ModelSize.InRange("LocalBlend.Threshold", b.Threshold, 0, 1);
            ModelSize.InRange("LocalBlend.Dilation", b.Dilation, 0, 64);
            ModelSize.InRange("LocalBlend.StartFraction", b.StartFraction, 0, 1);
            if (b.Words.Count == 0) throw new ArgumentException("LocalBlend.Words is empty: name the edited words whose maps define the region");
        }
    }
}

/// <summary>
/// The prompt-to-prompt attention controller, installed on every attention module of a UNet. The sampled batch holds
/// prompt 0 (the source) and prompts 1..E (the edits) from one starting latent; in the conditional half of the
/// guided batch, edit rows' cross-attention probabilities are taken from the source's (through the
/// <see cref="TokenAlignment"/>, reweighted) for the first <see cref="PromptToPromptOptions.CrossReplaceSteps"/> of
/// the steps, and their self-attention probabilities are the source's for the first
/// <see cref="PromptToPromptOptions.SelfReplaceSteps"/>. The unconditional half is left alone, as in the reference.
/// Outside sampling (no <see cref="SamplingStep"/>) it is plain attention.
/// </summary>
public sealed class PromptToPromptController : IAttentionProcessor
{
    private readonly PromptToPromptOptions _options;
    private readonly Tensor _index;        // (E, L) int64: source position per edit position
    private readonly Tensor _aligned;      // (E, 1, 1, L): 1 where the map is copied
    private readonly Tensor _equalizer;    // (E, 1, 1, L): reweighting factor per edit token
    private readonly Tensor? _blendTokens; // (P, L): 1 on the local-blend words' tokens
    private readonly HashSet<string> _crossLayers = [];
    private readonly HashSet<string> _selfLayers = [];
    private Tensor? _stepMaps;             // (P, L, h, w) sum over this step's cross layers
    private int _stepLayers;
    private Tensor? _allMaps;              // (P, L, h, w) sum over all steps
    private int _allLayers;

    /// <summary>Builds the controller for a source prompt and its edits.</summary>
    /// <param name="tokenizer">The pipeline's tokenizer.</param>
    /// <param name="maxTokens">The pipeline's token sequence length.</param>
    /// <param name="latentSize">Latent side (maps are resized to it for local blending and recording).</param>
    /// <param name="source">Prompt 0.</param>
    /// <param name="edits">Prompts 1..E.</param>
    /// <param name="options">The edit.</param>
    /// <exception cref="ArgumentException">No edits, bad options, or replace with different token counts.</exception>
    public PromptToPromptController(BpeTokenizer tokenizer, int maxTokens, int latentSize, string source, IReadOnlyList<string> edits, PromptToPromptOptions options)
    {
        if (edits.Count == 0) throw new ArgumentException("prompt-to-prompt needs at least one edited prompt", nameof(edits));
        options.Validate();
        _options = options;
        Prompts = [source, .. edits];
        LatentSize = latentSize;
        var alignments = edits.Select(e => options.Kind == PromptEditKind.Replace
            ? TokenAlignment.Replace(tokenizer, source, e, maxTokens)
            : TokenAlignment.Refine(tokenizer, source, e, maxTokens)).ToList();
        Alignments = alignments;
        _index = tensor(alignments.SelectMany(a => a.SourceIndex.Select(i => (long)Math.Max(i, 0))).ToArray(), [edits.Count, maxTokens]).DetachFromDisposeScope();
        _aligned = tensor(alignments.SelectMany(a => a.Aligned).ToArray(), [edits.Count, 1, 1, maxTokens]).DetachFromDisposeScope();
        var eq = new float[edits.Count * maxTokens];
        Array.Fill(eq, 1f);
        if (options.Reweight is { } weights)
            for (int e = 0; e < edits.Count; e++)
                foreach (var (word, factor) in weights)
                    foreach (int p in TokenAlignment.TokensOfWord(tokenizer, edits[e], word, maxTokens))
                        eq[e * maxTokens + p] = (float)factor;
        _equalizer = tensor(eq, [edits.Count, 1, 1, maxTokens]).DetachFromDisposeScope();
        if (options.LocalBlend is { } blend)
        {
            var words = new float[Prompts.Count * maxTokens];
            for (int p = 0; p < Prompts.Count; p++)
                foreach (var w in blend.Words)
                    foreach (int t in TokenAlignment.TokensOfWord(tokenizer, Prompts[p], w, maxTokens))
                        words[p * maxTokens + t] = 1;
            _blendTokens = tensor(words, [Prompts.Count, maxTokens]).DetachFromDisposeScope();
        }
    }

    /// <summary>Source then edits.</summary>
    public IReadOnlyList<string> Prompts { get; }
    /// <summary>Latent side.</summary>
    public int LatentSize { get; }
    /// <summary>The token alignment of each edit.</summary>
    public IReadOnlyList<TokenAlignment> Alignments { get; }
    /// <summary>Paths of the cross-attention modules this controller has handled during sampling.</summary>
    public IReadOnlyCollection<string> CrossAttentionLayers => _crossLayers;
    /// <summary>Paths of the self-attention modules this controller has handled during sampling.</summary>
    public IReadOnlyCollection<string> SelfAttentionLayers => _selfLayers;
    /// <summary>
    /// Called with every sampling call and its conditional-half probabilities after editing (P, heads, Tq, Tk), for
    /// inspection; the tensor lives only during the call.
    /// </summary>
    public Action<AttentionCall, Tensor>? Inspect { get; set; }

    /// <summary>
    /// The cross-attention maps (P, L, latent, latent) averaged over heads, layers and steps, when
    /// <see cref="PromptToPromptOptions.RecordMaps"/> is set; null otherwise or before sampling. Row p, column t is
    /// where prompt p's token t was attended.
    /// </summary>
    public Tensor? AverageMaps => _allMaps is null ? null : _allMaps / Math.Max(_allLayers, 1);

    /// <inheritdoc />
    public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call)
    {
        if (call.Sampling is not { } step) return ScaledDotProductProcessor.Instance.Attend(query, key, value, call);
        int p = Prompts.Count;
        if (step.BatchCount != p)
            throw new InvalidOperationException($"attention '{call.Name}': the prompt-to-prompt controller was built for {p} prompts (source and {p - 1} edits), but the sampled batch has {step.BatchCount}");
        using var scope = NewDisposeScope();
        var probs = ScaledDotProductProcessor.Probabilities(query, key, call);    // (B, heads, Tq, Tk)
        long condStart = step.Guided ? p : 0;
        var cond = probs.narrow(0, condStart, p);                                 // (P, heads, Tq, Tk)
        var source = cond.narrow(0, 0, 1);                                        // (1, heads, Tq, Tk)
        var edits = cond.narrow(0, 1, p - 1);                                     // (E, heads, Tq, Tk)
        if (call.IsCrossAttention)
        {
            _crossLayers.Add(call.Name);
            if (step.Step < (int)(_options.CrossReplaceSteps * step.TotalSteps))
            {
                var fromSource = stack(Enumerable.Range(0, p - 1).Select(e => source[0].index_select(-1, _index[e])), 0);   // (E, heads, Tq, L)
                edits = (fromSource * _aligned + edits * (1 - _aligned)) * _equalizer;
            }
        }
        else
        {
            _selfLayers.Add(call.Name);
            if (step.Step < (int)(_options.SelfReplaceSteps * step.TotalSteps) && query.shape[^2] <= _options.SelfReplaceMaxTokens)
                edits = source.expand(edits.shape);
        }
        var newCond = cat([source, edits], 0);                                    // (P, heads, Tq, Tk)
        if (call.IsCrossAttention) Record(newCond);
        Inspect?.Invoke(call, newCond);
        var all = step.Guided ? cat([probs.narrow(0, 0, p), newCond], 0) : newCond;
        return matmul(all, value).MoveToOuterDisposeScope();                      // (B, heads, Tq, d)
    }

    private void Record(Tensor cond)
    {
        if (_blendTokens is null && !_options.RecordMaps) return;
        long tq = cond.shape[2];
        int side = (int)Math.Round(Math.Sqrt(tq));
        if (side * side != tq) return;
        using var scope = NewDisposeScope();
        var maps = cond.mean([1]).transpose(1, 2).reshape(cond.shape[0], cond.shape[3], side, side);   // (P, L, side, side)
        if (side != LatentSize)
            maps = nn.functional.interpolate(maps, [LatentSize, LatentSize], mode: InterpolationMode.Bilinear, align_corners: false);
        maps = maps.detach().to(ScalarType.Float32);
        if (_blendTokens is not null)
        {
            var sum = _stepMaps is null ? maps : _stepMaps + maps;
            _stepMaps?.Dispose();
            _stepMaps = sum.DetachFromDisposeScope();
            _stepLayers++;
        }
        if (_options.RecordMaps)
        {
            var sum = _allMaps is null ? maps : _allMaps + maps;
            _allMaps?.Dispose();
            _allMaps = sum.DetachFromDisposeScope();
            _allLayers++;
        }
    }

    /// <summary>
    /// Ends a sampling step: with local blending from its start fraction on, the edits' latents (P, C, h, w) outside the
    /// region of the blend words (source's or edit's map above the threshold) are set to the source's; returns the
    /// latents to go on with (the input when there is nothing to do).
    /// </summary>
    public Tensor AfterStep(Tensor latents, int step, int totalSteps)
    {
        var maps = _stepMaps;
        int layers = _stepLayers;
        _stepMaps = null;
        _stepLayers = 0;
        if (maps is null || _options.LocalBlend is not { } blend || layers == 0) { maps?.Dispose(); return latents; }
        using var mapsScope = maps;
        if (step < (int)(blend.StartFraction * totalSteps)) return latents;
        using var scope = NewDisposeScope();
        var words = (maps / layers * _blendTokens!.unsqueeze(-1).unsqueeze(-1)).sum([1], keepdim: true);   // (P, 1, h, w)
        if (blend.Dilation > 0)
            words = nn.functional.max_pool2d(words, 2 * blend.Dilation + 1, stride: 1, padding: blend.Dilation);
        var peak = words.amax([2, 3], keepdim: true).clamp_min(1e-12);
        var mask = words.div(peak).gt(blend.Threshold);                         // (P, 1, h, w)
        var region = mask.narrow(0, 1, mask.shape[0] - 1).logical_or(mask.narrow(0, 0, 1)).to(latents.dtype);   // (E, 1, h, w)
        var src = latents.narrow(0, 0, 1);
        var edited = src + region * (latents.narrow(0, 1, latents.shape[0] - 1) - src);
        return cat([src, edited], 0).MoveToOuterDisposeScope();
    }

    /// <summary>The region mask of the last blended step is not kept; this clears recorded maps (before a new sampling).</summary>
    public void Reset()
    {
        _stepMaps?.Dispose(); _stepMaps = null; _stepLayers = 0;
        _allMaps?.Dispose(); _allMaps = null; _allLayers = 0;
        _crossLayers.Clear(); _selfLayers.Clear();
    }
}
