using System.Text.Json;
using System.Text.Json.Nodes;
using RoentGen.Interop;
using RoentGen.Nn;
using RoentGen.Platform;
using RoentGen.Text;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>
/// What <c>model_index.json</c> of a saved <see cref="LatentDiffusionModel"/> holds (as diffusers' model_index.json):
/// the parts by folder name with their types, and the two sizes the pipeline needs.
/// </summary>
public sealed record LdmModelIndex
{
    /// <summary>The format's name.</summary>
    public string Format { get; init; } = "roentgen-latent-diffusion";
    /// <summary>The format's version.</summary>
    public int Version { get; init; } = 1;
    /// <summary>Part folder name → the type stored there.</summary>
    public Dictionary<string, string> Parts { get; init; } = new();
    /// <summary>Side of the latents.</summary>
    public int LatentSize { get; init; }
    /// <summary>Token sequence length of the prompts.</summary>
    public int MaxTokens { get; init; }
}

/// <summary>
/// A latent diffusion model as a set of named parts, like a diffusers pipeline's components: <c>vae</c>,
/// <c>text_encoder</c>, <c>tokenizer</c>, <c>unet</c> and <c>scheduler</c> (the noise-schedule config). It can be
/// built from an experiment config (<see cref="Build"/>, with parts initialised from other runs' folders), loaded from
/// and saved to a folder with one subfolder per part and a <c>model_index.json</c>, and made into a
/// <see cref="TextToImagePipeline"/>. Each part is trained or frozen (<see cref="SetTrainable"/>). It holds no training
/// loop and no sampler: <see cref="DenoisingObjective"/> and <see cref="Trainer"/> train it, the pipeline samples it.
/// </summary>
public sealed class LatentDiffusionModel
{
    /// <summary>The index file's name.</summary>
    public const string IndexFile = "model_index.json";
    /// <summary>Part folder names.</summary>
    public const string VaeFolder = "vae", TextEncoderFolder = "text_encoder", TokenizerFolder = "tokenizer", UnetFolder = "unet", SchedulerFolder = "scheduler";
    /// <summary>The scheduler part's file.</summary>
    public const string SchedulerFile = "scheduler_config.json";
    /// <summary>What <see cref="Sources"/> says of a part built from the experiment config.</summary>
    public const string BuiltHere = "built from the experiment config";

    private readonly Dictionary<LdmPart, string> _sources;

    /// <summary>
    /// Assembles a model from parts, checking that they fit together (UNet channels = VAE latent channels, UNet
    /// cross-attention width = text hidden size, text vocabulary = tokenizer vocabulary, text positions ≥ max tokens).
    /// </summary>
    /// <param name="vae">The autoencoder.</param>
    /// <param name="textEncoder">The text encoder.</param>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="unet">The denoiser.</param>
    /// <param name="scheduler">The training noise schedule.</param>
    /// <param name="latentSize">Side of the latents.</param>
    /// <param name="maxTokens">Token sequence length.</param>
    /// <param name="sources">Where each part came from (a folder), for messages; a missing part reads as <see cref="BuiltHere"/>.</param>
    /// <exception cref="InvalidDataException">Parts that do not fit; the message names both parts' sources and the fields.</exception>
    public LatentDiffusionModel(AutoencoderKL vae, ClipTextModel textEncoder, BpeTokenizer tokenizer, UNet2DConditionModel unet,
        NoiseScheduleConfig scheduler, int latentSize, int maxTokens, IReadOnlyDictionary<LdmPart, string>? sources = null)
    {
        Vae = vae; TextEncoder = textEncoder; Tokenizer = tokenizer; Unet = unet; Scheduler = scheduler;
        LatentSize = latentSize; MaxTokens = maxTokens;
        _sources = Enum.GetValues<LdmPart>().ToDictionary(p => p, p => sources is not null && sources.TryGetValue(p, out var s) ? s : BuiltHere);
        CheckPartsFit();
    }

    /// <summary>The autoencoder (part <c>vae</c>).</summary>
    public AutoencoderKL Vae { get; }
    /// <summary>The text encoder (part <c>text_encoder</c>).</summary>
    public ClipTextModel TextEncoder { get; }
    /// <summary>The tokenizer (part <c>tokenizer</c>).</summary>
    public BpeTokenizer Tokenizer { get; }
    /// <summary>The denoiser (part <c>unet</c>).</summary>
    public UNet2DConditionModel Unet { get; }
    /// <summary>The training noise schedule (part <c>scheduler</c>).</summary>
    public NoiseScheduleConfig Scheduler { get; }
    /// <summary>Side of the latents.</summary>
    public int LatentSize { get; }
    /// <summary>Token sequence length of the prompts.</summary>
    public int MaxTokens { get; }
    /// <summary>Where each part came from: a folder, or <see cref="BuiltHere"/>.</summary>
    public IReadOnlyDictionary<LdmPart, string> Sources => _sources;

