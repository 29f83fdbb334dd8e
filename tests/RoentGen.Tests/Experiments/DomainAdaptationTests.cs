using System.CommandLine;
using RoentGen.Cli.Commands;
using RoentGen.Data;
using RoentGen.Diffusion;
using RoentGen.Evaluation.Statistics;
using RoentGen.Experiments;
using RoentGen.Tests.Cli;
using static TorchSharp.torch;

namespace RoentGen.Tests.Experiments;

[Collection(ProcessStateCollection.Name)]
public class DomainAdaptationTests
{
    [Fact]
    public void Tiny_study_resumes_after_an_interruption_and_writes_every_variant_through_the_cli()
    {
        var dir = TestPaths.NewTempDir("adapt");
        var cfg = DomainAdaptationConfig.Tiny;
        var log = new List<string>();
        using var cts = new CancellationTokenSource();
        bool inVariantB = false;
        void Log(string line)
        {
            log.Add(line);
            if (line.StartsWith("seed 0, (b)", StringComparison.Ordinal)) inVariantB = true;
            // Interrupt variant (b) right after its first evaluation (step 2 of 4, checkpointed at 2).
            if (inVariantB && line.Contains("step 2:", StringComparison.Ordinal)) cts.Cancel();
        }
        Assert.Throws<OperationCanceledException>(() => DomainAdaptation.Run(cfg, [0], dir, null, Log, cts.Token));
        var foundationDir = Path.Combine(dir, DomainAdaptation.FoundationFolder);
        var aDir = DomainAdaptation.VariantFolder(dir, 0, AdaptationVariant.UnetOnly);
        var bDir = DomainAdaptation.VariantFolder(dir, 0, AdaptationVariant.UnetAndText);
        Assert.True(LatentDiffusionModel.Exists(foundationDir));
        Assert.True(LatentDiffusionModel.Exists(aDir));
        Assert.False(LatentDiffusionModel.Exists(bDir));
        Assert.True(File.Exists(Path.Combine(bDir, DomainAdaptation.CurveFolder, "step-000002.json")));
        Assert.False(File.Exists(Path.Combine(dir, DomainAdaptation.ResultFile)));
        var aWeights = Path.Combine(aDir, LatentDiffusionModel.UnetFolder, "model.safetensors");
        var aHash = CliCases.Hash(aWeights);

        // A shift point written before report adherence existed (no such key) is evaluated again on resume.
        var shiftFile = Path.Combine(dir, DomainAdaptation.ShiftFile);
        var shiftJson = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(shiftFile))!.AsObject();
        Assert.True(shiftJson.Remove("report_adherence_mean_auc"));
        File.WriteAllText(shiftFile, shiftJson.ToJsonString());

        // The same study through the CLI: the foundation and variant (a) are skipped, (b) resumes, the rest run.
        var root = new RootCommand { AdaptCommand.Build() };
        var (rc, stdout, stderr) = CliCases.Invoke(root, "adapt", "--preset", "tiny", "--out", dir, "--seeds", "0", "--iu-reports", Path.Combine(dir, "none.csv"));
        Assert.Equal(2, rc);                                            // a named IU file that does not exist is a user error
        Assert.Contains("--iu-reports", stderr);
        (rc, stdout, stderr) = CliCases.Invoke(root, "adapt", "--preset", "tiny", "--out", dir, "--seeds", "0");
        Assert.True(rc == 0, stderr);
        Assert.Contains("foundation model: finished before, loaded", stdout);
        Assert.Equal(aHash, CliCases.Hash(aWeights));
        Assert.True(File.Exists(Path.Combine(dir, DomainAdaptationReport.ReportFile)));

