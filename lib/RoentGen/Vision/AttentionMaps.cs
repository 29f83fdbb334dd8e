using RoentGen.Data;
using RoentGen.Platform;
using RoentGen.Visualization;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Vision;

/// <summary>
/// Pictures of where a ViT's CLS token attends in its last layer, as in DINO (Caron et al. 2021): per-head maps
/// upsampled to the image, their mean, and the smallest set of patches that holds a given share of the attention.
/// </summary>
public static class AttentionMaps
{
    /// <summary>
    /// CLS attention maps of gray images (intensities in [0, 1], one size, sides multiples of the patch size):
    /// (B, heads, H/p, W/p). The gray channel is repeated to the model's channel count; the model runs in eval mode
    /// under no_grad and its training flag is restored afterwards.
    /// </summary>
    /// <exception cref="ArgumentException">No images, sizes differ, or a side is not a multiple of the patch size.</exception>
    public static Tensor ClsAttention(VisionTransformer vit, IReadOnlyList<GrayImage> images)
    {
        if (images.Count == 0) throw new ArgumentException("no images to compute attention maps for", nameof(images));
        int p = vit.Config.PatchSize;
        var odd = images.FirstOrDefault(i => i.Width % p != 0 || i.Height % p != 0);
        if (odd is not null) throw new ArgumentException($"image of {odd.Width}x{odd.Height} is not a multiple of the patch size {p}", nameof(images));
        bool wasTraining = vit.training;
        vit.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var x = ImageTensors.Stack(images);                                  // (B, 1, H, W) in [-1, 1]
            if (vit.Config.Channels > 1) x = x.expand(-1, vit.Config.Channels, -1, -1);
            return vit.ClsAttentionMaps(x).MoveToOuterDisposeScope();
        }
        finally
        {
            if (wasTraining) vit.train();
        }
    }

    /// <summary>
    /// One (gh, gw) map as a heatmap image of <paramref name="width"/> x <paramref name="height"/>: bilinear
    /// upsampling, then min-max scaling to [0, 1] (a constant map becomes 0).
    /// </summary>
    /// <exception cref="ArgumentException">The map is not 2-D.</exception>
    public static GrayImage Heatmap(Tensor map, int width, int height)
    {
        if (map.dim() != 2) throw new ArgumentException($"expected a (gh, gw) map, got ({string.Join(", ", map.shape)})", nameof(map));
        using var scope = NewDisposeScope();
        var m = map.detach().to(ScalarType.Float32).cpu().view(1, 1, map.shape[0], map.shape[1]);
        var up = nn.functional.interpolate(m, size: [height, width], mode: InterpolationMode.Bilinear, align_corners: false).view(height, width);
        float lo = up.min().item<float>(), hi = up.max().item<float>();
        var unit = hi > lo ? (up - lo) / (hi - lo) : zeros_like(up);
        return ImageTensors.FromTensor(unit, 0f, 1f);
    }

    /// <summary>
    /// The smallest set of patches whose attention adds up to at least <paramref name="mass"/> of the map's total,
    /// as a 0/1 mask of the image's size (nearest upsampling). DINO's figures keep 60% of the mass.
    /// </summary>
    /// <exception cref="ArgumentException">The map is not 2-D, or mass is outside (0, 1].</exception>
    public static GrayImage MassMask(Tensor map, double mass, int width, int height)
    {
        if (map.dim() != 2) throw new ArgumentException($"expected a (gh, gw) map, got ({string.Join(", ", map.shape)})", nameof(map));
        if (!(mass > 0 && mass <= 1)) throw new ArgumentException($"mass must be in (0, 1], got {mass}", nameof(mass));
        int gh = (int)map.shape[0], gw = (int)map.shape[1];
        float[] values;
        using (var scope = NewDisposeScope()) values = map.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        double total = values.Sum(v => (double)v);
        var keep = new bool[values.Length];
        double sum = 0;
        foreach (int i in Enumerable.Range(0, values.Length).OrderByDescending(i => values[i]).ThenBy(i => i))
        {
            if (sum >= mass * total) break;
            keep[i] = true;
            sum += values[i];
        }
        var pixels = new float[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                pixels[y * width + x] = keep[Math.Min(gh - 1, y * gh / height) * gw + Math.Min(gw - 1, x * gw / width)] ? 1f : 0f;
        return new GrayImage(width, height, pixels);
    }

    /// <summary>
    /// A grid with one row per image: the image, the heads' mean attention as a heatmap, the image with the patches
    /// that hold <paramref name="mass"/> of the mean attention tinted, then (when <paramref name="perHead"/>) each head's map.
    /// </summary>
    public static ImageGrid Grid(VisionTransformer vit, IReadOnlyList<GrayImage> images, double mass = 0.6, bool perHead = true, string? title = null)
    {
        using var scope = NewDisposeScope();
        var maps = ClsAttention(vit, images);                                     // (B, heads, gh, gw)
        int heads = (int)maps.shape[1];
        var grid = new ImageGrid(3 + (perHead ? heads : 0), title);
        for (int b = 0; b < images.Count; b++)
        {
            var img = images[b];
            var mean = maps[b].mean([0]);                                         // (gh, gw)
            grid.Add(img, "image");
            grid.Add(Heatmap(mean, img.Width, img.Height), "mean attn");
            grid.AddWithMask(img, MassMask(mean, mass, img.Width, img.Height), $"{mass:P0} mass", Rgb.Red, 0.45f);
            if (perHead)
                for (int h = 0; h < heads; h++) grid.Add(Heatmap(maps[b, h], img.Width, img.Height), $"head {h + 1}");
        }
        return grid;
    }
}
