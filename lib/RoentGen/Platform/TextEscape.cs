using System.Text;

namespace RoentGen.Platform;

/// <summary>Makes text from files safe to echo: control characters become visible escapes.</summary>
public static class TextEscape
{
    /// <summary>
    /// Replaces control characters (C0, DEL, C1, the bidirectional overrides U+202A..U+202E, U+2066..U+2069 and the marks U+200E, U+200F)
    /// with <c>\n</c>, <c>\r</c>, <c>\t</c>, <c>\e</c> or <c>\u{XXXX}</c>, so that a file name, CSV header or dataset
    /// name cannot move the cursor, recolour or clear a terminal when an error message prints it. Null gives "".
    /// </summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        int i = 0;
        while (i < text.Length && !IsUnsafe(text[i])) i++;
        if (i == text.Length) return text;
        var sb = new StringBuilder(text.Length + 8).Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (!IsUnsafe(c)) { sb.Append(c); continue; }
            sb.Append(c switch { '\n' => "\\n", '\r' => "\\r", '\t' => "\\t", '\x1b' => "\\e", _ => $"\\u{{{(int)c:X4}}}" });
        }
        return sb.ToString();
    }

    private static bool IsUnsafe(char c) => c < 0x20 || c is >= '\x7f' and <= '\x9f' || c is >= '\u202a' and <= '\u202e' || c is >= '\u2066' and <= '\u2069' || c is '\u200e' or '\u200f';
}
