using RoentGen.Training;
using System.Text;
using RoentGen.Diffusion;
using RoentGen.Platform;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;
using TextConfig = RoentGen.Text.ClipTextConfig;

namespace RoentGen.Interop.Diffusers;

/// <summary>How <see cref="DiffusersPipelineLoader.Load"/> reads a folder.</summary>
public sealed record DiffusersLoadOptions
{
    /// <summary>
    /// The weight-file variant to read (diffusers' <c>variant</c>): "fp16" reads <c>diffusion_pytorch_model.fp16.safetensors</c>,
    /// <c>model.fp16.safetensors</c> and sharded <c>*.safetensors.index.fp16.json</c>; null reads the plain names.
    /// </summary>
    public string? Variant { get; init; }
    /// <summary>The dtype the models are built in; every F16, BF16, F32 or F64 weight is converted to it.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;
    /// <summary>Latent side the pipeline samples at; null: the UNet config's sample_size (64 for SD at 512 px).</summary>
    public int? LatentSize { get; init; }
    /// <summary>Token sequence length; null: the tokenizer's model_max_length, else the text encoder's positions (77).</summary>
    public int? MaxTokens { get; init; }
}

/// <summary>Weights of one or more components of a diffusers folder do not match the models their configs describe.</summary>
public sealed class DiffusersWeightsMismatchException(string message, IReadOnlyDictionary<string, StateDictReport> reports) : Exception(message)
{
    /// <summary>Per component (unet, vae, text_encoder) whose weights do not match: every missing, unexpected and mis-shaped key.</summary>
    public IReadOnlyDictionary<string, StateDictReport> Reports { get; } = reports;
}

/// <summary>
/// Loads a diffusers Stable Diffusion folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/, with
/// safetensors weights) into this library's <see cref="UNet2DConditionModel"/>, <see cref="AutoencoderKL"/> and
/// <see cref="ClipTextModel"/>, and returns a <see cref="TextToImagePipeline"/> over them. SD 1.x and 2.x(-base) layouts
/// load: heads per level, linear or 1x1-conv transformer projections, transformer depth per level, cross-attention
/// width, upcast attention, the 3-channel VAE with its scaling factor, quick-GELU or GELU text encoders, epsilon or v
/// prediction, linear / scaled-linear / squared-cosine betas, leading / trailing / linspace spacing, steps_offset and
/// set_alpha_to_one.
/// </summary>
/// <remarks>
/// <para>The configs are read by <see cref="UNet2DConditionConfig"/>, <see cref="AutoencoderKLConfig"/>,
/// <see cref="ClipTextConfig"/> and <see cref="SchedulerConfig"/>; any value this library cannot reproduce is refused, all
/// of them in one message. Weights are strict: every missing, unexpected and mis-shaped key of every component is listed
/// in one <see cref="DiffusersWeightsMismatchException"/>. Pickle files (.bin, .ckpt, .pt) are never opened.</para>
/// <para>Two compatibility rules, both of which diffusers / transformers apply themselves: VAE mid-block attention
/// weights of older exports (query, key, value, proj_attn; as Linear or 1x1-conv shapes) are read as to_q, to_k, to_v,
/// to_out.0; and the int64 <c>text_model.embeddings.position_ids</c> buffer of older CLIP exports is skipped (the
/// positions are always 0 … L−1 here).</para>
/// <para>Grayscale chest X-rays and SD's 3-channel VAE: images going in are repeated to 3 channels, images coming out
/// are averaged to one (<see cref="TextToImagePipeline.ToVaeChannels"/>, <see cref="TextToImagePipeline.ToGrayscale"/>).
/// The sampler is chosen per request (<see cref="SampleRequest.Scheduler"/>), over the folder's training schedule;
/// the folder's scheduler class (PNDM, DDIM, ...) only supplies that schedule.</para>
/// <para>Not in this loader: LoRA or other adapters, single-file LDM checkpoints, fine-tuning.</para>
/// </remarks>
public static class DiffusersPipelineLoader
{
    /// <summary>Weight file stem of diffusers models (unet, vae).</summary>
    public const string DiffusersWeightsName = "diffusion_pytorch_model";
    /// <summary>Weight file stem of transformers models (text_encoder).</summary>
    public const string TransformersWeightsName = "model";

