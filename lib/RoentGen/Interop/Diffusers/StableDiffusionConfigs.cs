using RoentGen.Text;

namespace RoentGen.Interop.Diffusers;

/// <summary>
/// The four configs (and, where there is one, the tokenizer) that describe a Stable Diffusion pipeline without its
/// weights: what a single-file checkpoint needs beside it, since the file holds only tensors. From a diffusers folder's
/// configs (<see cref="FromFolder"/>, e.g. a model folder without weights) or a named preset (<see cref="FromPreset"/>).
/// </summary>
/// <param name="Source">Where the configs came from (a folder, or "preset sd15"), for messages.</param>
/// <param name="Unet">unet/config.json.</param>
/// <param name="Vae">vae/config.json.</param>
/// <param name="TextEncoder">text_encoder/config.json.</param>
/// <param name="Scheduler">scheduler/scheduler_config.json.</param>
/// <param name="Tokenizer">The folder's tokenizer, or null (presets carry none: CLIP's vocabulary is a 1.6 MB file).</param>
public sealed record StableDiffusionConfigs(string Source, UNet2DConditionConfig Unet, AutoencoderKLConfig Vae, ClipTextConfig TextEncoder,
    SchedulerConfig Scheduler, BpeTokenizer? Tokenizer)
{
    /// <summary>The preset names: sd15 (Stable Diffusion 1.x: v1-4 / v1-5, RoentGen) and sd21-base (Stable Diffusion 2.1-base, RoentGen-v2).</summary>
    public static IReadOnlyList<string> Presets => ["sd15", "sd21-base"];

    /// <summary>Every unsupported value of the four configs, as "file: key: problem".</summary>
    public IReadOnlyList<string> Unsupported =>
        new[] { Unet.Report, Vae.Report, TextEncoder.Report, Scheduler.Report }.SelectMany(r => r.Unsupported.Select(u => $"{r.File}: {u}")).ToList();

    /// <summary>
    /// The configs of a diffusers folder (model_index.json, unet/, vae/, text_encoder/, scheduler/ configs; weights are not
    /// needed), with its tokenizer/ when present.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">model_index.json or a component's config is missing (the message names it).</exception>
    /// <exception cref="InvalidDataException">A config is malformed (the message names file and key).</exception>
    public static StableDiffusionConfigs FromFolder(string dir)
    {
        var summary = DiffusersFolder.Inspect(dir);
        var missing = new[] { ("unet", (object?)summary.Unet), ("vae", summary.Vae), ("text_encoder", summary.TextEncoder), ("scheduler", summary.Scheduler) }
            .Where(p => p.Item2 is null).Select(p => p.Item1).ToList();
        if (missing.Count > 0)
            throw new FileNotFoundException($"{summary.Root}: model_index.json names no {string.Join(", ", missing)}; a Stable Diffusion config folder needs unet, vae, text_encoder and scheduler configs");
        var tokenizerDir = Path.Combine(summary.Root, "tokenizer");
        var tokenizer = Directory.Exists(tokenizerDir) ? BpeTokenizer.LoadFolder(tokenizerDir) : null;
        return new StableDiffusionConfigs(summary.Root, summary.Unet!, summary.Vae!, summary.TextEncoder!, summary.Scheduler!, tokenizer);
    }

    /// <summary>A named preset's configs (<see cref="Presets"/>), with no tokenizer; the values are those of the public model folders' config files.</summary>
    /// <exception cref="ArgumentException">No preset of that name.</exception>
    public static StableDiffusionConfigs FromPreset(string name)
    {
        var (unet, vae, text, scheduler) = name switch
        {
            "sd15" => (StableDiffusionPresets.Sd15Unet, StableDiffusionPresets.Sd15Vae, StableDiffusionPresets.Sd15TextEncoder, StableDiffusionPresets.Sd15Scheduler),
            "sd21-base" => (StableDiffusionPresets.Sd21BaseUnet, StableDiffusionPresets.Sd21BaseVae, StableDiffusionPresets.Sd21BaseTextEncoder, StableDiffusionPresets.Sd21BaseScheduler),
            _ => throw new ArgumentException($"no preset '{name}' (presets: {string.Join(", ", Presets)})", nameof(name)),
        };
        return new StableDiffusionConfigs($"preset {name}",
            UNet2DConditionConfig.Parse($"preset {name}: unet/config.json", unet),
            AutoencoderKLConfig.Parse($"preset {name}: vae/config.json", vae),
            ClipTextConfig.Parse($"preset {name}: text_encoder/config.json", text),
            SchedulerConfig.Parse($"preset {name}: scheduler/scheduler_config.json", scheduler),
            null);
    }

    /// <summary>A preset by name when <paramref name="folderOrPreset"/> is one, else the folder's configs.</summary>
    /// <exception cref="DirectoryNotFoundException">Neither a preset nor an existing folder (the message names both).</exception>
    public static StableDiffusionConfigs Resolve(string folderOrPreset)
    {
        if (Presets.Contains(folderOrPreset)) return FromPreset(folderOrPreset);
        if (!Directory.Exists(folderOrPreset))
            throw new DirectoryNotFoundException($"{folderOrPreset}: neither a config folder nor a preset (presets: {string.Join(", ", Presets)})");
        return FromFolder(folderOrPreset);
    }
}

