using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using CliPolicy = RoentGen.Cli.Commands.Cli;

namespace RoentGen.Tests.Cli;

/// <summary>
/// The <c>roentgen quickstart</c> verb itself (its flags and errors), beyond the library's tiny run that QuickstartTests
/// checks: the data stages from the command line, and the presets and counts it refuses.
/// </summary>
[Collection(ProcessStateCollection.Name)]
public sealed class QuickstartCommandTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("quickstart-cli");

    public void Dispose() => TestPaths.DeleteQuietly(_dir);

    private static RootCommand Roentgen()
    {
        var root = new RootCommand { QuickstartCommand.Build() };
        root.Options.Add(CliPolicy.Verbose);
        return root;
    }

    [Fact]
    public void Data_stages_from_the_command_line_write_the_phantoms_asked_for_and_a_report_without_diffusion()
    {
        var outDir = Path.Combine(_dir, "q");
        var (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), "quickstart", "--preset", "tiny", "--no-notebooks", "--no-diffusion", "--n", "7", "--out", outDir);
        Assert.True(rc == 0, stderr);
        Assert.Contains($"{outDir}/report.html", stdout);
        Assert.Equal(7, Directory.GetFiles(Path.Combine(outDir, "phantoms", "images")).Length);
        Assert.Equal(7, RoentGen.Data.Csv.ReadFile(Path.Combine(outDir, "phantoms", "labels.csv")).Rows.Count);
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        Assert.True(!metrics.RootElement.TryGetProperty("Diffusion", out var d) || d.ValueKind == JsonValueKind.Null, "--no-diffusion still trained a model");
        Assert.False(Directory.Exists(Path.Combine(outDir, "experiment")), "--no-diffusion still wrote an experiment folder");
    }

    [Theory]
    [InlineData("--preset", "study-ish", "unknown preset 'study-ish'")]
    [InlineData("--n", "-3", "--n must be at least 1, got -3")]
    [InlineData("--n", "0", "--n must be at least 1, got 0")]
    public void Bad_values_are_one_line_user_errors_and_write_nothing(string option, string value, string expected)
    {
        var outDir = Path.Combine(_dir, "bad");
        var (rc, _, err) = CliCases.Invoke(Roentgen(), "quickstart", "--no-notebooks", "--no-diffusion", option, value, "--out", outDir);
        Assert.True(rc == 2, $"exit {rc}\n{err}");
        Assert.Contains(expected, CliCases.AssertOneLine(err));
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any(), "a refused run wrote files");
    }
}
