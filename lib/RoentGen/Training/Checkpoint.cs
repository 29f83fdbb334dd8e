using System.Text.Json;
using RoentGen.Interop;
using RoentGen.Nn;
using RoentGen.Platform;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Training;

/// <summary>
/// A model checkpoint folder: <c>model.safetensors</c> (the module's state dict, with the config JSON in its
/// metadata under "config") and <c>config.json</c> (the same config record), each written atomically.
/// </summary>
public static class Checkpoint
{
    /// <summary>The weights file's name inside a checkpoint folder.</summary>
    public const string WeightsFileName = "model.safetensors";
    /// <summary>The config file's name inside a checkpoint folder.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>Saves a module's state dict and its config record (any JSON-serializable record) to a folder.</summary>
    /// <param name="folder">The checkpoint folder (created if needed).</param>
    /// <param name="module">The module whose parameters and buffers are saved.</param>
    /// <param name="config">The component's config record.</param>
    /// <param name="metadata">Extra string metadata for the safetensors header (e.g. step, experiment name).</param>
    public static void Save<TConfig>(string folder, nn.Module module, TConfig config, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(folder);
        var json = JsonSerializer.Serialize(config, SafeTensors.ConfigJsonOptions);
        var meta = metadata is null ? new Dictionary<string, string>() : new Dictionary<string, string>(metadata);
        meta[SafeTensors.ConfigMetadataKey] = json;
        meta["format"] = "pt";
        // The module's own tensors are written as they are (the writer detaches and copies to the CPU).
        SafeTensors.Save(Path.Combine(folder, WeightsFileName), module.state_dict(), meta);
        AtomicFile.WriteAllText(Path.Combine(folder, ConfigFileName), json);
    }

    /// <summary>Reads the config record of a checkpoint folder (config.json, else the weights' metadata).</summary>
    /// <exception cref="FileNotFoundException">The folder holds neither.</exception>
    /// <exception cref="InvalidDataException">The JSON is not a <typeparamref name="TConfig"/>.</exception>
    public static TConfig ReadConfig<TConfig>(string folder)
    {
        var configPath = Path.Combine(folder, ConfigFileName);
        var weights = Path.Combine(folder, WeightsFileName);
        TConfig config;
        string source;
        if (File.Exists(configPath))
        {
            source = configPath;
            try
            {
                config = JsonSerializer.Deserialize<TConfig>(InputFile.ReadAllText(configPath, MaxConfigBytes, "config"), SafeTensors.ConfigJsonOptions)
                    ?? throw new InvalidDataException($"{configPath}: config is null");
            }
            catch (JsonException e) { throw new InvalidDataException($"{configPath}: not a valid {typeof(TConfig).Name}: {e.Message}", e); }
        }
        else
        {
            if (!File.Exists(weights)) throw new FileNotFoundException($"no {ConfigFileName} or {WeightsFileName} in checkpoint folder {folder}", configPath);
            source = $"{weights} (metadata \"{SafeTensors.ConfigMetadataKey}\")";
            config = SafeTensors.ReadConfig<TConfig>(weights)
                ?? throw new FileNotFoundException($"checkpoint folder {folder} has no {ConfigFileName} and its weights carry no config", configPath);
        }
        if (config is IModelConfig model)
        {
            // Sizes are checked here, before any caller builds the model from them.
            try { model.Validate(); }
            catch (ArgumentException e) { throw new InvalidDataException($"{source}: not a usable {typeof(TConfig).Name}: {e.Message}", e) { Data = { ["file"] = source } }; }
            if (File.Exists(weights)) ModelSize.CheckAgainstWeights(source, model.ParameterEstimate(), [weights]);
        }
        return config;
    }

    /// <summary>The largest config.json read (1 MiB).</summary>
    public const long MaxConfigBytes = 1 << 20;

    /// <summary>
    /// Loads a checkpoint folder's weights into a module. Strict (default): every missing, unexpected and wrongly
    /// shaped key is listed in one <see cref="StateDictMismatchException"/> and nothing is changed. Non-strict:
    /// what matches is loaded and the report returned.
    /// </summary>
    /// <exception cref="FileNotFoundException">No weights file.</exception>
    /// <exception cref="InvalidDataException">The weights file is malformed.</exception>
    /// <exception cref="StateDictMismatchException">Strict mode and the keys or shapes differ.</exception>
    public static StateDictReport Load(string folder, nn.Module module, bool strict = true)
    {
        var weights = Path.Combine(folder, WeightsFileName);
        using var file = SafeTensors.Load(weights);
        return StateDict.Load(module, file.Tensors, strict, weights);
    }
}
