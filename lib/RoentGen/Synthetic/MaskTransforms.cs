using RoentGen.Data;
using RoentGen.Data.Phantoms;

namespace RoentGen.Synthetic;

/// <summary>
/// An affine change of a mask about its centroid, in pixels: scale, then rotate, then shift.
/// A pixel p of the source goes to c + shift + Scale · R(θ) · (p − c), with c the source mask's centroid and R the
/// rotation by <see cref="RotationDegrees"/>, clockwise as displayed (image y points down).
/// </summary>
/// <param name="ShiftX">Shift to the right, in pixels.</param>
/// <param name="ShiftY">Shift down, in pixels.</param>
/// <param name="RotationDegrees">Rotation about the centroid, degrees clockwise as displayed.</param>
/// <param name="Scale">Linear scale about the centroid (area scales by its square); above 0.</param>
public sealed record MaskAffine(double ShiftX = 0, double ShiftY = 0, double RotationDegrees = 0, double Scale = 1)
{
    /// <summary>No change.</summary>
    public static MaskAffine Identity { get; } = new();

    /// <summary>The fraction <paramref name="t"/> (0 = identity, 1 = this) of the way: shift and angle linearly, scale geometrically.</summary>
    public MaskAffine Partial(double t) => new(ShiftX * t, ShiftY * t, RotationDegrees * t, Math.Pow(Scale, t));
}

/// <summary>Ranges of <see cref="MaskTransforms.RandomAffine"/>: each parameter uniform in its range (scale log-uniform).</summary>
/// <param name="MaxShiftFraction">Largest shift along each axis, as a fraction of the image's width or height.</param>
/// <param name="MaxRotationDegrees">Largest rotation either way.</param>
/// <param name="MinScale">Smallest scale.</param>
/// <param name="MaxScale">Largest scale.</param>
public sealed record MaskAffineRanges(double MaxShiftFraction = 0.08, double MaxRotationDegrees = 20, double MinScale = 0.8, double MaxScale = 1.25);

/// <summary>
/// Elastic deformation after Simard, Steinkraus and Platt (2003), "Best practices for convolutional neural networks
/// applied to visual document analysis": each pixel draws a displacement (dx, dy) uniform in [−1, 1]², the two fields
/// are smoothed with a Gaussian of standard deviation <see cref="Sigma"/> pixels and multiplied by <see cref="Alpha"/>,
/// and the output at p is the input at p + (dx, dy) (bilinear, thresholded at 0.5).
/// <para>Smoothing shrinks the field: the root-mean-square displacement along each axis is about
/// Alpha / (2 · Sigma · √(3π)) pixels (about 3 px with the defaults), more within 3 Sigma of the image edge, where
/// the smoothing repeats the edge values. Sigma sets how smooth the warp is (small:
/// jagged, large: nearly a global shift); Alpha 0 is the identity.</para>
/// </summary>
/// <param name="Alpha">Scale of the smoothed field (0 or more).</param>
/// <param name="Sigma">Gaussian smoothing in pixels (above 0).</param>
public sealed record ElasticOptions(double Alpha = 150, double Sigma = 8);

/// <summary>A transformed mask fitted inside a region.</summary>
/// <param name="Mask">The result, a binary mask inside the region.</param>
/// <param name="Applied">The transform actually applied (the one asked for, or part of it when that left the region).</param>
/// <param name="ClippedFraction">Fraction of the transformed mask that fell outside the region and was cut off.</param>
public sealed record MaskFit(GrayImage Mask, MaskAffine Applied, double ClippedFraction);

/// <summary>
/// Geometric transforms of binary masks (values 0/1 in a <see cref="GrayImage"/>; a pixel is inside at 0.5 or more),
/// the raw material of new conditioning masks: affine (shift, rotate, scale about the centroid), elastic, mirror.
/// Every result is binary. Sampling is bilinear then thresholded at 0.5, so a shift or rotation keeps the area up to
/// the pixels along the edge. Random transforms are deterministic: the same seed gives the same result.
/// </summary>
public static class MaskTransforms
{
    /// <summary>Number of pixels inside the mask.</summary>
    public static int Area(GrayImage mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        int n = 0;
        foreach (var v in mask.Pixels) if (v >= 0.5f) n++;
        return n;
    }

    /// <summary>The mean (x, y) of the pixels inside, or null for an empty mask.</summary>
    public static (double X, double Y)? Centroid(GrayImage mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        double sx = 0, sy = 0; long n = 0;
        for (int y = 0; y < mask.Height; y++)
            for (int x = 0; x < mask.Width; x++)
                if (mask.Pixels[y * mask.Width + x] >= 0.5f) { sx += x; sy += y; n++; }
        return n == 0 ? null : (sx / n, sy / n);
    }

