using RoentGen.Data;
using RoentGen.Data.Datasets;

namespace RoentGen.Tests.Data.Datasets;

public class AugmentationTests
{
    private static GrayImage Blob(int n, bool binary)
    {
        // An off-centre ellipse: asymmetric, so a wrong flip or shift shows.
        var img = new GrayImage(n, n);
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                double dx = (x - n * 0.35) / (n * 0.22), dy = (y - n * 0.55) / (n * 0.3);
                double d = dx * dx + dy * dy;
                img[x, y] = binary ? (d < 1 ? 1f : 0f) : (float)Math.Clamp(1.2 - d, 0, 1);
            }
        return img;
    }

    private static GrayImage Threshold(GrayImage g, float t) => new(g.Width, g.Height, g.Pixels.Select(v => v >= t ? 1f : 0f).ToArray());

    [Theory]
    [InlineData("small left pleural effusion. Right lung clear.", "small right pleural effusion. Left lung clear.")]
    [InlineData("LEFT basilar opacity; left-sided chest tube, shift leftward.", "RIGHT basilar opacity; right-sided chest tube, shift rightward.")]
    [InlineData("R lung base atelectasis (L) and R>L effusions. RUL nodule.", "L lung base atelectasis (R) and L>R effusions. LUL nodule.")]
    [InlineData("Drained 2 L of fluid. L1 compression fracture. RML and lingula clear. Bright lungs.", "Drained 2 L of fluid. L1 compression fracture. RML and lingula clear. Bright lungs.")]
    public void Report_sides_swap_keeping_case(string before, string after)
    {
        Assert.Equal(after, Laterality.SwapText(before));
        Assert.Equal(before, Laterality.SwapText(after));
    }

    [Fact]
    public void Flip_swaps_image_masks_names_attributes_and_report_and_twice_is_identity()
    {
        var img = Blob(20, binary: false);
        var left = Threshold(Blob(20, binary: true), 0.5f);
        var s = new CxrSample(img,
            new Dictionary<string, GrayImage> { ["left_lung"] = left, ["heart"] = new GrayImage(20, 20) },
            CxrReport.FromText("FINDINGS: Left lower lobe opacity.\nIMPRESSION: Left pneumonia."),
            new Dictionary<string, string> { ["side"] = "left", ["marker"] = "R", ["site"] = "Kansas" });
        var f = LateralityFlip.Flip(s);
        Assert.Equal(img[3, 7], f.Image[16, 7]);
        Assert.Equal(["heart", "right_lung"], f.Masks.Keys.Order());
        Assert.Equal(left[2, 11], f.Masks["right_lung"][17, 11]);
        Assert.Equal("Right lower lobe opacity.", f.Report.Findings);
        Assert.Equal("Right pneumonia.", f.Report.Impression);
        Assert.Equal("right", f.Attributes["side"]);
        Assert.Equal("L", f.Attributes["marker"]);
        Assert.Equal("Kansas", f.Attributes["site"]);

        var ff = LateralityFlip.Flip(f);
        Assert.Equal(img.Pixels, ff.Image.Pixels);
        Assert.Equal(left.Pixels, ff.Masks["left_lung"].Pixels);
        Assert.Equal(s.Report, ff.Report);
        Assert.Equal(s.Attributes.OrderBy(k => k.Key), ff.Attributes.OrderBy(k => k.Key));
        Assert.Equal("lung_R", Laterality.SwapName("lung_L"));
        Assert.Equal("RightLung", Laterality.SwapName("LeftLung"));
        Assert.Equal("copyright_brightness", Laterality.SwapName("copyright_brightness"));
    }

    [Fact]
    public void Crop_and_rotation_keep_masks_aligned_with_the_image()
    {
        var rng = new Random(5);
        // Binary image: for each geometric transform, the mask made from it must equal the transformed
        // image thresholded, exactly (the same random geometry was used for both).
        var bin = Blob(32, binary: true);
        foreach (ICxrTransform step in new ICxrTransform[] { new RandomResizedCrop(24, 0.5, 0.9), new RandomRotation(15) })
            for (int i = 0; i < 5; i++)
            {
                var s = new CxrSample(bin, new Dictionary<string, GrayImage> { ["m"] = Threshold(bin, 0.5f) }, CxrReport.Empty, new Dictionary<string, string>());
                var t = step.Apply(s, rng);
                Assert.Equal(Threshold(t.Image, 0.5f).Pixels, t.Masks["m"].Pixels);
                Assert.True(t.Masks["m"].Pixels.Sum() > 10); // the blob is still in view
                if (t.Image.Width == bin.Width) Assert.NotEqual(Threshold(bin, 0.5f).Pixels, t.Masks["m"].Pixels); // and it moved
            }
        // Smooth image through crop then rotation: agreement up to edge pixels.
        var pipeline = new Compose(new RandomResizedCrop(24, 0.5, 0.9), new RandomRotation(15));
        var smooth = Blob(32, binary: false);
        var s2 = new CxrSample(smooth, new Dictionary<string, GrayImage> { ["m"] = Threshold(smooth, 0.5f) }, CxrReport.Empty, new Dictionary<string, string>());
        var t2 = pipeline.Apply(s2, new Random(9));
        var disagree = Threshold(t2.Image, 0.5f).Pixels.Zip(t2.Masks["m"].Pixels).Count(p => p.First != p.Second);
        Assert.True(disagree <= 0.03 * 24 * 24, $"{disagree} pixels disagree");
    }

    [Fact]
    public void Transforms_are_deterministic_per_seed_and_stay_in_range()
    {
        var img = Blob(32, binary: false);
        var all = new Compose(new RandomResizedCrop(32), new RandomRotation(10), new IntensityJitter(0.2, 0.2),
            new GammaJitter(), new GaussianBlur(0.5, 1.5, 1.0), new GaussianNoise(0.01, 0.05, 1.0), new LateralityFlip(0.5));
        var a = all.Apply(CxrSample.Of(img), new Random(42));
        var b = all.Apply(CxrSample.Of(img), new Random(42));
        var c = all.Apply(CxrSample.Of(img), new Random(43));
        Assert.Equal(a.Image.Pixels, b.Image.Pixels);
        Assert.NotEqual(a.Image.Pixels, c.Image.Pixels);
        Assert.All(a.Image.Pixels, v => Assert.InRange(v, 0f, 1f));

        // Blur keeps the mean (reflected borders, normalised kernel) and lowers the variation.
        var blurred = new GaussianBlur(1, 1, 1).Apply(CxrSample.Of(img), new Random(1)).Image;
        Assert.Equal(img.Pixels.Average(), blurred.Pixels.Average(), 2);
        static double Tv(GrayImage g) => Enumerable.Range(0, g.Height).Sum(y => Enumerable.Range(1, g.Width - 1).Sum(x => Math.Abs(g[x, y] - g[x - 1, y])));
        Assert.True(Tv(blurred) < Tv(img));
        // Gamma > 1 darkens mid-grey.
        var dark = new GammaJitter(2, 2).Apply(CxrSample.Of(new GrayImage(2, 2, [0.5f, 0.5f, 0.5f, 0.5f])), new Random(1)).Image;
        Assert.Equal(0.25f, dark[0, 0], 4);
    }
}
