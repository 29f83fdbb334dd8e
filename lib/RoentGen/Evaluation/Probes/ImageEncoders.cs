using RoentGen.Interop;
using RoentGen.Training;
using RoentGen.Vision;
using static TorchSharp.torch;

namespace RoentGen.Evaluation.Probes;

/// <summary>A frozen image encoder that probes judge: a global (CLS) feature and a grid of patch tokens per image.</summary>
public interface IImageEncoder
{
    /// <summary>A short name for tables and charts (e.g. "random-vit", "ssl-step-2000").</summary>
    string Name { get; }
    /// <summary>Width of the global feature.</summary>
    int FeatureDim { get; }
    /// <summary>Width of each patch token.</summary>
    int PatchDim { get; }
    /// <summary>The image side the encoder expects (images are resized to it before encoding).</summary>
    int InputSize { get; }
    /// <summary>
    /// Encodes a batch of grayscale images (B, 1, H, W) with values in [-1, 1]: Cls (B, FeatureDim) and
    /// Patches (B, GridH·GridW, PatchDim), row-major over the patch grid. Called under no_grad by the probes.
    /// </summary>
    (Tensor Cls, Tensor Patches, int GridH, int GridW) Encode(Tensor images);
}

/// <summary>A <see cref="VisionTransformer"/> as an <see cref="IImageEncoder"/> (put in eval mode, never trained here).</summary>
public class VitEncoder : IImageEncoder
{
    /// <summary>Wraps a ViT.</summary>
    /// <param name="model">The encoder.</param>
    /// <param name="name">A short name for tables and charts.</param>
    /// <param name="normalization">
    /// Input normalisation of a pretrained encoder (e.g. rad-dino's image processor), applied after the grayscale
    /// channel is repeated to the model's channel count; null feeds the [-1, 1] pixels unchanged.
    /// </param>
    public VitEncoder(VisionTransformer model, string name, PixelNormalization? normalization = null)
    {
        Model = model;
        Name = name;
        Normalization = normalization;
        model.eval();
    }

    /// <summary>The input normalisation, or null for none.</summary>
    public PixelNormalization? Normalization { get; }

    /// <summary>The wrapped model.</summary>
    public VisionTransformer Model { get; }
    /// <inheritdoc />
    public string Name { get; }
    /// <inheritdoc />
    public int FeatureDim => Model.EmbedDim;
    /// <inheritdoc />
    public int PatchDim => Model.EmbedDim;
    /// <inheritdoc />
    public int InputSize => Model.Config.ImageSize;

