using RoentGen.Interop.Diffusers;

namespace RoentGen.Tests.Interop.Diffusers;

/// <summary>The real SD v1-4 and 2.1-base configs parse completely; derived facts and parameter counts; malformed configs fail clearly.</summary>
public class DiffusersConfigTests
{
    private static string Fixture(string model, params string[] parts)
    {
        Skip.If(TestPaths.StableDiffusionFixtures is null, "../shared/fixtures/stable-diffusion is not beside this clone");
        return Path.Combine([TestPaths.StableDiffusionFixtures!, model, .. parts]);
    }

    [SkippableTheory]
    [InlineData("sd-v1-4")]
    [InlineData("sd-2-1-base")]
    public void Every_field_of_the_real_configs_is_understood(string model)
    {
        var index = ModelIndex.Load(Fixture(model, "model_index.json"));
        var unet = UNet2DConditionConfig.Load(Fixture(model, "unet", "config.json"));
        var vae = AutoencoderKLConfig.Load(Fixture(model, "vae", "config.json"));
        var text = ClipTextConfig.Load(Fixture(model, "text_encoder", "config.json"));
        var sched = SchedulerConfig.Load(Fixture(model, "scheduler", "scheduler_config.json"));
        foreach (var report in new[] { index.Report, unet.Report, vae.Report, text.Report, sched.Report })
        {
            Assert.Empty(report.UnknownKeys);
            Assert.Empty(report.Unsupported);
        }
        Assert.Equal("StableDiffusionPipeline", index.ClassName);
        Assert.Equal(("diffusers", "UNet2DConditionModel"), (index.Component("unet")!.Library, index.Component("unet")!.ClassName));
        Assert.Equal(("transformers", "CLIPTokenizer"), (index.Component("tokenizer")!.Library, index.Component("tokenizer")!.ClassName));
        Assert.Equal("PNDMScheduler", sched.ClassName);
        Assert.Equal(("scaled_linear", 0.00085, 0.012, 1000), (sched.BetaSchedule, sched.BetaStart, sched.BetaEnd, sched.NumTrainTimesteps));
        Assert.Equal((1, false, "epsilon", true), (sched.StepsOffset, sched.SetAlphaToOneOrDefault, sched.PredictionType, sched.SkipPrkSteps));
        Assert.False(sched.ClipSample);
        Assert.Equal([320, 640, 1280, 1280], unet.BlockOutChannels);
        Assert.Equal([1, 1, 1, 1], unet.TransformerLayersPerBlock);
        Assert.Equal("UNetMidBlock2DCrossAttn", unet.MidBlockType);
        Assert.False(unet.UpcastAttention);
        Assert.Equal((3, 3, 4), (vae.InChannels, vae.OutChannels, vae.LatentChannels));
        Assert.Equal(0.18215, vae.ScalingFactor);
    }

