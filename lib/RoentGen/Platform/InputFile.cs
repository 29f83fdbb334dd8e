using System.Runtime.InteropServices;
using System.Text;

namespace RoentGen.Platform;

/// <summary>
/// Reads input files with bounds: only regular files (a device such as <c>/dev/zero</c>, a FIFO or a socket is
/// refused before it is opened, so a read can neither grow without end nor block waiting for a writer), and never
/// more than a stated number of bytes. Symbolic links are followed; the check applies to their target.
/// </summary>
public static class InputFile
{
    /// <summary>The default cap on one input file read whole (1 GiB).</summary>
    public const long DefaultMaxBytes = 1L << 30;

    /// <summary>
    /// Throws unless <paramref name="path"/> names an existing regular file (after following links).
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for the message (e.g. "image", "CSV file").</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">It exists but is not a regular file (a folder, device, FIFO, socket).</exception>
    public static void RequireRegular(string path, string what = "input file")
    {
        ArgumentNullException.ThrowIfNull(path);
        var kind = Kind(path);
        if (kind == FileKind.Missing) throw new FileNotFoundException($"{what} not found: {TextEscape.Escape(path)}", path);
        if (kind != FileKind.Regular)
            throw new InvalidDataException($"{TextEscape.Escape(path)}: the {what} is a {Describe(kind)}, not a regular file; expected a regular file")
            { Data = { ["file"] = path } };
    }

    /// <summary>True when <paramref name="path"/> is an existing regular file (links followed).</summary>
    public static bool IsRegular(string path) => Kind(path) == FileKind.Regular;

    /// <summary>Reads a regular file whole, refusing one larger than <paramref name="maxBytes"/>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a regular file, or larger than the cap (the message names the file and the cap).</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes = DefaultMaxBytes, string what = "input file")
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        RequireRegular(path, what);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        long length = fs.Length;
        if (length > maxBytes || length > Array.MaxLength) throw TooLarge(path, what, length, maxBytes);
        // Read to the end even if the file grew after the length was taken, but never past the cap.
        using var ms = new MemoryStream((int)length);
        var buffer = new byte[1 << 16];
        int n;
        while ((n = fs.Read(buffer, 0, buffer.Length)) > 0)
        {
            if (ms.Length + n > maxBytes) throw TooLarge(path, what, ms.Length + n, maxBytes);
            ms.Write(buffer, 0, n);
        }
        return ms.Length == ms.Capacity ? ms.GetBuffer() : ms.ToArray();
    }

    /// <summary>Reads a regular file whole as UTF-8 text (a BOM is honoured), refusing one larger than <paramref name="maxBytes"/>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a regular file, or larger than the cap.</exception>
    public static string ReadAllText(string path, long maxBytes = DefaultMaxBytes, string what = "input file")
    {
        var bytes = ReadAllBytes(path, maxBytes, what);
        using var reader = new StreamReader(new MemoryStream(bytes), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// Reads a regular file whole as UTF-8 text that must be valid (a byte order mark is dropped): a byte that is not
    /// UTF-8 is an error naming the line and the byte, never a silent U+FFFD that a later write would make permanent.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a regular file, larger than the cap, or not UTF-8.</exception>
    public static string ReadAllTextStrict(string path, long maxBytes = DefaultMaxBytes, string what = "input file")
    {
        ReadOnlySpan<byte> span = ReadAllBytes(path, maxBytes, what);
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) span = span[3..];
        for (int pos = 0; pos < span.Length;)
        {
            if (Rune.DecodeFromUtf8(span[pos..], out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                var before = span[..pos];
                int line = before.Count((byte)'\n') + 1, column = pos - (before.LastIndexOf((byte)'\n') + 1) + 1;
                throw new InvalidDataException(
                    $"{TextEscape.Escape(path)}, line {line}, byte {column} of the line: byte 0x{span[pos]:X2} is not UTF-8; expected a UTF-8 {what} "
                    + "(convert it first, e.g. iconv -f latin1 -t utf-8); nothing was written") { Data = { ["file"] = path } };
            }
            pos += consumed;
        }
        return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(span);
    }

    private static InvalidDataException TooLarge(string path, string what, long length, long max) =>
        new($"{TextEscape.Escape(path)}: the {what} has {length} bytes or more, above the limit of {max} bytes; refused before reading it whole")
        { Data = { ["file"] = path } };

    private enum FileKind { Missing, Regular, Directory, Other }

    private static string Describe(FileKind k) => k == FileKind.Directory ? "folder" : "device, FIFO or socket";

    private static FileKind Kind(string path)
    {
        if (Directory.Exists(path)) return FileKind.Directory;
        if (!File.Exists(path)) return FileKind.Missing;
        if (!OperatingSystem.IsLinux()) return FileKind.Regular; // the byte cap still bounds the read
        try
        {
            var buf = new byte[256]; // struct statx: the same layout on every Linux architecture
            if (Statx(AtFdCwd, path, 0, StatxType, buf) != 0) return FileKind.Regular; // let the open report the error
            int mode = BitConverter.ToUInt16(buf, 28) & 0xF000; // stx_mode, S_IFMT
            return mode switch { 0x8000 => FileKind.Regular, 0x4000 => FileKind.Directory, _ => FileKind.Other };
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return FileKind.Regular;
        }
    }

    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;

    [DllImport("libc", EntryPoint = "statx", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int Statx(int dirfd, string path, int flags, uint mask, [Out] byte[] buffer);
}