    /// <summary>The fraction of the mask's pixels that lie outside <paramref name="region"/> (0 for an empty mask).</summary>
    public static double FractionOutside(GrayImage mask, GrayImage region)
    {
        SameSize(mask, region, nameof(region));
        int inside = 0, outside = 0;
        for (int i = 0; i < mask.Pixels.Length; i++)
        {
            if (mask.Pixels[i] < 0.5f) continue;
            if (region.Pixels[i] >= 0.5f) inside++; else outside++;
        }
        return inside + outside == 0 ? 0 : outside / (double)(inside + outside);
    }

    /// <summary>The pixels inside both masks.</summary>
    public static GrayImage Intersect(GrayImage a, GrayImage b)
    {
        SameSize(a, b, nameof(b));
        var o = new GrayImage(a.Width, a.Height);
        for (int i = 0; i < o.Pixels.Length; i++) o.Pixels[i] = a.Pixels[i] >= 0.5f && b.Pixels[i] >= 0.5f ? 1 : 0;
        return o;
    }

    /// <summary>The pixels inside either mask.</summary>
    public static GrayImage Union(GrayImage a, GrayImage b)
    {
        SameSize(a, b, nameof(b));
        var o = new GrayImage(a.Width, a.Height);
        for (int i = 0; i < o.Pixels.Length; i++) o.Pixels[i] = a.Pixels[i] >= 0.5f || b.Pixels[i] >= 0.5f ? 1 : 0;
        return o;
    }

    /// <summary>Applies <paramref name="t"/> about the mask's centroid (an empty mask stays empty).</summary>
    /// <exception cref="ArgumentException">The scale is not above 0, or a parameter is not finite.</exception>
    public static GrayImage Affine(GrayImage mask, MaskAffine t)
    {
        ArgumentNullException.ThrowIfNull(mask);
        Check(t);
        return Centroid(mask) is (double cx, double cy) ? Affine(mask, t, cx, cy) : new GrayImage(mask.Width, mask.Height);
    }

    /// <summary>Applies <paramref name="t"/> about the point (cx, cy).</summary>
    public static GrayImage Affine(GrayImage mask, MaskAffine t, double cx, double cy)
    {
        ArgumentNullException.ThrowIfNull(mask);
        Check(t);
        double th = t.RotationDegrees * Math.PI / 180, cos = Math.Cos(th), sin = Math.Sin(th);
        var o = new GrayImage(mask.Width, mask.Height);
        for (int y = 0; y < mask.Height; y++)
        {
            for (int x = 0; x < mask.Width; x++)
            {
                // inverse map: q = c + shift + s R (p - c)  =>  p = c + R^T (q - c - shift) / s
                double qx = x - cx - t.ShiftX, qy = y - cy - t.ShiftY;
                double px = cx + (cos * qx + sin * qy) / t.Scale, py = cy + (-sin * qx + cos * qy) / t.Scale;
                o.Pixels[y * mask.Width + x] = Sample(mask, px, py) >= 0.5f ? 1 : 0;
            }
        }
        return o;
    }

    /// <summary>
    /// Applies <paramref name="t"/> about the centroid and keeps the result inside <paramref name="region"/> (e.g. a
    /// finding inside the lungs). When more than <paramref name="maxOutsideFraction"/> of the moved mask lies outside,
    /// it is first nudged by the smallest whole-pixel shift (up to <paramref name="maxNudge"/> pixels, default an
    /// eighth of the width) that brings it inside (<see cref="ShiftInto"/>); when no nudge does, the transform is
    /// scaled back toward the identity (<see cref="MaskAffine.Partial"/>, bisection, each step nudged too) to the
    /// largest part that fits. Whatever still lies outside is cut off, so the result is always inside the region.
    /// </summary>
    public static MaskFit AffineWithin(GrayImage mask, GrayImage region, MaskAffine t, double maxOutsideFraction = 0.02, int? maxNudge = null)
    {
        SameSize(mask, region, nameof(region));
        Check(t);
        if (maxOutsideFraction is < 0 or > 1 || double.IsNaN(maxOutsideFraction))
            throw new ArgumentOutOfRangeException(nameof(maxOutsideFraction), maxOutsideFraction, "expected a fraction from 0 to 1");
        int nudge = maxNudge ?? Math.Max(2, mask.Width / 8);
        if (nudge < 0) throw new ArgumentOutOfRangeException(nameof(maxNudge), maxNudge, "expected 0 or more pixels");

        (GrayImage Mask, MaskAffine Applied, double Outside) Try(MaskAffine a)
        {
            var m = Affine(mask, a);
            double f = FractionOutside(m, region);
            if (f <= maxOutsideFraction || nudge == 0) return (m, a, f);
            var (dx, dy) = ShiftInto(m, region, nudge, maxOutsideFraction);
            if (dx == 0 && dy == 0) return (m, a, f);
            var shifted = Shift(m, dx, dy);
            return (shifted, a with { ShiftX = a.ShiftX + dx, ShiftY = a.ShiftY + dy }, FractionOutside(shifted, region));
        }

        var best = Try(t);
        if (best.Outside > maxOutsideFraction)
        {
            var source = Try(MaskAffine.Identity);
            if (source.Outside > maxOutsideFraction)
                best = source.Outside < best.Outside ? source : best; // nothing fits: the least outside, cut
            else
            {
                best = source;
                double lo = 0, hi = 1;
                for (int k = 0; k < 12; k++)
                {
                    double mid = (lo + hi) / 2;
                    var r = Try(t.Partial(mid));
                    if (r.Outside <= maxOutsideFraction) { lo = mid; best = r; }
                    else hi = mid;
                }
            }
        }
        return new MaskFit(Intersect(best.Mask, region), best.Applied, best.Outside);
    }

