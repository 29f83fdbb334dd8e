using System.CommandLine;
using System.Text.Json.Nodes;
using RoentGen.Cli.Commands;
using RoentGen.Data;
using RoentGen.Evaluation;
using RoentGen.Tests.Cli;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation;

public sealed class ImageStatisticsTests
{
    // Gaussian noise whose power spectrum is ∝ 1/f^exponent (exponent 0: white), rescaled to [0, 1].
    private static GrayImage ColouredNoise(int size, double exponent, int seed)
    {
        var rng = new Random(seed);
        var px = new double[size * size];
        for (int i = 0; i < px.Length; i++) px[i] = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        double[] shaped;
        using (var scope = NewDisposeScope())
        {
            var f = fft.fft2(tensor(px, [size, size]).to_type(ScalarType.ComplexFloat64));
            var freq = fft.fftfreq(size, dtype: ScalarType.Float64) * size;
            var r = (freq.view(-1, 1).square() + freq.view(1, -1).square()).sqrt().clamp_min(1);
            var amplitude = r.pow(-exponent / 2);
            shaped = fft.ifft2(f * amplitude).real.contiguous().data<double>().ToArray();
        }
        double min = shaped.Min(), max = shaped.Max();
        return new GrayImage(size, size, shaped.Select(v => (float)((v - min) / (max - min))).ToArray());
    }

    [Fact]
    public void NPS_slope_is_near_0_for_white_noise_and_near_minus_2_for_1_over_f_squared_noise()
    {
        var white = Enumerable.Range(0, 4).Select(s => ImageStatistics.NpsSlope(ColouredNoise(128, 0, s))).Average();
        var brown = Enumerable.Range(0, 4).Select(s => ImageStatistics.NpsSlope(ColouredNoise(128, 2, s))).Average();
        Assert.InRange(white, -0.1, 0.1);
        Assert.InRange(brown, -2.15, -1.85);
    }

    [Fact]
    public void Wasserstein_1_of_a_set_with_itself_is_0_and_of_a_shifted_set_is_the_shift()
    {
        var rng = new Random(1);
        var a = Enumerable.Range(0, 500).Select(_ => rng.NextDouble() * 0.6).Order().ToList();
        Assert.Equal(0, ImageStatistics.Wasserstein1(a, a), 12);
        Assert.Equal(0.25, ImageStatistics.Wasserstein1(a, a.Select(v => v + 0.25).ToList()), 12);
        // Unequal sizes: {0, 1} against {0.5}: ∫|Q_a − Q_b| = 0.5·0.5 + 0.5·0.5.
        Assert.Equal(0.5, ImageStatistics.Wasserstein1([0, 1], [0.5]), 12);
        var h = new[] { 0.5, 0.5, 0 };
        Assert.Equal(0, ImageStatistics.JensenShannon(h, h), 12);
        Assert.Equal(Math.Log(2), ImageStatistics.JensenShannon([1, 0], [0, 1]), 12);
    }

    [Fact]
    public void Set_histogram_distance_with_itself_is_0_and_with_a_brightened_copy_is_the_offset()
    {
        var images = Enumerable.Range(0, 3).Select(s => Disk(64, 0.3f + 0.05f * s)).ToList();
        var set = ImageStatistics.OfSet("a", images);
        Assert.Equal(0, ImageStatistics.Compare(set, ImageStatistics.OfSet("a", images)).HistogramW1, 12);
        var brighter = images.Select(i => new GrayImage(i.Width, i.Height, i.Pixels.Select(v => v > 0 ? v + 0.1f : 0).ToArray())).ToList();
        Assert.Equal(0.1, ImageStatistics.Compare(set, ImageStatistics.OfSet("b", brighter)).HistogramW1, 5);
    }

    // A bright disk (value v) on black with a dark hole (value 0.05) inside: the body is the filled disk.
    private static GrayImage Disk(int size, float v)
    {
        var px = new float[size * size];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double r = Math.Sqrt((x - size / 2.0) * (x - size / 2.0) + (y - size / 2.0) * (y - size / 2.0));
                px[y * size + x] = r < size * 0.1 ? 0.05f : r < size * 0.35 ? v : 0f;
            }
        return new GrayImage(size, size, px);
    }

    [Fact]
    public void Body_mask_is_the_largest_bright_component_with_its_holes_filled()
    {
        var img = Disk(64, 0.6f);
        img.Pixels[0] = 0.9f;   // a lone bright pixel in the corner is not the body
        var body = ImageStatistics.BodyMask(img);
        Assert.False(body[0]);
        Assert.True(body[32 * 64 + 32], "the dark hole inside the disk belongs to the body");
        double expected = Math.PI * 0.35 * 0.35;
        Assert.InRange(body.Count(b => b) / (64.0 * 64), expected - 0.02, expected + 0.02);
    }

    [Fact]
    public void Edge_density_of_a_flat_image_is_0_and_of_a_step_is_its_two_columns()
    {
        Assert.Equal(0, ImageStatistics.EdgeDensity(new GrayImage(32, 32, Enumerable.Repeat(0.4f, 32 * 32).ToArray())));
        var step = new GrayImage(32, 32, Enumerable.Range(0, 32 * 32).Select(i => i % 32 < 16 ? 0f : 1f).ToArray());
        Assert.Equal(2.0 / 30, ImageStatistics.EdgeDensity(step), 12);   // columns 15 and 16 of the 30 interior ones
    }

    [Fact]
    public void Data_stats_prints_a_table_and_writes_json_with_the_distances()
    {
        var dir = TestPaths.NewTempDir("roentgen-stats");
        try
        {
            RoentGen.Data.Phantoms.PhantomDataset.WriteFolder(dir, new RoentGen.Data.Phantoms.PhantomOptions { Size = 64, Seed = 3 }, 3);
            var json = Path.Combine(dir, "stats.json");
            var root = new RootCommand { DataCommand.Build() };
            var (rc, stdout, err) = CliCases.Invoke(root, "data", "stats", "--data", "phantoms", "--reference", dir, "--count", "3", "--size", "64", "--json", json);
            Assert.True(rc == 0, err);
            Assert.Contains("nps_slope", stdout);
            var j = JsonNode.Parse(File.ReadAllText(json))!;
            Assert.Equal(3, j["set"]!["images"]!.GetValue<int>());
            Assert.Equal(3, j["reference"]!["images"]!.GetValue<int>());
            Assert.InRange(j["histogram_w1"]!.GetValue<double>(), 0, 1);
            Assert.Equal(64, j["set"]!["histogram_64"]!.AsArray().Count);
            (rc, _, err) = CliCases.Invoke(root, "data", "stats", "--data", "phantoms", "--count", "0", "--json", json);
            Assert.Equal(RoentGen.Cli.Commands.Cli.UserError, rc);
            Assert.Contains("--count", CliCases.AssertOneLine(err));
        }
        finally { TestPaths.DeleteQuietly(dir); }
    }
}
