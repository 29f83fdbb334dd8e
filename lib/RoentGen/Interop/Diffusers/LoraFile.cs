using System.Text.Json;
using System.Text.Json.Nodes;
using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Interop.Diffusers;

/// <summary>The key layouts of UNet LoRA files that <see cref="LoraFile"/> reads and writes.</summary>
public enum LoraFileLayout
{
    /// <summary>
    /// diffusers' current (PEFT) layout, what <c>save_lora_weights</c> writes and <c>load_lora_weights</c> reads:
    /// <c>unet.PATH.lora_A.weight</c> (down) and <c>unet.PATH.lora_B.weight</c> (up); alpha in the safetensors metadata
    /// <c>lora_adapter_metadata</c> (a JSON object with <c>unet.r</c>, <c>unet.lora_alpha</c>, …), read by diffusers 0.34
    /// and later; without it, alpha = r.
    /// </summary>
    Peft,
    /// <summary>
    /// diffusers' older attention-processor layout (<c>save_attn_procs</c>, diffusers before 0.21):
    /// <c>PATH_TO_ATTN.processor.to_q_lora.down.weight</c> / <c>.up.weight</c> (to_k, to_v, to_out likewise), and
    /// <c>PATH.lora.down.weight</c> / <c>.up.weight</c> for other layers; no alpha (scale 1).
    /// </summary>
    DiffusersOld,
    /// <summary>
    /// kohya-ss / A1111: <c>lora_unet_PATH_WITH_UNDERSCORES.lora_down.weight</c>, <c>.lora_up.weight</c> and a scalar
    /// <c>.alpha</c> per layer (absent: alpha = r).
    /// </summary>
    Kohya,
}

/// <summary>One adapter as a file stores it: its down (A) and up (B) weights and its alpha, if the file gives one.</summary>
/// <param name="Down">A: (r, in) or (r, in, 1, 1).</param>
/// <param name="Up">B: (out, r) or (out, r, 1, 1).</param>
/// <param name="Alpha">Alpha, or null when the file gives none for this layer.</param>
public sealed record LoraFileEntry(Tensor Down, Tensor Up, double? Alpha);

/// <summary>
/// Reads and writes UNet LoRA adapters (<see cref="LoraAdapter"/>) in the files diffusers, PEFT and kohya-ss / A1111 use,
/// mapping their key names to the UNet's module paths (which are diffusers' own). Reading is strict: every key that is not
/// a down / up weight or an alpha of an adaptable UNet layer is refused, all of them listed in one message, and so are
/// missing halves, ranks that disagree between down and up, and widths that do not fit the layer.
/// </summary>
/// <remarks>
/// <para>How alpha travels (checked against diffusers' loaders): kohya files carry a scalar <c>NAME.alpha</c> per layer,
/// which diffusers turns into its network_alphas; the PEFT layout carries alpha in the safetensors metadata under
/// <c>lora_adapter_metadata</c> (diffusers 0.34 and later build PEFT's LoraConfig from it), and without that metadata
/// diffusers uses alpha = r. Older diffusers releases ignore the metadata, so a file written with alpha ≠ r loads there
/// with scale 1; adapters trained with the default alpha = r load the same in every release. The old attention-processor
/// layout has no alpha at all: <see cref="Save"/> folds alpha / r into the up weights there (and in the PEFT layout when
/// layers differ in rank or alpha), so every reader computes the same update.</para>
/// <para>Text-encoder adapters (<c>text_encoder.*</c>, <c>lora_te_*</c>) are not read: only the UNet is adapted here.</para>
/// </remarks>
public static class LoraFile
{
    /// <summary>The file name diffusers writes and looks for.</summary>
    public const string FileName = "pytorch_lora_weights.safetensors";
    /// <summary>The safetensors metadata key of diffusers' adapter metadata (a JSON object).</summary>
    public const string MetadataKey = "lora_adapter_metadata";
    /// <summary>The key prefix of the UNet's adapters in the PEFT layout.</summary>
    public const string UnetPrefix = "unet.";
    /// <summary>The name prefix of the UNet's adapters in the kohya layout.</summary>
    public const string KohyaUnetPrefix = "lora_unet_";

