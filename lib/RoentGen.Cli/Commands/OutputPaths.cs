namespace RoentGen.Cli.Commands;

/// <summary>
/// Guards of the verbs against silent loss: an output that is an input, a non-empty output folder (strict UTF-8 reading of
/// inputs is the library's, in <c>InputFile.ReadAllTextStrict</c>). Each failure is a user error naming the path and what was expected.
/// </summary>
internal static class OutputPaths
{
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
}
