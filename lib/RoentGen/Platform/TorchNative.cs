using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace RoentGen.Platform;

/// <summary>
/// Loads TorchSharp's native library from wherever TorchSharp.dll itself was loaded, before TorchSharp looks for it.
/// </summary>
/// <remarks>
/// An application finds <c>libLibTorchSharp.so</c> through its deps.json. A notebook kernel that references the
/// library with <c>#r "path/RoentGen.Interactive.dll"</c>, or a host that loads it by path, has no deps.json entry
/// for it, and TorchSharp then fails with the misleading "doesn't contain a reference to libtorch-cpu-linux-x64".
/// This loader looks in the places a build output or a NuGet package keeps the native runtime
/// (<c>runtimes/RID/native</c> next to TorchSharp.dll, or two folders up in a package), applies the GLIBCXX fix of
/// environment/LibTorchCompat where the system libstdc++ needs it and the file is not patched yet, and loads it by
/// absolute path. Its own dependencies (libtorch, libc10) resolve through its RUNPATH ($ORIGIN), and TorchSharp's later
/// load by name finds the already-loaded library by its soname. It runs once, when the RoentGen assembly is first used.
/// </remarks>
public static class TorchNative
{
    private static readonly object Gate = new();
    private static bool _attempted;

    /// <summary>The file this loader loaded, or null when it loaded nothing (not Linux, not found, or already loadable).</summary>
    public static string? LoadedFrom { get; private set; }

    /// <summary>Why the preload did not happen or failed, for <c>doctor</c>; null when it loaded.</summary>
    public static string? Note { get; private set; }

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "The native library must be loaded before any TorchSharp call, whichever type of the library a notebook touches first.")]
    internal static void OnModuleLoad() => EnsureLoaded();

    /// <summary>Finds, fixes if needed, and loads libLibTorchSharp once; never throws (TorchSharp reports a failure itself).</summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_attempted) return;
            _attempted = true;
            OneDnn.Prepare();   // before libtorch loads: oneDNN reads its instruction-set cap once, from the environment
            Memory.KeepFreedHeap();   // freed activations stay in the heap for the next step instead of being faulted in again
            if (!OperatingSystem.IsLinux()) { Note = "not Linux: TorchSharp's own loading is used"; return; }
            try
            {
                var candidate = Candidates().FirstOrDefault(File.Exists);
                if (candidate is null) { Note = "no runtimes/*/native folder next to TorchSharp.dll: TorchSharp's own loading is used"; return; }
                if (GlibcxxCompat.SystemHasNeededVersion() == false) GlibcxxCompat.MakeNeededVersionWeak(candidate);
                NativeLibrary.Load(candidate);
                LoadedFrom = candidate;
                OneDnn.Apply();   // before any other libtorch call: oneDNN's convolutions are wrong on AMD processors unless capped
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or BadImageFormatException or InvalidDataException)
            {
                Note = $"preloading libLibTorchSharp failed: {e.Message}";
            }
        }
    }

    /// <summary>
    /// The libtorch_cpu.so this process has mapped (from /proc/self/maps), or null when none is (or not Linux). Code that
    /// reaches into libtorch by path must use this file: loading another copy by its path (the one beside
    /// libLibTorchSharp when the dynamic linker found libtorch elsewhere, say through LD_LIBRARY_PATH) brings up a second
    /// libtorch in the process, which aborts.
    /// </summary>
    public static string? LibTorchCpu()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/proc/self/maps")) return null;
        try
        {
            return MappedLibrary(File.ReadLines("/proc/self/maps"), "libtorch_cpu.so",
                LoadedFrom is null ? null : Path.GetDirectoryName(LoadedFrom));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// The path of a mapped file named <paramref name="fileName"/> in /proc/self/maps lines (the one in
    /// <paramref name="preferredDir"/> when several are), or null when none is mapped.
    /// </summary>
    public static string? MappedLibrary(IEnumerable<string> mapsLines, string fileName, string? preferredDir)
    {
        ArgumentNullException.ThrowIfNull(mapsLines);
        var found = new List<string>();
        foreach (var line in mapsLines)
        {
            // address perms offset dev inode   path (the path may hold spaces; it starts at the first '/')
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..].TrimEnd();
            if (path.EndsWith(" (deleted)", StringComparison.Ordinal)) continue;
            if (Path.GetFileName(path) == fileName && !found.Contains(path)) found.Add(path);
        }
        if (found.Count == 0) return null;
        if (preferredDir is not null)
            foreach (var path in found)
                if (string.Equals(Path.GetDirectoryName(path), Path.TrimEndingDirectorySeparator(preferredDir), StringComparison.Ordinal)) return path;
        return found[0];
    }

    /// <summary>Where libLibTorchSharp.so may sit relative to the loaded TorchSharp.dll, most likely first.</summary>
    public static IEnumerable<string> Candidates()
    {
        var torchSharp = typeof(TorchSharp.torch).Assembly.Location;
        if (string.IsNullOrEmpty(torchSharp)) yield break;
        var dir = Path.GetDirectoryName(torchSharp)!;
        var rid = RuntimeInformation.RuntimeIdentifier;   // e.g. linux-x64 (debian.12-x64 on distro-specific builds)
        var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        foreach (var r in new[] { rid, $"linux-{arch}" }.Distinct())
        {
            yield return Path.Combine(dir, "runtimes", r, "native", GlibcxxCompat.LibraryFileName);          // build output
            yield return Path.GetFullPath(Path.Combine(dir, "..", "..", "runtimes", r, "native", GlibcxxCompat.LibraryFileName)); // package: lib/TFM
        }
        yield return Path.Combine(dir, GlibcxxCompat.LibraryFileName);   // RID-specific publish
    }
}