    /// <summary>Older diffusers VAE attention names → current ones (the suffix after "mid_block.attentions.0.").</summary>
    public static readonly IReadOnlyDictionary<string, string> VaeAttentionAliases = new Dictionary<string, string>
    {
        ["query"] = "to_q", ["key"] = "to_k", ["value"] = "to_v", ["proj_attn"] = "to_out.0",
    };

    /// <summary>Keys skipped when present: buffers that older exports saved and the models here do not hold.</summary>
    public static readonly IReadOnlyList<string> IgnoredKeys = ["text_model.embeddings.position_ids"];

    /// <summary>
    /// Whether a folder is in diffusers' layout: its model_index.json is a JSON object with a "_class_name" (the library's
    /// own model folders write a model_index.json without one).
    /// </summary>
    public static bool IsDiffusersFolder(string dir)
    {
        var path = Path.Combine(dir, "model_index.json");
        if (!File.Exists(path)) return false;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(InputFile.ReadAllText(path, 1 << 20, "model index"));
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty("_class_name", out _);
        }
        catch (System.Text.Json.JsonException) { return false; }
    }

    /// <summary>Loads the folder into a pipeline (see the class remarks for what is read and refused).</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">model_index.json, a component folder, a config or a weight file is missing (the message names it).</exception>
    /// <exception cref="InvalidDataException">A config has values this library does not build, components disagree, a weight file is malformed,
    /// or only pickle weights exist.</exception>
    /// <exception cref="DiffusersWeightsMismatchException">The weights do not match the configs' models (every key listed).</exception>
    public static TextToImagePipeline Load(string dir, DiffusersLoadOptions? options = null)
    {
        options ??= new DiffusersLoadOptions();
        if (options.DType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"DType {options.DType} is not a floating-point type the models can run in (Float32, Float16, BFloat16, Float64)", nameof(options));
        var summary = DiffusersFolder.Inspect(dir);
        var root = summary.Root;
        var problems = new List<string>(summary.Unsupported);
        foreach (var name in DiffusersFolder.ReadComponents)
            if (summary.Index.Component(name) is null) problems.Add($"{Path.Combine(root, "model_index.json")}: no component '{name}' (a Stable Diffusion pipeline needs unet, vae, text_encoder, tokenizer and scheduler)");
        if (problems.Count > 0) throw Refused(root, problems);

        var unetCfg = summary.Unet!;
        var vaeCfg = summary.Vae!;
        var textCfg = summary.TextEncoder!;
        var schedCfg = summary.Scheduler!;
        var tokenizer = BpeTokenizer.LoadFolder(Path.Combine(root, "tokenizer"));

        var (unetConfig, vaeConfig, textConfig, schedule, latentSize, maxTokens) = ToLibraryConfigs(unetCfg, vaeCfg, textCfg, schedCfg, tokenizer, options, problems);
        if (problems.Count > 0) throw Refused(root, problems);

        // Read every component's weights first, so that a folder with several problems reports all of them at once.
        var sources = new Dictionary<string, Dictionary<string, Tensor>>();
        try
        {
            sources["unet"] = ReadWeights(Path.Combine(root, "unet"), DiffusersWeightsName, options.Variant);
            sources["vae"] = RenameVaeAttention(ReadWeights(Path.Combine(root, "vae"), DiffusersWeightsName, options.Variant), Path.Combine(root, "vae"));
            sources["text_encoder"] = ReadWeights(Path.Combine(root, "text_encoder"), TransformersWeightsName, options.Variant);
            foreach (var key in IgnoredKeys)
                if (sources["text_encoder"].Remove(key, out var t)) t.Dispose();

            var unet = new UNet2DConditionModel(unetConfig);
            var vae = new AutoencoderKL(vaeConfig);
            var text = new ClipTextModel(textConfig);
            var modules = new (string Name, nn.Module Module)[] { ("unet", unet), ("vae", vae), ("text_encoder", text) };
            var reports = new Dictionary<string, StateDictReport>();
            foreach (var (name, module) in modules)
            {
                var report = StateDict.Compare(module.state_dict(), sources[name]);
                if (!report.IsExact) reports[name] = report;
                foreach (var (key, t) in sources[name])
                    if (!t.is_floating_point())
                        problems.Add($"{name}: tensor '{key}' has dtype {t.dtype}; expected a floating-point weight (F16, BF16, F32 or F64)");
            }
            if (reports.Count > 0 || problems.Count > 0)
            {
                var sb = new StringBuilder($"{root}: the weights do not match the models the configs describe:");
                foreach (var p in problems) sb.Append(Environment.NewLine).Append(p);
                foreach (var (name, report) in reports)
                    sb.Append(Environment.NewLine).Append($"{name} ({Path.Combine(root, name)}):").Append(Environment.NewLine).Append(report);
                throw new DiffusersWeightsMismatchException(sb.ToString(), reports);
            }
            foreach (var (name, module) in modules)
            {
                if (options.DType != ScalarType.Float32) module.to(options.DType);
                StateDict.Load(module, sources[name], strict: true, sourceName: Path.Combine(root, name));
                if (options.DType == ScalarType.BFloat16) BFloat16Kernels.Repair(module);   // convolutions this machine's bf16 kernels get wrong
            }
            foreach (var (_, module) in modules) module.eval();
            var scheduleObj = new NoiseSchedule(schedule);
            return new TextToImagePipeline(vae, unet, text, tokenizer, scheduleObj, latentSize, maxTokens);
        }
        finally
        {
            foreach (var d in sources.Values) foreach (var t in d.Values) t.Dispose();
        }
    }

    /// <summary>
    /// The library's configs for a pipeline's four diffusers configs and tokenizer (each converted, cross-checked and
    /// validated); every problem is added to <paramref name="problems"/>, named with its config file.
    /// </summary>
    internal static (UNetConfig Unet, VaeConfig Vae, TextConfig Text, NoiseScheduleConfig Schedule, int LatentSize, int MaxTokens) ToLibraryConfigs(
        UNet2DConditionConfig unetCfg, AutoencoderKLConfig vaeCfg, ClipTextConfig textCfg, SchedulerConfig schedCfg, BpeTokenizer tokenizer,
        DiffusersLoadOptions options, List<string> problems)
    {
        var unetConfig = ToUNetConfig(unetCfg, problems);
        var vaeConfig = ToVaeConfig(vaeCfg, problems);
        var textConfig = ToTextConfig(textCfg, tokenizer, problems);
        var schedule = ToScheduleConfig(schedCfg, problems);
        if (unetCfg.InChannels != vaeCfg.LatentChannels || unetCfg.OutChannels != vaeCfg.LatentChannels)
            problems.Add($"unet/config.json: in_channels {unetCfg.InChannels} and out_channels {unetCfg.OutChannels} must equal vae/config.json latent_channels {vaeCfg.LatentChannels}");
        if (unetCfg.CrossAttentionDim != textCfg.HiddenSize)
            problems.Add($"unet/config.json: cross_attention_dim {unetCfg.CrossAttentionDim} must equal text_encoder/config.json hidden_size {textCfg.HiddenSize}");
        int latentSize = options.LatentSize ?? unetCfg.SampleSize ?? 0;
        if (latentSize <= 0) problems.Add("unet/config.json: no sample_size; pass DiffusersLoadOptions.LatentSize");
        else if (latentSize % (1 << (unetCfg.Levels - 1)) != 0)
            problems.Add($"latent size {latentSize} is not divisible by {1 << (unetCfg.Levels - 1)} (the UNet's {unetCfg.Levels} levels)");
        int maxTokens = options.MaxTokens ?? tokenizer.ModelMaxLength ?? textCfg.MaxPositionEmbeddings;
        if (maxTokens < 2 || maxTokens > textCfg.MaxPositionEmbeddings)
            problems.Add($"{maxTokens} tokens per prompt do not fit text_encoder/config.json max_position_embeddings {textCfg.MaxPositionEmbeddings} (expected 2 to that)");
        foreach (var (file, validate) in new (string, Action)[]
                 { ("unet/config.json", unetConfig.Validate), ("vae/config.json", vaeConfig.Validate), ("text_encoder/config.json", textConfig.Validate) })
        {
            try { validate(); }
            catch (ArgumentException e) { problems.Add($"{file}: {e.Message}"); }
        }
        try { _ = new NoiseSchedule(schedule); }
        catch (ArgumentException e) { problems.Add($"scheduler/scheduler_config.json: {e.Message}"); }

        return (unetConfig, vaeConfig, textConfig, schedule, latentSize, maxTokens);
    }

    /// <summary>The UNet this library builds for a diffusers UNet config; what it cannot build is added to <paramref name="problems"/>.</summary>
    public static UNetConfig ToUNetConfig(UNet2DConditionConfig c, List<string> problems)
    {
        const string file = "unet/config.json";
        if (c.CenterInputSample) problems.Add($"{file}: center_input_sample true is not supported (expected false)");
        if (!c.FlipSinToCos) problems.Add($"{file}: flip_sin_to_cos false is not supported (expected true: cos then sin, as SD)");
        if (c.FreqShift != 0) problems.Add($"{file}: freq_shift {c.FreqShift} is not supported (expected 0)");
        if (c.DownsamplePadding != 1) problems.Add($"{file}: downsample_padding {c.DownsamplePadding} is not supported (expected 1)");
        if (c.MidBlockScaleFactor != 1) problems.Add($"{file}: mid_block_scale_factor {c.MidBlockScaleFactor} is not supported (expected 1)");
        if (c.MidBlockType is null) problems.Add($"{file}: mid_block_type null (no middle block) is not supported (expected UNetMidBlock2DCrossAttn)");
        var levels = new bool[c.Levels];
        for (int i = 0; i < c.Levels; i++)
        {
            levels[i] = c.DownHasAttention(i);
            if (c.UpHasAttention(c.Levels - 1 - i) != levels[i])
                problems.Add($"{file}: down level {i} is {c.DownBlockTypes[i]} but its up level (up_block_types[{c.Levels - 1 - i}]) is {c.UpBlockTypes[c.Levels - 1 - i]}; "
                             + "expected cross-attention on both or neither (a symmetric UNet)");
        }
        return new UNetConfig
        {
            InChannels = c.InChannels,
            OutChannels = c.OutChannels,
            BlockOutChannels = c.BlockOutChannels.ToArray(),
            CrossAttentionLevels = levels,
            LayersPerBlock = c.LayersPerBlock,
            AttentionHeadDim = c.HeadDimPerLevel[0],
            HeadsPerLevel = c.HeadsPerLevel.ToArray(),
            TransformerLayersPerLevel = c.TransformerLayersPerBlock.All(d => d == 1) ? null : c.TransformerLayersPerBlock.ToArray(),
            CrossAttentionDim = c.CrossAttentionDim,
            NormGroups = c.NormNumGroups,
            NormEps = c.NormEps,
            MidBlockAttention = true,
            UseLinearProjection = c.UseLinearProjection,
            UpcastAttention = c.UpcastAttention,
        };
    }

    /// <summary>The autoencoder this library builds for a diffusers VAE config (its scaling factor included).</summary>
    public static VaeConfig ToVaeConfig(AutoencoderKLConfig c, List<string> problems)
    {
        if (c.InChannels is not (1 or 3)) problems.Add($"vae/config.json: in_channels {c.InChannels} is not supported (expected 3, or 1 for a grayscale VAE)");
        if (c.OutChannels is not (1 or 3)) problems.Add($"vae/config.json: out_channels {c.OutChannels} is not supported (expected 3, or 1 for a grayscale VAE)");
        return new VaeConfig
        {
            InChannels = c.InChannels,
            OutChannels = c.OutChannels,
            LatentChannels = c.LatentChannels,
            BlockOutChannels = c.BlockOutChannels.ToArray(),
            LayersPerBlock = c.LayersPerBlock,
            NormGroups = c.NormNumGroups,
            ScalingFactor = c.ScalingFactor,
        };
    }

    /// <summary>The text encoder for a transformers CLIP text config: the pooled token is the tokenizer's end token.</summary>
    public static TextConfig ToTextConfig(ClipTextConfig c, BpeTokenizer tokenizer, List<string> problems)
    {
        if (tokenizer.VocabSize > c.VocabSize)
            problems.Add($"tokenizer/ has {tokenizer.VocabSize} tokens but text_encoder/config.json vocab_size is {c.VocabSize}: ids would fall outside the embedding");
        if (c.AttentionDropout != 0 || c.Dropout != 0)
            problems.Add($"text_encoder/config.json: dropout {c.Dropout} / attention_dropout {c.AttentionDropout} are not supported (expected 0)");
        return new TextConfig
        {
            VocabSize = c.VocabSize,
            MaxPositions = c.MaxPositionEmbeddings,
            HiddenSize = c.HiddenSize,
            Layers = c.NumHiddenLayers,
            Heads = c.NumAttentionHeads,
            IntermediateSize = c.IntermediateSize,
            LayerNormEps = c.LayerNormEps,
            EndTokenId = Math.Min(tokenizer.EndId, c.VocabSize - 1),
            HiddenAct = c.HiddenAct,
        };
    }

    /// <summary>The training schedule of a diffusers scheduler config (the sampler itself is chosen per request).</summary>
    public static NoiseScheduleConfig ToScheduleConfig(SchedulerConfig c, List<string> problems)
    {
        const string file = "scheduler/scheduler_config.json";
        var schedule = c.BetaSchedule switch
        {
            "linear" => BetaSchedule.Linear,
            "scaled_linear" => BetaSchedule.ScaledLinear,
            _ => BetaSchedule.Cosine,   // squaredcos_cap_v2 (others are in the report's unsupported list)
        };
        if (c.TrainedBetas is not null) problems.Add($"{file}: trained_betas is not supported (expected null: betas from beta_schedule)");
        if (c.PredictionType == "sample") problems.Add($"{file}: prediction_type \"sample\" is not supported (expected epsilon or v_prediction)");
        if (c.RescaleBetasZeroSnr == true) problems.Add($"{file}: rescale_betas_zero_snr true is not supported (expected false)");
        if (c.Thresholding == true) problems.Add($"{file}: thresholding true is not supported (expected false)");
        bool clipDefault = c.ClassName is "DDPMScheduler" or "DDIMScheduler";   // diffusers' default clip_sample for those classes is true
        if (c.ClipSample ?? clipDefault) problems.Add($"{file}: clip_sample true{(c.ClipSample is null ? $" ({c.ClassName}'s default)" : "")} is not supported (expected false: this library's samplers do not clip x̂₀)");
        var spacing = (c.TimestepSpacing ?? (c.ClassName == "EulerDiscreteScheduler" ? "linspace" : "leading")) switch
        {
            "leading" => TimestepSpacing.Leading,
            "trailing" => TimestepSpacing.Trailing,
            _ => TimestepSpacing.Linspace,
        };
        if (c.StepsOffset < 0 || c.StepsOffset >= c.NumTrainTimesteps)
            problems.Add($"{file}: steps_offset {c.StepsOffset} is outside [0, {c.NumTrainTimesteps - 1}]");
        return new NoiseScheduleConfig
        {
            TrainTimesteps = c.NumTrainTimesteps,
            BetaStart = c.BetaStart,
            BetaEnd = c.BetaEnd,
            Schedule = schedule,
            Prediction = c.PredictionType == "v_prediction" ? PredictionType.VPrediction : PredictionType.Epsilon,
            Spacing = spacing,
            StepsOffset = c.StepsOffset,
            SetAlphaToOne = c.SetAlphaToOneOrDefault,
        };
    }

    /// <summary>
    /// A file name with a variant inserted before its last extension, as diffusers names variants:
    /// "model.safetensors" + "fp16" → "model.fp16.safetensors"; "x.safetensors.index.json" → "x.safetensors.index.fp16.json".
    /// </summary>
    public static string WithVariant(string fileName, string? variant)
    {
        if (string.IsNullOrEmpty(variant)) return fileName;
        int dot = fileName.LastIndexOf('.');
        return $"{fileName[..dot]}.{variant}{fileName[dot..]}";
    }

    /// <summary>
    /// The tensors of one component folder: <c>{stem}.safetensors</c>, or the shards its <c>{stem}.safetensors.index.json</c>
    /// names (file names inside the folder; every key of the index must be in the shard it names, and no key in two shards),
    /// with the variant inserted when given. Tensors are on the CPU in their stored dtype.
    /// </summary>
    /// <exception cref="FileNotFoundException">Neither file exists; the message names both and any variant or pickle file found instead.</exception>
    /// <exception cref="InvalidDataException">Only pickle weights exist, an index points nowhere, or a file is malformed.</exception>
    public static Dictionary<string, Tensor> ReadWeights(string folder, string stem, string? variant = null)
    {
        CheckVariant(variant);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: missing component folder");
        var single = Path.Combine(folder, WithVariant($"{stem}.safetensors", variant));
        var index = Path.Combine(folder, WithVariant($"{stem}.safetensors.index.json", variant));
        if (File.Exists(single)) return SafeTensors.Load(single).Tensors;
        if (File.Exists(index)) return ReadSharded(index);

        var pickles = Directory.EnumerateFiles(folder)
            .Where(f => DiffusersFolder.PickleExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal).ToList();
        if (pickles.Count > 0)
            throw new InvalidDataException($"{folder}: no {Path.GetFileName(single)} (nor {Path.GetFileName(index)}); only pickle weights:{Environment.NewLine}"
                                           + string.Join(Environment.NewLine, pickles.Select(DiffusersFolder.PickleRefusal)));
        var others = Directory.EnumerateFiles(folder, "*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        throw new FileNotFoundException(
            $"{folder}: no {Path.GetFileName(single)} (nor {Path.GetFileName(index)})"
            + (others.Count > 0 ? $"; found {string.Join(", ", others)} (a different variant? set DiffusersLoadOptions.Variant)" : ""), single);
    }

    /// <summary>Refuses a variant that is not a plain name (letters, digits, '_', '-'), so that no file name leaves its folder.</summary>
    internal static void CheckVariant(string? variant)
    {
        if (variant is not null && (variant.Length == 0 || variant.Any(ch => !char.IsAsciiLetterOrDigit(ch) && ch != '_' && ch != '-')))
            throw new ArgumentException($"variant '{variant}' must be letters, digits, '_' or '-' (e.g. fp16)", nameof(variant));
    }

    private static Dictionary<string, Tensor> ReadSharded(string indexFile)
    {
        var map = new ConfigReader(indexFile, InputFile.ReadAllText(indexFile, 64L << 20, "sharded index")).ObjectOfStrings("weight_map");
        var shards = DiffusersFolder.ShardsOf(indexFile);   // checks that every named shard is a file beside the index
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var problems = new List<string>();
        try
        {
            foreach (var shard in shards)
            {
                var name = Path.GetFileName(shard);
                foreach (var (key, t) in SafeTensors.Load(shard).Tensors)
                {
                    if (!map.TryGetValue(key, out var expected)) problems.Add($"{name} holds '{key}', which weight_map does not list");
                    else if (expected != name) problems.Add($"{name} holds '{key}', which weight_map puts in {expected}");
                    if (!result.TryAdd(key, t)) { problems.Add($"'{key}' is in more than one shard"); t.Dispose(); }
                }
            }
            foreach (var (key, shard) in map)
                if (!result.ContainsKey(key)) problems.Add($"weight_map puts '{key}' in {shard}, which does not hold it");
            if (problems.Count > 0) throw new InvalidDataException($"{indexFile}: the shards do not match weight_map:{Environment.NewLine}{string.Join(Environment.NewLine, problems)}");
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    private static Dictionary<string, Tensor> RenameVaeAttention(Dictionary<string, Tensor> tensors, string folder)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var origin = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, t) in tensors)
        {
            var renamed = key;
            var tensor = t;
            foreach (var part in new[] { "encoder", "decoder" })
            {
                var prefix = $"{part}.mid_block.attentions.0.";
                if (!key.StartsWith(prefix, StringComparison.Ordinal)) continue;
                var rest = key[prefix.Length..];
                int dot = rest.LastIndexOf('.');
                if (dot > 0 && VaeAttentionAliases.TryGetValue(rest[..dot], out var name))
                {
                    renamed = prefix + name + rest[dot..];
                    if (t.dim() == 4 && t.shape[2] == 1 && t.shape[3] == 1) { tensor = t.reshape(t.shape[0], t.shape[1]); t.Dispose(); }
                }
            }
            if (!result.TryAdd(renamed, tensor))
            {
                foreach (var t2 in result.Values.Concat(tensors.Values).Append(tensor)) t2.Dispose();   // disposing twice is harmless
                throw new InvalidDataException($"{folder}: both '{origin[renamed]}' and '{key}' are present, the older and the current name of '{renamed}'; expected one of them");
            }
            origin[renamed] = key;
        }
        return result;
    }

    private static InvalidDataException Refused(string root, IReadOnlyList<string> problems) =>
        new($"{root}: cannot build this pipeline:{Environment.NewLine}{string.Join(Environment.NewLine, problems)}");
}
