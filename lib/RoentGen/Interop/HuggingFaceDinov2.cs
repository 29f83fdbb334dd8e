using System.Text.Json;
using System.Text.Json.Nodes;
using RoentGen.Platform;
using RoentGen.Vision;
using static TorchSharp.torch;

namespace RoentGen.Interop;

/// <summary>
/// Per-channel input normalisation of a pretrained encoder, as a Hugging Face image processor applies it:
/// pixels in [0, 1] become (x − mean[c]) / std[c].
/// </summary>
/// <param name="Mean">One mean per input channel (or a single one for every channel).</param>
/// <param name="Std">One standard deviation per input channel (or a single one), all positive.</param>
public sealed record PixelNormalization(float[] Mean, float[] Std)
{
    /// <summary>
    /// Normalises images given in [-1, 1] (this library's convention), shape (B, C, H, W): maps them to [0, 1],
    /// then subtracts the mean and divides by the standard deviation of each channel.
    /// </summary>
    /// <exception cref="ArgumentException">The channel count does not match the statistics.</exception>
    public Tensor Apply(Tensor images)
    {
        long c = images.shape[1];
        if (Mean.Length != Std.Length) throw new ArgumentException($"pixel normalisation has {Mean.Length} means but {Std.Length} standard deviations");
        if (Mean.Length != 1 && Mean.Length != c) throw new ArgumentException($"pixel normalisation has statistics for {Mean.Length} channels, images have {c}");
        using var scope = NewDisposeScope();
        var mean = tensor(Mean).view(1, -1, 1, 1).to(images.dtype);
        var std = tensor(Std).view(1, -1, 1, 1).to(images.dtype);
        return ((images + 1) / 2 - mean).div(std).MoveToOuterDisposeScope();
    }
}

/// <summary>A Dinov2 model read from a Hugging Face folder.</summary>
/// <param name="Model">The encoder with the checkpoint's weights.</param>
/// <param name="Config">The <see cref="VitConfig"/> made from config.json.</param>
/// <param name="Normalization">The image processor's normalisation (preprocessor_config.json), or null when the folder has none.</param>
/// <param name="IgnoredKeys">Keys outside the backbone that were skipped (e.g. "classifier.weight" of a Dinov2ForImageClassification); empty for a Dinov2Model.</param>
public sealed record HuggingFaceDinov2Model(VisionTransformer Model, VitConfig Config, PixelNormalization? Normalization, IReadOnlyList<string> IgnoredKeys);

/// <summary>
/// Reads Hugging Face <c>Dinov2Model</c> folders (the layout of microsoft/rad-dino and facebook/dinov2-*):
/// <c>config.json</c> (model_type "dinov2"), <c>model.safetensors</c> (or shards listed in
/// <c>model.safetensors.index.json</c>) and, optionally, <c>preprocessor_config.json</c>. The weights' keys are
/// the module's own (<c>embeddings.*</c>, <c>encoder.layer.{i}.*</c>, <c>layernorm.*</c>), so loading is a strict
/// key-by-key and shape-by-shape copy; a "dinov2." prefix (task heads' checkpoints) is stripped.
/// <para>
/// Grayscale input: rad-dino's patch embedding takes 3 channels. <see cref="VisionTransformer"/> refuses a
/// channel count that differs from its config; <see cref="Evaluation.Probes.VitEncoder"/> repeats a grayscale channel to the
/// model's channel count and then applies <see cref="HuggingFaceDinov2Model.Normalization"/>.
/// </para>
/// <para>
/// At the checkpoint's own image_size the forward pass is transformers' Dinov2Model (a test checks it against the
/// equations on a fixture). At other sizes both interpolate the position embeddings bicubically, but transformers
/// versions differ in how they size the grid (scale factor with a 0.1 offset, or target size), so features at
/// other resolutions may differ slightly from a given transformers release.
/// </para>
/// </summary>
public static class HuggingFaceDinov2
{
    /// <summary>The config file of a Hugging Face model folder.</summary>
    public const string ConfigFileName = "config.json";
    /// <summary>The single-file weights of a Hugging Face model folder.</summary>
    public const string WeightsFileName = "model.safetensors";
    /// <summary>The index of sharded weights.</summary>
    public const string ShardIndexFileName = "model.safetensors.index.json";
    /// <summary>The image processor's settings (mean and std).</summary>
    public const string PreprocessorFileName = "preprocessor_config.json";
    /// <summary>The prefix that task models (Dinov2ForImageClassification, ...) put before the backbone's keys.</summary>
    public const string BackbonePrefix = "dinov2.";

