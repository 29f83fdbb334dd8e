using System.Buffers.Binary;

namespace RoentGen.Data;

/// <summary>
/// Structure checks on encoded PNG and JPEG files, run before a decoder sees them. ImageSharp 2.1 decodes a
/// PNG that lacks its IEND chunk, or one whose compressed data stops early, and a JPEG cut short inside its
/// scan, without complaint (the missing rows come back black or grey), and it checks the CRC of critical PNG
/// chunks only (IHDR, IDAT, ...; not gAMA, tEXt and the other ancillary ones). These checks refuse such files
/// first. They read the bytes only; nothing is allocated in proportion to the image size.
/// </summary>
internal static class ImageFileChecks
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>True when the bytes start with the PNG signature.</summary>
    public static bool IsPng(ReadOnlySpan<byte> bytes) => bytes.Length >= 8 && bytes[..8].SequenceEqual(PngSignature);

    /// <summary>True when the bytes start with a JPEG start-of-image marker (FF D8 FF).</summary>
    public static bool IsJpeg(ReadOnlySpan<byte> bytes) => bytes.Length >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;

    /// <summary>
    /// Walks every chunk of a PNG: each must lie inside the file and match its CRC, the first must be a valid
    /// IHDR, a palette image needs PLTE, there must be image data, and the file must reach IEND (a file cut short
    /// does not).
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed PNG; the message names <paramref name="name"/>.</exception>
    public static void CheckPng(ReadOnlySpan<byte> bytes, string name)
    {
        if (!IsPng(bytes)) throw BadPng(name, "missing PNG signature");
        int pos = 8, colorType = -1;
        bool sawPalette = false, sawData = false;
        string last = "signature";
        while (true)
        {
            if (pos == bytes.Length) throw BadPng(name, $"truncated: the file ends at byte {pos} after '{last}' without an IEND chunk");
            if (bytes.Length - pos < 12) throw BadPng(name, $"truncated: a chunk header at byte {pos} is cut off ({bytes.Length - pos} bytes left)");
            uint len = BinaryPrimitives.ReadUInt32BigEndian(bytes[pos..]);
            var typeBytes = bytes.Slice(pos + 4, 4);
            string type = System.Text.Encoding.ASCII.GetString(typeBytes);
            if (len > int.MaxValue || len > bytes.Length - pos - 12)
                throw BadPng(name, $"truncated: chunk '{type}' at byte {pos} claims {len} bytes, beyond the end of the file ({bytes.Length} bytes)");
            var data = bytes.Slice(pos + 8, (int)len);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(bytes[(pos + 8 + (int)len)..]);
            uint crc = Crc32.Update(Crc32.Update(Crc32.Initial, typeBytes), data) ^ 0xFFFFFFFFu;
            if (crc != stored) throw BadPng(name, $"CRC mismatch in chunk '{type}' at byte {pos} (stored {stored:X8}, computed {crc:X8})");
            if (colorType < 0)
            {
                if (type != "IHDR") throw BadPng(name, $"the first chunk is '{type}', not IHDR");
                colorType = CheckHeader(data, name);
            }
            else if (type == "PLTE") sawPalette = true;
            else if (type == "IDAT") sawData = true;
            else if (type == "IEND") break;
            last = type;
            pos += 12 + (int)len;
        }
        if (!sawData) throw BadPng(name, "no IDAT chunk");
        if (colorType == 3 && !sawPalette) throw BadPng(name, "palette image without PLTE chunk");
    }

    // Validates IHDR's fields and returns the colour type.
    private static int CheckHeader(ReadOnlySpan<byte> ihdr, string name)
    {
        if (ihdr.Length != 13) throw BadPng(name, $"IHDR has {ihdr.Length} bytes, expected 13");
        uint width = BinaryPrimitives.ReadUInt32BigEndian(ihdr), height = BinaryPrimitives.ReadUInt32BigEndian(ihdr[4..]);
        if (width == 0 || height == 0 || width > int.MaxValue || height > int.MaxValue)
            throw BadPng(name, $"invalid image size {width}x{height}");
        int bitDepth = ihdr[8], colorType = ihdr[9];
        if (ihdr[10] != 0 || ihdr[11] != 0 || ihdr[12] > 1)
            throw BadPng(name, $"unsupported compression/filter/interlace method {ihdr[10]}/{ihdr[11]}/{ihdr[12]}");
        bool ok = colorType switch
        {
            0 => bitDepth is 1 or 2 or 4 or 8 or 16,
            3 => bitDepth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => bitDepth is 8 or 16,
            _ => false,
        };
        if (!ok) throw BadPng(name, $"invalid colour type {colorType} with bit depth {bitDepth}");
        return colorType;
    }

    /// <summary>
    /// Walks the markers of a JPEG from SOI to EOI: every segment must lie inside the file, and the scan data
    /// must be followed by an end-of-image marker (a file cut short has none). Bytes after EOI are allowed.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed JPEG; the message names <paramref name="name"/>.</exception>
    public static void CheckJpeg(ReadOnlySpan<byte> bytes, string name)
    {
        if (!IsJpeg(bytes)) throw BadJpeg(name, "missing start-of-image marker");
        int pos = 2;
        bool sawScan = false;
        while (true)
        {
            // Skip to the next marker (decoders tolerate stray bytes between segments; so do we).
            int next = bytes[pos..].IndexOf((byte)0xFF);
            if (next < 0) throw TruncatedJpeg(name, bytes.Length, sawScan);
            pos += next;
            while (pos < bytes.Length && bytes[pos] == 0xFF) pos++; // fill bytes
            if (pos >= bytes.Length) throw TruncatedJpeg(name, bytes.Length, sawScan);
            byte marker = bytes[pos++];
            if (marker == 0xD9) return; // EOI
            if (marker == 0x01 || marker is >= 0xD0 and <= 0xD7) continue; // TEM, RSTn: no length
            if (marker is 0x00 or 0xD8) throw BadJpeg(name, $"unexpected marker FF{marker:X2} at byte {pos - 2}");
            if (bytes.Length - pos < 2) throw TruncatedJpeg(name, bytes.Length, sawScan);
            int len = BinaryPrimitives.ReadUInt16BigEndian(bytes[pos..]);
            if (len < 2) throw BadJpeg(name, $"segment FF{marker:X2} at byte {pos - 2} has length {len}");
            if (len > bytes.Length - pos)
                throw BadJpeg(name, $"truncated: segment FF{marker:X2} at byte {pos - 2} claims {len} bytes, beyond the end of the file ({bytes.Length} bytes)");
            pos += len;
            if (marker != 0xDA) continue;
            // SOS: entropy-coded data runs to the next marker that is neither a stuffed FF 00 nor RSTn.
            sawScan = true;
            while (true)
            {
                int ff = bytes[pos..].IndexOf((byte)0xFF);
                if (ff < 0 || pos + ff + 1 >= bytes.Length) throw TruncatedJpeg(name, bytes.Length, sawScan);
                pos += ff;
                byte b = bytes[pos + 1];
                if (b == 0x00 || b is >= 0xD0 and <= 0xD7) pos += 2;
                else if (b == 0xFF) pos += 1;
                else break; // a real marker: the outer loop reads it
            }
        }
    }

    private static InvalidDataException TruncatedJpeg(string name, int length, bool inScan) =>
        BadJpeg(name, $"truncated: the file ends at byte {length} {(inScan ? "inside the image data" : "before the image data")}, without an end-of-image marker");

    private static InvalidDataException BadPng(string name, string what) =>
        new($"{name}: not a valid PNG: {what}") { Data = { ["file"] = name } };

    private static InvalidDataException BadJpeg(string name, string what) =>
        new($"{name}: not a valid JPEG: {what}") { Data = { ["file"] = name } };
}