        var result = DomainAdaptationResult.Load(dir);
        Assert.Equal(DomainAdaptation.Variants.Select(DomainAdaptation.Key).ToArray(), result.Runs.Select(r => r.Variant).ToArray());
        foreach (var run in result.Runs)
        {
            foreach (var s in cfg.EvalSteps)
            {
                Assert.True(double.IsFinite(run.At(s)!.AdherenceMeanAuc), $"{run.Variant} step {s} has no adherence");
                Assert.True(double.IsFinite(run.At(s)!.ReportAdherenceMeanAuc), $"{run.Variant} step {s} has no report adherence");
                Assert.Equal(cfg.PromptCount!.Value * cfg.ImagesPerPrompt + cfg.ReportPrompts, run.At(s)!.Images);
            }
            Assert.Equal(run.Variant is "unet-only" or "unet-text", run.At(0) is not null);
        }
        Assert.True(result.Runs.Single(r => r.Variant == "unet-only").TextEncoderUnchanged);
        Assert.Equal(result.Shift, result.Runs.Single(r => r.Variant == "unet-text").At(0));
        Assert.InRange(result.ReportAdherenceCeiling, 0, 1);                   // the judge on the real images of the report prompts
        Assert.InRange(result.Shift.ReportAdherenceMeanAuc, 0, 1);
        Assert.Contains(result.TextProbes, p => p.Encoder == "foundation");
        Assert.Contains(result.TextProbes, p => p.Encoder == "unet-text" && p.Seed == 0);
        Assert.Equal("Pneumothorax", result.TextProbes[0].Result.Findings[0].Finding);
        Assert.Contains(result.Claims, c => c.Paper.Contains("+25"));
        Assert.Equal(cfg.FineTuneSteps, result.Config.FineTuneSteps);

        // What each variant took from the foundation model and what it kept frozen, bit for bit.
        var foundation = LatentDiffusionModel.Load(foundationDir);
        var a = LatentDiffusionModel.Load(aDir);
        var b = LatentDiffusionModel.Load(bDir);
        var c = LatentDiffusionModel.Load(DomainAdaptation.VariantFolder(dir, 0, AdaptationVariant.Scratch));
        var d = LatentDiffusionModel.Load(DomainAdaptation.VariantFolder(dir, 0, AdaptationVariant.VaeFineTuned));
        Assert.True(DomainAdaptation.SameWeights(foundation.TextEncoder, a.TextEncoder));
        Assert.True(DomainAdaptation.SameWeights(foundation.Vae, a.Vae));
        Assert.True(DomainAdaptation.SameWeights(foundation.Vae, b.Vae));
        Assert.False(DomainAdaptation.SameWeights(foundation.Unet, a.Unet));
        Assert.False(DomainAdaptation.SameWeights(foundation.TextEncoder, b.TextEncoder));
        Assert.False(DomainAdaptation.SameWeights(foundation.Vae, d.Vae));
        Assert.Equal(foundation.Tokenizer.Merges, b.Tokenizer.Merges);
        Assert.NotEqual(foundation.Tokenizer.Merges, c.Tokenizer.Merges);   // scratch learns its own tokenizer on the reports

