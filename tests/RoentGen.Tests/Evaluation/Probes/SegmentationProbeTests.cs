using RoentGen.Evaluation.Probes;
using RoentGen.Vision;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation.Probes;

public class SegmentationProbeTests
{
    internal static VitConfig TinyVit => new() { ImageSize = 64, PatchSize = 8, HiddenSize = 48, Layers = 2, Heads = 2 };

    // 8x8 token grid; tokens inside a random rectangle carry +1 in channel 0. Masks are the rectangle at 32x32.
    private static (EncodedFeatures F, Dictionary<string, ProbeMask> M) Rectangles(int n, int seed)
    {
        var rng = new Random(seed);
        const int g = 8, d = 10, s = 32;
        var tokens = new float[n, g * g, d];
        var masks = new float[n, s, s];
        for (int i = 0; i < n; i++)
        {
            int r0 = rng.Next(0, 4), c0 = rng.Next(0, 4), r1 = r0 + rng.Next(2, 5), c1 = c0 + rng.Next(2, 5);
            for (int r = 0; r < g; r++)
                for (int c = 0; c < g; c++)
                {
                    bool inside = r >= r0 && r < r1 && c >= c0 && c < c1;
                    for (int k = 0; k < d; k++) tokens[i, r * g + c, k] = (float)(0.3 * LinearProbeTests.Gauss(rng));
                    if (inside) tokens[i, r * g + c, 0] += 1f;
                    for (int y = 0; y < 4; y++) for (int x = 0; x < 4; x++) masks[i, r * 4 + y, c * 4 + x] = inside ? 1 : 0;
                }
        }
        var f = new EncodedFeatures(zeros(n, d), tensor(tokens), g, g);
        return (f, new Dictionary<string, ProbeMask> { ["box"] = new ProbeMask(tensor(masks), Enumerable.Repeat(true, n).ToArray()) });
    }

    /// <summary>
    /// Dice of the trivial prediction "foreground everywhere" over the images that have the mask, pooled as the probe
    /// pools it: 2|G| / (pixels + |G|).
    /// </summary>
    internal static double AllForegroundDice(ProbeMask m)
    {
        double truth = 0, pixels = 0;
        for (int i = 0; i < m.Present.Length; i++)
        {
            if (!m.Present[i]) continue;
            using var mask = m.Masks[i];
            truth += mask.gt(0.5f).sum().item<long>();
            pixels += mask.numel();
        }
        return 2 * truth / (pixels + truth);
    }

    [Fact]
    public void All_foreground_baseline_matches_a_hand_count()
    {
        // Image 0: 4 of 16 pixels; image 1: 8 of 16; image 2 is absent (its pixels do not count).
        var masks = zeros(3, 4, 4);
        masks[0].view(-1).narrow(0, 0, 4).fill_(1);
        masks[1].view(-1).narrow(0, 0, 8).fill_(1);
        masks[2].fill_(1);
        Assert.Equal(2.0 * 12 / (32 + 12), AllForegroundDice(new ProbeMask(masks, [true, true, false])), 9);
    }

    [Fact]
    public void Linear_head_learns_a_mask_written_in_the_tokens()
    {
        var (ftr, mtr) = Rectangles(64, 1);
        var (fte, mte) = Rectangles(32, 2);
        var r = SegmentationProbe.Train(ftr, mtr, fte, mte, new SegmentationProbeOptions { Epochs = 20, BatchSize = 16, LearningRate = 5e-2 });
        Assert.True(r.PerStructure.Single().Dice > 0.85, $"Dice {r.PerStructure.Single().Dice}");
        // The same head on shuffled (uninformative) test tokens does far worse.
        var shuffled = fte with { Patches = fte.Patches.index_select(1, randperm(64)) };
        var bad = SegmentationProbe.Train(ftr, mtr, shuffled, mte, new SegmentationProbeOptions { Epochs = 20, BatchSize = 16, LearningRate = 5e-2 });
        Assert.True(bad.PerStructure.Single().Dice < r.PerStructure.Single().Dice - 0.2, $"shuffled Dice {bad.PerStructure.Single().Dice}");
    }

    [Fact]
    public void Random_encoder_on_phantoms_reports_finite_dice_per_structure()
    {
        var data = ProbeData.FromPhantoms(24, size: 64, seed: 3);
        var enc = new RandomEncoder(TinyVit);
        var tr = EncodedFeatures.Extract(enc, data.Train.Images, 8);
        var te = EncodedFeatures.Extract(enc, data.Test.Images, 8);
        Assert.Equal(64, tr.Patches.shape[1]);
        var r = SegmentationProbe.Train(tr, data.Train.Masks, te, data.Test.Masks, SegmentationProbeOptions.Quick);
        var lungs = r.PerStructure.Single(s => s.Structure == "lungs");
        // Predicting "lung" on every pixel already scores a fair Dice: the probe has to beat that baseline.
        double allForeground = AllForegroundDice(data.Test.Masks["lungs"]);
        Assert.True(double.IsFinite(lungs.Dice) && lungs.Dice > allForeground + 0.05, $"lung Dice {lungs.Dice} vs all-foreground {allForeground}");
        Assert.Contains(r.PerStructure, s => s.Structure == "heart");
        Assert.True(double.IsFinite(r.FinalLoss));
    }
}
