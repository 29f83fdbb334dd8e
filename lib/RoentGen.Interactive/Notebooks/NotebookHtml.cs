using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace RoentGen.Interactive.Notebooks;

/// <summary>
/// An executed notebook as one self-contained HTML page for a reader without a kernel: markdown as text, each code
/// cell's source, and its outputs (HTML and PNG as shown in VS Code, console text, errors). Charts keep the plotly.js
/// the kernel put into the first chart's output, so the page carries the library once and needs no network.
/// </summary>
public static partial class NotebookHtml
{
    /// <summary>The page for a notebook; <paramref name="title"/> defaults to its first markdown heading.</summary>
    public static string ToPage(Notebook notebook, string? title = null)
    {
        title ??= notebook.Cells.Where(c => c.CellType == "markdown")
            .Select(c => c.Source.Split('\n').FirstOrDefault(l => l.StartsWith('#'))?.TrimStart('#').Trim())
            .FirstOrDefault(h => !string.IsNullOrEmpty(h)) ?? "notebook";
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>").Append(Encode(title)).Append("</title>\n<style>")
          .Append("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}")
          .Append("pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:85%}")
          .Append("pre.source{border-left:3px solid #4a7bd0}pre.stderr{background:#fff4e5}pre.error{background:#fdecea;color:#8a1c1c}")
          .Append(".cell{margin:1.2em 0}.count{color:#888;font-size:80%}table{border-collapse:collapse;font-size:85%}td,th{border:1px solid #ddd;padding:2px 6px}")
          .Append("</style></head><body>\n");
        foreach (var cell in notebook.Cells)
        {
            sb.Append("<div class=\"cell\">");
            if (cell.CellType == "markdown") sb.Append(Markdown(cell.Source));
            else if (cell.IsCode)
            {
                if (cell.ExecutionCount is int n) sb.Append("<div class=\"count\">[").Append(n).Append("]</div>");
                sb.Append("<pre class=\"source\"><code>").Append(Encode(cell.Source)).Append("</code></pre>");
                foreach (var o in cell.Outputs) sb.Append(Output(o));
            }
            sb.Append("</div>\n");
        }
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    /// <summary>Writes <see cref="ToPage"/> of a notebook file to <paramref name="htmlPath"/> (default: NAME.html beside it), atomically.</summary>
    public static string Write(string notebookPath, string? htmlPath = null)
    {
        var nb = Notebook.Load(notebookPath);
        htmlPath ??= Path.ChangeExtension(notebookPath, ".html");
        AtomicFile.WriteAllText(htmlPath, ToPage(nb));
        return htmlPath;
    }

    /// <summary>One output as HTML: rich data first (HTML, then PNG), else text.</summary>
    public static string Output(NotebookOutput o) => o.OutputType switch
    {
        "stream" => $"<pre class=\"{(o.Name == "stderr" ? "stderr" : "stdout")}\">{Encode(o.Text ?? "")}</pre>",
        "error" => $"<pre class=\"error\">{Encode(string.Join("\n", o.Traceback.Count > 0 ? o.Traceback : [$"{o.EName}: {o.EValue}"]))}</pre>",
        _ when o.GetData("text/html") is { } html => $"<div class=\"output\">{html}</div>",
        _ when o.GetData("image/png") is { } png => $"<div class=\"output\"><img src=\"data:image/png;base64,{png.Trim()}\"/></div>",
        _ when o.GetData("text/plain") is { } text => $"<pre>{Encode(text)}</pre>",
        _ => "",
    };

    /// <summary>
    /// A small subset of Markdown, enough for the project's notebooks: headings, paragraphs, bullet lists, fenced code,
    /// <c>code</c>, **bold**, *italics* and [links](url). Anything else shows as text.
    /// </summary>
    public static string Markdown(string source)
    {
        var sb = new StringBuilder();
        var paragraph = new List<string>();
        bool inList = false, inCode = false;
        void Flush()
        {
            if (paragraph.Count > 0) sb.Append("<p>").Append(Inline(string.Join(" ", paragraph))).Append("</p>\n");
            paragraph.Clear();
        }
        void EndList()
        {
            if (inList) sb.Append("</ul>\n");
            inList = false;
        }
        foreach (var raw in source.Replace("\r", "").Split('\n'))
        {
            var line = raw.TrimEnd();
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                Flush(); EndList();
                sb.Append(inCode ? "</code></pre>\n" : "<pre><code>");
                inCode = !inCode;
                continue;
            }
            if (inCode) { sb.Append(Encode(raw)).Append('\n'); continue; }
            if (line.Length == 0) { Flush(); EndList(); continue; }
            if (HeadingPattern().Match(line) is { Success: true } h)
            {
                Flush(); EndList();
                var level = h.Groups[1].Value.Length;
                sb.Append($"<h{level}>").Append(Inline(h.Groups[2].Value)).Append($"</h{level}>\n");
                continue;
            }
            if (ListPattern().Match(line) is { Success: true } li)
            {
                Flush();
                if (!inList) { sb.Append("<ul>\n"); inList = true; }
                sb.Append("<li>").Append(Inline(li.Groups[1].Value)).Append("</li>\n");
                continue;
            }
            if (inList && raw.StartsWith("  ", StringComparison.Ordinal)) { sb.Append(Inline(line.Trim())).Append(' '); continue; }
            EndList();
            paragraph.Add(line.Trim());
        }
        Flush(); EndList();
        if (inCode) sb.Append("</code></pre>\n");
        return sb.ToString();
    }

    private static string Inline(string text)
    {
        var s = Encode(text);
        s = CodePattern().Replace(s, "<code>$1</code>");
        s = BoldPattern().Replace(s, "<b>$1</b>");
        s = ItalicPattern().Replace(s, "<i>$1</i>");
        s = LinkPattern().Replace(s, m => $"<a href=\"{m.Groups[2].Value}\">{m.Groups[1].Value}</a>");
        return s;
    }

    private static string Encode(string s) => WebUtility.HtmlEncode(s);

    [GeneratedRegex(@"^(#{1,6})\s+(.*)$")] private static partial Regex HeadingPattern();
    [GeneratedRegex(@"^\s*[-*]\s+(.*)$")] private static partial Regex ListPattern();
    [GeneratedRegex(@"`([^`]+)`")] private static partial Regex CodePattern();
    [GeneratedRegex(@"\*\*([^*]+)\*\*")] private static partial Regex BoldPattern();
    [GeneratedRegex(@"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])")] private static partial Regex ItalicPattern();
    [GeneratedRegex(@"\[([^\]]+)\]\(([^)\s]+)\)")] private static partial Regex LinkPattern();
}