        // Init-from: before any step, a fine-tuning variant's UNet and text encoder are the foundation model's.
        var data = LdmTrainingData.FromPhantoms(cfg.Cxr);
        var built = LatentDiffusionModel.Build(cfg.Variant(AdaptationVariant.UnetAndText, 0, foundationDir), data.Prompts);
        Assert.True(DomainAdaptation.SameWeights(foundation.Unet, built.Unet));
        Assert.True(DomainAdaptation.SameWeights(foundation.TextEncoder, built.TextEncoder));
        Assert.True(built.IsTrainable(LdmPart.TextEncoder));
        Assert.False(LatentDiffusionModel.Build(cfg.Variant(AdaptationVariant.UnetOnly, 0, foundationDir), data.Prompts).IsTrainable(LdmPart.TextEncoder));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Text_probe_gives_the_known_auc_on_hand_made_embeddings()
    {
        // 100 reports: pneumothorax in every third, cardiomegaly in every other.
        int n = 100;
        var labels = new float[n, Observations.All.Count];
        for (int i = 0; i < n; i++)
        {
            labels[i, (int)Observation.Pneumothorax] = i % 3 == 0 ? 1 : 0;
            labels[i, (int)Observation.Cardiomegaly] = i % 2 == 0 ? 1 : 0;
        }
        var reports = new LabelledReports("hand-made", Enumerable.Range(0, n).Select(i => $"report {i}").ToList(), labels);
        var options = new TextProbeOptions { KnnK = 5, Linear = RoentGen.Evaluation.Probes.LinearProbeOptions.Quick };

        // Embedding that encodes pneumothorax exactly (and nothing else): perfect for pneumothorax, chance-free for neither.
        var rows = new float[n * 2];
        for (int i = 0; i < n; i++) { rows[2 * i] = labels[i, (int)Observation.Pneumothorax]; rows[2 * i + 1] = 1 - labels[i, (int)Observation.Pneumothorax]; }
        var separable = TextEncoderProbe.Run(tensor(rows, [n, 2]), reports, "oracle", options);
        Assert.Equal("Pneumothorax", separable.Findings[0].Finding);
        Assert.Equal(1.0, separable["Pneumothorax"].LinearAuc, 9);
        Assert.Equal(1.0, separable["Pneumothorax"].KnnAuc, 9);
        Assert.True(separable["Pneumothorax"].TestPositives >= 6, "the split keeps pneumothorax positives in the test part");
        Assert.True(double.IsNaN(separable["Edema"].LinearAuc), "a finding with no positive is not scored");

        // A constant embedding carries nothing: every score ties, AUC exactly 0.5.
        var constant = TextEncoderProbe.Run(ones(n, 4), reports, "constant", options);
        Assert.Equal(0.5, constant["Pneumothorax"].LinearAuc, 9);
        Assert.Equal(0.5, constant["Pneumothorax"].KnnAuc, 9);
        Assert.Equal(0.5, constant["Cardiomegaly"].KnnAuc, 9);

        Assert.Throws<ArgumentException>(() => TextEncoderProbe.Run(ones(n - 1, 4), reports, "short", options));

        // Across wordings: fit on these reports, scored on another set. An encoder that maps the other wording to the same
        // place transfers (AUC 1); one that puts it on the opposite side scores 0; the row names both sets.
        var other = new LabelledReports("other wording", Enumerable.Range(0, 30).Select(i => $"other {i}").ToList(), Slice(labels, 30));
        var same = new float[30 * 2];
        for (int i = 0; i < 30; i++) { same[2 * i] = labels[i, (int)Observation.Pneumothorax]; same[2 * i + 1] = 1 - same[2 * i]; }
        var flipped = same.Select((v, i) => same[i ^ 1]).ToArray();
        var transfers = TextEncoderProbe.Transfer(tensor(rows, [n, 2]), reports, tensor(same, [30, 2]), other, "oracle", options);
        Assert.Equal(1.0, transfers["Pneumothorax"].LinearAuc, 9);
        Assert.Equal(1.0, transfers["Pneumothorax"].KnnAuc, 9);
        Assert.Equal(30, transfers["Pneumothorax"].TestCount);                                   // every report of the other set
        Assert.Contains("other wording, probe fit on hand-made", transfers.Reports);
        var confused = TextEncoderProbe.Transfer(tensor(rows, [n, 2]), reports, tensor(flipped, [30, 2]), other, "confused", options);
        Assert.Equal(0.0, confused["Pneumothorax"].KnnAuc, 9);
        Assert.Throws<ArgumentException>(() => TextEncoderProbe.Transfer(tensor(rows, [n, 2]), reports, ones(29, 2), other, "short", options));

        // The paraphrase set: labelled with what each prompt names, pneumothorax among them.
        var paraphrases = LabelledReports.Paraphrases();
        Assert.Equal(RoentGen.Evaluation.ParaphrasePrompts.All.Count, paraphrases.Count);
        Assert.True(paraphrases.Positives(Observation.Pneumothorax) >= 5);
    }

    private static float[,] Slice(float[,] labels, int rows)
    {
        var m = new float[rows, labels.GetLength(1)];
        for (int i = 0; i < rows; i++) for (int j = 0; j < labels.GetLength(1); j++) m[i, j] = labels[i, j];
        return m;
    }