    /// <summary>A file path: <paramref name="path"/> itself, or <see cref="FileName"/> inside it when it is a folder.</summary>
    public static string Resolve(string path) => Directory.Exists(path) ? Path.Combine(path, FileName) : path;

    /// <summary>
    /// Writes the adapters to <paramref name="path"/> (a .safetensors file, or a folder that gets <see cref="FileName"/>),
    /// atomically, in <paramref name="layout"/>. Returns the file written.
    /// </summary>
    /// <exception cref="NotSupportedException">The old layout and a layer it cannot name.</exception>
    public static string Save(LoraAdapter adapter, string path, LoraFileLayout layout = LoraFileLayout.Peft)
    {
        var file = path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? path : Path.Combine(path, FileName);
        var dir = Path.GetDirectoryName(Path.GetFullPath(file));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        var layers = adapter.Layers;
        bool uniform = layers.Values.Select(l => (l.Rank, l.Alpha)).Distinct().Count() <= 1;
        foreach (var (modulePath, layer) in layers)
        {
            var down = layer.Down.detach().contiguous();
            var up = layer.Up.detach().contiguous();
            switch (layout)
            {
                case LoraFileLayout.Peft:
                    tensors[$"{UnetPrefix}{modulePath}.lora_A.weight"] = down;
                    tensors[$"{UnetPrefix}{modulePath}.lora_B.weight"] = uniform ? up : Folded(layer);
                    break;
                case LoraFileLayout.DiffusersOld:
                    var name = OldName(modulePath);
                    tensors[$"{name}.down.weight"] = down;
                    tensors[$"{name}.up.weight"] = Folded(layer);
                    break;
                case LoraFileLayout.Kohya:
                    var k = KohyaName(modulePath);
                    tensors[$"{k}.lora_down.weight"] = down;
                    tensors[$"{k}.lora_up.weight"] = up;
                    tensors[$"{k}.alpha"] = tensor((float)layer.Alpha);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(layout), layout, "unknown LoRA file layout");
            }
        }
        if (layout == LoraFileLayout.Peft && uniform && layers.Count > 0)
        {
            var first = layers.Values.First();
            // The fields of PEFT's LoraConfig that diffusers (0.34+) builds it from, under the component's prefix.
            var meta = new JsonObject
            {
                ["unet.r"] = first.Rank,
                ["unet.lora_alpha"] = first.Alpha,
                ["unet.lora_dropout"] = 0.0,
                ["unet.bias"] = "none",
                ["unet.init_lora_weights"] = true,
                ["unet.target_modules"] = new JsonArray(layers.Keys.Select(p => (JsonNode?)p).ToArray()),
                ["unet.use_dora"] = false,
            };
            metadata[MetadataKey] = meta.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        }
        SafeTensors.Save(file, tensors, metadata);
        return file;
    }

    /// <summary>Reads a LoRA file into a new adapter attached to <paramref name="unet"/> (which it freezes).</summary>
    /// <exception cref="FileNotFoundException">No such file (or no <see cref="FileName"/> in the folder).</exception>
    /// <exception cref="InvalidDataException">Unknown keys, missing halves, ranks or widths that do not fit; every problem listed.</exception>
    public static LoraAdapter Load(string path, nn.Module unet)
    {
        var entries = Read(path, unet, out _);
        try
        {
            var adapter = LoraAdapter.Attach(unet, entries.Select(e => new LoraTarget(e.Key, (int)e.Value.Down.shape[0], e.Value.Alpha ?? e.Value.Down.shape[0])));
            using var _ = no_grad();
            foreach (var (modulePath, layer) in adapter.Layers)
            {
                var entry = entries[modulePath];
                layer.Down.copy_(entry.Down.reshape(layer.Down.shape));
                layer.Up.copy_(entry.Up.reshape(layer.Up.shape));
            }
            return adapter;
        }
        finally
        {
            foreach (var e in entries.Values) { e.Down.Dispose(); e.Up.Dispose(); }
        }
    }

    /// <summary>
    /// Reads a LoRA file's adapters by UNet module path (float32 tensors the caller disposes), checked against the
    /// modules of <paramref name="unet"/>, and says which layout the file is in.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file holds no LoRA keys, or keys and shapes that do not fit the UNet (all listed).</exception>
    public static Dictionary<string, LoraFileEntry> Read(string path, nn.Module unet, out LoraFileLayout layout)
    {
        var file = Resolve(path);
        if (!File.Exists(file)) throw new FileNotFoundException($"LoRA file not found: {file}", file);
        if (!file.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{file}: only .safetensors LoRA files are read (a .bin or .pt file is a Python pickle, which can run code when opened); "
                                           + "convert it with safetensors' torch.save_file on a machine you trust");
        using var st = SafeTensors.Load(file);
        layout = DetectLayout(st.Tensors.Keys, file);
        var adaptable = LoraAdapter.Adaptable(unet);
        var kohyaNames = adaptable.Keys.ToDictionary(KohyaName, p => p, StringComparer.Ordinal);
        var problems = new List<string>();
        var unknown = new List<string>();
        var downs = new Dictionary<string, (string Key, Tensor T)>(StringComparer.Ordinal);
        var ups = new Dictionary<string, (string Key, Tensor T)>(StringComparer.Ordinal);
        var alphas = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (key, t) in st.Tensors)
        {
            var parsed = layout switch
            {
                LoraFileLayout.Peft => ParsePeft(key),
                LoraFileLayout.DiffusersOld => ParseOld(key),
                _ => ParseKohya(key, kohyaNames),
            };
            if (parsed is not { } found || !adaptable.ContainsKey(found.Item1)) { unknown.Add(key); continue; }
            var (modulePath, role) = found;
            if (!t.is_floating_point()) { problems.Add($"'{key}' has dtype {t.dtype}; expected a floating-point tensor"); continue; }
            switch (role)
            {
                case Role.Down: downs[modulePath] = (key, t); break;
                case Role.Up: ups[modulePath] = (key, t); break;
                default:
                    if (t.numel() != 1) problems.Add($"'{key}' has shape {StateDict.FormatShape(t.shape)}; expected one value (the layer's alpha)");
                    else alphas[modulePath] = t.to(ScalarType.Float64).item<double>();
                    break;
            }
        }
        // diffusers' metadata: alpha for every UNet layer, and per-layer patterns.
        double? metaAlpha = null;
        var alphaPattern = new Dictionary<string, double>(StringComparer.Ordinal);
        if (layout == LoraFileLayout.Peft && st.Metadata.TryGetValue(MetadataKey, out var json)) metaAlpha = ReadMetadata(json, file, alphaPattern, problems);

        var result = new Dictionary<string, LoraFileEntry>(StringComparer.Ordinal);
        foreach (var modulePath in downs.Keys.Union(ups.Keys).Union(alphas.Keys).OrderBy(p => p, StringComparer.Ordinal))
        {
            bool hasDown = downs.TryGetValue(modulePath, out var down), hasUp = ups.TryGetValue(modulePath, out var up);
            if (!hasDown || !hasUp)
            {
                problems.Add(!hasDown && !hasUp
                    ? $"{modulePath}: an alpha but no down or up weight"
                    : $"{modulePath}: '{(hasDown ? down.Key : up.Key)}' has no {(hasDown ? "up" : "down")} weight beside it (expected both halves of the adapter)");
                continue;
            }
            var baseWeight = adaptable[modulePath] is Linear l ? l.weight! : ((Conv2d)adaptable[modulePath]).weight!;
            long outF = baseWeight.shape[0], inF = baseWeight.shape[1];
            var ds = down.T.shape;
            var us = up.T.shape;
            bool downOk = (ds.Length == 2 || (ds.Length == 4 && ds[2] == 1 && ds[3] == 1)) && ds[1] == inF;
            bool upOk = (us.Length == 2 || (us.Length == 4 && us[2] == 1 && us[3] == 1)) && us[0] == outF;
            if (!downOk) problems.Add($"'{down.Key}' has shape {StateDict.FormatShape(ds)}; expected [r, {inF}] (or [r, {inF}, 1, 1]): {modulePath} takes {inF} inputs");
            if (!upOk) problems.Add($"'{up.Key}' has shape {StateDict.FormatShape(us)}; expected [{outF}, r] (or [{outF}, r, 1, 1]): {modulePath} gives {outF} outputs");
            if (ds.Length >= 2 && us.Length >= 2 && ds[0] != us[1])
                problems.Add($"{modulePath}: rank mismatch: '{down.Key}' has rank {ds[0]} (rows) but '{up.Key}' has rank {us[1]} (columns); expected the same r");
            if (!downOk || !upOk || ds[0] != us[1]) continue;
            double? alpha = metaAlpha;
            foreach (var (pattern, value) in alphaPattern)
                if (Matches(modulePath, pattern)) alpha = value;
            if (alphas.TryGetValue(modulePath, out var a)) alpha = a;
            if (alpha is double av && !(double.IsFinite(av) && av > 0)) { problems.Add($"{modulePath}: alpha {av}; expected a positive number"); continue; }
            result[modulePath] = new LoraFileEntry(down.T.to(ScalarType.Float32).clone(), up.T.to(ScalarType.Float32).clone(), alpha);
        }
        if (unknown.Count > 0)
            problems.Insert(0, $"{unknown.Count} key(s) are not {Describe(layout)} of the UNet's Linear or 1x1-convolution layers "
                               + $"(text-encoder adapters are not read here): {string.Join(", ", unknown.Take(50))}{(unknown.Count > 50 ? ", …" : "")}");
        if (problems.Count == 0 && result.Count == 0) problems.Add("no adapter found");
        if (problems.Count > 0)
        {
            foreach (var e in result.Values) { e.Down.Dispose(); e.Up.Dispose(); }
            throw new InvalidDataException($"{file}: not a LoRA file for this UNet ({layout} layout):{Environment.NewLine}{string.Join(Environment.NewLine, problems)}")
            { Data = { ["file"] = file } };
        }
        return result;
    }

    /// <summary>The layout of a file's keys: kohya names start with lora_unet_ / lora_te_, PEFT keys hold lora_A / lora_B, old diffusers keys lora.down / _lora.up.</summary>
    /// <exception cref="InvalidDataException">None of them.</exception>
    public static LoraFileLayout DetectLayout(IEnumerable<string> keys, string file)
    {
        var list = keys.ToList();
        if (list.Any(k => k.StartsWith(KohyaUnetPrefix, StringComparison.Ordinal) || k.StartsWith("lora_te", StringComparison.Ordinal))) return LoraFileLayout.Kohya;
        if (list.Any(k => k.Contains(".lora_A.", StringComparison.Ordinal) || k.Contains(".lora_B.", StringComparison.Ordinal))) return LoraFileLayout.Peft;
        if (list.Any(k => k.Contains("lora.down.", StringComparison.Ordinal) || k.Contains("lora.up.", StringComparison.Ordinal))) return LoraFileLayout.DiffusersOld;
        throw new InvalidDataException($"{file}: no LoRA keys found (expected diffusers' '….lora_A.weight' / '….lora_B.weight', the older '….processor.to_q_lora.down.weight', "
                                       + $"or kohya's 'lora_unet_….lora_down.weight'); the first keys are: {string.Join(", ", list.Take(5))}") { Data = { ["file"] = file } };
    }

    /// <summary>kohya's name of a UNet module path: lora_unet_ and the path with dots as underscores.</summary>
    public static string KohyaName(string modulePath) => KohyaUnetPrefix + modulePath.Replace('.', '_');

    /// <summary>The old diffusers name (without .down.weight / .up.weight) of a UNet module path.</summary>
    public static string OldName(string modulePath)
    {
        foreach (var (proj, old) in OldProjections)
            if (modulePath.EndsWith("." + proj, StringComparison.Ordinal))
                return $"{modulePath[..^(proj.Length + 1)]}.processor.{old}";
        return modulePath + ".lora";
    }

    private static readonly (string Proj, string Old)[] OldProjections =
        [("to_q", "to_q_lora"), ("to_k", "to_k_lora"), ("to_v", "to_v_lora"), ("to_out.0", "to_out_lora")];

    private enum Role { Down, Up, Alpha }

    private static (string, Role)? ParsePeft(string key)
    {
        if (!key.StartsWith(UnetPrefix, StringComparison.Ordinal))
            return key.StartsWith("text_encoder", StringComparison.Ordinal) ? null : Split(key);   // unprefixed: a UNet's own save_lora_adapter
        return Split(key[UnetPrefix.Length..]);

        static (string, Role)? Split(string k) =>
            k.EndsWith(".lora_A.weight", StringComparison.Ordinal) ? (k[..^".lora_A.weight".Length], Role.Down)
            : k.EndsWith(".lora_B.weight", StringComparison.Ordinal) ? (k[..^".lora_B.weight".Length], Role.Up)
            : k.EndsWith(".alpha", StringComparison.Ordinal) ? (k[..^".alpha".Length], Role.Alpha)
            : null;
    }

    private static (string, Role)? ParseOld(string key)
    {
        var k = key.StartsWith(UnetPrefix, StringComparison.Ordinal) ? key[UnetPrefix.Length..] : key;
        foreach (var (proj, old) in OldProjections)
            k = k.Replace($".processor.{old}.", $".{proj}.lora.", StringComparison.Ordinal);
        return k.EndsWith(".lora.down.weight", StringComparison.Ordinal) ? (k[..^".lora.down.weight".Length], Role.Down)
            : k.EndsWith(".lora.up.weight", StringComparison.Ordinal) ? (k[..^".lora.up.weight".Length], Role.Up)
            : k.EndsWith(".lora.alpha", StringComparison.Ordinal) ? (k[..^".lora.alpha".Length], Role.Alpha)
            : k.EndsWith(".alpha", StringComparison.Ordinal) ? (k[..^".alpha".Length], Role.Alpha)
            : null;
    }

    private static (string, Role)? ParseKohya(string key, IReadOnlyDictionary<string, string> names)
    {
        int dot = key.IndexOf('.');
        if (dot < 0 || !names.TryGetValue(key[..dot], out var modulePath)) return null;
        return key[(dot + 1)..] switch
        {
            "lora_down.weight" => (modulePath, Role.Down),
            "lora_up.weight" => (modulePath, Role.Up),
            "alpha" => (modulePath, Role.Alpha),
            _ => null,
        };
    }

    private static string Describe(LoraFileLayout layout) => layout switch
    {
        LoraFileLayout.Peft => "'unet.PATH.lora_A.weight' / '.lora_B.weight' keys",
        LoraFileLayout.DiffusersOld => "'PATH.processor.to_q_lora.down.weight' / '.up.weight' (or 'PATH.lora.down.weight') keys",
        _ => "'lora_unet_PATH.lora_down.weight' / '.lora_up.weight' / '.alpha' keys",
    };

    // PEFT matches a pattern key against a module path by its end; a leading ^ anchors it at the start.
    private static bool Matches(string modulePath, string pattern) =>
        pattern.StartsWith('^') ? modulePath == pattern[1..] : modulePath == pattern || modulePath.EndsWith("." + pattern, StringComparison.Ordinal);

    private static double? ReadMetadata(string json, string file, Dictionary<string, double> alphaPattern, List<string> problems)
    {
        try
        {
            if (JsonNode.Parse(json) is not JsonObject meta) { problems.Add($"metadata '{MetadataKey}' is not a JSON object"); return null; }
            double? alpha = null;
            if (meta["unet.lora_alpha"] is JsonValue a) alpha = a.GetValue<double>();
            if (meta["unet.alpha_pattern"] is JsonObject pattern)
                foreach (var (k, v) in pattern)
                    if (v is JsonValue value) alphaPattern[k] = value.GetValue<double>();
            if (meta["unet.use_dora"] is JsonValue dora && dora.GetValue<bool>()) problems.Add($"metadata '{MetadataKey}': unet.use_dora is true; DoRA adapters are not supported (expected plain LoRA)");
            return alpha;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            problems.Add($"metadata '{MetadataKey}' is not readable JSON of PEFT's LoraConfig fields: {e.Message}");
            return null;
        }
    }

    private static Tensor Folded(LoraLayer layer) => layer.Scale == 1 ? layer.Up.detach().contiguous() : layer.Up.detach().mul(layer.Scale).contiguous();
}
