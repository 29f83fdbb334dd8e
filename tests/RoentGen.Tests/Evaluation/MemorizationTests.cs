using RoentGen.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation;

public class MemorizationTests
{
    // Smooth random images in [-1, 1]: noise blurred, so SSIM between two different ones is far from 1.
    private static Tensor Images(int count, long seed, int size = 32)
    {
        using var g = new Generator((ulong)seed);
        var noise = rand(count, 1, size, size, generator: g) * 2 - 1;
        return nn.functional.avg_pool2d(nn.functional.pad(noise, [1, 1, 1, 1], PaddingModes.Replicate), 3, stride: 1).clamp(-1, 1);
    }

    [Fact]
    public void A_planted_training_image_is_the_top_pair_with_ssim_one_and_the_only_near_duplicate()
    {
        var training = Images(12, 1);
        var generated = Images(8, 2);
        generated[3] = training[5].clone();                                  // the planted duplicate
        var heldOut = Images(6, 3);
        var seen = new List<long>();
        var audit = Memorization.Audit(generated, training, heldOut, x => x.flatten(1), new MemorizationOptions { ClosestPairs = 3 },
            (done, total) => { Assert.Equal(generated.shape[0] + heldOut.shape[0], total); seen.Add(done); });
        Assert.Equal(generated.shape[0] + heldOut.shape[0], seen[^1]);       // progress covers the generated, then the held-out images
        Assert.True(seen.Zip(seen.Skip(1)).All(p => p.First < p.Second), string.Join(", ", seen));

        var top = audit.ClosestPairs[0];
        Assert.Equal(3, top.Generated);
        Assert.Equal(5, top.Training);
        Assert.Equal(1.0, top.Ssim, 4);
        Assert.Equal(1.0, top.Cosine, 4);
        Assert.Equal(3, audit.ClosestPairs.Count);
        Assert.True(audit.ClosestPairs[1].Ssim < 0.9, $"second pair SSIM {audit.ClosestPairs[1].Ssim}");
        Assert.Equal(1, audit.GeneratedRate.BySsim);
        Assert.Equal(1.0 / 8, audit.GeneratedRate.SsimRate, 12);
        Assert.Equal(5, audit.Generated[3].ByCosine);
        Assert.Equal(0, audit.RealRate.BySsim);
        Assert.Equal(6, audit.RealRate.Images);
        Assert.Equal(12, audit.TrainingImages);
        var grid = Memorization.PairGrid(audit.ClosestPairs, generated, training);
        Assert.Equal(6, grid.Cells.Count);
        Assert.StartsWith("gen 3: SSIM 1.000", grid.Cells[0].Caption);
    }

    [Fact]
    public void Pairwise_ssim_agrees_with_ssim_compute_and_does_not_depend_on_the_block_size()
    {
        var queries = Images(3, 4);
        var references = Images(5, 5);
        var all = Memorization.PairwiseSsim(queries, references);
        var calls = new List<(long Done, long Total)>();
        var oneByOne = Memorization.PairwiseSsim(queries, references, blockElements: 1, progress: (d, t) => calls.Add((d, t)));
        Assert.Equal([(1L, 3L), (2L, 3L), (3L, 3L)], calls);             // one block per query, reported as it finishes
        Assert.Equal(new long[] { 3, 5 }, all.shape);
        for (int q = 0; q < 3; q++)
        {
            // Ssim.Compute wants [0, 1] images: map [-1, 1] the same way the audit does.
            var expected = Ssim.Compute((queries[q].unsqueeze(0).expand(5, -1, -1, -1) + 1) / 2, (references + 1) / 2);
            for (int r = 0; r < 5; r++)
            {
                Assert.Equal(expected[r].item<float>(), all[q, r].item<float>(), 4);
                Assert.Equal(all[q, r].item<float>(), oneByOne[q, r].item<float>(), 5);
            }
        }
        Assert.Throws<ArgumentException>(() => Memorization.PairwiseSsim(Images(1, 6, 8), Images(1, 7, 8)));   // under the 11-pixel window
        Assert.Throws<ArgumentException>(() => new MemorizationOptions { SsimThreshold = 2 }.Validate());
    }
}
