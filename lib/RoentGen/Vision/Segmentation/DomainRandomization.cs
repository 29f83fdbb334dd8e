using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Vision.Segmentation;

/// <summary>
/// Random changes of a training batch aimed at sim-to-real transfer (domain randomisation, Tobin et al. 2017): a
/// segmenter that has seen phantoms under many exposures (uneven ones too), contrasts, blurs, noise levels, framings and collimations
/// has less room to key on what makes phantoms phantoms. Each transform is drawn per image; a probability of 0 or a
/// neutral range turns it off. Geometric transforms move image and masks together (masks are resampled bilinearly and
/// thresholded at 0.5); photometric ones change the image only.
/// </summary>
public sealed record DomainRandomization
{
    /// <summary>Probability that an image gets a random affine transform (zoom, rotation, shift) and elastic warp.</summary>
    public double GeometricProbability { get; init; } = 0.9;
    /// <summary>Zoom range (scale of the content; &gt; 1 zooms in, a random crop; &lt; 1 zooms out, framing with black borders).</summary>
    public double MinZoom { get; init; } = 0.85;
    /// <summary>Upper end of the zoom range.</summary>
    public double MaxZoom { get; init; } = 1.2;
    /// <summary>Largest rotation in degrees (either way).</summary>
    public double MaxRotationDegrees { get; init; } = 10;
    /// <summary>Largest shift as a fraction of the image side (either way, each axis).</summary>
    public double MaxShift { get; init; } = 0.08;
    /// <summary>Standard deviation of the elastic warp as a fraction of the image side, drawn on a 4x4 grid and smoothly upsampled (0: none).</summary>
    public double ElasticStrength { get; init; } = 0.015;
    /// <summary>Gamma range (x^γ, log-uniform), the exposure curve's shape.</summary>
    public double MinGamma { get; init; } = 0.6;
    /// <summary>Upper end of the gamma range.</summary>
    public double MaxGamma { get; init; } = 1.7;
    /// <summary>Contrast factor range around the image mean (uniform in [1 − c, 1 + c]).</summary>
    public double Contrast { get; init; } = 0.3;
    /// <summary>Brightness offset range (uniform in [−b, b]).</summary>
    public double Brightness { get; init; } = 0.15;
    /// <summary>Probability of a Gaussian blur.</summary>
    public double BlurProbability { get; init; } = 0.5;
    /// <summary>Largest blur sigma in pixels (uniform in [0.3, max]).</summary>
    public double MaxBlurSigma { get; init; } = 1.5;
    /// <summary>Probability of additive Gaussian noise.</summary>
    public double NoiseProbability { get; init; } = 0.5;
    /// <summary>Largest noise standard deviation (on the [0, 1] scale; uniform in [0, max]).</summary>
    public double MaxNoise { get; init; } = 0.05;
    /// <summary>
    /// Probability of a smooth additive bias field: a 4x4 grid of normal values upsampled to the image, the spatially
    /// varying exposure that breast and soft-tissue shadows, the heel effect and scatter put on real films (a lung base
    /// can be brighter than its apex). Global intensity changes cannot teach this: the input normalisation undoes them.
    /// </summary>
    public double BiasFieldProbability { get; init; } = 0.5;
    /// <summary>Largest standard deviation of the bias field's grid values (on the [0, 1] scale; uniform in [0, max]).</summary>
    public double MaxBiasField { get; init; } = 0.15;
    /// <summary>Probability of collimation: bands along random image edges set to a constant (dark or bright).</summary>
    public double CollimationProbability { get; init; } = 0.3;
    /// <summary>Largest collimation band as a fraction of the side.</summary>
    public double MaxCollimation { get; init; } = 0.12;

    /// <summary>No change at all (for runs that measure what randomisation adds).</summary>
    public static DomainRandomization None { get; } = new()
    {
        GeometricProbability = 0, ElasticStrength = 0, MinGamma = 1, MaxGamma = 1, Contrast = 0, Brightness = 0,
        BlurProbability = 0, NoiseProbability = 0, CollimationProbability = 0, BiasFieldProbability = 0,
    };

