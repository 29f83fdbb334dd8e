using System.Text.Json;
using System.Text.Json.Nodes;
using RoentGen.Diffusion;
using RoentGen.Platform;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Interop.Diffusers;

/// <summary>How <see cref="DiffusersPipelineWriter.Save"/> writes the weights.</summary>
public sealed record DiffusersSaveOptions
{
    /// <summary>The dtype the weights are stored in (Float32, Float16 or BFloat16).</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;
    /// <summary>A variant inserted into the weight file names ("fp16": diffusion_pytorch_model.fp16.safetensors), or null.</summary>
    public string? Variant { get; init; }
}

/// <summary>
/// Writes a <see cref="TextToImagePipeline"/> as a diffusers Stable Diffusion folder: model_index.json
/// (StableDiffusionPipeline, no safety checker or feature extractor), unet/ and vae/ (config.json and
/// diffusion_pytorch_model.safetensors), text_encoder/ (config.json and model.safetensors), tokenizer/ (vocab.json,
/// merges.txt, tokenizer_config.json, special_tokens_map.json) and scheduler/scheduler_config.json (a DDIMScheduler
/// carrying the training schedule), with the fields diffusers' and transformers' from_pretrained read, so a model
/// trained here exports; <see cref="DiffusersPipelineLoader.Load"/> reads it back.
/// </summary>
public static class DiffusersPipelineWriter
{
    /// <summary>The diffusers version written into the configs' _diffusers_version (one whose config fields these are).</summary>
    public const string DiffusersVersion = "0.27.2";
    /// <summary>The transformers version written into the text encoder's config.</summary>
    public const string TransformersVersion = "4.40.0";

    /// <summary>Writes the folder (created if needed; files replaced atomically, model_index.json last).</summary>
    /// <exception cref="NotSupportedException">The pipeline has a part diffusers' classes cannot express (a UNet without mid-block attention).</exception>
    public static void Save(TextToImagePipeline pipeline, string dir, DiffusersSaveOptions? options = null)
    {
        options ??= new DiffusersSaveOptions();
        if (options.DType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"DType {options.DType} cannot be written (expected Float32, Float16 or BFloat16)", nameof(options));
        DiffusersPipelineLoader.CheckVariant(options.Variant);
        var unet = UNetJson(pipeline.Unet.Config, pipeline.LatentSize);
        var vae = VaeJson(pipeline.Vae.Config, pipeline.LatentSize * pipeline.Vae.Config.DownsampleFactor);
        var text = TextJson(pipeline.TextEncoder.Config, pipeline.Tokenizer);
        var scheduler = SchedulerJson(pipeline.Schedule.Config);
        Directory.CreateDirectory(dir);

        WriteJson(Path.Combine(dir, "unet", "config.json"), unet);
        WriteWeights(Path.Combine(dir, "unet", DiffusersPipelineLoader.WithVariant($"{DiffusersPipelineLoader.DiffusersWeightsName}.safetensors", options.Variant)), pipeline.Unet, options.DType);
        WriteJson(Path.Combine(dir, "vae", "config.json"), vae);
        WriteWeights(Path.Combine(dir, "vae", DiffusersPipelineLoader.WithVariant($"{DiffusersPipelineLoader.DiffusersWeightsName}.safetensors", options.Variant)), pipeline.Vae, options.DType);
        WriteJson(Path.Combine(dir, "text_encoder", "config.json"), text);
        WriteWeights(Path.Combine(dir, "text_encoder", DiffusersPipelineLoader.WithVariant($"{DiffusersPipelineLoader.TransformersWeightsName}.safetensors", options.Variant)), pipeline.TextEncoder, options.DType);
        WriteTokenizer(Path.Combine(dir, "tokenizer"), pipeline.Tokenizer, pipeline.MaxTokens);
        WriteJson(Path.Combine(dir, "scheduler", "scheduler_config.json"), scheduler);
        WriteJson(Path.Combine(dir, "model_index.json"), new JsonObject
        {
            ["_class_name"] = "StableDiffusionPipeline",
            ["_diffusers_version"] = DiffusersVersion,
            ["feature_extractor"] = new JsonArray(null, null),
            ["requires_safety_checker"] = false,
            ["safety_checker"] = new JsonArray(null, null),
            ["scheduler"] = new JsonArray("diffusers", "DDIMScheduler"),
            ["text_encoder"] = new JsonArray("transformers", "CLIPTextModel"),
            ["tokenizer"] = new JsonArray("transformers", "CLIPTokenizer"),
            ["unet"] = new JsonArray("diffusers", "UNet2DConditionModel"),
            ["vae"] = new JsonArray("diffusers", "AutoencoderKL"),
        });
    }

