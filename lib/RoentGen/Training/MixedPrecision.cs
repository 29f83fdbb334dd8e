using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Training;

/// <summary>
/// A bfloat16 compute copy of a float32 module, for mixed-precision training and sampling (TorchSharp 0.107 has no
/// autocast). The float32 module stays the master: the optimizer updates its weights, its optimizer state, EMA and
/// checkpoints are float32. Forward and backward run on the copy: <see cref="PullWeights"/> casts the master's weights
/// into it (once per optimizer step, not once per operation), <see cref="PushGradients"/> adds its gradients, in float32,
/// to the master's. Normalisation layers (GroupNorm, LayerNorm) keep float32 weights in the copy: libtorch normalises a
/// bfloat16 input with float32 statistics and affine parameters and returns bfloat16, so normalisation is computed in
/// float32; softmax inside scaled-dot-product attention accumulates in float32 as well.
/// </summary>
/// <remarks>
/// Why a copy and not casts inside each module: the casts happen once per step for all weights instead of once per
/// layer call in the forward pass and again in the backward pass, the modules stay unchanged (their state-dict keys
/// and attention processors), and the gradient cast is one pass over the parameters. The cost is the copy's memory:
/// half the master's weights.
/// </remarks>
public class BFloat16Shadow
{
    private readonly List<(Parameter Master, Parameter Compute, string Name)> _parameters = new();
    private readonly List<(Tensor Master, Tensor Compute)> _buffers = new();
    private readonly List<string> _float32Layers = new();

    /// <summary>Wraps a float32 master and the copy <paramref name="compute"/> built with the same architecture.</summary>
    /// <param name="master">The float32 module the optimizer trains.</param>
    /// <param name="compute">A freshly built module of the same architecture (its weights are overwritten); it is cast to bfloat16 here.</param>
    /// <exception cref="ArgumentException">The two modules' parameters differ in name or shape; the message names the first.</exception>
    /// <param name="keepFloat32">Which convolutions (by module name) compute in float32; default: all where this machine's
    /// bfloat16 convolutions are wrong, none elsewhere (<see cref="BFloat16Kernels.Repair"/>). For tests.</param>
    public BFloat16Shadow(nn.Module master, nn.Module compute, Func<string, Conv2d, bool>? keepFloat32 = null)
    {
        ArgumentNullException.ThrowIfNull(master);
        ArgumentNullException.ThrowIfNull(compute);
        MasterModule = master;
        ComputeModule = compute;
        compute.to(ScalarType.BFloat16);
        foreach (var (_, m) in compute.named_modules())
            if (m is GroupNorm or LayerNorm) m.to(ScalarType.Float32);   // float32 statistics and affine (see the class summary)
        _float32Layers.AddRange(BFloat16Kernels.Repair(compute, keepFloat32));
        var computeParameters = compute.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in master.named_parameters())
        {
            if (!computeParameters.TryGetValue(name, out var c))
                throw new ArgumentException($"the bfloat16 copy has no parameter '{name}'; expected the master's architecture");
            if (!c.shape.SequenceEqual(p.shape))
                throw new ArgumentException($"parameter '{name}' is [{string.Join(", ", c.shape)}] in the bfloat16 copy but [{string.Join(", ", p.shape)}] in the master");
            _parameters.Add((p, c, name));
        }
        if (_parameters.Count != computeParameters.Count)
            throw new ArgumentException($"the bfloat16 copy has {computeParameters.Count} parameters; the master has {_parameters.Count}");
        var computeBuffers = compute.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        foreach (var (name, b) in master.named_buffers())
            if (computeBuffers.TryGetValue(name, out var c)) _buffers.Add((b, c));
        PullWeights();
    }

    /// <summary>
    /// Convolutions of the copy that compute in float32 (input cast up, output cast back to bfloat16) because this
    /// machine's bfloat16 convolutions gave wrong results (<see cref="BFloat16Kernels"/>); empty where they are right.
    /// </summary>
    public IReadOnlyList<string> Float32Layers => _float32Layers;

    /// <summary>The float32 module (trained, saved).</summary>
    public nn.Module MasterModule { get; }
    /// <summary>The bfloat16 module that computes.</summary>
    public nn.Module ComputeModule { get; }

    /// <summary>
    /// Copies the master's weights and buffers into the copy (cast to its types), with the master's requires-grad flags and
    /// training mode; clears the copy's gradients.
    /// </summary>
    public void PullWeights()
    {
        using var _ = no_grad();
        foreach (var (m, c, _) in _parameters)
        {
            c.copy_(m);
            c.requires_grad = m.requires_grad;
            c.grad = null;
        }
        foreach (var (m, c) in _buffers) c.copy_(m);
        ComputeModule.train(MasterModule.training);
    }

    /// <summary>
    /// Adds the copy's gradients, cast to float32, to the master's (creating them where the master has none), then
    /// clears the copy's. Call after each backward pass on the copy (so gradient accumulation sums in float32).
    /// </summary>
    public void PushGradients()
    {
        using var _ = no_grad();
        foreach (var (m, c, _) in _parameters)
        {
            using var g = c.grad;
            if (g is null) continue;
            var g32 = g.to(m.dtype);
            if (m.grad is { } existing)
            {
                existing.add_(g32);
                existing.Dispose();
                g32.Dispose();
            }
            else
            {
                m.grad = g32;
                g32.Dispose();   // the parameter holds its own reference
            }
            c.grad = null;
        }
    }
}

