using System.Text.RegularExpressions;

namespace RoentGen.Data.Datasets;

/// <summary>
/// Splits a free-text radiology report into sections by headers at the start of a line ("FINDINGS:",
/// "Impression:", "INDICATION:", ...). A header is a known section name in any case, or any all-capitals
/// phrase, followed by a colon. Text before the first header is a preamble that belongs to no section.
/// Missing sections give null; whitespace inside a section is collapsed to single spaces.
/// </summary>
public static partial class ReportSections
{
    private static readonly HashSet<string> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        "findings", "finding", "impression", "impressions", "conclusion", "conclusions", "indication", "indications",
        "history", "clinical history", "comparison", "comparisons", "technique", "examination", "exam", "reason for exam",
        "reason for examination", "clinical information", "recommendation", "recommendations", "notification",
        "wet read", "final report", "addendum", "summary", "procedure", "type of examination", "report",
    };

    [GeneratedRegex(@"^[ \t]*(?<name>[A-Za-z][A-Za-z /&()-]{0,40}?)[ \t]*:", RegexOptions.Multiline)]
    private static partial Regex HeaderRegex();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();

    /// <summary>All sections by lower-case name (first occurrence wins; repeated headers are appended).</summary>
    public static IReadOnlyDictionary<string, string> Split(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var heads = HeaderRegex().Matches(text).Where(m => IsHeader(m.Groups["name"].Value)).ToList();
        for (int i = 0; i < heads.Count; i++)
        {
            int start = heads[i].Index + heads[i].Length;
            int end = i + 1 < heads.Count ? heads[i + 1].Index : text.Length;
            var name = Spaces().Replace(heads[i].Groups["name"].Value.Trim(), " ").ToLowerInvariant();
            var body = Spaces().Replace(text[start..end], " ").Trim();
            result[name] = result.TryGetValue(name, out var prev) && prev.Length > 0 ? prev + " " + body : body;
        }
        return result;
    }

    /// <summary>Parses a report: FINDINGS (or FINDING), IMPRESSION (or CONCLUSION), and the full text.</summary>
    public static CxrReport Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return CxrReport.Empty;
        var s = Split(text);
        static string? Pick(IReadOnlyDictionary<string, string> d, params string[] names)
        {
            foreach (var n in names)
                if (d.TryGetValue(n, out var v) && v.Length > 0) return v;
            return null;
        }
        return new CxrReport(Pick(s, "findings", "finding"), Pick(s, "impression", "impressions", "conclusion", "conclusions"), text.Trim());
    }

    private static bool IsHeader(string name)
    {
        var n = name.Trim();
        if (Known.Contains(Spaces().Replace(n, " "))) return true;
        // An all-capitals phrase of letters (at least 3) is a header too: "PA AND LATERAL CHEST:", "HISTORY:".
        return n.Count(char.IsLetter) >= 3 && n.Where(char.IsLetter).All(char.IsUpper);
    }
}