    /// <inheritdoc />
    public (Tensor Cls, Tensor Patches, int GridH, int GridW) Encode(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 1)
            throw new ArgumentException($"{Name}: expected grayscale images (B, 1, H, W), got ({string.Join(", ", images.shape)})", nameof(images));
        using var scope = NewDisposeScope();
        // Grayscale to the model's channels: rad-dino (and any RGB-trained ViT) takes the gray value on each of 3 channels.
        var x = Model.Config.Channels == 1 ? images : images.expand(-1, Model.Config.Channels, -1, -1);
        if (Normalization is not null) x = Normalization.Apply(x);
        var o = Model.Forward(x);
        int p = Model.Config.PatchSize;
        return (o.Cls.MoveToOuterDisposeScope(), o.Patches.MoveToOuterDisposeScope(), (int)(images.shape[2] / p), (int)(images.shape[3] / p));
    }

    /// <summary>
    /// Loads a ViT checkpoint folder: <c>config.json</c> (a <see cref="VitConfig"/>) with <c>model.safetensors</c>
    /// (saved by <see cref="Checkpoint.Save{TConfig}"/>), or with <c>backbone.safetensors</c> (a
    /// <see cref="Trainer"/> checkpoint whose "backbone" module is the ViT).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="FileNotFoundException">The folder holds no config.json, or neither weights file.</exception>
    /// <remarks>A Hugging Face folder (config.json with a "model_type") is read by <see cref="LoadHuggingFace"/>.</remarks>
    /// <exception cref="InvalidDataException">The config is not a ViT config, or the weights do not fit it.</exception>
    public static VitEncoder Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"encoder folder {folder} does not exist; expected a ViT checkpoint folder (config.json + model.safetensors or backbone.safetensors)");
        var configPath = Path.Combine(folder, Checkpoint.ConfigFileName);
        if (File.Exists(configPath) && HuggingFaceDinov2.IsHuggingFaceConfig(configPath)) return LoadHuggingFace(folder);
        var model = Path.Combine(folder, Checkpoint.WeightsFileName);
        var backbone = Path.Combine(folder, "backbone.safetensors");
        string weights = File.Exists(model) ? model : File.Exists(backbone) ? backbone
            : throw new FileNotFoundException($"encoder folder {folder} has neither {Checkpoint.WeightsFileName} nor backbone.safetensors", model);
        VitConfig config;
        if (File.Exists(configPath))
        {
            config = ReadVitConfig(configPath);
        }
        else
        {
            config = SafeTensors.ReadConfig<VitConfig>(weights)
                ?? throw new FileNotFoundException($"encoder folder {folder} has no {Checkpoint.ConfigFileName} and {Path.GetFileName(weights)} carries no config", configPath);
        }
        try { config.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{configPath}: not a valid ViT config: {e.Message}", e); }
        RoentGen.Nn.ModelSize.CheckAgainstWeights(configPath, config.ParameterCount(), [weights]);
        var vit = new VisionTransformer(config);
        using (var file = SafeTensors.Load(weights))
        {
            try { StateDict.Load(vit, file.Tensors, strict: true, weights); }
            catch (StateDictMismatchException e) { throw new InvalidDataException($"{weights}: weights do not fit the ViT of {configPath}: {e.Message}", e); }
        }
        return new VitEncoder(vit, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder))));
    }

    /// <summary>
    /// Loads a Hugging Face Dinov2Model folder (e.g. a local copy of microsoft/rad-dino: config.json,
    /// model.safetensors, preprocessor_config.json) with <see cref="HuggingFaceDinov2.Load"/>. Grayscale images are
    /// repeated to the model's channels and normalised with the folder's image_mean and image_std.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="FileNotFoundException">No config.json or no safetensors weights.</exception>
    /// <exception cref="InvalidDataException">Not a supported Dinov2 config, or the weights do not fit it (every bad key is named).</exception>
    public static VitEncoder LoadHuggingFace(string folder)
    {
        var hf = HuggingFaceDinov2.Load(folder);
        return new VitEncoder(hf.Model, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder))), hf.Normalization);
    }

    // A Trainer's config.json may be an experiment record holding the ViT config under a property
    // (e.g. "vit", "backbone", "model", "encoder"); a Checkpoint's config.json is the VitConfig itself.
    private static VitConfig ReadVitConfig(string path)
    {
        System.Text.Json.Nodes.JsonNode? root;
        try { root = System.Text.Json.Nodes.JsonNode.Parse(RoentGen.Platform.InputFile.ReadAllText(path, Checkpoint.MaxConfigBytes, "config")); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        if (root is not System.Text.Json.Nodes.JsonObject obj) throw new InvalidDataException($"{path}: expected a JSON object holding a ViT config");
        static bool LooksLikeVit(System.Text.Json.Nodes.JsonObject o) =>
            o.Any(kv => string.Equals(kv.Key, "hiddenSize", StringComparison.OrdinalIgnoreCase) || string.Equals(kv.Key, "hidden_size", StringComparison.OrdinalIgnoreCase))
            && o.Any(kv => string.Equals(kv.Key, "patchSize", StringComparison.OrdinalIgnoreCase) || string.Equals(kv.Key, "patch_size", StringComparison.OrdinalIgnoreCase));
        var node = LooksLikeVit(obj) ? obj
            : obj.Select(kv => kv.Value).OfType<System.Text.Json.Nodes.JsonObject>().FirstOrDefault(LooksLikeVit)
              ?? throw new InvalidDataException($"{path}: neither the object nor any of its properties is a ViT config (HiddenSize, PatchSize, ...)");
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<VitConfig>(node.ToJsonString(), SafeTensors.ConfigJsonOptions)
                ?? throw new InvalidDataException($"{path}: ViT config is null");
        }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}: not a valid ViT config: {e.Message}", e); }
    }
}

/// <summary>The baseline every trained encoder must beat: a randomly initialised ViT (fixed seed).</summary>
public sealed class RandomEncoder : VitEncoder
{
    /// <summary>A random ViT of the given shape (default: the laptop-sized <see cref="VitConfig"/>), seeded.</summary>
    public RandomEncoder(VitConfig? config = null, long seed = 0) : base(Build(config ?? new VitConfig(), seed), "random-vit") { }

    private static VisionTransformer Build(VitConfig config, long seed)
    {
        manual_seed(seed);
        return new VisionTransformer(config);
    }
}
