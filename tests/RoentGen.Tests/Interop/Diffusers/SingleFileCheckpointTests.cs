using System.Text.Json;
using RoentGen.Diffusion;
using RoentGen.Interop;
using RoentGen.Interop.Diffusers;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Interop.Diffusers;

/// <summary>
/// Single-file checkpoints in the original LDM key layout: the key map pinned by hand-written keys (the names diffusers'
/// own conversion uses for SD 1.x and 2.x), tiny SD 1.x / 2.x models written in that layout load to the same images as the
/// diffusers-layout load of the same weights, and every malformed file is refused with each wrong key named.
/// </summary>
[Collection(ProcessStateCollection.Name)]
public class SingleFileCheckpointTests
{
    private static readonly SampleRequest Request = new()
    {
        Prompts = ["small left pleural effusion", "no pneumothorax"], Steps = 2, Seed = 3, GuidanceScale = 3, Scheduler = SchedulerKind.Ddim,
    };

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static LdmKeyMap PresetMap(string preset)
    {
        var c = StableDiffusionConfigs.FromPreset(preset);
        var problems = new List<string>();
        var tok = RoentGen.Text.BpeTokenizer.Train(SdFixture.Corpus, 300);
        var (unet, vae, text, _, _, _) = DiffusersPipelineLoader.ToLibraryConfigs(c.Unet, c.Vae, c.TextEncoder, c.Scheduler, tok, new DiffusersLoadOptions(), problems);
        Assert.Empty(problems);
        return new LdmKeyMap(unet, vae, text);
    }

    private static void AssertMaps(LdmKeyMap map, string ldm, string component, string key, LdmTensorTransform transform = LdmTensorTransform.None)
    {
        var d = map.Map(ldm);
        Assert.NotNull(d);
        var target = Assert.Single(d!.Targets);
        Assert.Equal((component, key, transform), (target.Component, target.Key, target.Transform));
        Assert.Equal(ldm, map.LdmKey(component, key, ldm.StartsWith(LdmKeyMap.OpenClipPrefix, StringComparison.Ordinal) ? LdmTextEncoderKind.OpenClip : LdmTextEncoderKind.Clip));
    }

