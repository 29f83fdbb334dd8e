using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Nn;

#pragma warning disable IDE1006 // snake_case fields keep PEFT's lora_A / lora_B state-dict names

/// <summary>
/// Which layers of a model get low-rank adapters (LoRA, Hu et al. 2021), and their rank and alpha. The defaults are the
/// attention projections of a Stable Diffusion UNet's transformer blocks (to_q, to_k, to_v, to_out.0 of the
/// self-attention attn1 and the cross-attention attn2), as diffusers' LoRA training scripts adapt them; dropout is 0.
/// </summary>
public sealed record LoraConfig
{
    /// <summary>The attention projections adapted by default (suffixes of module paths).</summary>
    public static readonly IReadOnlyList<string> AttentionProjections =
    [
        "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
        "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0",
    ];

    /// <summary>The spatial transformers' input and output projections (Linear in SD 2.x, 1x1 convolutions in SD 1.x).</summary>
    public static readonly IReadOnlyList<string> TransformerProjections = ["proj_in", "proj_out"];

    /// <summary>Rank r of each adapter (the inner width of B·A).</summary>
    public int Rank { get; init; } = 4;
    /// <summary>Alpha: the update is scaled by alpha / r. Null: alpha = r (scale 1, the convention of diffusers' training scripts).</summary>
    public double? Alpha { get; init; }
    /// <summary>Also adapt the transformers' proj_in / proj_out (off by default).</summary>
    public bool IncludeProjections { get; init; }

    /// <summary>The alpha actually used (<see cref="Alpha"/>, else the rank).</summary>
    public double EffectiveAlpha => Alpha ?? Rank;

    /// <summary>Module-path suffixes that get an adapter.</summary>
    public IReadOnlyList<string> Targets => IncludeProjections ? [.. AttentionProjections, .. TransformerProjections] : AttentionProjections;

    /// <summary>Checks the rank (1 to 4096) and alpha (finite, positive).</summary>
    /// <exception cref="ArgumentException">Out of range; the message names the field.</exception>
    public void Validate()
    {
        ModelSize.InRange(nameof(Rank), Rank, 1, 4096);
        if (Alpha is double a && !(double.IsFinite(a) && a > 0)) throw new ArgumentException($"Alpha must be a positive finite number (or null for alpha = rank), got {a}");
    }
}

/// <summary>Where one adapter goes and its size: a module path, the rank and the alpha.</summary>
/// <param name="Path">The adapted module's path in the model (e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q").</param>
/// <param name="Rank">Rank r.</param>
/// <param name="Alpha">Alpha; the update is scaled by alpha / r.</param>
public sealed record LoraTarget(string Path, int Rank, double Alpha);

/// <summary>
/// One low-rank adapter: down-projection A (r × in) then up-projection B (out × r), as Linear layers (or 1x1 convolutions
/// for a 1x1-convolution base), without biases. The adapted layer computes W x + (alpha / r) B A x. B starts at zero, so
/// an adapter changes nothing until it is trained; A starts as PyTorch's Linear (Kaiming-uniform), as PEFT's default.
/// </summary>
public sealed class LoraLayer : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> lora_A, lora_B;

    /// <summary>Creates the adapter of a layer with <paramref name="inFeatures"/> inputs and <paramref name="outFeatures"/> outputs.</summary>
    /// <param name="inFeatures">Input width (channels for a convolution).</param>
    /// <param name="outFeatures">Output width.</param>
    /// <param name="rank">Rank r.</param>
    /// <param name="alpha">Alpha (scale alpha / r).</param>
    /// <param name="convolution">The base is a 1x1 convolution on (B, C, H, W) maps rather than a Linear on (…, C) tokens.</param>
    public LoraLayer(long inFeatures, long outFeatures, int rank, double alpha, bool convolution) : base(nameof(LoraLayer))
    {
        if (rank < 1) throw new ArgumentException($"LoRA rank must be at least 1, got {rank}", nameof(rank));
        if (!(double.IsFinite(alpha) && alpha > 0)) throw new ArgumentException($"LoRA alpha must be positive and finite, got {alpha}", nameof(alpha));
        InFeatures = inFeatures; OutFeatures = outFeatures; Rank = rank; Alpha = alpha; IsConvolution = convolution;
        lora_A = convolution ? nn.Conv2d(inFeatures, rank, 1, bias: false) : nn.Linear(inFeatures, rank, hasBias: false);
        lora_B = convolution ? nn.Conv2d(rank, outFeatures, 1, bias: false) : nn.Linear(rank, outFeatures, hasBias: false);
        RegisterComponents();
        using var _ = no_grad();
        Up.zero_();
    }

    /// <summary>Input width.</summary>
    public long InFeatures { get; }
    /// <summary>Output width.</summary>
    public long OutFeatures { get; }
    /// <summary>Rank r.</summary>
    public int Rank { get; }
    /// <summary>Alpha.</summary>
    public double Alpha { get; }
    /// <summary>alpha / r: the factor on B A x.</summary>
    public double Scale => Alpha / Rank;
    /// <summary>Whether the base is a 1x1 convolution.</summary>
    public bool IsConvolution { get; }

    /// <summary>A's weight: (r, in), or (r, in, 1, 1) for a convolution.</summary>
    public Parameter Down => lora_A.parameters().Single();
    /// <summary>B's weight: (out, r), or (out, r, 1, 1) for a convolution.</summary>
    public Parameter Up => lora_B.parameters().Single();

    /// <summary>B A x, unscaled.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return lora_B.call(lora_A.call(x)).MoveToOuterDisposeScope();
    }

    /// <summary>The change of the base weight: (alpha / r) B A, in the base weight's shape ((out, in) or (out, in, 1, 1)).</summary>
    public Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        var b = Up.detach().reshape(OutFeatures, Rank);
        var a = Down.detach().reshape(Rank, InFeatures);
        var delta = b.matmul(a).mul(Scale);                                   // (out, in)
        return (IsConvolution ? delta.reshape(OutFeatures, InFeatures, 1, 1) : delta).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Low-rank adapters attached to named Linear (or 1x1-convolution) layers of a model, through forward hooks, so the model's
