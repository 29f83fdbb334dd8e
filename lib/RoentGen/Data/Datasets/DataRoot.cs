namespace RoentGen.Data.Datasets;

/// <summary>
/// Keeps the files a dataset or model folder names inside that folder: a path given in a labels.csv or an index file
/// must not climb out with "..", be absolute, or pass through a symbolic link that leads outside, unless the caller
/// allows it (<see cref="LoadOptions.AllowOutsideRoot"/>).
/// </summary>
public static class DataRoot
{
    /// <summary>
    /// Why a relative path written in a data file may not be used under <paramref name="root"/> (it is absolute, or
    /// climbs out of the folder with ".."), or null when it stays inside. Only the text is checked (no file system access).
    /// </summary>
    /// <param name="root">The folder.</param>
    /// <param name="relative">The path as written in the file (either slash).</param>
    public static string? LexicalProblem(string root, string relative)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(relative);
        var p = relative.Replace('\\', '/');
        if (Path.IsPathRooted(p) || (p.Length >= 2 && p[1] == ':'))
            return $"'{Platform.TextEscape.Escape(relative)}' is an absolute path; expected a path relative to {Platform.TextEscape.Escape(root)}";
        var full = Path.GetFullPath(Path.Combine(root, p));
        if (!IsUnder(Path.GetFullPath(root), full))
            return $"'{Platform.TextEscape.Escape(relative)}' leads outside the folder {Platform.TextEscape.Escape(root)}; expected a path inside it";
        return null;
    }

    /// <summary>
    /// Why <paramref name="path"/> (absolute) is not inside <paramref name="root"/> once every symbolic link of both is
    /// followed, or null when it is. Parts that do not exist yet are taken as written.
    /// </summary>
    public static string? LinkProblem(string root, string path, Dictionary<string, string>? cache = null)
    {
        var realRoot = RealPath(Path.GetFullPath(root), cache);
        var full = Path.GetFullPath(path);
        if (!IsUnder(realRoot, full) && !IsUnder(Path.GetFullPath(root), full))
            return $"{Platform.TextEscape.Escape(path)} lies outside the folder {Platform.TextEscape.Escape(root)}; expected a file inside it";
        var real = RealPath(full, cache);
        if (!IsUnder(realRoot, real))
            return $"{Platform.TextEscape.Escape(path)} is reached through a symbolic link that leads outside the folder {Platform.TextEscape.Escape(root)} (to {Platform.TextEscape.Escape(real)}); expected a file inside it";
        return null;
    }

    /// <summary>The message suffix that says how to allow paths outside the folder.</summary>
    public const string AllowHint = " (set LoadOptions.AllowOutsideRoot, or pass --allow-outside-root, to allow it)";

    private static bool IsUnder(string root, string path)
    {
        var r = Path.TrimEndingDirectorySeparator(root);
        return path == r || path.StartsWith(r + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            || r == Path.GetPathRoot(r);
    }

    // The path with every symbolic link followed, component by component (at most 40 links, as the kernel allows).
    private static string RealPath(string full, Dictionary<string, string>? cache, int depth = 0)
    {
        if (depth > 40) return full;
        if (cache is not null && cache.TryGetValue(full, out var known)) return known;
        var dir = Path.GetDirectoryName(full);
        string result;
        if (dir is null) result = full; // the file-system root
        else
        {
            var realDir = RealPath(dir, cache, depth);
            var candidate = Path.Combine(realDir, Path.GetFileName(full));
            var info = new FileInfo(candidate);
            string? target = null;
            try { target = info.LinkTarget; } catch (IOException) { }
            if (target is null) result = candidate;
            else result = RealPath(Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(realDir, target)), cache, depth + 1);
        }
        if (cache is not null) cache[full] = result;
        return result;
    }
}
