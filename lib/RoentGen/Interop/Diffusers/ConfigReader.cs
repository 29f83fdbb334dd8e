using System.Globalization;
using System.Text.Json;
using RoentGen.Platform;

namespace RoentGen.Interop.Diffusers;

/// <summary>What a config parse left over: keys nobody reads (unknown) and values read but outside what this library models (unsupported).</summary>
/// <param name="File">The config file (or the name it was parsed under).</param>
/// <param name="UnknownKeys">Keys of the file that no field of the record understands: reported, never silently dropped.</param>
/// <param name="Unsupported">Known keys whose value this library cannot build or run yet, each as "key = value (what is supported)".</param>
public sealed record ConfigReport(string File, IReadOnlyList<string> UnknownKeys, IReadOnlyList<string> Unsupported)
{
    /// <summary>Whether every key was understood and every value is supported.</summary>
    public bool IsClean => UnknownKeys.Count == 0 && Unsupported.Count == 0;
}

/// <summary>
/// Reads one JSON config object key by key, remembering which keys were read, so that what is left is reported as
/// unknown; a wrong type or a missing required key is an <see cref="InvalidDataException"/> naming file and key.
/// </summary>
internal sealed class ConfigReader
{
    private readonly Dictionary<string, JsonElement> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);
    private readonly List<string> _unsupported = [];

    /// <summary>Largest config file read (1 MiB; real ones are about 1 KB).</summary>
    public const long MaxBytes = 1 << 20;

    public ConfigReader(string file, string json)
    {
        File = file;
        JsonDocument parsed;
        try { parsed = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false }); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not valid JSON ({e.Message})", e); }
        using var doc = parsed;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{file}: expected a JSON object, got a JSON {doc.RootElement.ValueKind}");
        foreach (var p in doc.RootElement.EnumerateObject())
            if (!_values.TryAdd(p.Name, p.Value.Clone())) throw new InvalidDataException($"{file}: key '{p.Name}' appears twice");
    }

    /// <summary>Reads a config file (a regular file of at most <see cref="MaxBytes"/>).</summary>
    public static ConfigReader Open(string path)
    {
        if (!System.IO.File.Exists(path)) throw new FileNotFoundException($"{path}: missing", path);
        return new ConfigReader(path, InputFile.ReadAllText(path, MaxBytes, "config file"));
    }

    public string File { get; }

    /// <summary>Every key of the file, in file order.</summary>
    public IReadOnlyList<string> Keys => _values.Keys.ToList();

    /// <summary>Whether the key is present with the value null (read: it counts as understood).</summary>
    public bool IsExplicitNull(string key)
    {
        if (!_values.TryGetValue(key, out var v) || v.ValueKind != JsonValueKind.Null) return false;
        _read.Add(key);
        return true;
    }

    /// <summary>Whether the key holds a list whose items are lists (not read by this check).</summary>
    public bool IsArrayOfArrays(string key) =>
        _values.TryGetValue(key, out var v) && v.ValueKind == JsonValueKind.Array && v.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.Array);

    /// <summary>A model_index.json component entry, [library, class] with strings or nulls, or null (and the key left unread) when the value is not one.</summary>
    public (string? Library, string? ClassName)? Pair(string key)
    {
        if (!_values.TryGetValue(key, out var v) || v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 2) return null;
        var items = v.EnumerateArray().ToArray();
        if (items.Any(e => e.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))) throw Wrong(key, "a [library, class] pair of strings or nulls", v);
        _read.Add(key);
        return (items[0].ValueKind == JsonValueKind.String ? items[0].GetString() : null, items[1].ValueKind == JsonValueKind.String ? items[1].GetString() : null);
    }

    public bool Has(string key) => _values.TryGetValue(key, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>Marks keys as understood without reading them (metadata such as _class_name or transformers_version).</summary>
    public void Known(params string[] keys)
    {
        foreach (var k in keys) _read.Add(k);
    }

    public void Unsupported(string key, string problem) => _unsupported.Add($"{key}: {problem}");

    public ConfigReport Report() =>
        new(File, _values.Keys.Where(k => !_read.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList(), _unsupported.ToList());

    private JsonElement? Get(string key)
    {
        _read.Add(key);
        return _values.TryGetValue(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;
    }

    private InvalidDataException Wrong(string key, string expected, JsonElement got) =>
        new($"{File}: key '{key}' must be {expected}, got {Shorten(got.GetRawText())}");

    private InvalidDataException Missing(string key, string expected) => new($"{File}: required key '{key}' is missing (expected {expected})");

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";

    /// <summary>
    /// An int; a per-level list (which diffusers also accepts) is listed as unsupported and its first value returned,
    /// so the rest of the config still parses.
    /// </summary>
    public int? IntOrUnsupportedList(string key)
    {
        if (_values.TryGetValue(key, out var v) && v.ValueKind == JsonValueKind.Array)
        {
            var list = IntsOrNull(key)!;
            if (list.Length == 0) throw Wrong(key, "a whole number", v);
            if (list.Distinct().Count() > 1) Unsupported(key, $"[{string.Join(", ", list)}] (per-level values are not supported; one value for every level is)");
            return list[0];
        }
        return IntOrNull(key);
    }

    public int Int(string key) => IntOrNull(key) ?? throw Missing(key, "a whole number");

    public int IntOr(string key, int fallback) => IntOrNull(key) ?? fallback;

    public int? IntOrNull(string key)
    {
        if (Get(key) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw Wrong(key, "a whole number", v);
    }

    public double Double(string key) => DoubleOrNull(key) ?? throw Missing(key, "a number");

    public double DoubleOr(string key, double fallback) => DoubleOrNull(key) ?? fallback;

    public double? DoubleOrNull(string key)
    {
        if (Get(key) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Wrong(key, "a number", v);
    }

    public bool BoolOr(string key, bool fallback) => BoolOrNull(key) ?? fallback;

    public bool? BoolOrNull(string key)
    {
        if (Get(key) is not { } v) return null;
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Wrong(key, "true or false", v);
    }

    public string String(string key) => StringOrNull(key) ?? throw Missing(key, "a string");

    public string StringOr(string key, string fallback) => StringOrNull(key) ?? fallback;

    public string? StringOrNull(string key)
    {
        if (Get(key) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Wrong(key, "a string", v);
    }

    public string[] Strings(string key)
    {
        if (Get(key) is not { } v) throw Missing(key, "a list of strings");
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String)) throw Wrong(key, "a list of strings", v);
        return v.EnumerateArray().Select(e => e.GetString()!).ToArray();
    }

    public int[] Ints(string key) => IntsOrNull(key) ?? throw Missing(key, "a list of whole numbers");

    public int[]? IntsOrNull(string key)
    {
        if (Get(key) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out _)))
            throw Wrong(key, "a list of whole numbers", v);
        return v.EnumerateArray().Select(e => e.GetInt32()).ToArray();
    }

    public double[]? DoublesOrNull(string key)
    {
        if (Get(key) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number)) throw Wrong(key, "a list of numbers", v);
        return v.EnumerateArray().Select(e => e.GetDouble()).ToArray();
    }

    /// <summary>A required object whose values are all strings (a sharded index's weight_map).</summary>
    public Dictionary<string, string> ObjectOfStrings(string key)
    {
        if (Get(key) is not { } v) throw Missing(key, "an object of tensor name to file name");
        if (v.ValueKind != JsonValueKind.Object || v.EnumerateObject().Any(p => p.Value.ValueKind != JsonValueKind.String))
            throw Wrong(key, "an object of tensor name to file name", v);
        return v.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);
    }

    /// <summary>An int or a list of ints, as one value per level (<paramref name="levels"/> of them); null when absent.</summary>
    public int[]? IntPerLevel(string key, int levels)
    {
        if (Get(key) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var one)) return Enumerable.Repeat(one, levels).ToArray();
        var list = IntsOrNull(key) ?? throw Wrong(key, "a whole number or a list of them", v);
        if (list.Length != levels) throw new InvalidDataException($"{File}: key '{key}' lists {list.Length} values, expected one per level ({levels})");
        return list;
    }

    /// <summary>
    /// A key this library accepts only at its default (the value diffusers uses when the key is absent): another value
    /// is listed as unsupported; an absent key or null default is fine.
    /// </summary>
    public void DefaultOnly(string key, object? defaultValue)
    {
        var v = Get(key);
        bool isDefault = (v, defaultValue) switch
        {
            (null, null) => true,
            (null, _) => true,
            (_, null) => false,
            ({ ValueKind: JsonValueKind.True or JsonValueKind.False } e, bool b) => e.GetBoolean() == b,
            ({ ValueKind: JsonValueKind.Number } e, int i) => e.GetDouble() == i,
            ({ ValueKind: JsonValueKind.Number } e, double d) => e.GetDouble() == d,
            ({ ValueKind: JsonValueKind.String } e, string s) => e.GetString() == s,
            _ => false,
        };
        if (!isDefault)
            Unsupported(key, $"{Shorten(v!.Value.GetRawText())} (only the default, {Format(defaultValue)}, is supported)");
    }

    private static string Format(object? v) => v switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        string s => $"\"{s}\"",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}
