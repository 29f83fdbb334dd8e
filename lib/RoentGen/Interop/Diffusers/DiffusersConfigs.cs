namespace RoentGen.Interop.Diffusers;

/// <summary>
/// diffusers' <c>UNet2DConditionModel</c> config (unet/config.json), the fields Stable Diffusion 1.x and 2.x use.
/// diffusers' <c>attention_head_dim</c> is, despite its name, the number of heads per level (diffusers issue 2011:
/// <c>num_attention_heads = num_attention_heads or attention_head_dim</c>), so SD 1.x's 8 is 8 heads at every level
/// (head dims 40, 80, 160, 160) and SD 2.x's [5, 10, 20, 20] is channels / 64 heads (head dim 64 everywhere).
/// </summary>
/// <param name="SampleSize">Latent side the model was trained at (64 for 512 px), or null.</param>
/// <param name="InChannels">Latent channels in (4).</param>
/// <param name="OutChannels">Channels out (4).</param>
/// <param name="CenterInputSample">Whether the input is mapped to 2x - 1 first.</param>
/// <param name="FlipSinToCos">Timestep embedding order: cos then sin when true (SD: true).</param>
/// <param name="FreqShift">Timestep embedding frequency shift (SD: 0).</param>
/// <param name="DownBlockTypes">One type per level, e.g. CrossAttnDownBlock2D, DownBlock2D.</param>
/// <param name="MidBlockType">UNetMidBlock2DCrossAttn, or null for no middle block.</param>
/// <param name="UpBlockTypes">One type per level, deepest first.</param>
/// <param name="BlockOutChannels">Channels per level (320, 640, 1280, 1280).</param>
/// <param name="LayersPerBlock">ResNet blocks per down level (the up levels have one more).</param>
/// <param name="DownsamplePadding">Padding of the stride-2 down-sampling convolution (1).</param>
/// <param name="MidBlockScaleFactor">Output scale of the middle block's ResNets (1).</param>
/// <param name="ActFn">ResNet activation ("silu").</param>
/// <param name="NormNumGroups">GroupNorm groups (32).</param>
/// <param name="NormEps">GroupNorm epsilon (1e-5).</param>
/// <param name="CrossAttentionDim">Width of the text states attended to: 768 (CLIP ViT-L, SD 1.x) or 1024 (OpenCLIP ViT-H, SD 2.x).</param>
/// <param name="HeadsPerLevel">Attention heads per level (from num_attention_heads, else attention_head_dim; see above).</param>
/// <param name="TransformerLayersPerBlock">Transformer blocks per attention layer, per level (1 for SD).</param>
/// <param name="UseLinearProjection">proj_in/proj_out are Linear layers (SD 2.x) rather than 1x1 convolutions (SD 1.x).</param>
/// <param name="UpcastAttention">Attention scores computed in float32 (SD 2.1 at 768 px).</param>
/// <param name="ResnetTimeScaleShift">"default": the timestep embedding is added (the only form SD uses).</param>
/// <param name="Report">Unknown keys and unsupported values.</param>
public sealed record UNet2DConditionConfig(
    int? SampleSize, int InChannels, int OutChannels, bool CenterInputSample, bool FlipSinToCos, int FreqShift,
    IReadOnlyList<string> DownBlockTypes, string? MidBlockType, IReadOnlyList<string> UpBlockTypes,
    IReadOnlyList<int> BlockOutChannels, int LayersPerBlock, int DownsamplePadding, double MidBlockScaleFactor,
    string ActFn, int NormNumGroups, double NormEps, int CrossAttentionDim, IReadOnlyList<int> HeadsPerLevel,
    IReadOnlyList<int> TransformerLayersPerBlock, bool UseLinearProjection, bool UpcastAttention, string ResnetTimeScaleShift,
    ConfigReport Report)
{
    /// <summary>Number of resolution levels.</summary>
    public int Levels => BlockOutChannels.Count;

    /// <summary>Head width per level: channels / heads (SD 1.x: 40, 80, 160, 160; SD 2.x: 64 everywhere).</summary>
    public IReadOnlyList<int> HeadDimPerLevel => BlockOutChannels.Select((c, i) => c / HeadsPerLevel[i]).ToArray();

    /// <summary>Whether down level <paramref name="level"/> has cross-attention transformers.</summary>
    public bool DownHasAttention(int level) => DownBlockTypes[level] == "CrossAttnDownBlock2D";

    /// <summary>Whether up level <paramref name="level"/> (deepest first) has cross-attention transformers.</summary>
    public bool UpHasAttention(int level) => UpBlockTypes[level] == "CrossAttnUpBlock2D";

    /// <summary>Parses unet/config.json.</summary>
    /// <exception cref="InvalidDataException">Malformed JSON, a wrong type, a missing required key, or inconsistent lengths (the message names file and key).</exception>
    public static UNet2DConditionConfig Load(string path) => Parse(ConfigReader.Open(path));

    /// <summary>Parses the JSON text of a unet config; <paramref name="file"/> names it in errors.</summary>
    public static UNet2DConditionConfig Parse(string file, string json) => Parse(new ConfigReader(file, json));

    private static UNet2DConditionConfig Parse(ConfigReader r)
    {
        r.Known("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values");
        if (r.StringOrNull("_class_name") is { } cls && cls != "UNet2DConditionModel")
            r.Unsupported("_class_name", $"\"{cls}\" (expected UNet2DConditionModel)");
        var down = r.Strings("down_block_types");
        var up = r.Strings("up_block_types");
        var channels = r.Ints("block_out_channels");
        int levels = channels.Length;
        if (down.Length != levels || up.Length != levels)
            throw new InvalidDataException($"{r.File}: block_out_channels has {levels} levels but down_block_types has {down.Length} and up_block_types {up.Length}");
        var headDim = r.IntPerLevel("attention_head_dim", levels);
        var numHeads = r.IntPerLevel("num_attention_heads", levels);
        var heads = numHeads ?? headDim ?? Enumerable.Repeat(8, levels).ToArray();   // diffusers' default attention_head_dim is 8
        for (int i = 0; i < levels; i++)
            if (heads[i] <= 0 || channels[i] % heads[i] != 0)
                throw new InvalidDataException($"{r.File}: level {i} has {channels[i]} channels, not divisible into {heads[i]} heads ({(numHeads is null ? "attention_head_dim" : "num_attention_heads")})");
        int[] depth;
        if (r.IsArrayOfArrays("transformer_layers_per_block"))
        {
            r.Unsupported("transformer_layers_per_block", "nested per-block lists (asymmetric UNets) are not supported");
            depth = Enumerable.Repeat(1, levels).ToArray();
        }
        else depth = r.IntPerLevel("transformer_layers_per_block", levels) ?? Enumerable.Repeat(1, levels).ToArray();
        int crossDim = r.IntOrUnsupportedList("cross_attention_dim") ?? 1280;
        var cfg = new UNet2DConditionConfig(
            SampleSize: r.IntOrNull("sample_size"),
            InChannels: r.IntOr("in_channels", 4),
            OutChannels: r.IntOr("out_channels", 4),
            CenterInputSample: r.BoolOr("center_input_sample", false),
            FlipSinToCos: r.BoolOr("flip_sin_to_cos", true),
            FreqShift: r.IntOr("freq_shift", 0),
            DownBlockTypes: down,
            MidBlockType: r.IsExplicitNull("mid_block_type") ? null : r.StringOr("mid_block_type", "UNetMidBlock2DCrossAttn"),
            UpBlockTypes: up,
            BlockOutChannels: channels,
            LayersPerBlock: r.IntOrUnsupportedList("layers_per_block") ?? 2,
            DownsamplePadding: r.IntOr("downsample_padding", 1),
            MidBlockScaleFactor: r.DoubleOr("mid_block_scale_factor", 1),
            ActFn: r.StringOr("act_fn", "silu"),
            NormNumGroups: r.IntOr("norm_num_groups", 32),
            NormEps: r.DoubleOr("norm_eps", 1e-5),
            CrossAttentionDim: crossDim,
            HeadsPerLevel: heads,
            TransformerLayersPerBlock: depth,
            UseLinearProjection: r.BoolOr("use_linear_projection", false),
            UpcastAttention: r.BoolOr("upcast_attention", false),
            ResnetTimeScaleShift: r.StringOr("resnet_time_scale_shift", "default"),
            Report: null!);
        foreach (var (i, t) in down.Index())
            if (t is not ("CrossAttnDownBlock2D" or "DownBlock2D")) r.Unsupported($"down_block_types[{i}]", $"\"{t}\" (supported: CrossAttnDownBlock2D, DownBlock2D)");
        foreach (var (i, t) in up.Index())
            if (t is not ("CrossAttnUpBlock2D" or "UpBlock2D")) r.Unsupported($"up_block_types[{i}]", $"\"{t}\" (supported: CrossAttnUpBlock2D, UpBlock2D)");
        if (cfg.MidBlockType is not (null or "UNetMidBlock2DCrossAttn")) r.Unsupported("mid_block_type", $"\"{cfg.MidBlockType}\" (supported: UNetMidBlock2DCrossAttn)");
        if (cfg.ActFn != "silu") r.Unsupported("act_fn", $"\"{cfg.ActFn}\" (supported: silu)");
        if (cfg.ResnetTimeScaleShift != "default") r.Unsupported("resnet_time_scale_shift", $"\"{cfg.ResnetTimeScaleShift}\" (supported: default)");
        // Keys that newer diffusers versions write at their defaults; any other value is a model this library does not build.
        r.DefaultOnly("dual_cross_attention", false);
        r.DefaultOnly("only_cross_attention", false);
        r.DefaultOnly("class_embed_type", null);
        r.DefaultOnly("num_class_embeds", null);
        r.DefaultOnly("conv_in_kernel", 3);
        r.DefaultOnly("conv_out_kernel", 3);
        r.DefaultOnly("time_embedding_type", "positional");
        r.DefaultOnly("time_embedding_dim", null);
        r.DefaultOnly("time_embedding_act_fn", null);
        r.DefaultOnly("timestep_post_act", null);
        r.DefaultOnly("time_cond_proj_dim", null);
        r.DefaultOnly("encoder_hid_dim", null);
        r.DefaultOnly("encoder_hid_dim_type", null);
        r.DefaultOnly("addition_embed_type", null);
        r.DefaultOnly("addition_time_embed_dim", null);
        r.DefaultOnly("addition_embed_type_num_heads", 64);
        r.DefaultOnly("projection_class_embeddings_input_dim", null);
        r.DefaultOnly("class_embeddings_concat", false);
        r.DefaultOnly("mid_block_only_cross_attention", null);
        r.DefaultOnly("cross_attention_norm", null);
        r.DefaultOnly("attention_type", "default");
        r.DefaultOnly("resnet_skip_time_act", false);
        r.DefaultOnly("resnet_out_scale_factor", 1.0);
        r.DefaultOnly("dropout", 0.0);
        r.DefaultOnly("reverse_transformer_layers_per_block", null);
        return cfg with { Report = r.Report() };
    }
}