    /// <summary>A random transform within the ranges, the same for the same seed.</summary>
    public static MaskAffine RandomAffine(GrayImage mask, ulong seed, MaskAffineRanges? ranges = null)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var g = ranges ?? new MaskAffineRanges();
        if (g.MinScale <= 0 || g.MaxScale < g.MinScale || g.MaxShiftFraction < 0 || g.MaxRotationDegrees < 0)
            throw new ArgumentException($"mask affine ranges {g} are invalid; expected 0 < MinScale <= MaxScale and non-negative shift and rotation", nameof(ranges));
        var r = new PhantomRandom((long)seed, 0, 0xAFF1);
        return new MaskAffine(
            r.Range(-1, 1) * g.MaxShiftFraction * mask.Width,
            r.Range(-1, 1) * g.MaxShiftFraction * mask.Height,
            r.Range(-1, 1) * g.MaxRotationDegrees,
            Math.Exp(r.Range(Math.Log(g.MinScale), Math.Log(g.MaxScale) + 1e-12)));
    }

    /// <summary>
    /// Elastic deformation (see <see cref="ElasticOptions"/>), the same for the same seed; with a region the result is
    /// cut to it. Alpha 0 returns the mask unchanged (as a binary copy).
    /// </summary>
    public static GrayImage Elastic(GrayImage mask, ElasticOptions options, ulong seed, GrayImage? region = null)
    {
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(options);
        if (region is not null) SameSize(mask, region, nameof(region));
        if (!double.IsFinite(options.Alpha) || options.Alpha < 0) throw new ArgumentException($"elastic Alpha is {options.Alpha}; expected 0 or more", nameof(options));
        if (!double.IsFinite(options.Sigma) || options.Sigma <= 0) throw new ArgumentException($"elastic Sigma is {options.Sigma}; expected above 0 pixels", nameof(options));
        int w = mask.Width, h = mask.Height;
        var (dx, dy) = ElasticField(w, h, options, seed);
        var o = new GrayImage(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                o.Pixels[i] = Sample(mask, x + dx[i], y + dy[i]) >= 0.5f ? 1 : 0;
            }
        return region is null ? o : Intersect(o, region);
    }

    /// <summary>The displacement field of <see cref="Elastic"/> in pixels (row-major), already multiplied by alpha.</summary>
    internal static (double[] Dx, double[] Dy) ElasticField(int w, int h, ElasticOptions options, ulong seed)
    {
        var r = new PhantomRandom((long)seed, 0, 0xE1A5);
        var dx = new double[w * h];
        var dy = new double[w * h];
        for (int i = 0; i < dx.Length; i++) { dx[i] = r.Range(-1, 1); dy[i] = r.Range(-1, 1); }
        GaussianSmooth(dx, w, h, options.Sigma);
        GaussianSmooth(dy, w, h, options.Sigma);
        for (int i = 0; i < dx.Length; i++) { dx[i] *= options.Alpha; dy[i] *= options.Alpha; }
        return (dx, dy);
    }

    /// <summary>
    /// The mask mirrored about the vertical line x = <paramref name="axisX"/> (rounded to the nearest half pixel, so
    /// the mirror is exact: no resampling).
    /// </summary>
    public static GrayImage Mirror(GrayImage mask, double axisX)
    {
        ArgumentNullException.ThrowIfNull(mask);
        int twice = (int)Math.Round(2 * axisX);
        var o = new GrayImage(mask.Width, mask.Height);
        for (int y = 0; y < mask.Height; y++)
            for (int x = 0; x < mask.Width; x++)
            {
                int sx = twice - x;
                if (sx >= 0 && sx < mask.Width && mask.Pixels[y * mask.Width + sx] >= 0.5f) o.Pixels[y * mask.Width + x] = 1;
            }
        return o;
    }

    /// <summary>The mask moved by whole pixels (what leaves the image is lost).</summary>
    public static GrayImage Shift(GrayImage mask, int dx, int dy)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var o = new GrayImage(mask.Width, mask.Height);
        for (int y = 0; y < mask.Height; y++)
            for (int x = 0; x < mask.Width; x++)
            {
                int sx = x - dx, sy = y - dy;
                if (sx >= 0 && sy >= 0 && sx < mask.Width && sy < mask.Height && mask.Pixels[sy * mask.Width + sx] >= 0.5f) o.Pixels[y * mask.Width + x] = 1;
            }
        return o;
    }

    /// <summary>
    /// The whole-pixel shift, nearest first (within <paramref name="maxShift"/> pixels), that puts the most of the mask
    /// inside the region: the first shift whose outside fraction is at most <paramref name="maxOutsideFraction"/>, else
    /// the best one found.
    /// </summary>
    public static (int Dx, int Dy) ShiftInto(GrayImage mask, GrayImage region, int maxShift, double maxOutsideFraction = 0.02)
    {
        SameSize(mask, region, nameof(region));
        var pts = new List<(int X, int Y)>();
        for (int y = 0; y < mask.Height; y++)
            for (int x = 0; x < mask.Width; x++)
                if (mask.Pixels[y * mask.Width + x] >= 0.5f) pts.Add((x, y));
        if (pts.Count == 0) return (0, 0);
        var offsets = new List<(int Dx, int Dy)>();
        for (int dy = -maxShift; dy <= maxShift; dy++)
            for (int dx = -maxShift; dx <= maxShift; dx++)
                if (dx * dx + dy * dy <= maxShift * maxShift) offsets.Add((dx, dy));
        offsets.Sort((a, b) => (a.Dx * a.Dx + a.Dy * a.Dy).CompareTo(b.Dx * b.Dx + b.Dy * b.Dy));
        (int, int) best = (0, 0);
        double bestFrac = double.MaxValue;
        foreach (var (dx, dy) in offsets)
        {
            int outside = 0;
            foreach (var (x, y) in pts)
            {
                int nx = x + dx, ny = y + dy;
                if (nx < 0 || ny < 0 || nx >= region.Width || ny >= region.Height || region.Pixels[ny * region.Width + nx] < 0.5f) outside++;
            }
            double f = outside / (double)pts.Count;
            if (f <= maxOutsideFraction) return (dx, dy);
            if (f < bestFrac) { bestFrac = f; best = (dx, dy); }
        }
        return best;
    }

    // Bilinear sample; outside the image is 0.
    private static float Sample(GrayImage m, double x, double y)
    {
        int x0 = (int)Math.Floor(x), y0 = (int)Math.Floor(y);
        double fx = x - x0, fy = y - y0;
        float P(int xi, int yi) => xi < 0 || yi < 0 || xi >= m.Width || yi >= m.Height ? 0 : (m.Pixels[yi * m.Width + xi] >= 0.5f ? 1 : 0);
        if (fx == 0 && fy == 0) return P(x0, y0);
        return (float)((1 - fx) * (1 - fy) * P(x0, y0) + fx * (1 - fy) * P(x0 + 1, y0) + (1 - fx) * fy * P(x0, y0 + 1) + fx * fy * P(x0 + 1, y0 + 1));
    }

    // Separable Gaussian (radius 3 sigma), edges clamped.
    private static void GaussianSmooth(double[] f, int w, int h, double sigma)
    {
        int rad = Math.Max(1, (int)Math.Ceiling(3 * sigma));
        var k = new double[2 * rad + 1];
        double sum = 0;
        for (int i = -rad; i <= rad; i++) sum += k[i + rad] = Math.Exp(-i * i / (2 * sigma * sigma));
        for (int i = 0; i < k.Length; i++) k[i] /= sum;
        var tmp = new double[f.Length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double s = 0;
                for (int i = -rad; i <= rad; i++) s += k[i + rad] * f[y * w + Math.Clamp(x + i, 0, w - 1)];
                tmp[y * w + x] = s;
            }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double s = 0;
                for (int i = -rad; i <= rad; i++) s += k[i + rad] * tmp[Math.Clamp(y + i, 0, h - 1) * w + x];
                f[y * w + x] = s;
            }
    }

    private static void Check(MaskAffine t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (!double.IsFinite(t.ShiftX) || !double.IsFinite(t.ShiftY) || !double.IsFinite(t.RotationDegrees) || !double.IsFinite(t.Scale) || t.Scale <= 0)
            throw new ArgumentException($"mask transform {t} is invalid; expected finite values and a scale above 0", nameof(t));
    }

    private static void SameSize(GrayImage a, GrayImage b, string name)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Width != b.Width || a.Height != b.Height)
            throw new ArgumentException($"{name} is {b.Width}x{b.Height} but the mask is {a.Width}x{a.Height}; expected the same size", name);
    }
}
