using RoentGen.Data;
using RoentGen.Synthetic;

namespace RoentGen.Tests.Synthetic;

/// <summary>Geometric mask transforms on drawn shapes: area kept by shift and rotation, scale, containment, elastic, mirror, determinism.</summary>
public sealed class MaskTransformsTests
{
    private static GrayImage Ellipse(int n, double cx, double cy, double rx, double ry)
    {
        var m = new GrayImage(n, n);
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
                if ((x - cx) * (x - cx) / (rx * rx) + (y - cy) * (y - cy) / (ry * ry) <= 1) m[x, y] = 1;
        return m;
    }

    [Theory]
    [InlineData(7.3, -4.6, 0)]
    [InlineData(0, 0, 33)]
    [InlineData(-11.5, 9.25, 71)]
    [InlineData(3, 2, -140)]
    public void Shift_and_rotation_keep_the_area_within_2_percent_and_move_the_centroid_by_the_shift(double dx, double dy, double degrees)
    {
        var m = Ellipse(128, 60, 64, 22, 12);
        var moved = MaskTransforms.Affine(m, new MaskAffine(dx, dy, degrees));
        int a0 = MaskTransforms.Area(m), a1 = MaskTransforms.Area(moved);
        Assert.InRange(a1, a0 * 0.98, a0 * 1.02);
        var (x0, y0) = MaskTransforms.Centroid(m)!.Value;
        var (x1, y1) = MaskTransforms.Centroid(moved)!.Value;
        Assert.Equal(x0 + dx, x1, 0.5);
        Assert.Equal(y0 + dy, y1, 0.5);
        Assert.All(moved.Pixels, v => Assert.True(v is 0f or 1f));
    }

    [Fact]
    public void A_whole_pixel_shift_is_exact_and_a_rotation_turns_the_long_axis()
    {
        var m = Ellipse(64, 30, 32, 14, 6);
        var shifted = MaskTransforms.Affine(m, new MaskAffine(5, -3));
        Assert.Equal(MaskTransforms.Shift(m, 5, -3).Pixels, shifted.Pixels);
        var turned = MaskTransforms.Affine(m, new MaskAffine(RotationDegrees: 90));
        // the ellipse was wide: turned by 90 degrees it is tall
        int width = Enumerable.Range(0, 64).Count(x => Enumerable.Range(0, 64).Any(y => turned[x, y] == 1));
        int height = Enumerable.Range(0, 64).Count(y => Enumerable.Range(0, 64).Any(x => turned[x, y] == 1));
        Assert.True(height > 2 * width, $"rotated ellipse is {width} wide and {height} tall");
    }

    [Fact]
    public void Scale_multiplies_the_area_by_its_square()
    {
        var m = Ellipse(128, 64, 64, 15, 10);
        int a0 = MaskTransforms.Area(m);
        Assert.InRange(MaskTransforms.Area(MaskTransforms.Affine(m, new MaskAffine(Scale: 1.5))), a0 * 2.25 * 0.96, a0 * 2.25 * 1.04);
        Assert.InRange(MaskTransforms.Area(MaskTransforms.Affine(m, new MaskAffine(Scale: 0.7))), a0 * 0.49 * 0.93, a0 * 0.49 * 1.07);
        Assert.Throws<ArgumentException>(() => MaskTransforms.Affine(m, new MaskAffine(Scale: 0)));
    }

    [Fact]
    public void AffineWithin_keeps_the_mask_inside_the_region_nudging_or_scaling_back_the_move()
    {
        var region = Ellipse(128, 40, 64, 25, 40);          // a "lung"
        var lesion = Ellipse(128, 40, 64, 6, 6);
        // a small move stays as asked
        var small = MaskTransforms.AffineWithin(lesion, region, new MaskAffine(4, 6, 20));
        Assert.Equal(new MaskAffine(4, 6, 20), small.Applied);
        Assert.Equal(0, MaskTransforms.FractionOutside(small.Mask, region));
        Assert.InRange(MaskTransforms.Area(small.Mask), MaskTransforms.Area(lesion) * 0.97, MaskTransforms.Area(lesion) * 1.03);
        // a move far out of the region is held back inside it, area kept
        var far = MaskTransforms.AffineWithin(lesion, region, new MaskAffine(70, 0));
        Assert.Equal(0, MaskTransforms.FractionOutside(far.Mask, region));
        Assert.True(far.Applied.ShiftX < 70 && far.Applied.ShiftX > 0, $"applied {far.Applied}");
        Assert.InRange(MaskTransforms.Area(far.Mask), MaskTransforms.Area(lesion) * 0.97, MaskTransforms.Area(lesion) * 1.03);
        Assert.True(far.ClippedFraction <= 0.02);
        // growth past the region's size is scaled back
        var huge = MaskTransforms.AffineWithin(lesion, region, new MaskAffine(Scale: 8));
        Assert.Equal(0, MaskTransforms.FractionOutside(huge.Mask, region));
        Assert.InRange(huge.Applied.Scale, 1.0, 8.0);
    }

