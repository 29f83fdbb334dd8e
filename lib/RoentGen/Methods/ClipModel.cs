using System.Text.Json;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Text;
using RoentGen.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Methods;

/// <summary>
/// A CLIP-style vision-language model as one unit: the image tower (<see cref="VisionTransformer"/>), the text tower
/// (<see cref="ClipTextModel"/>), the projections and learnable temperature (<see cref="ClipHeads"/>), the BPE tokenizer
/// and the <see cref="ClipConfig"/> that sized them (token length included). <see cref="Save"/> writes it as one folder
/// and <see cref="Load"/> reads it back with every key and shape checked:
/// <code>
/// DIR/config.json           the ClipConfig (written last: a folder without it is not a finished model)
/// DIR/model.safetensors     "backbone.*", "text_encoder.*", "heads.*" (metadata "kind" = "roentgen-clip", "config")
/// DIR/tokenizer/vocab.json, merges.txt
/// </code>
/// A run folder of <see cref="EncoderRuns.Clip"/> holds the unit in DIR/model; <see cref="Load"/> accepts either folder.
/// </summary>
public sealed class ClipModel : IDisposable
{
    /// <summary>The weights file of a model folder.</summary>
    public const string WeightsFileName = "model.safetensors";
    /// <summary>The config file of a model folder.</summary>
    public const string ConfigFileName = "config.json";
    /// <summary>The tokenizer folder of a model folder.</summary>
    public const string TokenizerFolder = "tokenizer";
    /// <summary>The folder of the unit inside a CLIP run folder.</summary>
    public const string RunModelFolder = "model";
    /// <summary>The safetensors metadata key that marks the file's kind.</summary>
    public const string KindMetadataKey = "kind";
    /// <summary>The kind written under <see cref="KindMetadataKey"/>.</summary>
    public const string Kind = "roentgen-clip";

    /// <summary>Builds fresh towers and heads after <c>manual_seed(config.Seed)</c>, in the order image tower, text tower, heads.</summary>
    /// <param name="config">The model's sizes.</param>
    /// <param name="tokenizer">The tokenizer; it fixes the text tower's vocabulary.</param>
    /// <exception cref="ArgumentException">The config is inconsistent.</exception>
    public ClipModel(ClipConfig config, BpeTokenizer tokenizer) : this(config, tokenizer, seed: true) { }

