using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using RoentGen.Diffusion;
using RoentGen.Interop;
using RoentGen.Interop.Diffusers;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Interop.Diffusers;

/// <summary>
/// diffusers folders at tiny widths, written in diffusers' exact key names (<see cref="SdFixture"/>), load into the
/// library's models, sample, save through <see cref="DiffusersPipelineWriter"/> and reload to identical images; every
/// malformed folder fails with an error naming what is wrong.
/// </summary>
[Collection(ProcessStateCollection.Name)]
public class DiffusersPipelineTests
{
    private static readonly SampleRequest Request = new()
    {
        Prompts = ["small left pleural effusion", "no pneumothorax"], Steps = 2, Seed = 3, GuidanceScale = 3, Scheduler = SchedulerKind.Ddim,
    };

    private static string Folder(SdLayout layout, long seed = 1)
    {
        var dir = TestPaths.NewTempDir("sd-fixture");
        SdFixture.Write(dir, layout, seed);
        return dir;
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public static TheoryData<string> Layouts => new() { "sd1", "sd2" };

    private static SdLayout Layout(string name) => name == "sd1" ? SdFixture.Sd1 : SdFixture.Sd2;

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Loads_samples_saves_and_reloads_to_identical_images(string name)
    {
        using var scope = NewDisposeScope();
        var dir = Folder(Layout(name));
        var pipe = DiffusersPipelineLoader.Load(dir);
        Assert.Equal(8, pipe.LatentSize);
        Assert.Equal(16, pipe.MaxTokens);
        Assert.Equal((3, 3, AutoencoderKLConfig.DefaultScalingFactor), (pipe.Vae.Config.InChannels, pipe.Vae.Config.OutChannels, pipe.Vae.Config.ScalingFactor));
        var images = pipe.Sample(Request);
        Assert.Equal([2L, 1, 32, 32], images.shape);                     // 3 decoded channels averaged to one
        Assert.True(images.isfinite().all().item<bool>());
        Assert.True(images.std().item<float>() > 1e-3, "the sampled images are flat");
        Assert.False(Same(images[0], images[1]), "two prompts and seeds gave the same image");

        var saved = TestPaths.NewTempDir("sd-export");
        DiffusersPipelineWriter.Save(pipe, saved);
        var again = DiffusersPipelineLoader.Load(saved);
        Assert.True(Same(images, again.Sample(Request)), "the reloaded pipeline samples differently");
        Assert.Equal(pipe.Schedule.Config, again.Schedule.Config);
        Assert.Equal(pipe.Tokenizer.PadId, again.Tokenizer.PadId);
        // Every key the writer wrote is diffusers' own (the fixture's walk), with its shape.
        var unetJson = SdFixture.ReadJson(Path.Combine(dir, "unet", "config.json"));
        var written = SafeTensors.ReadHeader(Path.Combine(saved, "unet", "diffusion_pytorch_model.safetensors")).Tensors.ToDictionary(t => t.Name, t => t.Shape);
        Assert.Equal(SdFixture.UNetKeys(unetJson).OrderBy(k => k.Item1, StringComparer.Ordinal).Select(k => $"{k.Item1} {StateDict.FormatShape(k.Item2)}"),
                     written.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key} {StateDict.FormatShape(k.Value)}"));
        // And the configs it wrote parse with nothing unknown or unsupported.
        var summary = DiffusersFolder.Inspect(saved);
        Assert.Empty(summary.Unknown);
        Assert.Empty(summary.Unsupported);
        Assert.Equal(ParameterCounts.UNet(summary.Unet!), pipe.Unet.parameters().Sum(p => p.numel()));
        Assert.Equal(ParameterCounts.Vae(summary.Vae!), pipe.Vae.parameters().Sum(p => p.numel()));
        Assert.Equal(ParameterCounts.ClipText(summary.TextEncoder!), pipe.TextEncoder.parameters().Sum(p => p.numel()));
        Directory.Delete(dir, true);
        Directory.Delete(saved, true);
    }

    [Fact]
    public void Sd1_and_sd2_configs_map_to_their_model_options()
    {
        using var scope = NewDisposeScope();
        var dir1 = Folder(SdFixture.Sd1);
        var dir2 = Folder(SdFixture.Sd2);
        var p1 = DiffusersPipelineLoader.Load(dir1);
        var p2 = DiffusersPipelineLoader.Load(dir2);
        Assert.Equal([2, 2, 2], Enumerable.Range(0, 3).Select(p1.Unet.Config.Heads));
        Assert.Equal([2, 4, 4], Enumerable.Range(0, 3).Select(p2.Unet.Config.Heads));
        Assert.Equal([1, 2, 2], Enumerable.Range(0, 3).Select(p2.Unet.Config.TransformerDepth));
        Assert.Equal((false, false), (p1.Unet.Config.UseLinearProjection, p1.Unet.Config.UpcastAttention));
        Assert.Equal((true, true), (p2.Unet.Config.UseLinearProjection, p2.Unet.Config.UpcastAttention));
        Assert.Equal(("quick_gelu", "gelu"), (p1.TextEncoder.Config.HiddenAct, p2.TextEncoder.Config.HiddenAct));
        Assert.Equal((PredictionType.Epsilon, PredictionType.VPrediction), (p1.Schedule.Config.Prediction, p2.Schedule.Config.Prediction));
        Assert.Equal((BetaSchedule.ScaledLinear, BetaSchedule.Linear), (p1.Schedule.Config.Schedule, p2.Schedule.Config.Schedule));
        Assert.Equal((TimestepSpacing.Leading, 1, false), (p1.Schedule.Config.Spacing, p1.Schedule.Config.StepsOffset, p1.Schedule.Config.SetAlphaToOne));
        Assert.Equal(p1.Tokenizer.EndId, p1.Tokenizer.PadId);
        Assert.Equal("!", p2.Tokenizer.TokenOf(p2.Tokenizer.PadId));
        Assert.Equal(p1.Tokenizer.EndId, p1.TextEncoder.Config.EndTokenId);
        // SD's leading spacing with offset 1 (diffusers: 50 steps visit 981, 961, ..., 1).
        var ddim = NoiseScheduler.Create(SchedulerKind.Ddim, p1.Schedule);
        ddim.SetTimesteps(50);
        Assert.Equal(981, ddim.Timesteps[0]);
        Assert.Equal(1, ddim.Timesteps[^1]);
        Directory.Delete(dir1, true);
        Directory.Delete(dir2, true);
    }

    [Fact]
    public void Fp16_variant_and_sharded_weights_load_to_the_same_model()
    {
        using var scope = NewDisposeScope();
        var dir = Folder(SdFixture.Sd2);
        var unetDir = Path.Combine(dir, "unet");
        var full = SafeTensors.Load(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors")).Tensors;
        // Round every weight to float16 first, so that the float32 and float16 files hold the same values.
        foreach (var comp in new[] { "unet", "vae" })
        {
            var path = Path.Combine(dir, comp, "diffusion_pytorch_model.safetensors");
            var t = SafeTensors.Load(path).Tensors;
            SafeTensors.Save(path, t.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float16).to(ScalarType.Float32)));
            SafeTensors.Save(Path.Combine(dir, comp, "diffusion_pytorch_model.fp16.safetensors"), t.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float16)));
        }
        var te = SafeTensors.Load(Path.Combine(dir, "text_encoder", "model.safetensors")).Tensors;
        SafeTensors.Save(Path.Combine(dir, "text_encoder", "model.safetensors"), te.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.BFloat16).to(ScalarType.Float32)));
        SafeTensors.Save(Path.Combine(dir, "text_encoder", "model.fp16.safetensors"), te.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.BFloat16)));

        var f32 = DiffusersPipelineLoader.Load(dir);
        var f16 = DiffusersPipelineLoader.Load(dir, new DiffusersLoadOptions { Variant = "fp16" });
        Assert.Equal(ScalarType.Float32, f16.Unet.parameters().First().dtype);
        var a = f32.Sample(Request);
        Assert.True(Same(a, f16.Sample(Request)), "the fp16 variant (converted to float32) samples differently from the same values in float32");

        // Shard the UNet: two files behind an index; the single file goes away.
        var unet = SafeTensors.Load(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors")).Tensors;
        var names = unet.Keys.Order(StringComparer.Ordinal).ToList();
        var map = new JsonObject();
        for (int s = 0; s < 2; s++)
        {
            var shard = $"diffusion_pytorch_model-0000{s + 1}-of-00002.safetensors";
            var part = names.Where((_, i) => i % 2 == s).ToDictionary(k => k, k => unet[k]);
            SafeTensors.Save(Path.Combine(unetDir, shard), part);
            foreach (var k in part.Keys) map[k] = shard;
        }
        File.Delete(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors"));
        SdFixture.WriteJson(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map });
        Assert.True(Same(a, DiffusersPipelineLoader.Load(dir).Sample(Request)), "the sharded UNet samples differently");
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Weights_convert_to_the_chosen_dtype_and_half_precision_samples_near_float32()
    {
        using var scope = NewDisposeScope();
        var dir = Folder(SdFixture.Sd2);
        var f32 = DiffusersPipelineLoader.Load(dir);
        var bf16 = DiffusersPipelineLoader.Load(dir, new DiffusersLoadOptions { DType = ScalarType.BFloat16 });
        foreach (var m in new nn.Module[] { bf16.Unet, bf16.Vae, bf16.TextEncoder })
            RoentGen.Tests.Training.MixedPrecisionTests.AssertBFloat16ExceptRepairedConvolutions(m);
        var source = SafeTensors.Load(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors")).Tensors["conv_in.weight"];
        Assert.True(bf16.Unet.state_dict()["conv_in.weight"].eq(source.to(ScalarType.BFloat16)).all().item<bool>());
        var a = f32.Sample(Request);
        var b = bf16.Sample(Request);
        Assert.Equal(ScalarType.Float32, b.dtype);
        Assert.True(b.isfinite().all().item<bool>());
        double diff = (a - b).abs().mean().item<float>();
        Assert.True(diff < 0.1, $"bfloat16 sampling is {diff} from float32 on average");
        Assert.Throws<ArgumentException>(() => DiffusersPipelineLoader.Load(dir, new DiffusersLoadOptions { DType = ScalarType.Int32 }));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Older_vae_attention_names_load_in_linear_or_1x1_conv_shapes_but_not_beside_the_new_names()
    {
        using var scope = NewDisposeScope();
        var dir = Folder(SdFixture.Sd1);                                     // written with query/key/value/proj_attn
        var path = Path.Combine(dir, "vae", "diffusion_pytorch_model.safetensors");
        var vae = SafeTensors.Load(path).Tensors;
        Assert.Contains("encoder.mid_block.attentions.0.query.weight", vae.Keys);
        var linear = DiffusersPipelineLoader.Load(dir);
        Assert.True(linear.Vae.state_dict()["decoder.mid_block.attentions.0.to_out.0.weight"].eq(vae["decoder.mid_block.attentions.0.proj_attn.weight"]).all().item<bool>());
        var a = linear.Sample(Request);
        SafeTensors.Save(path, vae.ToDictionary(kv => kv.Key, kv => kv.Key.Contains("mid_block.attentions.0.") && kv.Key.EndsWith(".weight") && kv.Value.dim() == 2
            ? kv.Value.unsqueeze(-1).unsqueeze(-1) : kv.Value));
        Assert.True(Same(a, DiffusersPipelineLoader.Load(dir).Sample(Request)), "1x1-conv-shaped attention weights load differently");
        vae["encoder.mid_block.attentions.0.to_q.weight"] = vae["encoder.mid_block.attentions.0.query.weight"];
        SafeTensors.Save(path, vae);
        var e = Assert.Throws<InvalidDataException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains("'encoder.mid_block.attentions.0.query.weight'", e.Message);
        Assert.Contains("'encoder.mid_block.attentions.0.to_q.weight'", e.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void A_missing_component_folder_is_named()
    {
        var dir = Folder(SdFixture.Sd1);
        Directory.Delete(Path.Combine(dir, "vae"), true);
        var e = Assert.Throws<FileNotFoundException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains(Path.Combine(dir, "vae"), e.Message);
        Assert.Contains("missing", e.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Missing_unexpected_and_misshaped_keys_of_every_component_are_listed_in_one_error()
    {
        using var scope = NewDisposeScope();
        var dir = Folder(SdFixture.Sd1);
        var unetPath = Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors");
        var unet = SafeTensors.Load(unetPath).Tensors;
        unet["conv_in.weight"] = zeros(16, 4, 5, 5);
        unet.Remove("mid_block.attentions.0.proj_in.bias");
        unet["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias"] = zeros(16);
        SafeTensors.Save(unetPath, unet);
        var textPath = Path.Combine(dir, "text_encoder", "model.safetensors");
        var text = SafeTensors.Load(textPath).Tensors;
        text.Remove("text_model.final_layer_norm.weight");
        SafeTensors.Save(textPath, text);

        var e = Assert.Throws<DiffusersWeightsMismatchException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains("conv_in.weight: expected [16, 4, 3, 3], found [16, 4, 5, 5]", e.Message);
        Assert.Contains("mid_block.attentions.0.proj_in.bias", e.Message);
        Assert.Contains("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias", e.Message);
        Assert.Contains("text_model.final_layer_norm.weight", e.Message);
        Assert.Equal(["text_encoder", "unet"], e.Reports.Keys.Order());
        Assert.Equal(["mid_block.attentions.0.proj_in.bias"], e.Reports["unet"].MissingKeys);
        Assert.Equal(["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias"], e.Reports["unet"].UnexpectedKeys);
        Assert.False(e.Reports.ContainsKey("vae"));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void An_unknown_dtype_is_named_with_its_key()
    {
        var dir = Folder(SdFixture.Sd1);
        var path = Path.Combine(dir, "vae", "diffusion_pytorch_model.safetensors");
        WriteRawSafetensors(path, "quant_conv.bias", "F8_E4M3", [8], 8);
        var e = Assert.Throws<InvalidDataException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains("F8_E4M3", e.Message);
        Assert.Contains("quant_conv.bias", e.Message);
        Assert.Contains(path, e.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void An_integer_tensor_where_a_weight_belongs_is_refused()
    {
        using var scope = NewDisposeScope();
        var dir = Folder(SdFixture.Sd1);
        var path = Path.Combine(dir, "vae", "diffusion_pytorch_model.safetensors");
        var vae = SafeTensors.Load(path).Tensors;
        vae["quant_conv.bias"] = zeros(8, dtype: ScalarType.Int64);
        SafeTensors.Save(path, vae);
        var e = Assert.Throws<DiffusersWeightsMismatchException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains("vae: tensor 'quant_conv.bias' has dtype Int64; expected a floating-point weight", e.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void A_shard_index_pointing_nowhere_is_named()
    {
        using var scope = NewDisposeScope();
        var dir = Folder(SdFixture.Sd1);
        var unetDir = Path.Combine(dir, "unet");
        var keys = SafeTensors.ReadHeader(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors")).Tensors.Select(t => t.Name).ToList();
        File.Move(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors"), Path.Combine(unetDir, "diffusion_pytorch_model-00001-of-00002.safetensors"));
        var map = new JsonObject();
        foreach (var k in keys) map[k] = "diffusion_pytorch_model-00001-of-00002.safetensors";
        map["conv_out.bias"] = "diffusion_pytorch_model-00002-of-00002.safetensors";
        SdFixture.WriteJson(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors.index.json"), new JsonObject { ["weight_map"] = map });
        var e = Assert.Throws<InvalidDataException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains("diffusion_pytorch_model-00002-of-00002.safetensors", e.Message);
        Assert.Contains("does not exist", e.Message);

        // A shard that exists but lacks a key its index gives it.
        SafeTensors.Save(Path.Combine(unetDir, "diffusion_pytorch_model-00002-of-00002.safetensors"), new Dictionary<string, Tensor> { ["other"] = zeros(1) });
        var e2 = Assert.Throws<InvalidDataException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains("diffusion_pytorch_model-00001-of-00002.safetensors holds 'conv_out.bias', which weight_map puts in diffusion_pytorch_model-00002-of-00002.safetensors", e2.Message);
        Assert.Contains("holds 'other', which weight_map does not list", e2.Message);

        // A key the index lists that no shard holds.
        map["conv_out.bias"] = "diffusion_pytorch_model-00001-of-00002.safetensors";
        map["not_there.weight"] = "diffusion_pytorch_model-00001-of-00002.safetensors";
        File.Delete(Path.Combine(unetDir, "diffusion_pytorch_model-00002-of-00002.safetensors"));
        SdFixture.WriteJson(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors.index.json"), new JsonObject { ["weight_map"] = map.DeepClone() });
        var e3 = Assert.Throws<InvalidDataException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains("weight_map puts 'not_there.weight' in diffusion_pytorch_model-00001-of-00002.safetensors, which does not hold it", e3.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Pickle_weights_only_are_refused_and_never_opened()
    {
        var dir = Folder(SdFixture.Sd1);
        File.Delete(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors"));
        File.WriteAllText(Path.Combine(dir, "unet", "diffusion_pytorch_model.bin"), "not a pickle: never opened");
        var e = Assert.Throws<InvalidDataException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains("diffusion_pytorch_model.bin: refused", e.Message);
        Assert.Contains("only pickle weights", e.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void A_missing_variant_says_which_files_there_are()
    {
        var dir = Folder(SdFixture.Sd1);
        var e = Assert.Throws<FileNotFoundException>(() => DiffusersPipelineLoader.Load(dir, new DiffusersLoadOptions { Variant = "fp16" }));
        Assert.Contains("diffusion_pytorch_model.fp16.safetensors", e.Message);
        Assert.Contains("found diffusion_pytorch_model.safetensors", e.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Unsupported_config_values_are_all_refused_in_one_message()
    {
        var layout = SdFixture.Sd1;
        layout.Unet["center_input_sample"] = true;
        layout.Unet["up_block_types"] = new JsonArray("UpBlock2D", "UpBlock2D", "CrossAttnUpBlock2D");
        layout.Scheduler["prediction_type"] = "sample";
        layout.Scheduler["clip_sample"] = true;
        var dir = Folder(layout);
        var e = Assert.Throws<InvalidDataException>(() => DiffusersPipelineLoader.Load(dir));
        Assert.Contains("center_input_sample true is not supported", e.Message);
        Assert.Contains("down level 1 is CrossAttnDownBlock2D but its up level (up_block_types[1]) is UpBlock2D", e.Message);
        Assert.Contains("prediction_type \"sample\" is not supported", e.Message);
        Assert.Contains("clip_sample true is not supported", e.Message);
        Directory.Delete(dir, true);

        // Values the configs' parsers accept but the models' own checks refuse are named with their file too.
        var big = SdFixture.Sd2;
        big.Scheduler["beta_end"] = 1.5;
        big.Unet["norm_eps"] = 2.0;
        var dir2 = Folder(big);
        var e2 = Assert.Throws<InvalidDataException>(() => DiffusersPipelineLoader.Load(dir2));
        Assert.Contains("scheduler/scheduler_config.json: BetaStart and BetaEnd must be finite numbers in (0, 1)", e2.Message);
        Assert.Contains("unet/config.json: NormEps", e2.Message);
        Directory.Delete(dir2, true);
    }

    /// <summary>
    /// The real SD v1-4 and 2.1-base configs, scaled down (widths / 8, same structure: levels, block types, heads or head
    /// width, projections, depth, activations), build models whose parameter counts are part 1's counts from the config
    /// and whose state-dict keys and shapes are diffusers' (the fixture's walk).
    /// </summary>
    [SkippableTheory]
    [InlineData("sd-v1-4")]
    [InlineData("sd-2-1-base")]
    public void Scaled_down_real_configs_build_models_of_the_counted_size_and_diffusers_keys(string model)
    {
        Skip.If(TestPaths.StableDiffusionFixtures is null, "../shared/fixtures/stable-diffusion is not beside this clone");
        using var scope = NewDisposeScope();
        var src = Path.Combine(TestPaths.StableDiffusionFixtures!, model);
        var unet = SdFixture.ReadJson(Path.Combine(src, "unet", "config.json"));
        var heads = unet["attention_head_dim"]!;
        unet["block_out_channels"] = new JsonArray(unet["block_out_channels"]!.AsArray().Select(x => (JsonNode?)(x!.GetValue<int>() / 8)).ToArray());
        unet["cross_attention_dim"] = unet["cross_attention_dim"]!.GetValue<int>() / 8;
        unet["norm_num_groups"] = 8;
        unet["attention_head_dim"] = heads.DeepClone();   // SD 1.x: 8 heads of 5; SD 2.x: 5, 10, 20, 20 heads of 8
        var vae = SdFixture.ReadJson(Path.Combine(src, "vae", "config.json"));
        vae["block_out_channels"] = new JsonArray(vae["block_out_channels"]!.AsArray().Select(x => (JsonNode?)(x!.GetValue<int>() / 8)).ToArray());
        vae["norm_num_groups"] = 8;
        var text = SdFixture.ReadJson(Path.Combine(src, "text_encoder", "config.json"));
        foreach (var k in new[] { "hidden_size", "intermediate_size" }) text[k] = text[k]!.GetValue<int>() / 8;
        text["vocab_size"] = 1024;

        var u = UNet2DConditionConfig.Parse("unet/config.json", unet.ToJsonString());
        var v = AutoencoderKLConfig.Parse("vae/config.json", vae.ToJsonString());
        var t = RoentGen.Interop.Diffusers.ClipTextConfig.Parse("text_encoder/config.json", text.ToJsonString());
        var problems = new List<string>();
        var unetModel = new UNet2DConditionModel(DiffusersPipelineLoader.ToUNetConfig(u, problems));
        var vaeModel = new AutoencoderKL(DiffusersPipelineLoader.ToVaeConfig(v, problems));
        var tokenizer = BpeTokenizer.Train(SdFixture.Corpus, 300);
        var textModel = new ClipTextModel(DiffusersPipelineLoader.ToTextConfig(t, tokenizer, problems));
        Assert.Empty(problems);
        Assert.Equal(ParameterCounts.UNet(u), unetModel.parameters().Sum(p => p.numel()));
        Assert.Equal(ParameterCounts.Vae(v), vaeModel.parameters().Sum(p => p.numel()));
        Assert.Equal(ParameterCounts.ClipText(t), textModel.parameters().Sum(p => p.numel()));
        AssertKeys(SdFixture.UNetKeys(unet), unetModel);
        AssertKeys(SdFixture.VaeKeys(vae), vaeModel);
        AssertKeys(SdFixture.ClipKeys(text), textModel);
    }

    /// <summary>The real full-size configs convert without a refusal and pass the models' own size checks (nothing allocated).</summary>
    [SkippableTheory]
    [InlineData("sd-v1-4")]
    [InlineData("sd-2-1-base")]
    public void Full_size_real_configs_convert_and_pass_the_size_checks(string model)
    {
        Skip.If(TestPaths.StableDiffusionFixtures is null, "../shared/fixtures/stable-diffusion is not beside this clone");
        var src = Path.Combine(TestPaths.StableDiffusionFixtures!, model);
        var summary = DiffusersFolder.Inspect(src);
        var problems = new List<string>();
        var unet = DiffusersPipelineLoader.ToUNetConfig(summary.Unet!, problems);
        var vae = DiffusersPipelineLoader.ToVaeConfig(summary.Vae!, problems);
        var text = DiffusersPipelineLoader.ToTextConfig(summary.TextEncoder!, BpeTokenizer.LoadFolder(Path.Combine(src, "tokenizer")), problems);
        var schedule = DiffusersPipelineLoader.ToScheduleConfig(summary.Scheduler!, problems);
        Assert.Empty(problems);
        unet.Validate();
        vae.Validate();
        text.Validate();
        Assert.Equal(ParameterCounts.ClipText(summary.TextEncoder!), text.ParameterCount());
        Assert.InRange(unet.ParameterEstimate() / ParameterCounts.UNet(summary.Unet!), 0.5, 2);
        Assert.Equal((TimestepSpacing.Leading, 1, false, PredictionType.Epsilon), (schedule.Spacing, schedule.StepsOffset, schedule.SetAlphaToOne, schedule.Prediction));
        Assert.Equal(49407, text.EndTokenId);
        Assert.Equal(model == "sd-v1-4" ? "quick_gelu" : "gelu", text.HiddenAct);
    }

    private static void AssertKeys(IEnumerable<(string Key, long[] Shape)> expected, nn.Module module)
    {
        var want = expected.Select(k => $"{k.Key} {StateDict.FormatShape(k.Shape)}").Order(StringComparer.Ordinal).ToList();
        var have = module.state_dict().Select(kv => $"{kv.Key} {StateDict.FormatShape(kv.Value.shape)}").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(want.Except(have), []);
        Assert.Equal(have.Except(want), []);
    }

    // A safetensors file of one tensor with any dtype name, bytes zero.
    private static void WriteRawSafetensors(string path, string key, string dtype, long[] shape, int bytes)
    {
        var header = $"{{\"{key}\":{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[0,{bytes}]}}}}";
        while (header.Length % 8 != 0) header += " ";
        var h = Encoding.UTF8.GetBytes(header);
        var buf = new byte[8 + h.Length + bytes];
        BinaryPrimitives.WriteUInt64LittleEndian(buf, (ulong)h.Length);
        h.CopyTo(buf, 8);
        File.WriteAllBytes(path, buf);
    }
}
