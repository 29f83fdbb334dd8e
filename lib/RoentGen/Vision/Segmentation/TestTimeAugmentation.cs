using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Vision.Segmentation;

/// <summary>
/// Test-time augmentation for a <see cref="Segmenter"/>: the image is segmented at several zooms (a subset of the
/// training randomisation's zoom range, <see cref="DomainRandomization.MinZoom"/> to <see cref="DomainRandomization.MaxZoom"/>),
/// each probability map is warped back to the original frame, and the maps are averaged where they cover it (nnU-Net's
/// mirroring TTA, Isensee et al. 2021, is the same idea with flips; flips are left out here because a mirrored chest
/// puts the heart on the wrong side, which training never shows). Photometric transforms are left out too: the
/// default input normalisation equalises the histogram, which undoes any monotonic intensity change.
/// </summary>
public sealed record TestTimeAugmentation
{
    /// <summary>Zoom factors (&gt; 1 zooms in): each one is a forward pass. The default set is symmetric around 1 in log scale.</summary>
    public IReadOnlyList<double> Zooms { get; init; } = [0.9, 1.0, 1.0 / 0.9];

    /// <summary>Checks the zooms: at least one, each finite and in (0.25, 4).</summary>
    /// <exception cref="ArgumentException">The message names the bad zoom.</exception>
    public void Validate()
    {
        if (Zooms is null || Zooms.Count == 0) throw new ArgumentException("TestTimeAugmentation.Zooms: give at least one zoom (1 = the image as it is)");
        foreach (var z in Zooms)
            if (!(z > 0.25 && z < 4)) throw new ArgumentException($"TestTimeAugmentation.Zooms: {z} is not a zoom in (0.25, 4)");
    }

    /// <summary>
    /// Averaged sigmoid probabilities (B, C, S, S) of <paramref name="logits"/> over the zooms, each warped back to the
    /// input's frame; pixels that a zoom does not see (the border when zooming in) take the mean of the zooms that do.
    /// </summary>
    /// <param name="images">(B, 1, S, S) images.</param>
    /// <param name="logits">The network call (images to logits).</param>
    public Tensor Probabilities(Tensor images, Func<Tensor, Tensor> logits)
    {
        Validate();
        using var scope = NewDisposeScope();
        long b = images.shape[0], s = images.shape[2];
        Tensor? sum = null, weight = null;
        foreach (var zoom in Zooms)
        {
            Tensor p, w;
            if (zoom == 1.0)
            {
                p = logits(images).sigmoid();
                w = ones_like(p);
            }
            else
            {
                // Sample the input at x / zoom (zoom > 1 shows the centre larger), then read the prediction back at x * zoom.
                var forward = nn.functional.affine_grid(Theta(1.0 / zoom, b), [b, 1, s, s], align_corners: false);
                var zoomed = nn.functional.grid_sample(images, forward, mode: GridSampleMode.Bilinear, padding_mode: GridSamplePaddingMode.Border, align_corners: false);
                var q = logits(zoomed).sigmoid();
                var back = nn.functional.affine_grid(Theta(zoom, b), [b, q.shape[1], s, s], align_corners: false);
                p = nn.functional.grid_sample(q, back, mode: GridSampleMode.Bilinear, padding_mode: GridSamplePaddingMode.Zeros, align_corners: false);
                w = nn.functional.grid_sample(ones_like(q), back, mode: GridSampleMode.Bilinear, padding_mode: GridSamplePaddingMode.Zeros, align_corners: false);
            }
            sum = sum is null ? p * w : sum + p * w;
            weight = weight is null ? w : weight + w;
        }
        return (sum! / weight!.clamp_min(1e-6)).MoveToOuterDisposeScope();
    }

    private static Tensor Theta(double scale, long batch) =>
        tensor(new float[] { (float)scale, 0, 0, 0, (float)scale, 0 }, [1, 2, 3]).expand(batch, 2, 3).contiguous();
}
