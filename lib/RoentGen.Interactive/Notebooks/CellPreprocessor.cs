using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;

namespace RoentGen.Interactive.Notebooks;

/// <summary>
/// Turns a Polyglot C# cell into plain C# script: decides the cell's kernel, and blanks (keeping line
/// numbers) the dotnet-interactive directives that Roslyn does not know: <c>#!csharp</c> and other magic
/// lines, <c>#i</c>, <c>#r "nuget: ..."</c> (checked against the packages the library ships), and
/// <c>#r "file.dll"</c> (resolved beside the notebook and loaded once, in the default load context).
/// </summary>
internal static partial class CellPreprocessor
{
    /// <summary>Kernel names that a first line "#!name" selects.</summary>
    private static readonly HashSet<string> KernelSelectors = new(StringComparer.OrdinalIgnoreCase)
    {
        "csharp", "c#", "fsharp", "f#", "pwsh", "powershell", "javascript", "js", "html", "markdown", "md",
        "sql", "kql", "mermaid", "http", "value", "python", "r", "vscode", "webview",
    };

    /// <summary>Magic commands that change nothing for a headless run and are blanked silently.</summary>
    private static readonly HashSet<string> QuietMagics = new(StringComparer.OrdinalIgnoreCase)
    {
        "csharp", "c#", "about", "time", "lsmagic", "who", "whos", "log",
    };

    /// <summary>True for the C# kernel's names.</summary>
    public static bool IsCSharp(string kernel) => kernel.Equals("csharp", StringComparison.OrdinalIgnoreCase) || kernel.Equals("c#", StringComparison.OrdinalIgnoreCase);

    /// <summary>The kernel a code cell runs in: a first-line "#!kernel" selector, else the cell's metadata, else the notebook default.</summary>
    public static string KernelOf(NotebookCell cell, string notebookDefault)
    {
        var first = cell.Source.Split('\n', 2)[0].Trim();
        if (first.StartsWith("#!", StringComparison.Ordinal))
        {
            var name = first[2..].Split(' ', 2)[0];
            if (KernelSelectors.Contains(name)) return name.ToLowerInvariant();
        }
        return cell.KernelNameFromMetadata ?? notebookDefault;
    }

    /// <summary>The outcome of preprocessing one cell.</summary>
    /// <param name="Code">The C# code, with the same number of lines as the source.</param>
    /// <param name="References">References to add before compiling this cell (#r'd files).</param>
    /// <param name="Notes">Messages for the cell's stderr (ignored magic lines, version differences).</param>
    /// <param name="Error">Set when a directive cannot be honoured: (line within the cell, message).</param>
    public sealed record Result(string Code, IReadOnlyList<MetadataReference> References, IReadOnlyList<string> Notes, (int Line, string Message)? Error);

    /// <summary>Preprocesses a C# cell; <paramref name="notebookFolder"/> resolves relative #r paths.</summary>
    public static Result Process(string source, string notebookFolder)
    {
        var lines = source.Replace("\r\n", "\n").Split('\n');
        var refs = new List<MetadataReference>();
        var notes = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.StartsWith("#!", StringComparison.Ordinal))
            {
                var magic = line[2..].Split(' ', 2)[0];
                if (!QuietMagics.Contains(magic)) notes.Add($"line {i + 1}: magic command '#!{magic}' is not supported by the headless runner and was ignored");
                lines[i] = "";
            }
            else if (line.StartsWith("#i ", StringComparison.Ordinal) || line == "#i")
            {
                lines[i] = ""; // package sources: the runner never restores packages
            }
            else if (RDirective().Match(line) is { Success: true } m)
            {
                var target = m.Groups["target"].Value.Trim();
                var error = target.StartsWith("nuget:", StringComparison.OrdinalIgnoreCase)
                    ? CheckNuget(target["nuget:".Length..], notes, i + 1)
                    : AddFileReference(target, notebookFolder, refs);
                if (error is not null) return new Result("", refs, notes, (i + 1, error));
                lines[i] = "";
            }
        }
        return new Result(string.Join("\n", lines), refs, notes, null);
    }

    private static string? CheckNuget(string spec, List<string> notes, int line)
    {
        var parts = spec.Split(',', 2, StringSplitOptions.TrimEntries);
        var name = parts[0];
        var wanted = parts.Length > 1 ? parts[1] : null;
        if (name.Length == 0) return "#r \"nuget: ...\" names no package";
        if (!ScriptReferences.Packages.TryGetValue(name, out var have))
        {
            return $"NuGet package '{name}' is not available: the headless runner cannot restore packages and can only use " +
                   $"those the RoentGen library ships with (listed in the deps.json files in {ScriptReferences.LibraryFolder})";
        }
        if (wanted is { Length: > 0 } && !string.Equals(wanted, have, StringComparison.OrdinalIgnoreCase) && wanted != "*")
            notes.Add($"line {line}: the notebook asks for {name} {wanted}; the runner uses the library's {name} {have}");
        return null;
    }

    private static string? AddFileReference(string target, string notebookFolder, List<MetadataReference> refs)
    {
        var isFile = target.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) || target.Contains('/') || target.Contains('\\');
        var simpleName = isFile ? Path.GetFileNameWithoutExtension(target) : target;
        // The library (e.g. #r "../lib/RoentGen/bin/Debug/net10.0/RoentGen.dll") or any assembly already referenced.
        if (ScriptReferences.ReferencedNames.Contains(simpleName)) return null;
        if (!isFile) return $"#r \"{target}\": no assembly of that name is available to the runner";
        var path = Path.GetFullPath(Path.Combine(notebookFolder, target));
        if (!File.Exists(path)) return $"#r \"{target}\": file not found (looked for {path})";
        try
        {
            refs.Add(ScriptReferences.LoadExtra(path));
            return null;
        }
        catch (Exception e) when (e is BadImageFormatException or FileLoadException)
        {
            return $"#r \"{target}\": not a loadable .NET assembly ({e.Message})";
        }
    }

    [GeneratedRegex("""^#r\s+"(?<target>[^"]*)"\s*;?\s*(//.*)?$""")]
    private static partial Regex RDirective();
}
