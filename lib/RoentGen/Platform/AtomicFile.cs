namespace RoentGen.Platform;

/// <summary>
/// Writes files so that a reader never sees half of one: write a temporary file beside it, then rename. Errors name
/// the target the caller asked for, never the temporary file.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes bytes atomically, creating the folder if needed.</summary>
    /// <exception cref="IOException">The file cannot be written; the message names <paramref name="path"/>.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission to write there; the message names <paramref name="path"/>.</exception>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var data = bytes.ToArray();
        Write(path, fs => fs.Write(data));
    }

    /// <summary>Writes UTF-8 text atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>Writes through a stream callback atomically (for large outputs).</summary>
    /// <exception cref="IOException">The file cannot be written; the message names <paramref name="path"/>.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission to write there; the message names <paramref name="path"/>.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        string? tmp = null;
        try
        {
            tmp = TempPathFor(path);
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Named(e, path, "cannot write");
        }
        finally
        {
            try { if (tmp is not null && File.Exists(tmp)) File.Delete(tmp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        // Leftovers of writers killed mid-write go once a write succeeds; failing to remove them loses nothing.
        try { RemoveStaleTemps(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Deletes the temporary files that writers of <paramref name="path"/> killed mid-write left beside it (their names
    /// carry the writer's process id; a file whose process no longer runs is stale). Files of running writers are kept.
    /// </summary>
    /// <returns>How many were deleted.</returns>
    public static int RemoveStaleTemps(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) return 0;
        var prefix = "." + Path.GetFileName(full) + ".";
        int removed = 0;
        foreach (var tmp in Directory.EnumerateFiles(dir, prefix + "*.tmp"))
        {
            // .NAME.PID.GUID.tmp
            var middle = Path.GetFileName(tmp)[prefix.Length..^4].Split('.');
            if (middle.Length != 2 || middle[1].Length != 32 || !int.TryParse(middle[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)) continue;
            if (pid == Environment.ProcessId || IsRunning(pid)) continue;
            try { File.Delete(tmp); removed++; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return removed;
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }       // no such process
        catch (InvalidOperationException) { return false; }
        catch (System.ComponentModel.Win32Exception) { return true; } // exists, not ours to inspect
    }

    /// <summary>
    /// Checks before a long job that its result can be written to <paramref name="path"/>: creates the folder, opens a
    /// temporary file beside the target and deletes it. Nothing is left behind and an existing file is not touched.
    /// </summary>
    /// <param name="path">The result file the job will write.</param>
    /// <param name="what">How the user named it (e.g. "--json"), for the message.</param>
    /// <exception cref="IOException">The file could not be written; the message names <paramref name="path"/> and why.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission to write there; the message names <paramref name="path"/>.</exception>
    public static void EnsureWritable(string path, string? what = null)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new IOException($"{Label(what)}{path} is a folder; expected a file path");
        string? tmp = null;
        try
        {
            tmp = TempPathFor(full);
            using (new FileStream(tmp, FileMode.CreateNew, FileAccess.Write)) { }
            if (File.Exists(full))
            {
                // The rename at the end replaces the file: a read-only file in a writable folder is still refused here,
                // as a user would expect.
                using (new FileStream(full, FileMode.Open, FileAccess.Write)) { }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Named(e, path, $"{Label(what)}cannot write", checkOnly: true);
        }
        finally
        {
            try { if (tmp is not null && File.Exists(tmp)) File.Delete(tmp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    private static string Label(string? what) => what is null ? "" : what + ": ";

    // The same kind of exception, naming the user's path and the reason without the temporary file's name.
    private static Exception Named(Exception e, string path, string doing, bool checkOnly = false)
    {
        var reason = e switch
        {
            UnauthorizedAccessException => "permission denied",
            DirectoryNotFoundException => "a folder on the way does not exist",
            PathTooLongException => "the path is too long",
            _ when ParentIsFile(path) is { } file => $"{file} is a file, not a folder",
            _ => StripTemp(e.Message, path),
        };
        var message = $"{doing} {path}: {reason}" + (checkOnly ? " (checked before starting, so no work was lost)" : "");
        return e is UnauthorizedAccessException ? new UnauthorizedAccessException(message, e) : new IOException(message, e);
    }

    private static string? ParentIsFile(string path)
    {
        for (var dir = Path.GetDirectoryName(Path.GetFullPath(path)); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
            if (File.Exists(dir)) return dir;
        return null;
    }

    // A system message may quote the temporary file; say the target instead.
    private static string StripTemp(string message, string path)
    {
        var name = Path.GetFileName(Path.GetFullPath(path));
        var start = message.IndexOf("." + name + ".", StringComparison.Ordinal);
        if (start < 0) return message;
        var end = message.IndexOf(".tmp", start, StringComparison.Ordinal);
        if (end < 0) return message;
        var dirStart = message.LastIndexOfAny(['\'', '"', ' '], start) + 1;
        return message[..dirStart] + Path.GetFullPath(path) + message[(end + 4)..];
    }

    private static string TempPathFor(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
    }
}