    [Fact]
    public void Claims_use_paired_differences_over_the_seeds_and_the_result_round_trips()
    {
        var cfg = DomainAdaptationConfig.Tiny;
        // Report adherence drives the claims; the short-prompt adherence (0.3 everywhere) must not.
        var shift = new CurvePoint(0, 50, 0.1, 0.3, 0.3, 12, 1) { ReportAdherenceMeanAuc = 0.5 };
        long[] seeds = [0, 1, 2];
        double[] bAdherence = [0.8, 0.9, 1.0], aAdherence = [0.7, 0.7, 0.7];
        var runs = new List<VariantRun>();
        foreach (var v in DomainAdaptation.Variants)
            for (int i = 0; i < 3; i++)
            {
                double adh = v == AdaptationVariant.UnetAndText ? bAdherence[i] : v == AdaptationVariant.UnetOnly ? aAdherence[i] : 0.6;
                runs.Add(new VariantRun(DomainAdaptation.Key(v), seeds[i],
                    cfg.EvalSteps.Select(s => new CurvePoint(s, 10 + i, 0.01, 0.3, 0.3, 12, 1) { ReportAdherenceMeanAuc = adh }).ToList()));
            }
        // Text probes: the foundation encoder and (b) per seed on two report sets, one with too few pneumothorax reports.
        TextProbeRow Probe(string encoder, long? seed, string reports, double linear, double knn, int positives) =>
            new(encoder, seed, reports, new TextProbeResult(encoder, reports, linear, knn, [new FindingProbeAuc("Pneumothorax", linear, knn, positives, 200)]));
        var probes = new List<TextProbeRow> { Probe("foundation", null, "many", 0.9, 0.8, 12), Probe("foundation", null, "few", 0.9, 0.8, 1) };
        for (int i = 0; i < 3; i++)
        {
            probes.Add(Probe("unet-text", seeds[i], "many", 0.9, 0.88 + 0.01 * i, 12));
            probes.Add(Probe("unet-text", seeds[i], "few", 0.9, 0.88 + 0.01 * i, 1));
        }
        var result = DomainAdaptationResult.Build(cfg, seeds, shift, runs, probes, 1, reportAdherenceCeiling: 0.85);
        var knnClaim = result.Claims.Single(c => c.Measure.Contains("k-NN") && c.Measure.EndsWith("on many", StringComparison.Ordinal));
        Assert.Equal(0.1125, knnClaim.Estimate, 9);                                 // mean of 0.88/0.8 − 1, 0.89/0.8 − 1, 0.90/0.8 − 1
        Assert.Equal("supported", knnClaim.Verdict);
        Assert.Equal(0, result.Claims.Single(c => c.Measure.Contains("linear-probe") && c.Measure.EndsWith("on many", StringComparison.Ordinal)).Estimate, 9);
        Assert.All(result.Claims.Where(c => c.Measure.EndsWith("on few", StringComparison.Ordinal)),
            c => Assert.StartsWith("undecided (only 1 pneumothorax report in", c.Verdict));

        var textHelps = result.Claims.Single(c => c.Measure.StartsWith("report adherence AUC (b) − (a)", StringComparison.Ordinal));
        var expected = Summary.Of([0.1, 0.2, 0.3]);
        Assert.Equal(0.2, textHelps.Estimate, 9);
        Assert.Equal(expected.Lower, textHelps.Lower, 9);
        Assert.Equal(expected.Upper, textHelps.Upper, 9);
        Assert.Equal(TTest.Paired([0.8, 0.9, 1.0], [0.7, 0.7, 0.7], Alternative.Greater).P, textHelps.P, 9);
        Assert.StartsWith("undecided", textHelps.Verdict);        // [−0.05, 0.45] includes 0
        // (d) at 0.6 against (b) at 0.8-1.0: tuning the VAE lowered adherence, so "frozen is enough" is contradicted two-sidedly.
        var vaeAdherence = result.Claims.Single(c => c.Measure.StartsWith("report adherence AUC (d, VAE tuned) − (b, VAE frozen)", StringComparison.Ordinal));
        Assert.Equal(-0.3, vaeAdherence.Estimate, 9);
        Assert.StartsWith("contradicted", vaeAdherence.Verdict);
        var shiftClaim = result.Claims[0];
        Assert.Equal(0.4, shiftClaim.Estimate, 9);                 // (b) at the budget − the foundation's 0.5
        Assert.Equal("supported", shiftClaim.Verdict);
        Assert.Equal(0.9, result.CurveAt("unet-text", cfg.FineTuneSteps, "report_adherence").Mean, 9);
        Assert.Equal(0.3, result.CurveAt("unet-text", cfg.FineTuneSteps, "adherence").Mean, 9);
        var shiftTable = result.ShiftTable();
        Assert.Equal(0.85, (double)shiftTable.Columns["report adherence mean AUC"][shiftTable.Rows.Count - 1]!, 9);   // the ceiling row

        var path = Path.Combine(TestPaths.NewTempDir("adapt-json"), DomainAdaptation.ResultFile);
        result.Save(path);
        var loaded = DomainAdaptationResult.Load(path);
        Assert.Equal(result.ToJson(), loaded.ToJson());
        Assert.Equal(result.ClaimTable().Rows.Count, loaded.ClaimTable().Rows.Count);
        Assert.Equal(0.85, loaded.ReportAdherenceCeiling, 9);
        Assert.Equal(0.9, loaded.Runs.Single(r => r.Variant == "unet-text" && r.Seed == 1).At(cfg.FineTuneSteps)!.ReportAdherenceMeanAuc, 9);
        Assert.Equal(4, result.CurveFigure("adherence").Traces.Count(t => t.ShowLegend is null));
        Assert.Equal(4, result.CurveFigure("report_adherence").Traces.Count(t => t.ShowLegend is null));
        Assert.Contains("report_adherence", Assert.Throws<ArgumentException>(() => result.CurveFigure("adherance")).Message);
        Assert.Throws<FileNotFoundException>(() => DomainAdaptationResult.Load(Path.Combine(Path.GetDirectoryName(path)!, "missing.json")));
    }

