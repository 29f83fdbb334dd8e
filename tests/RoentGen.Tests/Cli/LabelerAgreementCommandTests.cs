using System.CommandLine;
using System.Text.Json.Nodes;
using RoentGen.Cli.Commands;
using CliPolicy = RoentGen.Cli.Commands.Cli;

namespace RoentGen.Tests.Cli;

/// <summary><c>roentgen data labeler-agreement</c>: the per-finding table on a half of the split, its JSON, and its refusals.</summary>
[Collection(ProcessStateCollection.Name)]
public sealed class LabelerAgreementCommandTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-labeler-agreement");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static RootCommand Roentgen()
    {
        var root = new RootCommand { DataCommand.Build() };
        root.Options.Add(CliPolicy.Verbose);
        return root;
    }

    private string Reports()
    {
        var path = Path.Combine(_dir, "reports.csv");
        File.WriteAllText(path,
            "uid,Problems,findings,impression\n" +
            "1,Cardiomegaly,The heart is enlarged.,Cardiomegaly.\n" +
            "2,normal,The lungs are clear.,No acute disease.\n" +
            "3,Pleural Effusion,Small left pleural effusion.,Effusion.\n" +
            "4,normal,Small right pneumothorax.,Pneumothorax.\n");
        return path;
    }

    [Fact]
    public void Prints_the_held_out_table_and_writes_json()
    {
        var json = Path.Combine(_dir, "agreement.json");
        var (rc, stdout, err) = CliCases.Invoke(Roentgen(), "data", "labeler-agreement", "--reports", Reports(), "--split", "heldout", "--json", json);
        Assert.True(rc == 0, err);
        Assert.Contains("2 of 4 reports (held-out half by uid parity)", stdout);
        Assert.Contains("Cardiomegaly", stdout);
        var doc = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal("heldout", (string?)doc["half"]);
        Assert.Equal(2, (int)doc["report_count"]!);
        var cardio = doc["findings"]!.AsArray().First(f => (string?)f!["finding"] == "Cardiomegaly")!;
        Assert.Equal(1, (int)cardio["tp"]!);
        // a finding with no positive on either side has no F1, and the macro average leaves it out
        var ptx = doc["findings"]!.AsArray().First(f => (string?)f!["finding"] == "Pneumothorax")!;
        Assert.Null(ptx["f1"]);
        Assert.Equal(1.0, (double)doc["macro_f1"]!, 9);
    }

    [Fact]
    public void Lists_disagreements_on_dev_and_refuses_them_on_held_out()
    {
        var (rc, stdout, err) = CliCases.Invoke(Roentgen(), "data", "labeler-agreement", "--reports", Reports(), "--split", "dev", "--disagreements", "5");
        Assert.True(rc == 0, err);
        Assert.Contains("uid 4  Pneumothorax: tags say absent, labeler Positive", stdout);
        (rc, _, err) = CliCases.Invoke(Roentgen(), "data", "labeler-agreement", "--reports", Reports(), "--split", "heldout", "--disagreements", "5");
        Assert.Equal(2, rc);
        Assert.Contains("--disagreements", CliCases.AssertOneLine(err));
    }
}
