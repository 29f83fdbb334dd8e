using RoentGen.Platform;
using SkiaSharp;

namespace RoentGen.Data;

/// <summary>
/// Reads and writes grayscale images. PNG is decoded by <see cref="PngCodec"/> at full precision (8 and 16 bit
/// exactly; colour converted to luma); JPEG (and other formats Skia knows) through SkiaSharp at 8 bits.
/// Writes 8-bit or 16-bit grayscale PNG.
/// </summary>
public static class ImageIO
{
    /// <summary>Reads a PNG or JPEG file as grayscale (colour is converted to luma).</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a decodable image; the message names the file.</exception>
    public static GrayImage Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"image not found: {path}", path);
        return Decode(File.ReadAllBytes(path), path);
    }

    /// <summary>Decodes PNG or JPEG bytes as grayscale.</summary>
    /// <param name="bytes">The encoded file.</param>
    /// <param name="nameForErrors">A name for error messages (usually the path).</param>
    /// <exception cref="InvalidDataException">The bytes are not a decodable image.</exception>
    public static GrayImage Decode(byte[] bytes, string? nameForErrors = null)
    {
        var name = nameForErrors ?? "image";
        if (PngCodec.IsPng(bytes)) return PngCodec.Decode(bytes, name);
        using var codec = SKCodec.Create(new SKMemoryStream(bytes))
            ?? throw new InvalidDataException($"{name}: not a decodable PNG or JPEG ({bytes.Length} bytes)");
        using var decoded = SKBitmap.Decode(codec)
            ?? throw new InvalidDataException($"{name}: corrupt {codec.EncodedFormat} image ({bytes.Length} bytes)");
        int w = decoded.Width, h = decoded.Height;
        var px = new float[w * h];
        if (decoded.ColorType == SKColorType.Gray8)
        {
            var src = decoded.GetPixelSpan();
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    px[y * w + x] = src[y * decoded.RowBytes + x] / 255f;
            return new GrayImage(w, h, px, 8);
        }
        using var rgba = decoded.Copy(SKColorType.Rgba8888)
            ?? throw new InvalidDataException($"{name}: cannot convert {decoded.ColorType} pixels to RGBA");
        var s = rgba.GetPixelSpan();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int o = y * rgba.RowBytes + 4 * x;
                byte r = s[o], g = s[o + 1], b = s[o + 2];
                px[y * w + x] = r == g && g == b ? r / 255f : (0.299f * r + 0.587f * g + 0.114f * b) / 255f;
            }
        return new GrayImage(w, h, px, 8);
    }

    /// <summary>Encodes an image as a grayscale PNG of 8 or 16 bits (values clamped to [0, 1], rounded to k/255 or k/65535).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The bit depth is not 8 or 16.</exception>
    public static byte[] EncodePng(GrayImage image, int bitDepth = 8) => PngCodec.EncodeGray(image, bitDepth);

    /// <summary>Writes an image as a grayscale PNG of 8 or 16 bits, atomically.</summary>
    public static void WritePng(string path, GrayImage image, int bitDepth = 8) =>
        AtomicFile.WriteAllBytes(path, EncodePng(image, bitDepth));
}
