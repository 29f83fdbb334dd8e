using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Diffusion;
using RoentGen.Experiments;

namespace RoentGen.Tests.Experiments;

[Collection(ProcessStateCollection.Name)]
public class TextProbeComparisonTests
{
    [Fact]
    public void Text_probe_compares_two_trained_models_through_the_cli_and_the_changes_follow_the_aucs()
    {
        var dir = TestPaths.NewTempDir("text-probe");
        var cfg = LdmExperimentConfig.Tiny with { VaeSteps = 2, LdmSteps = 2 };
        string a = Path.Combine(dir, "a"), b = Path.Combine(dir, "b");
        var ma = LatentDiffusionRuns.EnsureTrained(cfg, LdmTrainingData.FromPhantoms(cfg), a).Model;
        var mb = LatentDiffusionRuns.EnsureTrained(cfg with { Seed = 5, LdmSteps = 4 }, LdmTrainingData.FromPhantoms(cfg), b).Model;

        // The library: one row per report set and encoder, the baseline's change 0, the other's the ratio of its AUCs.
        var reports = LabelledReports.Phantoms(80, 2001);
        var options = new TextProbeOptions { KnnK = 5, Linear = RoentGen.Evaluation.Probes.LinearProbeOptions.Quick with { LearningRates = [3e-2], WeightDecays = [0], Steps = 20 } };
        var result = TextProbeComparison.Run([("before", null, ma), ("after", null, mb)], [reports], options);
        Assert.Equal(["before", "after"], result.Rows.Select(r => r.Encoder));
        Assert.Equal(0, result.Change(result.Rows[0], "knn"), 12);
        var (before, after) = (result.Rows[0].Result["Pneumothorax"], result.Rows[1].Result["Pneumothorax"]);
        Assert.Equal(after.KnnAuc / before.KnnAuc - 1, result.Change(result.Rows[1], "knn"), 12);
        Assert.Equal(result.Rows[1].Result.LinearMacroAuc / result.Rows[0].Result.LinearMacroAuc - 1, result.Change(result.Rows[1], "linear", macro: true), 12);
        Assert.Equal(result.Rows.Count, result.Table().Rows.Count);
        Assert.Throws<ArgumentException>(() => TextProbeComparison.Run([("x", null, ma), ("x", null, mb)], [reports], options));
        Assert.Throws<ArgumentException>(() => result.Change(result.Rows[1], "cosine"));

        // Across wordings: the rows after those of the report sets, each equal to the transfer probe run on its own.
        var paraphrases = LabelledReports.Paraphrases();
        var across = TextProbeComparison.Run([("before", null, ma), ("after", null, mb)], [reports], options, transferTest: paraphrases);
        Assert.Equal(4, across.Rows.Count);
        Assert.Equal(result.Rows[1].Result.KnnMacroAuc, across.Rows[1].Result.KnnMacroAuc, 12);
        var direct = TextEncoderProbe.Transfer(TextEncoderProbe.Embed(mb, reports.Texts), reports, TextEncoderProbe.Embed(mb, paraphrases.Texts), paraphrases, "after", options);
        Assert.Equal(("after", direct.Reports), (across.Rows[3].Encoder, across.Rows[3].Reports));
        Assert.Equal(direct.KnnMacroAuc, across.Rows[3].Result.KnnMacroAuc, 12);
        Assert.Equal(direct.LinearMacroAuc, across.Rows[3].Result.LinearMacroAuc, 9);

        // The verb: both models by name, JSON written, its rows read back; bad input refused.
        var json = Path.Combine(dir, "probe.json");
        var iu = Path.Combine(dir, "none.csv");
        Assert.Equal(0, Invoke("--model", $"before={a}", "--model", $"after={b}", "--reports", "60", "--json", json));
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToList();
            Assert.Equal("before", doc.RootElement.GetProperty("baseline").GetString());
            // Phantom reports, the shared IU reports where they are, and the probe across wordings (paraphrase prompts).
            Assert.Equal(TestPaths.RealSample is null ? 4 : 6, rows.Count);
            Assert.Contains("paraphrase prompts", rows[^1].GetProperty("reports").GetString());
            Assert.Contains("world 2001", rows[0].GetProperty("reports").GetString());   // the held-out world of the models' data seed 1
        }
        Assert.NotEqual(0, Invoke("--model", $"x={a}", "--model", $"x={b}"));                  // one name twice
        Assert.NotEqual(0, Invoke("--model", Path.Combine(dir, "missing")));                   // no such folder
        Assert.NotEqual(0, Invoke("--model", a, "--reports", "5"));                            // too few reports
        Assert.NotEqual(0, Invoke("--model", a, "--iu-reports", iu));                          // named IU file missing
        Assert.NotEqual(0, Invoke("--model", a, "--prompt", "findings"));                      // unknown prompt part
        Assert.NotEqual(0, Invoke("--model", a, "--style", "fancy"));                          // unknown wording
        // Options are checked before any model loads: with a missing folder too, the error names the bad option.
        var errors = new StringWriter();
        var old = Console.Error;
        Console.SetError(errors);
        try { Assert.NotEqual(0, Invoke("--model", Path.Combine(dir, "missing"), "--reports", "5")); }
        finally { Console.SetError(old); }
        Assert.Contains("--reports 5", errors.ToString());
        // Another wording and prompt part: named in the report set, so results of different probes do not mix.
        Assert.Equal(0, Invoke("--model", a, "--reports", "40", "--prompt", "impression-and-positive-findings", "--style", "varied", "--json", json));
        Assert.Contains("varied wording, impression and positive findings", File.ReadAllText(json));
        TestPaths.DeleteQuietly(dir);
    }

    private static int Invoke(params string[] args)
    {
        var root = new RootCommand("test") { TextProbeCommand.Build() };
        return root.Parse(["text-probe", .. args]).Invoke();
    }
}
