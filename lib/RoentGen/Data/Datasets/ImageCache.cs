using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace RoentGen.Data.Datasets;

/// <summary>
/// An on-disk cache of resized images: one 8-bit PNG per (source file, size, square mode) under a folder,
/// with a manifest (manifest.json) that records each source's length and last-write time. A changed source
/// (other length or time) invalidates its entry. In-memory sources are never cached. Safe to share between
/// threads of one process; two processes sharing a folder may redo work but never read half a file
/// (files are written atomically).
/// </summary>
public sealed class ImageCache
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _entries;
    private bool _dirty;
    private long _lastFlush = Environment.TickCount64;

    /// <summary>Opens (or creates) a cache in a folder.</summary>
    public ImageCache(string directory)
    {
        Directory = System.IO.Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(Directory);
        _entries = ReadManifest();
    }

    /// <summary>The cache folder.</summary>
    public string Directory { get; }

    /// <summary>The manifest file.</summary>
    public string ManifestPath => System.IO.Path.Combine(Directory, "manifest.json");

    /// <summary>Loads served from the cache since this object was made.</summary>
    public int Hits { get; private set; }

    /// <summary>Loads that had to read and resize the source (and then filled the cache).</summary>
    public int Misses { get; private set; }

    /// <summary>Number of entries in the manifest.</summary>
    public int Count { get { lock (_gate) return _entries.Count; } }

    /// <summary>
    /// The source resized to size x size: from the cache when its entry is valid, else made with
    /// <see cref="ImageResize.ToSquare"/>, stored, and returned. Masks are cached thresholded.
    /// </summary>
    public GrayImage GetOrCreate(ImageSource source, int size, SquareMode mode, bool isMask = false)
    {
        if (!source.IsFile) return ImageResize.ToSquare(source.Load(), size, mode, isMask);
        var path = source.Path!;
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"image not found: {path}", path);
        var key = $"{path}|{size}|{mode}|{(isMask ? "mask" : "image")}";
        Entry? e;
        lock (_gate) _entries.TryGetValue(key, out e);
        if (e is not null && e.Length == info.Length && e.LastWriteUtcTicks == info.LastWriteTimeUtc.Ticks)
        {
            var cached = System.IO.Path.Combine(Directory, e.File);
            if (File.Exists(cached))
            {
                try
                {
                    var img = ImageIO.Read(cached);
                    lock (_gate) Hits++;
                    return img;
                }
                catch (InvalidDataException) { /* a damaged cache file is remade below */ }
            }
        }
        var made = ImageResize.ToSquare(source.Load(), size, mode, isMask);
        var name = Hash(key) + ".png";
        WriteNoSync(System.IO.Path.Combine(Directory, name), ImageIO.EncodePng(made));
        lock (_gate)
        {
            Misses++;
            _entries[key] = new Entry(name, path, size, mode.ToString(), isMask, info.Length, info.LastWriteTimeUtc.Ticks);
            _dirty = true;
        }
        if (Environment.TickCount64 - _lastFlush > 1000) Flush();
        // Cached pixels are 8-bit: return what a later hit will return, so the first and second load agree.
        return ImageIO.Read(System.IO.Path.Combine(Directory, name));
    }

    /// <summary>
    /// Writes the manifest if entries were added. Misses write it at most once a second by themselves;
    /// batching flushes after every batch; call this after loading images one by one.
    /// </summary>
    public void Flush()
    {
        // Written under the lock so that an older snapshot can never replace a newer one.
        lock (_gate)
        {
            _lastFlush = Environment.TickCount64;
            if (!_dirty) return;
            var json = JsonSerializer.Serialize(_entries.Values.OrderBy(v => v.File).ToList(), JsonOptions);
            WriteNoSync(ManifestPath, Encoding.UTF8.GetBytes(json));
            _dirty = false;
        }
    }

    // Atomic (temp file + rename) but without fsync: a cache can be rebuilt, and one fsync per image made the
    // first pass several times slower. A file torn by a crash fails to decode and is remade.
    private static void WriteNoSync(string path, byte[] bytes)
    {
        var tmp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private Dictionary<string, Entry> ReadManifest()
    {
        var d = new Dictionary<string, Entry>();
        if (!File.Exists(ManifestPath)) return d;
        List<Entry>? list;
        try { list = JsonSerializer.Deserialize<List<Entry>>(File.ReadAllText(ManifestPath), JsonOptions); }
        catch (JsonException ex)
        {
            throw new DatasetFormatException(ManifestPath, null, null,
                $"the cache manifest is not valid JSON ({ex.Message}); expected a list of entries. Delete the cache folder to rebuild it.", ex);
        }
        foreach (var e in list ?? [])
            d[$"{e.Source}|{e.Size}|{e.Mode}|{(e.IsMask ? "mask" : "image")}"] = e;
        return d;
    }

    private static string Hash(string key) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..24];

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    private sealed record Entry(string File, string Source, int Size, string Mode, bool IsMask, long Length, long LastWriteUtcTicks);
}
