using System.Text.Json.Nodes;

namespace RoentGen.Interactive.Notebooks;

/// <summary>One notebook cell: code, markdown or raw.</summary>
public sealed class NotebookCell
{
    /// <summary>"code", "markdown" or "raw".</summary>
    public string CellType { get; set; } = "code";

    /// <summary>The cell id (nbformat 4.5); assigned on writing when missing.</summary>
    public string? Id { get; set; }

    /// <summary>The source text (lines joined; a notebook file stores it as a list of lines).</summary>
    public string Source { get; set; } = "";

    /// <summary>Cell metadata (tags, dotnet_interactive, polyglot_notebook, ...), kept as read.</summary>
    public JsonObject Metadata { get; set; } = new();

    /// <summary>Outputs of a code cell.</summary>
    public List<NotebookOutput> Outputs { get; } = new();

    /// <summary>The execution count of a code cell, null when it has not run.</summary>
    public int? ExecutionCount { get; set; }

    /// <summary>Properties other than the known ones (e.g. attachments), kept as read.</summary>
    public JsonObject Extra { get; } = new();

    /// <summary>True for a code cell.</summary>
    public bool IsCode => CellType == "code";

    /// <summary>A C# code cell with Polyglot metadata.</summary>
    public static NotebookCell Code(string source, params string[] tags) => CodeIn("csharp", source, tags);

    /// <summary>A code cell for the given Polyglot kernel ("csharp", "fsharp", "pwsh", ...).</summary>
    public static NotebookCell CodeIn(string kernelName, string source, params string[] tags)
    {
        var cell = new NotebookCell { CellType = "code", Source = source, Id = NewId() };
        cell.Metadata["dotnet_interactive"] = new JsonObject { ["language"] = kernelName };
        cell.Metadata["polyglot_notebook"] = new JsonObject { ["kernelName"] = kernelName };
        if (tags.Length > 0) cell.Metadata["tags"] = new JsonArray(tags.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray());
        return cell;
    }

    /// <summary>A markdown cell.</summary>
    public static NotebookCell Markdown(string source) => new() { CellType = "markdown", Source = source, Id = NewId() };

    /// <summary>The cell's tags (metadata.tags).</summary>
    public IReadOnlyList<string> Tags =>
        Metadata["tags"] is JsonArray a
            ? a.Select(t => t is JsonValue v && v.TryGetValue(out string? s) ? s : null).OfType<string>().ToArray()
            : [];

    /// <summary>The Polyglot kernel named in the metadata (polyglot_notebook.kernelName, else dotnet_interactive.language), or null.</summary>
    public string? KernelNameFromMetadata
    {
        get
        {
            static string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) && !string.IsNullOrWhiteSpace(s) ? s : null;
            return Str(Metadata["polyglot_notebook"]?["kernelName"]) ?? Str(Metadata["dotnet_interactive"]?["language"]);
        }
    }

    /// <summary>Adds a tag unless present.</summary>
    public void AddTag(string tag)
    {
        if (Tags.Contains(tag)) return;
        if (Metadata["tags"] is not JsonArray a) Metadata["tags"] = a = new JsonArray();
        a.Add(tag);
    }

    /// <summary>A new random cell id (nbformat allows 1-64 of [A-Za-z0-9-_]).</summary>
    public static string NewId() => Guid.NewGuid().ToString("N")[..12];

    /// <summary>Whether an id is valid for nbformat 4.5.</summary>
    public static bool IsValidId(string id) =>
        id.Length is >= 1 and <= 64 && id.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_');

    internal static NotebookCell FromJson(JsonObject c, string where)
    {
        var type = c["cell_type"] is JsonValue tv && tv.TryGetValue(out string? t) ? t : throw new NotebookFormatException($"{where}: missing 'cell_type'");
        var cell = new NotebookCell
        {
            CellType = type,
            Id = c["id"] is JsonValue iv && iv.TryGetValue(out string? id) ? id : null,
            Source = JoinText(c["source"], where + ": source"),
            Metadata = c["metadata"] is JsonObject m ? (JsonObject)m.DeepClone() : new JsonObject(),
            ExecutionCount = c["execution_count"] is JsonValue ev && ev.TryGetValue(out int n) ? n : null,
        };
        if (c["outputs"] is JsonArray outs)
        {
            for (var i = 0; i < outs.Count; i++)
            {
                if (outs[i] is not JsonObject o) throw new NotebookFormatException($"{where}: output {i + 1} is not a JSON object");
                cell.Outputs.Add(NotebookOutput.FromJson(o, $"{where}: output {i + 1}"));
            }
        }
        foreach (var (key, value) in c)
        {
            if (key is "cell_type" or "id" or "source" or "metadata" or "outputs" or "execution_count") continue;
            cell.Extra[key] = value?.DeepClone();
        }
        return cell;
    }

    internal JsonObject ToJson()
    {
        var o = new JsonObject { ["cell_type"] = CellType };
        if (IsCode) o["execution_count"] = ExecutionCount;
        o["id"] = Id;
        o["metadata"] = Metadata.DeepClone();
        if (IsCode) o["outputs"] = new JsonArray(Outputs.Select(x => (JsonNode)x.ToJson()).ToArray());
        o["source"] = SplitLines(Source);
        foreach (var (key, value) in Extra) o[key] = value?.DeepClone();
        return o;
    }

    /// <summary>Joins an nbformat multiline string (a string or a list of strings).</summary>
    internal static string JoinText(JsonNode? node, string where) => node switch
    {
        null => "",
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonArray a => string.Concat(a.Select((x, i) => x is JsonValue xv && xv.TryGetValue(out string? s)
            ? s : throw new NotebookFormatException($"{where}: line {i + 1} is not a string"))),
        _ => throw new NotebookFormatException($"{where}: expected a string or a list of strings"),
    };

    /// <summary>Splits text into Jupyter's list of lines: each line keeps its "\n" except the last.</summary>
    internal static JsonArray SplitLines(string text)
    {
        var lines = new JsonArray();
        var start = 0;
        while (start < text.Length)
        {
            var nl = text.IndexOf('\n', start);
            var end = nl < 0 ? text.Length : nl + 1;
            lines.Add(text[start..end]);
            start = end;
        }
        return lines;
    }
}