    [Fact]
    public void Hand_written_sd1_keys_map_to_the_diffusers_names()
    {
        var map = PresetMap("sd15");
        AssertMaps(map, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", "unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight");
        AssertMaps(map, "model.diffusion_model.time_embed.0.weight", "unet", "time_embedding.linear_1.weight");
        AssertMaps(map, "model.diffusion_model.time_embed.2.bias", "unet", "time_embedding.linear_2.bias");
        AssertMaps(map, "model.diffusion_model.input_blocks.0.0.weight", "unet", "conv_in.weight");
        AssertMaps(map, "model.diffusion_model.input_blocks.3.0.op.weight", "unet", "down_blocks.0.downsamplers.0.conv.weight");
        AssertMaps(map, "model.diffusion_model.input_blocks.4.0.in_layers.0.weight", "unet", "down_blocks.1.resnets.0.norm1.weight");
        AssertMaps(map, "model.diffusion_model.input_blocks.4.0.skip_connection.weight", "unet", "down_blocks.1.resnets.0.conv_shortcut.weight");
        AssertMaps(map, "model.diffusion_model.input_blocks.11.0.out_layers.3.bias", "unet", "down_blocks.3.resnets.1.conv2.bias");
        AssertMaps(map, "model.diffusion_model.middle_block.0.emb_layers.1.weight", "unet", "mid_block.resnets.0.time_emb_proj.weight");
        AssertMaps(map, "model.diffusion_model.middle_block.1.proj_in.weight", "unet", "mid_block.attentions.0.proj_in.weight");
        AssertMaps(map, "model.diffusion_model.middle_block.2.in_layers.2.weight", "unet", "mid_block.resnets.1.conv1.weight");
        AssertMaps(map, "model.diffusion_model.output_blocks.2.1.conv.weight", "unet", "up_blocks.0.upsamplers.0.conv.weight");   // level 3 has no attention
        AssertMaps(map, "model.diffusion_model.output_blocks.5.2.conv.weight", "unet", "up_blocks.1.upsamplers.0.conv.weight");
        AssertMaps(map, "model.diffusion_model.output_blocks.11.1.proj_out.weight", "unet", "up_blocks.3.attentions.2.proj_out.weight");
        AssertMaps(map, "model.diffusion_model.output_blocks.6.1.transformer_blocks.0.ff.net.0.proj.weight", "unet", "up_blocks.2.attentions.0.transformer_blocks.0.ff.net.0.proj.weight");
        AssertMaps(map, "model.diffusion_model.out.0.weight", "unet", "conv_norm_out.weight");
        AssertMaps(map, "model.diffusion_model.out.2.bias", "unet", "conv_out.bias");
        AssertMaps(map, "first_stage_model.encoder.mid.attn_1.q.weight", "vae", "encoder.mid_block.attentions.0.to_q.weight", LdmTensorTransform.ConvToLinear);
        AssertMaps(map, "first_stage_model.decoder.mid.attn_1.proj_out.weight", "vae", "decoder.mid_block.attentions.0.to_out.0.weight", LdmTensorTransform.ConvToLinear);
        AssertMaps(map, "first_stage_model.encoder.mid.attn_1.norm.bias", "vae", "encoder.mid_block.attentions.0.group_norm.bias");
        AssertMaps(map, "first_stage_model.encoder.mid.block_2.conv1.weight", "vae", "encoder.mid_block.resnets.1.conv1.weight");
        AssertMaps(map, "first_stage_model.encoder.down.0.downsample.conv.weight", "vae", "encoder.down_blocks.0.downsamplers.0.conv.weight");
        AssertMaps(map, "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight", "vae", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight");
        AssertMaps(map, "first_stage_model.encoder.norm_out.weight", "vae", "encoder.conv_norm_out.weight");
        AssertMaps(map, "first_stage_model.decoder.up.3.block.0.conv1.weight", "vae", "decoder.up_blocks.0.resnets.0.conv1.weight");
        AssertMaps(map, "first_stage_model.decoder.up.0.block.0.nin_shortcut.bias", "vae", "decoder.up_blocks.3.resnets.0.conv_shortcut.bias");
        AssertMaps(map, "first_stage_model.decoder.up.1.upsample.conv.weight", "vae", "decoder.up_blocks.2.upsamplers.0.conv.weight");
        AssertMaps(map, "first_stage_model.post_quant_conv.weight", "vae", "post_quant_conv.weight");
        AssertMaps(map, "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.bias", "text_encoder", "text_model.encoder.layers.11.mlp.fc2.bias");

        Assert.Equal("a buffer of the training schedule, recomputed from the scheduler config", map.Map("alphas_cumprod")!.SkipReason);
        Assert.NotNull(map.Map("model_ema.diffusion_modelinput_blocks00weight")!.SkipReason);
        Assert.NotNull(map.Map("cond_stage_model.transformer.text_model.embeddings.position_ids")!.SkipReason);
        Assert.Null(map.Map("model.diffusion_model.input_blocks.10.1.proj_in.weight"));   // level 3 has no attention
        Assert.Null(map.Map("model.diffusion_model.input_blocks.12.0.op.weight"));         // the deepest level does not downsample
        Assert.Null(map.Map("model.diffusion_model.output_blocks.2.2.conv.weight"));       // its upsampler is block 1
        Assert.Null(map.Map("first_stage_model.decoder.up.0.upsample.conv.weight"));       // the top level does not upsample
        Assert.Null(map.Map("first_stage_model.loss.discriminator.main.0.weight"));
        Assert.Null(map.Map("model.diffusion_model.input_blocks.1.0.in_layers.1.weight"));
    }

    [Fact]
    public void Hand_written_sd2_openclip_keys_split_and_skip_as_diffusers_does()
    {
        var map = PresetMap("sd21-base");
        AssertMaps(map, "cond_stage_model.model.positional_embedding", "text_encoder", "text_model.embeddings.position_embedding.weight");
        AssertMaps(map, "cond_stage_model.model.token_embedding.weight", "text_encoder", "text_model.embeddings.token_embedding.weight");
        AssertMaps(map, "cond_stage_model.model.ln_final.bias", "text_encoder", "text_model.final_layer_norm.bias");
        AssertMaps(map, "cond_stage_model.model.transformer.resblocks.22.mlp.c_fc.weight", "text_encoder", "text_model.encoder.layers.22.mlp.fc1.weight");
        AssertMaps(map, "cond_stage_model.model.transformer.resblocks.0.attn.out_proj.bias", "text_encoder", "text_model.encoder.layers.0.self_attn.out_proj.bias");
        AssertMaps(map, "cond_stage_model.model.transformer.resblocks.3.ln_2.weight", "text_encoder", "text_model.encoder.layers.3.layer_norm2.weight");
        var qkv = map.Map("cond_stage_model.model.transformer.resblocks.5.attn.in_proj_weight")!.Targets;
        Assert.Equal(["text_model.encoder.layers.5.self_attn.q_proj.weight", "text_model.encoder.layers.5.self_attn.k_proj.weight", "text_model.encoder.layers.5.self_attn.v_proj.weight"],
                     qkv.Select(t => t.Key));
        Assert.Equal([0, 1, 2], qkv.Select(t => t.Part));
        Assert.All(qkv, t => Assert.Equal(LdmTensorTransform.QkvPart, t.Transform));
        Assert.Equal("cond_stage_model.model.transformer.resblocks.5.attn.in_proj_bias",
                     map.LdmKey("text_encoder", "text_model.encoder.layers.5.self_attn.v_proj.bias", LdmTextEncoderKind.OpenClip));
        Assert.Contains("penultimate", map.Map("cond_stage_model.model.transformer.resblocks.23.ln_1.weight")!.SkipReason);
        Assert.NotNull(map.Map("cond_stage_model.model.text_projection")!.SkipReason);
        // SD 2.x's UNet: linear projections keep their names; the 1x1-conv form of a projection is reshaped by shape.
        AssertMaps(map, "model.diffusion_model.input_blocks.7.1.proj_in.weight", "unet", "down_blocks.2.attentions.0.proj_in.weight");
        Assert.Equal(LdmTextEncoderKind.OpenClip, LdmKeyMap.DetectTextEncoder(["model.diffusion_model.out.2.bias", "cond_stage_model.model.ln_final.bias"]));
        Assert.Equal(LdmTextEncoderKind.Clip, LdmKeyMap.DetectTextEncoder(["cond_stage_model.transformer.text_model.final_layer_norm.bias"]));
    }

    public static TheoryData<string> Layouts => new() { "sd1", "sd2" };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Ldm_layout_loads_to_the_same_images_as_the_diffusers_layout_of_the_same_weights(string name)
    {
        using var scope = NewDisposeScope();
        var layout = name == "sd1" ? SdFixture.Sd1 : SdFixture.Sd2;
        var kind = name == "sd1" ? LdmTextEncoderKind.Clip : LdmTextEncoderKind.OpenClip;
        var dir = TestPaths.NewTempDir("sd-ldm");
        SdFixture.Write(dir, layout, seed: 5);
        var diffusers = DiffusersPipelineLoader.Load(dir);
        var file = Path.Combine(dir, "model.safetensors");
        SingleFileCheckpoint.Save(diffusers, file, kind);

        // The written file holds the hand-written LDM names with the diffusers fixture's own values.
        var ldm = SafeTensors.Load(file).Tensors;
        var unetSrc = SafeTensors.Load(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors")).Tensors;
        var vaeSrc = SafeTensors.Load(Path.Combine(dir, "vae", "diffusion_pytorch_model.safetensors")).Tensors;
        var textSrc = SafeTensors.Load(Path.Combine(dir, "text_encoder", "model.safetensors")).Tensors;
        Assert.True(Same(unetSrc["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"], ldm["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"]));
        Assert.True(Same(unetSrc["time_embedding.linear_1.weight"], ldm["model.diffusion_model.time_embed.0.weight"]));
        int layers = layout.Unet["layers_per_block"]!.GetValue<int>();   // the deepest up level (no attention) ends with block L, upsampler at .1
        Assert.True(Same(unetSrc["up_blocks.0.upsamplers.0.conv.weight"], ldm[$"model.diffusion_model.output_blocks.{layers}.1.conv.weight"]));
        var vaeQ = vaeSrc[name == "sd1" ? "encoder.mid_block.attentions.0.query.weight" : "encoder.mid_block.attentions.0.to_q.weight"];
        Assert.Equal([vaeQ.shape[0], vaeQ.shape[1], 1L, 1L], ldm["first_stage_model.encoder.mid.attn_1.q.weight"].shape);   // a 1x1 conv in LDM
        Assert.True(Same(vaeQ, ldm["first_stage_model.encoder.mid.attn_1.q.weight"].flatten(1)));
        if (name == "sd1")
            Assert.True(Same(textSrc["text_model.encoder.layers.1.mlp.fc1.weight"], ldm["cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc1.weight"]));
        else
        {
            var p = "text_model.encoder.layers.1.self_attn";
            var fused = cat([textSrc[$"{p}.q_proj.weight"], textSrc[$"{p}.k_proj.weight"], textSrc[$"{p}.v_proj.weight"]], 0);
            Assert.True(Same(fused, ldm["cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight"]));
            Assert.True(Same(textSrc["text_model.embeddings.position_embedding.weight"], ldm["cond_stage_model.model.positional_embedding"]));
        }
        Assert.All(ldm.Keys, k => Assert.True(k.StartsWith("model.diffusion_model.") || k.StartsWith("first_stage_model.") || k.StartsWith("cond_stage_model."), k));

        // Keys a real checkpoint carries beside the weights are skipped: schedule buffers, the EMA copy, OpenCLIP's last layer and projection.
        var extra = new Dictionary<string, Tensor>(ldm)
        {
            ["betas"] = linspace(0.001, 0.02, 10), ["alphas_cumprod"] = linspace(0.99, 0.1, 10),
            ["model_ema.decay"] = tensor(0.9999f), ["model_ema.diffusion_modeltime_embed0weight"] = ldm["model.diffusion_model.time_embed.0.weight"],
        };
        if (name == "sd2")
        {
            int d = (int)ldm["cond_stage_model.model.positional_embedding"].shape[1];
            extra["cond_stage_model.model.transformer.resblocks.2.ln_1.weight"] = ones(d);
            extra["cond_stage_model.model.transformer.resblocks.2.attn.in_proj_weight"] = zeros(3 * d, d);
            extra["cond_stage_model.model.text_projection"] = zeros(d, d);
            extra["cond_stage_model.model.logit_scale"] = tensor(4.6f);
        }
        else extra["cond_stage_model.transformer.text_model.embeddings.position_ids"] = arange(16L).unsqueeze(0);
        SafeTensors.Save(file, extra);

        var single = SingleFileCheckpoint.Load(file, StableDiffusionConfigs.FromFolder(dir));
        Assert.True(Same(diffusers.Sample(Request), single.Sample(Request)), "the LDM-layout load samples differently from the diffusers-layout load");
        Assert.Equal(diffusers.Schedule.Config, single.Schedule.Config);
        foreach (var (key, t) in diffusers.Unet.state_dict()) Assert.True(Same(t, single.Unet.state_dict()[key]), key);

        // Cast on load: bfloat16 models from the float32 file.
        var bf16 = SingleFileCheckpoint.Load(file, StableDiffusionConfigs.FromFolder(dir), new DiffusersLoadOptions { DType = ScalarType.BFloat16 });
        RoentGen.Tests.Training.MixedPrecisionTests.AssertBFloat16ExceptRepairedConvolutions(bf16.Unet);
        Assert.True(bf16.Sample(Request).isfinite().all().item<bool>());
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Unmapped_missing_and_misshaped_keys_are_all_listed_with_their_ldm_names()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("sd-ldm-bad");
        SdFixture.Write(dir, SdFixture.Sd1);
        var file = Path.Combine(dir, "model.safetensors");
        SingleFileCheckpoint.Save(DiffusersPipelineLoader.Load(dir), file, LdmTextEncoderKind.Clip);
        var t = SafeTensors.Load(file).Tensors;
        t.Remove("model.diffusion_model.time_embed.0.weight");
        t["model.diffusion_model.out.2.bias"] = zeros(5);
        t["model.diffusion_model.mystery_block.weight"] = zeros(2);
        t["first_stage_model.loss.logvar"] = zeros(1);
        SafeTensors.Save(file, t);
        var e = Assert.Throws<DiffusersWeightsMismatchException>(() => SingleFileCheckpoint.Load(file, StableDiffusionConfigs.FromFolder(dir)));
        Assert.Contains("missing: unet 'time_embedding.linear_1.weight'", e.Message);
        Assert.Contains("'model.diffusion_model.time_embed.0.weight'", e.Message);
        Assert.Contains("wrong shape: 'model.diffusion_model.out.2.bias' → unet 'conv_out.bias': expected [4], found [5]", e.Message);
        Assert.Contains("unmapped: model.diffusion_model.mystery_block.weight [2]", e.Message);
        Assert.Contains("unmapped: first_stage_model.loss.logvar [1]", e.Message);
        Assert.Equal(["time_embedding.linear_1.weight"], e.Reports["unet"].MissingKeys);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Pickle_and_non_safetensors_files_and_configs_without_a_tokenizer_are_refused()
    {
        var dir = TestPaths.NewTempDir("sd-ldm-refuse");
        var ckpt = Path.Combine(dir, "sd-v1-5.ckpt");
        File.WriteAllBytes(ckpt, [0x80, 0x02, 0x63]);   // a pickle's first bytes: never opened
        var configs = StableDiffusionConfigs.FromPreset("sd15");
        var e = Assert.Throws<InvalidDataException>(() => SingleFileCheckpoint.Load(ckpt, configs));
        Assert.Contains("pickle", e.Message);
        Assert.Contains("save_file", e.Message);
        var other = Path.Combine(dir, "weights.npz");
        File.WriteAllBytes(other, [1, 2, 3]);
        Assert.Contains("expected a .safetensors", Assert.Throws<InvalidDataException>(() => SingleFileCheckpoint.Load(other, configs)).Message);
        var st = Path.Combine(dir, "model.safetensors");
        SafeTensors.Save(st, new Dictionary<string, Tensor> { ["model.diffusion_model.out.2.bias"] = zeros(4) });
        Assert.Contains("has no tokenizer", Assert.Throws<InvalidDataException>(() => SingleFileCheckpoint.Load(st, configs)).Message);
        Assert.Throws<ArgumentException>(() => StableDiffusionConfigs.FromPreset("sd3"));
        Assert.Throws<DirectoryNotFoundException>(() => StableDiffusionConfigs.Resolve(Path.Combine(dir, "nowhere")));
        Directory.Delete(dir, true);
    }

    [SkippableTheory]
    [InlineData("sd15", "sd-v1-4")]
    [InlineData("sd21-base", "sd-2-1-base")]
    public void Presets_build_the_same_models_as_the_real_config_folders(string preset, string folder)
    {
        Skip.If(TestPaths.StableDiffusionFixtures is null, "../shared/fixtures/stable-diffusion is not beside this clone");
        var real = StableDiffusionConfigs.FromFolder(Path.Combine(TestPaths.StableDiffusionFixtures!, folder));
        var mine = StableDiffusionConfigs.FromPreset(preset);
        Assert.Empty(mine.Unsupported);
        string Json(StableDiffusionConfigs c)
        {
            var problems = new List<string>();
            var parts = DiffusersPipelineLoader.ToLibraryConfigs(c.Unet, c.Vae, c.TextEncoder, c.Scheduler, real.Tokenizer!, new DiffusersLoadOptions(), problems);
            Assert.Empty(problems);
            return JsonSerializer.Serialize(new { parts.Unet, parts.Vae, parts.Text, parts.Schedule, parts.LatentSize, parts.MaxTokens });
        }
        Assert.Equal(Json(real), Json(mine));
        Assert.Equal(real.Unet.Report.UnknownKeys, mine.Unet.Report.UnknownKeys);
    }
}
