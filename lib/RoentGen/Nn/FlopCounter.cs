using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Nn;

/// <summary>
/// Counts the multiply-add work of one forward pass: every <see cref="Conv2d"/> and <see cref="Linear"/> call seen
/// through forward hooks (2 FLOPs per multiply-add), plus whatever a model adds through <see cref="Add"/> (e.g. the
/// QKᵀ and AV products of attention, which are not modules). Normalisations, activations and element-wise ops are
/// left out: they are memory-bound and small next to the matrix products. A training step costs about three
/// forward passes (forward, and backward through activations and weights).
/// </summary>
public sealed class FlopCounter : IDisposable
{
    private readonly List<Action> removers = [];
    private long flops;

    /// <summary>Hooks every convolution and linear layer of <paramref name="model"/>.</summary>
    public FlopCounter(nn.Module model)
    {
        foreach (var m in model.modules())
        {
            switch (m)
            {
                case Conv2d conv:
                    var convHook = conv.register_forward_hook((_, _, output) =>
                    {
                        var w = conv.weight!;   // (out, in/groups, kh, kw)
                        Add(2L * output.numel() * w.shape[1] * w.shape[2] * w.shape[3]);
                        return output;
                    });
                    removers.Add(convHook.remove);
                    break;
                case Linear linear:
                    var linearHook = linear.register_forward_hook((_, _, output) =>
                    {
                        Add(2L * output.numel() * linear.weight!.shape[1]);
                        return output;
                    });
                    removers.Add(linearHook.remove);
                    break;
            }
        }
    }

    /// <summary>FLOPs counted so far.</summary>
    public long Flops => Interlocked.Read(ref flops);

    /// <summary>Adds work done outside the hooked layers.</summary>
    public void Add(long flopCount) => Interlocked.Add(ref flops, flopCount);

    /// <summary>Removes the hooks.</summary>
    public void Dispose()
    {
        foreach (var remove in removers) remove();
        removers.Clear();
    }
}
