using RoentGen.Vision.Segmentation;
using static TorchSharp.torch;

namespace RoentGen.Tests;

public class TestTimeAugmentationTests
{
    // A "network" that thresholds the image itself: the right mask of a bright disc is the disc.
    private static Tensor Threshold(Tensor x) => (x - 0.5) * 20;

    private static Tensor Disc(int size, double radius)
    {
        var v = new float[size * size];
        double c = (size - 1) / 2.0;
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                v[y * size + x] = Math.Sqrt((x - c) * (x - c) + (y - c) * (y - c)) <= radius ? 1f : 0f;
        return tensor(v, [1, 1, size, size]);
    }

    [Fact]
    public void One_zoom_of_one_is_the_plain_sigmoid()
    {
        using var image = Disc(32, 9);
        var tta = new TestTimeAugmentation { Zooms = [1.0] };
        using var p = tta.Probabilities(image, Threshold);
        using var plain = Threshold(image).sigmoid();
        Assert.Equal(0.0, (p - plain).abs().max().item<float>(), 6);
    }

    [Fact]
    public void Zoomed_predictions_are_warped_back_onto_the_input_frame()
    {
        using var image = Disc(48, 12);
        var tta = new TestTimeAugmentation { Zooms = [0.8, 1.0, 1.25] };
        using var mask = tta.Probabilities(image, Threshold).ge(0.5).to_type(ScalarType.Float32);
        double inter = (mask * image).sum().item<float>(), total = mask.sum().item<float>() + image.sum().item<float>();
        Assert.True(2 * inter / total > 0.97, $"Dice of the averaged mask with the disc is {2 * inter / total:0.000}");
        // A wrong inverse (reading the zoomed prediction without warping back) would shrink or grow the disc by 20-25 %.
        var single = new TestTimeAugmentation { Zooms = [1.25] };
        using var zoomedOnly = single.Probabilities(image, Threshold).ge(0.5).to_type(ScalarType.Float32);
        Assert.InRange(zoomedOnly.sum().item<float>() / image.sum().item<float>(), 0.9, 1.1);
    }

    [Fact]
    public void Bad_zooms_are_refused_by_name()
    {
        var e = Assert.Throws<ArgumentException>(() => new TestTimeAugmentation { Zooms = [1.0, 0] }.Validate());
        Assert.Contains("Zooms", e.Message);
        Assert.Throws<ArgumentException>(() => new TestTimeAugmentation { Zooms = [] }.Validate());
    }
}