/// own code is unchanged: each adapted layer returns W x + (alpha / r) B A x. Attaching freezes every parameter of the
/// model (only the adapters train). The adapters are this module's parameters; its state dict holds each layer's
/// <c>lora_A.weight</c> and <c>lora_B.weight</c> under the layer's path with dots as underscores (for checkpoints; the
/// files diffusers and others read are written by <c>RoentGen.Interop.Diffusers.LoraFile</c>).
/// <see cref="Merge"/> adds the updates into the base weights (and the hooks then add nothing); <see cref="Unmerge"/>
/// takes them out again. <see cref="Detach"/> (or disposing) removes the hooks.
/// </summary>
public sealed class LoraAdapter : nn.Module
{
    private readonly Dictionary<string, LoraLayer> _layers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, nn.Module<Tensor, Tensor>> _bases = new(StringComparer.Ordinal);
    private readonly List<Action> _removeHooks = [];

    private LoraAdapter() : base(nameof(LoraAdapter)) { }

    /// <summary>Adapted module path → its adapter, in the model's module order.</summary>
    public IReadOnlyDictionary<string, LoraLayer> Layers => _layers;
    /// <summary>True while the updates are merged into the base weights.</summary>
    public bool IsMerged { get; private set; }
    /// <summary>True once the hooks are removed (<see cref="Detach"/>).</summary>
    public bool IsDetached { get; private set; }

    /// <summary>
    /// Every module of <paramref name="model"/> that can carry an adapter: Linear layers and 1x1 convolutions (without
    /// groups), by path.
    /// </summary>
    public static IReadOnlyDictionary<string, nn.Module<Tensor, Tensor>> Adaptable(nn.Module model)
    {
        var result = new Dictionary<string, nn.Module<Tensor, Tensor>>(StringComparer.Ordinal);
        foreach (var (name, m) in model.named_modules())
        {
            if (m is Linear linear && linear.weight is not null) result[name] = linear;
            else if (m is Conv2d conv && conv.weight is { } w && w.shape[2] == 1 && w.shape[3] == 1) result[name] = conv;
        }
        return result;
    }

    /// <summary>The paths of <paramref name="model"/>'s adaptable modules that end with one of the config's targets.</summary>
    public static IReadOnlyList<string> TargetPaths(nn.Module model, LoraConfig config) =>
        Adaptable(model).Keys.Where(p => config.Targets.Any(t => p == t || p.EndsWith("." + t, StringComparison.Ordinal))).ToList();

    /// <summary>Attaches fresh adapters (B = 0) to the config's targets in <paramref name="model"/> and freezes the model.</summary>
    /// <exception cref="ArgumentException">The config is out of range, or no module of the model matches its targets.</exception>
    public static LoraAdapter Attach(nn.Module model, LoraConfig config)
    {
        config.Validate();
        var paths = TargetPaths(model, config);
        if (paths.Count == 0)
            throw new ArgumentException($"no Linear or 1x1-convolution module of the model ends with one of the LoRA targets ({string.Join(", ", config.Targets)})");
        return Attach(model, paths.Select(p => new LoraTarget(p, config.Rank, config.EffectiveAlpha)));
    }

