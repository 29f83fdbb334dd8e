using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using RoentGen.Platform;

namespace RoentGen.Interactive.Notebooks;

/// <summary>A malformed notebook file: not JSON, or JSON that is not an nbformat 4 notebook.</summary>
public sealed class NotebookFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A Jupyter notebook (nbformat 4), as Polyglot Notebooks in VS Code writes it. Reading keeps every
/// metadata entry and unknown property; writing produces nbformat 4.5 with a unique <c>id</c> per cell
/// and sources as lists of lines, like Jupyter does.
/// </summary>
public sealed class Notebook
{
    /// <summary>The nbformat major version written (4).</summary>
    public const int FormatMajor = 4;
    /// <summary>The nbformat minor version written (5: cells carry ids).</summary>
    public const int FormatMinor = 5;

    /// <summary>Notebook metadata (kernelspec, language_info, polyglot_notebook, ...), kept as read.</summary>
    public JsonObject Metadata { get; set; } = new();

    /// <summary>The cells, in order.</summary>
    public List<NotebookCell> Cells { get; } = new();

    /// <summary>Top-level properties other than cells, metadata and the format versions, kept as read.</summary>
    public JsonObject Extra { get; } = new();

    /// <summary>A new empty notebook with the metadata of a C# Polyglot notebook.</summary>
    public static Notebook CreatePolyglot()
    {
        var nb = new Notebook();
        nb.Metadata["kernelspec"] = new JsonObject
        {
            ["display_name"] = ".NET (C#)",
            ["language"] = "C#",
            ["name"] = ".net-csharp",
        };
        nb.Metadata["language_info"] = new JsonObject { ["name"] = "polyglot-notebook" };
        nb.Metadata["polyglot_notebook"] = new JsonObject
        {
            ["kernelInfo"] = new JsonObject
            {
                ["defaultKernelName"] = "csharp",
                ["items"] = new JsonArray(new JsonObject { ["aliases"] = new JsonArray(), ["name"] = "csharp" }),
            },
        };
        return nb;
    }

    /// <summary>
    /// The kernel that code cells without their own kernel use: polyglot_notebook.kernelInfo.defaultKernelName,
    /// else the kernelspec's language, else "csharp".
    /// </summary>
    public string DefaultKernelName
    {
        get
        {
            if (Metadata["polyglot_notebook"]?["kernelInfo"]?["defaultKernelName"] is JsonValue v && v.TryGetValue(out string? name) && !string.IsNullOrWhiteSpace(name))
                return name;
            if (Metadata["kernelspec"] is JsonObject ks)
            {
                if (ks["name"] is JsonValue n && n.TryGetValue(out string? ksName) && ksName.StartsWith(".net-", StringComparison.Ordinal))
                    return ksName[".net-".Length..];
                if (ks["language"] is JsonValue l && l.TryGetValue(out string? lang) && !string.IsNullOrWhiteSpace(lang))
                    return lang;
            }
            return "csharp";
        }
    }

    /// <summary>Reads a notebook file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="NotebookFormatException">The file is not an nbformat 4 notebook; the message names the file.</exception>
    public static Notebook Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"notebook not found: {path}", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses notebook JSON; <paramref name="sourceName"/> names it in error messages.</summary>
    /// <exception cref="NotebookFormatException">The text is not an nbformat 4 notebook.</exception>
    public static Notebook Parse(string json, string sourceName = "notebook")
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new NotebookFormatException($"{sourceName}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }
        if (root is not JsonObject obj) throw new NotebookFormatException($"{sourceName}: expected a JSON object at the top level");

        var major = obj["nbformat"] is JsonValue mv && mv.TryGetValue(out int m) ? m : (int?)null;
        if (major is null) throw new NotebookFormatException($"{sourceName}: missing 'nbformat' (expected 4)");
        if (major != FormatMajor) throw new NotebookFormatException($"{sourceName}: nbformat {major} is not supported (expected 4)");
        if (obj["cells"] is not JsonArray cells) throw new NotebookFormatException($"{sourceName}: missing 'cells' array");

        var nb = new Notebook();
        if (obj["metadata"] is JsonObject meta) nb.Metadata = (JsonObject)meta.DeepClone();
        foreach (var (key, value) in obj)
        {
            if (key is "cells" or "metadata" or "nbformat" or "nbformat_minor") continue;
            nb.Extra[key] = value?.DeepClone();
        }
        for (var i = 0; i < cells.Count; i++)
        {
            if (cells[i] is not JsonObject c) throw new NotebookFormatException($"{sourceName}: cell {i + 1} is not a JSON object");
            nb.Cells.Add(NotebookCell.FromJson(c, $"{sourceName}: cell {i + 1}"));
        }
        return nb;
    }

    /// <summary>Gives every cell a unique id (keeping ids that are valid and unique) and returns the notebook as nbformat 4.5 JSON.</summary>
    public string ToJson()
    {
        EnsureCellIds();
        var root = new JsonObject
        {
            ["cells"] = new JsonArray(Cells.Select(c => (JsonNode)c.ToJson()).ToArray()),
            ["metadata"] = Metadata.DeepClone(),
        };
        foreach (var (key, value) in Extra) root[key] = value?.DeepClone();
        root["nbformat"] = FormatMajor;
        root["nbformat_minor"] = FormatMinor;
        // Jupyter writes one-space indentation and keeps non-ASCII text readable.
        return root.ToJsonString(new JsonSerializerOptions
        {
            WriteIndented = true,
            IndentSize = 1,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }) + "\n";
    }

    /// <summary>Writes the notebook atomically (a reader never sees half a file).</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    /// <summary>Assigns a fresh id to every cell whose id is missing, malformed or a duplicate.</summary>
    public void EnsureCellIds()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var cell in Cells)
        {
            if (cell.Id is { } id && NotebookCell.IsValidId(id) && seen.Add(id)) continue;
            string fresh;
            do fresh = NotebookCell.NewId(); while (!seen.Add(fresh));
            cell.Id = fresh;
        }
    }
}
