using System.Text.Json.Nodes;

namespace RoentGen.Interactive.Notebooks;

/// <summary>
/// One output of a code cell, in Jupyter's shapes: <c>stream</c> (name + text), <c>display_data</c> and
/// <c>execute_result</c> (a mime bundle in <see cref="Data"/>), <c>error</c> (ename, evalue, traceback).
/// </summary>
public sealed class NotebookOutput
{
    /// <summary>"stream", "display_data", "execute_result" or "error".</summary>
    public string OutputType { get; set; } = "stream";

    /// <summary>Stream name ("stdout" or "stderr") of a stream output.</summary>
    public string? Name { get; set; }

    /// <summary>Text of a stream output.</summary>
    public string? Text { get; set; }

    /// <summary>Mime bundle of display_data / execute_result: mime type to content (text as a string, image/png as base64, JSON types as JSON).</summary>
    public JsonObject Data { get; set; } = new();

    /// <summary>Output metadata (display_data / execute_result).</summary>
    public JsonObject OutputMetadata { get; set; } = new();

    /// <summary>Execution count of an execute_result.</summary>
    public int? ExecutionCount { get; set; }

    /// <summary>Exception type name of an error output.</summary>
    public string? EName { get; set; }

    /// <summary>Exception message of an error output.</summary>
    public string? EValue { get; set; }

    /// <summary>Traceback lines of an error output.</summary>
    public List<string> Traceback { get; } = new();

    /// <summary>Properties other than the known ones, kept as read.</summary>
    public JsonObject Extra { get; } = new();

    /// <summary>A stream output.</summary>
    public static NotebookOutput Stream(string name, string text) => new() { OutputType = "stream", Name = name, Text = text };

    /// <summary>An error output.</summary>
    public static NotebookOutput Error(string ename, string evalue, IEnumerable<string> traceback)
    {
        var o = new NotebookOutput { OutputType = "error", EName = ename, EValue = evalue };
        o.Traceback.AddRange(traceback);
        return o;
    }

    /// <summary>The content for a mime type as text (lists of lines joined), or null when absent.</summary>
    public string? GetData(string mimeType) => Data[mimeType] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonArray a => NotebookCell.JoinText(a, mimeType),
        var other => other.ToJsonString(),
    };

    internal static NotebookOutput FromJson(JsonObject o, string where)
    {
        var type = o["output_type"] is JsonValue tv && tv.TryGetValue(out string? t) ? t : throw new NotebookFormatException($"{where}: missing 'output_type'");
        var output = new NotebookOutput
        {
            OutputType = type,
            Name = o["name"] is JsonValue nv && nv.TryGetValue(out string? n) ? n : null,
            Text = o["text"] is { } text ? NotebookCell.JoinText(text, where + ": text") : null,
            Data = o["data"] is JsonObject d ? (JsonObject)d.DeepClone() : new JsonObject(),
            OutputMetadata = o["metadata"] is JsonObject m ? (JsonObject)m.DeepClone() : new JsonObject(),
            ExecutionCount = o["execution_count"] is JsonValue ev && ev.TryGetValue(out int ec) ? ec : null,
            EName = o["ename"] is JsonValue env && env.TryGetValue(out string? en) ? en : null,
            EValue = o["evalue"] is JsonValue evv && evv.TryGetValue(out string? evs) ? evs : null,
        };
        if (o["traceback"] is JsonArray tb) output.Traceback.AddRange(tb.Select(x => x?.ToString() ?? ""));
        foreach (var (key, value) in o)
        {
            if (key is "output_type" or "name" or "text" or "data" or "metadata" or "execution_count" or "ename" or "evalue" or "traceback") continue;
            output.Extra[key] = value?.DeepClone();
        }
        return output;
    }

    internal JsonObject ToJson()
    {
        var o = new JsonObject { ["output_type"] = OutputType };
        switch (OutputType)
        {
            case "stream":
                o["name"] = Name ?? "stdout";
                o["text"] = NotebookCell.SplitLines(Text ?? "");
                break;
            case "display_data":
            case "execute_result":
                o["data"] = DataToJson();
                if (OutputType == "execute_result") o["execution_count"] = ExecutionCount;
                o["metadata"] = OutputMetadata.DeepClone();
                break;
            case "error":
                o["ename"] = EName ?? "";
                o["evalue"] = EValue ?? "";
                o["traceback"] = new JsonArray(Traceback.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
                break;
            default:
                if (Name is not null) o["name"] = Name;
                if (Text is not null) o["text"] = NotebookCell.SplitLines(Text);
                if (Data.Count > 0) o["data"] = DataToJson();
                break;
        }
        foreach (var (key, value) in Extra) o[key] = value?.DeepClone();
        return o;
    }

    // Text mime types are written as lists of lines (as Jupyter does); base64 images and JSON values as they are.
    private JsonObject DataToJson()
    {
        var d = new JsonObject();
        foreach (var (mime, value) in Data)
        {
            var isText = mime.StartsWith("text/", StringComparison.Ordinal) || mime == "image/svg+xml";
            d[mime] = isText && value is JsonValue v && v.TryGetValue(out string? s) ? NotebookCell.SplitLines(s) : value?.DeepClone();
        }
        return d;
    }
}