    /// <summary>Attaches fresh adapters (B = 0) at the given paths, each with its own rank and alpha, and freezes the model.</summary>
    /// <exception cref="ArgumentException">A path is not an adaptable module of the model (the message lists them all), or is given twice.</exception>
    public static LoraAdapter Attach(nn.Module model, IEnumerable<LoraTarget> targets)
    {
        var adaptable = Adaptable(model);
        var list = targets.ToList();
        var bad = list.Where(t => !adaptable.ContainsKey(t.Path)).Select(t => t.Path).ToList();
        if (bad.Count > 0)
            throw new ArgumentException($"{bad.Count} LoRA target(s) are not Linear or 1x1-convolution modules of the model: {string.Join(", ", bad)}");
        var twice = list.GroupBy(t => t.Path).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (twice.Count > 0) throw new ArgumentException($"LoRA targets given more than once: {string.Join(", ", twice)}");

        var adapter = new LoraAdapter();
        foreach (var p in model.parameters()) p.requires_grad = false;
        // In the model's module order, so the state dict and the files list layers the way the model does.
        var order = adaptable.Keys.Select((k, i) => (k, i)).ToDictionary(x => x.k, x => x.i);
        foreach (var t in list.OrderBy(t => order[t.Path]))
        {
            var baseModule = adaptable[t.Path];
            var w = baseModule is Linear l ? l.weight! : ((Conv2d)baseModule).weight!;
            var layer = new LoraLayer(w.shape[1], w.shape[0], t.Rank, t.Alpha, baseModule is Conv2d);
            adapter.register_module(ModuleName(t.Path), layer);
            adapter._layers[t.Path] = layer;
            adapter._bases[t.Path] = baseModule;
        }
        foreach (var (path, baseModule) in adapter._bases)
        {
            var layer = adapter._layers[path];
            var hook = baseModule.register_forward_hook((_, input, output) => adapter.IsMerged ? output : output + Update(layer, input, output.dtype));
            adapter._removeHooks.Add(hook.remove);
        }
        return adapter;
    }

    /// <summary>The name of an adapted path inside this module's state dict (dots become underscores).</summary>
    public static string ModuleName(string path) => path.Replace('.', '_');

    /// <summary>Adds every update (alpha / r) B A into its base weight; the hooks then add nothing.</summary>
    /// <exception cref="InvalidOperationException">Already merged, or detached.</exception>
    public void Merge()
    {
        if (IsMerged) throw new InvalidOperationException("the LoRA adapters are already merged into the base weights");
        if (IsDetached) throw new InvalidOperationException("the LoRA adapters are detached from the model");
        ChangeBaseWeights(+1);
        IsMerged = true;
    }

    /// <summary>Subtracts every update from its base weight again (the hooks add it once more).</summary>
    /// <exception cref="InvalidOperationException">Not merged.</exception>
    public void Unmerge()
    {
        if (!IsMerged) throw new InvalidOperationException("the LoRA adapters are not merged into the base weights");
        ChangeBaseWeights(-1);
        IsMerged = false;
    }

    /// <summary>Removes the hooks: the model computes its base layers only (merged updates stay in the weights).</summary>
    public void Detach()
    {
        foreach (var remove in _removeHooks) remove();
        _removeHooks.Clear();
        IsDetached = true;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && !IsDetached) Detach();
        base.Dispose(disposing);
    }

    private void ChangeBaseWeights(int sign)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (path, layer) in _layers)
        {
            var w = _bases[path] is Linear l ? l.weight! : ((Conv2d)_bases[path]).weight!;
            var delta = layer.DeltaWeight().to(w.dtype);
            if (sign > 0) w.add_(delta); else w.sub_(delta);
        }
    }

    // (alpha / r) B A x in the adapter's dtype, returned in the base output's dtype.
    private static Tensor Update(LoraLayer layer, Tensor input, ScalarType outputType)
    {
        using var scope = NewDisposeScope();
        var dtype = layer.Down.dtype;
        var x = input.dtype == dtype ? input : input.to(dtype);
        var u = layer.call(x).mul(layer.Scale);
        return (u.dtype == outputType ? u : u.to(outputType)).MoveToOuterDisposeScope();
    }
}
