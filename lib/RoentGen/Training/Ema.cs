using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Training;

/// <summary>
/// Exponential moving average of a module's floating-point parameters and buffers: shadow ← d·shadow + (1 − d)·θ.
/// Used for EMA weights of the diffusion model and, as <see cref="UpdateModule"/>, for the DINO teacher.
/// </summary>
public sealed class Ema : IDisposable
{
    private readonly Dictionary<string, Tensor> _shadow = new();

    /// <summary>Starts the average at the module's current weights.</summary>
    public Ema(nn.Module module)
    {
        using var _ = no_grad();
        foreach (var (name, t) in module.state_dict())
            if (t.is_floating_point()) _shadow[name] = t.detach().clone().DetachFromDisposeScope();
    }

    /// <summary>The averaged tensors by state-dict key.</summary>
    public IReadOnlyDictionary<string, Tensor> State => _shadow;

    /// <summary>Moves the average towards the module's weights.</summary>
    public void Update(nn.Module module, double decay)
    {
        using var _ = no_grad();
        // Scalars made once and held to the end (a collected implicit scalar can fail a native call: ScalarSafe.AdamW).
        using var keep = decay.ToScalar();
        using var take = (1 - decay).ToScalar();
        foreach (var (name, t) in module.state_dict())
            if (_shadow.TryGetValue(name, out var s)) s.mul_(keep).add_(t.detach(), alpha: take);
    }

    /// <summary>Copies the average into a module (for evaluation or sampling).</summary>
    public void CopyTo(nn.Module module)
    {
        using var _ = no_grad();
        foreach (var (name, t) in module.state_dict())
            if (_shadow.TryGetValue(name, out var s)) t.copy_(s);
    }

    /// <summary>Replaces the average with saved tensors (same keys and shapes).</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> saved)
    {
        using var _ = no_grad();
        foreach (var (name, s) in _shadow)
        {
            if (!saved.TryGetValue(name, out var t)) throw new InvalidDataException($"EMA state lacks '{name}'");
            if (!t.shape.SequenceEqual(s.shape)) throw new InvalidDataException($"EMA state '{name}' has shape [{string.Join(", ", t.shape)}], expected [{string.Join(", ", s.shape)}]");
            s.copy_(t);
        }
    }

    /// <summary>teacher ← m·teacher + (1 − m)·student, parameter by parameter (the two modules share a structure).</summary>
    public static void UpdateModule(nn.Module teacher, nn.Module student, double momentum)
    {
        using var _ = no_grad();
        using var keep = momentum.ToScalar();
        using var take = (1 - momentum).ToScalar();
        var studentParams = student.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, tp) in teacher.named_parameters())
        {
            if (!studentParams.TryGetValue(name, out var sp)) throw new ArgumentException($"student has no parameter '{name}'");
            tp.mul_(keep).add_(sp.detach(), alpha: take);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _shadow.Values) t.Dispose();
        _shadow.Clear();
    }
}