    /// <summary>The folder name of a part.</summary>
    public static string FolderOf(LdmPart part) => part switch
    {
        LdmPart.Vae => VaeFolder,
        LdmPart.TextEncoder => TextEncoderFolder,
        LdmPart.Tokenizer => TokenizerFolder,
        LdmPart.Unet => UnetFolder,
        _ => throw new ArgumentOutOfRangeException(nameof(part), part, "unknown part"),
    };

    /// <summary>The module of a trainable part (the tokenizer has none).</summary>
    /// <exception cref="ArgumentException">The tokenizer.</exception>
    public nn.Module ModuleOf(LdmPart part) => part switch
    {
        LdmPart.Vae => Vae,
        LdmPart.TextEncoder => TextEncoder,
        LdmPart.Unet => Unet,
        _ => throw new ArgumentException($"part {part} has no weights", nameof(part)),
    };

    /// <summary>Trains (every parameter requires a gradient) or freezes a part.</summary>
    public void SetTrainable(LdmPart part, bool train)
    {
        foreach (var p in ModuleOf(part).parameters()) p.requires_grad = train;
    }

    /// <summary>True when any parameter of the part requires a gradient.</summary>
    public bool IsTrainable(LdmPart part) => Trainer.IsTrained(ModuleOf(part));

    /// <summary>A text-to-image pipeline over this model's parts (they are shared, not copied).</summary>
    public TextToImagePipeline ToPipeline() => new(this);

    /// <summary>
    /// Builds the model of an experiment: the tokenizer (trained on <paramref name="trainingPrompts"/>, or loaded), the
    /// VAE (this experiment's trained one from <paramref name="trainedVae"/>, or the frozen one of Parts.Vae.From), then,
    /// after <c>manual_seed(Seed + 1)</c>, the UNet and the text encoder in that order (so their initial weights do not
    /// depend on where the other parts came from), each then initialised from its Parts.*.From folder when given, and
    /// each set trained or frozen as the config says (the VAE is frozen: it trains in its own stage).
    /// </summary>
    /// <param name="cfg">The experiment.</param>
    /// <param name="trainingPrompts">The prompts a trained tokenizer learns its merges from.</param>
    /// <param name="trainedVae">The folder of the VAE this experiment trained (needed when Parts.Vae is trained).</param>
    /// <exception cref="ArgumentException">The parts' choices cannot make a model, or a trained VAE's folder is missing.</exception>
    /// <exception cref="InvalidDataException">A loaded part's config disagrees with the experiment's or with another part's; the message names the folders and the field.</exception>
    /// <exception cref="FileNotFoundException">A From folder holds no such part.</exception>
    public static LatentDiffusionModel Build(LdmExperimentConfig cfg, IReadOnlyList<string> trainingPrompts, string? trainedVae = null)
    {
        cfg.ValidateParts();
        var sources = new Dictionary<LdmPart, string>();
        BpeTokenizer tokenizer;
        if (cfg.Trains(LdmPart.Tokenizer)) tokenizer = BpeTokenizer.Train(trainingPrompts, cfg.TokenizerVocab);
        else
        {
            var folder = ResolveTokenizerFolder(cfg.Parts.Tokenizer.From!);
            tokenizer = LoadTokenizer(folder);
            sources[LdmPart.Tokenizer] = folder;
        }

        string vaeFolder;
        if (cfg.Trains(LdmPart.Vae))
            vaeFolder = trainedVae ?? throw new ArgumentException("Parts.Vae is trained in the VAE stage: pass the folder of the trained VAE (train the VAE stage first)", nameof(trainedVae));
        else vaeFolder = ResolvePartFolder(cfg.Parts.Vae.From!, LdmPart.Vae);
        var vae = LoadVae(vaeFolder, cfg.Vae, "Parts.Vae");
        sources[LdmPart.Vae] = vaeFolder;

        var textCfg = cfg.Text with { VocabSize = tokenizer.VocabSize, EndTokenId = tokenizer.EndId, MaxPositions = cfg.MaxTokens };
        var unetCfg = cfg.Unet with { InChannels = vae.Config.LatentChannels, OutChannels = vae.Config.LatentChannels, CrossAttentionDim = textCfg.HiddenSize };
        manual_seed(cfg.Seed + 1);
        var unet = new UNet2DConditionModel(unetCfg);
        var text = new ClipTextModel(textCfg);

        if (cfg.Parts.Unet.From is { } unetFrom)
        {
            var folder = ResolvePartFolder(unetFrom, LdmPart.Unet);
            var why = new Dictionary<string, string>
            {
                ["InChannels"] = $"the VAE's LatentChannels (vae: {vaeFolder})",
                ["OutChannels"] = $"the VAE's LatentChannels (vae: {vaeFolder})",
                ["CrossAttentionDim"] = $"the text encoder's HiddenSize (text_encoder: {cfg.Parts.TextEncoder.From ?? BuiltHere})",
            };
            RequireSameConfig(Checkpoint.ReadConfig<UNetConfig>(folder), unetCfg, "Parts.Unet.From", folder, "Unet", why);
            Checkpoint.Load(folder, unet);
            sources[LdmPart.Unet] = folder;
        }
        if (cfg.Parts.TextEncoder.From is { } textFrom)
        {
            var folder = ResolvePartFolder(textFrom, LdmPart.TextEncoder);
            var tokenizerSource = sources.TryGetValue(LdmPart.Tokenizer, out var ts) ? ts : "trained on the training prompts";
            var why = new Dictionary<string, string>
            {
                ["VocabSize"] = $"the tokenizer's vocabulary (tokenizer: {tokenizerSource})",
                ["EndTokenId"] = $"the tokenizer's end token (tokenizer: {tokenizerSource})",
                ["MaxPositions"] = "MaxTokens of the experiment config",
                ["HiddenSize"] = $"Text.HiddenSize of the experiment config, the UNet's cross-attention width (unet: {cfg.Parts.Unet.From ?? BuiltHere})",
            };
            RequireSameConfig(Checkpoint.ReadConfig<ClipTextConfig>(folder), textCfg, "Parts.TextEncoder.From", folder, "Text", why);
            Checkpoint.Load(folder, text);
            sources[LdmPart.TextEncoder] = folder;
        }

        var model = new LatentDiffusionModel(vae, text, tokenizer, unet, cfg.Schedule, cfg.ImageSize / vae.Config.DownsampleFactor, cfg.MaxTokens, sources);
        model.SetTrainable(LdmPart.Vae, false);
        model.SetTrainable(LdmPart.Unet, cfg.Trains(LdmPart.Unet));
        model.SetTrainable(LdmPart.TextEncoder, cfg.Trains(LdmPart.TextEncoder));
        return model;
    }