    /// <summary>Checks the ranges.</summary>
    /// <exception cref="ArgumentException">A field is out of range (the message names it).</exception>
    public void Validate()
    {
        static void P(double v, string name) { if (!(v >= 0 && v <= 1)) throw new ArgumentException($"DomainRandomization.{name} must be a probability in [0, 1], got {v}"); }
        P(GeometricProbability, nameof(GeometricProbability)); P(BlurProbability, nameof(BlurProbability));
        P(NoiseProbability, nameof(NoiseProbability)); P(CollimationProbability, nameof(CollimationProbability));
        P(BiasFieldProbability, nameof(BiasFieldProbability));
        if (!(MinZoom > 0 && MaxZoom >= MinZoom)) throw new ArgumentException($"DomainRandomization zoom range [{MinZoom}, {MaxZoom}] must be positive and ordered");
        if (!(MinGamma > 0 && MaxGamma >= MinGamma)) throw new ArgumentException($"DomainRandomization gamma range [{MinGamma}, {MaxGamma}] must be positive and ordered");
        if (!(MaxRotationDegrees >= 0 && MaxShift >= 0 && ElasticStrength >= 0 && Contrast >= 0 && Contrast < 1 && Brightness >= 0
              && MaxBlurSigma >= 0 && MaxNoise >= 0 && MaxBiasField >= 0 && MaxCollimation >= 0 && MaxCollimation < 0.5))
            throw new ArgumentException("DomainRandomization: rotation, shift, elastic, brightness, blur, noise and bias field must be 0 or more, Contrast in [0, 1), MaxCollimation in [0, 0.5)");
    }

