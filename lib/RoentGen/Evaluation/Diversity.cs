using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>
/// Sample diversity as the mean pairwise MS-SSIM (Wang, Simoncelli and Bovik 2003) within groups of images, as
/// RoentGen reports it for several samples of one prompt: 1 means the samples are identical, lower is more diverse.
/// </summary>
public static class Diversity
{
    /// <summary>
    /// Mean MS-SSIM over every unordered pair within each group, pooled over all pairs of all groups (a group of
    /// K images contributes K(K−1)/2 pairs; groups of one image contribute none).
    /// </summary>
    /// <param name="groups">Groups of (K, 1, H, W) images (e.g. the samples of one prompt), all of one size, values in [low, high].</param>
    /// <param name="low">Value that maps to intensity 0 (default −1, as the diffusion models output).</param>
    /// <param name="high">Value that maps to intensity 1.</param>
    /// <exception cref="ArgumentException">A group is not (K, C, H, W), sizes differ, or no group has two images.</exception>
    public static double MsSsim(IEnumerable<Tensor> groups, float low = -1f, float high = 1f)
    {
        var perGroup = MsSsimPerGroup(groups, low, high);
        double sum = 0; long pairs = 0;
        foreach (var (mean, count) in perGroup)
        {
            if (count == 0) continue;
            sum += mean * count;
            pairs += count;
        }
        if (pairs == 0) throw new ArgumentException("MS-SSIM diversity needs at least one group with two or more images");
        return sum / pairs;
    }

    /// <summary>The mean pairwise MS-SSIM of each group and its number of pairs (NaN and 0 for a group of one image).</summary>
    /// <exception cref="ArgumentException">A group is not (K, C, H, W) or sizes differ.</exception>
    public static IReadOnlyList<(double Mean, int Pairs)> MsSsimPerGroup(IEnumerable<Tensor> groups, float low = -1f, float high = 1f)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (!(high > low)) throw new ArgumentException($"value range [{low}, {high}] must have high > low");
        var result = new List<(double, int)>();
        long[]? imageShape = null;
        int g = 0;
        foreach (var group in groups)
        {
            if (group.dim() != 4)
                throw new ArgumentException($"group {g} must be (K, C, H, W) images, got shape [{string.Join(", ", group.shape)}]");
            var shape = group.shape[1..];
            imageShape ??= shape;
            if (!shape.SequenceEqual(imageShape))
                throw new ArgumentException($"group {g} holds images of shape [{string.Join(", ", shape)}] but group 0 holds [{string.Join(", ", imageShape)}]");
            int k = checked((int)group.shape[0]);
            if (k < 2) { result.Add((double.NaN, 0)); g++; continue; }
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            // Map to [0, 1] as MS-SSIM's constants assume; float32, pairs in chunks to bound memory.
            var unit = ((group.detach().to(ScalarType.Float32) - low) / (high - low)).clamp(0, 1);
            var (ii, jj) = Pairs(k);
            double sum = 0;
            for (int start = 0; start < ii.Length; start += PairChunk)
            {
                using var chunkScope = NewDisposeScope();
                int len = Math.Min(PairChunk, ii.Length - start);
                var x = unit.index_select(0, tensor(ii[start..(start + len)]));
                var y = unit.index_select(0, tensor(jj[start..(start + len)]));
                sum += Ssim.MultiScale(x, y).to(ScalarType.Float64).sum().item<double>();   // (len) → scalar
            }
            result.Add((sum / ii.Length, ii.Length));
            g++;
        }
        return result;
    }

    private const int PairChunk = 64;

    private static (long[] I, long[] J) Pairs(int k)
    {
        var i = new List<long>(); var j = new List<long>();
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++) { i.Add(a); j.Add(b); }
        return (i.ToArray(), j.ToArray());
    }
}
