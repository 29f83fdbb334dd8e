using System.Runtime.InteropServices;
using RoentGen.Platform;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;

namespace RoentGen.Data;

/// <summary>
/// Reads and writes images through SixLabors.ImageSharp 2.1. PNG is read at full precision (8- and 16-bit gray
/// exactly, as k/255 and k/65535; every colour type, bit depth and interlacing); JPEG and the other formats
/// ImageSharp 2.1 decodes (BMP, GIF, TGA, TIFF, WebP, PBM) at 8 bits per channel. Colour is converted to luma.
/// Writes 8-bit or 16-bit grayscale PNG, and RGB PNG for rendered figures.
/// </summary>
/// <remarks>
/// Luma is ITU-R BT.601 (0.299 R + 0.587 G + 0.114 B), and exactly the channel value where R = G = B; alpha is
/// ignored (the colour channels are taken as they are); gamma, ICC profiles and EXIF orientation are not applied;
/// of a multi-frame file only the first frame is read.
/// Before any pixel is decoded, PNG and JPEG files are checked for structure (the CRC of every PNG chunk, where
/// ImageSharp checks the critical ones only; a file cut short, which ImageSharp would otherwise fill with black),
/// and every file's header is read so that an image declaring more than <see cref="MaxPixels"/> pixels (or the
/// caller's own limit) is refused before its pixels are allocated. Files are read only when they are regular files
/// (not <c>/dev/zero</c>, a FIFO or a socket) of at most <see cref="MaxFileBytes"/> bytes. A PNG whose chunks are intact but whose compressed data ends early
/// (a crafted file, not a cut one) is still decoded with its missing rows black.
/// </remarks>
public static class ImageIO
{
    /// <summary>
    /// The default limit on the pixels of an image that is decoded (64 Mpx: 256 MB as float gray), so that a forged
    /// header cannot exhaust memory. Pass another limit to <see cref="Read"/> or <see cref="Decode"/> to change it.
    /// </summary>
    public const long MaxPixels = 1L << 26;

    /// <summary>The default limit on the size of an image file read whole (512 MiB).</summary>
    public const long MaxFileBytes = 1L << 29;

    // Our own copy of ImageSharp's configuration (the global default is mutable by anyone), reading only the first
    // frame of multi-frame formats.
    private static readonly Configuration Config = MakeConfiguration();

    // Every row with its best filter, and ImageSharp's fastest deflate level: on a 256x256 chest X-ray that wrote 34 KB
    // in about 4 ms, where level 6 took two to three times as long for 32 KB and no filtering gave 46 KB. No ancillary
    // chunks.
    private static readonly PngEncoder Gray8Png = Encoder(PngColorType.Grayscale, PngBitDepth.Bit8);
    private static readonly PngEncoder Gray16Png = Encoder(PngColorType.Grayscale, PngBitDepth.Bit16);
    private static readonly PngEncoder RgbPng = Encoder(PngColorType.Rgb, PngBitDepth.Bit8);

    private static PngEncoder Encoder(PngColorType colorType, PngBitDepth bitDepth) => new()
    {
        ColorType = colorType, BitDepth = bitDepth, FilterMethod = PngFilterMethod.Adaptive,
        CompressionLevel = PngCompressionLevel.BestSpeed, ChunkFilter = PngChunkFilter.ExcludeAll,
    };

