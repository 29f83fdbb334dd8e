using System.Text;

namespace RoentGen.Data;

/// <summary>One data row of a CSV file, with its header and the line it started on (for error messages).</summary>
public sealed class CsvRow
{
    private readonly IReadOnlyDictionary<string, int> _index;

    internal CsvRow(IReadOnlyDictionary<string, int> index, string[] fields, int lineNumber, string source)
    {
        _index = index; Fields = fields; LineNumber = lineNumber; Source = source;
    }

    /// <summary>The fields in column order (as many as the header has: a short row is an error, never padded).</summary>
    public string[] Fields { get; }
    /// <summary>1-based line number in the file where the row starts.</summary>
    public int LineNumber { get; }
    /// <summary>The file name (or a description) the row came from.</summary>
    public string Source { get; }

    /// <summary>The field of a named column.</summary>
    /// <exception cref="KeyNotFoundException">No such column.</exception>
    public string this[string column] =>
        _index.TryGetValue(column, out var i)
            ? (i < Fields.Length ? Fields[i] : "")
            : throw new KeyNotFoundException($"{Source}: no column '{column}' (line {LineNumber}); columns are: {string.Join(", ", _index.Keys)}");

    /// <summary>The field of a named column, or null when the file has no such column.</summary>
    public string? Get(string column) => _index.TryGetValue(column, out var i) ? (i < Fields.Length ? Fields[i] : "") : null;

    /// <summary>The row as a column-name to field dictionary.</summary>
    public Dictionary<string, string> ToDictionary() => _index.ToDictionary(kv => kv.Key, kv => kv.Value < Fields.Length ? Fields[kv.Value] : "");
}

/// <summary>A CSV file read whole: its header and its rows.</summary>
public sealed class CsvTable
{
    internal CsvTable(string[] header, List<CsvRow> rows, string source, IReadOnlyList<int>? skippedLines = null)
    {
        Header = header; Rows = rows; Source = source; SkippedLines = skippedLines ?? [];
    }

    /// <summary>Lines of rows left out because they had fewer fields than the header (only when reading with skipShortRows).</summary>
    public IReadOnlyList<int> SkippedLines { get; }

    /// <summary>Column names, in order.</summary>
    public string[] Header { get; }
    /// <summary>Data rows.</summary>
    public IReadOnlyList<CsvRow> Rows { get; }
    /// <summary>The file name (or a description) it came from.</summary>
    public string Source { get; }

    /// <summary>True when the header has the column.</summary>
    public bool HasColumn(string column) => Array.IndexOf(Header, column) >= 0;

    /// <summary>Throws a clear error naming the file when a column is missing.</summary>
    /// <exception cref="InvalidDataException">A column is missing.</exception>
    public void RequireColumns(params string[] columns)
    {
        var missing = columns.Where(c => !HasColumn(c)).ToArray();
        if (missing.Length > 0)
            throw new InvalidDataException(
                $"{Source}: missing column{(missing.Length > 1 ? "s" : "")} {string.Join(", ", missing.Select(m => $"'{m}'"))}; the header has: {string.Join(", ", Header)}");
    }
}

