using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Training;
using static TorchSharp.torch;
using RoentGen.Methods;

namespace RoentGen.Tests.Methods;

public class MultiCropTests
{
    private static readonly MultiCropOptions Tiny = new() { GlobalSize = 32, LocalSize = 16, LocalCrops = 3 };

    private static IReadOnlyList<GrayImage> Phantoms(int n) =>
        new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 5 }).Generate(0, n).Select(c => c.Image).ToList();

    [Fact]
    public void Batches_have_two_global_and_n_local_crops_in_minus_one_to_one()
    {
        using var scope = NewDisposeScope();
        var crops = new MultiCrop(Tiny).Apply(Phantoms(3), new Random(1));
        Assert.Equal(2, crops.Globals.Length);
        Assert.Equal(3, crops.Locals.Length);
        foreach (var g in crops.Globals) Assert.Equal(new long[] { 3, 1, 32, 32 }, g.shape);
        foreach (var l in crops.Locals) Assert.Equal(new long[] { 3, 1, 16, 16 }, l.shape);
        foreach (var t in crops.Globals.Concat(crops.Locals))
        {
            Assert.True(t.min().item<float>() >= -1f && t.max().item<float>() <= 1f, "crop values leave [-1, 1]");
            Assert.True(t.std().item<float>() > 0.01f, "a phantom crop should not be flat");
        }
        // The two global views of an image differ (different geometry and jitter).
        Assert.False(crops.Globals[0].allclose(crops.Globals[1], atol: 1e-3));
    }

    [Fact]
    public void Same_seed_gives_the_same_crops_and_another_seed_does_not()
    {
        using var scope = NewDisposeScope();
        var images = Phantoms(2);
        var mc = new MultiCrop(Tiny);
        var a = mc.Apply(images, new Random(7));
        var b = mc.Apply(images, new Random(7));
        var c = mc.Apply(images, new Random(8));
        for (int i = 0; i < 2; i++) Assert.True(a.Globals[i].eq(b.Globals[i]).all().item<bool>(), $"global crop {i} not reproducible");
        for (int i = 0; i < 3; i++) Assert.True(a.Locals[i].eq(b.Locals[i]).all().item<bool>(), $"local crop {i} not reproducible");
        Assert.False(a.Globals[0].eq(c.Globals[0]).all().item<bool>());
    }

    [Fact]
    public void Crops_of_a_constant_image_are_constant()
    {
        // Cropping, resampling, blur, contrast about the mean, gamma and solarization all keep a flat image flat:
        // anything else would mean pixels from outside the image (padding) leaked in.
        var flat = new GrayImage(50, 40, Enumerable.Repeat(0.6f, 50 * 40).ToArray());
        var mc = new MultiCrop(Tiny with { SolarizeProbability = 1.0, LocalBlurProbability = 1.0 });
        var rng = new Random(3);
        for (int k = 0; k < 5; k++)
        {
            var (globals, locals) = mc.CropImage(flat, rng);
            foreach (var crop in globals.Concat(locals))
            {
                float min = crop.Pixels.Min(), max = crop.Pixels.Max();
                Assert.True(max - min < 1e-4f, $"a crop of a constant image spans [{min}, {max}]");
            }
        }
    }

    [Fact]
    public void Crops_come_from_the_image_without_flips()
    {
        // Left half dark, right half bright: a full-area crop without jitter/blur keeps dark on the left.
        int w = 64;
        var px = new float[w * w];
        for (int y = 0; y < w; y++) for (int x = 0; x < w; x++) px[y * w + x] = x < w / 2 ? 0.1f : 0.9f;
        var img = new GrayImage(w, w, px);
        var mc = new MultiCrop(Tiny with
        {
            GlobalScaleMin = 1.0, GlobalScaleMax = 1.0, JitterProbability = 0, FirstGlobalBlurProbability = 0,
            SecondGlobalBlurProbability = 0, SolarizeProbability = 0, LocalCrops = 0,
        });
        for (int k = 0; k < 10; k++)
        {
            var (globals, _) = mc.CropImage(img, new Random(k));
            foreach (var g in globals)
            {
                Assert.True(g[2, 16] < 0.2f && g[29, 16] > 0.8f, $"seed {k}: left {g[2, 16]}, right {g[29, 16]}");
                Assert.All(g.Pixels, v => Assert.True(v >= 0.1f - 1e-5f && v <= 0.9f + 1e-5f));
            }
        }
    }

    [SkippableFact]
    public void Real_images_from_a_labelled_folder_crop_into_batches()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real-CXR sample is not beside this checkout");
        var source = new TrainingRecords(ImageFolderLoader.LoadFolder(TestPaths.RealSample!), 64);
        Assert.Equal(60, source.Count);
        var images = source.Images(0, 3, new Random(1));
        Assert.All(images, i => Assert.Equal((64, 64), (i.Width, i.Height)));
        using var scope = NewDisposeScope();
        var crops = new MultiCrop(Tiny).Apply(images, new Random(2));
        Assert.Equal(new long[] { 3, 1, 16, 16 }, crops.Locals[2].shape);
        Assert.True(crops.Globals[0].std().item<float>() > 0.05f, "real X-ray crops should have contrast");
        Assert.Throws<DirectoryNotFoundException>(() => ImageFolderLoader.LoadFolder(Path.Combine(TestPaths.RealSample!, "nope")));
    }

    [Fact]
    public void Bad_settings_are_named()
    {
        var ex = Assert.Throws<ArgumentException>(() => new MultiCrop(Tiny with { LocalScaleMin = 0.5, LocalScaleMax = 0.3 }));
        Assert.Contains("local scale range", ex.Message);
        Assert.Throws<ArgumentException>(() => new MultiCrop(Tiny).Apply([], new Random(0)));
    }
}
