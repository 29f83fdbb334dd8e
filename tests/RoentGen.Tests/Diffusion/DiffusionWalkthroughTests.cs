using RoentGen.Diffusion;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

[Collection(ProcessStateCollection.Name)]
public class DiffusionWalkthroughTests
{
    private static (LatentDiffusionModel Model, LdmTrainingData Data, LdmExperimentConfig Cfg) Tiny()
    {
        var cfg = LdmExperimentConfig.Tiny with { TrainImages = 8, VaeSteps = 1 };
        var data = LdmTrainingData.FromPhantoms(cfg);
        var dir = TestPaths.NewTempDir();
        LatentDiffusionRuns.TrainVae(cfg, data, dir);
        return (LatentDiffusionModel.Build(cfg, data.Prompts, Path.Combine(dir, LatentDiffusionModel.VaeFolder)), data, cfg);
    }

    [Fact]
    public void The_written_out_training_step_gives_the_library_loss_and_leaves_no_gradients()
    {
        var (model, data, cfg) = Tiny();
        var batch = DiffusionWalkthrough.Batch(model, data, 4);
        Assert.Equal(4, batch.Latents.shape[0]);
        var objective = DenoisingObjective.For(cfg);
        var cmp = DiffusionWalkthrough.CompareTrainingStep(model, objective, batch, seed: 3);
        Assert.True(cmp.Agrees(1e-4), cmp.ToString());
        Assert.True(cmp.WrittenLoss > 0 && double.IsFinite(cmp.WrittenLoss));
        Assert.True(cmp.UnetGradientNorm > 0, cmp.ToString());
        Assert.All(model.Unet.parameters(), p => Assert.True(p.grad is null || p.grad.abs().sum().item<float>() == 0));
        // Another seed draws other noise and timesteps: the check is not comparing a constant.
        var other = DiffusionWalkthrough.CompareTrainingStep(model, objective, batch, seed: 4);
        Assert.NotEqual(cmp.LibraryLoss, other.LibraryLoss);
        // Without Min-SNR weights (plain MSE) the two still agree.
        var plain = new DenoisingObjective(cfg.Schedule, cfg.PromptDropout, minSnrGamma: null);
        Assert.True(DiffusionWalkthrough.CompareTrainingStep(model, plain, batch, seed: 3).Agrees(1e-4));
    }

    [Fact]
    public void Noising_strip_and_denoising_chain_have_one_caption_per_image()
    {
        var (model, data, _) = Tiny();
        var schedule = new NoiseSchedule(model.Scheduler);
        var strip = DiffusionWalkthrough.NoisingStrip(model.Vae, schedule, data.Images.narrow(0, 0, 1), [0, 500, 999], seed: 1);
        Assert.Equal(4, strip.Images.shape[0]);
        Assert.Equal("image", strip.Captions[0]);
        Assert.Equal("t=500 abar=" + schedule.AlphaBar(500).ToString("F2", System.Globalization.CultureInfo.InvariantCulture), strip.Captions[2]);
        Assert.Equal(4, strip.Captions.Count);
        Assert.True(strip.Images.abs().max().item<float>() <= 1f);
        Assert.Throws<ArgumentOutOfRangeException>(() => DiffusionWalkthrough.NoisingStrip(model.Vae, schedule, data.Images.narrow(0, 0, 1), [1000]));

        var chain = DiffusionWalkthrough.DenoisingChain(model.ToPipeline(), new SampleRequest { Prompts = ["Cardiomegaly."], Steps = 4, Seed = 2 }, every: 2);
        Assert.Equal(3, chain.Images.shape[0]);   // steps 0 and 2, then the final image
        Assert.Equal(["step 0", "step 2", "final (4 steps)"], chain.Captions.Select(c => c.Split(" t=")[0]));
    }
}