    /// <summary>unet/config.json for a UNet config; diffusers' attention_head_dim is the heads per level.</summary>
    /// <exception cref="NotSupportedException">The UNet has no mid-block attention (diffusers' UNetMidBlock2DCrossAttn always has it).</exception>
    public static JsonObject UNetJson(UNetConfig c, int sampleSize)
    {
        if (!c.MidBlockAttention)
            throw new NotSupportedException("this UNet's mid block has no attention (MidBlockAttention false); diffusers' UNetMidBlock2DCrossAttn, which Stable Diffusion folders use, always has it");
        int n = c.BlockOutChannels.Length;
        var heads = Enumerable.Range(0, n).Select(c.Heads).ToArray();
        var depth = Enumerable.Range(0, n).Select(c.TransformerDepth).ToArray();
        return new JsonObject
        {
            ["_class_name"] = "UNet2DConditionModel",
            ["_diffusers_version"] = DiffusersVersion,
            ["act_fn"] = "silu",
            ["attention_head_dim"] = Ints(heads),
            ["block_out_channels"] = Ints(c.BlockOutChannels),
            ["center_input_sample"] = false,
            ["cross_attention_dim"] = c.CrossAttentionDim,
            ["down_block_types"] = Strings(Enumerable.Range(0, n).Select(i => c.CrossAttentionLevels[i] ? "CrossAttnDownBlock2D" : "DownBlock2D")),
            ["downsample_padding"] = 1,
            ["flip_sin_to_cos"] = true,
            ["freq_shift"] = 0,
            ["in_channels"] = c.InChannels,
            ["layers_per_block"] = c.LayersPerBlock,
            ["mid_block_scale_factor"] = 1,
            ["mid_block_type"] = "UNetMidBlock2DCrossAttn",
            ["norm_eps"] = c.NormEps,
            ["norm_num_groups"] = c.NormGroups,
            ["out_channels"] = c.OutChannels,
            ["sample_size"] = sampleSize,
            ["transformer_layers_per_block"] = Ints(depth),
            ["up_block_types"] = Strings(Enumerable.Range(0, n).Select(i => c.CrossAttentionLevels[n - 1 - i] ? "CrossAttnUpBlock2D" : "UpBlock2D")),
            ["upcast_attention"] = c.UpcastAttention,
            ["use_linear_projection"] = c.UseLinearProjection,
        };
    }

    /// <summary>vae/config.json for a VAE config, with its scaling factor.</summary>
    public static JsonObject VaeJson(VaeConfig c, int sampleSize)
    {
        int n = c.BlockOutChannels.Length;
        return new JsonObject
        {
            ["_class_name"] = "AutoencoderKL",
            ["_diffusers_version"] = DiffusersVersion,
            ["act_fn"] = "silu",
            ["block_out_channels"] = Ints(c.BlockOutChannels),
            ["down_block_types"] = Strings(Enumerable.Repeat("DownEncoderBlock2D", n)),
            ["force_upcast"] = true,
            ["in_channels"] = c.InChannels,
            ["latent_channels"] = c.LatentChannels,
            ["layers_per_block"] = c.LayersPerBlock,
            ["norm_num_groups"] = c.NormGroups,
            ["out_channels"] = c.OutChannels,
            ["sample_size"] = sampleSize,
            ["scaling_factor"] = c.ScalingFactor,
            ["up_block_types"] = Strings(Enumerable.Repeat("UpDecoderBlock2D", n)),
        };
    }

