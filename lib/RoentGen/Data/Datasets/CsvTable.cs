using System.IO.Compression;
using System.Text;

namespace RoentGen.Data.Datasets;

/// <summary>
/// A small RFC 4180 CSV reader for the dataset loaders: a header row, quoted fields that may hold commas,
/// doubled quotes and newlines, CRLF or LF line ends, an optional UTF-8 BOM, and ".gz" files.
/// Every row remembers the 1-based line of the file where it starts, so errors can name it.
/// </summary>
internal sealed class CsvTable
{
    private readonly Dictionary<string, int> _index;

    private CsvTable(string path, IReadOnlyList<string> header, IReadOnlyList<CsvRow> rows)
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
    public IReadOnlyList<CsvRow> Rows { get; }

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
    public static CsvTable Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CSV file not found: {path}", path);
        using var fs = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(fs, CompressionMode.Decompress) : fs;
        using var reader = new StreamReader(s, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return Parse(reader.ReadToEnd(), path);
    }

    /// <summary>Parses CSV text.</summary>
    public static CsvTable Parse(string text, string nameForErrors)
    {
        var records = new List<(int Line, List<string> Fields)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1;
        bool inQuotes = false, fieldStarted = false, quotedField = false;
        int quoteLine = 0;
        int i = 0;
        if (text.Length > 0 && text[0] == '\uFEFF') i = 1;

        void EndField()
        {
            fields.Add(quotedField ? field.ToString() : field.ToString().Trim());
            field.Clear();
            fieldStarted = false;
            quotedField = false;
        }
        void EndRecord()
        {
            EndField();
            bool blank = fields.Count == 1 && fields[0].Length == 0;
            if (!blank) records.Add((recordLine, fields));
            fields = new List<string>();
        }

        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                    else inQuotes = false;
                }
                else
                {
                    if (c == '\n') line++;
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"' when !fieldStarted || field.ToString().Trim().Length == 0:
                    field.Clear();
                    inQuotes = true; quotedField = true; fieldStarted = true; quoteLine = line;
                    break;
                case ',':
                    EndField();
                    break;
                case '\r':
                    break;
                case '\n':
                    EndRecord();
                    line++;
                    recordLine = line;
                    break;
                default:
                    if (quotedField)
                    {
                        if (!char.IsWhiteSpace(c))
                            throw new DatasetFormatException(nameForErrors, line, null,
                                $"unexpected character '{c}' after a closing quote; expected a comma or the end of the line");
                        break;
                    }
                    field.Append(c);
                    fieldStarted = true;
                    break;
            }
        }
        if (inQuotes)
            throw new DatasetFormatException(nameForErrors, quoteLine, null, "a quoted field is never closed; expected a closing '\"'");
        if (fieldStarted || field.Length > 0 || fields.Count > 0) EndRecord();

        if (records.Count == 0) throw new DatasetFormatException(nameForErrors, 1, null, "the file is empty; expected a header row");
        var header = records[0].Fields.Select(h => h.Trim()).ToList();
        var rows = new List<CsvRow>(records.Count - 1);
        var table = new CsvTable(nameForErrors, header, rows);
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
            rows.Add(new CsvRow(table, recLine, f));
        }
        return table;
    }
}

/// <summary>One CSV data row.</summary>
internal sealed class CsvRow
{
    private readonly List<string> _fields;

    internal CsvRow(CsvTable table, int line, List<string> fields)
    {
        Table = table;
        Line = line;
        _fields = fields;
    }

    /// <summary>The table it belongs to.</summary>
    public CsvTable Table { get; }
    /// <summary>1-based line in the file where the row starts.</summary>
    public int Line { get; }

    /// <summary>The field at a column index ("" when the row is short).</summary>
    public string this[int column] => column >= 0 && column < _fields.Count ? _fields[column] : "";

    /// <summary>The field of a named column ("" when the column is absent or the row is short).</summary>
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