    [SkippableFact]
    public void Sd_1_has_8_heads_per_level_and_sd_2_head_dim_64_with_linear_projections()
    {
        var u1 = UNet2DConditionConfig.Load(Fixture("sd-v1-4", "unet", "config.json"));
        var u2 = UNet2DConditionConfig.Load(Fixture("sd-2-1-base", "unet", "config.json"));
        Assert.Equal([8, 8, 8, 8], u1.HeadsPerLevel);
        Assert.Equal([40, 80, 160, 160], u1.HeadDimPerLevel);
        Assert.Equal([5, 10, 20, 20], u2.HeadsPerLevel);
        Assert.Equal([64, 64, 64, 64], u2.HeadDimPerLevel);
        Assert.Equal((768, false), (u1.CrossAttentionDim, u1.UseLinearProjection));
        Assert.Equal((1024, true), (u2.CrossAttentionDim, u2.UseLinearProjection));
        Assert.Equal([true, true, true, false], Enumerable.Range(0, 4).Select(u1.DownHasAttention));
        Assert.Equal([false, true, true, true], Enumerable.Range(0, 4).Select(u1.UpHasAttention));

        var t1 = ClipTextConfig.Load(Fixture("sd-v1-4", "text_encoder", "config.json"));
        var t2 = ClipTextConfig.Load(Fixture("sd-2-1-base", "text_encoder", "config.json"));
        Assert.Equal((true, 12, 768, 12, 64), (t1.UsesQuickGelu, t1.NumHiddenLayers, t1.HiddenSize, t1.NumAttentionHeads, t1.HeadDim));
        Assert.Equal((false, 23, 1024, 16, 64), (t2.UsesQuickGelu, t2.NumHiddenLayers, t2.HiddenSize, t2.NumAttentionHeads, t2.HeadDim));

        Assert.True(AutoencoderKLConfig.Load(Fixture("sd-v1-4", "vae", "config.json")).ScalingFactorFromFile);
        var v2 = AutoencoderKLConfig.Load(Fixture("sd-2-1-base", "vae", "config.json"));
        Assert.False(v2.ScalingFactorFromFile);                              // absent in 2.1-base's file: diffusers' default
        Assert.Equal(AutoencoderKLConfig.DefaultScalingFactor, v2.ScalingFactor);
        Assert.False(ModelIndex.Load(Fixture("sd-2-1-base", "model_index.json")).RequiresSafetyChecker);
        Assert.Equal((null, null), (ModelIndex.Load(Fixture("sd-2-1-base", "model_index.json")).Component("safety_checker")!.Library,
                                    ModelIndex.Load(Fixture("sd-2-1-base", "model_index.json")).Component("safety_checker")!.ClassName));
    }

    [SkippableFact]
    public void Parameter_counts_from_the_v1_4_configs_equal_the_widely_cited_ones()
    {
        Assert.Equal(859_520_964, ParameterCounts.UNet(UNet2DConditionConfig.Load(Fixture("sd-v1-4", "unet", "config.json"))));
        Assert.Equal(83_653_863, ParameterCounts.Vae(AutoencoderKLConfig.Load(Fixture("sd-v1-4", "vae", "config.json"))));
        Assert.Equal(123_060_480, ParameterCounts.ClipText(ClipTextConfig.Load(Fixture("sd-v1-4", "text_encoder", "config.json"))));
        // SD 2.1-base: same VAE; the UNet differs only by the wider cross-attention keys/values (1024 vs 768 inputs).
        var u1 = UNet2DConditionConfig.Load(Fixture("sd-v1-4", "unet", "config.json"));
        var u2 = UNet2DConditionConfig.Load(Fixture("sd-2-1-base", "unet", "config.json"));
        // Transformer widths: 2 per down level with attention, 1 in the middle, 3 per up level with attention.
        long widths = 2 * (320 + 640 + 1280) + 1280 + 3 * (1280 + 640 + 320);
        Assert.Equal(2L * (1024 - 768) * widths, ParameterCounts.UNet(u2) - ParameterCounts.UNet(u1));   // to_k and to_v of each attn2
        Assert.Equal(83_653_863, ParameterCounts.Vae(AutoencoderKLConfig.Load(Fixture("sd-2-1-base", "vae", "config.json"))));
    }

    private const string TinyUnet = """
        {"_class_name": "UNet2DConditionModel", "block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "attention_head_dim": 8, "cross_attention_dim": 16, "norm_num_groups": 8, "layers_per_block": 1}
        """;

