namespace RoentGen.Data.Datasets;

/// <summary>
/// One training example for augmentation: the image, its masks (values 0/1), report and attributes.
/// Geometric transforms move image and masks together; photometric ones change the image only.
/// </summary>
/// <param name="Image">The image, values in [0, 1].</param>
/// <param name="Masks">Masks by name, the image's size.</param>
/// <param name="Report">The report (only a laterality flip changes it).</param>
/// <param name="Attributes">Attributes (only a laterality flip changes them).</param>
public sealed record CxrSample(GrayImage Image, IReadOnlyDictionary<string, GrayImage> Masks, CxrReport Report, IReadOnlyDictionary<string, string> Attributes)
{
    /// <summary>A sample of an image alone.</summary>
    public static CxrSample Of(GrayImage image) => new(image, new Dictionary<string, GrayImage>(), CxrReport.Empty, new Dictionary<string, string>());

    /// <summary>A record's image and all its masks (square size x size when given), report and attributes.</summary>
    public static CxrSample FromRecord(CxrDataset dataset, CxrRecord record, int? size = null) =>
        new(dataset.LoadImage(record, size),
            record.Masks.Keys.ToDictionary(k => k, k => dataset.LoadMask(record, k, size)),
            record.Report, record.Attributes);

    /// <summary>The same sample with every mask replaced through <paramref name="f"/>.</summary>
    internal CxrSample MapMasks(Func<GrayImage, GrayImage> f) => this with { Masks = Masks.ToDictionary(kv => kv.Key, kv => f(kv.Value)) };
}

/// <summary>A random transform of a sample; all randomness comes from the given <see cref="Random"/>, so a seeded one makes it repeatable.</summary>
public interface ICxrTransform
{
    /// <summary>Applies the transform (inputs are not modified).</summary>
    CxrSample Apply(CxrSample sample, Random rng);
}

/// <summary>Applies transforms in order.</summary>
public sealed class Compose : ICxrTransform
{
    private readonly ICxrTransform[] _steps;

    /// <summary>Creates the pipeline.</summary>
    public Compose(params ICxrTransform[] steps) => _steps = steps;

    /// <summary>The steps.</summary>
    public IReadOnlyList<ICxrTransform> Steps => _steps;

    /// <inheritdoc />
    public CxrSample Apply(CxrSample sample, Random rng)
    {
        foreach (var t in _steps) sample = t.Apply(sample, rng);
        return sample;
    }

    /// <summary>A mild default for CXR training: crop 0.8-1, rotate up to 7 degrees, brightness/contrast 0.1, gamma 0.8-1.25, no flip.</summary>
    public static Compose DefaultCxr(int size) => new(
        new RandomResizedCrop(size, 0.8, 1.0),
        new RandomRotation(7),
        new IntensityJitter(0.1, 0.1),
        new GammaJitter(0.8, 1.25));
}

/// <summary>
/// Crops a random region covering a fraction of the area in [MinScale, MaxScale] with aspect ratio
/// (width/height) in [MinRatio, MaxRatio] (log-uniform), and resizes it to Size x Size (bilinear; masks
/// bilinear then thresholded at 0.5). Falls back to the central square when no region fits in 10 tries.
/// </summary>
/// <param name="Size">Output side.</param>
/// <param name="MinScale">Smallest area fraction.</param>
/// <param name="MaxScale">Largest area fraction.</param>
/// <param name="MinRatio">Smallest aspect ratio.</param>
/// <param name="MaxRatio">Largest aspect ratio.</param>
public sealed record RandomResizedCrop(int Size, double MinScale = 0.7, double MaxScale = 1.0, double MinRatio = 3.0 / 4, double MaxRatio = 4.0 / 3) : ICxrTransform
{
    /// <inheritdoc />
    public CxrSample Apply(CxrSample sample, Random rng)
    {
        var (x0, y0, cw, ch) = SampleBox(sample.Image.Width, sample.Image.Height, MinScale, MaxScale, MinRatio, MaxRatio, rng);
        double sx = cw / Size, sy = ch / Size;
        // Output pixel centre (ox + 0.5) maps to source x0 + (ox + 0.5) * sx; pixel centres sit at +0.5.
        (double, double) Map(int ox, int oy) => (x0 + (ox + 0.5) * sx - 0.5, y0 + (oy + 0.5) * sy - 0.5);
        return Geometry.Warp(sample, Size, Size, Map);
    }