    /// <summary>Reads an image file (PNG, JPEG or another format ImageSharp 2.1 decodes) as grayscale.</summary>
    /// <param name="path">The file.</param>
    /// <param name="maxPixels">The largest image accepted, in pixels (default <see cref="MaxPixels"/>).</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a regular file, is larger than <see cref="MaxFileBytes"/>,
    /// is not a decodable image or declares more than <paramref name="maxPixels"/> pixels; the message names the file.</exception>
    public static GrayImage Read(string path, long maxPixels = MaxPixels)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Decode(InputFile.ReadAllBytes(path, MaxFileBytes, "image"), path, maxPixels);
    }

    /// <summary>Decodes an encoded image (PNG, JPEG or another format ImageSharp 2.1 decodes) as grayscale.</summary>
    /// <param name="bytes">The encoded file.</param>
    /// <param name="nameForErrors">A name for error messages (usually the path).</param>
    /// <param name="maxPixels">The largest image accepted, in pixels (default <see cref="MaxPixels"/>).</param>
    /// <exception cref="InvalidDataException">The bytes are not a decodable image, or it declares more than
    /// <paramref name="maxPixels"/> pixels; the message names <paramref name="nameForErrors"/>.</exception>
    public static GrayImage Decode(byte[] bytes, string? nameForErrors = null, long maxPixels = MaxPixels)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (maxPixels <= 0) throw new ArgumentOutOfRangeException(nameof(maxPixels), maxPixels, "the pixel limit must be positive");
        var name = TextEscape.Escape(nameForErrors ?? "image");
        if (ImageFileChecks.IsPng(bytes)) ImageFileChecks.CheckPng(bytes, name);
        else if (ImageFileChecks.IsJpeg(bytes)) ImageFileChecks.CheckJpeg(bytes, name);

        IImageInfo? info;
        IImageFormat? format;
        try { info = Image.Identify(Config, bytes, out format); }
        catch (Exception e) when (IsDecoderFailure(e)) { throw Bad(name, $"unreadable image header ({Describe(e)})", e); }
        if (info is null || format is null)
            throw Bad(name, $"not a decodable image: no known image format ({bytes.Length} bytes); expected PNG, JPEG, BMP, GIF, TGA, TIFF, WebP or PBM");
        long pixels = (long)info.Width * info.Height;
        if (info.Width <= 0 || info.Height <= 0 || pixels > maxPixels)
            throw Bad(name, $"{format.Name} image declares {info.Width}x{info.Height} pixels, empty or above the limit of {maxPixels}; refused before decoding");

        try
        {
            return format is PngFormat ? DecodePng(bytes, info.Metadata.GetPngMetadata()) : Load<Rgb24>(bytes, 8, Rgb24ToGray);
        }
        catch (Exception e) when (IsDecoderFailure(e))
        {
            throw Bad(name, $"corrupt {format.Name} image ({Describe(e)})", e);
        }
    }

    /// <summary>Encodes an image as a grayscale PNG of 8 or 16 bits (values clamped to [0, 1], rounded to k/255 or k/65535; NaN is 0).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The bit depth is not 8 or 16.</exception>
    public static byte[] EncodePng(GrayImage image, int bitDepth = 8)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (bitDepth is not (8 or 16)) throw new ArgumentOutOfRangeException(nameof(bitDepth), bitDepth, "grayscale PNG bit depth must be 8 or 16");
        var src = image.Pixels;
        if (bitDepth == 16)
        {
            var levels = new L16[src.Length];
            for (int i = 0; i < src.Length; i++) levels[i] = new L16((ushort)Quantize(src[i], 65535f));
            using var img16 = Image.WrapMemory<L16>(Config, levels.AsMemory(), image.Width, image.Height);
            return Save(img16, Gray16Png);
        }
        var bytes = new byte[src.Length];
        for (int i = 0; i < src.Length; i++) bytes[i] = (byte)Quantize(src[i], 255f);
        using var img8 = Image.WrapMemory<L8>(Config, bytes.AsMemory(), image.Width, image.Height);
        return Save(img8, Gray8Png);
    }

    /// <summary>Writes an image as a grayscale PNG of 8 or 16 bits, atomically.</summary>
    public static void WritePng(string path, GrayImage image, int bitDepth = 8) =>
        AtomicFile.WriteAllBytes(path, EncodePng(image, bitDepth));

    /// <summary>Encodes interleaved 8-bit RGB pixels (row-major, R G B per pixel) as an RGB PNG.</summary>
    /// <param name="rgb">3 x width x height bytes.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="ArgumentException">The size is not positive, or the buffer is not 3 x width x height bytes.</exception>
    public static byte[] EncodeRgbPng(byte[] rgb, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size must be positive, got {width}x{height}");
        if (rgb.Length != 3L * width * height)
            throw new ArgumentException($"RGB buffer has {rgb.Length} bytes, expected 3 x {width} x {height} = {3L * width * height}", nameof(rgb));
        using var img = Image.WrapMemory<Rgb24>(Config, rgb.AsMemory(), width, height);
        return Save(img, RgbPng);
    }

    // PNG: the pixel format that holds the file's samples exactly, then to gray.
    private static GrayImage DecodePng(byte[] bytes, PngMetadata png)
    {
        bool sixteen = png.BitDepth == PngBitDepth.Bit16;
        int depth = sixteen ? 16 : 8;
        return png.ColorType switch
        {
            PngColorType.Grayscale when sixteen => Load<L16>(bytes, depth, static (row, gray) =>
            {
                var s = MemoryMarshal.Cast<L16, ushort>(row);
                for (int i = 0; i < s.Length; i++) gray[i] = s[i] / 65535f;
            }),
            PngColorType.Grayscale => Load<L8>(bytes, depth, static (row, gray) => // 1, 2, 4 bits come scaled to 8
            {
                var s = MemoryMarshal.AsBytes(row);
                for (int i = 0; i < s.Length; i++) gray[i] = s[i] / 255f;
            }),
            PngColorType.GrayscaleWithAlpha when sixteen => Load<La32>(bytes, depth, static (row, gray) =>
            {
                for (int i = 0; i < row.Length; i++) gray[i] = row[i].L / 65535f;
            }),
            PngColorType.GrayscaleWithAlpha => Load<La16>(bytes, depth, static (row, gray) =>
            {
                for (int i = 0; i < row.Length; i++) gray[i] = row[i].L / 255f;
            }),
            _ when sixteen => Load<Rgb48>(bytes, depth, static (row, gray) =>
            {
                for (int i = 0; i < row.Length; i++) gray[i] = Luma(row[i].R, row[i].G, row[i].B, 65535f);
            }),
            _ => Load<Rgb24>(bytes, depth, Rgb24ToGray), // RGB, RGBA, palette
        };
    }

    private static void Rgb24ToGray(ReadOnlySpan<Rgb24> row, Span<float> gray)
    {
        for (int i = 0; i < row.Length; i++) gray[i] = Luma(row[i].R, row[i].G, row[i].B, 255f);
    }

    private delegate void RowToGray<TPixel>(ReadOnlySpan<TPixel> row, Span<float> gray);

    private static GrayImage Load<TPixel>(byte[] bytes, int sourceBitDepth, RowToGray<TPixel> toGray)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        using var image = Image.Load<TPixel>(Config, bytes);
        int w = image.Width;
        var px = new float[w * image.Height];
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++) toGray(rows.GetRowSpan(y), px.AsSpan(y * w, w));
        });
        return new GrayImage(w, image.Height, px, sourceBitDepth);
    }

    private static float Luma(int r, int g, int b, float max) =>
        r == g && g == b ? r / max : (0.299f * r + 0.587f * g + 0.114f * b) / max;

    private static int Quantize(float p, float scale) => float.IsNaN(p) ? 0 : (int)MathF.Round(Math.Clamp(p, 0f, 1f) * scale);

    private static byte[] Save<TPixel>(Image<TPixel> image, PngEncoder encoder) where TPixel : unmanaged, IPixel<TPixel>
    {
        using var ms = new MemoryStream();
        image.Save(ms, encoder);
        return ms.ToArray();
    }

    private static Configuration MakeConfiguration()
    {
        var c = Configuration.Default.Clone();
        c.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First, MaxFrames = 1 });
        c.ImageFormatsManager.SetDecoder(TiffFormat.Instance, new TiffDecoder { DecodingMode = FrameDecodingMode.First });
        return c;
    }

    // Failures of a decoder on bad bytes: ImageSharp's own, and the exceptions a decoder meets on data it did not expect.
    private static bool IsDecoderFailure(Exception e) => e is ImageFormatException or NotSupportedException
        or InvalidMemoryOperationException or InvalidDataException or EndOfStreamException or ArgumentException
        or IndexOutOfRangeException or InvalidOperationException or OverflowException;

    private static string Describe(Exception e) => e is ImageFormatException ? e.Message : $"{e.GetType().Name}: {e.Message}";

    private static InvalidDataException Bad(string name, string what, Exception? inner = null) =>
        new($"{name}: {what}", inner) { Data = { ["file"] = name } };
}