/// <summary>A <see cref="BFloat16Shadow"/> with its modules typed.</summary>
/// <typeparam name="TModule">The module type.</typeparam>
public sealed class BFloat16Shadow<TModule> : BFloat16Shadow where TModule : nn.Module
{
    /// <summary>
    /// Builds the bfloat16 copy of <paramref name="master"/> with <paramref name="build"/> (a module of the same
    /// architecture; global random state is saved and restored around it, so building the copy changes no random stream).
    /// </summary>
    public BFloat16Shadow(TModule master, Func<TModule> build, Func<string, Conv2d, bool>? keepFloat32 = null) : base(master, BuildQuietly(build), keepFloat32)
    {
        Master = master;
        Compute = (TModule)ComputeModule;
    }

    /// <summary>The float32 module (trained, saved).</summary>
    public TModule Master { get; }
    /// <summary>The bfloat16 module that computes.</summary>
    public TModule Compute { get; }

    private static nn.Module BuildQuietly(Func<TModule> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        var state = torch.random.get_rng_state();
        try { return build(); }
        finally
        {
            torch.random.set_rng_state(state);
            state.Dispose();
        }
    }
}

/// <summary>
/// A check of libtorch's bfloat16 CPU convolutions on this machine, and the float32 fallback where they fail. On an AMD
/// EPYC with AVX-512 BF16 (libtorch 2.10 through TorchSharp 0.107, measured 2026-12-06), bfloat16 convolutions returned
/// wrong values: in 300 random shapes, 85 of 144 with a channel count that is not a multiple of 16 were wrong (the output
/// for 4 -> 8 channels, the input gradient for 8 -> 16, with errors as large as the values) and 1 of 156 with multiples
/// of 16 (the input gradient of a stride-2 48 -> 64 convolution on 8 x 8 pixels); weight gradients were always right, and
/// a shape that passed once could fail at another batch or size. The VAE's loss went NaN within five steps. The same
/// code was right on an Intel Xeon with AVX-512 BF16. So the machine is checked once per process on shapes that failed
/// there, and where any fails, every convolution of a bfloat16 model computes in float32 (linear layers, attention and
/// normalisation are unaffected). The errors came from oneDNN's kernels misled by the 1-byte cache sizes they read on
/// that machine, which <see cref="Platform.OneDnn"/> now repairs (all shapes right then); this check guards any machine
/// where oneDNN is still wrong.
/// </summary>
public static class BFloat16Kernels
{
    /// <summary>Largest tolerated max |bf16 − fp32| relative to max |fp32| (bfloat16 rounding gives about 1 %).</summary>
    public const double Tolerance = 0.05;

    /// <summary>The checked convolutions: in and out channels, kernel, stride, image side, batch (each one failed on the machine above).</summary>
    public static IReadOnlyList<(int In, int Out, int Kernel, int Stride, int Size, int Batch)> CheckedShapes { get; } =
    [
        (4, 8, 3, 1, 16, 2), (8, 4, 3, 1, 16, 2), (8, 32, 3, 1, 8, 2), (1, 8, 1, 1, 32, 4), (16, 1, 3, 1, 32, 2), (48, 64, 3, 2, 8, 2),
    ];

