using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RoentGen.Platform;

/// <summary>One output file of a shard: its path relative to the job's folder, its size and its SHA-256.</summary>
/// <param name="Path">Relative path with '/' separators.</param>
/// <param name="Bytes">Size in bytes.</param>
/// <param name="Sha256">SHA-256 of the bytes, lower-case hex.</param>
public sealed record ShardFile(string Path, long Bytes, string Sha256)
{
    /// <summary>Describes the file <paramref name="relative"/> under <paramref name="dir"/> as it is on disk now.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static ShardFile Describe(string dir, string relative)
    {
        var full = System.IO.Path.Combine(dir, relative);
        if (!File.Exists(full)) throw new FileNotFoundException($"{full}: the job said it wrote this file, but it is not there", full);
        using var stream = File.OpenRead(full);
        var hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        return new ShardFile(relative.Replace('\\', '/'), stream.Length, hash);
    }

    /// <summary>Why the file on disk under <paramref name="dir"/> is not this one (missing, other size, other hash), or null when it is.</summary>
    public string? Mismatch(string dir, bool checkHash = true)
    {
        var full = System.IO.Path.Combine(dir, Path);
        var info = new FileInfo(full);
        if (!info.Exists) return $"{Path} is missing";
        if (info.Length != Bytes) return $"{Path} has {info.Length} bytes, the manifest says {Bytes}";
        if (!checkHash) return null;
        using var stream = File.OpenRead(full);
        var hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        return hash == Sha256 ? null : $"{Path} has SHA-256 {hash[..12]}..., the manifest says {Sha256[..Math.Min(12, Sha256.Length)]}...";
    }
}

/// <summary>
/// What one shard of a job wrote, in DIR/shards/KIND-IIII-of-NNNN.json (written atomically once the shard's every item
/// is on disk; the completion marker KIND-IIII-of-NNNN.done, holding this file's SHA-256, is written after it). It holds
/// no time stamp or host name, so the same shard of the same job always writes the same manifest.
/// </summary>
public sealed record ShardManifest
{
    /// <summary>The format version of this file.</summary>
    public int Format { get; init; } = 1;
    /// <summary>The job kind ("phantoms", "samples", ...): the file-name prefix and what <c>roentgen merge</c> reports.</summary>
    public required string Kind { get; init; }
    /// <summary>SHA-256 of the job's settings (<see cref="ShardJob.HashConfig"/>): shards of one job share it.</summary>
    public required string ConfigHash { get; init; }
    /// <summary>The shard's 0-based index.</summary>
    public required int ShardIndex { get; init; }
    /// <summary>How many shards the job has.</summary>
    public required int ShardCount { get; init; }
    /// <summary>Items of the whole job.</summary>
    public required int TotalItems { get; init; }
    /// <summary>This shard's first item.</summary>
    public required int ItemStart { get; init; }
    /// <summary>This shard's item count.</summary>
    public required int ItemCount { get; init; }
    /// <summary>The table the merge writes (e.g. labels.csv), relative to the job folder; null when the job has none.</summary>
    public string? TableFile { get; init; }
    /// <summary>The table's header.</summary>
    public IReadOnlyList<string> TableHeader { get; init; } = [];
    /// <summary>This shard's table rows, one per item in item order.</summary>
    public IReadOnlyList<IReadOnlyList<string>> TableRows { get; init; } = [];
    /// <summary>Every file this shard wrote, in item order.</summary>
    public IReadOnlyList<ShardFile> Files { get; init; } = [];

    /// <summary>The shard this manifest describes.</summary>
    [JsonIgnore]
    public Shard Shard => new(ShardIndex, ShardCount);

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    /// <summary>The manifest as JSON (indented, snake_case keys, stable property order).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json) + "\n";

    /// <summary>Reads a manifest file.</summary>
    /// <exception cref="InvalidDataException">The file is not a shard manifest; the message names it.</exception>
    public static ShardManifest Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<ShardManifest>(File.ReadAllText(path), Json)
                   ?? throw new InvalidDataException($"{path}: empty shard manifest");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a shard manifest ({e.Message})", e);
        }
    }

    /// <summary>The manifest's file name: KIND-IIII-of-NNNN.json.</summary>
    public static string FileName(string kind, Shard shard) => $"{kind}-{shard.FileTag}.json";

    /// <summary>The completion marker's file name: KIND-IIII-of-NNNN.done.</summary>
    public static string MarkerName(string kind, Shard shard) => $"{kind}-{shard.FileTag}.done";
}

/// <summary>
/// What <c>roentgen merge</c> writes after checking every shard: DIR/shards/merged.json. It names the job, its config
/// hash, the item count and every output file (the merged table included) with size and SHA-256, sorted by path; it
/// does not name the shard count, so a job run as one shard and the same job run as N shards merge to the same bytes.
/// </summary>
public sealed record MergedManifest
{
    /// <summary>The format version of this file.</summary>
    public int Format { get; init; } = 1;
    /// <summary>The job kind.</summary>
    public required string Kind { get; init; }
    /// <summary>The job's config hash.</summary>
    public required string ConfigHash { get; init; }
    /// <summary>Items of the whole job.</summary>
    public required int TotalItems { get; init; }
    /// <summary>The merged table, or null.</summary>
    public string? TableFile { get; init; }
    /// <summary>Every output file, sorted by path (ordinal).</summary>
    public IReadOnlyList<ShardFile> Files { get; init; } = [];

    /// <summary>The manifest as JSON (indented, snake_case keys).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, ShardManifest.Json) + "\n";
}