    [Fact]
    public void Defaults_fill_absent_keys_and_unknown_or_non_default_keys_are_reported()
    {
        var u = UNet2DConditionConfig.Parse("tiny.json", TinyUnet);
        Assert.True(u.Report.IsClean);
        Assert.Equal((4, 4, 8, "UNetMidBlock2DCrossAttn"), (u.InChannels, u.OutChannels, u.NormNumGroups, u.MidBlockType));
        Assert.Equal([4, 8], u.HeadDimPerLevel);
        var withExtras = UNet2DConditionConfig.Parse("tiny.json", TinyUnet.Replace("\"layers_per_block\": 1", "\"layers_per_block\": 1, \"brand_new\": 3, \"conv_in_kernel\": 3, \"addition_embed_type\": \"text\", \"mid_block_type\": null"));
        Assert.Equal(["brand_new"], withExtras.Report.UnknownKeys);
        Assert.Single(withExtras.Report.Unsupported);
        Assert.Contains("addition_embed_type", withExtras.Report.Unsupported[0]);
        Assert.Null(withExtras.MidBlockType);
        var e = Assert.Throws<InvalidDataException>(() => ParameterCounts.UNet(withExtras));
        Assert.Contains("addition_embed_type", e.Message);
        // num_attention_heads, when given, is the head count.
        Assert.Equal([2, 4], UNet2DConditionConfig.Parse("t.json", TinyUnet.Replace("\"attention_head_dim\": 8", "\"num_attention_heads\": [2, 4]")).HeadsPerLevel);
    }

    [Fact]
    public void Malformed_configs_name_the_file_and_key()
    {
        var truncated = Assert.Throws<InvalidDataException>(() => UNet2DConditionConfig.Parse("unet/config.json", TinyUnet[..60]));
        Assert.Contains("unet/config.json", truncated.Message);
        Assert.Contains("not valid JSON", truncated.Message);
        var wrongType = Assert.Throws<InvalidDataException>(() => UNet2DConditionConfig.Parse("unet/config.json", TinyUnet.Replace("\"cross_attention_dim\": 16", "\"cross_attention_dim\": \"16\"")));
        Assert.Contains("'cross_attention_dim'", wrongType.Message);
        Assert.Contains("whole number", wrongType.Message);
        var missing = Assert.Throws<InvalidDataException>(() => AutoencoderKLConfig.Parse("vae/config.json", """{"down_block_types": [], "up_block_types": []}"""));
        Assert.Contains("vae/config.json: required key 'block_out_channels'", missing.Message);
        var perLevel = UNet2DConditionConfig.Parse("u.json", TinyUnet.Replace("\"cross_attention_dim\": 16", "\"cross_attention_dim\": [16, 32]"));
        Assert.Contains(perLevel.Report.Unsupported, u => u.StartsWith("cross_attention_dim"));
        Assert.True(UNet2DConditionConfig.Parse("u.json", TinyUnet.Replace("\"layers_per_block\": 1", "\"layers_per_block\": [1, 1]")).Report.IsClean);
        var lengths = Assert.Throws<InvalidDataException>(() => UNet2DConditionConfig.Parse("u.json", TinyUnet.Replace("\"attention_head_dim\": 8", "\"attention_head_dim\": [8, 8, 8]")));
        Assert.Contains("'attention_head_dim' lists 3 values", lengths.Message);
        var heads = Assert.Throws<InvalidDataException>(() => UNet2DConditionConfig.Parse("u.json", TinyUnet.Replace("\"attention_head_dim\": 8", "\"attention_head_dim\": 5")));
        Assert.Contains("not divisible into 5 heads", heads.Message);
        var act = ClipTextConfig.Parse("text_encoder/config.json", """{"hidden_act": "relu", "hidden_size": 64, "num_attention_heads": 4}""");
        Assert.Contains(act.Report.Unsupported, u => u.StartsWith("hidden_act"));
        var sched = Assert.Throws<InvalidDataException>(() => SchedulerConfig.Parse("scheduler_config.json", """{"beta_start": 0.1}"""));
        Assert.Contains("'_class_name'", sched.Message);
        Assert.Throws<InvalidDataException>(() => ModelIndex.Parse("model_index.json", "[1, 2]"));
        var dup = Assert.Throws<InvalidDataException>(() => ModelIndex.Parse("model_index.json", """{"_class_name": "A", "_class_name": "B"}"""));
        Assert.Contains("appears twice", dup.Message);
        Assert.Throws<FileNotFoundException>(() => SchedulerConfig.Load(Path.Combine(TestPaths.NewTempDir(), "scheduler_config.json")));
    }
}