    private static readonly Lazy<bool> Right = new(() => CheckedShapes.All(s => Agrees(s.In, s.Out, s.Kernel, s.Stride, s.Size, s.Batch)));

    /// <summary>
    /// True when every <see cref="CheckedShapes"/> convolution computes the same in bfloat16 as in float32 on this
    /// machine, output and both gradients, within <see cref="Tolerance"/> (checked once per process, in milliseconds).
    /// </summary>
    public static bool ConvolutionsAreRight => Right.Value;

    /// <summary>
    /// Whether a convolution of this shape, run on inputs and weights drawn from a private generator (no global random
    /// stream moves) and rounded to bfloat16, gives the float32 output, input gradient and weight gradient in bfloat16.
    /// </summary>
    public static bool Agrees(int inChannels, int outChannels, int kernel, int stride, int size, int batch)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(seed: 12345);
        var x = randn([batch, inChannels, size, size], generator: generator).to(ScalarType.BFloat16).to(ScalarType.Float32);
        var w = (randn([outChannels, inChannels, kernel, kernel], generator: generator) * 0.2).to(ScalarType.BFloat16).to(ScalarType.Float32);
        var low = Pass(ScalarType.BFloat16);
        var reference = Pass(ScalarType.Float32);
        return low.Zip(reference).All(t => Close(t.First, t.Second));

        Tensor[] Pass(ScalarType type)
        {
            using var _ = enable_grad();
            var xi = x.to(type).requires_grad_(true);
            var wi = w.to(type).requires_grad_(true);
            var y = nn.functional.conv2d(xi, wi, strides: [stride, stride], padding: [kernel / 2, kernel / 2]);
            (y.to(ScalarType.Float32) * arange(y.numel(), dtype: ScalarType.Float32).cos().reshape(y.shape)).sum().backward();
            return [y.to(ScalarType.Float32), xi.grad!.to(ScalarType.Float32), wi.grad!.to(ScalarType.Float32)];
        }

        static bool Close(Tensor a, Tensor b)
        {
            double error = (a - b).abs().max().item<float>(), scale = b.abs().max().item<float>();
            return double.IsFinite(error) && error <= Tolerance * Math.Max(scale, 1e-6);
        }
    }

    /// <summary>
    /// Makes the bfloat16 convolutions of <paramref name="module"/> compute in float32 (<see cref="ComputeInFloat32"/>):
    /// all of them where this machine's bfloat16 convolutions are wrong (<see cref="ConvolutionsAreRight"/>), none
    /// elsewhere, or those <paramref name="keepFloat32"/> names where given. Returns the names of the layers changed.
    /// </summary>
    public static IReadOnlyList<string> Repair(nn.Module module, Func<string, Conv2d, bool>? keepFloat32 = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        var changed = new List<string>();
        foreach (var (name, m) in module.named_modules())
            if (m is Conv2d { weight: { dtype: ScalarType.BFloat16 } } conv && (keepFloat32 is null ? !ConvolutionsAreRight : keepFloat32(name, conv)))
            {
                ComputeInFloat32(conv);
                changed.Add(name);
            }
        return changed;
    }

    /// <summary>
    /// The dtype a module computes in: bfloat16 (or float16) where any of its weights is, else its first weight's. A
    /// bfloat16 model keeps some layers in float32 (normalisation, <see cref="Repair"/>ed convolutions), so its first
    /// weight does not tell.
    /// </summary>
    public static ScalarType ComputeType(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        ScalarType? first = null;
        foreach (var p in module.parameters())
        {
            if (p.dtype is ScalarType.BFloat16 or ScalarType.Float16) return p.dtype;
            first ??= p.dtype;
        }
        return first ?? ScalarType.Float32;
    }

    /// <summary>
    /// Makes <paramref name="conv"/> compute in float32 inside a bfloat16 model: its weights become float32, a pre-hook
    /// casts its input to float32 and a hook casts its output to bfloat16. Gradients flow through the
    /// casts (the weights' gradients are float32).
    /// </summary>
    public static void ComputeInFloat32(Conv2d conv)
    {
        ArgumentNullException.ThrowIfNull(conv);
        conv.to(ScalarType.Float32);
        conv.register_forward_pre_hook((_, input) => input.dtype == ScalarType.Float32 ? input : input.to(ScalarType.Float32));
        conv.register_forward_hook((_, input, output) => output.to(ScalarType.BFloat16));
    }
}
