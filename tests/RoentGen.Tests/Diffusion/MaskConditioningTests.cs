using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using RoentGen.Synthetic;
using RoentGen.Vision.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

/// <summary>
/// Mask-conditioned generation: the ControlNet and the input-concat model start out computing the base UNet exactly; the
/// ControlNet trains without touching the base; runs resume; generation is deterministic and batch-independent; a saved
/// model loads back; mask adherence scores every structure.
/// </summary>
/// <summary>Shared tiny models of the mask-conditioning tests.</summary>
internal static class TinyMaskModels
{
    /// <summary>One tiny trained LDM folder (32 px, latent 16), trained once per test run.</summary>
    public static readonly Lazy<string> Ldm = new(() =>
    {
        var dir = TestPaths.NewTempDir("mask-ldm");
        var cfg = LdmExperimentConfig.Tiny with { TrainImages = 8, VaeSteps = 2, LdmSteps = 2, Precision = RoentGen.Platform.Precision.Float32 };
        LatentDiffusionRuns.EnsureTrained(cfg, LdmTrainingData.FromPhantoms(cfg), dir);
        return dir;
    });
}

[Collection(ProcessStateCollection.Name)]
public class MaskConditioningTests
{
    private static readonly string[] Channels = ["lungs", "heart", "pleural_effusion"];

    private static Lazy<string> TinyLdm => TinyMaskModels.Ldm;

    private static MaskConditioningConfig Tiny(MaskConditioningVariant variant) =>
        MaskConditioningConfig.FromPreset("tiny") with { Variant = variant, From = TinyLdm.Value, MaskChannels = Channels };

