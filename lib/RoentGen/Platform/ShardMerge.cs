using System.Globalization;

namespace RoentGen.Platform;

/// <summary>What <see cref="ShardMerge.Merge"/> wrote.</summary>
/// <param name="Manifest">The merged manifest (also in DIR/shards/merged.json).</param>
/// <param name="Shards">How many shards were combined.</param>
/// <param name="TablePath">The merged table's full path, or null when the job has none.</param>
public sealed record ShardMergeResult(MergedManifest Manifest, int Shards, string? TablePath);

/// <summary>
/// <c>roentgen merge DIR</c>: checks the shards that <see cref="ShardJob.Run"/> left in DIR/shards/ and combines them.
/// It refuses (an <see cref="InvalidDataException"/> naming the shard and file) when: there is no shard; two job kinds
/// share the folder; shards disagree on the config hash or the shard count; a shard index appears twice or is missing;
/// a shard has no completion marker, or its manifest changed after it was written; a shard's item range is not the one
/// <see cref="ShardPartition"/> gives it; an output file is missing or differs in size or SHA-256 from its manifest; two
/// shards claim one file. Otherwise it writes the table (rows in shard order, so in item order) and
/// DIR/shards/merged.json. Merging is deterministic and may be repeated.
/// </summary>
public static class ShardMerge
{
    /// <summary>The merged manifest's file name under DIR/shards/.</summary>
    public const string MergedName = "merged.json";

    /// <summary>Checks and merges the shards in <paramref name="dir"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">A check failed; the message names the shard and file and what was expected.</exception>
    public static ShardMergeResult Merge(string dir)
    {
        var full = Path.GetFullPath(dir);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"{dir}: no such folder (expected the --out folder of a sharded job)");
        var shardsDir = Path.Combine(full, "shards");
        var paths = Directory.Exists(shardsDir)
            ? Directory.EnumerateFiles(shardsDir, "*-of-*.json").Order(StringComparer.Ordinal).ToList()
            : [];
        if (paths.Count == 0)
            throw new InvalidDataException($"{shardsDir}: no shard manifests (KIND-IIII-of-NNNN.json); run the job's shards with --shard i/N and --out {dir} first");
        var manifests = paths.Select(p => (Path: p, M: ShardManifest.Read(p))).ToList();

