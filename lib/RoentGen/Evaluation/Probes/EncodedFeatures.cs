using static TorchSharp.torch;

namespace RoentGen.Evaluation.Probes;

/// <summary>Frozen features of one split, computed once and cached.</summary>
/// <param name="Cls">(N, FeatureDim) global features.</param>
/// <param name="Patches">(N, GridH·GridW, PatchDim) patch tokens.</param>
/// <param name="GridH">Patch rows.</param>
/// <param name="GridW">Patch columns.</param>
public sealed record EncodedFeatures(Tensor Cls, Tensor Patches, int GridH, int GridW)
{
    /// <summary>
    /// Encodes (N, 1, H, W) images in batches under no_grad, resizing them to the encoder's input size; every
    /// batch's intermediates are freed by a dispose scope and only the features are kept.
    /// </summary>
    public static EncodedFeatures Extract(IImageEncoder encoder, Tensor images, int batchSize = 32)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be at least 1");
        long n = images.shape[0];
        if (n == 0) throw new ArgumentException("cannot encode zero images", nameof(images));
        var cls = new List<Tensor>();
        var patches = new List<Tensor>();
        int gh = 0, gw = 0;
        using (no_grad())
        {
            for (long s = 0; s < n; s += batchSize)
            {
                using var scope = NewDisposeScope();
                var x = images.narrow(0, s, Math.Min(batchSize, n - s));
                int size = encoder.InputSize;
                if (x.shape[2] != size || x.shape[3] != size)
                    x = nn.functional.interpolate(x, size: [size, size], mode: InterpolationMode.Bilinear, align_corners: false);
                var (c, p, h, w) = encoder.Encode(x);
                (gh, gw) = (h, w);
                cls.Add(c.detach().clone().MoveToOuterDisposeScope());
                patches.Add(p.detach().clone().MoveToOuterDisposeScope());
            }
        }
        var result = new EncodedFeatures(cat(cls, 0), cat(patches, 0), gh, gw);
        foreach (var t in cls.Concat(patches)) t.Dispose();
        return result;
    }
}
