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

    /// <summary>Wraps a float32 master and the copy <paramref name="compute"/> built with the same architecture.</summary>
    /// <param name="master">The float32 module the optimizer trains.</param>
    /// <param name="compute">A freshly built module of the same architecture (its weights are overwritten); it is cast to bfloat16 here.</param>
    /// <exception cref="ArgumentException">The two modules' parameters differ in name or shape; the message names the first.</exception>
    public BFloat16Shadow(nn.Module master, nn.Module compute)
    {
        ArgumentNullException.ThrowIfNull(master);
        ArgumentNullException.ThrowIfNull(compute);
        MasterModule = master;
        ComputeModule = compute;
        compute.to(ScalarType.BFloat16);
        foreach (var (_, m) in compute.named_modules())
            if (m is GroupNorm or LayerNorm) m.to(ScalarType.Float32);   // float32 statistics and affine (see the class summary)
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
    public BFloat16Shadow(TModule master, Func<TModule> build) : base(master, BuildQuietly(build))
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
