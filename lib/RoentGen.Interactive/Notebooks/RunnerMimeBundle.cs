using System.Text.Json.Nodes;
using Microsoft.DotNet.Interactive.Formatting;

namespace RoentGen.Interactive.Notebooks;

/// <summary>
/// The one place where the runner turns a value into a Jupyter mime bundle. text/plain always;
/// text/html and image/png from the library's <see cref="Display.ToMimeBundle"/>; otherwise text/html when a
/// formatter for the type was registered with <see cref="Formatter"/> (the built-in catch-all HTML formatters do not count).
/// </summary>
internal static class RunnerMimeBundle
{
    public static JsonObject Build(object? value)
    {
        if (value is RunnerGlobals.NotebookGlobals.MimeRestricted restricted) return BuildOnly(restricted.Value, restricted.MimeTypes);
        if (value is RunnerGlobals.DisplayExtensions.NullValue) value = null;
        var data = new JsonObject { ["text/plain"] = PlainText(value) };
        if (value is null) return data;
        // The library's own renderings (images, grids, image-like tensors, charts, data frames) first.
        foreach (var (mime, content) in Display.ToMimeBundle(value))
            if (mime != "text/plain") data[mime] = content;
        if (data[HtmlFormatter.MimeType] is null && HasRegisteredFormatter(value.GetType(), HtmlFormatter.MimeType))
        {
            try
            {
                data[HtmlFormatter.MimeType] = value.ToDisplayString(HtmlFormatter.MimeType);
            }
            catch (Exception e)
            {
                data[HtmlFormatter.MimeType] = $"<pre>HTML formatter failed: {System.Net.WebUtility.HtmlEncode(e.Message)}</pre>";
            }
        }
        return data;
    }

    // display(x, "text/html", ...): the requested representations, formatted even by the built-in formatters, plus text/plain.
    private static JsonObject BuildOnly(object? value, IReadOnlyList<string> mimeTypes)
    {
        var full = Build(value);
        var data = new JsonObject { ["text/plain"] = full["text/plain"]?.DeepClone() };
        foreach (var mime in mimeTypes.Distinct())
        {
            if (full[mime] is { } have) data[mime] = have.DeepClone();
            else if (value is not null && mime != "image/png")
            {
                try
                {
                    data[mime] = value.ToDisplayString(mime);
                }
                catch (Exception e)
                {
                    data[mime] = $"formatting as {mime} failed: {e.Message}";
                }
            }
        }
        return data;
    }

    private static string PlainText(object? value)
    {
        if (value is null) return "<null>";
        if (value is string s) return s;
        try
        {
            return value.ToDisplayString(PlainTextFormatter.MimeType);
        }
        catch (Exception)
        {
            return value.ToString() ?? value.GetType().FullName ?? "?";
        }
    }

    // A user- or library-registered (non-default) formatter whose type covers the value's type.
    private static bool HasRegisteredFormatter(Type type, string mimeType) =>
        Formatter.RegisteredFormatters(includeDefaults: false)
            .Any(f => f.MimeType == mimeType && Covers(f.Type, type));

    private static bool Covers(Type formatterType, Type type)
    {
        if (formatterType == typeof(object)) return false; // a catch-all is not a formatter "for the type"
        if (formatterType.IsAssignableFrom(type)) return true;
        if (!formatterType.IsGenericTypeDefinition) return false;
        for (var t = type; t is not null; t = t.BaseType)
            if (t.IsGenericType && t.GetGenericTypeDefinition() == formatterType) return true;
        return type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == formatterType);
    }
}
