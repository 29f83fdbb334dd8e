using System.Text.Json;
using System.Text.Json.Serialization;
using RoentGen.Platform;
using RoentGen.Text;

namespace RoentGen.Interop.Diffusers;

/// <summary>One safetensors weight file (or a sharded set behind its index), from its header only.</summary>
/// <param name="Path">The file (for a sharded set, its .safetensors.index.json).</param>
/// <param name="Shards">The shard files of a sharded set; empty for a single file.</param>
/// <param name="Tensors">Tensors listed.</param>
/// <param name="Parameters">Elements of the floating-point tensors (F64, F32, F16, BF16): the weights.</param>
/// <param name="OtherElements">Elements of integer and boolean tensors (buffers such as older CLIP exports' int64 position_ids), not counted as parameters.</param>
/// <param name="ElementsByDType">Elements per safetensors dtype (F32, F16, BF16, I64...).</param>
public sealed record WeightFileSummary(string Path, IReadOnlyList<string> Shards, int Tensors, long Parameters, long OtherElements, IReadOnlyDictionary<string, long> ElementsByDType);

/// <summary>One component of a diffusers folder.</summary>
/// <param name="Name">Its name in model_index.json.</param>
/// <param name="Library">The library that loads it, or null.</param>
/// <param name="ClassName">Its class, or null.</param>
/// <param name="Folder">Its folder, or null where it is absent.</param>
/// <param name="Read">Whether this library reads it (unet, vae, text_encoder, tokenizer, scheduler).</param>
/// <param name="ParametersFromConfig">Parameters the config describes (unet, vae, text_encoder), or null.</param>
/// <param name="WeightFiles">Its safetensors files.</param>
/// <param name="Report">What its config parse left over, or null when it has no config read here.</param>
public sealed record ComponentSummary(string Name, string? Library, string? ClassName, string? Folder, bool Read, long? ParametersFromConfig,
    IReadOnlyList<WeightFileSummary> WeightFiles, ConfigReport? Report);

/// <summary>The tokenizer of a folder, as loaded.</summary>
/// <param name="VocabSize">Token ids.</param>
/// <param name="StartId">Start token id.</param>
/// <param name="EndId">End token id.</param>
/// <param name="PadId">Padding id (SD 1.x: the end token; SD 2.x: "!", 0).</param>
/// <param name="ModelMaxLength">Length limit (77), or null.</param>
/// <param name="UnknownKeys">Keys of its config files not understood.</param>
public sealed record TokenizerSummary(int VocabSize, int StartId, int EndId, int PadId, int? ModelMaxLength, IReadOnlyList<string> UnknownKeys);

/// <summary>What <see cref="DiffusersFolder.Inspect"/> found.</summary>
/// <param name="Root">The folder.</param>
/// <param name="Index">model_index.json.</param>
/// <param name="Components">Every component of the index, in its order.</param>
/// <param name="Unet">The UNet config, or null.</param>
/// <param name="Vae">The VAE config, or null.</param>
/// <param name="TextEncoder">The text encoder config, or null.</param>
/// <param name="Scheduler">The scheduler config, or null.</param>
/// <param name="Tokenizer">The tokenizer, or null.</param>
/// <param name="Refused">One line per pickle file (.bin, .ckpt, .pt, .pth, .pkl) found: refused, with why and how to convert.</param>
/// <param name="RootWeightFiles">Safetensors files at the folder's top (single-file checkpoints in the original LDM layout), headers only.</param>
public sealed record DiffusersFolderSummary(string Root, ModelIndex Index, IReadOnlyList<ComponentSummary> Components,
    UNet2DConditionConfig? Unet, AutoencoderKLConfig? Vae, ClipTextConfig? TextEncoder, SchedulerConfig? Scheduler, TokenizerSummary? Tokenizer,
    IReadOnlyList<string> Refused, IReadOnlyList<WeightFileSummary> RootWeightFiles)
{
    /// <summary>Every unknown key and unsupported value of every config read, as "file: key".</summary>
    public IReadOnlyList<string> Unknown =>
        Components.Where(c => c.Report is not null).SelectMany(c => c.Report!.UnknownKeys.Select(k => $"{c.Report!.File}: {k}"))
            .Concat(Index.Report.UnknownKeys.Select(k => $"{Index.Report.File}: {k}"))
            .Concat((Tokenizer?.UnknownKeys ?? []).Select(k => $"tokenizer/{k}")).ToList();

    /// <summary>Every unsupported value, as "file: key: problem".</summary>
    public IReadOnlyList<string> Unsupported =>
        Components.Where(c => c.Report is not null).SelectMany(c => c.Report!.Unsupported.Select(u => $"{c.Report!.File}: {u}"))
            .Concat(Index.Report.Unsupported.Select(u => $"{Index.Report.File}: {u}")).ToList();

    /// <summary>The summary as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };
}

