using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using RoentGen.Interop;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

[Collection(ProcessStateCollection.Name)]
public class FindingLossWeightTests
{
    [Fact]
    public void Weights_mark_every_latent_pixel_a_finding_touches_and_nothing_else()
    {
        var masks = zeros(2, 1, 8, 8);
        masks[0, 0, 5, 6] = tensor(1f);   // one image pixel: latent pixel (2, 3) at a factor of 2
        var w = DenoisingObjective.FindingWeights(masks, 4, 3.0);
        Assert.Equal([2L, 1, 4, 4], w.shape);
        Assert.Equal(4f, w[0, 0, 2, 3].item<float>());
        Assert.Equal(15f + 4f + 16f, w.sum().item<float>());   // image 0: 15 ones and the 4; image 1: 16 ones
        Assert.Equal(1f, w[1].max().item<float>());
        Assert.Equal(1f, DenoisingObjective.FindingWeights(zeros(1, 1, 4, 4), 4, 3.0).max().item<float>());
        Assert.Throws<ArgumentException>(() => DenoisingObjective.FindingWeights(zeros(1, 1, 6, 6), 4, 3.0));   // 6 is not a multiple of 4
        Assert.Throws<ArgumentException>(() => DenoisingObjective.FindingWeights(zeros(1, 2, 8, 8), 4, 3.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => DenoisingObjective.FindingWeights(masks, 4, 0));
    }

    [Fact]
    public void Phantom_data_carries_finding_masks_only_when_the_config_asks_and_they_follow_the_cases()
    {
        var cfg = LdmExperimentConfig.Tiny with { TrainImages = 24, ImageSize = 64, FindingLossWeight = 2 };
        var data = LdmTrainingData.FromPhantoms(cfg);
        Assert.NotNull(data.FindingMasks);
        Assert.Equal([24L, 1, 64, 64], data.FindingMasks!.shape);
        Assert.Null(LdmTrainingData.FromPhantoms(cfg with { FindingLossWeight = null }).FindingMasks);
        // Image i has finding pixels exactly when its case has a finding mask: one other than the anatomy's (lungs, heart),
        // or the heart's when the case has cardiomegaly.
        var records = PhantomRecords.Create(new PhantomOptions { Size = 64, Seed = cfg.DataSeed, ReportStyle = cfg.ReportStyle }, 24);
        int withFindings = 0;
        for (int i = 0; i < 24; i++)
        {
            var names = LdmTrainingData.FindingMaskNames(records[i]).ToList();
            Assert.Equal(records[i].Labels.Has(Observation.Cardiomegaly), names.Contains("heart"));
            Assert.DoesNotContain("lungs", names);
            withFindings += names.Count > 0 ? 1 : 0;
            Assert.Equal(names.Count > 0, data.FindingMasks[i].sum().item<float>() > 0);
        }
        Assert.InRange(withFindings, 1, 23);   // both kinds are present, so the check above can fail either way
        Assert.Contains(records, r => r.Labels.Has(Observation.Cardiomegaly));   // and the heart's rule is exercised
        // The union holds every finding mask of the case (e.g. its effusion's pixels), not only one of them.
        int idx = Enumerable.Range(0, 24).First(i => LdmTrainingData.FindingMaskNames(records[i]).Any());
        foreach (var name in LdmTrainingData.FindingMaskNames(records[idx]))
        {
            var m = records.LoadMask(records[idx], name, 64).Pixels;
            var u = data.FindingMasks[idx].flatten().data<float>().ToArray();
            Assert.All(Enumerable.Range(0, m.Length).Where(p => m[p] > 0.5f), p => Assert.Equal(1f, u[p]));
        }
    }

    [Fact]
    public void The_weighted_loss_is_the_plain_one_under_uniform_weights_and_training_uses_and_pins_it()
    {
        var cfg = LdmExperimentConfig.Tiny with { TrainImages = 16, VaeSteps = 1, LdmSteps = 3, FindingLossWeight = 4 };
        var data = LdmTrainingData.FromPhantoms(cfg);
        var dir = TestPaths.NewTempDir("finding-loss");
        LatentDiffusionRuns.TrainVae(cfg, data, dir);
        var model = LatentDiffusionModel.Build(cfg, data.Prompts, Path.Combine(dir, LatentDiffusionModel.VaeFolder));
        var batch = DiffusionWalkthrough.Batch(model, data, 4);
        var objective = DenoisingObjective.For(cfg);
        float Loss(Tensor? w)
        {
            using var _ = no_grad();
            using var g = new TorchSharp.torch.Generator(11);
            return objective.Loss(model, batch with { Weights = w }, g).item<float>();
        }
        long h = batch.Latents.shape[2];
        Assert.Equal(Loss(null), Loss(ones(4, 1, h, h)), 5);
        var uneven = ones(4, 1, h, h);
        uneven[.., .., 0, 0] = tensor(50f);
        Assert.NotEqual(Loss(null), Loss(uneven), 3);

        // Training: refuses data without masks, trains with them, and pins the weight in experiment.json.
        var ex = Assert.Throws<ArgumentException>(() => LatentDiffusionRuns.TrainLdm(cfg, data with { FindingMasks = null }, dir));
        Assert.Contains("FindingLossWeight", ex.Message);
        // Data without masks can still train the config, with the weighting off and said so (what train ldm does).
        var said = new List<string>();
        Assert.Null((data with { FindingMasks = null }).Fit(cfg, said.Add).FindingLossWeight);
        Assert.Contains("no finding masks", Assert.Single(said));
        Assert.Same(cfg, data.Fit(cfg, said.Add));
        Assert.Single(said);
        var run = LatentDiffusionRuns.TrainLdm(cfg, data, dir);
        Assert.Equal(3, run.History.Steps);
        Assert.True(double.IsFinite(run.History.Loss[^1]));
        Assert.Equal(4.0, LatentDiffusionRuns.LoadConfig(dir).FindingLossWeight);
        Assert.DoesNotContain(nameof(LdmExperimentConfig.FindingLossWeight), System.Text.Json.JsonSerializer.Serialize(new LdmExperimentConfig(), SafeTensors.ConfigJsonOptions));
        Assert.Contains("FindingLossWeight", Assert.Throws<ArgumentException>(() => (cfg with { FindingLossWeight = -1 }).Validate()).Message);
        TestPaths.DeleteQuietly(dir);
    }
}
