using RoentGen.Platform;
using SkiaSharp;

namespace RoentGen.Data;

/// <summary>Reads and writes grayscale images (PNG, JPEG).</summary>
public static class ImageIO
{
    /// <summary>Reads a PNG or JPEG file as grayscale (colour is converted to luma).</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a decodable image.</exception>
    public static GrayImage Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"image not found: {path}", path);
        return Decode(File.ReadAllBytes(path), path);
    }

    /// <summary>Decodes PNG or JPEG bytes as grayscale.</summary>
    /// <param name="bytes">The encoded file.</param>
    /// <param name="nameForErrors">A name for error messages (usually the path).</param>
    public static GrayImage Decode(byte[] bytes, string? nameForErrors = null)
    {
        using var bmp = SKBitmap.Decode(bytes)
            ?? throw new InvalidDataException($"{nameForErrors ?? "image"}: not a decodable PNG or JPEG ({bytes.Length} bytes)");
        var px = new float[bmp.Width * bmp.Height];
        for (int y = 0; y < bmp.Height; y++)
            for (int x = 0; x < bmp.Width; x++)
            {
                var c = bmp.GetPixel(x, y);
                px[y * bmp.Width + x] = (0.299f * c.Red + 0.587f * c.Green + 0.114f * c.Blue) / 255f;
            }
        return new GrayImage(bmp.Width, bmp.Height, px, 8);
    }

    /// <summary>Encodes an image as an 8-bit grayscale PNG (values clamped to [0, 1]).</summary>
    public static byte[] EncodePng(GrayImage image, int bitDepth = 8)
    {
        if (bitDepth != 8) throw new NotSupportedException($"bit depth {bitDepth} is not supported yet");
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Gray8, SKAlphaType.Opaque);
        using var bmp = new SKBitmap(info);
        var bytes = new byte[image.Width * image.Height];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)Math.Round(Math.Clamp(image.Pixels[i], 0f, 1f) * 255f);
        System.Runtime.InteropServices.Marshal.Copy(bytes, 0, bmp.GetPixels(), bytes.Length);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Writes an image as a grayscale PNG, atomically.</summary>
    public static void WritePng(string path, GrayImage image, int bitDepth = 8) =>
        AtomicFile.WriteAllBytes(path, EncodePng(image, bitDepth));
}
