using System.CommandLine;
using RoentGen.Cli.Commands;

namespace RoentGen.Tests.Cli;

public class SynthStudyCommandTests
{
    private static RootCommand Roentgen() => new() { SynthStudyCommand.Build() };

    [Fact]
    public void A_folder_that_is_not_a_mask_model_is_named_in_one_line()
    {
        var dir = TestPaths.NewTempDir("synth-cli");
        var (rc, _, err) = CliCases.Invoke(Roentgen(), "synth-study", "--preset", "tiny", "--out", Path.Combine(dir, "out"), "--mask-model", dir);
        Assert.NotEqual(0, rc);
        // MaskConditionedModels.Load: the folder holds no mask-conditioned model; one line that names it and how to train one.
        var line = CliCases.AssertOneLine(err);
        Assert.Contains(dir, line);
        Assert.Contains("masks train", line);
        Assert.False(Directory.Exists(Path.Combine(dir, "out")));
    }

    [Fact]
    public void Missing_ratings_and_bad_sizes_are_named()
    {
        var dir = TestPaths.NewTempDir("synth-cli");
        var (rc, _, err) = CliCases.Invoke(Roentgen(), "synth-study", "--preset", "tiny", "--out", Path.Combine(dir, "out"), "--ratings", Path.Combine(dir, "none.csv"));
        Assert.NotEqual(0, rc);
        Assert.Contains("--ratings", CliCases.AssertOneLine(err));
        (rc, _, err) = CliCases.Invoke(Roentgen(), "synth-study", "--preset", "tiny", "--out", Path.Combine(dir, "out"), "--sizes", "16,x");
        Assert.NotEqual(0, rc);
        Assert.Contains("--sizes", CliCases.AssertOneLine(err));
    }
}
