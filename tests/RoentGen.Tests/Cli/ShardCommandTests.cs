using System.CommandLine;
using RoentGen.Cli.Commands;
using CliPolicy = RoentGen.Cli.Commands.Cli;

namespace RoentGen.Tests.Cli;

/// <summary>Issue #20: <c>--shard i/N</c> on the verbs and <c>roentgen merge</c>, in-process.</summary>
[Collection(ProcessStateCollection.Name)]
public sealed class ShardCommandTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-shard-cli");
    private readonly Func<IProgressSink>? _sinks = ProgressReporter.SinkFactory;

    public ShardCommandTests() => ProgressReporter.SinkFactory = RoentGen.Interactive.ProgressSinks.None;

    public void Dispose()
    {
        ProgressReporter.SinkFactory = _sinks;
        TestPaths.DeleteQuietly(_dir);
    }

    private static RootCommand Roentgen()
    {
        var root = new RootCommand { DataCommand.Build(), SampleCommand.Build(), MergeCommand.Build(), EvaluateCommand.Build() };
        root.Options.Add(CliPolicy.Verbose);
        return root;
    }

    private (int ExitCode, string Out, string Err) Run(params string[] args) => CliCases.Invoke(Roentgen(), args);

    [Fact]
    public void Data_phantoms_in_three_shards_then_merge_equals_one_run()
    {
        var whole = Path.Combine(_dir, "whole");
        var sharded = Path.Combine(_dir, "sharded");
        Assert.Equal(0, Run("data", "phantoms", "--n", "12", "--size", "64", "--seed", "3", "--out", whole).ExitCode);
        for (int i = 0; i < 3; i++)
        {
            var (code, stdout, err) = Run("data", "phantoms", "--n", "12", "--size", "64", "--seed", "3", "--out", sharded, "--shard", $"{i}/3");
            Assert.True(code == 0, err);
            Assert.Contains($"shard {i}/3 of phantoms: items {4 * i}..{4 * i + 3} of 12", stdout);
        }
        var again = Run("data", "phantoms", "--n", "12", "--size", "64", "--seed", "3", "--out", sharded, "--shard", "1/3");
        Assert.Contains("already done", again.Out);
        var merge = Run("merge", sharded);
        Assert.True(merge.ExitCode == 0, merge.Err);
        Assert.Contains("merged 3 shard(s) of phantoms: 12 items", merge.Out);
        var got = CliCases.HashTree(sharded);
        foreach (var key in got.Keys.Where(k => k.StartsWith("shards" + Path.DirectorySeparatorChar, StringComparison.Ordinal)).ToList()) got.Remove(key);
        Assert.Equal(CliCases.HashTree(whole), got);
    }

    [Theory]
    [InlineData("3/3", "0-based")]
    [InlineData("x", "expected i/N")]
    [InlineData("0/0", "at least 1")]
    public void A_bad_shard_is_a_user_error(string shard, string reason)
    {
        var (code, _, err) = Run("data", "phantoms", "--n", "5", "--size", "64", "--out", Path.Combine(_dir, "bad"), "--shard", shard);
        Assert.Equal(CliPolicy.UserError, code);
        Assert.Contains(reason, CliCases.AssertOneLine(err));
        Assert.False(Directory.Exists(Path.Combine(_dir, "bad")));
    }

    [Fact]
    public void Shard_with_overwrite_is_refused()
    {
        var (code, _, err) = Run("data", "phantoms", "--n", "5", "--size", "64", "--out", _dir, "--shard", "0/2", "--overwrite");
        Assert.Equal(CliPolicy.UserError, code);
        Assert.Contains("--overwrite cannot be combined with --shard", CliCases.AssertOneLine(err));
    }

    [Fact]
    public void Merge_of_an_incomplete_job_is_a_user_error_naming_the_missing_shard()
    {
        var dir = Path.Combine(_dir, "part");
        Assert.Equal(0, Run("data", "phantoms", "--n", "6", "--size", "64", "--out", dir, "--shard", "1/2").ExitCode);
        var (code, _, err) = Run("merge", dir);
        Assert.Equal(CliPolicy.UserError, code);
        Assert.Contains("shard(s) 0/2 missing", CliCases.AssertOneLine(err));
        var none = Run("merge", Path.Combine(_dir, "absent"));
        Assert.Equal(CliPolicy.UserError, none.ExitCode);
    }

    [Fact]
    public void Evaluate_shard_needs_a_samples_folder()
    {
        var (code, _, err) = Run("evaluate", "--checkpoint", _dir, "--shard", "0/2");
        Assert.Equal(CliPolicy.UserError, code);
        Assert.Contains("--shard needs --samples DIR", CliCases.AssertOneLine(err));
    }

    [Fact]
    public void Sample_shard_needs_a_prompt_list_and_refuses_both_prompt_options()
    {
        var (code, _, err) = Run("sample", "--checkpoint", _dir, "--prompt", "cardiomegaly", "--shard", "0/2", "--out", Path.Combine(_dir, "x.png"));
        Assert.Equal(CliPolicy.UserError, code);
        Assert.Contains("--shard needs --prompts", CliCases.AssertOneLine(err));
        var prompts = Path.Combine(_dir, "p.txt");
        File.WriteAllText(prompts, "cardiomegaly\n");
        var both = Run("sample", "--checkpoint", _dir, "--prompt", "a", "--prompts", prompts, "--out", Path.Combine(_dir, "o"));
        Assert.Equal(CliPolicy.UserError, both.ExitCode);
        Assert.Contains("either --prompt or --prompts", CliCases.AssertOneLine(both.Err));
        var neither = Run("sample", "--checkpoint", _dir, "--out", Path.Combine(_dir, "x.png"));
        Assert.Equal(CliPolicy.UserError, neither.ExitCode);
        Assert.Contains("--prompts FILE", CliCases.AssertOneLine(neither.Err));
    }
}