    /// <summary>The model_type values read here.</summary>
    public static IReadOnlyList<string> ModelTypes { get; } = ["dinov2", "dinov2_with_registers"];

    /// <summary>True when the JSON file is a Hugging Face config (it has a "model_type").</summary>
    public static bool IsHuggingFaceConfig(string configPath)
    {
        try { return JsonNode.Parse(File.ReadAllText(configPath)) is JsonObject o && o.ContainsKey("model_type"); }
        catch (JsonException) { return false; }
    }

    /// <summary>
    /// The <see cref="VitConfig"/> of a Hugging Face Dinov2 config.json: hidden_size, num_hidden_layers,
    /// num_attention_heads, patch_size and image_size are required; num_channels (3), mlp_ratio (4),
    /// layerscale_value (1.0), layer_norm_eps (1e-6), drop_path_rate (0) and num_register_tokens (0) default as in
    /// transformers. Variants this encoder does not implement (SwiGLU MLP, an activation other than exact GELU, no
    /// q/k/v bias) are refused rather than loaded wrongly.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a Dinov2 config; the message names the file and the field.</exception>
    public static VitConfig ReadConfig(string configPath)
    {
        if (!File.Exists(configPath)) throw new FileNotFoundException($"Hugging Face config not found: {configPath}", configPath);
        JsonObject o;
        try
        {
            o = JsonNode.Parse(InputFile.ReadAllText(configPath, 1 << 20, "config")) as JsonObject
                ?? throw new InvalidDataException($"{configPath}: expected a JSON object");
        }
        catch (JsonException e) { throw new InvalidDataException($"{configPath}: not valid JSON: {e.Message}", e); }

        string modelType = Str(o, "model_type", configPath, null)
            ?? throw new InvalidDataException($"{configPath}: no \"model_type\"; expected one of {string.Join(", ", ModelTypes)}");
        if (!ModelTypes.Contains(modelType))
            throw new InvalidDataException($"{configPath}: model_type \"{modelType}\" is not a Dinov2 model (expected one of {string.Join(", ", ModelTypes)})");
        string act = Str(o, "hidden_act", configPath, "gelu")!;
        if (act != "gelu") throw new InvalidDataException($"{configPath}: hidden_act \"{act}\" is not supported (this encoder uses exact GELU, \"gelu\")");
        if (Bool(o, "use_swiglu_ffn", configPath, false)) throw new InvalidDataException($"{configPath}: use_swiglu_ffn is true; the SwiGLU MLP (giant Dinov2 models) is not implemented");
        if (!Bool(o, "qkv_bias", configPath, true)) throw new InvalidDataException($"{configPath}: qkv_bias is false; this encoder always has query/key/value biases");

        var config = new VitConfig
        {
            HiddenSize = Int(o, "hidden_size", configPath),
            Layers = Int(o, "num_hidden_layers", configPath),
            Heads = Int(o, "num_attention_heads", configPath),
            PatchSize = Int(o, "patch_size", configPath),
            ImageSize = Int(o, "image_size", configPath),
            Channels = Int(o, "num_channels", configPath, 3),
            MlpRatio = Num(o, "mlp_ratio", configPath, 4),
            LayerScaleInit = Num(o, "layerscale_value", configPath, 1.0),
            LayerNormEps = Num(o, "layer_norm_eps", configPath, 1e-6),
            DropPathRate = Num(o, "drop_path_rate", configPath, 0),
            RegisterTokens = modelType == "dinov2_with_registers" ? Int(o, "num_register_tokens", configPath, 4) : 0,
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{configPath}: not a usable Dinov2 config: {e.Message}", e); }
        return config;
    }

    /// <summary>
    /// The normalisation of a preprocessor_config.json (image_mean, image_std when do_normalize is not false),
    /// or null when the file is absent or does not normalise.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not valid JSON, or mean and std are malformed.</exception>
    public static PixelNormalization? ReadNormalization(string preprocessorPath)
    {
        if (!File.Exists(preprocessorPath)) return null;
        JsonObject o;
        try
        {
            o = JsonNode.Parse(File.ReadAllText(preprocessorPath)) as JsonObject
                ?? throw new InvalidDataException($"{preprocessorPath}: expected a JSON object");
        }
        catch (JsonException e) { throw new InvalidDataException($"{preprocessorPath}: not valid JSON: {e.Message}", e); }
        if (!Bool(o, "do_normalize", preprocessorPath, true)) return null;
        float[]? mean = Floats(o, "image_mean", preprocessorPath), std = Floats(o, "image_std", preprocessorPath);
        if (mean is null || std is null) return null;
        if (mean.Length != std.Length) throw new InvalidDataException($"{preprocessorPath}: image_mean has {mean.Length} values but image_std has {std.Length}");
        if (std.Any(s => !(s > 0))) throw new InvalidDataException($"{preprocessorPath}: image_std must be positive, got [{string.Join(", ", std)}]");
        return new PixelNormalization(mean, std);
    }

    /// <summary>
    /// Loads a Hugging Face Dinov2 folder: the config, the weights (strictly: every key of the module present, none
    /// extra, every shape equal; values cast to float32) and the normalisation.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="FileNotFoundException">No config.json, or no safetensors weights (pytorch_model.bin is not read: convert it).</exception>
    /// <exception cref="InvalidDataException">
    /// The config is not a supported Dinov2 config, or the weights do not fit it; the message lists every missing,
    /// unexpected and wrongly shaped key.
    /// </exception>
    public static HuggingFaceDinov2Model Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Hugging Face model folder {folder} does not exist");
        var configPath = Path.Combine(folder, ConfigFileName);
        var config = ReadConfig(configPath);
        var normalization = ReadNormalization(Path.Combine(folder, PreprocessorFileName));
        var files = WeightFiles(folder);
        RoentGen.Nn.ModelSize.CheckAgainstWeights(configPath, config.ParameterCount(), files);
        var model = new VisionTransformer(config);
        var loaded = new List<SafeTensorsFile>();
        try
        {
            var tensors = new Dictionary<string, Tensor>();
            foreach (var f in files)
            {
                var file = SafeTensors.Load(f);
                loaded.Add(file);
                foreach (var (k, t) in file.Tensors)
                    if (!tensors.TryAdd(k, t)) throw new InvalidDataException($"{f}: key '{k}' appears in more than one weights file of {folder}");
            }
            var (backbone, ignored) = StripBackbonePrefix(tensors);
            string source = string.Join(", ", files.Select(Path.GetFileName));
            try { StateDict.Load(model, backbone, strict: true, Path.Combine(folder, source)); }
            catch (StateDictMismatchException e)
            {
                throw new InvalidDataException($"{Path.Combine(folder, source)}: weights do not fit the Dinov2Model of {configPath}:{Environment.NewLine}{e.Report}", e);
            }
            return new HuggingFaceDinov2Model(model, config, normalization, ignored);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            foreach (var f in loaded) f.Dispose();
        }
    }

