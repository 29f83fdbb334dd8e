using TorchSharp;
using TorchSharp.Modules;

namespace RoentGen.Nn;

/// <summary>
/// Factories for TorchSharp layers that need fixing up before use. Every model in the library builds
/// its normalisation layers through these.
/// </summary>
public static class Layers
{
    /// <summary>
    /// A GroupNorm whose affine weight starts at 1 and bias at 0. TorchSharp 0.107 creates them with
    /// torch.empty and never initialises them (garbage, then NaN losses; see PLATFORM.md).
    /// </summary>
    /// <param name="numGroups">Groups; must divide <paramref name="numChannels"/>.</param>
    /// <param name="numChannels">Channels.</param>
    /// <param name="eps">Numerical epsilon.</param>
    /// <param name="affine">Whether the layer has a learnable weight and bias.</param>
    /// <exception cref="ArgumentException">The group count does not divide the channel count.</exception>
    public static GroupNorm GroupNorm(long numGroups, long numChannels, double eps = 1e-5, bool affine = true)
    {
        if (numGroups <= 0 || numChannels % numGroups != 0)
            throw new ArgumentException($"GroupNorm: {numGroups} groups do not divide {numChannels} channels");
        var norm = torch.nn.GroupNorm(numGroups, numChannels, eps, affine);
        ResetAffine(norm.weight, norm.bias);
        return norm;
    }

    /// <summary>A LayerNorm with weight 1 and bias 0 (set explicitly, whatever the TorchSharp default).</summary>
    public static LayerNorm LayerNorm(long normalizedShape, double eps = 1e-5)
    {
        var norm = torch.nn.LayerNorm(normalizedShape, eps);
        ResetAffine(norm.weight, norm.bias);
        return norm;
    }

    private static void ResetAffine(Parameter? weight, Parameter? bias)
    {
        using var _ = torch.no_grad();
        weight?.fill_(1.0);
        bias?.zero_();
    }
}

/// <summary>Weight initialisers (written out because TorchSharp 0.107's trunc_normal_ returned constant tensors here).</summary>
public static class Init
{
    /// <summary>
    /// Fills in place with a normal(0, std) truncated to ±2·std (resampling by clamping the rare tails),
    /// as ViT and DINOv2 initialise their weights.
    /// </summary>
    public static void TruncatedNormal(torch.Tensor tensor, double std)
    {
        using var _ = torch.no_grad();
        tensor.normal_(0, std).clamp_(-2 * std, 2 * std);
    }
}
