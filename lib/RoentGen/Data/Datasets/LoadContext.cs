using System.Globalization;
using System.Text.RegularExpressions;

namespace RoentGen.Data.Datasets;

/// <summary>
/// What every loader shares: turning rows into records, the skip-or-throw policy, file checks, duplicate
/// ids, the record limit, and field parsers whose errors name file, line and column.
/// </summary>
internal sealed partial class LoadContext(LoadOptions options)
{
    private readonly List<CxrRecord> _records = [];
    private readonly List<SkippedRow> _skipped = [];
    private readonly Dictionary<string, string> _ids = new(StringComparer.Ordinal);

    public LoadOptions Options { get; } = options;

    /// <summary>The folder every image and mask must lie in (links followed), unless <see cref="LoadOptions.AllowOutsideRoot"/>; null: no check.</summary>
    public string? Root { get; init; }

    private readonly Dictionary<string, string> _realPaths = new(StringComparer.Ordinal);

    public bool Full => Options.Limit is int n && _records.Count >= n;

    /// <summary>Runs <paramref name="make"/> on each row; null means "filtered out on purpose" (not an error).</summary>
    public void AddRows(IEnumerable<DatasetCsvRow> rows, Func<DatasetCsvRow, CxrRecord?> make)
    {
        foreach (var row in rows)
        {
            if (Full) return;
            Guard(row.Table.Path, row.Line, () => row.IsShort ? throw row.ShortRowError() : make(row));
        }
    }

    /// <summary>Adds one record made by <paramref name="make"/>, applying the skip policy to its errors.</summary>
    public void Guard(string file, int? line, Func<CxrRecord?> make)
    {
        try
        {
            var r = make();
            if (r is null) return;
            Check(r);
            _records.Add(r);
            _ids[r.Id] = r.Origin;
        }
        catch (DatasetFormatException ex) when (Options.SkipBadRows)
        {
            _skipped.Add(new SkippedRow(ex.File, ex.Line, (ex.Column is null ? "" : $"column '{ex.Column}': ") + ex.Problem));
        }
    }

    /// <summary>Records a problem that is not tied to a row: throws, or is kept as skipped.</summary>
    public void Problem(DatasetFormatException ex)
    {
        if (!Options.SkipBadRows) throw ex;
        _skipped.Add(new SkippedRow(ex.File, ex.Line, ex.Problem));
    }

    public CxrDataset Build(string defaultName, string root) =>
        new(Options.Name ?? defaultName, root, _records, _skipped);

    private void Check(CxrRecord r)
    {
        var file = r.SourceFile ?? "(memory)";
        if (_ids.TryGetValue(r.Id, out var first))
            throw new DatasetFormatException(file, r.SourceLine, null, $"duplicate record id '{r.Id}' (first seen at {first}); expected unique ids");
        if (Root is not null && !Options.AllowOutsideRoot)
        {
            foreach (var (what, src) in r.Masks.Select(m => ($"mask '{m.Key}'", m.Value)).Prepend(("image", r.Image)))
                if (src.Path is string p && DataRoot.LinkProblem(Root, p, _realPaths) is string problem)
                    throw new DatasetFormatException(file, r.SourceLine, null, $"{what}: {problem}{DataRoot.AllowHint}");
        }
        if (Options.CheckFilesExist)
        {
            if (!r.Image.Exists())
                throw new DatasetFormatException(file, r.SourceLine, null, $"image file not found: {r.Image.Path}; expected an existing PNG or JPEG");
            foreach (var (name, m) in r.Masks)
                if (!m.Exists())
                    throw new DatasetFormatException(file, r.SourceLine, null, $"mask '{name}' file not found: {m.Path}; expected an existing PNG");
        }
        if (Options.DecodeImages)
        {
            try { r.Image.Load(); }
            catch (Exception ex) when (ex is InvalidDataException or FileNotFoundException)
            {
                throw new DatasetFormatException(file, r.SourceLine, null, $"image {r.Image.Description} cannot be read: {ex.Message}; expected a decodable PNG or JPEG", ex);
            }
        }
    }