    private static (Tensor Latents, Tensor T, Tensor Context, Tensor Masks) Inputs(LatentDiffusionModel model, int b = 2)
    {
        using var g = new Generator(seed: 7);
        int s = model.LatentSize * model.Vae.Config.DownsampleFactor;
        var latents = randn([b, model.Vae.Config.LatentChannels, model.LatentSize, model.LatentSize], generator: g);
        var t = tensor(new long[] { 10, 700 }.Take(b).ToArray());
        var context = randn([b, model.MaxTokens, model.TextEncoder.Config.HiddenSize], generator: g);
        var masks = rand([b, Channels.Length, s, s], generator: g).gt(0.5).to(ScalarType.Float32);
        return (latents, t, context, masks);
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static LatentDiffusionModel UntrainedBase()
    {
        var p = TinyPipelines.Untrained(3);
        var sched = LdmExperimentConfig.Tiny.Schedule;
        return new LatentDiffusionModel(p.Vae, p.TextEncoder, p.Tokenizer, p.Unet, sched, p.LatentSize, p.MaxTokens);
    }

    [Fact]
    public void A_new_controlnet_and_scale_zero_give_the_base_unet_output_bit_for_bit_and_a_trained_one_changes_it()
    {
        var baseModel = UntrainedBase();
        var (x, t, ctx, masks) = Inputs(baseModel);
        using var _ = no_grad();
        baseModel.Unet.eval();
        var plain = baseModel.Unet.call(x, t, ctx);
        var model = MaskConditionedModel.Create(baseModel, MaskConditioningVariant.ControlNet, Channels);
        model.Trainable.eval();
        Assert.True(Same(plain, model.Predict(x, t, ctx, masks)), "zero convolutions: the ControlNet must add exactly nothing");
        Assert.True(Same(plain, baseModel.Unet.Forward(x, t, ctx, null)), "no residuals: Forward is forward");
        // Encoder copied from the UNet by name.
        var unetState = baseModel.Unet.state_dict();
        foreach (var (key, value) in model.ControlNet!.state_dict().Where(kv => !kv.Key.StartsWith("controlnet_", StringComparison.Ordinal)))
            Assert.True(Same(value, unetState[key]), key);
        // Non-zero residuals change the output; scale 0 removes them again.
        foreach (var (key, value) in model.ControlNet.state_dict().Where(kv => kv.Key.StartsWith("controlnet_", StringComparison.Ordinal)))
            value.copy_(randn_like(value) * 0.05);
        Assert.False(Same(plain, model.Predict(x, t, ctx, masks)));
        model.ConditioningScale = 0;
        Assert.True(Same(plain, model.Predict(x, t, ctx, masks)));
        Assert.Equal(baseModel.Unet.SkipChannels.Count, model.ControlNet.state_dict().Keys.Count(k => k.StartsWith("controlnet_down_blocks.", StringComparison.Ordinal) && k.EndsWith(".weight", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_widened_unet_starts_equal_to_the_base_unet_whatever_the_masks()
    {
        var baseModel = UntrainedBase();
        var (x, t, ctx, masks) = Inputs(baseModel);
        using var _ = no_grad();
        baseModel.Unet.eval();
        var plain = baseModel.Unet.call(x, t, ctx);
        var model = MaskConditionedModel.Create(baseModel, MaskConditioningVariant.Concat, Channels);
        model.Trainable.eval();
        Assert.Equal(baseModel.Unet.Config.InChannels + Channels.Length, model.ConcatUnet!.Config.InChannels);
        var a = model.Predict(x, t, ctx, masks);
        var b = model.Predict(x, t, ctx, zeros_like(masks));
        // The extra input channels have zero weights: the sums differ from the base's only in float rounding order.
        Assert.True(a.allclose(plain, rtol: 0, atol: 1e-5), $"max difference {(a - plain).abs().max().item<float>()}");
        Assert.True(a.allclose(b, rtol: 0, atol: 1e-5));
    }

    [Fact]
    public void Controlnet_training_leaves_the_base_unchanged_resumes_like_an_uninterrupted_run_and_loads_back()
    {
        var cfg = Tiny(MaskConditioningVariant.ControlNet);
        var baseBefore = LatentDiffusionModel.Load(TinyLdm.Value);
        var whole = TestPaths.NewTempDir("mask-cn");
        var a = MaskConditioningRuns.Train(cfg, whole);
        Assert.Equal(cfg.Steps, a.StepsTrained);
        foreach (var (key, value) in baseBefore.Unet.state_dict())
            Assert.True(Same(value, a.Model.Base.Unet.state_dict()[key]), $"base UNet {key} changed");
        Assert.True(a.Model.ControlNet!.state_dict().Where(kv => kv.Key.StartsWith("controlnet_down_blocks", StringComparison.Ordinal)).Any(kv => kv.Value.abs().sum().item<float>() > 0),
            "the zero convolutions should have moved");

        // Interrupted after the first step, then resumed: same losses as the whole run.
        var split = TestPaths.NewTempDir("mask-cn");
        using var cancel = new CancellationTokenSource();
        var kill = new MaskConditioningRunOptions { CheckpointEvery = 1, Cancellation = cancel.Token, AfterStep = s => { if (s == 0) cancel.Cancel(); } };
        Assert.Throws<OperationCanceledException>(() => MaskConditioningRuns.Train(cfg, split, kill));
        var b = MaskConditioningRuns.Train(cfg, split, new MaskConditioningRunOptions { CheckpointEvery = 1 });
        Assert.Equal(cfg.Steps - 1, b.StepsTrained);
        Assert.Equal(a.History.Loss, b.History.Loss);
        Assert.True(MaskConditioningRuns.Train(cfg, split).Skipped);
        Assert.Contains("Lr", Assert.Throws<RoentGen.Platform.RunStateException>(() => MaskConditioningRuns.Train(cfg with { Lr = 1e-2 }, split)).Message);

        // Load round trip: the same images from the saved model as from the trained one.
        var conditions = MaskConditioningData.PhantomConditions(2, 32, 1, 100);
        var trained = new MaskConditioningPipeline(a.Model) { Steps = 2 };
        var loaded = (MaskConditioningPipeline)MaskConditionedModels.Load(whole);
        loaded.Steps = 2;
        Assert.Equal(32, loaded.ImageSize);
        Assert.Equal(Channels, loaded.MaskChannels);
        var x = trained.Generate(conditions, 5);
        var y = loaded.Generate(conditions, 5);
        for (int i = 0; i < x.Count; i++) Assert.Equal(x[i].Pixels, y[i].Pixels);
    }

    [Fact]
    public void Concat_training_fine_tunes_the_widened_unet_and_generation_is_deterministic_and_batch_independent()
    {
        var dir = TestPaths.NewTempDir("mask-concat");
        var run = MaskConditioningRuns.Train(Tiny(MaskConditioningVariant.Concat), dir);
        Assert.Equal(MaskConditioningVariant.Concat, run.Model.Variant);
        var generator = MaskConditionedModels.Load(dir);
        var pipeline = (MaskConditioningPipeline)generator;
        pipeline.Steps = 2;
        var conditions = MaskConditioningData.PhantomConditions(3, 32, 1, 200);
        var calls = new List<(int, int)>();
        var all = generator.Generate(conditions, 11, (d, n) => calls.Add((d, n)));
        Assert.Equal(3, all.Count);
        Assert.Equal((3, 3), calls[^1]);
        Assert.All(all, img => { Assert.Equal(32, img.Width); Assert.All(img.Pixels, v => Assert.InRange(v, 0f, 1f)); });
        var again = generator.Generate(conditions, 11);
        for (int i = 0; i < 3; i++) Assert.Equal(all[i].Pixels, again[i].Pixels);
        // Image i depends only on condition i and seed + i.
        pipeline.BatchSize = 1;
        var alone = generator.Generate([conditions[2]], 13);
        var diff = all[2].Pixels.Zip(alone[0].Pixels, (p, q) => Math.Abs(p - q)).Max();
        Assert.True(diff < 1e-4, $"image 2 alone differs by {diff}");
        Assert.NotEqual(all[0].Pixels, all[1].Pixels);
    }

    [Fact]
    public void A_folder_without_a_mask_model_gets_an_error_that_says_what_it_lacks()
    {
        var dir = TestPaths.NewTempDir("mask-none");
        var e = Assert.Throws<FileNotFoundException>(() => MaskConditionedModels.Load(dir));
        Assert.Contains("is not a mask-conditioned model", e.Message);
        Assert.Contains(MaskConditionedModel.IndexFile, e.Message);
        Assert.Contains("roentgen masks train", e.Message);
        var noLdm = Assert.Throws<FileNotFoundException>(() => MaskConditioningRuns.Train(MaskConditioningConfig.FromPreset("tiny") with { From = dir }, TestPaths.NewTempDir()));
        Assert.Contains("no trained latent diffusion model", noLdm.Message);
    }

    [Fact]
    public void Mask_adherence_scores_each_structure_and_the_phantoms_own_images_follow_their_masks_best()
    {
        var segRun = SegmentationRuns.Train(SegmentationConfig.FromPreset("tiny") with { Size = 32, Steps = 20, TrainImages = 24 }, TestPaths.NewTempDir("mask-seg"));
        using var segmenter = Segmenter.Load(segRun.Folder);
        var world = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 1 });
        var cases = world.Generate(300, 6);
        var conditions = cases.Select(MaskCondition.FromCase).ToList();
        var own = MaskAdherence.OnPhantoms(cases, segmenter);
        Assert.Equal(MaskAdherence.PhantomsName, own.Generator);
        var blank = MaskAdherence.Score("blank", cases.Select(_ => new GrayImage(32, 32)).ToList(), conditions, segmenter);
        Assert.Equal(["lungs", "heart"], own.Structures.Select(s => s.Structure));
        Assert.Equal(6, own["lungs"].Images);
        Assert.InRange(own["lungs"].MeanDice, 0, 1);
        Assert.True(own["lungs"].MeanDice > blank["lungs"].MeanDice || double.IsNaN(blank["lungs"].MeanDice), $"{own["lungs"].MeanDice} vs {blank["lungs"].MeanDice}");

        var text = new TextOnlyMaskBaseline(LatentDiffusionRuns.LoadPipeline(TinyLdm.Value)) { Steps = 2 };
        Assert.Empty(text.MaskChannels);
        var generated = MaskAdherence.Evaluate("text-only", text, conditions, segmenter, 3);
        Assert.Equal(6, generated.Images);
        var table = MaskAdherence.Table([own, generated]);
        Assert.Equal(4, table.Rows.Count);
        var json = MaskAdherence.ToJson([own, generated]);
        Assert.Contains("\"text-only\"", json);
        Assert.Contains("\"mean_dice\"", json);
    }
}
