using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace RoentGen.Data.Datasets;

/// <summary>
/// The dataset loaders' view of a CSV file: the library's RFC 4180 reader (<see cref="Csv"/>) plus ".gz" files,
/// case-insensitive column look-up and errors as <see cref="DatasetFormatException"/> naming file, line and column.
/// Every row remembers the 1-based line of the file where it starts, so errors can name it.
/// </summary>
internal sealed class DatasetCsv
{
    private readonly Dictionary<string, int> _index;

    private DatasetCsv(string path, IReadOnlyList<string> header, IReadOnlyList<DatasetCsvRow> rows)
    {
        Path = path;
        Header = header;
        Rows = rows;
        _index = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < header.Count; i++) _index.TryAdd(header[i], i);
    }

    /// <summary>The file it was read from (for error messages).</summary>
    public string Path { get; }
    /// <summary>Column names, trimmed.</summary>
    public IReadOnlyList<string> Header { get; }
    /// <summary>Data rows (blank lines are left out).</summary>
    public IReadOnlyList<DatasetCsvRow> Rows { get; }

    /// <summary>True when the header has the column (case-insensitive).</summary>
    public bool Has(string column) => _index.ContainsKey(column);

    /// <summary>The index of a column, or -1.</summary>
    public int IndexOf(string column) => _index.TryGetValue(column, out var i) ? i : -1;

    /// <summary>The index of a column that must exist.</summary>
    /// <exception cref="DatasetFormatException">The header lacks it.</exception>
    public int Require(string column, string? why = null)
    {
        if (_index.TryGetValue(column, out var i)) return i;
        throw new DatasetFormatException(Path, 1, column,
            $"required column '{column}' is missing{(why is null ? "" : $" ({why})")}; the header has: {string.Join(", ", Header)}");
    }

    /// <summary>Reads a CSV file (".gz" is decompressed).</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="DatasetFormatException">Unterminated quote, a row with more fields than the header, or no header.</exception>
    public static DatasetCsv Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CSV file not found: {Platform.TextEscape.Escape(path)}", path);
        Platform.InputFile.RequireRegular(path, "CSV file");
        using var fs = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(fs, CompressionMode.Decompress) : fs;
        using var reader = new StreamReader(s, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return Parse(reader.ReadToEnd(), path);
    }

    /// <summary>Parses CSV text with the library's RFC 4180 reader (<see cref="Csv.ReadRecords"/>), trimming fields.</summary>
    public static DatasetCsv Parse(string text, string nameForErrors)
    {
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        List<(int Line, List<string> Fields)> records;
        try
        {
            records = Csv.ReadRecords(new StringReader(text), nameForErrors)
                .Select(r => (r.Line, r.Fields.Select(f => f.Trim()).ToList()))
                .Where(r => !(r.Item2.Count == 1 && r.Item2[0].Length == 0))
                .ToList();
        }
        catch (InvalidDataException e)
        {
            var m = Regex.Match(e.Message, @"line (\d+)");
            throw new DatasetFormatException(nameForErrors, m.Success ? int.Parse(m.Groups[1].Value) : 1, null, e.Message);
        }
        if (records.Count == 0) throw new DatasetFormatException(nameForErrors, 1, null, "the file is empty; expected a header row");
        var header = records[0].Fields;
        var rows = new List<DatasetCsvRow>(records.Count - 1);
        var table = new DatasetCsv(nameForErrors, header, rows);
        foreach (var (recLine, f) in records.Skip(1))
        {
            if (f.Count > header.Count)
            {
                // A trailing empty field (a trailing comma) is tolerated: NIH's Data_Entry_2017.csv has one.
                bool onlyEmptyExtra = f.Skip(header.Count).All(x => x.Length == 0);
                if (!onlyEmptyExtra)
                    throw new DatasetFormatException(nameForErrors, recLine, null,
                        $"row has {f.Count} fields; expected at most {header.Count} (the header's count)");
            }
            rows.Add(new DatasetCsvRow(table, recLine, f));
        }
        return table;
    }
}

/// <summary>One CSV data row.</summary>
internal sealed class DatasetCsvRow
{
    private readonly List<string> _fields;

    internal DatasetCsvRow(DatasetCsv table, int line, List<string> fields)
    {
        Table = table;
        Line = line;
        _fields = fields;
    }

    /// <summary>The table it belongs to.</summary>
    public DatasetCsv Table { get; }
    /// <summary>1-based line in the file where the row starts.</summary>
    public int Line { get; }

    /// <summary>True when the row has fewer fields than the header (an error, or a skipped row: never padded).</summary>
    public bool IsShort => _fields.Count < Table.Header.Count;

    /// <summary>The error for a short row: file, line, and the field counts.</summary>
    public DatasetFormatException ShortRowError() =>
        Error(null, $"row has {_fields.Count} fields; expected {Table.Header.Count} (the header's count); a short row is not padded");

    /// <summary>The field at a column index ("" when the column is absent).</summary>
    /// <exception cref="DatasetFormatException">The header has the column but this row is too short to hold it.</exception>
    public string this[int column] =>
        column >= 0 && column < _fields.Count ? _fields[column]
        : column >= 0 && column < Table.Header.Count ? throw ShortRowError()
        : "";

    /// <summary>The field of a named column ("" when the column is absent; a short row throws).</summary>
    public string this[string column] => this[Table.IndexOf(column)];

    /// <summary>The field of a named column, or null when absent or blank.</summary>
    public string? Opt(string column)
    {
        var v = this[column];
        return v.Length == 0 ? null : v;
    }

    /// <summary>An error about this row.</summary>
    public DatasetFormatException Error(string? column, string message) => new(Table.Path, Line, column, message);
}
