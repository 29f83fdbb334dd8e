using RoentGen.Data;

namespace RoentGen.Synthetic;

/// <summary>
/// A generator that draws a radiograph from a <see cref="MaskCondition"/>: its masks (lungs, heart, one per finding), and
/// its report as the text prompt. Implemented by the mask-conditioned latent diffusion models (ControlNet-style and
/// input-concat); the synthetic-data study calls it for its mask-conditioned arms without knowing which one it is.
/// </summary>
public interface IMaskConditionedGenerator
{
    /// <summary>Image side in pixels of what <see cref="Generate"/> returns.</summary>
    int ImageSize { get; }

    /// <summary>The mask names the generator reads, in channel order (a condition lacking one gets an empty channel).</summary>
    IReadOnlyList<string> MaskChannels { get; }

    /// <summary>
    /// One image per condition, in order, each <see cref="ImageSize"/> square with values in [0, 1]. Image i depends only on
    /// condition i and <paramref name="seed"/> + i, so a result does not depend on how the conditions are batched.
    /// </summary>
    /// <param name="conditions">Masks and reports; masks of another size are resized.</param>
    /// <param name="seed">Seed of the first image's starting noise.</param>
    /// <param name="progress">Called with (done, total) images, or null.</param>
    IReadOnlyList<GrayImage> Generate(IReadOnlyList<MaskCondition> conditions, long seed, Action<int, int>? progress = null);
}