    /// <summary>
    /// Applies the randomisation to a batch. Parameters come from <paramref name="rng"/> and noise fields from
    /// <paramref name="generator"/>, so a seeded pair makes it repeatable.
    /// </summary>
    /// <param name="images">(B, 1, S, S) intensities in [0, 1].</param>
    /// <param name="masks">(B, C, S, S) masks in {0, 1}.</param>
    /// <param name="rng">Per-image parameters.</param>
    /// <param name="generator">Noise and warp fields.</param>
    /// <returns>The changed images (in [0, 1]) and masks (in {0, 1}), new tensors.</returns>
    public (Tensor Images, Tensor Masks) Apply(Tensor images, Tensor masks, Random rng, Generator generator)
    {
        using var scope = NewDisposeScope();
        long b = images.shape[0], s = images.shape[2];
        var x = images;
        var m = masks;
        if (GeometricProbability > 0)
        {
            var theta = new float[b * 6];
            var apply = new bool[b];
            for (int i = 0; i < b; i++)
            {
                apply[i] = rng.NextDouble() < GeometricProbability;
                double zoom = apply[i] ? MinZoom * Math.Pow(MaxZoom / MinZoom, rng.NextDouble()) : 1;
                double angle = apply[i] ? (2 * rng.NextDouble() - 1) * MaxRotationDegrees * Math.PI / 180 : 0;
                double tx = apply[i] ? (2 * rng.NextDouble() - 1) * MaxShift * 2 : 0, ty = apply[i] ? (2 * rng.NextDouble() - 1) * MaxShift * 2 : 0;
                // Output pixel (u, v) samples the input at R(angle) (u, v) / zoom + t (normalised coordinates in [-1, 1]).
                double c = Math.Cos(angle) / zoom, sn = Math.Sin(angle) / zoom;
                theta[i * 6 + 0] = (float)c; theta[i * 6 + 1] = (float)-sn; theta[i * 6 + 2] = (float)tx;
                theta[i * 6 + 3] = (float)sn; theta[i * 6 + 4] = (float)c; theta[i * 6 + 5] = (float)ty;
            }
            var grid = nn.functional.affine_grid(tensor(theta, [b, 2, 3]), [b, 1, s, s], align_corners: false); // (B, S, S, 2)
            if (ElasticStrength > 0)
            {
                var on = tensor(apply.Select(a => a ? 1f : 0f).ToArray(), [b, 1, 1, 1]);
                var coarse = randn([b, 2, 4, 4], generator: generator) * (2 * ElasticStrength) * on;   // normalised units: side = 2
                var field = nn.functional.interpolate(coarse, size: [s, s], mode: InterpolationMode.Bicubic, align_corners: true); // (B, 2, S, S)
                grid = grid + field.permute(0, 2, 3, 1);
            }
            x = nn.functional.grid_sample(x, grid, mode: GridSampleMode.Bilinear, padding_mode: GridSamplePaddingMode.Zeros, align_corners: false);
            m = nn.functional.grid_sample(m, grid, mode: GridSampleMode.Bilinear, padding_mode: GridSamplePaddingMode.Zeros, align_corners: false).ge(0.5).to_type(ScalarType.Float32);
        }

        // Photometric: gamma, then contrast around the image mean and brightness.
        var gamma = new float[b]; var contrast = new float[b]; var bright = new float[b];
        for (int i = 0; i < b; i++)
        {
            gamma[i] = (float)(MinGamma * Math.Pow(MaxGamma / MinGamma, rng.NextDouble()));
            contrast[i] = (float)(1 + (2 * rng.NextDouble() - 1) * Contrast);
            bright[i] = (float)((2 * rng.NextDouble() - 1) * Brightness);
        }
        x = x.clamp(1e-6, 1).pow(tensor(gamma, [b, 1, 1, 1]));
        var mean = x.mean([1, 2, 3], keepdim: true);
        x = ((x - mean) * tensor(contrast, [b, 1, 1, 1]) + mean + tensor(bright, [b, 1, 1, 1])).clamp(0, 1);

        // Bias field: smooth, spatially varying exposure (drawn before blur and noise, which act on the detector image).
        if (BiasFieldProbability > 0 && MaxBiasField > 0)
        {
            var sd = new float[b];
            for (int i = 0; i < b; i++) sd[i] = rng.NextDouble() < BiasFieldProbability ? (float)(rng.NextDouble() * MaxBiasField) : 0f;
            var coarse = randn([b, 1, 4, 4], generator: generator) * tensor(sd, [b, 1, 1, 1]);
            var field = nn.functional.interpolate(coarse, size: [s, s], mode: InterpolationMode.Bicubic, align_corners: true);
            x = (x + field).clamp(0, 1);
        }

        // Blur (per image, its own sigma; sigma 0 leaves the image as it is) and noise.
        if (BlurProbability > 0 && MaxBlurSigma > 0)
        {
            var sigmas = new double[b];
            for (int i = 0; i < b; i++) sigmas[i] = rng.NextDouble() < BlurProbability ? 0.3 + rng.NextDouble() * Math.Max(0, MaxBlurSigma - 0.3) : 0;
            x = GaussianBlur(x, sigmas);
        }
        if (NoiseProbability > 0 && MaxNoise > 0)
        {
            var sd = new float[b];
            for (int i = 0; i < b; i++) sd[i] = rng.NextDouble() < NoiseProbability ? (float)(rng.NextDouble() * MaxNoise) : 0f;
            x = (x + randn(x.shape, generator: generator) * tensor(sd, [b, 1, 1, 1])).clamp(0, 1);
        }

        // Collimation: constant bands along random edges (image only; the anatomy under them stays in the mask).
        if (CollimationProbability > 0 && MaxCollimation > 0)
        {
            var keep = ones(b, 1, s, s);
            var fill = zeros(b, 1, 1, 1);
            var fills = new float[b];
            for (int i = 0; i < b; i++)
            {
                if (rng.NextDouble() >= CollimationProbability) continue;
                fills[i] = rng.NextDouble() < 0.7 ? 0f : 1f;
                for (int side = 0; side < 4; side++)
                {
                    if (rng.NextDouble() < 0.5) continue;
                    long w = (long)Math.Round(rng.NextDouble() * MaxCollimation * s);
                    if (w == 0) continue;
                    var k = keep[i, 0];
                    switch (side)
                    {
                        case 0: k.narrow(0, 0, w).fill_(0); break;
                        case 1: k.narrow(0, s - w, w).fill_(0); break;
                        case 2: k.narrow(1, 0, w).fill_(0); break;
                        default: k.narrow(1, s - w, w).fill_(0); break;
                    }
                }
            }
            fill = tensor(fills, [b, 1, 1, 1]);
            x = x * keep + fill * (1 - keep);
        }
        return (x.contiguous().MoveToOuterDisposeScope(), m.contiguous().MoveToOuterDisposeScope());
    }