/// <summary>
/// A diffusers model folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/): its configs parsed,
/// its weights' headers read (no tensor data), and its pickle files refused.
/// </summary>
public static class DiffusersFolder
{
    /// <summary>Components whose files this library reads.</summary>
    public static readonly IReadOnlyList<string> ReadComponents = ["unet", "vae", "text_encoder", "tokenizer", "scheduler"];

    /// <summary>File extensions of PyTorch pickle files, which are refused.</summary>
    public static readonly IReadOnlyList<string> PickleExtensions = [".bin", ".ckpt", ".pt", ".pth", ".pkl"];

    /// <summary>The refusal line for a pickle file: why, and how to convert it.</summary>
    public static string PickleRefusal(string path) =>
        $"{path}: refused: a PyTorch pickle file can run arbitrary code when it is loaded, so this library never opens one. "
        + "Convert it to safetensors where PyTorch is installed: load it in diffusers and call save_pretrained(dir, safe_serialization=True), "
        + "or run the safetensors project's convert script; then point this at the converted folder.";

    /// <summary>Parses a diffusers folder: model_index.json, each read component's config, weight headers and pickle refusals.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">model_index.json, or a read component's folder or config, is missing (the message names it).</exception>
    /// <exception cref="InvalidDataException">A config or safetensors header is malformed, or a sharded index names a missing shard (the message names file and key).</exception>
    public static DiffusersFolderSummary Inspect(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: no such model folder");
        var root = Path.GetFullPath(folder);
        var indexPath = Path.Combine(root, "model_index.json");
        if (!File.Exists(indexPath)) throw new FileNotFoundException($"{indexPath}: missing (a diffusers model folder has model_index.json at its top)", indexPath);
        var index = ModelIndex.Load(indexPath);
        var refused = new List<string>();
        refused.AddRange(PickleFiles(root).Select(PickleRefusal));

        UNet2DConditionConfig? unet = null;
        AutoencoderKLConfig? vae = null;
        ClipTextConfig? text = null;
        SchedulerConfig? scheduler = null;
        TokenizerSummary? tokenizer = null;
        var components = new List<ComponentSummary>();
        foreach (var c in index.Components)
        {
            var dir = Path.Combine(root, c.Name);
            bool exists = Directory.Exists(dir);
            bool read = ReadComponents.Contains(c.Name) && c.ClassName is not null;
            if (read && !exists) throw new FileNotFoundException($"{dir}: missing (model_index.json lists {c.Name} as {c.ClassName})", dir);
            if (exists) refused.AddRange(PickleFiles(dir).Select(PickleRefusal));
            var weights = exists ? WeightFiles(dir) : [];
            long? fromConfig = null;
            ConfigReport? report = null;
            if (read)
            {
                switch (c.Name)
                {
                    case "unet":
                        unet = UNet2DConditionConfig.Load(RequireFile(dir, "config.json"));
                        report = unet.Report;
                        if (unet.Report.Unsupported.Count == 0) fromConfig = ParameterCounts.UNet(unet);
                        break;
                    case "vae":
                        vae = AutoencoderKLConfig.Load(RequireFile(dir, "config.json"));
                        report = vae.Report;
                        if (vae.Report.Unsupported.Count == 0) fromConfig = ParameterCounts.Vae(vae);
                        break;
                    case "text_encoder":
                        text = ClipTextConfig.Load(RequireFile(dir, "config.json"));
                        report = text.Report;
                        if (text.Report.Unsupported.Count == 0) fromConfig = ParameterCounts.ClipText(text);
                        break;
                    case "scheduler":
                        scheduler = SchedulerConfig.Load(RequireFile(dir, "scheduler_config.json"));
                        report = scheduler.Report;
                        break;
                    case "tokenizer":
                        var tok = BpeTokenizer.LoadFolder(dir);
                        tokenizer = new TokenizerSummary(tok.VocabSize, tok.StartId, tok.EndId, tok.PadId, tok.ModelMaxLength, tok.UnknownConfigKeys);
                        break;
                }
            }
            components.Add(new ComponentSummary(c.Name, c.Library, c.ClassName, exists ? dir : null, read, fromConfig, weights, report));
        }
        return new DiffusersFolderSummary(root, index, components, unet, vae, text, scheduler, tokenizer, refused, WeightFiles(root));
    }

