using System.Text.Json;
using RoentGen.Data.Phantoms;
using RoentGen.Tests.Cli;

namespace RoentGen.Tests.Platform;

/// <summary>Issue #20: shards, their partition, per-shard manifests with resume, and the merge's refusals.</summary>
public sealed class ShardingTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-shards");

    public void Dispose() => TestPaths.DeleteQuietly(_dir);

    [Theory]
    [InlineData("0/1", 0, 1)]
    [InlineData("3/4", 3, 4)]
    [InlineData(" 2 / 5 ", 2, 5)]
    [InlineData("0/100000", 0, 100000)]
    public void Parse_reads_a_0_based_index_over_a_count(string text, int index, int count)
    {
        var shard = Shard.Parse(text);
        Assert.Equal(new Shard(index, count), shard);
        Assert.Equal($"{index}/{count}", shard.ToString());
    }

    [Theory]
    [InlineData("", "expected i/N")]
    [InlineData("2", "expected i/N")]
    [InlineData("a/b", "expected i/N")]
    [InlineData("1/2/3", "expected i/N")]
    [InlineData("-1/3", "expected i/N")]
    [InlineData("+1/3", "expected i/N")]
    [InlineData("1.0/3", "expected i/N")]
    [InlineData("1/99999999999", "expected i/N")]
    [InlineData("3/3", "0-based")]
    [InlineData("4/3", "0-based")]
    [InlineData("0/0", "at least 1")]
    public void Parse_refuses_bad_text_with_a_message_quoting_it(string text, string reason)
    {
        var e = Assert.Throws<ArgumentException>(() => Shard.Parse(text));
        Assert.Contains($"'{text}'", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Constructor_refuses_out_of_range_values()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Shard(0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Shard(-1, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Shard(2, 2));
    }

    [Fact]
    public void Partition_covers_every_item_exactly_once_in_order_with_sizes_within_one()
    {
        foreach (var total in Enumerable.Range(0, 90).Concat([127, 1000, 4097]))
            foreach (var n in Enumerable.Range(1, 20).Concat([64, 999]))
            {
                var ranges = ShardPartition.Ranges(total, n);
                Assert.Equal(n, ranges.Count);
                int next = 0;
                foreach (var r in ranges)
                {
                    Assert.Equal(next, r.Start);
                    next = r.End;
                }
                Assert.Equal(total, next);
                Assert.True(ranges.Max(r => r.Count) - ranges.Min(r => r.Count) <= 1, $"total {total}, N {n}: uneven");
                for (int i = 0; i < n; i++) Assert.Equal(ranges[i], new Shard(i, n).Range(total));
            }
    }

    [Fact]
    public void Partition_does_not_overflow_at_the_largest_item_count()
    {
        var ranges = ShardPartition.Ranges(int.MaxValue, 7);
        Assert.Equal(0, ranges[0].Start);
        Assert.Equal(int.MaxValue, ranges[^1].End);
        Assert.Equal((long)int.MaxValue, ranges.Sum(r => (long)r.Count));
    }

    [Fact]
    public void Study_arms_split_over_shards_are_the_grid_in_order()
    {
        long[] seeds = [0, 1, 2, 3, 4];
        int[] sizes = [100, 500, 1000];
        var grid = StudyArm.Grid(seeds, sizes);
        Assert.Equal(15, grid.Count);
        Assert.Equal(new StudyArm(0, 100), grid[0]);
        Assert.Equal(new StudyArm(4, 100), grid[4]);
        Assert.Equal(new StudyArm(0, 500), grid[5]);
        foreach (var n in new[] { 1, 2, 4, 7, 15, 20 })
        {
            var joined = Enumerable.Range(0, n).SelectMany(i => StudyArm.ForShard(seeds, sizes, new Shard(i, n))).ToList();
            Assert.Equal(grid, joined);
        }
    }

    // --- a small synthetic job: item i writes items/item_i.txt; fast enough to break in every way ---

    private static ShardJob TextJob(int total = 10, string config = "a") => new()
    {
        Kind = "words", ConfigHash = ShardJob.HashConfig("words", new { config, total }), TotalItems = total,
        TableFile = "words.csv", TableHeader = ["index", "word"], ChunkSize = 2,
    };

    private readonly List<ItemRange> _produced = [];

    private IReadOnlyList<ShardItem> Produce(ItemRange chunk, string dir)
    {
        _produced.Add(chunk);
        Directory.CreateDirectory(Path.Combine(dir, "items"));
        return Enumerable.Range(chunk.Start, chunk.Count).Select(i =>
        {
            var file = $"items/item_{i:D3}.txt";
            File.WriteAllText(Path.Combine(dir, file), $"item {i}\n");
            return new ShardItem(i, [i.ToString(System.Globalization.CultureInfo.InvariantCulture), $"w{i}"], [file]);
        }).ToList();
    }

    private ShardRunResult RunShard(string dir, int i, int n, ShardJob? job = null) =>
        (job ?? TextJob()).Run(dir, new Shard(i, n), chunk => Produce(chunk, dir));

    private string Folder(string name) => Path.Combine(_dir, name);

    private string RunAll(string name, int n, ShardJob? job = null)
    {
        var dir = Folder(name);
        for (int i = 0; i < n; i++) RunShard(dir, i, n, job);
        return dir;
    }

    [Fact]
    public void Merge_of_3_shards_equals_merge_of_1_byte_for_byte()
    {
        var three = RunAll("three", 3);
        var one = RunAll("one", 1);
        var r3 = ShardMerge.Merge(three);
        ShardMerge.Merge(one);
        Assert.Equal(3, r3.Shards);
        var files = new[] { "words.csv", "shards/merged.json" }.Concat(Enumerable.Range(0, 10).Select(i => $"items/item_{i:D3}.txt"));
        foreach (var f in files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(one, f)), File.ReadAllBytes(Path.Combine(three, f)));
        Assert.Equal("index,word\n0,w0\n1,w1\n2,w2\n3,w3\n4,w4\n5,w5\n6,w6\n7,w7\n8,w8\n9,w9\n", File.ReadAllText(Path.Combine(three, "words.csv")).Replace("\r\n", "\n"));
        // Merging again is allowed and writes the same bytes.
        var before = CliCases.HashTree(three);
        ShardMerge.Merge(three);
        Assert.Equal(before, CliCases.HashTree(three));
    }

    [Fact]
    public void Empty_shards_are_allowed_when_there_are_fewer_items_than_shards()
    {
        var dir = RunAll("sparse", 5, TextJob(total: 3));
        var merged = ShardMerge.Merge(dir);
        Assert.Equal(3, merged.Manifest.TotalItems);
        Assert.Equal(4, merged.Manifest.Files.Count);   // three items and the table
    }

    [Fact]
    public void A_rerun_of_a_finished_shard_does_nothing()
    {
        var dir = Folder("rerun");
        var first = RunShard(dir, 1, 3);
        Assert.False(first.AlreadyFinished);
        var produced = _produced.Count;
        var before = CliCases.HashTree(dir);
        var again = RunShard(dir, 1, 3);
        Assert.True(again.AlreadyFinished);
        Assert.Equal(produced, _produced.Count);
        Assert.Equal(first.Manifest.ToJson(), again.Manifest.ToJson());
        Assert.Equal(before, CliCases.HashTree(dir));
    }

    [Fact]
    public void A_killed_shard_resumes_keeping_the_chunks_it_committed()
    {
        var dir = Folder("killed");
        var whole = RunShard(dir, 0, 1);           // items 0..9 in chunks of 2: five chunks
        Assert.Equal(5, whole.ChunksProduced);
        // Simulate a kill in chunk 6..7: no completion marker, no manifest, and one of its files half-written (removed).
        File.Delete(Path.Combine(dir, "shards", ShardManifest.MarkerName("words", Shard.Whole)));
        File.Delete(Path.Combine(dir, "shards", ShardManifest.FileName("words", Shard.Whole)));
        File.Delete(Path.Combine(dir, "items", "item_007.txt"));
        _produced.Clear();
        var resumed = RunShard(dir, 0, 1);
        Assert.False(resumed.AlreadyFinished);
        Assert.Equal(4, resumed.ChunksReused);
        Assert.Equal(1, resumed.ChunksProduced);
        Assert.Equal([new ItemRange(6, 2)], _produced);
        Assert.Equal(whole.Manifest.ToJson(), resumed.Manifest.ToJson());
        ShardMerge.Merge(dir);
    }

    [Fact]
    public void A_chunk_whose_file_changed_after_its_commit_is_redone()
    {
        var dir = Folder("changed");
        RunShard(dir, 0, 1);
        File.Delete(Path.Combine(dir, "shards", ShardManifest.MarkerName("words", Shard.Whole)));
        File.WriteAllText(Path.Combine(dir, "items", "item_002.txt"), "item X\n");   // same size, other bytes
        _produced.Clear();
        var resumed = RunShard(dir, 0, 1);
        Assert.Equal([new ItemRange(2, 2)], _produced);
        Assert.Equal("item 2\n", File.ReadAllText(Path.Combine(dir, "items", "item_002.txt")));
        Assert.Equal(4, resumed.ChunksReused);
    }

    [Fact]
    public void A_shard_refuses_a_folder_holding_shards_of_other_settings_or_another_count()
    {
        var dir = Folder("mixed");
        RunShard(dir, 0, 3);
        var other = Assert.Throws<RunStateException>(() => RunShard(dir, 1, 3, TextJob(config: "b")));
        Assert.Contains("words-0000-of-0003.json", other.Message);
        Assert.Contains("other settings", other.Message);
        var count = Assert.Throws<RunStateException>(() => RunShard(dir, 1, 4));
        Assert.Contains("split 3 ways", count.Message);
        Assert.Contains("shard 1/4", count.Message);
    }

    private string ManifestPath(string dir, int i, int n) => Path.Combine(dir, "shards", ShardManifest.FileName("words", new Shard(i, n)));

    // Rewrites a manifest and its completion marker, so that the check under test is the one that fires.
    private static void Rewrite(string manifestPath, Func<ShardManifest, ShardManifest> change, string? writeTo = null)
    {
        var m = change(ShardManifest.Read(manifestPath));
        var target = writeTo ?? manifestPath;
        var json = m.ToJson();
        File.WriteAllText(target, json);
        var marker = Path.Combine(Path.GetDirectoryName(target)!, ShardManifest.MarkerName(m.Kind, m.Shard));
        File.WriteAllText(marker, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(json))) + "\n");
    }

    private static string MergeError(string dir) => Assert.Throws<InvalidDataException>(() => ShardMerge.Merge(dir)).Message;

    [Fact]
    public void Merge_refuses_a_folder_without_shards()
    {
        var dir = Folder("none");
        Directory.CreateDirectory(dir);
        Assert.Contains("no shard manifests", MergeError(dir));
    }

    [Fact]
    public void Merge_refuses_a_missing_shard()
    {
        var dir = Folder("missing");
        RunShard(dir, 0, 3);
        RunShard(dir, 2, 3);
        var message = MergeError(dir);
        Assert.Contains("shard(s) 1/3 missing", message);
        Assert.Contains("words-0001-of-0003.json", message);
        Assert.False(File.Exists(Path.Combine(dir, "words.csv")));
    }

    [Fact]
    public void Merge_refuses_a_duplicate_shard()
    {
        var dir = RunAll("duplicate", 3);
        File.Copy(ManifestPath(dir, 1, 3), Path.Combine(dir, "shards", "words-0001-of-0003-copy.json"));
        var message = MergeError(dir);
        Assert.Contains("shard 1/3 appears twice", message);
        Assert.Contains("words-0001-of-0003-copy.json", message);
    }

    [Fact]
    public void Merge_refuses_shards_of_other_settings()
    {
        var dir = RunAll("confighash", 3);
        Rewrite(ManifestPath(dir, 2, 3), m => m with { ConfigHash = new string('0', 64) });
        var message = MergeError(dir);
        Assert.Contains("shard 2/3 (words-0002-of-0003.json) was run with other settings", message);
    }

    [Fact]
    public void Merge_refuses_shards_of_another_count()
    {
        var dir = RunAll("count", 3);
        var other = RunAll("count-other", 2);
        Rewrite(Path.Combine(other, "shards", "words-0001-of-0002.json"), m => m, Path.Combine(dir, "shards", "words-0001-of-0002.json"));
        var message = MergeError(dir);
        Assert.Contains("splits the job 2 ways", message);
        Assert.Contains("words-0001-of-0002.json", message);
    }

    [Fact]
    public void Merge_refuses_an_unfinished_shard()
    {
        var dir = RunAll("unfinished", 3);
        File.Delete(Path.Combine(dir, "shards", ShardManifest.MarkerName("words", new Shard(1, 3))));
        var message = MergeError(dir);
        Assert.Contains("shard 1/3 is not finished", message);
        Assert.Contains("words-0001-of-0003.done", message);
    }

    [Fact]
    public void Merge_refuses_a_manifest_edited_after_completion()
    {
        var dir = RunAll("edited", 3);
        var path = ManifestPath(dir, 0, 3);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"w1\"", "\"wX\""));
        var message = MergeError(dir);
        Assert.Contains("shard 0/3", message);
        Assert.Contains("changed after the shard finished", message);
    }

    [Fact]
    public void Merge_refuses_a_missing_or_changed_output_file()
    {
        var dir = RunAll("files", 3);
        File.WriteAllText(Path.Combine(dir, "items", "item_005.txt"), "item Y\n");
        var changed = MergeError(dir);
        Assert.Contains("shard 1/3 (words-0001-of-0003.json): items/item_005.txt has SHA-256", changed);
        File.WriteAllText(Path.Combine(dir, "items", "item_005.txt"), "item 5 and more\n");
        Assert.Contains("items/item_005.txt has 16 bytes, the manifest says 7", MergeError(dir));
        File.Delete(Path.Combine(dir, "items", "item_005.txt"));
        Assert.Contains("items/item_005.txt is missing", MergeError(dir));
    }

    [Fact]
    public void Merge_refuses_a_shard_whose_range_is_not_its_partition()
    {
        var dir = RunAll("range", 3);
        Rewrite(ManifestPath(dir, 1, 3), m => m with { ItemStart = m.ItemStart + 1 });
        Assert.Contains("shard 1/3 (words-0001-of-0003.json) covers items 4..6, expected 3..5", MergeError(dir));
    }

    [Fact]
    public void Merge_refuses_two_shards_claiming_one_file()
    {
        var dir = RunAll("claims", 3);
        var zero = ShardManifest.Read(ManifestPath(dir, 0, 3));
        Rewrite(ManifestPath(dir, 1, 3), m => m with { Files = [.. m.Files, zero.Files[0]] });
        Assert.Contains("shards 0/3 and 1/3 both wrote items/item_000.txt", MergeError(dir));
    }

    [Fact]
    public void Manifests_hold_no_time_stamp_and_round_trip()
    {
        var dir = Folder("roundtrip");
        var r = RunShard(dir, 2, 3);
        var text = File.ReadAllText(ManifestPath(dir, 2, 3));
        Assert.Equal(r.Manifest.ToJson(), text);
        Assert.Equal(text, ShardManifest.Read(ManifestPath(dir, 2, 3)).ToJson());
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(["format", "kind", "config_hash", "shard_index", "shard_count", "total_items", "item_start", "item_count", "table_file", "table_header", "table_rows", "files"],
            doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray());
    }

    // --- the real job: phantom generation ---

    [Fact]
    public void Phantoms_in_3_shards_merge_to_the_unsharded_folder_byte_for_byte()
    {
        var options = new PhantomOptions { Size = 64, Seed = 11 };
        const int count = 70;   // shard 2 (items 46..69) crosses the 64-case chunk boundary
        var whole = Folder("phantoms-whole");
        PhantomDataset.WriteFolder(whole, options, count);
        var sharded = Folder("phantoms-3");
        for (int i = 0; i < 3; i++) PhantomDataset.WriteShard(sharded, options, count, new Shard(i, 3));
        var merged = ShardMerge.Merge(sharded);
        var one = Folder("phantoms-1");
        PhantomDataset.WriteShard(one, options, count, Shard.Whole);
        ShardMerge.Merge(one);

        var expected = CliCases.HashTree(whole);
        var got = CliCases.HashTree(sharded);
        foreach (var key in got.Keys.Where(k => k.StartsWith("shards" + Path.DirectorySeparatorChar, StringComparison.Ordinal)).ToList()) got.Remove(key);
        Assert.Equal(expected, got);
        Assert.Equal(expected.Count, merged.Manifest.Files.Count);
        Assert.Equal(File.ReadAllBytes(Path.Combine(one, "shards", "merged.json")), File.ReadAllBytes(Path.Combine(sharded, "shards", "merged.json")));
        // Another world seed is another job: the folder refuses it.
        Assert.Throws<RunStateException>(() => PhantomDataset.WriteShard(sharded, options with { Seed = 12 }, count, new Shard(0, 3)));
    }

    [Fact]
    public void A_killed_phantom_shard_resumes_and_still_matches()
    {
        var options = new PhantomOptions { Size = 64, Seed = 5 };
        var dir = Folder("phantoms-killed");
        PhantomDataset.WriteShard(dir, options, 20, new Shard(0, 2));
        PhantomDataset.WriteShard(dir, options, 20, new Shard(1, 2));
        var reference = CliCases.HashTree(dir);
        File.Delete(Path.Combine(dir, "shards", ShardManifest.MarkerName("phantoms", new Shard(1, 2))));
        File.Delete(Path.Combine(dir, "images", "phantom_000013.png"));
        var again = PhantomDataset.WriteShard(dir, options, 20, new Shard(1, 2));
        Assert.False(again.AlreadyFinished);
        Assert.Equal(1, again.ChunksProduced);
        Assert.Equal(reference, CliCases.HashTree(dir));
        Assert.True(PhantomDataset.WriteShard(dir, options, 20, new Shard(0, 2)).AlreadyFinished);
        ShardMerge.Merge(dir);
    }
}
