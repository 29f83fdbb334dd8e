using RoentGen.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

[Collection(ProcessStateCollection.Name)]
public class LatentDiffusionTests
{
    [Fact]
    public void Prompts_can_drop_the_negated_boilerplate_of_the_findings()
    {
        const string impression = "Small left pleural effusion.";
        const string findings = "No pneumothorax. Small left pleural effusion. The lungs are otherwise clear. No acute osseous abnormality.";
        Assert.Equal(impression, LdmTrainingData.PromptOf(impression, findings, PromptSource.Impression));
        Assert.Equal($"{impression} {findings}", LdmTrainingData.PromptOf(impression, findings, PromptSource.ImpressionAndFindings));
        var positive = LdmTrainingData.PromptOf(impression, findings, PromptSource.ImpressionAndPositiveFindings);
        Assert.Equal("Small left pleural effusion. Small left pleural effusion.", positive);
        Assert.DoesNotContain("pneumothorax", positive);
        var data = LdmTrainingData.FromPhantoms(LdmExperimentConfig.Tiny with { TrainImages = 20, Prompt = PromptSource.ImpressionAndPositiveFindings });
        Assert.Equal(20, data.Prompts.Count);
        Assert.DoesNotContain(data.Prompts, p => p.Contains("No pneumothorax", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Tiny_experiment_trains_saves_loads_and_samples_reproducibly()
    {
        var dir = TestPaths.NewTempDir();
        var cfg = LdmExperimentConfig.Tiny;
        var data = LdmTrainingData.FromPhantoms(cfg.TrainImages, cfg.ImageSize, cfg.DataSeed);
        Assert.Equal([48L, 1, 32, 32], data.Images.shape);
        var (vae, vaeHistory) = LatentDiffusionRuns.TrainVae(cfg, data, dir);
        Assert.Equal(cfg.VaeSteps, vaeHistory.Steps);
        Assert.NotEqual(1.0, vae.Config.ScalingFactor);

        var history = LatentDiffusionRuns.TrainLdm(cfg, data, dir).History;
        Assert.Equal(cfg.LdmSteps, history.Steps);
        Assert.All(history.Loss, l => Assert.True(double.IsFinite(l)));

        var pipe = LatentDiffusionRuns.LoadPipeline(dir);
        Assert.Equal(vae.Config.ScalingFactor, pipe.Vae.Config.ScalingFactor, 6);
        var request = new SampleRequest { Prompts = ["small left pleural effusion", "no acute cardiopulmonary process"], Steps = 3, Seed = 5, GuidanceScale = 3 };
        var a = pipe.Sample(request);
        Assert.Equal([2L, 1, 32, 32], a.shape);
        Assert.True(a.abs().max().item<float>() <= 1f);
        // The clamp alone would keep any decoder output in [-1, 1]; what it cannot do is make the images look like the
        // data: few pixels pinned at the clamp, a spread of grey levels, and a mean near the training images' mean.
        double clipped = a.abs().ge(0.999f).to_type(ScalarType.Float32).mean().item<float>();
        double mean = a.mean().item<float>(), dataMean = data.Images.mean().item<float>(), spread = a.std().item<float>();
        Assert.True(clipped < 0.05, $"{clipped:P1} of the sampled pixels sit at the clamp");
        Assert.True(spread > 0.05, $"sampled pixels have spread {spread}");
        Assert.True(Math.Abs(mean - dataMean) < 0.35, $"sampled mean {mean} vs data mean {dataMean}");
        // One deterministic DDIM step, recomputed here from its equation (Song et al. 2021, eq. 12, with the final
        // alpha-bar 1): x0 = (x_T - sqrt(1 - ab) eps) / sqrt(ab), eps guided as eps_u + g (eps_c - eps_u). The pipeline's
        // image must be the decoded x0, so a sampler that skipped the update or a flipped guidance would show here,
        // whatever the clamp does afterwards.
        Assert.Equal(PredictionType.Epsilon, pipe.Schedule.Config.Prediction);
        var oneStep = request with { Scheduler = SchedulerKind.Ddim, Steps = 1, Prompts = ["small left pleural effusion"] };
        var sampled = pipe.Sample(oneStep);
        using (no_grad())
        {
            var ddim = NoiseScheduler.Create(SchedulerKind.Ddim, pipe.Schedule);
            ddim.SetTimesteps(1);
            int t = ddim.Timesteps[0];
            var xT = pipe.DrawNoise(1, oneStep.Seed);
            var context = cat([pipe.EncodePrompts([""]), pipe.EncodePrompts(oneStep.Prompts)], 0);
            var eps = pipe.Unet.call(cat([xT, xT], 0), full(2, (long)t, dtype: ScalarType.Int64), context).chunk(2, 0);
            var guided = eps[0] + oneStep.GuidanceScale * (eps[1] - eps[0]);
            double ab = pipe.Schedule.AlphaBar(t);
            var x0 = (xT - Math.Sqrt(1 - ab) * guided) / Math.Sqrt(ab);
            var expected = pipe.Vae.DecodeScaled(x0).clamp(-1, 1);
            Assert.True(sampled.allclose(expected, atol: 1e-4), $"one DDIM step differs from the hand computation by {(sampled - expected).abs().max().item<float>()}");
        }
        // Same seed, same images; one image does not depend on its batch.
        Assert.True(pipe.Sample(request).eq(a).all().item<bool>());
        var second = pipe.Sample(request with { BatchSize = 1 });
        Assert.True(second.allclose(a, atol: 1e-4));
        Assert.False(pipe.Sample(request with { Seed = 6 }).allclose(a));
        foreach (var kind in Enum.GetValues<SchedulerKind>())
            Assert.True(pipe.Sample(request with { Scheduler = kind, Prompts = ["cardiomegaly"] }).isfinite().all().item<bool>(), $"{kind} gave non-finite pixels");
        // img2img with strength 0 returns the input.
        var init = data.Images.narrow(0, 0, 1);
        Assert.True(pipe.Sample(request with { Prompts = ["x"], InitImages = init, Strength = 0 }).eq(init).all().item<bool>());
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Freezing_the_text_encoder_leaves_its_weights_unchanged()
    {
        var dir = TestPaths.NewTempDir();
        var cfg = LdmExperimentConfig.Tiny with { TrainTextEncoder = false, LdmSteps = 3, VaeSteps = 2 };
        var data = LdmTrainingData.FromPhantoms(cfg.TrainImages, cfg.ImageSize, cfg.DataSeed);
        LatentDiffusionRuns.TrainVae(cfg, data, dir);
        // Both runs start from the same initial weights (same seed, same VAE); only the trained one may move them.
        var text = LatentDiffusionRuns.TrainLdm(cfg, data, dir).Model.TextEncoder;
        Assert.All(text.parameters(), p => Assert.False(p.requires_grad));
        var trainedDir = TestPaths.NewTempDir();
        var text2 = LatentDiffusionRuns.EnsureTrained(cfg with { TrainTextEncoder = true, TextLr = 1e-2 }, data, trainedDir).Model.TextEncoder;
        var frozen = text.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Contains(text2.named_parameters(), p => !p.parameter.allclose(frozen[p.name]));
        Directory.Delete(dir, true);
        Directory.Delete(trainedDir, true);
    }
}