    private static string RequireFile(string dir, string name)
    {
        var p = Path.Combine(dir, name);
        return File.Exists(p) ? p : throw new FileNotFoundException($"{p}: missing", p);
    }

    private static IEnumerable<string> PickleFiles(string dir) =>
        Directory.EnumerateFiles(dir).Where(f => PickleExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal);

    /// <summary>
    /// The safetensors weights of a component folder: each *.safetensors.index.json with its shards (every shard it
    /// names must exist), and each *.safetensors that no index claims; headers only.
    /// </summary>
    /// <exception cref="InvalidDataException">An index is malformed or names a missing shard; a header is malformed.</exception>
    public static IReadOnlyList<WeightFileSummary> WeightFiles(string dir)
    {
        var result = new List<WeightFileSummary>();
        var claimed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var indexFile in Directory.EnumerateFiles(dir, "*.safetensors.index.json").Order(StringComparer.Ordinal))
        {
            var shards = ShardsOf(indexFile);
            foreach (var s in shards) claimed.Add(s);
            result.Add(Summarize(indexFile, shards));
        }
        foreach (var f in Directory.EnumerateFiles(dir, "*.safetensors").Order(StringComparer.Ordinal))
            if (!claimed.Contains(f)) result.Add(Summarize(f, []));
        return result;
    }

    internal static IReadOnlyList<string> ShardsOf(string indexFile)
    {
        var r = new ConfigReader(indexFile, InputFile.ReadAllText(indexFile, 64L << 20, "sharded index"));
        var map = r.ObjectOfStrings("weight_map");
        r.Known("metadata");
        var dir = Path.GetDirectoryName(indexFile)!;
        var shards = new List<string>();
        foreach (var shard in map.Values.Distinct().Order(StringComparer.Ordinal))
        {
            if (shard.Contains('/') || shard.Contains('\\') || shard is "." or "..")
                throw new InvalidDataException($"{indexFile}: weight_map names '{shard}', which is not a file name beside the index");
            var p = Path.Combine(dir, shard);
            if (!File.Exists(p)) throw new InvalidDataException($"{indexFile}: weight_map points to '{shard}', which does not exist in {dir}");
            shards.Add(p);
        }
        return shards;
    }

    private static WeightFileSummary Summarize(string path, IReadOnlyList<string> shards)
    {
        int tensors = 0;
        long total = 0, other = 0;
        var byType = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var file in shards.Count > 0 ? shards : [path])
        {
            var (infos, _) = SafeTensors.ReadHeader(file);
            foreach (var t in infos)
            {
                long n = t.Shape.Aggregate(1L, (a, b) => a * b);
                tensors++;
                if (t.DType is "F64" or "F32" or "F16" or "BF16") total += n;
                else other += n;
                byType[t.DType] = byType.GetValueOrDefault(t.DType) + n;
            }
        }
        return new WeightFileSummary(path, shards, tensors, total, other, byType);
    }
}
