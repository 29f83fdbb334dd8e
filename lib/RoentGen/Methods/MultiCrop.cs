using RoentGen.Data;
using RoentGen.Data.Datasets;
using static TorchSharp.torch;

namespace RoentGen.Methods;

/// <summary>
/// Multi-crop settings (Caron et al. 2021; Oquab et al. 2023) adapted to chest X-rays as in RAD-DINO
/// (Pérez-García et al. 2025): no colour jitter and no horizontal flip (laterality matters); intensity,
/// contrast and gamma jitter stand in for colour jitter. Blur sigmas are in output pixels.
/// </summary>
public sealed record MultiCropOptions
{
    /// <summary>Side of the two global crops.</summary>
    public int GlobalSize { get; init; } = 64;
    /// <summary>Side of the local crops.</summary>
    public int LocalSize { get; init; } = 32;
    /// <summary>Number of local crops (0 for none).</summary>
    public int LocalCrops { get; init; } = 6;
    /// <summary>Smallest area fraction of a global crop.</summary>
    public double GlobalScaleMin { get; init; } = 0.32;
    /// <summary>Largest area fraction of a global crop.</summary>
    public double GlobalScaleMax { get; init; } = 1.0;
    /// <summary>Smallest area fraction of a local crop.</summary>
    public double LocalScaleMin { get; init; } = 0.05;
    /// <summary>Largest area fraction of a local crop.</summary>
    public double LocalScaleMax { get; init; } = 0.32;
    /// <summary>Chance of the intensity, contrast and gamma jitter (DINOv2's colour-jitter probability).</summary>
    public double JitterProbability { get; init; } = 0.8;
    /// <summary>Largest brightness offset (intensities are in [0, 1]).</summary>
    public double Brightness { get; init; } = 0.2;
    /// <summary>Largest relative contrast change about the crop's mean.</summary>
    public double Contrast { get; init; } = 0.2;
    /// <summary>Smallest gamma exponent (log-uniform).</summary>
    public double GammaMin { get; init; } = 0.7;
    /// <summary>Largest gamma exponent (log-uniform).</summary>
    public double GammaMax { get; init; } = 1.4;
    /// <summary>Smallest blur sigma in output pixels.</summary>
    public double BlurSigmaMin { get; init; } = 0.1;
    /// <summary>Largest blur sigma in output pixels.</summary>
    public double BlurSigmaMax { get; init; } = 1.5;
    /// <summary>Blur chance of the first global crop (1.0 in DINOv2).</summary>
    public double FirstGlobalBlurProbability { get; init; } = 1.0;
    /// <summary>Blur chance of the second global crop (0.1 in DINOv2).</summary>
    public double SecondGlobalBlurProbability { get; init; } = 0.1;
    /// <summary>Blur chance of each local crop (0.5 in DINOv2).</summary>
    public double LocalBlurProbability { get; init; } = 0.5;
    /// <summary>Solarization chance of the second global crop (DINOv2 uses 0.2; 0 turns it off).</summary>
    public double SolarizeProbability { get; init; } = 0.2;
    /// <summary>Intensities at or above this are inverted by solarization.</summary>
    public double SolarizeThreshold { get; init; } = 0.5;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public void Validate()
    {
        if (GlobalSize < 1 || LocalSize < 1) throw new ArgumentException($"crop sizes must be positive, got GlobalSize {GlobalSize}, LocalSize {LocalSize}");
        if (LocalCrops < 0) throw new ArgumentException($"LocalCrops must be >= 0, got {LocalCrops}");
        static void Range(string name, double lo, double hi)
        {
            if (!(lo > 0 && lo <= hi && hi <= 1)) throw new ArgumentException($"{name} scale range must satisfy 0 < min <= max <= 1, got [{lo}, {hi}]");
        }
        Range("global", GlobalScaleMin, GlobalScaleMax);
        Range("local", LocalScaleMin, LocalScaleMax);
        if (GammaMin <= 0 || GammaMax < GammaMin) throw new ArgumentException($"gamma range must satisfy 0 < min <= max, got [{GammaMin}, {GammaMax}]");
        if (BlurSigmaMin < 0 || BlurSigmaMax < BlurSigmaMin) throw new ArgumentException($"blur sigma range must satisfy 0 <= min <= max, got [{BlurSigmaMin}, {BlurSigmaMax}]");
    }
}

/// <summary>The crops of a batch, as tensors in [-1, 1].</summary>
/// <param name="Globals">Two (B, 1, G, G) tensors.</param>
/// <param name="Locals">N (B, 1, L, L) tensors.</param>
public sealed record MultiCropBatch(Tensor[] Globals, Tensor[] Locals) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Globals) t.Dispose();
        foreach (var t in Locals) t.Dispose();
    }
}

/// <summary>
/// DINO multi-crop augmentation of grayscale chest X-rays: per image, two global crops (large area fraction,
/// resized to the global size) and N local crops (small area fraction, smaller size), each with its own
/// random geometry, intensity/contrast/gamma jitter and Gaussian blur; the second global crop may be
/// solarized. Every random choice comes from the given <see cref="Random"/>, so a seed fixes the result.
/// </summary>
public sealed class MultiCrop
{
    /// <summary>Creates the augmentation.</summary>
    public MultiCrop(MultiCropOptions options)
    {
        options.Validate();
        Options = options;
    }

    /// <summary>The settings.</summary>
    public MultiCropOptions Options { get; }