    /// <summary>
    /// The crop box (left, top, width, height) of a random resized crop of a w x h image: area fraction in
    /// [minScale, maxScale], aspect ratio log-uniform in [minRatio, maxRatio]; after 10 failed draws, the central square.
    /// </summary>
    public static (double X0, double Y0, double Width, double Height) SampleBox(int w, int h, double minScale, double maxScale, double minRatio, double maxRatio, Random rng)
    {
        double area = (double)w * h;
        double cw = Math.Min(w, h), ch = cw, x0 = (w - cw) / 2, y0 = (h - ch) / 2;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double s = minScale + rng.NextDouble() * (maxScale - minScale);
            double r = Math.Exp(Math.Log(minRatio) + rng.NextDouble() * (Math.Log(maxRatio) - Math.Log(minRatio)));
            double tw = Math.Sqrt(area * s * r), th = Math.Sqrt(area * s / r);
            if (tw <= w && th <= h)
            {
                cw = tw; ch = th;
                x0 = rng.NextDouble() * (w - cw);
                y0 = rng.NextDouble() * (h - ch);
                break;
            }
        }
        return (x0, y0, cw, ch);
    }
}

/// <summary>Rotates about the centre by an angle uniform in [-MaxDegrees, MaxDegrees]; uncovered corners are black.</summary>
/// <param name="MaxDegrees">Largest rotation in degrees.</param>
public sealed record RandomRotation(double MaxDegrees = 10) : ICxrTransform
{
    /// <inheritdoc />
    public CxrSample Apply(CxrSample sample, Random rng)
    {
        double a = (rng.NextDouble() * 2 - 1) * MaxDegrees * Math.PI / 180;
        double c = Math.Cos(a), s = Math.Sin(a);
        int w = sample.Image.Width, h = sample.Image.Height;
        double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
        (double, double) Map(int ox, int oy)
        {
            double dx = ox - cx, dy = oy - cy;
            return (cx + c * dx + s * dy, cy - s * dx + c * dy);
        }
        return Geometry.Warp(sample, w, h, Map);
    }
}

/// <summary>Brightness shift uniform in [-Brightness, Brightness] and contrast factor uniform in [1-Contrast, 1+Contrast] about the mean; clamped to [0, 1].</summary>
/// <param name="Brightness">Largest added offset.</param>
/// <param name="Contrast">Largest relative contrast change.</param>
public sealed record IntensityJitter(double Brightness = 0.1, double Contrast = 0.1) : ICxrTransform
{
    /// <inheritdoc />
    public CxrSample Apply(CxrSample sample, Random rng)
    {
        float b = (float)((rng.NextDouble() * 2 - 1) * Brightness);
        float k = (float)(1 + (rng.NextDouble() * 2 - 1) * Contrast);
        var px = sample.Image.Pixels;
        float mean = px.Average();
        return sample with { Image = Geometry.MapPixels(sample.Image, v => (v - mean) * k + mean + b) };
    }
}

/// <summary>Gamma x^g with g log-uniform in [MinGamma, MaxGamma].</summary>
/// <param name="MinGamma">Smallest exponent.</param>
/// <param name="MaxGamma">Largest exponent.</param>
public sealed record GammaJitter(double MinGamma = 0.8, double MaxGamma = 1.25) : ICxrTransform
{
    /// <inheritdoc />
    public CxrSample Apply(CxrSample sample, Random rng)
    {
        double g = Math.Exp(Math.Log(MinGamma) + rng.NextDouble() * (Math.Log(MaxGamma) - Math.Log(MinGamma)));
        return sample with { Image = Geometry.MapPixels(sample.Image, v => MathF.Pow(Math.Max(v, 0f), (float)g)) };
    }
}

/// <summary>With probability Probability, a Gaussian blur with sigma uniform in [MinSigma, MaxSigma] pixels (reflected borders).</summary>
/// <param name="MinSigma">Smallest sigma.</param>
/// <param name="MaxSigma">Largest sigma.</param>
/// <param name="Probability">Chance of blurring.</param>
public sealed record GaussianBlur(double MinSigma = 0.1, double MaxSigma = 1.0, double Probability = 0.5) : ICxrTransform
{
    /// <inheritdoc />
    public CxrSample Apply(CxrSample sample, Random rng)
    {
        bool apply = rng.NextDouble() < Probability;
        double sigma = MinSigma + rng.NextDouble() * (MaxSigma - MinSigma);
        return apply && sigma > 0 ? sample with { Image = Geometry.Blur(sample.Image, sigma) } : sample;
    }
}

/// <summary>With probability Probability, adds N(0, std²) noise with std uniform in [MinStd, MaxStd]; clamped to [0, 1].</summary>
/// <param name="MinStd">Smallest standard deviation.</param>
/// <param name="MaxStd">Largest standard deviation.</param>
/// <param name="Probability">Chance of adding noise.</param>
public sealed record GaussianNoise(double MinStd = 0.0, double MaxStd = 0.02, double Probability = 0.5) : ICxrTransform
{
    /// <inheritdoc />
    public CxrSample Apply(CxrSample sample, Random rng)
    {
        bool apply = rng.NextDouble() < Probability;
        double std = MinStd + rng.NextDouble() * (MaxStd - MinStd);
        if (!apply || std <= 0) return sample;
        var src = sample.Image.Pixels;
        var o = new float[src.Length];
        for (int i = 0; i < o.Length; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double n = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            o[i] = Math.Clamp(src[i] + (float)(n * std), 0f, 1f);
        }
        return sample with { Image = new GrayImage(sample.Image.Width, sample.Image.Height, o, sample.Image.SourceBitDepth) };
    }
}