/// <summary>
/// diffusers' <c>AutoencoderKL</c> config (vae/config.json). SD's VAE is 3 channels in and out, 4 latent channels,
/// four levels of 128, 256, 512, 512; latents are multiplied by <see cref="ScalingFactor"/> before the UNet sees them
/// (0.18215 for SD 1.x and 2.x, diffusers' default when the key is absent, as in SD 2.1-base's file).
/// </summary>
/// <param name="InChannels">Image channels in (3).</param>
/// <param name="OutChannels">Image channels out (3).</param>
/// <param name="DownBlockTypes">Encoder block per level (DownEncoderBlock2D).</param>
/// <param name="UpBlockTypes">Decoder block per level (UpDecoderBlock2D).</param>
/// <param name="BlockOutChannels">Channels per level.</param>
/// <param name="LayersPerBlock">ResNets per encoder level (the decoder has one more).</param>
/// <param name="ActFn">Activation ("silu").</param>
/// <param name="LatentChannels">Latent channels (4).</param>
/// <param name="NormNumGroups">GroupNorm groups (32).</param>
/// <param name="SampleSize">Image side it was trained at, or null.</param>
/// <param name="ScalingFactor">Latent scale (see above).</param>
/// <param name="ScalingFactorFromFile">Whether the file gave <see cref="ScalingFactor"/> (false: diffusers' default).</param>
/// <param name="ForceUpcast">diffusers runs this VAE in float32 even in a half-precision pipeline (a run-time hint).</param>
/// <param name="Report">Unknown keys and unsupported values.</param>
public sealed record AutoencoderKLConfig(
    int InChannels, int OutChannels, IReadOnlyList<string> DownBlockTypes, IReadOnlyList<string> UpBlockTypes,
    IReadOnlyList<int> BlockOutChannels, int LayersPerBlock, string ActFn, int LatentChannels, int NormNumGroups,
    int? SampleSize, double ScalingFactor, bool ScalingFactorFromFile, bool ForceUpcast, ConfigReport Report)
{
    /// <summary>diffusers' default latent scale (SD 1.x and 2.x).</summary>
    public const double DefaultScalingFactor = 0.18215;

    /// <summary>Parses vae/config.json.</summary>
    /// <exception cref="InvalidDataException">Malformed JSON, a wrong type or a missing required key (the message names file and key).</exception>
    public static AutoencoderKLConfig Load(string path) => Parse(ConfigReader.Open(path));

    /// <summary>Parses the JSON text of a VAE config; <paramref name="file"/> names it in errors.</summary>
    public static AutoencoderKLConfig Parse(string file, string json) => Parse(new ConfigReader(file, json));

    private static AutoencoderKLConfig Parse(ConfigReader r)
    {
        r.Known("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values");
        if (r.StringOrNull("_class_name") is { } cls && cls != "AutoencoderKL") r.Unsupported("_class_name", $"\"{cls}\" (expected AutoencoderKL)");
        var channels = r.Ints("block_out_channels");
        var down = r.Strings("down_block_types");
        var up = r.Strings("up_block_types");
        if (down.Length != channels.Length || up.Length != channels.Length)
            throw new InvalidDataException($"{r.File}: block_out_channels has {channels.Length} levels but down_block_types has {down.Length} and up_block_types {up.Length}");
        var scale = r.DoubleOrNull("scaling_factor");
        var cfg = new AutoencoderKLConfig(
            InChannels: r.IntOr("in_channels", 3),
            OutChannels: r.IntOr("out_channels", 3),
            DownBlockTypes: down,
            UpBlockTypes: up,
            BlockOutChannels: channels,
            LayersPerBlock: r.IntOr("layers_per_block", 1),
            ActFn: r.StringOr("act_fn", "silu"),
            LatentChannels: r.IntOr("latent_channels", 4),
            NormNumGroups: r.IntOr("norm_num_groups", 32),
            SampleSize: r.IntOrNull("sample_size"),
            ScalingFactor: scale ?? DefaultScalingFactor,
            ScalingFactorFromFile: scale is not null,
            ForceUpcast: r.BoolOr("force_upcast", true),
            Report: null!);
        foreach (var (i, t) in down.Index())
            if (t != "DownEncoderBlock2D") r.Unsupported($"down_block_types[{i}]", $"\"{t}\" (supported: DownEncoderBlock2D)");
        foreach (var (i, t) in up.Index())
            if (t != "UpDecoderBlock2D") r.Unsupported($"up_block_types[{i}]", $"\"{t}\" (supported: UpDecoderBlock2D)");
        if (cfg.ActFn != "silu") r.Unsupported("act_fn", $"\"{cfg.ActFn}\" (supported: silu)");
        r.DefaultOnly("shift_factor", null);
        r.DefaultOnly("latents_mean", null);
        r.DefaultOnly("latents_std", null);
        r.DefaultOnly("use_quant_conv", true);
        r.DefaultOnly("use_post_quant_conv", true);
        r.DefaultOnly("mid_block_add_attention", true);
        return cfg with { Report = r.Report() };
    }
}