    /// <summary>The crops of one image: two globals then the locals, intensities in [0, 1].</summary>
    public (GrayImage[] Globals, GrayImage[] Locals) CropImage(GrayImage image, Random rng)
    {
        var o = Options;
        var globals = new GrayImage[2];
        for (int i = 0; i < 2; i++)
        {
            var c = RandomResized(image, o.GlobalSize, o.GlobalScaleMin, o.GlobalScaleMax, rng);
            c = Jitter(c, rng);
            c = MaybeBlur(c, i == 0 ? o.FirstGlobalBlurProbability : o.SecondGlobalBlurProbability, rng);
            if (i == 1 && rng.NextDouble() < o.SolarizeProbability) c = Solarize(c, (float)o.SolarizeThreshold);
            globals[i] = c;
        }
        var locals = new GrayImage[o.LocalCrops];
        for (int i = 0; i < locals.Length; i++)
        {
            var c = RandomResized(image, o.LocalSize, o.LocalScaleMin, o.LocalScaleMax, rng);
            c = Jitter(c, rng);
            locals[i] = MaybeBlur(c, o.LocalBlurProbability, rng);
        }
        return (globals, locals);
    }

    /// <summary>
    /// Crops every image and stacks them: globals (B, 1, G, G) x 2 and locals (B, 1, L, L) x N, in [-1, 1].
    /// Images are processed in order, so the result depends only on the images and the random stream.
    /// </summary>
    /// <exception cref="ArgumentException">No images.</exception>
    public MultiCropBatch Apply(IReadOnlyList<GrayImage> images, Random rng)
    {
        if (images.Count == 0) throw new ArgumentException("multi-crop needs at least one image", nameof(images));
        var per = images.Select(img => CropImage(img, rng)).ToList();
        var globals = Enumerable.Range(0, 2).Select(i => ImageTensors.Stack(per.Select(p => p.Globals[i]))).ToArray();
        var locals = Enumerable.Range(0, Options.LocalCrops).Select(i => ImageTensors.Stack(per.Select(p => p.Locals[i]))).ToArray();
        return new MultiCropBatch(globals, locals);
    }

    // torchvision's RandomResizedCrop: area fraction uniform in [min, max], aspect ratio log-uniform in [3/4, 4/3],
    // 10 tries, else the largest centred square. Sampling clamps to the image, so nothing outside it leaks in.
    private static GrayImage RandomResized(GrayImage img, int size, double minScale, double maxScale, Random rng)
    {
        int w = img.Width, h = img.Height;
        var (x0, y0, cw, ch) = RoentGen.Data.Datasets.RandomResizedCrop.SampleBox(w, h, minScale, maxScale, 3.0 / 4, 4.0 / 3, rng);
        // When shrinking by more than 2x, pre-blur the source region so the bilinear sample does not alias.
        double shrink = Math.Max(cw, ch) / size;
        var src = shrink > 2 ? Geometry.Blur(img, 0.5 * shrink / 2) : img;
        double sx = cw / size, sy = ch / size;
        var o = new float[size * size];
        var px = src.Pixels;
        for (int oy = 0; oy < size; oy++)
        {
            double y = Math.Clamp(y0 + (oy + 0.5) * sy - 0.5, 0, h - 1);
            int yi = Math.Min((int)y, h - 2 < 0 ? 0 : h - 2);
            float fy = (float)(y - yi);
            int yj = Math.Min(yi + 1, h - 1);
            for (int ox = 0; ox < size; ox++)
            {
                double x = Math.Clamp(x0 + (ox + 0.5) * sx - 0.5, 0, w - 1);
                int xi = Math.Min((int)x, w - 2 < 0 ? 0 : w - 2);
                float fx = (float)(x - xi);
                int xj = Math.Min(xi + 1, w - 1);
                float top = px[yi * w + xi] * (1 - fx) + px[yi * w + xj] * fx;
                float bot = px[yj * w + xi] * (1 - fx) + px[yj * w + xj] * fx;
                o[oy * size + ox] = top * (1 - fy) + bot * fy;
            }
        }
        return new GrayImage(size, size, o, img.SourceBitDepth);
    }

    // With probability JitterProbability: contrast about the mean, brightness offset, then gamma; clamped to [0, 1].
    private GrayImage Jitter(GrayImage c, Random rng)
    {
        var o = Options;
        bool apply = rng.NextDouble() < o.JitterProbability;
        float b = (float)((rng.NextDouble() * 2 - 1) * o.Brightness);
        float k = (float)(1 + (rng.NextDouble() * 2 - 1) * o.Contrast);
        float g = (float)Math.Exp(Math.Log(o.GammaMin) + rng.NextDouble() * (Math.Log(o.GammaMax) - Math.Log(o.GammaMin)));
        if (!apply) return c;
        float mean = c.Pixels.Average();
        return Geometry.MapPixels(c, v => MathF.Pow(Math.Clamp((v - mean) * k + mean + b, 0f, 1f), g));
    }

    private GrayImage MaybeBlur(GrayImage c, double probability, Random rng)
    {
        bool apply = rng.NextDouble() < probability;
        double sigma = Options.BlurSigmaMin + rng.NextDouble() * (Options.BlurSigmaMax - Options.BlurSigmaMin);
        return apply && sigma > 0 ? Geometry.Blur(c, sigma) : c;
    }

    private static GrayImage Solarize(GrayImage c, float threshold) => Geometry.MapPixels(c, v => v >= threshold ? 1f - v : v);
}
