using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Datasets;

namespace RoentGen.Feedback;

/// <summary>One synthetic image to rate, with the condition it was generated from.</summary>
/// <param name="Id">Its id (what ratings name).</param>
/// <param name="ImagePath">The PNG file (absolute, inside the set's folder).</param>
/// <param name="Prompt">The prompt or report it was generated from ("" when unknown).</param>
/// <param name="Labels">Its condition labels (may be empty).</param>
/// <param name="Masks">Its conditioning masks by name (absolute paths; may be empty).</param>
public sealed record FeedbackImage(string Id, string ImagePath, string Prompt, IReadOnlyList<string> Labels, IReadOnlyDictionary<string, string> Masks);

/// <summary>
/// The synthetic set shown on the feedback page: a folder of PNG images with an optional conditions file, read in this
/// order of preference:
/// <list type="number">
/// <item><c>labels.csv</c>, the project's generic layout (<see cref="GenericCsvLoader"/>): the id is the <c>id</c>
/// column (default: the file), the prompt the <c>prompt</c> column if there is one, else the report; the labels the
/// <c>labels</c> column (else the CheXpert positives); the masks the <c>mask</c>/<c>masks</c> columns.</item>
/// <item><c>manifest.json</c>: <c>{"images": [{"file": "a.png", "id": "a", "prompt": "...", "labels": ["Pleural
/// Effusion"], "mask": "a_mask.png", "masks": {"lungs": "m/a_lungs.png"}}]}</c> (or the bare array); only
/// <c>file</c> is required, <c>labels</c> may also be one pipe-separated string.</item>
/// <item>Neither: every <c>*.png</c> directly in the folder, id = file name, no condition.</item>
/// </list>
/// Every path must stay inside the folder (no "..", no absolute path, no symbolic link out of it) and name an
/// existing file; ids must be unique. The order is the file's order (file names sorted ordinally for a bare folder).
/// </summary>
public sealed class FeedbackCatalog
{
    private readonly Dictionary<string, FeedbackImage> _byId;

    private FeedbackCatalog(string root, string source, IReadOnlyList<FeedbackImage> images)
    {
        Root = root; Source = source; Images = images;
        _byId = new Dictionary<string, FeedbackImage>(StringComparer.Ordinal);
        foreach (var image in images)
        {
            if (!_byId.TryAdd(image.Id, image))
                throw new InvalidDataException($"{source}: image id '{Platform.TextEscape.Escape(image.Id)}' appears twice; expected unique ids");
        }
    }

    /// <summary>The images folder.</summary>
    public string Root { get; }

    /// <summary>What the catalogue was read from: the conditions file, or the folder.</summary>
    public string Source { get; }

    /// <summary>The images, in order.</summary>
    public IReadOnlyList<FeedbackImage> Images { get; }

    /// <summary>The image of an id, or null when the set has none.</summary>
    public FeedbackImage? Find(string id) => _byId.GetValueOrDefault(id);