/// <summary>
/// transformers' <c>CLIPTextConfig</c> (text_encoder/config.json): SD 1.x uses OpenAI CLIP ViT-L/14's text tower
/// (12 layers, width 768, quick-GELU), SD 2.x OpenCLIP ViT-H/14's in CLIPTextModel form (23 layers used, width 1024, GELU).
/// </summary>
/// <param name="VocabSize">Token ids (49408).</param>
/// <param name="HiddenSize">Width.</param>
/// <param name="IntermediateSize">MLP width.</param>
/// <param name="ProjectionDim">Width of the text projection (used by CLIPTextModelWithProjection only; not a weight of CLIPTextModel).</param>
/// <param name="NumHiddenLayers">Transformer layers.</param>
/// <param name="NumAttentionHeads">Heads per layer.</param>
/// <param name="MaxPositionEmbeddings">Positions (77).</param>
/// <param name="HiddenAct">"quick_gelu" (x·σ(1.702x), OpenAI CLIP) or "gelu" (erf GELU, OpenCLIP).</param>
/// <param name="LayerNormEps">LayerNorm epsilon.</param>
/// <param name="AttentionDropout">Attention dropout (0 in SD).</param>
/// <param name="Dropout">Dropout (0 in SD).</param>
/// <param name="InitializerRange">Initialisation standard deviation (training only).</param>
/// <param name="InitializerFactor">Initialisation scale (training only).</param>
/// <param name="PadTokenId">The config's pad id (1 in both SD files; not what the tokenizer pads with, which tokenizer/ says).</param>
/// <param name="BosTokenId">The config's start id (0 in both SD files, a transformers default; the tokenizer's is 49406).</param>
/// <param name="EosTokenId">The config's end id (2 in both SD files, a transformers default; the tokenizer's is 49407). transformers of that era pooled at the argmax id instead.</param>
/// <param name="TorchDtype">The dtype the weights were saved in ("float32"), or null.</param>
/// <param name="Report">Unknown keys and unsupported values.</param>
public sealed record ClipTextConfig(
    int VocabSize, int HiddenSize, int IntermediateSize, int? ProjectionDim, int NumHiddenLayers, int NumAttentionHeads,
    int MaxPositionEmbeddings, string HiddenAct, double LayerNormEps, double AttentionDropout, double Dropout,
    double InitializerRange, double InitializerFactor, int? PadTokenId, int? BosTokenId, int? EosTokenId, string? TorchDtype,
    ConfigReport Report)
{
    /// <summary>Whether the MLP uses quick-GELU (OpenAI CLIP) rather than GELU (OpenCLIP).</summary>
    public bool UsesQuickGelu => HiddenAct == "quick_gelu";

    /// <summary>Head width (hidden / heads).</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Parses text_encoder/config.json.</summary>
    /// <exception cref="InvalidDataException">Malformed JSON, a wrong type or a missing required key (the message names file and key).</exception>
    public static ClipTextConfig Load(string path) => Parse(ConfigReader.Open(path));

    /// <summary>Parses the JSON text of a CLIP text config; <paramref name="file"/> names it in errors.</summary>
    public static ClipTextConfig Parse(string file, string json) => Parse(new ConfigReader(file, json));

    private static ClipTextConfig Parse(ConfigReader r)
    {
        r.Known("_name_or_path", "transformers_version", "_commit_hash");
        if (r.StringOrNull("model_type") is { } mt && mt != "clip_text_model") r.Unsupported("model_type", $"\"{mt}\" (expected clip_text_model)");
        if (r.Has("architectures"))
        {
            var arch = r.Strings("architectures");
            if (!arch.Any(a => a is "CLIPTextModel" or "CLIPTextModelWithProjection"))
                r.Unsupported("architectures", $"[{string.Join(", ", arch)}] (expected CLIPTextModel)");
        }
        var cfg = new ClipTextConfig(
            VocabSize: r.IntOr("vocab_size", 49408),
            HiddenSize: r.IntOr("hidden_size", 512),
            IntermediateSize: r.IntOr("intermediate_size", 2048),
            ProjectionDim: r.IntOrNull("projection_dim"),
            NumHiddenLayers: r.IntOr("num_hidden_layers", 12),
            NumAttentionHeads: r.IntOr("num_attention_heads", 8),
            MaxPositionEmbeddings: r.IntOr("max_position_embeddings", 77),
            HiddenAct: r.StringOr("hidden_act", "quick_gelu"),
            LayerNormEps: r.DoubleOr("layer_norm_eps", 1e-5),
            AttentionDropout: r.DoubleOr("attention_dropout", 0),
            Dropout: r.DoubleOr("dropout", 0),
            InitializerRange: r.DoubleOr("initializer_range", 0.02),
            InitializerFactor: r.DoubleOr("initializer_factor", 1),
            PadTokenId: r.IntOrNull("pad_token_id"),
            BosTokenId: r.IntOrNull("bos_token_id"),
            EosTokenId: r.IntOrNull("eos_token_id"),
            TorchDtype: r.StringOrNull("torch_dtype"),
            Report: null!);
        if (cfg.HiddenAct is not ("quick_gelu" or "gelu")) r.Unsupported("hidden_act", $"\"{cfg.HiddenAct}\" (supported: quick_gelu, gelu)");
        if (cfg.NumAttentionHeads <= 0 || cfg.HiddenSize % cfg.NumAttentionHeads != 0)
            throw new InvalidDataException($"{r.File}: hidden_size {cfg.HiddenSize} is not divisible into num_attention_heads {cfg.NumAttentionHeads}");
        return cfg with { Report = r.Report() };
    }
}

