namespace RoentGen.Data.Datasets;

/// <summary>How a non-square image becomes square before resizing.</summary>
public enum SquareMode
{
    /// <summary>Pad the short side with black (0), centred, keeping the aspect ratio (default).</summary>
    Pad,
    /// <summary>Crop the central square, keeping the aspect ratio.</summary>
    CenterCrop,
    /// <summary>Stretch to square (changes the aspect ratio).</summary>
    Stretch,
}

/// <summary>Square resizing of gray images and masks (area-aware triangle filter: no aliasing when shrinking).</summary>
public static class ImageResize
{
    /// <summary>Makes the image square (see <paramref name="mode"/>) and resizes it to size x size.</summary>
    /// <param name="image">The source image.</param>
    /// <param name="size">Output side in pixels.</param>
    /// <param name="mode">How to make it square.</param>
    /// <param name="isMask">Masks are thresholded at 0.5 after resampling so they stay binary.</param>
    public static GrayImage ToSquare(GrayImage image, int size, SquareMode mode = SquareMode.Pad, bool isMask = false)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "size must be positive");
        var sq = mode switch
        {
            SquareMode.Pad => Pad(image),
            SquareMode.CenterCrop => CenterCrop(image),
            _ => image,
        };
        var r = Resize(sq, size, size);
        if (isMask)
            for (int i = 0; i < r.Pixels.Length; i++) r.Pixels[i] = r.Pixels[i] >= 0.5f ? 1f : 0f;
        return r;
    }

    /// <summary>Resizes to width x height with a triangle (bilinear) filter widened when shrinking.</summary>
    public static GrayImage Resize(GrayImage src, int width, int height)
    {
        if (src.Width == width && src.Height == height) return src.Clone();
        var tmp = new float[width * src.Height];
        var (xi, xw) = Weights(src.Width, width);
        for (int y = 0; y < src.Height; y++)
            for (int x = 0; x < width; x++)
            {
                float acc = 0;
                var idx = xi[x]; var w = xw[x];
                for (int k = 0; k < idx.Length; k++) acc += src.Pixels[y * src.Width + idx[k]] * w[k];
                tmp[y * width + x] = acc;
            }
        var dst = new float[width * height];
        var (yi, yw) = Weights(src.Height, height);
        for (int y = 0; y < height; y++)
        {
            var idx = yi[y]; var w = yw[y];
            for (int x = 0; x < width; x++)
            {
                float acc = 0;
                for (int k = 0; k < idx.Length; k++) acc += tmp[idx[k] * width + x] * w[k];
                dst[y * width + x] = Math.Clamp(acc, 0f, 1f);
            }
        }
        return new GrayImage(width, height, dst, src.SourceBitDepth);
    }

    private static (int[][] Index, float[][] Weight) Weights(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double support = Math.Max(1.0, scale);
        var idx = new int[outSize][];
        var wts = new float[outSize][];
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale - 0.5;
            int lo = (int)Math.Floor(center - support), hi = (int)Math.Ceiling(center + support);
            var il = new List<int>(); var wl = new List<double>();
            for (int i = lo; i <= hi; i++)
            {
                double w = 1 - Math.Abs(i - center) / support;
                if (w <= 0) continue;
                il.Add(Math.Clamp(i, 0, inSize - 1)); wl.Add(w);
            }
            double sum = wl.Sum();
            idx[o] = il.ToArray();
            wts[o] = wl.Select(w => (float)(w / sum)).ToArray();
        }
        return (idx, wts);
    }

    private static GrayImage Pad(GrayImage img)
    {
        if (img.Width == img.Height) return img;
        int s = Math.Max(img.Width, img.Height);
        var o = new GrayImage(s, s);
        int ox = (s - img.Width) / 2, oy = (s - img.Height) / 2;
        for (int y = 0; y < img.Height; y++)
            Array.Copy(img.Pixels, y * img.Width, o.Pixels, (y + oy) * s + ox, img.Width);
        return o;
    }

    private static GrayImage CenterCrop(GrayImage img)
    {
        if (img.Width == img.Height) return img;
        int s = Math.Min(img.Width, img.Height);
        var o = new GrayImage(s, s);
        int ox = (img.Width - s) / 2, oy = (img.Height - s) / 2;
        for (int y = 0; y < s; y++)
            Array.Copy(img.Pixels, (y + oy) * img.Width + ox, o.Pixels, y * s, s);
        return o;
    }
}
