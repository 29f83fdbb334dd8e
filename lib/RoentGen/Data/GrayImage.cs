using RoentGen.Platform;
using RoentGen.Visualization;

namespace RoentGen.Data;

/// <summary>
/// A single-channel image held as float32 intensities in [0, 1], row-major (y * Width + x).
/// 8-bit and 16-bit sources map to k/255 and k/65535; both round-trip exactly through float32.
/// </summary>
public sealed class GrayImage : IPngDisplayable
{
    /// <summary>Creates an image over existing pixels (not copied).</summary>
    /// <exception cref="ArgumentException">The pixel count is not width x height.</exception>
    public GrayImage(int width, int height, float[] pixels, int sourceBitDepth = 8)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size must be positive, got {width}x{height}");
        if (pixels.Length != width * height)
            throw new ArgumentException($"pixel count {pixels.Length} does not match {width}x{height} = {width * height}");
        Width = width; Height = height; Pixels = pixels; SourceBitDepth = sourceBitDepth;
    }

    /// <summary>Creates a black image.</summary>
    public GrayImage(int width, int height) : this(width, height, new float[width * height]) { }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }
    /// <summary>Intensities in [0, 1], row-major.</summary>
    public float[] Pixels { get; }
    /// <summary>Bit depth of the file it was read from (8 or 16), or 8 for images made in memory.</summary>
    public int SourceBitDepth { get; }

    /// <summary>Pixel at (x, y).</summary>
    public float this[int x, int y]
    {
        get => Pixels[y * Width + x];
        set => Pixels[y * Width + x] = value;
    }

    /// <summary>Encodes the image as an 8-bit grayscale PNG (for display).</summary>
    public byte[] ToPng() => ImageIO.EncodePng(this, 8);

    /// <summary>"GrayImage 256x256 (16-bit source)".</summary>
    public override string ToString() => $"GrayImage {Width}x{Height} ({SourceBitDepth}-bit source)";

    /// <summary>A deep copy.</summary>
    public GrayImage Clone() => new(Width, Height, (float[])Pixels.Clone(), SourceBitDepth);
}