    /// <summary>
    /// Saves every part into its subfolder of <paramref name="dir"/> (vae/, text_encoder/, unet/: model.safetensors and
    /// config.json; tokenizer/: vocab.json and merges.txt; scheduler/scheduler_config.json), then model_index.json last.
    /// </summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        Checkpoint.Save(Path.Combine(dir, VaeFolder), Vae, Vae.Config);
        Tokenizer.Save(Path.Combine(dir, TokenizerFolder));
        Checkpoint.Save(Path.Combine(dir, TextEncoderFolder), TextEncoder, TextEncoder.Config);
        Checkpoint.Save(Path.Combine(dir, UnetFolder), Unet, Unet.Config);
        Directory.CreateDirectory(Path.Combine(dir, SchedulerFolder));
        AtomicFile.WriteAllText(Path.Combine(dir, SchedulerFolder, SchedulerFile), JsonSerializer.Serialize(Scheduler, SafeTensors.ConfigJsonOptions));
        var index = new LdmModelIndex
        {
            Parts = new()
            {
                [VaeFolder] = nameof(AutoencoderKL), [TextEncoderFolder] = nameof(ClipTextModel), [TokenizerFolder] = nameof(BpeTokenizer),
                [UnetFolder] = nameof(UNet2DConditionModel), [SchedulerFolder] = nameof(NoiseScheduleConfig),
            },
            LatentSize = LatentSize, MaxTokens = MaxTokens,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, IndexFile), JsonSerializer.Serialize(index, SafeTensors.ConfigJsonOptions));
    }

    /// <summary>True when a folder holds a saved model (a model_index.json, or the layout of experiment folders written before it).</summary>
    public static bool Exists(string dir) =>
        File.Exists(Path.Combine(dir, IndexFile)) || (File.Exists(Path.Combine(dir, LegacyConfigFile)) && Directory.Exists(Path.Combine(dir, "ldm", UnetFolder)));

    /// <summary>
    /// Loads a saved model (as <see cref="Save"/> writes it; also an experiment folder of the earlier layout: vae/,
    /// tokenizer/, ldm/unet, ldm/text_encoder and experiment.json). Every part is frozen.
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder holds no model, or a part is missing; the message names it.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or the parts do not fit.</exception>
    public static LatentDiffusionModel Load(string dir)
    {
        var indexPath = Path.Combine(dir, IndexFile);
        string textDir = Path.Combine(dir, TextEncoderFolder), unetDir = Path.Combine(dir, UnetFolder);
        NoiseScheduleConfig schedule;
        int latentSize, maxTokens;
        if (File.Exists(indexPath))
        {
            var index = ReadJson<LdmModelIndex>(indexPath, "model index");
            foreach (var part in new[] { VaeFolder, TextEncoderFolder, TokenizerFolder, UnetFolder, SchedulerFolder })
                if (!index.Parts.ContainsKey(part)) throw new InvalidDataException($"{indexPath} does not list the part '{part}'");
            schedule = ReadJson<NoiseScheduleConfig>(Path.Combine(dir, SchedulerFolder, SchedulerFile), "scheduler config");
            latentSize = index.LatentSize;
            maxTokens = index.MaxTokens;
        }
        else if (Exists(dir))
        {
            // The layout before model_index.json: the experiment config gives the schedule and the sizes.
            var cfg = LdmExperimentConfig.Load(Path.Combine(dir, LegacyConfigFile));
            textDir = Path.Combine(dir, "ldm", TextEncoderFolder);
            unetDir = Path.Combine(dir, "ldm", UnetFolder);
            schedule = cfg.Schedule;
            latentSize = cfg.LatentSize;
            maxTokens = cfg.MaxTokens;
        }
        else throw new FileNotFoundException($"{dir} is not a trained latent-diffusion folder: no {IndexFile}", indexPath);
        try
        {
            ModelSize.InRange("LatentSize", latentSize, 1, 1024);
            ModelSize.InRange("MaxTokens", maxTokens, 2, 1 << 16);
            _ = new NoiseSchedule(schedule);
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{indexPath}: {e.Message}", e) { Data = { ["file"] = indexPath } }; }

        var vaeDir = Path.Combine(dir, VaeFolder);
        var vae = new AutoencoderKL(Checkpoint.ReadConfig<VaeConfig>(vaeDir));
        Checkpoint.Load(vaeDir, vae);
        var unet = new UNet2DConditionModel(Checkpoint.ReadConfig<UNetConfig>(unetDir));
        Checkpoint.Load(unetDir, unet);
        var text = new ClipTextModel(Checkpoint.ReadConfig<ClipTextConfig>(textDir));
        Checkpoint.Load(textDir, text);
        var tokenizerDir = Path.Combine(dir, TokenizerFolder);
        var tokenizer = LoadTokenizer(tokenizerDir);
        var sources = new Dictionary<LdmPart, string> { [LdmPart.Vae] = vaeDir, [LdmPart.TextEncoder] = textDir, [LdmPart.Tokenizer] = tokenizerDir, [LdmPart.Unet] = unetDir };
        var model = new LatentDiffusionModel(vae, text, tokenizer, unet, schedule, latentSize, maxTokens, sources);
        foreach (var part in new[] { LdmPart.Vae, LdmPart.TextEncoder, LdmPart.Unet }) model.SetTrainable(part, false);
        return model;
    }

    /// <summary>
    /// The folder of a part (weights and config) given a From folder: FROM/part (an experiment or model folder),
    /// FROM/ldm/part (an experiment folder of the earlier layout) or FROM itself (the part's own folder).
    /// </summary>
    /// <exception cref="FileNotFoundException">None of them holds the part's weights; the message lists where it looked.</exception>
    public static string ResolvePartFolder(string from, LdmPart part)
    {
        if (part == LdmPart.Tokenizer) return ResolveTokenizerFolder(from);
        var name = FolderOf(part);
        var candidates = new[] { Path.Combine(from, name), Path.Combine(from, "ldm", name), from };
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, Checkpoint.WeightsFileName))) return Path.GetFullPath(c);
        throw new FileNotFoundException(
            $"Parts.{part}.From = {from}: no {name} weights there (looked for {string.Join(", ", candidates.Select(c => Path.Combine(c, Checkpoint.WeightsFileName)))})",
            Path.Combine(candidates[0], Checkpoint.WeightsFileName));
    }

    /// <summary>
    /// Loads an autoencoder from a part folder and checks that it has the structure <paramref name="expected"/> describes
    /// (every field but the measured ScalingFactor).
    /// </summary>
    /// <exception cref="InvalidDataException">Another structure; the message names the folder, the field and both values.</exception>
    public static AutoencoderKL LoadVae(string folder, VaeConfig expected, string what)
    {
        var config = Checkpoint.ReadConfig<VaeConfig>(folder);
        RequireSameConfig(config with { ScalingFactor = expected.ScalingFactor }, expected, what, folder, "Vae", new Dictionary<string, string>());
        var vae = new AutoencoderKL(config);
        Checkpoint.Load(folder, vae);
        return vae;
    }

    // The file name of the experiment config in experiment folders (read for the earlier layout only).
    private const string LegacyConfigFile = "experiment.json";

    private static string ResolveTokenizerFolder(string from)
    {
        var candidates = new[] { Path.Combine(from, TokenizerFolder), from };
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, "vocab.json"))) return Path.GetFullPath(c);
        throw new FileNotFoundException($"Parts.Tokenizer.From = {from}: no tokenizer there (looked for {string.Join(", ", candidates.Select(c => Path.Combine(c, "vocab.json")))})",
            Path.Combine(candidates[0], "vocab.json"));
    }

    private static BpeTokenizer LoadTokenizer(string folder)
    {
        var vocab = Path.Combine(folder, "vocab.json");
        if (!File.Exists(vocab)) throw new FileNotFoundException($"no tokenizer in {folder}: vocab.json is missing", vocab);
        return BpeTokenizer.Load(vocab, Path.Combine(folder, "merges.txt"));
    }

    private static T ReadJson<T>(string path, string what)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{what} not found: {path}", path);
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), SafeTensors.ConfigJsonOptions) ?? throw new InvalidDataException($"{path} is empty");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid {what}: {e.Message}", e); }
    }

    // A loaded part's config must equal the one this experiment builds; each differing field is named with both values
    // and, for the fields that follow from another part, which part (and folder) they must match.
    private static void RequireSameConfig<T>(T loaded, T expected, string what, string folder, string section, IReadOnlyDictionary<string, string> derivedFrom)
    {
        var a = JsonNode.Parse(JsonSerializer.Serialize(loaded, SafeTensors.ConfigJsonOptions))!.AsObject();
        var b = JsonNode.Parse(JsonSerializer.Serialize(expected, SafeTensors.ConfigJsonOptions))!.AsObject();
        var problems = new List<string>();
        foreach (var key in a.Select(kv => kv.Key).Union(b.Select(kv => kv.Key)))
        {
            a.TryGetPropertyValue(key, out var va);
            b.TryGetPropertyValue(key, out var vb);
            if (JsonNode.DeepEquals(va, vb)) continue;
            var wanted = derivedFrom.TryGetValue(key, out var why) ? why : $"the experiment config's {section}.{key}";
            problems.Add($"{key} is {va?.ToJsonString() ?? "absent"} in {Path.Combine(folder, Checkpoint.ConfigFileName)} but {vb?.ToJsonString() ?? "absent"} is needed ({wanted})");
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"{what} = {folder}: the part does not fit this model: {string.Join("; ", problems)}");
    }

    private void CheckPartsFit()
    {
        var problems = new List<string>();
        string Src(LdmPart p) => $"{FolderOf(p)}: {_sources[p]}";
        if (Unet.Config.InChannels != Vae.Config.LatentChannels || Unet.Config.OutChannels != Vae.Config.LatentChannels)
            problems.Add($"UNet InChannels/OutChannels {Unet.Config.InChannels}/{Unet.Config.OutChannels} ({Src(LdmPart.Unet)}) differ from the VAE's LatentChannels {Vae.Config.LatentChannels} ({Src(LdmPart.Vae)})");
        if (Unet.Config.CrossAttentionDim != TextEncoder.Config.HiddenSize)
            problems.Add($"UNet CrossAttentionDim {Unet.Config.CrossAttentionDim} ({Src(LdmPart.Unet)}) differs from the text encoder's HiddenSize {TextEncoder.Config.HiddenSize} ({Src(LdmPart.TextEncoder)})");
        if (TextEncoder.Config.VocabSize != Tokenizer.VocabSize)
            problems.Add($"text encoder VocabSize {TextEncoder.Config.VocabSize} ({Src(LdmPart.TextEncoder)}) differs from the tokenizer's {Tokenizer.VocabSize} tokens ({Src(LdmPart.Tokenizer)})");
        if (TextEncoder.Config.MaxPositions < MaxTokens)
            problems.Add($"text encoder MaxPositions {TextEncoder.Config.MaxPositions} ({Src(LdmPart.TextEncoder)}) is below the model's MaxTokens {MaxTokens}");
        if (LatentSize < 1) problems.Add($"latent size {LatentSize} must be positive");
        if (problems.Count > 0) throw new InvalidDataException($"the parts of this latent diffusion model do not fit: {string.Join("; ", problems)}");
    }
}
