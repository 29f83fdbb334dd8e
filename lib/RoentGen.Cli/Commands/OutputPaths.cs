using System.Buffers;
using System.Text;

namespace RoentGen.Cli.Commands;

/// <summary>
/// Guards of the verbs against silent loss: an output that is an input, a non-empty output folder, a text file whose
/// bytes would not survive a read and a write. Each failure is a user error naming the path and what was expected.
/// </summary>
internal static class OutputPaths
{
    /// <summary>The most bytes read from a file whose size the system does not report (a pipe, a device such as /dev/zero).</summary>
    public const long MaxUnsizedRead = 64L << 20;

    /// <summary>The path with every symbolic link on the way resolved (as realpath does; missing tail components are kept).</summary>
    /// <exception cref="IOException">A loop of symbolic links.</exception>
    public static string Canonical(string path)
    {
        var full = Path.GetFullPath(path);
        for (var hops = 0; ; hops++)
        {
            if (hops > 40) throw new IOException($"{path}: too many levels of symbolic links");
            var (resolved, changed) = ResolveFirstLink(full);
            if (!changed) return resolved;
            full = resolved;
        }
    }

    // Resolves the first symbolic link along the path (from the root), or returns the path unchanged.
    private static (string Path, bool Changed) ResolveFirstLink(string full)
    {
        var root = Path.GetPathRoot(full) ?? "/";
        var parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        var current = root;
        for (var i = 0; i < parts.Length; i++)
        {
            var next = Path.Combine(current, parts[i]);
            string? target;
            try { target = new FileInfo(next).LinkTarget; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { target = null; }
            if (target is not null)
            {
                var resolved = Path.GetFullPath(target, current);
                return (Path.Combine([resolved, .. parts[(i + 1)..]]), true);
            }
            current = next;
        }
        return (current, false);
    }

    /// <summary>Refuses an output that is the input (compared as full paths through symbolic links).</summary>
    /// <exception cref="ArgumentException">The two name the same file.</exception>
    public static void RefuseSame(string input, string inputOption, string output, string outputOption)
    {
        var a = Canonical(input);
        var b = Canonical(output);
        if (string.Equals(a, b, OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException(
                $"{outputOption} {output} is the same file as {inputOption} {input}" + (a != Path.GetFullPath(output) ? $" ({a})" : "")
                + $"; writing it would replace the input: choose another {outputOption}");
    }

    /// <summary>
    /// Makes <paramref name="dir"/> ready for a verb that writes <paramref name="owned"/> there (folder names end in '/'):
    /// a new or empty folder is used as it is; a non-empty one is refused unless <paramref name="overwrite"/>, which
    /// deletes only the owned entries and keeps every other file.
    /// </summary>
    /// <exception cref="IOException">The folder is a file, or not empty without <paramref name="overwrite"/>, or an owned name is of the wrong kind.</exception>
    public static void PrepareOwnedFolder(string dir, IReadOnlyList<string> owned, bool overwrite, string option)
    {
        if (File.Exists(dir)) throw new IOException($"{option} {dir} is a file; expected a folder");
        if (!Directory.Exists(dir) || !Directory.EnumerateFileSystemEntries(dir).Any()) return;
        var ownedList = string.Join(", ", owned);
        if (!overwrite)
        {
            var present = Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).Take(4).ToList();
            throw new IOException(
                $"{option} {dir} is not empty (it holds {string.Join(", ", present)}{(present.Count == 4 ? ", ..." : "")}); "
                + $"choose a new or empty folder, or pass --overwrite to replace what this verb writes there ({ownedList}; other files are kept)");
        }
        foreach (var name in owned)
        {
            var isFolder = name.EndsWith('/');
            var path = Path.Combine(dir, name.TrimEnd('/'));
            var info = new FileInfo(path);
            if (info.LinkTarget is not null)
            {
                info.Delete(); // a link: remove the link, never what it points to
                continue;
            }
            if (isFolder)
            {
                if (File.Exists(path)) throw new IOException($"{option}: {path} is a file where this verb writes a folder; move it away first");
                if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            }
            else
            {
                if (Directory.Exists(path)) throw new IOException($"{option}: {path} is a folder where this verb writes a file; move it away first");
                if (File.Exists(path)) File.Delete(path);
            }
        }
    }

    /// <summary>
    /// Reads a text file that must be UTF-8 (a byte order mark is dropped). Bytes that are not UTF-8 are an error naming the
    /// line and byte, not a silent U+FFFD: a later write would otherwise lose them for good.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not UTF-8, or an unsized file over <see cref="MaxUnsizedRead"/> bytes.</exception>
    public static string ReadStrictUtf8(string path)
    {
        if (Directory.Exists(path)) throw new FileNotFoundException($"{path} is a folder; expected a CSV file", path);
        if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        var bytes = ReadBounded(path);
        ReadOnlySpan<byte> span = bytes;
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) span = span[3..];
        var pos = 0;
        while (pos < span.Length)
        {
            var status = System.Text.Rune.DecodeFromUtf8(span[pos..], out _, out var consumed);
            if (status != OperationStatus.Done)
            {
                var before = span[..pos];
                var line = before.Count((byte)'\n') + 1;
                var column = pos - (before.LastIndexOf((byte)'\n') + 1) + 1;
                throw new InvalidDataException(
                    $"{path}, line {line}, byte {column} of the line: byte 0x{span[pos]:X2} is not UTF-8; expected a UTF-8 CSV "
                    + "(convert it first, e.g. iconv -f latin1 -t utf-8); nothing was written");
            }
            pos += consumed;
        }
        return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(span);
    }

    // The whole file, or an error for an unsized stream (pipe, device) longer than MaxUnsizedRead.
    private static byte[] ReadBounded(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        if (fs.CanSeek && fs.Length > 0) return File.ReadAllBytes(path);
        using var ms = new MemoryStream();
        var buffer = new byte[1 << 16];
        int n;
        while ((n = fs.Read(buffer)) > 0)
        {
            ms.Write(buffer, 0, n);
            if (ms.Length > MaxUnsizedRead)
                throw new InvalidDataException($"{path}: not a regular file and longer than {MaxUnsizedRead >> 20} MiB; expected a CSV file");
        }
        return ms.ToArray();
    }
}
