using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using RoentGen.Platform;

namespace RoentGen.PairAug;

/// <summary>One cached rewrite: the inputs that decide the reply, and the reply.</summary>
/// <param name="Model">The model name.</param>
/// <param name="Instruction">The full instruction (system and user template).</param>
/// <param name="Report">The original report.</param>
/// <param name="Temperature">Sampling temperature.</param>
/// <param name="Seed">Request seed.</param>
/// <param name="MaxTokens">Reply token limit.</param>
/// <param name="Rewrite">The rewritten report.</param>
public sealed record CachedRewrite(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("instruction")] string Instruction,
    [property: JsonPropertyName("report")] string Report,
    [property: JsonPropertyName("temperature")] double Temperature,
    [property: JsonPropertyName("seed")] long Seed,
    [property: JsonPropertyName("max_tokens")] int MaxTokens,
    [property: JsonPropertyName("rewrite")] string Rewrite);

/// <summary>
/// A folder of rewrites, one JSON file per request (DIR/ab/abcdef....json), keyed by the SHA-256 of what decides the
/// reply: model, instruction, report, temperature, seed and token limit, never the endpoint or any credential (so a
/// cache moves between servers of one model). Files are written atomically (<see cref="AtomicFile"/>): a crash leaves
/// either the whole entry or none, and a rerun asks only for what is missing. An unreadable entry counts as missing.
/// </summary>
public sealed class RewriteCache
{
    /// <summary>A cache in <paramref name="directory"/> (created on first write).</summary>
    public RewriteCache(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = Path.GetFullPath(directory);
    }

    /// <summary>The cache folder.</summary>
    public string Directory { get; }

    /// <summary>The cache key (64 hex digits) of a request.</summary>
    public static string Key(string model, string instruction, string report, double temperature, long seed, int maxTokens)
    {
        // Length-prefixed fields, so no two different inputs join into the same bytes.
        var sb = new StringBuilder();
        foreach (var part in new[] { model, instruction, report, temperature.ToString("R", CultureInfo.InvariantCulture), seed.ToString(CultureInfo.InvariantCulture), maxTokens.ToString(CultureInfo.InvariantCulture) })
            sb.Append(part.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(part).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>The file of a key.</summary>
    public string PathOf(string key) => Path.Combine(Directory, key[..2], key + ".json");

    /// <summary>The cached rewrite of a key whose inputs match, or null.</summary>
    public CachedRewrite? TryGet(string key)
    {
        var path = PathOf(key);
        if (!File.Exists(path)) return null;
        try
        {
            var entry = JsonSerializer.Deserialize<CachedRewrite>(File.ReadAllText(path));
            if (entry is null || string.IsNullOrEmpty(entry.Rewrite)) return null;
            return Key(entry.Model, entry.Instruction, entry.Report, entry.Temperature, entry.Seed, entry.MaxTokens) == key ? entry : null;
        }
        catch (JsonException) { return null; }
    }

    /// <summary>Stores an entry atomically under its key; returns the key.</summary>
    public string Put(CachedRewrite entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        string key = Key(entry.Model, entry.Instruction, entry.Report, entry.Temperature, entry.Seed, entry.MaxTokens);
        AtomicFile.WriteAllText(PathOf(key), JsonSerializer.Serialize(entry, new JsonSerializerOptions { WriteIndented = true }));
        return key;
    }

    /// <summary>Number of entries on disk.</summary>
    public int Count => System.IO.Directory.Exists(Directory) ? System.IO.Directory.EnumerateFiles(Directory, "*.json", SearchOption.AllDirectories).Count() : 0;
}