    [Fact]
    public void Config_checks_name_the_field()
    {
        DomainAdaptationConfig.Quick.Validate();
        Assert.Equal(96, DomainAdaptationConfig.Quick.Variant(AdaptationVariant.Scratch, 0, "/f").MaxTokens);
        var e = Assert.Throws<ArgumentException>(() => (DomainAdaptationConfig.Tiny with { EvalSteps = [2, 9] }).Validate());
        Assert.Contains("EvalSteps", e.Message);
        Assert.Contains("9", e.Message);
        Assert.Contains("ReportPrompts", Assert.Throws<ArgumentException>(() => (DomainAdaptationConfig.Tiny with { ReportPrompts = 1 }).Validate()).Message);
        Assert.Contains("SceneSeed", Assert.Throws<ArgumentException>(() => (DomainAdaptationConfig.Tiny with { SceneSeed = 1 }).Validate()).Message);
        Assert.Contains("known presets", Assert.Throws<ArgumentException>(() => DomainAdaptationConfig.FromPreset("huge")).Message);
        var a = DomainAdaptationConfig.Tiny.Variant(AdaptationVariant.UnetOnly, 3, "/f");
        Assert.False(a.Trains(LdmPart.TextEncoder));
        Assert.False(a.Trains(LdmPart.Vae));
        Assert.Equal(3, a.Seed);
        Assert.Equal("/f", a.Parts.Unet.From);
        Assert.True(DomainAdaptationConfig.Tiny.Variant(AdaptationVariant.VaeFineTuned, 0, "/f").Trains(LdmPart.Vae));
        Assert.Null(DomainAdaptationConfig.Tiny.Variant(AdaptationVariant.Scratch, 0, "/f").Parts.Unet.From);
    }
}