/// <summary>
/// The config files of two public Stable Diffusion model folders, as their values: <c>CompVis/stable-diffusion-v1-4</c>
/// (whose architecture and schedule v1-5 and RoentGen share) and <c>stabilityai/stable-diffusion-2-1-base</c> (RoentGen-v2's).
/// </summary>
internal static class StableDiffusionPresets
{
    public const string Sd15Unet = """
        {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.12.0.dev0", "act_fn": "silu", "attention_head_dim": 8,
         "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false, "class_embed_type": null, "cross_attention_dim": 768,
         "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"], "downsample_padding": 1,
         "dual_cross_attention": false, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
         "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32, "num_class_embeds": null, "only_cross_attention": false,
         "out_channels": 4, "resnet_time_scale_shift": "default", "sample_size": 64,
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], "upcast_attention": false, "use_linear_projection": false}
        """;

    public const string Sd15Vae = """
        {"_class_name": "AutoencoderKL", "_diffusers_version": "0.2.2", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
         "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"], "in_channels": 3, "latent_channels": 4,
         "layers_per_block": 2, "out_channels": 3, "sample_size": 512, "scaling_factor": 0.18215,
         "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}
        """;

    public const string Sd15TextEncoder = """
        {"_name_or_path": "openai/clip-vit-large-patch14", "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
         "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 3072,
         "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 12, "num_hidden_layers": 12,
         "pad_token_id": 1, "torch_dtype": "float32", "transformers_version": "4.21.0.dev0", "vocab_size": 49408}
        """;

    public const string Sd15Scheduler = """
        {"_class_name": "PNDMScheduler", "_diffusers_version": "0.7.0.dev0", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
         "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null, "clip_sample": false}
        """;

    public const string Sd21BaseUnet = """
        {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.10.0.dev0", "act_fn": "silu", "attention_head_dim": [5, 10, 20, 20],
         "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false, "cross_attention_dim": 1024,
         "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"], "downsample_padding": 1,
         "dual_cross_attention": false, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
         "norm_eps": 1e-05, "norm_num_groups": 32, "num_class_embeds": null, "only_cross_attention": false, "out_channels": 4, "sample_size": 64,
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], "use_linear_projection": true}
        """;

    public const string Sd21BaseVae = """
        {"_class_name": "AutoencoderKL", "_diffusers_version": "0.10.0.dev0", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
         "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"], "in_channels": 3, "latent_channels": 4,
         "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 768,
         "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}
        """;

    public const string Sd21BaseTextEncoder = """
        {"_name_or_path": "stabilityai/stable-diffusion-2", "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
         "eos_token_id": 2, "hidden_act": "gelu", "hidden_size": 1024, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 4096,
         "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 16, "num_hidden_layers": 23,
         "pad_token_id": 1, "projection_dim": 512, "torch_dtype": "float32", "transformers_version": "4.25.0.dev0", "vocab_size": 49408}
        """;

    public const string Sd21BaseScheduler = """
        {"_class_name": "PNDMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
         "clip_sample": false, "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": false, "skip_prk_steps": true,
         "steps_offset": 1, "trained_betas": null}
        """;
}