/// <summary>
/// With probability Probability, a horizontal flip that swaps left and right everywhere: the image and
/// masks are mirrored, mask names and attribute keys swap sides ("left_lung"↔"right_lung"), attribute
/// values and the report swap sides (see <see cref="Laterality"/>). This is the only flip offered: a
/// flip of pixels alone would contradict the report.
/// </summary>
/// <param name="Probability">Chance of flipping.</param>
public sealed record LateralityFlip(double Probability = 0.5) : ICxrTransform
{
    /// <inheritdoc />
    public CxrSample Apply(CxrSample sample, Random rng) => rng.NextDouble() < Probability ? Flip(sample) : sample;

    /// <summary>Always flips.</summary>
    public static CxrSample Flip(CxrSample sample)
    {
        var masks = new Dictionary<string, GrayImage>();
        foreach (var (name, m) in sample.Masks)
        {
            var n = Laterality.SwapName(name);
            if (!masks.TryAdd(n, Laterality.FlipHorizontal(m)))
                throw new InvalidOperationException($"mask names '{name}' and another both become '{n}' after a left/right swap");
        }
        var attrs = new Dictionary<string, string>();
        foreach (var (k, v) in sample.Attributes) attrs[Laterality.SwapName(k)] = Laterality.SwapValue(v);
        return new CxrSample(Laterality.FlipHorizontal(sample.Image), masks, Laterality.Swap(sample.Report), attrs);
    }
}

/// <summary>Resampling shared by the transforms.</summary>
internal static class Geometry
{
    /// <summary>Warps image (bilinear) and masks (bilinear then threshold 0.5) by an output→source map; outside is 0.</summary>
    public static CxrSample Warp(CxrSample s, int outW, int outH, Func<int, int, (double X, double Y)> map)
    {
        var coords = new (double X, double Y)[outW * outH];
        for (int y = 0; y < outH; y++)
            for (int x = 0; x < outW; x++) coords[y * outW + x] = map(x, y);
        GrayImage Sample(GrayImage src, bool mask)
        {
            var o = new float[outW * outH];
            for (int i = 0; i < o.Length; i++)
            {
                float v = Bilinear(src, coords[i].X, coords[i].Y);
                o[i] = mask ? (v >= 0.5f ? 1f : 0f) : v;
            }
            return new GrayImage(outW, outH, o, src.SourceBitDepth);
        }
        return new CxrSample(Sample(s.Image, false), s.Masks.ToDictionary(kv => kv.Key, kv => Sample(kv.Value, true)), s.Report, s.Attributes);
    }

    private static float Bilinear(GrayImage img, double x, double y)
    {
        int x0 = (int)Math.Floor(x), y0 = (int)Math.Floor(y);
        float fx = (float)(x - x0), fy = (float)(y - y0);
        float P(int xx, int yy) => xx < 0 || yy < 0 || xx >= img.Width || yy >= img.Height ? 0f : img.Pixels[yy * img.Width + xx];
        float top = P(x0, y0) * (1 - fx) + P(x0 + 1, y0) * fx;
        float bot = P(x0, y0 + 1) * (1 - fx) + P(x0 + 1, y0 + 1) * fx;
        return top * (1 - fy) + bot * fy;
    }

    public static GrayImage MapPixels(GrayImage img, Func<float, float> f)
    {
        var o = new float[img.Pixels.Length];
        for (int i = 0; i < o.Length; i++) o[i] = Math.Clamp(f(img.Pixels[i]), 0f, 1f);
        return new GrayImage(img.Width, img.Height, o, img.SourceBitDepth);
    }

    public static GrayImage Blur(GrayImage img, double sigma)
    {
        int r = Math.Max(1, (int)Math.Ceiling(3 * sigma));
        var k = new float[2 * r + 1];
        for (int i = -r; i <= r; i++) k[i + r] = (float)Math.Exp(-i * i / (2 * sigma * sigma));
        float sum = k.Sum();
        for (int i = 0; i < k.Length; i++) k[i] /= sum;
        int w = img.Width, h = img.Height;
        static int Reflect(int i, int n) { if (n == 1) return 0; while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i; return i; }
        var tmp = new float[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                float a = 0;
                for (int i = -r; i <= r; i++) a += k[i + r] * img.Pixels[y * w + Reflect(x + i, w)];
                tmp[y * w + x] = a;
            }
        var o = new float[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                float a = 0;
                for (int i = -r; i <= r; i++) a += k[i + r] * tmp[Reflect(y + i, h) * w + x];
                o[y * w + x] = a;
            }
        return new GrayImage(w, h, o, img.SourceBitDepth);
    }
}