    /// <summary>
    /// A separable Gaussian blur of (B, 1, H, W) with reflect padding, image i with its own sigma (0: unchanged), as one
    /// grouped convolution per axis.
    /// </summary>
    public static Tensor GaussianBlur(Tensor x, IReadOnlyList<double> sigmas)
    {
        long b = x.shape[0];
        if (sigmas.Count != b) throw new ArgumentException($"GaussianBlur: {sigmas.Count} sigmas for {b} images");
        using var scope = NewDisposeScope();
        int radius = Math.Max(1, (int)Math.Ceiling(3 * sigmas.DefaultIfEmpty(0).Max()));
        int len = 2 * radius + 1;
        var k = new float[b * len];
        for (int i = 0; i < b; i++)
        {
            double sigma = sigmas[i];
            if (!(sigma > 0)) { k[i * len + radius] = 1; continue; }
            double sum = 0;
            for (int j = -radius; j <= radius; j++) sum += Math.Exp(-0.5 * j * j / (sigma * sigma));
            for (int j = -radius; j <= radius; j++) k[i * len + j + radius] = (float)(Math.Exp(-0.5 * j * j / (sigma * sigma)) / sum);
        }
        var kx = tensor(k, [b, 1, 1, len]);
        var ky = tensor(k, [b, 1, len, 1]);
        var h = nn.functional.pad(x.reshape(1, b, x.shape[2], x.shape[3]), [radius, radius, radius, radius], PaddingModes.Reflect); // (1, B, H+2r, W+2r)
        var blurred = nn.functional.conv2d(nn.functional.conv2d(h, kx, groups: b), ky, groups: b);                                 // (1, B, H, W)
        return blurred.reshape(x.shape).MoveToOuterDisposeScope();
    }
}

/// <summary>How a segmenter normalises each image's intensities at its input (the same at training and at test).</summary>
public enum InputNormalization
{
    /// <summary>Per-image z-score: (x − mean) / sd.</summary>
    ZScore,
    /// <summary>
    /// Per-image histogram equalisation to a uniform distribution on [−1, 1]: each pixel becomes its rank among the
    /// image's pixels (ties share their mean rank), scaled to (−1, 1). Any monotone change of intensities (gamma, contrast, brightness,
    /// a detector's curve) gives the same input, which is what a world with another intensity histogram needs.
    /// </summary>
    Equalize,
}

/// <summary>The per-image input normalisation of <see cref="InputNormalization"/>.</summary>
public static class InputNormalizer
{
    /// <summary>Normalises (B, 1, H, W) intensities (any range) image by image.</summary>
    public static Tensor Apply(Tensor images, InputNormalization mode)
    {
        using var scope = NewDisposeScope();
        long b = images.shape[0];
        var flat = images.reshape(b, -1).to_type(ScalarType.Float32);
        Tensor result;
        if (mode == InputNormalization.ZScore)
        {
            var mean = flat.mean([1], keepdim: true);
            var sd = flat.std(1, keepdim: true).clamp_min(1e-4);
            result = (flat - mean) / sd;
        }
        else
        {
            // Mid-rank of each pixel among its image's pixels (ties share it), as a share of the pixel count: the empirical CDF.
            long n = flat.shape[1];
            var sorted = flat.sort(1).Values;                                             // (B, N)
            var below = searchsorted(sorted, flat, right: false).to_type(ScalarType.Float32);  // pixels strictly below
            var upTo = searchsorted(sorted, flat, right: true).to_type(ScalarType.Float32);    // pixels at or below
            result = (below + upTo) / n - 1;                                              // 2 · mid-rank / N − 1, in (−1, 1)
        }
        return result.reshape(images.shape).MoveToOuterDisposeScope();
    }
}
