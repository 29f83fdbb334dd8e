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

    [Fact]
    public void Candidate_ssim_equals_the_pairwise_ssim_of_the_pairs_it_computes_and_finds_a_planted_copy()
    {
        var queries = Images(4, 8);
        var references = Images(20, 9);
        queries[2] = references[13].clone();                                 // the planted copy
        var candidates = Memorization.TopCorrelated(queries, references, 5);
        Assert.Equal(new long[] { 4, 5 }, candidates.shape);
        Assert.Equal(13, candidates[2, 0].item<long>());                   // the copy correlates best with its original
        var all = Memorization.PairwiseSsim(queries, references);
        var calls = new List<(long Done, long Total)>();
        var some = Memorization.CandidateSsim(queries, references, candidates, blockElements: 1, progress: (d, t) => calls.Add((d, t)));
        Assert.Equal(new long[] { 4, 5 }, some.shape);
        Assert.Equal([(1L, 4L), (2L, 4L), (3L, 4L), (4L, 4L)], calls);
        for (int q = 0; q < 4; q++)
            for (int j = 0; j < 5; j++)
                Assert.Equal(all[q, candidates[q, j].item<long>()].item<float>(), some[q, j].item<float>(), 5);
        Assert.Throws<ArgumentException>(() => Memorization.CandidateSsim(queries, references, candidates.narrow(0, 0, 3)));       // one row per query
        Assert.Throws<ArgumentException>(() => Memorization.CandidateSsim(queries, references, full_like(candidates, 20)));       // outside the references

        // The audit with candidates: the planted copy is found as exactly as by the full search, and every image's nearest
        // SSIM is at most the full search's (it looks at fewer training images), equal where the full search's nearest
        // image is among its candidates.
        var options = new MemorizationOptions { ClosestPairs = 2 };
        var exact = Memorization.Audit(queries, references, null, x => x.flatten(1), options);
        var fast = Memorization.Audit(queries, references, null, x => x.flatten(1), options with { SsimCandidates = 5 });
        Assert.Equal(2, fast.ClosestPairs[0].Generated);
        Assert.Equal(13, fast.ClosestPairs[0].Training);
        Assert.Equal(1.0, fast.ClosestPairs[0].Ssim, 4);
        Assert.Equal(exact.GeneratedRate.BySsim, fast.GeneratedRate.BySsim);
        for (int q = 0; q < 4; q++)
        {
            Assert.True(fast.Generated[q].Ssim <= exact.Generated[q].Ssim + 1e-6, $"image {q}");
            var row = Enumerable.Range(0, 5).Select(j => candidates[q, j].item<long>()).ToList();
            if (row.Contains(exact.Generated[q].BySsim)) Assert.Equal(exact.Generated[q].BySsim, fast.Generated[q].BySsim);
            Assert.Equal(exact.Generated[q].ByCosine, fast.Generated[q].ByCosine);                       // the cosine search is unchanged
        }
        // As many candidates as training images is the full search.
        var whole = Memorization.Audit(queries, references, null, x => x.flatten(1), options with { SsimCandidates = 20 });
        Assert.Equal(exact.Generated.Select(m => m.BySsim), whole.Generated.Select(m => m.BySsim));
        Assert.Throws<ArgumentException>(() => new MemorizationOptions { SsimCandidates = 0 }.Validate());
        Assert.DoesNotContain("SsimCandidates", System.Text.Json.JsonSerializer.Serialize(new MemorizationOptions()));   // older audits' JSON unchanged
        Assert.Contains("\"SsimCandidates\":5", System.Text.Json.JsonSerializer.Serialize(options with { SsimCandidates = 5 }));
    }
}