/// <summary>CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320), as PNG and zip use; slicing by 8 bytes.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    /// <summary>The starting register value.</summary>
    public const uint Initial = 0xFFFFFFFFu;

    /// <summary>Feeds bytes into a running register (start from <see cref="Initial"/>, finish with XOR 0xFFFFFFFF).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        var t = Table.AsSpan();
        while (data.Length >= 8)
        {
            uint lo = crc ^ BinaryPrimitives.ReadUInt32LittleEndian(data);
            uint hi = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            crc = t[7 * 256 + (int)(lo & 0xFF)] ^ t[6 * 256 + (int)((lo >> 8) & 0xFF)]
                ^ t[5 * 256 + (int)((lo >> 16) & 0xFF)] ^ t[4 * 256 + (int)(lo >> 24)]
                ^ t[3 * 256 + (int)(hi & 0xFF)] ^ t[2 * 256 + (int)((hi >> 8) & 0xFF)]
                ^ t[256 + (int)((hi >> 16) & 0xFF)] ^ t[(int)(hi >> 24)];
            data = data[8..];
        }
        foreach (var b in data) crc = t[(int)((crc ^ b) & 0xFF)] ^ (crc >> 8);
        return crc;
    }

    /// <summary>The CRC-32 of a byte span.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Update(Initial, data) ^ 0xFFFFFFFFu;

    // Table k (k = 0..7) advances the register by one byte followed by k zero bytes.
    private static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        for (int k = 1; k < 8; k++)
            for (int n = 0; n < 256; n++)
                t[k * 256 + n] = t[(k - 1) * 256 + n] >> 8 ^ t[(int)(t[(k - 1) * 256 + n] & 0xFF)];
        return t;
    }
}
