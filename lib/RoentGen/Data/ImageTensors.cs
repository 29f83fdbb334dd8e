using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Data;

/// <summary>
/// Conversions between <see cref="GrayImage"/> (intensities in [0, 1]) and float32 tensors with an explicit
/// value range: intensity 0 maps to <c>low</c> and 1 to <c>high</c> (the default [-1, 1] is what diffusion
/// models and VAEs expect).
/// </summary>
public static class ImageTensors
{
    /// <summary>An image as a (1, H, W) float32 tensor with values in [low, high].</summary>
    public static Tensor ToTensor(GrayImage image, float low = -1f, float high = 1f)
    {
        CheckRange(low, high);
        var data = new float[image.Pixels.Length];
        float span = high - low;
        for (int i = 0; i < data.Length; i++) data[i] = low + image.Pixels[i] * span;
        return tensor(data, [1, image.Height, image.Width]); // (1, H, W)
    }

    /// <summary>
    /// A (H, W) or (1, H, W) tensor of any real dtype and device as an image: values are mapped from [low, high]
    /// to [0, 1] and clamped (NaN becomes 0).
    /// </summary>
    /// <exception cref="ArgumentException">The tensor has another shape.</exception>
    public static GrayImage FromTensor(Tensor t, float low = -1f, float high = 1f)
    {
        CheckRange(low, high);
        var shape = t.shape;
        bool ok = shape.Length == 2 || (shape.Length == 3 && shape[0] == 1);
        if (!ok || shape[^1] <= 0 || shape[^2] <= 0)
            throw new ArgumentException($"an image tensor must be (H, W) or (1, H, W), got [{string.Join(", ", shape)}]", nameof(t));
        int h = checked((int)shape[^2]), w = checked((int)shape[^1]);
        using var scope = NewDisposeScope();
        var values = t.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        return new GrayImage(w, h, ToUnit(values, 0, values.Length, low, high));
    }

    /// <summary>Images of one size as a (B, 1, H, W) float32 tensor with values in [low, high].</summary>
    /// <exception cref="ArgumentException">No images, or their sizes differ (the message names the first odd one).</exception>
    public static Tensor Stack(IEnumerable<GrayImage> images, float low = -1f, float high = 1f)
    {
        CheckRange(low, high);
        var list = images.ToList();
        if (list.Count == 0) throw new ArgumentException("cannot stack zero images", nameof(images));
        int w = list[0].Width, h = list[0].Height;
        var data = new float[(long)list.Count * w * h];
        float span = high - low;
        for (int b = 0; b < list.Count; b++)
        {
            var img = list[b];
            if (img.Width != w || img.Height != h)
                throw new ArgumentException($"image {b} is {img.Width}x{img.Height} but image 0 is {w}x{h}: all images must share one size", nameof(images));
            int o = b * w * h;
            for (int i = 0; i < img.Pixels.Length; i++) data[o + i] = low + img.Pixels[i] * span;
        }
        return tensor(data, [list.Count, 1, h, w]); // (B, 1, H, W)
    }

    /// <summary>A (B, 1, H, W) (or (B, H, W)) tensor as B images, mapping [low, high] to [0, 1] with clamping.</summary>
    /// <exception cref="ArgumentException">The tensor has another shape.</exception>
    public static GrayImage[] Unstack(Tensor batch, float low = -1f, float high = 1f)
    {
        CheckRange(low, high);
        var shape = batch.shape;
        bool ok = (shape.Length == 4 && shape[1] == 1) || shape.Length == 3;
        if (!ok || shape[^1] <= 0 || shape[^2] <= 0)
            throw new ArgumentException($"a batch of images must be (B, 1, H, W) or (B, H, W), got [{string.Join(", ", shape)}]", nameof(batch));
        int n = checked((int)shape[0]), h = checked((int)shape[^2]), w = checked((int)shape[^1]);
        using var scope = NewDisposeScope();
        var values = batch.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var result = new GrayImage[n];
        for (int b = 0; b < n; b++) result[b] = new GrayImage(w, h, ToUnit(values, b * w * h, w * h, low, high));
        return result;
    }

    private static float[] ToUnit(float[] values, int start, int count, float low, float high)
    {
        var px = new float[count];
        float span = high - low;
        for (int i = 0; i < count; i++)
        {
            float p = (values[start + i] - low) / span;
            px[i] = float.IsNaN(p) ? 0f : Math.Clamp(p, 0f, 1f);
        }
        return px;
    }

    private static void CheckRange(float low, float high)
    {
        if (!(high > low) || !float.IsFinite(low) || !float.IsFinite(high))
            throw new ArgumentException($"value range [{low}, {high}] must be finite with high > low");
    }
}