        var first = manifests[0];
        foreach (var (path, m) in manifests.Skip(1))
        {
            if (m.Kind != first.M.Kind)
                throw new InvalidDataException($"{shardsDir} holds shards of two jobs: {Path.GetFileName(first.Path)} ({first.M.Kind}) and {Path.GetFileName(path)} ({m.Kind}); give each job its own --out");
            if (m.ConfigHash != first.M.ConfigHash)
                throw new InvalidDataException(
                    $"shard {m.ShardIndex}/{m.ShardCount} ({Path.GetFileName(path)}) was run with other settings than shard {first.M.ShardIndex}/{first.M.ShardCount} "
                    + $"({Path.GetFileName(first.Path)}): config hash {m.ConfigHash[..12]}... against {first.M.ConfigHash[..12]}...; rerun it with the same options");
            if (m.ShardCount != first.M.ShardCount)
                throw new InvalidDataException(
                    $"shard {m.ShardIndex}/{m.ShardCount} ({Path.GetFileName(path)}) splits the job {m.ShardCount} ways, shard {first.M.ShardIndex}/{first.M.ShardCount} "
                    + $"({Path.GetFileName(first.Path)}) {first.M.ShardCount} ways; every shard must use the same N");
            if (m.TotalItems != first.M.TotalItems || m.TableFile != first.M.TableFile || !m.TableHeader.SequenceEqual(first.M.TableHeader))
                throw new InvalidDataException($"shard {m.ShardIndex}/{m.ShardCount} ({Path.GetFileName(path)}) describes another job than {Path.GetFileName(first.Path)} (item count or table)");
        }
        var kind = first.M.Kind;
        int n = first.M.ShardCount;
        var byIndex = new SortedDictionary<int, (string Path, ShardManifest M)>();
        foreach (var entry in manifests)
        {
            if (entry.M.ShardIndex < 0 || entry.M.ShardIndex >= n)
                throw new InvalidDataException($"{Path.GetFileName(entry.Path)}: shard index {entry.M.ShardIndex} is outside 0..{n - 1}");
            if (!byIndex.TryAdd(entry.M.ShardIndex, entry))
                throw new InvalidDataException(
                    $"shard {entry.M.ShardIndex}/{n} appears twice: {Path.GetFileName(byIndex[entry.M.ShardIndex].Path)} and {Path.GetFileName(entry.Path)}; delete the one that does not belong");
        }
        var missing = Enumerable.Range(0, n).Where(i => !byIndex.ContainsKey(i)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException(
                $"{kind} job in {dir} is incomplete: shard(s) {string.Join(", ", missing.Select(i => $"{i}/{n}"))} missing "
                + $"(no {ShardManifest.FileName(kind, new Shard(missing[0], n))}); run them with --shard i/{n} and merge again");

        var ranges = ShardPartition.Ranges(first.M.TotalItems, n);
        var files = new List<ShardFile>();
        var owner = new Dictionary<string, int>(StringComparer.Ordinal);
        var rows = new List<IReadOnlyList<string>>();
        foreach (var (index, (path, m)) in byIndex)
        {
            var name = Path.GetFileName(path);
            var marker = Path.Combine(shardsDir, ShardManifest.MarkerName(kind, m.Shard));
            if (!File.Exists(marker))
                throw new InvalidDataException($"shard {index}/{n} is not finished: no completion marker {ShardManifest.MarkerName(kind, m.Shard)} beside {name}; run it again (it resumes)");
            if (File.ReadAllText(marker).Trim() != ShardJob.Sha256Hex(File.ReadAllText(path)))
                throw new InvalidDataException($"shard {index}/{n}: {name} changed after the shard finished (its SHA-256 is not the one in {Path.GetFileName(marker)}); run the shard again");
            if (m.ItemStart != ranges[index].Start || m.ItemCount != ranges[index].Count)
                throw new InvalidDataException($"shard {index}/{n} ({name}) covers items {new ItemRange(m.ItemStart, m.ItemCount)}, expected {ranges[index]} of {first.M.TotalItems}");
            if (m.TableFile is not null && m.TableRows.Count != m.ItemCount)
                throw new InvalidDataException($"shard {index}/{n} ({name}) has {m.TableRows.Count} table rows for {m.ItemCount} items");
            foreach (var f in m.Files)
            {
                if (owner.TryGetValue(f.Path, out var other))
                    throw new InvalidDataException($"shards {other}/{n} and {index}/{n} both wrote {f.Path}");
                owner[f.Path] = index;
                if (f.Mismatch(full) is { } why)
                    throw new InvalidDataException($"shard {index}/{n} ({name}): {why}; run the shard again (it redoes what changed)");
                files.Add(f);
            }
            rows.AddRange(m.TableRows);
        }

        string? tablePath = null;
        if (first.M.TableFile is { } table)
        {
            if (owner.ContainsKey(table)) throw new InvalidDataException($"shard {owner[table]}/{n} wrote {table}, the merged table's own name");
            tablePath = Path.Combine(full, table);
            RoentGen.Data.Csv.WriteFile(tablePath, first.M.TableHeader, rows);
            files.Add(ShardFile.Describe(full, table));
        }
        var merged = new MergedManifest
        {
            Kind = kind, ConfigHash = first.M.ConfigHash, TotalItems = first.M.TotalItems, TableFile = first.M.TableFile,
            Files = files.OrderBy(f => f.Path, StringComparer.Ordinal).ToArray(),
        };
        AtomicFile.WriteAllText(Path.Combine(shardsDir, MergedName), merged.ToJson());
        return new ShardMergeResult(merged, n, tablePath);
    }

    /// <summary>A one-line summary of a merge for a log.</summary>
    public static string Describe(ShardMergeResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return string.Create(CultureInfo.InvariantCulture,
            $"merged {r.Shards} shard(s) of {r.Manifest.Kind}: {r.Manifest.TotalItems} items, {r.Manifest.Files.Count} files checked")
            + (r.TablePath is null ? "" : $"; wrote {r.TablePath}");
    }
}
