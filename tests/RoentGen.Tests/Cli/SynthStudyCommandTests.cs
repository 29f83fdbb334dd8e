using System.CommandLine;
using RoentGen.Cli.Commands;

namespace RoentGen.Tests.Cli;

public class SynthStudyCommandTests
{
    private static RootCommand Roentgen() => new() { SynthStudyCommand.Build() };

    [Fact]
    public void A_mask_model_is_refused_with_one_line_until_the_generators_are_wired_in()
    {
        var dir = TestPaths.NewTempDir("synth-cli");
        var (rc, _, err) = CliCases.Invoke(Roentgen(), "synth-study", "--preset", "tiny", "--out", Path.Combine(dir, "out"), "--mask-model", dir);
        Assert.NotEqual(0, rc);
        // NotImplementedException until the integrator wires LoadMaskGenerator: the policy's internal-error line, still one line.
        var line = CliCases.AssertOneLine(err, "internal error (System.NotImplementedException)");
        Assert.Contains("--mask-model", line);
        Assert.Contains("phantom oracle", line);
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
