using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>
/// Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window (σ 1.5), and its multi-scale
/// version (Wang, Simoncelli and Bovik 2003). Differentiable, so SSIM also serves as a training loss.
/// </summary>
public static class Ssim
{
    /// <summary>MS-SSIM's per-scale weights from the paper (5 scales).</summary>
    public static readonly double[] MsSsimWeights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

    /// <summary>Mean SSIM per image: (B, C, H, W) pairs in [0, dataRange] → (B).</summary>
    public static Tensor Compute(Tensor x, Tensor y, double dataRange = 1.0, int window = 11, double sigma = 1.5)
    {
        using var scope = NewDisposeScope();
        var (ssimMap, _) = Maps(x, y, dataRange, window, sigma);
        return ssimMap.mean([1, 2, 3]).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// MS-SSIM per image: (B, C, H, W) → (B). Uses as many of the 5 scales as the image size allows (each scale
    /// halves the image and needs at least the window), with the paper's weights renormalised over those used.
    /// </summary>
    public static Tensor MultiScale(Tensor x, Tensor y, double dataRange = 1.0, int window = 11, double sigma = 1.5)
    {
        using var scope = NewDisposeScope();
        long side = Math.Min(x.shape[2], x.shape[3]);
        int scales = 1;
        while (scales < 5 && (side >> scales) >= window) scales++;
        var weights = MsSsimWeights.Take(scales).ToArray();
        double wsum = weights.Sum();
        Tensor result = ones(x.shape[0], dtype: x.dtype);
        for (int s = 0; s < scales; s++)
        {
            var (ssimMap, csMap) = Maps(x, y, dataRange, window, sigma);
            double w = weights[s] / wsum;
            // Contrast-structure at every scale but the coarsest, full SSIM at the coarsest (negative values clamped).
            var term = (s == scales - 1 ? ssimMap : csMap).mean([1, 2, 3]).clamp_min(1e-6);
            result = result * term.pow(w);
            if (s < scales - 1)
            {
                x = nn.functional.avg_pool2d(x, 2);
                y = nn.functional.avg_pool2d(y, 2);
            }
        }
        return result.MoveToOuterDisposeScope();
    }

    private static (Tensor Ssim, Tensor Cs) Maps(Tensor x, Tensor y, double dataRange, int window, double sigma)
    {
        if (!x.shape.SequenceEqual(y.shape)) throw new ArgumentException($"SSIM needs equal shapes, got ({string.Join(", ", x.shape)}) and ({string.Join(", ", y.shape)})");
        if (x.dim() != 4) throw new ArgumentException($"SSIM expects (B, C, H, W), got {x.dim()} dimensions");
        if (x.shape[2] < window || x.shape[3] < window) throw new ArgumentException($"images of {x.shape[2]}x{x.shape[3]} are smaller than the {window}-pixel window");
        long c = x.shape[1];
        var g = Gaussian(window, sigma, x.dtype, x.device);                           // (window)
        var k = (g.unsqueeze(1) * g.unsqueeze(0)).expand(c, 1, window, window);       // (C, 1, w, w) depthwise
        Tensor Blur(Tensor t) => nn.functional.conv2d(t, k, groups: c);
        double c1 = Math.Pow(0.01 * dataRange, 2), c2 = Math.Pow(0.03 * dataRange, 2);
        var mx = Blur(x); var my = Blur(y);
        var sxx = Blur(x * x) - mx * mx;
        var syy = Blur(y * y) - my * my;
        var sxy = Blur(x * y) - mx * my;
        var cs = (2 * sxy + c2) / (sxx + syy + c2);
        var ssim = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs;
        return (ssim, cs);
    }

    private static Tensor Gaussian(int size, double sigma, ScalarType dtype, Device device)
    {
        var coords = arange(size, dtype: ScalarType.Float64) - (size - 1) / 2.0;
        var g = (-(coords * coords) / (2 * sigma * sigma)).exp();
        return (g / g.sum()).to(dtype).to(device);
    }
}