    private ClipModel(ClipConfig config, BpeTokenizer tokenizer, bool seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tokenizer);
        config.Validate();
        Config = config;
        Tokenizer = tokenizer;
        if (seed) manual_seed(config.Seed);
        Backbone = new VisionTransformer(config.Vit);
        TextEncoder = new ClipTextModel(config.Text with { VocabSize = tokenizer.VocabSize, EndTokenId = tokenizer.EndId, MaxPositions = config.MaxTokens });
        Heads = new ClipHeads(config.Vit.HiddenSize, config.Text.HiddenSize, config.ProjectionDim, config.InitialTemperature, config.MaxLogitScale);
    }

    /// <summary>The config.</summary>
    public ClipConfig Config { get; }
    /// <summary>The tokenizer.</summary>
    public BpeTokenizer Tokenizer { get; }
    /// <summary>The image tower.</summary>
    public VisionTransformer Backbone { get; }
    /// <summary>The text tower.</summary>
    public ClipTextModel TextEncoder { get; }
    /// <summary>Projections and temperature.</summary>
    public ClipHeads Heads { get; }

    /// <summary>The parts by their key prefix: "backbone", "text_encoder", "heads".</summary>
    public IReadOnlyDictionary<string, nn.Module> Modules => new Dictionary<string, nn.Module>
    {
        ["backbone"] = Backbone, ["text_encoder"] = TextEncoder, ["heads"] = Heads,
    };

    /// <summary>The image side the image tower expects.</summary>
    public int ImageSize => Config.Vit.ImageSize;

    /// <summary>Projected embeddings (B, P) of images (B, 1, S, S) in [-1, 1] (with gradient when enabled; not normalised).</summary>
    public Tensor EmbedImages(Tensor pixels)
    {
        using var scope = NewDisposeScope();
        return Heads.ProjectImage(Backbone.call(pixels)).MoveToOuterDisposeScope();
    }

    /// <summary>Projected embeddings (B, P) of texts, tokenized to <see cref="ClipConfig.MaxTokens"/> (not normalised).</summary>
    public Tensor EmbedTexts(IReadOnlyList<string> texts)
    {
        using var scope = NewDisposeScope();
        var ids = Tokenizer.EncodeBatch(texts, Config.MaxTokens).Ids;
        return Heads.ProjectText(TextEncoder.Encode(ids).Pooled).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Writes the unit into <paramref name="dir"/> (created if needed): tokenizer, weights, then config.json, each atomically,
    /// so an interrupted save leaves a folder that <see cref="Exists"/> does not accept.
    /// </summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        Tokenizer.Save(Path.Combine(dir, TokenizerFolder));
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (prefix, module) in Modules)
            foreach (var (key, t) in module.state_dict()) tensors[$"{prefix}.{key}"] = t;
        var json = Config.ToJson();
        SafeTensors.Save(Path.Combine(dir, WeightsFileName), tensors, new Dictionary<string, string>
        {
            [KindMetadataKey] = Kind, [SafeTensors.ConfigMetadataKey] = json, ["format"] = "pt",
        });
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFileName), json);
    }

    /// <summary>True when <paramref name="dir"/> (or its <see cref="RunModelFolder"/>) holds a complete saved model.</summary>
    public static bool Exists(string dir) => MissingParts(Resolve(dir)).Count == 0;

    /// <summary>The model folder of <paramref name="dir"/>: DIR itself, or DIR/model when DIR is a CLIP run folder holding one.</summary>
    public static string Resolve(string dir)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dir);
        var inner = Path.Combine(dir, RunModelFolder);
        return !File.Exists(Path.Combine(dir, WeightsFileName)) && File.Exists(Path.Combine(inner, WeightsFileName)) ? inner : dir;
    }

    /// <summary>
    /// Reads a model folder written by <see cref="Save"/> (or a CLIP run folder holding one in DIR/model). Every key and
    /// shape of the three parts is checked (strict); nothing is seeded or trained.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="FileNotFoundException">A part of the unit is missing; the message lists what and what a model folder holds.</exception>
    /// <exception cref="InvalidDataException">The weights are not a CLIP model's (kind), or the config is not a usable ClipConfig.</exception>
    /// <exception cref="StateDictMismatchException">The weights do not fit the config (the message lists the keys).</exception>
    public static ClipModel Load(string dir)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dir);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"CLIP model folder {dir} does not exist; {Layout}");
        var folder = Resolve(dir);
        var missing = MissingParts(folder);
        if (missing.Count > 0)
            throw new FileNotFoundException($"{dir} is not a CLIP model folder: it lacks {string.Join(", ", missing)}; {Layout}", Path.Combine(folder, missing[0]));
        var weights = Path.Combine(folder, WeightsFileName);
        var (_, metadata) = SafeTensors.ReadHeader(weights);
        if (!metadata.TryGetValue(KindMetadataKey, out var kind) || kind != Kind)
            throw new InvalidDataException($"{weights}: not a CLIP model's weights (metadata \"{KindMetadataKey}\" is {(kind is null ? "absent" : $"'{kind}'")}, expected '{Kind}'); {Layout}");
        var config = ClipConfig.Load(Path.Combine(folder, ConfigFileName));
        try { config.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{Path.Combine(folder, ConfigFileName)}: not a usable ClipConfig: {e.Message}", e); }
        var tokDir = Path.Combine(folder, TokenizerFolder);
        var tokenizer = BpeTokenizer.Load(Path.Combine(tokDir, "vocab.json"), Path.Combine(tokDir, "merges.txt"));
        var model = new ClipModel(config, tokenizer, seed: false);
        try
        {
            using var file = SafeTensors.Load(weights);
            foreach (var (prefix, module) in model.Modules)
            {
                var part = file.Tensors.Where(kv => kv.Key.StartsWith(prefix + ".", StringComparison.Ordinal))
                    .ToDictionary(kv => kv.Key[(prefix.Length + 1)..], kv => kv.Value);
                StateDict.Load(module, part, strict: true, $"{weights} ({prefix}.*)");
            }
            var known = model.Modules.Keys.Select(p => p + ".").ToArray();
            if (file.Tensors.Keys.FirstOrDefault(k => !known.Any(p => k.StartsWith(p, StringComparison.Ordinal))) is { } stray)
                throw new InvalidDataException($"{weights}: unexpected key '{stray}'; a CLIP model's keys start with {string.Join(", ", known)}");
        }
        catch
        {
            model.Dispose();
            throw;
        }
        foreach (var m in model.Modules.Values) m.eval();
        return model;
    }

    private const string Layout = "a CLIP model folder holds config.json, model.safetensors and tokenizer/vocab.json + merges.txt, as ClipModel.Save writes them "
        + "(roentgen pairaug pretrain --out DIR, or roentgen train clip --out DIR, which keeps it in DIR/model)";

    private static readonly string[] Parts = [ConfigFileName, WeightsFileName, Path.Combine(TokenizerFolder, "vocab.json"), Path.Combine(TokenizerFolder, "merges.txt")];

    private static List<string> MissingParts(string folder) => Parts.Where(f => !File.Exists(Path.Combine(folder, f))).ToList();

    /// <summary>A content fingerprint of the saved model in <paramref name="dir"/> (config, weights, tokenizer; <see cref="Platform.ModelFingerprint.OfFiles"/>).</summary>
    /// <exception cref="FileNotFoundException">A part is missing.</exception>
    public static string Fingerprint(string dir) => Platform.ModelFingerprint.OfFiles(Resolve(dir), Parts);

    /// <inheritdoc />
    public void Dispose()
    {
        Backbone.Dispose();
        TextEncoder.Dispose();
        Heads.Dispose();
    }
}