    // ---- field parsers ----

    /// <summary>"M"/"F"/null from M, F, Male, Female, Unknown, U or blank.</summary>
    public static string? ParseSex(DatasetCsvRow row, string column)
    {
        var v = row[column].Trim();
        switch (v.ToUpperInvariant())
        {
            case "": case "U": case "UNKNOWN": case "O": case "OTHER": return null;
            case "M": case "MALE": return "M";
            case "F": case "FEMALE": return "F";
            default: throw row.Error(column, $"unknown sex '{v}'; expected M, F, Male, Female, Unknown or blank");
        }
    }

    [GeneratedRegex(@"^(?<n>\d+(\.\d+)?)\s*(?<u>[YMD])?$", RegexOptions.IgnoreCase)]
    private static partial Regex AgeRegex();

    /// <summary>Age in years from "63", "63.5", or NIH's old "063Y" / "011M" / "020D"; blank gives null.</summary>
    public static double? ParseAge(DatasetCsvRow row, string column)
    {
        var v = row[column].Trim();
        if (v.Length == 0) return null;
        var m = AgeRegex().Match(v);
        if (!m.Success || !double.TryParse(m.Groups["n"].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n))
            throw row.Error(column, $"age '{v}' is not a number; expected years (e.g. 63), optionally with a Y/M/D unit");
        double years = m.Groups["u"].Value.ToUpperInvariant() switch { "M" => n / 12, "D" => n / 365.25, _ => n };
        if (years > 130)
            throw row.Error(column, $"age '{v}' is {years:0.#} years; expected 0 to 130");
        return years;
    }

    /// <summary>A CheXpert code (1, 0, -1, blank; also 1.0, 0.0, -1.0).</summary>
    public static Mention ParseMention(DatasetCsvRow row, string column)
    {
        var v = row[column];
        try { return Observations.ParseCode(v); }
        catch (FormatException)
        {
            throw row.Error(column, $"unknown label value '{v}'; expected 1, 0, -1 or blank (1.0, 0.0, -1.0 also accepted)");
        }
    }

    /// <summary>Reads the 14 CheXpert columns of a row (the table must have all of them).</summary>
    public static CxrLabels ParseChexpertColumns(DatasetCsvRow row, IReadOnlyList<int> columnIndex)
    {
        var l = new CxrLabels();
        for (int i = 0; i < 14; i++) l[(Observation)i] = ParseMention(row, row.Table.Header[columnIndex[i]]);
        return l;
    }

    /// <summary>Column indexes of the 14 CheXpert observations, or null when any is missing.</summary>
    public static int[]? FindChexpertColumns(DatasetCsv t)
    {
        var idx = new int[14];
        for (int i = 0; i < 14; i++)
        {
            idx[i] = -1;
            for (int c = 0; c < t.Header.Count; c++)
                if (Observations.TryParse(t.Header[c], out var o) && (int)o == i
                    && Observations.Names[i].Replace(" ", "").Equals(t.Header[c].Replace(" ", "").Replace("_", ""), StringComparison.OrdinalIgnoreCase))
                { idx[i] = c; break; }
            if (idx[i] < 0) return null;
        }
        return idx;
    }

    /// <summary>
    /// A path relative to <paramref name="root"/>, with either slash. An absolute path or one that climbs out with ".."
    /// is an error naming the row and column, unless <paramref name="allowOutsideRoot"/> (then absolute paths are kept).
    /// </summary>
    public static string Resolve(string root, string relative, DatasetCsvRow row, string column, bool allowOutsideRoot = false)
    {
        if (relative.Length == 0) throw row.Error(column, "empty path; expected a file path relative to " + root);
        if (!allowOutsideRoot && DataRoot.LexicalProblem(root, relative) is string problem) throw row.Error(column, problem + DataRoot.AllowHint);
        var p = relative.Replace('\\', '/');
        return Path.GetFullPath(Path.IsPathRooted(p) ? p : Path.Combine(root, p));
    }
}
