using System.CommandLine;
using RoentGen.Platform;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen merge DIR</c>: checks the shards of a job run with <c>--shard i/N</c> into DIR and combines them (<see cref="ShardMerge"/>).</summary>
internal static class MergeCommand
{
    public static Command Build()
    {
        var dir = new Argument<DirectoryInfo>("DIR") { Description = "The --out folder that every shard of the job wrote into." };
        var cmd = new Command("merge",
            "Combine the shards of a job run with --shard i/N: refuses a missing, duplicate or unfinished shard, shards of other settings or another N, "
            + "and any output file that differs from its shard's manifest; then writes the job's table and shards/merged.json.") { dir };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var result = ShardMerge.Merge(parse.GetValue(dir)!.FullName);
            Console.WriteLine(Cli.Escape(ShardMerge.Describe(result)));
        }));
        return cmd;
    }
}

/// <summary>The <c>--shard i/N</c> option that every long separable verb takes, and what those verbs do with it.</summary>
internal static class ShardOption
{
    /// <summary>A new <c>--shard</c> option (one per command: System.CommandLine options belong to one command).</summary>
    public static Option<string?> Create() => new("--shard")
    {
        Description = "Run only shard i of N (0-based, e.g. 2/4; Slurm: $SLURM_ARRAY_TASK_ID/N) into the shared --out folder; "
                      + "a finished shard is skipped, an interrupted one resumes; then run 'roentgen merge DIR'.",
    };

    /// <summary>The parsed shard, or null when the option was not given.</summary>
    /// <exception cref="ArgumentException">The text is not i/N with 0 &lt;= i &lt; N.</exception>
    public static Shard? Get(ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) is { } text ? Shard.Parse(text) : null;

    /// <summary>Runs one shard (or, without --shard, the whole job as shard 0/1 followed by the merge), and prints what it did.</summary>
    public static void RunAndMergeIfWhole(string dir, Shard? shard, Func<Shard, ShardRunResult> run)
    {
        var result = run(shard ?? Shard.Whole);
        Console.WriteLine(Cli.Escape(Describe(result, dir, mergeHint: shard is not null)));
        if (shard is null) Console.WriteLine(Cli.Escape(ShardMerge.Describe(ShardMerge.Merge(dir))));
    }

    /// <summary>One line on what a shard run did.</summary>
    public static string Describe(ShardRunResult r, string dir, bool mergeHint = true)
    {
        var m = r.Manifest;
        var what = $"shard {m.Shard} of {m.Kind}: items {new ItemRange(m.ItemStart, m.ItemCount)} of {m.TotalItems}";
        if (r.AlreadyFinished) return $"{what} were already done in {dir}; nothing to do" + (mergeHint ? $" (merge: roentgen merge {dir})" : "");
        return $"{what}: {m.Files.Count} files in {dir}"
               + (r.ChunksReused > 0 ? $" ({r.ChunksReused} chunk(s) kept from an interrupted run)" : "")
               + (mergeHint ? $"; when all {m.ShardCount} shard(s) are done: roentgen merge {dir}" : "");
    }
}
