using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation;

public class GenerationEvaluationTests
{
    // A cheap stand-in feature extractor: 8x8 average-pooled intensities (64 features).
    private static Tensor PooledFeatures(Tensor images) => nn.functional.avg_pool2d(images, 8).flatten(1);

    [Fact]
    public void Realistic_generations_beat_noise_and_copies_are_flagged_as_undiverse()
    {
        using var scope = NewDisposeScope();
        var realCases = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 31 }).Generate(0, 24);
        var genCases = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 32 }).Generate(0, 24);
        var real = ImageTensors.Stack(realCases.Select(c => c.Image));
        var scorer = new PromptAdherenceTests.OracleScorer([.. realCases, .. genCases], 5);

        // "Generated" = other phantoms, up to 3 per prompt text, each prompt naming one of the image's findings (or normal).
        var prompts = new List<string>();
        var chosen = new List<GrayImage>();
        foreach (var (c, i) in genCases.Select((c, i) => (c, i)))
        {
            // Groups of at most 3 samples per prompt text keep the MS-SSIM pair count small.
            prompts.Add((c.Present.Contains(Observation.Cardiomegaly) ? "Moderate cardiomegaly." : "No acute cardiopulmonary process.") + $" Series {i / 3}.");
            chosen.Add(c.Image);
        }
        var generated = ImageTensors.Stack(chosen);
        var gen = new TorchSharp.torch.Generator(7);
        var noise = (rand(24, 1, 64, 64, generator: gen) * 2 - 1);
        var copies = real.narrow(0, 0, 8).repeat_interleave(3, 0);         // 8 prompts x 3 identical samples

        var opts = new GenerationEvaluationOptions { KidSubsets = 5, KidSubsetSize = 12, Seed = 1 };
        var adherencePrompts = prompts.Select(AdherencePrompt.FromText).ToList();
        var good = GenerationEvaluation.Run(real, generated, adherencePrompts, PooledFeatures, scorer, opts);
        var bad = GenerationEvaluation.Run(real, noise, adherencePrompts, PooledFeatures, scorer, opts);
        var same = GenerationEvaluation.Run(real, copies, Enumerable.Range(0, 24).Select(i => new AdherencePrompt($"prompt {i / 3}", [])).ToList(), PooledFeatures, scorer, opts);

        Assert.True(good.Fid < bad.Fid / 5, $"FID phantoms {good.Fid:G4} vs noise {bad.Fid:G4}");
        Assert.True(good.Kid.Mean < bad.Kid.Mean, $"KID phantoms {good.Kid} vs noise {bad.Kid}");
        Assert.Equal(1.0, same.MsSsimGenerated, 4);
        Assert.True(same.MsSsimReal < 0.99, $"real MS-SSIM {same.MsSsimReal}");
        Assert.Equal(8, same.PromptGroups);
        Assert.Null(same.Adherence);                                      // no prompt names a finding
        Assert.NotNull(good.Adherence);
        Assert.True(good.Adherence!.MeanAuc > 0.8, $"adherence {good.Adherence.MeanAuc}");

        Assert.Contains("\"fid\":", good.ToJson());
        Assert.Contains("\"ms_ssim_real\":", good.ToJson());
        var df = good.ToDataFrame();
        Assert.Equal("fid", df["metric"][0]);
        Assert.Contains("adherence_auc/Cardiomegaly", df["metric"].Cast<string>());
    }

    [Fact]
    public void The_classifier_overload_reads_findings_from_prompt_text_and_checks_counts()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var classifier = new ProxyFindingClassifier(new ProxyClassifierConfig { Channels = [8, 8], FeatureWidth = 6, NormGroups = 4 });
        var cases = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 40 }).Generate(0, 8);
        var images = ImageTensors.Stack(cases.Select(c => c.Image));
        string[] prompts = ["Small left pleural effusion.", "Small left pleural effusion.", "No acute cardiopulmonary process.", "No acute cardiopulmonary process.",
                            "Small left pleural effusion.", "Small left pleural effusion.", "No acute cardiopulmonary process.", "No acute cardiopulmonary process."];
        var result = GenerationEvaluation.Run(images, images.flip(3), prompts, classifier, new GenerationEvaluationOptions { KidSubsets = 2, KidSubsetSize = 4 });
        Assert.True(double.IsFinite(result.Fid) && result.Fid >= 0);
        // FID orders sets by distance: a set against itself scores ~0, against its mirror image more, against noise
        // (which looks like no chest X-ray) more still.
        var options = new GenerationEvaluationOptions { KidSubsets = 2, KidSubsetSize = 4 };
        double self = GenerationEvaluation.Run(images, images, prompts, classifier, options).Fid;
        manual_seed(4);
        double noise = GenerationEvaluation.Run(images, rand_like(images) * 2 - 1, prompts, classifier, options).Fid;
        Assert.True(Math.Abs(self) < 0.01 * result.Fid, $"FID of a set against itself is {self} (mirror: {result.Fid})");
                Assert.True(noise > result.Fid, $"noise FID {noise} is not above mirror FID {result.Fid}");
        Assert.Equal(2, result.PromptGroups);
        Assert.Equal(Observation.PleuralEffusion, Assert.Single(result.Adherence!.Findings).Finding);
        Assert.Equal(4, result.Adherence.Findings[0].ImagesNamed);
        var ex = Assert.Throws<ArgumentException>(() => GenerationEvaluation.Run(images, images, prompts.Take(5).ToList(), classifier));
        Assert.Contains("8 images, 5 prompts", ex.Message);
    }
}