    [Fact]
    public void Elastic_with_alpha_zero_is_the_identity_and_is_deterministic_by_seed()
    {
        var m = Ellipse(96, 40, 50, 18, 11);
        Assert.Equal(m.Pixels, MaskTransforms.Elastic(m, new ElasticOptions(Alpha: 0, Sigma: 4), seed: 7).Pixels);
        var a = MaskTransforms.Elastic(m, new ElasticOptions(), seed: 7);
        var b = MaskTransforms.Elastic(m, new ElasticOptions(), seed: 7);
        var c = MaskTransforms.Elastic(m, new ElasticOptions(), seed: 8);
        Assert.Equal(a.Pixels, b.Pixels);
        Assert.NotEqual(a.Pixels, c.Pixels);
        Assert.NotEqual(m.Pixels, a.Pixels);
        var region = Ellipse(96, 40, 50, 16, 30);
        Assert.Equal(0, MaskTransforms.FractionOutside(MaskTransforms.Elastic(m, new ElasticOptions(), 7, region), region));
        Assert.Throws<ArgumentException>(() => MaskTransforms.Elastic(m, new ElasticOptions(Sigma: 0), 1));
    }

    [Theory]
    [InlineData(150, 8)]
    [InlineData(60, 4)]
    [InlineData(300, 12)]
    public void Elastic_displacement_has_the_documented_rms(double alpha, double sigma)
    {
        // ElasticOptions: RMS displacement per axis is about alpha / (2 sigma sqrt(3 pi)) (smoothed uniform noise), away
        // from the image's edges (there the clamped smoothing repeats edge values); averaged over seeds
        const int n = 256;
        int border = (int)Math.Ceiling(3 * sigma);
        double sum = 0; long count = 0;
        for (ulong seed = 0; seed < 4; seed++)
        {
            var (dx, dy) = MaskTransforms.ElasticField(n, n, new ElasticOptions(alpha, sigma), seed);
            for (int y = border; y < n - border; y++)
                for (int x = border; x < n - border; x++) { sum += dx[y * n + x] * dx[y * n + x] + dy[y * n + x] * dy[y * n + x]; count += 2; }
        }
        double expected = alpha / (2 * sigma * Math.Sqrt(3 * Math.PI));
        Assert.InRange(Math.Sqrt(sum / count), expected * 0.85, expected * 1.15);
    }

    [Fact]
    public void Random_affine_is_the_same_for_the_same_seed_and_within_its_ranges()
    {
        var m = new GrayImage(200, 100);
        var ranges = new MaskAffineRanges(MaxShiftFraction: 0.1, MaxRotationDegrees: 15, MinScale: 0.9, MaxScale: 1.2);
        Assert.Equal(MaskTransforms.RandomAffine(m, 42, ranges), MaskTransforms.RandomAffine(m, 42, ranges));
        Assert.NotEqual(MaskTransforms.RandomAffine(m, 42, ranges), MaskTransforms.RandomAffine(m, 43, ranges));
        for (ulong s = 0; s < 50; s++)
        {
            var t = MaskTransforms.RandomAffine(m, s, ranges);
            Assert.InRange(Math.Abs(t.ShiftX), 0, 20);
            Assert.InRange(Math.Abs(t.ShiftY), 0, 10);
            Assert.InRange(Math.Abs(t.RotationDegrees), 0, 15);
            Assert.InRange(t.Scale, 0.9, 1.2);
        }
    }

    [Fact]
    public void Mirror_about_a_half_pixel_axis_is_exact_and_its_own_inverse()
    {
        var m = Ellipse(64, 20, 30, 7, 5);
        var f = MaskTransforms.Mirror(m, 31.5);
        Assert.Equal(MaskTransforms.Area(m), MaskTransforms.Area(f));
        Assert.Equal(63 - 20, MaskTransforms.Centroid(f)!.Value.X, 1e-9);
        Assert.Equal(m.Pixels, MaskTransforms.Mirror(f, 31.5).Pixels);
    }
}
