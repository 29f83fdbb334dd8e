using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Html;
using Microsoft.Data.Analysis;
using Microsoft.DotNet.Interactive.Formatting;
using RoentGen.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Interactive;

/// <summary>
/// How the library's objects look in a notebook. <see cref="Register"/> installs text/html formatters
/// (Microsoft.DotNet.Interactive.Formatting) for images, grids, anything <see cref="IPngDisplayable"/>, tensors,
/// Plotly.NET charts, data frames and diagrams (inline SVG); <see cref="ToMimeBundle"/> gives the same renderings to a notebook runner.
/// </summary>
public static class Display
{
    private static readonly object Gate = new();
    private static bool _registered;

    /// <summary>Rows shown by the data-frame table.</summary>
    public static int DataFrameRows { get; set; } = 20;

    /// <summary>Registers the text/html formatters (idempotent, thread-safe).</summary>
    public static void Register()
    {
        lock (Gate)
        {
            if (_registered) return;
            TorchNative.EnsureLoaded();   // before any TorchSharp call a notebook makes (see TorchNative)
            const string html = "text/html";
            Formatter.Register<GrayImage>(img => ImageTag(img.ToPng(), img.ToString()), html);
            Formatter.Register<ImageGrid>(grid => ImageTag(grid.ToPng(), grid.ToString()), html);
            Formatter.Register(typeof(IPngDisplayable), (Action<object, TextWriter>)((o, w) => w.Write(ImageTag(((IPngDisplayable)o).ToPng(), o.ToString() ?? ""))), html);
            Formatter.Register<Tensor>(TensorHtml, html);
            Formatter.Register<Figure>(FigureHtml.ToNotebookHtml, html);
            Formatter.Register<DataFrame>(DataFrameHtml, html);
            Formatter.Register<RoentGen.Teaching.Diagram>(d => d.ToSvg(), html);
            // Inside a kernel, progress becomes an HTML bar updated in place (the CLI installs its console bar instead).
            if (NotebookHost.IsNotebook) ProgressReporter.SinkFactory = () => ProgressSinks.Notebook();
            _registered = true;
        }
    }

    /// <summary>True once <see cref="Register"/> has run.</summary>
    public static bool IsRegistered { get { lock (Gate) return _registered; } }

    /// <summary>
    /// The HTML for a value: an embedded PNG for images, grids, other <see cref="IPngDisplayable"/>s and image-shaped
    /// tensors; a summary for other tensors; offline Plotly HTML for charts; a table for data frames; the content of
    /// <see cref="IHtmlContent"/>; otherwise whatever the formatting library produces.
    /// </summary>
    public static string ToHtml(object? value) => OwnHtml(value) ?? (value is null ? "<code>null</code>" : value.ToDisplayString("text/html"));

    /// <summary>
    /// The MIME bundle of a value for a notebook's display_data: "text/plain" always; "text/html" when the library
    /// has an HTML rendering for the value; "image/png" (base64) when it is <see cref="IPngDisplayable"/> or an
    /// image-shaped tensor.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ToMimeBundle(object? value)
    {
        var bundle = new Dictionary<string, string> { ["text/plain"] = PlainText(value) };
        if (OwnHtml(value) is { } html) bundle["text/html"] = html;
        byte[]? png = value switch
        {
            IPngDisplayable d => d.ToPng(),
            Tensor t when ImageLike(t) => TensorGrid(t).ToPng(),
            _ => null,
        };
        if (png is not null) bundle["image/png"] = Convert.ToBase64String(png);
        return bundle;
    }

    /// <summary>An &lt;img&gt; tag with the PNG inline as a data URI.</summary>
    public static string ImageTag(byte[] png, string alt = "") =>
        $"<img src=\"data:image/png;base64,{Convert.ToBase64String(png)}\" alt=\"{WebUtility.HtmlEncode(alt)}\" style=\"image-rendering: pixelated\"/>";

    /// <summary>
    /// True for tensors shown as pictures: real dtype and shape (H, W) with both sides at least 8, (1, H, W), or
    /// (B, 1, H, W) with B at most 64.
    /// </summary>
    public static bool ImageLike(Tensor t)
    {
        if (!is_floating_point(t) || t.numel() == 0) return false;
        var s = t.shape;
        return s.Length switch
        {
            2 => s[0] >= 8 && s[1] >= 8 && s[0] <= 4096 && s[1] <= 4096,
            3 => s[0] == 1 && s[1] <= 4096 && s[2] <= 4096,
            4 => s[1] == 1 && s[0] <= 64 && s[2] <= 4096 && s[3] <= 4096,
            _ => false,
        };
    }

