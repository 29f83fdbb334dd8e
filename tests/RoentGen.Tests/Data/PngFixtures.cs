using System.Buffers.Binary;
using System.IO.Compression;
using RoentGen.Data;

namespace RoentGen.Tests.Data;

/// <summary>Builds PNG files around hand-made raw scanlines, to craft unusual or broken files for decoder tests.</summary>
internal static class PngFixtures
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// A PNG of IHDR (with the given fields), PLTE when <paramref name="palette"/> is given, one IDAT holding the
    /// zlib-compressed <paramref name="raw"/> (already filtered scanlines, each led by its filter byte) and IEND.
    /// </summary>
    public static byte[] Assemble(int width, int height, int bitDepth, byte colorType, byte[] raw, byte interlace = 0, byte[]? palette = null)
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

    /// <summary>Byte offsets of every chunk of a PNG: (type, offset of its length field, data length).</summary>
    public static List<(string Type, int Offset, int Length)> Chunks(byte[] png)
    {
        var list = new List<(string, int, int)>();
        for (int pos = 8; pos + 12 <= png.Length;)
        {
            int len = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            list.Add((System.Text.Encoding.ASCII.GetString(png, pos + 4, 4), pos, len));
            pos += 12 + len;
        }
        return list;
    }

    /// <summary>The PNG with one more chunk right after IHDR; with <paramref name="breakCrc"/> its stored CRC is wrong.</summary>
    public static byte[] WithChunkAfterHeader(byte[] png, string type, byte[] data, bool breakCrc = false)
    {
        using var chunk = new MemoryStream();
        WriteChunk(chunk, type, data);
        var bytes = chunk.ToArray();
        if (breakCrc) bytes[^1] ^= 0xFF;
        int afterHeader = 8 + 12 + 13;
        return [.. png[..afterHeader], .. bytes, .. png[afterHeader..]];
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
}