/// <summary>
/// A diffusers noise scheduler config (scheduler/scheduler_config.json): the union of the fields of DDPMScheduler,
/// DDIMScheduler, PNDMScheduler and EulerDiscreteScheduler. Fields a class does not take stay in the file (SD's PNDM
/// config carries DDIM's clip_sample); class-dependent defaults are null here when the file omits them.
/// </summary>
/// <param name="ClassName">The scheduler class (_class_name).</param>
/// <param name="NumTrainTimesteps">Training timesteps (1000).</param>
/// <param name="BetaStart">First beta (0.00085 in SD).</param>
/// <param name="BetaEnd">Last beta (0.012 in SD).</param>
/// <param name="BetaSchedule">"linear", "scaled_linear" (SD: betas linear in sqrt β) or "squaredcos_cap_v2" (cosine).</param>
/// <param name="TrainedBetas">Explicit betas, or null.</param>
/// <param name="PredictionType">"epsilon" (noise; SD 1.x, 2.x-base), "v_prediction" (SD 2.x 768) or "sample".</param>
/// <param name="StepsOffset">Added to every inference timestep (SD: 1, so 50 steps run 981, 961, ..., 1).</param>
/// <param name="SetAlphaToOne">DDIM/PNDM: the final step's previous ᾱ is 1 (true) or ᾱ₀ (false; SD); null when absent (DDIM's default is true, PNDM's false).</param>
/// <param name="ClipSample">DDPM/DDIM: clip the predicted x₀ to ±<see cref="ClipSampleRange"/>; null when absent.</param>
/// <param name="ClipSampleRange">The clip bound, or null.</param>
/// <param name="SkipPrkSteps">PNDM: skip the Runge-Kutta warm-up steps (SD: true), or null.</param>
/// <param name="TimestepSpacing">"leading" (diffusers' default), "trailing" or "linspace"; null when absent.</param>
/// <param name="RescaleBetasZeroSnr">Rescale betas to zero terminal SNR, or null.</param>
/// <param name="Thresholding">Dynamic thresholding, or null.</param>
/// <param name="DynamicThresholdingRatio">Its percentile, or null.</param>
/// <param name="SampleMaxValue">Its bound, or null.</param>
/// <param name="VarianceType">DDPM's variance ("fixed_small"...), or null.</param>
/// <param name="InterpolationType">Euler's sigma interpolation ("linear"), or null.</param>
/// <param name="UseKarrasSigmas">Euler: Karras sigmas, or null.</param>
/// <param name="Report">Unknown keys and unsupported values.</param>
public sealed record SchedulerConfig(
    string ClassName, int NumTrainTimesteps, double BetaStart, double BetaEnd, string BetaSchedule, IReadOnlyList<double>? TrainedBetas,
    string PredictionType, int StepsOffset, bool? SetAlphaToOne, bool? ClipSample, double? ClipSampleRange, bool? SkipPrkSteps,
    string? TimestepSpacing, bool? RescaleBetasZeroSnr, bool? Thresholding, double? DynamicThresholdingRatio, double? SampleMaxValue,
    string? VarianceType, string? InterpolationType, bool? UseKarrasSigmas, ConfigReport Report)
{
    /// <summary>The scheduler classes whose fields this record knows.</summary>
    public static readonly IReadOnlyList<string> KnownClasses = ["DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "EulerDiscreteScheduler"];

    /// <summary><see cref="SetAlphaToOne"/>, or the class's default (true for DDIM, false otherwise).</summary>
    public bool SetAlphaToOneOrDefault => SetAlphaToOne ?? ClassName == "DDIMScheduler";

    /// <summary>Parses scheduler/scheduler_config.json.</summary>
    /// <exception cref="InvalidDataException">Malformed JSON, a wrong type or a missing required key (the message names file and key).</exception>
    public static SchedulerConfig Load(string path) => Parse(ConfigReader.Open(path));

    /// <summary>Parses the JSON text of a scheduler config; <paramref name="file"/> names it in errors.</summary>
    public static SchedulerConfig Parse(string file, string json) => Parse(new ConfigReader(file, json));

    private static SchedulerConfig Parse(ConfigReader r)
    {
        r.Known("_diffusers_version", "_name_or_path", "_use_default_values");
        var cfg = new SchedulerConfig(
            ClassName: r.String("_class_name"),
            NumTrainTimesteps: r.IntOr("num_train_timesteps", 1000),
            BetaStart: r.DoubleOr("beta_start", 0.0001),
            BetaEnd: r.DoubleOr("beta_end", 0.02),
            BetaSchedule: r.StringOr("beta_schedule", "linear"),
            TrainedBetas: r.DoublesOrNull("trained_betas"),
            PredictionType: r.StringOr("prediction_type", "epsilon"),
            StepsOffset: r.IntOr("steps_offset", 0),
            SetAlphaToOne: r.BoolOrNull("set_alpha_to_one"),
            ClipSample: r.BoolOrNull("clip_sample"),
            ClipSampleRange: r.DoubleOrNull("clip_sample_range"),
            SkipPrkSteps: r.BoolOrNull("skip_prk_steps"),
            TimestepSpacing: r.StringOrNull("timestep_spacing"),
            RescaleBetasZeroSnr: r.BoolOrNull("rescale_betas_zero_snr"),
            Thresholding: r.BoolOrNull("thresholding"),
            DynamicThresholdingRatio: r.DoubleOrNull("dynamic_thresholding_ratio"),
            SampleMaxValue: r.DoubleOrNull("sample_max_value"),
            VarianceType: r.StringOrNull("variance_type"),
            InterpolationType: r.StringOrNull("interpolation_type"),
            UseKarrasSigmas: r.BoolOrNull("use_karras_sigmas"),
            Report: null!);
        if (!KnownClasses.Contains(cfg.ClassName)) r.Unsupported("_class_name", $"\"{cfg.ClassName}\" (known: {string.Join(", ", KnownClasses)})");
        if (cfg.BetaSchedule is not ("linear" or "scaled_linear" or "squaredcos_cap_v2"))
            r.Unsupported("beta_schedule", $"\"{cfg.BetaSchedule}\" (supported: linear, scaled_linear, squaredcos_cap_v2)");
        if (cfg.PredictionType is not ("epsilon" or "v_prediction" or "sample"))
            r.Unsupported("prediction_type", $"\"{cfg.PredictionType}\" (supported: epsilon, v_prediction, sample)");
        if (cfg.TimestepSpacing is not (null or "leading" or "trailing" or "linspace"))
            r.Unsupported("timestep_spacing", $"\"{cfg.TimestepSpacing}\" (supported: leading, trailing, linspace)");
        if (cfg.TrainedBetas is { } tb && tb.Count != cfg.NumTrainTimesteps)
            throw new InvalidDataException($"{r.File}: trained_betas has {tb.Count} values, expected num_train_timesteps ({cfg.NumTrainTimesteps})");
        if (cfg.NumTrainTimesteps < 1) throw new InvalidDataException($"{r.File}: num_train_timesteps must be at least 1, got {cfg.NumTrainTimesteps}");
        return cfg with { Report = r.Report() };
    }
}

/// <summary>One component of model_index.json: the library and class that load it, or nulls for an absent one (SD 2.x's safety checker).</summary>
/// <param name="Name">The component's folder name (unet, vae, text_encoder, tokenizer, scheduler, ...).</param>
/// <param name="Library">"diffusers", "transformers", "stable_diffusion"..., or null.</param>
/// <param name="ClassName">The class, or null.</param>
public sealed record PipelineComponent(string Name, string? Library, string? ClassName);

/// <summary>model_index.json: the pipeline class and its components.</summary>
/// <param name="ClassName">The pipeline class (StableDiffusionPipeline).</param>
/// <param name="DiffusersVersion">The diffusers version that wrote it, or null.</param>
/// <param name="Components">The components, in file order.</param>
/// <param name="RequiresSafetyChecker">requires_safety_checker, or null when absent.</param>
/// <param name="Report">Unknown keys and unsupported values.</param>
public sealed record ModelIndex(string ClassName, string? DiffusersVersion, IReadOnlyList<PipelineComponent> Components, bool? RequiresSafetyChecker, ConfigReport Report)
{
    /// <summary>The component of that name, or null.</summary>
    public PipelineComponent? Component(string name) => Components.FirstOrDefault(c => c.Name == name);

    /// <summary>Parses model_index.json.</summary>
    /// <exception cref="InvalidDataException">Malformed JSON, a wrong type or a missing _class_name (the message names file and key).</exception>
    public static ModelIndex Load(string path) => Parse(ConfigReader.Open(path));

    /// <summary>Parses the JSON text of a model index; <paramref name="file"/> names it in errors.</summary>
    public static ModelIndex Parse(string file, string json) => Parse(new ConfigReader(file, json));

    private static ModelIndex Parse(ConfigReader r)
    {
        var cls = r.String("_class_name");
        var version = r.StringOrNull("_diffusers_version");
        r.Known("_name_or_path");
        var requires = r.BoolOrNull("requires_safety_checker");
        var components = new List<PipelineComponent>();
        foreach (var key in r.Keys.Where(k => !k.StartsWith('_') && k != "requires_safety_checker").ToList())
        {
            if (r.Pair(key) is { } pair) components.Add(new PipelineComponent(key, pair.Library, pair.ClassName));
        }
        foreach (var c in components.Where(c => c.Name is "unet" or "vae" or "text_encoder" or "tokenizer" or "scheduler" && c.ClassName is null))
            r.Unsupported(c.Name, "a Stable Diffusion pipeline needs this component, but model_index.json names none");
        return new ModelIndex(cls, version, components, requires, r.Report());
    }
}
