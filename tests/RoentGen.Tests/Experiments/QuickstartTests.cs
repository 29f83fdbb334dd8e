using System.Text.Json;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using RoentGen.Experiments;

namespace RoentGen.Tests.Experiments;

[Collection(ProcessStateCollection.Name)]
public class QuickstartTests
{
    private static QuickstartOptions Tiny(string dir) =>
        Quickstart.TinyOptions(new QuickstartOptions { OutputDir = dir, PhantomCount = 6, RealSampleDir = TestPaths.RealSample }) with { LabelerReports = 40 };

    [Fact]
    public async Task Tiny_main_job_trains_samples_evaluates_and_writes_an_honest_report()
    {
        var dir = TestPaths.NewTempDir();
        var log = new StringWriter();
        var options = Tiny(dir) with { Ldm = Tiny(dir).Ldm with { TextPretrainSteps = 5 } };
        var r = await Quickstart.RunAsync(options, log);

        Assert.NotNull(r.Diffusion);
        Assert.Equal(40, r.LabelerReports);
        // The text encoder's pretraining: in metrics.json and in the report's description of the model.
        Assert.Equal(5, r.Diffusion!.TextPretraining?.Steps);
        foreach (var f in new[] { "report.html", "metrics.json", "evaluation.json", "prompt-grid.png", Quickstart.ThumbnailFile, "doctor.json", "gallery.png" })
            Assert.True(File.Exists(Path.Combine(dir, f)), $"{f} missing");
        Assert.True(new FileInfo(Path.Combine(dir, Quickstart.ThumbnailFile)).Length < 200_000, "the README thumbnail must stay under 200 KB");
        Assert.True(File.Exists(Path.Combine(dir, "experiment", LatentDiffusionRuns.ConfigFile)));
        Assert.True(File.Exists(Path.Combine(dir, "proxy", RoentGen.Training.Checkpoint.WeightsFileName)), "the judge was not saved");

        // Every stage is timed; the evaluation covers the nine default findings, an untrained baseline and two samplers.
        Assert.Equal(10, r.StageSeconds.Count);
        var eval = r.Diffusion!.Evaluation;
        // FID: two different image sets cannot score exactly 0 (a metric returning 0 or NaN fails here); the report shows the
        // same number the evaluation computed, next to the untrained UNet's (which must be a different model's figure), and
        // the small-sample warning is there exactly when a side has fewer images than the minimum.
        var trained = eval.GetProperty("trained");
        double fid = trained.GetProperty("fid").GetDouble(), untrainedFid = eval.GetProperty("untrained").GetProperty("fid").GetDouble();
        Assert.True(double.IsFinite(fid) && fid > 0, $"trained FID {fid}");
        Assert.True(double.IsFinite(untrainedFid) && untrainedFid > 0, $"untrained FID {untrainedFid}");
        Assert.NotEqual(fid, untrainedFid);
        int fewest = Math.Min(trained.GetProperty("real_images").GetInt32(), trained.GetProperty("generated_images").GetInt32());
        Assert.Equal(fewest < GenerationEvaluationResult.MinImagesPerSide,
            trained.GetProperty("warnings").EnumerateArray().Any(w => w.GetString()!.Contains("not meaningful")));
        var reportHtml = File.ReadAllText(Path.Combine(dir, "report.html"));
        Assert.Contains(FormattableString.Invariant($"FID {fid:F2} against {untrainedFid:F2} for the untrained UNet"), reportHtml);
        using (var evalFile = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "evaluation.json"))))
            Assert.Equal(fid, evalFile.RootElement.GetProperty("trained").GetProperty("fid").GetDouble());
        Assert.Equal(9, eval.GetProperty("trained").GetProperty("adherence").GetProperty("findings").GetArrayLength());
        Assert.Equal(JsonValueKind.Object, eval.GetProperty("untrained").ValueKind);
        Assert.Equal(2, eval.GetProperty("samplers").GetArrayLength());
        Assert.Equal(14, r.Diffusion.ProxyHeldOutAuc.Count);

        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        Assert.True(metrics.RootElement.GetProperty("Diffusion").GetProperty("Evaluation").TryGetProperty("trained", out _));
        Assert.Equal(5, metrics.RootElement.GetProperty("Diffusion").GetProperty("TextPretraining").GetProperty("Steps").GetInt32());
        var html = File.ReadAllText(Path.Combine(dir, "report.html"));
        Assert.Contains("the text encoder was pretrained for 5 steps", html);
        AssertParaphraseReported(metrics.RootElement, html, r.Diffusion);
        // Phantoms beside real radiographs when the shared sample is beside the clone; a sentence saying why not otherwise.
        Assert.Equal(TestPaths.RealSample is not null, File.Exists(Path.Combine(dir, "phantoms-beside-real.png")));
        Assert.Contains(TestPaths.RealSample is not null ? "bottom: real frontal radiographs" : "No real sample beside the repository", html);
        Assert.Contains("Targets", html);
        Assert.Contains("adherence AUC", html);
        // Laterality: the side judge trained beside the judge, its score in metrics.json and evaluation.json, its table in the report.
        Assert.True(File.Exists(Path.Combine(dir, "laterality-judge", RoentGen.Training.Checkpoint.WeightsFileName)), "the side judge was not saved");
        var lateral = eval.GetProperty("laterality");
        Assert.True(lateral.GetProperty("images").GetInt32() > 0, "no side-prompted image was scored");
        double sideAccuracy = metrics.RootElement.GetProperty("Diffusion").GetProperty("laterality_accuracy").GetDouble();
        Assert.Equal(lateral.GetProperty("laterality_accuracy").GetDouble(), sideAccuracy);
        Assert.InRange(sideAccuracy, 0, 1);
        Assert.Equal(lateral.GetProperty("laterality_reliable_accuracy").GetRawText(),
            metrics.RootElement.GetProperty("Diffusion").GetProperty("laterality_reliable_accuracy").GetRawText());
        Assert.Contains("<h4>Laterality</h4>", html);
        // The judge's ceiling (real held-out phantoms showing what each prompt names): in evaluation.json, metrics.json and
        // the judge's table. With 16 held-out phantoms some prompts find none, and they are listed.
        var ceiling = eval.GetProperty("judge_ceiling");
        Assert.Equal(JsonValueKind.Object, ceiling.ValueKind);
        Assert.InRange(ceiling.GetProperty("images").GetInt32(), 1, 16);
        Assert.True(eval.GetProperty("judge_ceiling_short_prompts").GetArrayLength() > 0);
        var ceilingMean = metrics.RootElement.GetProperty("Diffusion").GetProperty("judge_ceiling_mean_auc");
        Assert.Equal(ceiling.GetProperty("mean_auc").ToString(), ceilingMean.ToString());
        Assert.Contains("adherence on real images (ceiling)", html);
        // plotly.js is embedded once however many charts the page has.
        Assert.Equal(1, html.Split("plotly.js (basic - minified) v").Length - 1);
        Assert.True(html.Split("Plotly.newPlot").Length - 1 >= 3, "expected the loss curves and the adherence chart");
        Assert.True(html.Length < 12_000_000, $"report is {html.Length} characters");

        // A rerun in the same folder resumes from the checkpoints instead of training again: no checkpoint is rewritten.
        var checkpoints = CheckpointTimes(dir);
        Assert.NotEmpty(checkpoints);
        var again = await Quickstart.RunAsync(options, new StringWriter());
        Assert.Equal(r.Diffusion.LatentScalingFactor, again.Diffusion!.LatentScalingFactor, 6);
        Assert.Equal(r.Diffusion.TextPretraining, again.Diffusion.TextPretraining);   // read back, not run again
        Assert.Equal(checkpoints, CheckpointTimes(dir));
        Directory.Delete(dir, true);
    }

    // Adherence on the held-out paraphrase prompts sits beside the writer's: in metrics.json (keys with "adherence",
    // "paraphrase" and "auc"), in evaluation.json, and as a per-finding table in report.html.
    private static void AssertParaphraseReported(JsonElement metrics, string html, DiffusionQuickstartResult result)
    {
        var d = metrics.GetProperty("Diffusion");
        double writer = d.GetProperty("adherence_writer_mean_auc").GetDouble(), para = d.GetProperty("adherence_paraphrase_mean_auc").GetDouble();
        Assert.Equal(result.Evaluation.GetProperty("trained").GetProperty("adherence").GetProperty("mean_auc").GetDouble(), writer);
        Assert.Equal(result.Evaluation.GetProperty("paraphrase_adherence").GetProperty("mean_auc").GetDouble(), para);
        Assert.True(double.IsFinite(para) && para >= 0 && para <= 1, $"paraphrase mean AUC {para}");
        Assert.Equal(ParaphrasePrompts.All.Count, result.Evaluation.GetProperty("paraphrase_adherence").GetProperty("images").GetInt32());
        Assert.Equal(9, d.GetProperty("adherence_paraphrase_auc").EnumerateObject().Count());
        Assert.Contains("Radiology language the writer does not use", html);
        Assert.Contains("adherence AUC, paraphrase prompts", html);
        Assert.Contains(FormattableString.Invariant($"<td><b>{para:F3}</b></td>"), html);
        // Per prompt: one row for each paraphrase prompt that names a finding, and the least-followed of them in the report.
        var rows = result.Evaluation.GetProperty("paraphrase_adherence").GetProperty("prompts").EnumerateArray().ToList();
        Assert.Equal(ParaphrasePrompts.All.Count(p => p.Findings.Count > 0), rows.Count);
        var least = rows.Where(r => r.GetProperty("auc").ValueKind == JsonValueKind.Number).OrderBy(r => r.GetProperty("auc").GetDouble())
            .ThenBy(r => r.GetProperty("prompt").GetString(), StringComparer.Ordinal).First();
        Assert.Contains("follows least", html);
        Assert.Contains(System.Net.WebUtility.HtmlEncode(least.GetProperty("prompt").GetString()!), html);
    }

    [Fact]
    public async Task Study_preset_validates_and_its_code_path_runs_at_tiny_scale()
    {
        var study = Quickstart.StudyOptions(new QuickstartOptions());
        Assert.Same(ParaphrasePrompts.All, study.Evaluation.ParaphrasePrompts);
        Assert.Equal(JsonSerializer.Serialize(LdmExperimentConfig.Study), JsonSerializer.Serialize(study.Ldm));
        study.Ldm.ValidateParts();
        Assert.True(study.Evaluation.ImagesPerPrompt >= new QuickstartOptions().Evaluation.ImagesPerPrompt);

        // The same options at toy sizes, keeping the study's levers (balanced sampling, varied reports, prompt source).
        var dir = TestPaths.NewTempDir();
        var tiny = Quickstart.TinyOptions(Quickstart.StudyOptions(new QuickstartOptions { OutputDir = dir, PhantomCount = 6 })) with
        {
            LabelerReports = 40, HeldOutImages = 16,
            Ldm = LdmExperimentConfig.Tiny with
            {
                VaeSteps = 4, LdmSteps = 4, BalanceFindings = study.Ldm.BalanceFindings, ReportStyle = study.Ldm.ReportStyle, Prompt = study.Ldm.Prompt,
            },
        };
        var r = await Quickstart.RunAsync(tiny, new StringWriter());
        Assert.Equal(study.Ldm.BalanceFindings, r.Diffusion!.Config.BalanceFindings);
        var saved = LatentDiffusionRuns.LoadConfig(Path.Combine(dir, "experiment"));
        Assert.Equal(RoentGen.Data.Reports.ReportStyle.Varied, saved.ReportStyle);
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        AssertParaphraseReported(metrics.RootElement, File.ReadAllText(Path.Combine(dir, "report.html")), r.Diffusion);
        Directory.Delete(dir, true);
    }

    private static Dictionary<string, DateTime> CheckpointTimes(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => f.Contains($"{Path.DirectorySeparatorChar}checkpoints{Path.DirectorySeparatorChar}"))
            .ToDictionary(f => f, File.GetLastWriteTimeUtc);
}