    /// <summary>
    /// Splits a task model's state dict: keys under "dinov2." lose the prefix; other keys (task heads) are returned as
    /// ignored. A dict with no "dinov2." key is returned unchanged with nothing ignored.
    /// </summary>
    public static (Dictionary<string, Tensor> Backbone, IReadOnlyList<string> Ignored) StripBackbonePrefix(IReadOnlyDictionary<string, Tensor> tensors)
    {
        if (!tensors.Keys.Any(k => k.StartsWith(BackbonePrefix, StringComparison.Ordinal)))
            return (new Dictionary<string, Tensor>(tensors), []);
        var backbone = new Dictionary<string, Tensor>();
        var ignored = new List<string>();
        foreach (var (k, t) in tensors)
        {
            if (k.StartsWith(BackbonePrefix, StringComparison.Ordinal)) backbone[k[BackbonePrefix.Length..]] = t;
            else ignored.Add(k);
        }
        return (backbone, ignored);
    }

    private static IReadOnlyList<string> WeightFiles(string folder)
    {
        var single = Path.Combine(folder, WeightsFileName);
        if (File.Exists(single)) return [single];
        var index = Path.Combine(folder, ShardIndexFileName);
        if (File.Exists(index))
        {
            JsonObject? map;
            try { map = (JsonNode.Parse(InputFile.ReadAllText(index, 64 << 20, "shard index")) as JsonObject)?["weight_map"] as JsonObject; }
            catch (JsonException e) { throw new InvalidDataException($"{index}: not valid JSON: {e.Message}", e); }
            if (map is null) throw new InvalidDataException($"{index}: no \"weight_map\" object");
            var shards = new List<string>();
            var realPaths = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, value) in map)
            {
                string? name = value is JsonValue v && v.TryGetValue<string>(out var str) ? str : null;
                if (string.IsNullOrEmpty(name)) throw new InvalidDataException($"{index}: weight_map entry '{TextEscape.Escape(key)}' is not a file name");
                // Shard names are file names in the model folder: no absolute paths, no "..", no links leading out.
                var problem = RoentGen.Data.Datasets.DataRoot.LexicalProblem(folder, name)
                              ?? RoentGen.Data.Datasets.DataRoot.LinkProblem(folder, Path.Combine(folder, name), realPaths);
                if (problem is not null) throw new InvalidDataException($"{index}: weight_map entry '{TextEscape.Escape(key)}' names shard {problem}");
                var path = Path.GetFullPath(Path.Combine(folder, name));
                if (!shards.Contains(path)) shards.Add(path);
            }
            foreach (var s in shards) if (!File.Exists(s)) throw new FileNotFoundException($"{index} names shard {Path.GetFileName(s)}, which is not in {folder}", s);
            return shards;
        }
        var bin = Path.Combine(folder, "pytorch_model.bin");
        if (File.Exists(bin))
            throw new FileNotFoundException($"{folder} holds pytorch_model.bin (a Python pickle, not read here) but no {WeightsFileName}; convert it with safetensors' save_file first", single);
        throw new FileNotFoundException($"{folder} has no {WeightsFileName} (nor {ShardIndexFileName})", single);
    }

    private static JsonNode? Field(JsonObject o, string key) => o.TryGetPropertyValue(key, out var v) ? v : null;

    private static int Int(JsonObject o, string key, string path, int? fallback = null)
    {
        var v = Field(o, key);
        if (v is null) return fallback ?? throw new InvalidDataException($"{path}: required field \"{key}\" is missing");
        try { return v.GetValue<int>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: \"{key}\" is {v.ToJsonString()}, expected an integer", e);
        }
    }

    private static double Num(JsonObject o, string key, string path, double fallback)
    {
        var v = Field(o, key);
        if (v is null) return fallback;
        try { return v.GetValue<double>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: \"{key}\" is {v.ToJsonString()}, expected a number", e);
        }
    }

    private static bool Bool(JsonObject o, string key, string path, bool fallback)
    {
        var v = Field(o, key);
        if (v is null) return fallback;
        try { return v.GetValue<bool>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: \"{key}\" is {v.ToJsonString()}, expected true or false", e);
        }
    }

    private static string? Str(JsonObject o, string key, string path, string? fallback)
    {
        var v = Field(o, key);
        if (v is null) return fallback;
        try { return v.GetValue<string>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: \"{key}\" is {v.ToJsonString()}, expected a string", e);
        }
    }

    private static float[]? Floats(JsonObject o, string key, string path)
    {
        var v = Field(o, key);
        if (v is null) return null;
        if (v is not JsonArray a) throw new InvalidDataException($"{path}: \"{key}\" is {v.ToJsonString()}, expected an array of numbers");
        try { return a.Select(x => x!.GetValue<float>()).ToArray(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
        {
            throw new InvalidDataException($"{path}: \"{key}\" is {v.ToJsonString()}, expected an array of numbers", e);
        }
    }
}