    /// <summary>
    /// text_encoder/config.json (transformers' CLIPTextModel) for a text encoder config; the start, end and pad ids are
    /// the tokenizer's, so that transformers pools at the same end token as <see cref="ClipTextModel.Encode"/>.
    /// </summary>
    public static JsonObject TextJson(RoentGen.Text.ClipTextConfig c, BpeTokenizer tokenizer) => new()
    {
        ["architectures"] = new JsonArray("CLIPTextModel"),
        ["attention_dropout"] = 0.0,
        ["bos_token_id"] = tokenizer.StartId,
        ["dropout"] = 0.0,
        ["eos_token_id"] = c.EndTokenId,
        ["hidden_act"] = c.HiddenAct,
        ["hidden_size"] = c.HiddenSize,
        ["initializer_factor"] = 1.0,
        ["initializer_range"] = 0.02,
        ["intermediate_size"] = c.IntermediateSize,
        ["layer_norm_eps"] = c.LayerNormEps,
        ["max_position_embeddings"] = c.MaxPositions,
        ["model_type"] = "clip_text_model",
        ["num_attention_heads"] = c.Heads,
        ["num_hidden_layers"] = c.Layers,
        ["pad_token_id"] = tokenizer.PadId,
        ["torch_dtype"] = "float32",
        ["transformers_version"] = TransformersVersion,
        ["vocab_size"] = c.VocabSize,
    };

    /// <summary>scheduler/scheduler_config.json (DDIMScheduler) for a training schedule.</summary>
    public static JsonObject SchedulerJson(NoiseScheduleConfig c) => new()
    {
        ["_class_name"] = "DDIMScheduler",
        ["_diffusers_version"] = DiffusersVersion,
        ["beta_end"] = c.BetaEnd,
        ["beta_schedule"] = c.Schedule switch
        {
            BetaSchedule.Linear => "linear",
            BetaSchedule.ScaledLinear => "scaled_linear",
            _ => "squaredcos_cap_v2",
        },
        ["beta_start"] = c.BetaStart,
        ["clip_sample"] = false,
        ["num_train_timesteps"] = c.TrainTimesteps,
        ["prediction_type"] = c.Prediction == PredictionType.VPrediction ? "v_prediction" : "epsilon",
        ["set_alpha_to_one"] = c.SetAlphaToOne,
        ["steps_offset"] = c.StepsOffset,
        ["timestep_spacing"] = c.Spacing switch
        {
            TimestepSpacing.Leading => "leading",
            TimestepSpacing.Trailing => "trailing",
            _ => "linspace",
        },
        ["trained_betas"] = null,
    };

    private static void WriteTokenizer(string dir, BpeTokenizer tokenizer, int maxTokens)
    {
        tokenizer.Save(dir);
        string Token(int id) => tokenizer.TokenOf(id) ?? throw new InvalidOperationException($"the tokenizer's id {id} has no token");
        var special = new JsonObject
        {
            ["bos_token"] = BpeTokenizer.StartToken,
            ["eos_token"] = BpeTokenizer.EndToken,
            ["pad_token"] = Token(tokenizer.PadId),
            ["unk_token"] = tokenizer.UnknownId is int u ? Token(u) : BpeTokenizer.EndToken,
        };
        var config = new JsonObject
        {
            ["add_prefix_space"] = false,
            ["bos_token"] = BpeTokenizer.StartToken,
            ["do_lower_case"] = true,
            ["eos_token"] = BpeTokenizer.EndToken,
            ["errors"] = "replace",
            ["model_max_length"] = maxTokens,
            ["pad_token"] = special["pad_token"]!.GetValue<string>(),
            ["tokenizer_class"] = "CLIPTokenizer",
            ["unk_token"] = special["unk_token"]!.GetValue<string>(),
        };
        WriteJson(Path.Combine(dir, "special_tokens_map.json"), special);
        WriteJson(Path.Combine(dir, "tokenizer_config.json"), config);
    }

    private static void WriteWeights(string path, nn.Module module, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, t) in module.state_dict())
            tensors[key] = t.is_floating_point() && t.dtype != dtype ? t.detach().to(dtype) : t.detach();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // transformers refuses a safetensors file without metadata "format": "pt".
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    private static JsonArray Ints(IEnumerable<int> values) => new(values.Select(v => (JsonNode?)v).ToArray());

    private static JsonArray Strings(IEnumerable<string> values) => new(values.Select(v => (JsonNode?)v).ToArray());

    private static void WriteJson(string path, JsonObject json)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
