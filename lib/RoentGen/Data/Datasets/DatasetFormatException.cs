namespace RoentGen.Data.Datasets;

/// <summary>
/// A dataset file is wrong: names the file, the 1-based line (when known), the column (when known) and what
/// was expected, e.g. <c>labels.csv, line 12, column 'age': 'abc' is not a number; expected years</c>.
/// </summary>
public sealed class DatasetFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="file">The file that is wrong.</param>
    /// <param name="line">1-based line, or null.</param>
    /// <param name="column">Column name, or null.</param>
    /// <param name="problem">What is wrong and what was expected.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public DatasetFormatException(string file, int? line, string? column, string problem, Exception? inner = null)
        : base(Format(file, line, column, problem), inner)
    {
        File = file;
        Line = line;
        Column = column;
        Problem = problem;
    }

    /// <summary>The file that is wrong.</summary>
    public string File { get; }
    /// <summary>1-based line, or null when the problem is not tied to a line.</summary>
    public int? Line { get; }
    /// <summary>Column name, or null.</summary>
    public string? Column { get; }
    /// <summary>What is wrong and what was expected, without the location.</summary>
    public string Problem { get; }

    private static string Format(string file, int? line, string? column, string problem) =>
        Platform.TextEscape.Escape(file) + (line is int l ? $", line {l}" : "") + (column is null ? "" : $", column '{Platform.TextEscape.Escape(column)}'") + ": " + Platform.TextEscape.Escape(problem);
}

/// <summary>A source row that a loader left out because <see cref="LoadOptions.SkipBadRows"/> was set.</summary>
/// <param name="File">The file holding the row.</param>
/// <param name="Line">1-based line of the row, or null.</param>
/// <param name="Reason">Why it was left out (the message the error would have had).</param>
public sealed record SkippedRow(string File, int? Line, string Reason)
{
    /// <inheritdoc />
    public override string ToString() => $"{Platform.TextEscape.Escape(File)}{(Line is int l ? $":{l}" : "")}: {Platform.TextEscape.Escape(Reason)}";
}
