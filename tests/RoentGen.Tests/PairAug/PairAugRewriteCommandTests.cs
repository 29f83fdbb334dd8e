using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Data.Phantoms;
using RoentGen.Tests.Cli;
using Xunit;
using CliPolicy = RoentGen.Cli.Commands.Cli;

namespace RoentGen.Tests.PairAug;

public sealed class PairAugRewriteCommandTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("pairaug-cli");

    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, true); }

    private static RootCommand Roentgen()
    {
        var root = new RootCommand { PairAugCommand.Build() };
        root.Options.Add(CliPolicy.Verbose);
        return root;
    }

    private string PhantomReportsTxt(int n)
    {
        var g = new PhantomGenerator(new PhantomOptions { Seed = 11 });
        var path = Path.Combine(_dir, "reports.txt");
        File.WriteAllText(path, string.Join("\n\n", Enumerable.Range(0, n).Select(i => g.GenerateReport(i).Report.Text)) + "\n");
        return path;
    }

    [Fact]
    public void Rewrite_offline_writes_kept_and_dropped_jsonl_and_is_reproducible()
    {
        string input = PhantomReportsTxt(20), output = Path.Combine(_dir, "out.jsonl");
        var (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "rewrite", "--in", input, "--op", "partial-opposite", "--out", output, "--seed", "4");
        Assert.True(rc == 0, stderr);
        Assert.Contains("rule-based: partial-opposite of 20 reports", stdout, StringComparison.Ordinal);
        var lines = File.ReadAllLines(output);
        var dropped = File.ReadAllLines(Path.Combine(_dir, "out.dropped.jsonl"));
        Assert.Equal(20, lines.Length + dropped.Length);
        Assert.Contains($"kept {lines.Length}, dropped {dropped.Length}", stdout, StringComparison.Ordinal);
        using (var first = JsonDocument.Parse(lines[0]))
        {
            var r = first.RootElement;
            Assert.Equal("report-1", r.GetProperty("id").GetString());
            Assert.Equal("partial-opposite", r.GetProperty("operation").GetString());
            Assert.True(r.GetProperty("kept").GetBoolean());
            Assert.True(r.GetProperty("edits").GetArrayLength() >= 1);
            Assert.StartsWith("FINDINGS:", r.GetProperty("rewrite").GetString(), StringComparison.Ordinal);
        }
        string before = File.ReadAllText(output);
        Assert.Equal(0, CliCases.Invoke(Roentgen(), "pairaug", "rewrite", "--in", input, "--op", "partial-opposite", "--out", output, "--seed", "4").ExitCode);
        Assert.Equal(before, File.ReadAllText(output));
    }

    [Fact]
    public void Rewrite_reads_a_labels_csv_report_column()
    {
        var csv = Path.Combine(_dir, "labels.csv");
        File.WriteAllText(csv, "file,report\na.png,\"FINDINGS: Small left pleural effusion.\nIMPRESSION: Small left pleural effusion.\"\nb.png,\nc.png,\"FINDINGS: The lungs are clear.\nIMPRESSION: Normal chest radiograph.\"\n");
        string output = Path.Combine(_dir, "csv.jsonl");
        var (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "rewrite", "--in", csv, "--op", "change-in-symptoms", "--out", output);
        Assert.True(rc == 0, stderr);
        Assert.Contains("of 2 reports", stdout, StringComparison.Ordinal);                // the row without a report is skipped
        Assert.Contains("not applicable 1", stdout, StringComparison.Ordinal);            // the normal report has nothing to change
        using var doc = JsonDocument.Parse(Assert.Single(File.ReadAllLines(output)));
        Assert.Equal("a.png", doc.RootElement.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Rewrite_through_an_llm_endpoint_uses_the_key_variable_and_the_cache()
    {
        string variable = "ROENTGEN_TEST_CLI_KEY_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        Environment.SetEnvironmentVariable(variable, "sk-cli-test");
        try
        {
            const string rewrite = "FINDINGS: Moderate left pleural effusion.\nIMPRESSION: Interval increase in the left pleural effusion.";
            using var server = new ChatCompletionsServer((_, _) => ChatCompletionsServer.Completion(rewrite));
            var input = Path.Combine(_dir, "one.txt");
            await File.WriteAllTextAsync(input, "FINDINGS: Small left pleural effusion.\nIMPRESSION: Small left pleural effusion.\n");
            string output = Path.Combine(_dir, "llm.jsonl");
            string[] args = ["pairaug", "rewrite", "--in", input, "--op", "change-in-symptoms", "--out", output,
                "--llm-endpoint", server.BaseUri.ToString(), "--llm-model", "test-model", "--llm-key-env", variable];
            var (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), args);
            Assert.True(rc == 0, stderr);
            Assert.Contains("llm:test-model", stdout, StringComparison.Ordinal);
            Assert.Contains("kept 1", stdout, StringComparison.Ordinal);
            Assert.Equal("Bearer sk-cli-test", Assert.Single(server.Requests).Authorization);
            Assert.True(Directory.Exists(output + ".cache"));
            (rc, stdout, _) = CliCases.Invoke(Roentgen(), args);
            Assert.Equal(0, rc);
            Assert.Contains("from cache 1", stdout, StringComparison.Ordinal);
            Assert.Equal(1, server.Count);                                                   // the rerun asked nothing

            // Without the variable: a user error naming it.
            var (rc2, _, err2) = CliCases.Invoke(Roentgen(), [.. args[..^1], variable + "_UNSET"]);
            Assert.Equal(CliPolicy.UserError, rc2);
            Assert.Contains(variable + "_UNSET", err2, StringComparison.Ordinal);
        }
        finally { Environment.SetEnvironmentVariable(variable, null); }
    }

    [Fact]
    public void Bad_arguments_are_user_errors()
    {
        string input = PhantomReportsTxt(2), output = Path.Combine(_dir, "x.jsonl");
        Assert.Equal(CliPolicy.UserError, CliCases.Invoke(Roentgen(), "pairaug", "rewrite", "--in", input, "--op", "flip", "--out", output).ExitCode);
        Assert.Equal(CliPolicy.UserError, CliCases.Invoke(Roentgen(), "pairaug", "rewrite", "--in", input, "--op", "partial-opposite", "--out", output, "--llm-model", "m").ExitCode);
        Assert.Equal(CliPolicy.UserError, CliCases.Invoke(Roentgen(), "pairaug", "rewrite", "--in", Path.Combine(_dir, "missing.txt"), "--op", "partial-opposite", "--out", output).ExitCode);
        Assert.False(File.Exists(output));
    }
}
