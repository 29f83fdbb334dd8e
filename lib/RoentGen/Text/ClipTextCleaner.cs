using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace RoentGen.Text;

/// <summary>
/// The text cleaning of CLIP's original tokenizer (openai/CLIP simple_tokenizer.py), in order:
/// <c>ftfy.fix_text</c>, <c>html.unescape</c> twice, strip, every whitespace run to one space, strip, Python's
/// <c>str.lower()</c>. Of ftfy's default fixes this does the ones that need no language model: HTML entities (only
/// when the text has no '&lt;', as ftfy's "auto"), terminal escapes, C1 controls read as Windows-1252, Latin
/// ligatures, full-width forms, curly quotes, lone surrogates, control characters, and NFC. It does not repair
/// mojibake (text that was decoded with the wrong encoding), which needs ftfy's heuristics. Named HTML entities are
/// the HTML 4 set (plus the upper-case legacy forms, and ftfy's all-capitals forms such as <c>&amp;EACUTE;</c>);
/// HTML 5-only names such as <c>&amp;NewLine;</c> stay as written.
/// </summary>
public static class ClipTextCleaner
{
    private static readonly Regex TerminalEscape = new(@"\x1b\[((?:\d|;)*)([a-zA-Z])", RegexOptions.Compiled | RegexOptions.CultureInvariant);
    private static readonly Regex CharRef = new(@"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)", RegexOptions.Compiled | RegexOptions.CultureInvariant);
    private const string Ligatures = "\u0132\u0133\u013F\u0140\u0149\u01C4\u01C5\u01C6\u01C7\u01C8\u01C9\u01CA\u01CB\u01CC\u01F1\u01F2\u01F3\uFB00\uFB01\uFB02\uFB03\uFB04\uFB05\uFB06";
    private static readonly string[] UpperLegacyEntities = ["AMP", "LT", "GT", "QUOT", "COPY", "REG"];

    /// <summary>The text as CLIP's tokenizer sees it before its pre-token pattern: fixed, unescaped, whitespace-collapsed, lower-cased.</summary>
    public static string Clean(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = FixText(text);
        s = HtmlUnescape(HtmlUnescape(s));
        s = CollapseWhitespace(s);
        return PythonLower(s);
    }

