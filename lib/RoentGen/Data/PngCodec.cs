using System.Buffers.Binary;
using System.IO.Compression;

namespace RoentGen.Data;

/// <summary>
/// A small PNG codec written for exact grayscale work: it decodes every standard PNG (gray, gray+alpha,
/// RGB, RGBA, palette; bit depths 1 to 16; Adam7 interlacing) at full precision, and encodes 8-bit and
/// 16-bit grayscale. Skia cannot do either at 16 bits, which X-ray data needs.
/// </summary>
/// <remarks>
/// Colour is converted to luma (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B); alpha is ignored (the colour
/// channels are taken as they are). Gamma, ICC and other ancillary chunks are ignored.
/// </remarks>
public static class PngCodec
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>The largest image (in pixels) the decoder accepts, so a forged header cannot exhaust memory.</summary>
    public const long MaxPixels = 1L << 28;

    /// <summary>True when the bytes start with the PNG signature.</summary>
    public static bool IsPng(ReadOnlySpan<byte> bytes) => bytes.Length >= 8 && bytes[..8].SequenceEqual(Signature);

    /// <summary>Decodes a PNG as grayscale intensities in [0, 1] (k / (2^bitDepth - 1)).</summary>
    /// <param name="bytes">The PNG file.</param>
    /// <param name="name">A name for error messages (usually the path).</param>
    /// <exception cref="InvalidDataException">The bytes are not a valid PNG; the message names <paramref name="name"/>.</exception>
    public static GrayImage Decode(ReadOnlySpan<byte> bytes, string name = "image")
    {
        if (!IsPng(bytes)) throw Bad(name, "missing PNG signature");
        int pos = 8;
        int width = 0, height = 0, bitDepth = 0, colorType = -1, interlace = 0;
        byte[]? palette = null;
        using var idat = new MemoryStream();
        bool sawEnd = false;
        while (pos < bytes.Length)
        {
            if (bytes.Length - pos < 12) throw Bad(name, $"truncated chunk at byte {pos}");
            uint len = BinaryPrimitives.ReadUInt32BigEndian(bytes[pos..]);
            if (len > int.MaxValue || len > bytes.Length - pos - 12) throw Bad(name, $"chunk at byte {pos} claims {len} bytes, beyond the end of the file ({bytes.Length} bytes)");
            var typeBytes = bytes.Slice(pos + 4, 4);
            string type = System.Text.Encoding.ASCII.GetString(typeBytes);
            var data = bytes.Slice(pos + 8, (int)len);
            uint crcStored = BinaryPrimitives.ReadUInt32BigEndian(bytes[(pos + 8 + (int)len)..]);
            uint crc = Crc32.Update(Crc32.Update(Crc32.Initial, typeBytes), data) ^ 0xFFFFFFFFu;
            if (crc != crcStored) throw Bad(name, $"CRC mismatch in chunk '{type}' at byte {pos} (stored {crcStored:X8}, computed {crc:X8})");
            pos += 12 + (int)len;
            switch (type)
            {
                case "IHDR":
                    if (len != 13) throw Bad(name, $"IHDR has {len} bytes, expected 13");
                    width = checked((int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(data), int.MaxValue));
                    height = checked((int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(data[4..]), int.MaxValue));
                    bitDepth = data[8]; colorType = data[9]; interlace = data[12];
                    if (width <= 0 || height <= 0 || (long)width * height > MaxPixels)
                        throw Bad(name, $"image size {width}x{height} is empty or above the limit of {MaxPixels} pixels");
                    if (data[10] != 0 || data[11] != 0 || interlace > 1)
                        throw Bad(name, $"unsupported compression/filter/interlace method {data[10]}/{data[11]}/{interlace}");
                    bool ok = colorType switch
                    {
                        0 => bitDepth is 1 or 2 or 4 or 8 or 16,
                        3 => bitDepth is 1 or 2 or 4 or 8,
                        2 or 4 or 6 => bitDepth is 8 or 16,
                        _ => false,
                    };
                    if (!ok) throw Bad(name, $"invalid colour type {colorType} with bit depth {bitDepth}");
                    break;
                case "PLTE":
                    if (len % 3 != 0 || len == 0 || len > 768) throw Bad(name, $"PLTE has {len} bytes, expected a multiple of 3 up to 768");
                    palette = data.ToArray();
                    break;
                case "IDAT":
                    if (colorType < 0) throw Bad(name, "IDAT before IHDR");
                    idat.Write(data);
                    break;
                case "IEND":
                    sawEnd = true;
                    break;
            }
            if (sawEnd) break;
        }
        if (colorType < 0) throw Bad(name, "no IHDR chunk");
        if (idat.Length == 0) throw Bad(name, "no IDAT chunk");
        if (colorType == 3 && palette is null) throw Bad(name, "palette image without PLTE chunk");

        int channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        int bitsPerPixel = channels * bitDepth;
        int bytesPerPixel = Math.Max(1, bitsPerPixel / 8);

        // The raw (filtered) size of every pass, so decompression reads exactly what the image needs.
        var passes = interlace == 1 ? Adam7Passes(width, height) : [(0, 0, 1, 1, width, height)];
        long rawSize = 0;
        foreach (var p in passes)
            if (p.W > 0 && p.H > 0) rawSize += (long)p.H * (1 + ((long)p.W * bitsPerPixel + 7) / 8);
        if (rawSize > int.MaxValue) throw Bad(name, $"image data of {rawSize} bytes is too large");
        var raw = new byte[rawSize];
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            int read = 0;
            while (read < raw.Length)
            {
                int n = z.Read(raw, read, raw.Length - read);
                if (n == 0) break;
                read += n;
            }
            if (read < raw.Length) throw Bad(name, $"image data is truncated: {read} of {raw.Length} bytes after decompression");
        }
        catch (InvalidDataException e) when (!e.Data.Contains("file"))
        {
            throw Bad(name, $"corrupt compressed image data ({e.Message})");
        }

        var pixels = new float[width * height];
        float maxVal = (1 << bitDepth) - 1;
        int offset = 0;
        foreach (var (x0, y0, dx, dy, pw, ph) in passes)
        {
            if (pw <= 0 || ph <= 0) continue;
            int stride = (int)(((long)pw * bitsPerPixel + 7) / 8);
            var prev = new byte[stride];
            for (int row = 0; row < ph; row++)
            {
                int filter = raw[offset];
                var line = raw.AsSpan(offset + 1, stride);
                Unfilter(filter, line, prev, bytesPerPixel, name, y0 + row * dy);
                for (int col = 0; col < pw; col++)
                {
                    float v = colorType switch
                    {
                        0 => Sample(line, col, 0, 1, bitDepth) / maxVal,
                        4 => Sample(line, col, 0, 2, bitDepth) / maxVal,
                        2 or 6 => Luma(Sample(line, col, 0, channels, bitDepth), Sample(line, col, 1, channels, bitDepth),
                            Sample(line, col, 2, channels, bitDepth), maxVal),
                        _ => PaletteLuma(palette!, Sample(line, col, 0, 1, bitDepth), name),
                    };
                    pixels[(y0 + row * dy) * width + x0 + col * dx] = v;
                }
                line.CopyTo(prev);
                offset += 1 + stride;
            }
        }
        return new GrayImage(width, height, pixels, bitDepth == 16 ? 16 : 8);
    }

    /// <summary>Encodes a grayscale PNG of 8 or 16 bits per pixel; values are clamped to [0, 1] and rounded.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The bit depth is not 8 or 16.</exception>
    public static byte[] EncodeGray(GrayImage image, int bitDepth = 8)
    {
        if (bitDepth is not (8 or 16)) throw new ArgumentOutOfRangeException(nameof(bitDepth), bitDepth, "grayscale PNG bit depth must be 8 or 16");
        int bpp = bitDepth / 8;
        int stride = image.Width * bpp;
        var raw = new byte[(long)image.Height * (1 + stride)];
        float scale = bitDepth == 16 ? 65535f : 255f;
        for (int y = 0; y < image.Height; y++)
        {
            int o = y * (1 + stride);
            raw[o] = 0; // filter: none
            for (int x = 0; x < image.Width; x++)
            {
                float p = image.Pixels[y * image.Width + x];
                int k = float.IsNaN(p) ? 0 : (int)MathF.Round(Math.Clamp(p, 0f, 1f) * scale);
                if (bitDepth == 16) { raw[o + 1 + 2 * x] = (byte)(k >> 8); raw[o + 2 + 2 * x] = (byte)k; }
                else raw[o + 1 + x] = (byte)k;
            }
        }
        return Assemble(image.Width, image.Height, bitDepth, colorType: 0, raw);
    }

    // Builds a PNG around already filtered raw scanlines (also used by tests to craft unusual files).
    internal static byte[] Assemble(int width, int height, int bitDepth, byte colorType, byte[] raw, byte interlace = 0, byte[]? palette = null)
    {
        using var ms = new MemoryStream();
        ms.Write(Signature);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr[4..], (uint)height);
        ihdr[8] = (byte)bitDepth; ihdr[9] = colorType; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = interlace;
        WriteChunk(ms, "IHDR", ihdr);
        if (palette is not null) WriteChunk(ms, "PLTE", palette);
        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);
            WriteChunk(ms, "IDAT", compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        }
        WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    private static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(head, (uint)data.Length);
        for (int i = 0; i < 4; i++) head[4 + i] = (byte)type[i];
        s.Write(head);
        s.Write(data);
        uint crc = Crc32.Update(Crc32.Update(Crc32.Initial, head[4..]), data) ^ 0xFFFFFFFFu;
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, crc);
        s.Write(tail);
    }

    private static int Sample(ReadOnlySpan<byte> line, int col, int channel, int channels, int bitDepth)
    {
        switch (bitDepth)
        {
            case 16:
                int o = 2 * (col * channels + channel);
                return (line[o] << 8) | line[o + 1];
            case 8:
                return line[col * channels + channel];
            default: // 1, 2, 4 bits: single channel only, packed from the most significant bit
                int bit = col * bitDepth;
                int shift = 8 - bitDepth - (bit & 7);
                return (line[bit >> 3] >> shift) & ((1 << bitDepth) - 1);
        }
    }

    private static float Luma(int r, int g, int b, float maxVal) =>
        r == g && g == b ? r / maxVal : (0.299f * r + 0.587f * g + 0.114f * b) / maxVal;

    private static float PaletteLuma(byte[] palette, int index, string name)
    {
        if (3 * index + 2 >= palette.Length) throw Bad(name, $"palette index {index} beyond the {palette.Length / 3}-entry palette");
        return Luma(palette[3 * index], palette[3 * index + 1], palette[3 * index + 2], 255f);
    }

    private static void Unfilter(int filter, Span<byte> line, ReadOnlySpan<byte> prev, int bpp, string name, int y)
    {
        switch (filter)
        {
            case 0: break;
            case 1: for (int i = bpp; i < line.Length; i++) line[i] += line[i - bpp]; break;
            case 2: for (int i = 0; i < line.Length; i++) line[i] += prev[i]; break;
            case 3:
                for (int i = 0; i < line.Length; i++)
                    line[i] += (byte)(((i >= bpp ? line[i - bpp] : 0) + prev[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < line.Length; i++)
                {
                    int a = i >= bpp ? line[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                    int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                    line[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default: throw Bad(name, $"unknown filter type {filter} on row {y}");
        }
    }

    // Adam7: (x0, y0, dx, dy, pass width, pass height).
    private static (int X0, int Y0, int Dx, int Dy, int W, int H)[] Adam7Passes(int w, int h)
    {
        (int x0, int y0, int dx, int dy)[] p = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];
        return p.Select(q => (q.x0, q.y0, q.dx, q.dy, (w - q.x0 + q.dx - 1) / q.dx, (h - q.y0 + q.dy - 1) / q.dy)).ToArray();
    }

    private static InvalidDataException Bad(string name, string what) =>
        new($"{name}: not a valid PNG: {what}") { Data = { ["file"] = name } };
}

/// <summary>CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320), as PNG and zip use.</summary>
public static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    /// <summary>The starting register value.</summary>
    public const uint Initial = 0xFFFFFFFFu;

    /// <summary>Feeds bytes into a running register (start from <see cref="Initial"/>, finish with XOR 0xFFFFFFFF).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    /// <summary>The CRC-32 of a byte span.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Update(Initial, data) ^ 0xFFFFFFFFu;

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