    /// <summary>Reads a folder (see the class summary).</summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="InvalidDataException">The conditions file is malformed, a path leaves the folder or names no file, an id repeats, or there are no images.</exception>
    public static FeedbackCatalog Load(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var root = Path.GetFullPath(directory);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"images folder not found: {Platform.TextEscape.Escape(root)}; expected a folder of PNG images");
        FeedbackCatalog catalog;
        var csv = Path.Combine(root, GenericCsvLoader.DefaultFileName);
        var manifest = Path.Combine(root, "manifest.json");
        if (File.Exists(csv)) catalog = FromLabelsCsv(root, csv);
        else if (File.Exists(manifest)) catalog = FromManifest(root, manifest);
        else
        {
            var files = Directory.EnumerateFiles(root, "*.png", SearchOption.TopDirectoryOnly)
                .Where(f => f.EndsWith(".png", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
            var cache = new Dictionary<string, string>();
            var images = files.Select(f => new FeedbackImage(Path.GetFileName(f), Checked(root, f, root, cache), "", [], new Dictionary<string, string>())).ToList();
            catalog = new FeedbackCatalog(root, root, images);
        }
        if (catalog.Images.Count == 0)
            throw new InvalidDataException($"{catalog.Source}: no images to rate; expected PNG files (with an optional labels.csv or manifest.json)");
        return catalog;
    }

    private static FeedbackCatalog FromLabelsCsv(string root, string csv)
    {
        var set = GenericCsvLoader.Load(csv);
        var images = new List<FeedbackImage>(set.Count);
        foreach (var r in set)
        {
            var labels = r.SourceLabels.Count > 0 ? r.SourceLabels : r.Labels.Positives.Select(o => o.Name()).ToArray();
            string prompt = r.Attributes.GetValueOrDefault("prompt") ?? r.Report.FullText;
            var masks = r.Masks.Where(kv => kv.Value.Path is not null).ToDictionary(kv => kv.Key, kv => kv.Value.Path!, StringComparer.Ordinal);
            images.Add(new FeedbackImage(r.Id, r.ImagePath!, prompt, labels, masks));
        }
        return new FeedbackCatalog(root, csv, images);
    }

    private static FeedbackCatalog FromManifest(string root, string manifest)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(Platform.InputFile.ReadAllTextStrict(manifest, what: "manifest")); }
        catch (JsonException e) { throw new InvalidDataException($"{manifest}: not valid JSON ({e.Message}); expected {{\"images\": [{{\"file\": ...}}]}}", e); }
        using (doc)
        {
            var list = doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement
                : doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("images", out var a) && a.ValueKind == JsonValueKind.Array ? a
                : throw new InvalidDataException($"{manifest}: expected an object with an \"images\" array, or an array");
            var cache = new Dictionary<string, string>();
            var images = new List<FeedbackImage>();
            int i = 0;
            foreach (var e in list.EnumerateArray())
            {
                string where = $"{manifest}: images[{i++}]";
                if (e.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: expected an object with a \"file\"");
                string file = Str(e, "file", where) ?? throw new InvalidDataException($"{where}: \"file\" is missing; expected the PNG path relative to {root}");
                string path = Resolve(root, file, where, cache);
                string id = Str(e, "id", where) ?? file;
                string prompt = Str(e, "prompt", where) ?? Str(e, "report", where) ?? "";
                IReadOnlyList<string> labels = e.TryGetProperty("labels", out var l) ? l.ValueKind switch
                {
                    JsonValueKind.String => l.GetString()!.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                    JsonValueKind.Array => l.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()!
                        : throw new InvalidDataException($"{where}: \"labels\" holds a {x.ValueKind}; expected strings")).ToArray(),
                    JsonValueKind.Null => [],
                    _ => throw new InvalidDataException($"{where}: \"labels\" is a {l.ValueKind}; expected an array of strings or a pipe-separated string"),
                } : [];
                var masks = new Dictionary<string, string>(StringComparer.Ordinal);
                if (Str(e, "mask", where) is string m) masks["mask"] = Resolve(root, m, where + ".mask", cache);
                if (e.TryGetProperty("masks", out var ms) && ms.ValueKind != JsonValueKind.Null)
                {
                    if (ms.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: \"masks\" is a {ms.ValueKind}; expected an object of name: path");
                    foreach (var p in ms.EnumerateObject())
                    {
                        if (p.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{where}: masks.{p.Name} is a {p.Value.ValueKind}; expected a path");
                        masks[p.Name] = Resolve(root, p.Value.GetString()!, $"{where}.masks.{p.Name}", cache);
                    }
                }
                images.Add(new FeedbackImage(id, path, prompt, labels, masks));
            }
            return new FeedbackCatalog(root, manifest, images);
        }
    }

    private static string? Str(JsonElement e, string name, string where)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new InvalidDataException($"{where}: \"{name}\" is a {v.ValueKind}; expected a string");
    }

    private static string Resolve(string root, string relative, string where, Dictionary<string, string> cache)
    {
        if (DataRoot.LexicalProblem(root, relative) is string problem) throw new InvalidDataException($"{where}: {problem}");
        return Checked(root, Path.GetFullPath(Path.Combine(root, relative.Replace('\\', '/'))), where, cache);
    }

    private static string Checked(string root, string full, string where, Dictionary<string, string> cache)
    {
        if (DataRoot.LinkProblem(root, full, cache) is string problem) throw new InvalidDataException($"{where}: {problem}");
        if (!File.Exists(full)) throw new InvalidDataException($"{where}: {Platform.TextEscape.Escape(full)} does not exist; expected a PNG file");
        return full;
    }
}