    /// <summary>The ftfy-like fixes (see the type's summary for which), in ftfy's order.</summary>
    public static string FixText(string text)
    {
        var s = text;
        if (!s.Contains('<')) s = HtmlUnescape(s, semicolonOnly: true);
        s = TerminalEscape.Replace(s, "");
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { sb.Append(c).Append(s[++i]); continue; }
            if (char.IsSurrogate(c)) { sb.Append('\uFFFD'); continue; }                           // ftfy.fix_surrogates
            if (c is >= '\u0080' and <= '\u009F') c = SloppyWindows1252(c);                      // ftfy.fix_c1_controls
            if (Ligatures.Contains(c) || (c is >= '\uFF01' and <= '\uFFEF'))                     // fix_latin_ligatures, fix_character_width
            {
                var n = c.ToString().Normalize(NormalizationForm.FormKC);
                if (n != c.ToString()) { sb.Append(n); continue; }
            }
            if (c == '\u3000') { sb.Append(' '); continue; }
            if (c is '\u02BC' or (>= '\u2018' and <= '\u201B')) { sb.Append('\''); continue; }   // ftfy.uncurl_quotes
            if (c is >= '\u201C' and <= '\u201F') { sb.Append('"'); continue; }
            if (IsFtfyControl(c)) continue;                                                     // ftfy.remove_control_chars
            sb.Append(c);
        }
        return sb.ToString().Normalize(NormalizationForm.FormC);
    }

    /// <summary>
    /// Python's <c>html.unescape</c>: numeric references (with Windows-1252 for 0x80–0x9F, U+FFFD for 0, surrogates
    /// and values past U+10FFFF, nothing for the other invalid code points), named references with or without their
    /// semicolon (the legacy names only), the longest known prefix of an unterminated name.
    /// </summary>
    public static string HtmlUnescape(string text, bool semicolonOnly = false)
    {
        if (!text.Contains('&')) return text;
        return CharRef.Replace(text, m =>
        {
            var s = m.Groups[1].Value;
            if (semicolonOnly && !s.EndsWith(';')) return m.Value;
            if (s[0] == '#')
            {
                bool hex = s.Length > 1 && (s[1] is 'x' or 'X');
                var digits = s[(hex ? 2 : 1)..].TrimEnd(';');
                if (!TryParseCodePoint(digits, hex, out var num)) return "\uFFFD";
                if (num == 0) return "\uFFFD";
                if (num == 0x0D) return "\r";
                if (num is >= 0x80 and <= 0x9F) return SloppyWindows1252((char)num).ToString();
                if (num is >= 0xD800 and <= 0xDFFF || num > 0x10FFFF) return "\uFFFD";
                if (IsInvalidCodePoint(num)) return "";
                return char.ConvertFromUtf32((int)num);
            }
            if (NamedEntity(s, allowLegacy: true) is { } whole) return whole;
            if (semicolonOnly)
            {
                // ftfy also reads an all-capitals form of a lower-case entity as the capital letter (&EACUTE; is É).
                var bare = s[..^1];
                if (bare.Length > 1 && bare.All(char.IsAsciiLetterUpper) && NamedEntity(bare.ToLowerInvariant() + ";", allowLegacy: false) is { } lower)
                    return lower.ToUpperInvariant();
                return m.Value;
            }
            for (int x = s.Length - 1; x > 1; x--)
                if (NamedEntity(s[..x], allowLegacy: true) is { } prefix) return prefix + s[x..];
            return m.Value;
        });
    }

    /// <summary>Python's whitespace (str.isspace: Unicode white space and U+001C–U+001F) collapsed to single spaces, stripped.</summary>
    public static string CollapseWhitespace(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool pendingSpace = false;
        foreach (var c in text)
        {
            if (IsPythonSpace(c)) { pendingSpace = sb.Length > 0; continue; }
            if (pendingSpace) { sb.Append(' '); pendingSpace = false; }
            sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Python's <c>str.lower()</c>: the full lower-case mapping (U+0130 becomes "i" + U+0307) and the final-sigma rule
    /// (a capital sigma after a cased letter and not before one becomes ς); otherwise each code point's simple mapping.
    /// </summary>
    public static string PythonLower(string text)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            var status = Rune.DecodeFromUtf16(text.AsSpan(i), out var r, out int used);
            if (status != System.Buffers.OperationStatus.Done) { sb.Append(text[i]); i += Math.Max(used, 1); continue; }
            if (r.Value == 0x0130) sb.Append("i\u0307");
            else if (r.Value == 0x03A3) sb.Append(IsFinalSigma(text, i) ? '\u03C2' : '\u03C3');
            else sb.Append(Rune.ToLowerInvariant(r).ToString());
            i += used;
        }
        return sb.ToString();
    }

    /// <summary>Whether a character is white space to Python's <c>str.isspace</c> (and so to <c>re</c>'s \s).</summary>
    public static bool IsPythonSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001C' and <= '\u001F';

    private static bool IsFinalSigma(string s, int at)
    {
        // Before: a cased letter, skipping case-ignorable ones; after: no cased letter, skipping case-ignorable ones.
        int j = at;
        bool casedBefore = false;
        while (j > 0)
        {
            var r = RuneBefore(s, j, out int len);
            j -= len;
            if (IsCaseIgnorable(r)) continue;
            casedBefore = IsCased(r);
            break;
        }
        if (!casedBefore) return false;
        j = at + 1;
        while (j < s.Length)
        {
            Rune.DecodeFromUtf16(s.AsSpan(j), out var r, out int len);
            j += Math.Max(len, 1);
            if (IsCaseIgnorable(r)) continue;
            return !IsCased(r);
        }
        return true;
    }

    private static Rune RuneBefore(string s, int end, out int len)
    {
        Rune.DecodeLastFromUtf16(s.AsSpan(0, end), out var r, out len);
        len = Math.Max(len, 1);
        return r;
    }

    private static bool IsCased(Rune r) => Rune.GetUnicodeCategory(r) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(Rune r) =>
        Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol
        || r.Value is '\'' or '.' or ':' or 0x00B7 or 0x0387 or 0x05F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027 or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A;

    // ftfy's CONTROL_CHARS: C0 controls except tab, line feed, form feed and carriage return; DEL; the deprecated
    // format characters U+206A–U+206F; the byte-order mark; interlinear annotation characters.
    private static bool IsFtfyControl(char c) =>
        c is <= '\u0008' or '\u000B' or (>= '\u000E' and <= '\u001F') or '\u007F' or (>= '\u206A' and <= '\u206F') or '\uFEFF' or (>= '\uFFF9' and <= '\uFFFC');

    // Windows-1252 for a C1 byte; the five bytes it leaves undefined stay as they are ("sloppy" decoding).
    private static char SloppyWindows1252(char c) => c switch
    {
        '\u0080' => '\u20AC', '\u0082' => '\u201A', '\u0083' => '\u0192', '\u0084' => '\u201E', '\u0085' => '\u2026',
        '\u0086' => '\u2020', '\u0087' => '\u2021', '\u0088' => '\u02C6', '\u0089' => '\u2030', '\u008A' => '\u0160',
        '\u008B' => '\u2039', '\u008C' => '\u0152', '\u008E' => '\u017D', '\u0091' => '\u2018', '\u0092' => '\u2019',
        '\u0093' => '\u201C', '\u0094' => '\u201D', '\u0095' => '\u2022', '\u0096' => '\u2013', '\u0097' => '\u2014',
        '\u0098' => '\u02DC', '\u0099' => '\u2122', '\u009A' => '\u0161', '\u009B' => '\u203A', '\u009C' => '\u0153',
        '\u009E' => '\u017E', '\u009F' => '\u0178',
        _ => c,
    };

    // Python's html._invalid_codepoints (other than those the caller maps first).
    private static bool IsInvalidCodePoint(long n) =>
        n is (>= 0x1 and <= 0x8) or 0xB or (>= 0xE and <= 0x1F) or (>= 0x7F and <= 0x9F) or (>= 0xFDD0 and <= 0xFDEF)
        || (n & 0xFFFE) == 0xFFFE;

    private static bool TryParseCodePoint(string digits, bool hex, out long value)
    {
        value = 0;
        if (digits.Length == 0) return false;
        foreach (var ch in digits)
        {
            int d = ch is >= '0' and <= '9' ? ch - '0' : ch is >= 'a' and <= 'f' ? ch - 'a' + 10 : ch is >= 'A' and <= 'F' ? ch - 'A' + 10 : -1;
            if (d < 0 || (!hex && d > 9)) return false;
            value = value * (hex ? 16 : 10) + d;
            if (value > 0x10FFFF) { value = 0x110000; }                  // past the last code point: U+FFFD either way
        }
        return true;
    }

    // A named reference ("amp;" or, for the legacy names, "amp") to its text, or null.
    private static string? NamedEntity(string name, bool allowLegacy)
    {
        bool semi = name.EndsWith(';');
        var bare = semi ? name[..^1] : name;
        if (bare.Length == 0 || bare.Contains(';')) return null;
        if (Array.IndexOf(UpperLegacyEntities, bare) >= 0) return WebUtility.HtmlDecode("&" + bare.ToLowerInvariant() + ";");
        var decoded = WebUtility.HtmlDecode("&" + bare + ";");
        if (decoded == "&" + bare + ";") return null;
        if (semi) return decoded;
        // Without the semicolon only HTML's legacy names count: amp, lt, gt, quot and the Latin-1 letters and signs.
        bool legacy = bare is "amp" or "lt" or "gt" or "quot" || (decoded.Length == 1 && decoded[0] is >= '\u00A0' and <= '\u00FF');
        return allowLegacy && legacy ? decoded : null;
    }
}