    /// <summary>
    /// The value range assumed when a tensor is shown as a picture: [0, 1] if its values lie there, else [-1, 1] if
    /// they lie there, else its own [min, max].
    /// </summary>
    public static (float Low, float High) DisplayRange(Tensor t)
    {
        using var scope = NewDisposeScope();
        var f = t.detach().to(ScalarType.Float32);
        float min = f.min().item<float>(), max = f.max().item<float>();
        if (min >= 0 && max <= 1) return (0, 1);
        if (min >= -1 && max <= 1) return (-1, 1);
        return max > min && float.IsFinite(min) && float.IsFinite(max) ? (min, max) : (min - 1, min + 1);
    }

    /// <summary>A one-line text summary of a tensor: shape, dtype, device and its first values.</summary>
    public static string TensorSummary(Tensor t, int values = 8)
    {
        var shape = StateDictShape(t.shape);
        var first = FirstValues(t, values);
        return $"Tensor {shape} {t.dtype} on {t.device}: [{string.Join(", ", first)}{(t.numel() > values ? ", ..." : "")}]";
    }

    private static string StateDictShape(long[] shape) => $"[{string.Join(", ", shape)}]";

    private static string[] FirstValues(Tensor t, int count)
    {
        using var scope = NewDisposeScope();
        long n = Math.Min(count, t.numel());
        if (n == 0) return [];
        var flat = t.detach().reshape(-1).narrow(0, 0, n).to(ScalarType.Float64).cpu();
        return flat.data<double>().ToArray().Select(v => v.ToString("G5", CultureInfo.InvariantCulture)).ToArray();
    }

    private static ImageGrid TensorGrid(Tensor t)
    {
        var (low, high) = DisplayRange(t);
        var grid = ImageGrid.FromTensor(t, columns: 8, low, high);
        if (t.shape.Length == 4) grid.Title = $"{StateDictShape(t.shape)} {t.dtype}, range [{low:G3}, {high:G3}]";
        return grid;
    }

    private static string TensorHtml(Tensor t)
    {
        if (ImageLike(t))
        {
            var grid = TensorGrid(t);
            return $"<div>{ImageTag(grid.ToPng(), TensorSummary(t, 0))}<div><code>{WebUtility.HtmlEncode(TensorSummary(t, 4))}</code></div></div>";
        }
        return $"<div><code>{WebUtility.HtmlEncode(TensorSummary(t))}</code></div>";
    }

    private static string DataFrameHtml(DataFrame df)
    {
        var sb = new StringBuilder();
        sb.Append("<div><table><thead><tr><th></th>");
        foreach (var c in df.Columns) sb.Append("<th>").Append(WebUtility.HtmlEncode(c.Name)).Append("</th>");
        sb.Append("</tr></thead><tbody>");
        long rows = Math.Min(df.Rows.Count, DataFrameRows);
        for (long r = 0; r < rows; r++)
        {
            sb.Append("<tr><td>").Append(r).Append("</td>");
            foreach (var c in df.Columns)
                sb.Append("<td>").Append(WebUtility.HtmlEncode(Convert.ToString(c[r], CultureInfo.InvariantCulture) ?? "")).Append("</td>");
            sb.Append("</tr>");
        }
        sb.Append("</tbody></table>");
        sb.Append("<p>").Append(df.Rows.Count).Append(" rows x ").Append(df.Columns.Count).Append(" columns");
        if (df.Rows.Count > rows) sb.Append(" (first ").Append(rows).Append(" shown)");
        sb.Append("</p></div>");
        return sb.ToString();
    }

    private static string? OwnHtml(object? value) => value switch
    {
        null => null,
        GrayImage img => ImageTag(img.ToPng(), img.ToString()),
        ImageGrid grid => ImageTag(grid.ToPng(), grid.ToString()),
        IPngDisplayable d => ImageTag(d.ToPng(), d.ToString() ?? ""),
        Tensor t => TensorHtml(t),
        Figure f => FigureHtml.ToNotebookHtml(f),
        DataFrame df => DataFrameHtml(df),
        RoentGen.Teaching.Diagram d => d.ToSvg(),
        IHtmlContent h => HtmlContentString(h),
        _ => null,
    };

    private static string HtmlContentString(IHtmlContent h)
    {
        using var w = new StringWriter();
        h.WriteTo(w, HtmlEncoder.Default);
        return w.ToString();
    }

    private static string PlainText(object? value) => value switch
    {
        null => "null",
        Tensor t => TensorSummary(t),
        DataFrame df => $"DataFrame: {df.Rows.Count} rows x {df.Columns.Count} columns",
        IHtmlContent h => HtmlContentString(h),
        _ => value.ToString() ?? "",
    };
}
