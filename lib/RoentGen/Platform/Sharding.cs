using System.Globalization;

namespace RoentGen.Platform;

/// <summary>
/// One part of a job split into <see cref="Count"/> parts: shard <see cref="Index"/> (0-based) of <see cref="Count"/>,
/// written "i/N" on the command line (<c>--shard 2/4</c>; Slurm's <c>SLURM_ARRAY_TASK_ID</c> and Kubernetes'
/// <c>JOB_COMPLETION_INDEX</c> are 0-based too, so they pass straight through). Which items a shard owns is
/// <see cref="ShardPartition"/>'s rule.
/// </summary>
public sealed record Shard
{
    /// <summary>The 0-based index of this shard, 0 to <see cref="Count"/> − 1.</summary>
    public int Index { get; }

    /// <summary>How many shards the job is split into (1 or more).</summary>
    public int Count { get; }

    /// <summary>Creates shard <paramref name="index"/> of <paramref name="count"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">count is below 1, or index is not in 0..count − 1.</exception>
    public Shard(int index, int count)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, $"shard count must be at least 1, got {count}");
        if (index < 0 || index >= count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"shard index must be in 0..{count - 1} for {count} shard(s) (0-based), got {index}");
        Index = index;
        Count = count;
    }

    /// <summary>The whole job as one shard (0/1): what a run without <c>--shard</c> is.</summary>
    public static Shard Whole { get; } = new(0, 1);

    /// <summary>Parses "i/N" (0-based i, both decimal integers, spaces around either allowed).</summary>
    /// <exception cref="ArgumentException">The text is not of the form i/N, or i is not below N, or N is below 1; the message quotes the text.</exception>
    public static Shard Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('/');
        if (parts.Length != 2
            || !int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var i)
            || !int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            throw new ArgumentException($"--shard '{text}': expected i/N with 0-based shard index i and shard count N (e.g. 0/4 for the first of four)");
        if (n < 1) throw new ArgumentException($"--shard '{text}': the shard count N must be at least 1");
        if (i >= n) throw new ArgumentException($"--shard '{text}': the shard index is 0-based, so it must be below the count ({n}): 0/{n} .. {n - 1}/{n}");
        return new Shard(i, n);
    }

    /// <summary>The items this shard owns out of <paramref name="totalItems"/> (see <see cref="ShardPartition.Range"/>).</summary>
    public ItemRange Range(int totalItems) => ShardPartition.Range(totalItems, this);

    /// <summary>
    /// The study-arm hook: the contiguous part of an ordered list (of study arms, prompts, seeds...) that this shard runs.
    /// The caller fixes the order once (e.g. <see cref="StudyArm.Grid"/>); every shard then runs a disjoint slice and the
    /// slices of shards 0..N − 1 concatenated are the list.
    /// </summary>
    public IReadOnlyList<T> Select<T>(IReadOnlyList<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var r = Range(items.Count);
        return items.Skip(r.Start).Take(r.Count).ToArray();
    }

    /// <summary>The shard as the command line writes it, "i/N".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Index}/{Count}");

    /// <summary>The shard in file names: "0002-of-0004".</summary>
    public string FileTag => string.Create(CultureInfo.InvariantCulture, $"{Index:D4}-of-{Count:D4}");
}

/// <summary>A contiguous range of item indices: <see cref="Start"/> .. <see cref="End"/> − 1.</summary>
/// <param name="Start">The first item.</param>
/// <param name="Count">How many items (0 or more).</param>
public readonly record struct ItemRange(int Start, int Count)
{
    /// <summary>One past the last item.</summary>
    public int End => Start + Count;

    /// <summary>"start..end-1", or "none" for an empty range.</summary>
    public override string ToString() => Count == 0 ? "none" : string.Create(CultureInfo.InvariantCulture, $"{Start}..{End - 1}");
}

/// <summary>
/// The one rule that splits work items among shards: items 0..T − 1 go to N shards in contiguous ranges, shard i taking
/// items floor(i·T/N) .. floor((i+1)·T/N) − 1. Ranges are in shard order, cover every item exactly once, and differ in
/// size by at most one (so with T &lt; N some shards are empty, which is allowed). The rule depends only on (T, N), so
/// every shard computes its own range without talking to the others, and merging in shard order restores item order.
/// </summary>
public static class ShardPartition
{
    /// <summary>The range of <paramref name="shard"/> out of <paramref name="totalItems"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">totalItems is negative.</exception>
    public static ItemRange Range(int totalItems, Shard shard)
    {
        ArgumentNullException.ThrowIfNull(shard);
        if (totalItems < 0) throw new ArgumentOutOfRangeException(nameof(totalItems), totalItems, "the item count must be 0 or more");
        long start = (long)shard.Index * totalItems / shard.Count;
        long end = (long)(shard.Index + 1) * totalItems / shard.Count;
        return new ItemRange((int)start, (int)(end - start));
    }

    /// <summary>The ranges of all <paramref name="shards"/> shards, in shard order.</summary>
    /// <exception cref="ArgumentOutOfRangeException">totalItems is negative or shards is below 1.</exception>
    public static IReadOnlyList<ItemRange> Ranges(int totalItems, int shards)
    {
        if (shards < 1) throw new ArgumentOutOfRangeException(nameof(shards), shards, "the shard count must be at least 1");
        return Enumerable.Range(0, shards).Select(i => Range(totalItems, new Shard(i, shards))).ToArray();
    }
}

/// <summary>
/// One arm of a study over seeds and training-set sizes. Later studies (augmentation over seeds and set sizes) list
/// their arms with <see cref="Grid"/> and run <c>shard.Select(arms)</c>: that is how such a study is split over a
/// Slurm job array without changing which arm gets which seed.
/// </summary>
/// <param name="Seed">The arm's seed.</param>
/// <param name="Size">The arm's size (training images, steps, ...).</param>
public sealed record StudyArm(long Seed, int Size)
{
    /// <summary>
    /// Every (seed, size) pair in a fixed order: sizes in the order given, and for each size the seeds in the order
    /// given (size-major), so that a shard holds whole seed sweeps of neighbouring sizes.
    /// </summary>
    public static IReadOnlyList<StudyArm> Grid(IReadOnlyList<long> seeds, IReadOnlyList<int> sizes)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        ArgumentNullException.ThrowIfNull(sizes);
        return sizes.SelectMany(size => seeds.Select(seed => new StudyArm(seed, size))).ToArray();
    }

    /// <summary>The arms that <paramref name="shard"/> runs out of <see cref="Grid"/>(seeds, sizes).</summary>
    public static IReadOnlyList<StudyArm> ForShard(IReadOnlyList<long> seeds, IReadOnlyList<int> sizes, Shard shard)
    {
        ArgumentNullException.ThrowIfNull(shard);
        return shard.Select(Grid(seeds, sizes));
    }
}