/// <summary>
/// RFC 4180 CSV: comma-separated fields, fields with commas, quotes or line breaks in double quotes,
/// quotes doubled inside quoted fields. Reads CRLF or LF line ends and an optional UTF-8 BOM; writes LF.
/// </summary>
public static class Csv
{
    /// <summary>Reads a CSV file whose first record is the header.</summary>
    /// <param name="path">The file.</param>
    /// <param name="skipShortRows">Leave out rows with fewer fields than the header, listing their lines in
    /// <see cref="CsvTable.SkippedLines"/>, instead of refusing the file.</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a regular file (a device or FIFO), not UTF-8 (the line and byte are named), or malformed CSV (unterminated quote, text
    /// after a closing quote, duplicate or empty header, a row with more fields than the header, or fewer unless skipped).</exception>
    public static CsvTable ReadFile(string path, bool skipShortRows = false)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CSV file not found: {Platform.TextEscape.Escape(path)}", path);
        // Strict UTF-8: a byte that is not UTF-8 is an error naming its line, not a U+FFFD that a rewrite would keep.
        return Read(new StringReader(Platform.InputFile.ReadAllTextStrict(path, what: "CSV file")), path, skipShortRows);
    }

    /// <summary>Reads CSV text whose first record is the header.</summary>
    public static CsvTable Parse(string text, string source = "csv", bool skipShortRows = false) => Read(new StringReader(text), source, skipShortRows);

    /// <summary>Reads CSV from a reader whose first record is the header.</summary>
    /// <exception cref="InvalidDataException">Malformed CSV; the message names the source and the line.</exception>
    public static CsvTable Read(TextReader reader, string source = "csv", bool skipShortRows = false)
    {
        source = Platform.TextEscape.Escape(source);
        var records = ReadRecords(reader, source).ToList();
        if (records.Count == 0) throw new InvalidDataException($"{source}: empty file, expected a header line");
        var header = records[0].Fields;
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < header.Length; i++)
        {
            if (!index.TryAdd(header[i], i))
                throw new InvalidDataException($"{source}: duplicate column '{Platform.TextEscape.Escape(header[i])}' in the header (line 1)");
        }
        var rows = new List<CsvRow>(records.Count - 1);
        var skipped = new List<int>();
        foreach (var (fields, line) in records.Skip(1))
        {
            if (fields.Length == 1 && fields[0].Length == 0) continue; // blank line
            if (fields.Length > header.Length)
                throw new InvalidDataException($"{source}: line {line} has {fields.Length} fields, the header has {header.Length}");
            if (fields.Length < header.Length)
            {
                if (skipShortRows) { skipped.Add(line); continue; }
                throw new InvalidDataException($"{source}: line {line} has {fields.Length} fields, the header has {header.Length}; expected {header.Length} (a short row is not padded; quote fields that hold commas or line breaks)");
            }
            rows.Add(new CsvRow(index, fields, line, source));
        }
        return new CsvTable(header, rows, source, skipped);
    }

    /// <summary>Reads raw records (no header handling), each with the 1-based line it starts on.</summary>
    /// <exception cref="InvalidDataException">Malformed CSV.</exception>
    public static IEnumerable<(string[] Fields, int Line)> ReadRecords(TextReader reader, string source = "csv")
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1;
        bool inQuotes = false, wasQuoted = false, any = false;
        int c;
        while ((c = reader.Read()) != -1)
        {
            any = true;
            char ch = (char)c;
            if (inQuotes)
            {
                if (ch == '"')
                {
                    if (reader.Peek() == '"') { reader.Read(); field.Append('"'); }
                    else inQuotes = false;
                }
                else
                {
                    if (ch == '\n') line++;
                    field.Append(ch);
                }
                continue;
            }
            switch (ch)
            {
                case '"':
                    if (field.Length > 0 || wasQuoted)
                        throw new InvalidDataException($"{source}: line {line}: a quote inside an unquoted field (quote the whole field and double the quote)");
                    inQuotes = true; wasQuoted = true;
                    break;
                case ',':
                    fields.Add(field.ToString()); field.Clear(); wasQuoted = false;
                    break;
                case '\r':
                    break; // CRLF: the \n ends the record
                case '\n':
                    fields.Add(field.ToString()); field.Clear(); wasQuoted = false;
                    yield return (fields.ToArray(), recordLine);
                    fields.Clear();
                    line++; recordLine = line;
                    break;
                default:
                    if (wasQuoted)
                        throw new InvalidDataException($"{source}: line {line}: text after a closing quote");
                    field.Append(ch);
                    break;
            }
        }
        if (inQuotes) throw new InvalidDataException($"{source}: unterminated quoted field starting on line {recordLine}");
        if (any && (field.Length > 0 || fields.Count > 0 || wasQuoted))
        {
            fields.Add(field.ToString());
            yield return (fields.ToArray(), recordLine);
        }
    }

    /// <summary>Quotes a field when it holds a comma, quote, CR or LF (or leading/trailing space).</summary>
    public static string Escape(string? field)
    {
        if (string.IsNullOrEmpty(field)) return "";
        bool needs = field.AsSpan().IndexOfAny(",\"\r\n") >= 0 || field[0] == ' ' || field[^1] == ' ';
        return needs ? "\"" + field.Replace("\"", "\"\"") + "\"" : field;
    }

    /// <summary>One record as a line (without the line end).</summary>
    public static string FormatRecord(IEnumerable<string?> fields) => string.Join(",", fields.Select(Escape));

    /// <summary>Writes a header and rows as CSV text to a writer (LF line ends).</summary>
    public static void Write(TextWriter writer, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string?>> rows)
    {
        writer.Write(FormatRecord(header)); writer.Write('\n');
        foreach (var r in rows)
        {
            if (r.Count != header.Count)
                throw new ArgumentException($"row has {r.Count} fields, the header has {header.Count}");
            writer.Write(FormatRecord(r)); writer.Write('\n');
        }
    }

    /// <summary>Writes a CSV file atomically (UTF-8, no BOM).</summary>
    public static void WriteFile(string path, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string?>> rows) =>
        Platform.AtomicFile.Write(path, s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
            Write(w, header, rows);
        });
}
