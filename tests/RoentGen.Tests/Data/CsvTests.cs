using RoentGen.Data;

namespace RoentGen.Tests.Data;

public class CsvTests
{
    [Fact]
    public void RoundTrip_KeepsCommasQuotesAndLineBreaks()
    {
        var header = new[] { "id", "text", "empty" };
        var rows = new[]
        {
            new[] { "1", "plain", "" },
            new[] { "2", "a, b and \"c\"", "" },
            new[] { "3", "line one\nline two\r\nline three", "x" },
            new[] { "4", " leading space", "" },
        };
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "t.csv");
        Csv.WriteFile(path, header, rows);
        var t = Csv.ReadFile(path);
        Assert.Equal(header, t.Header);
        Assert.Equal(rows.Length, t.Rows.Count);
        for (int i = 0; i < rows.Length; i++) Assert.Equal(rows[i], t.Rows[i].Fields);
        Assert.Equal("a, b and \"c\"", t.Rows[1]["text"]);
        // line numbers count the line breaks inside quoted fields
        Assert.Equal(2, t.Rows[0].LineNumber);
        Assert.Equal(4, t.Rows[2].LineNumber);
        Assert.Equal(7, t.Rows[3].LineNumber);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Parse_HandlesCrlfBomAndRefusesShortRows()
    {
        // Issue #12: a short row used to be padded with empty fields; it is now refused (or skipped on request).
        var t = Csv.Parse("\uFEFFa,b,c\r\n1,\"x,y\",3\r\n4,5,\r\n".TrimStart('\uFEFF'));
        Assert.Equal(["a", "b", "c"], t.Header);
        Assert.Equal("x,y", t.Rows[0]["b"]);
        Assert.Equal("", t.Rows[1]["c"]);
        Assert.Equal(new Dictionary<string, string> { ["a"] = "4", ["b"] = "5", ["c"] = "" }, t.Rows[1].ToDictionary());
        var e = Assert.Throws<InvalidDataException>(() => Csv.Parse("a,b,c\r\n1,\"x,y\",3\r\n4,5\r\n"));
        Assert.Contains("csv: line 3 has 2 fields, the header has 3", e.Message);
    }

    [Fact]
    public void Errors_NameTheProblemAndLine()
    {
        var e1 = Assert.Throws<InvalidDataException>(() => Csv.Parse("a,b\n1,\"open\n", "f.csv"));
        Assert.Contains("unterminated", e1.Message);
        Assert.Contains("line 2", e1.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => Csv.Parse("a,b\n1,2,3\n", "f.csv"));
        Assert.Contains("line 2", e2.Message);
        var t = Csv.Parse("a,b\n1,2\n", "f.csv");
        var e3 = Assert.Throws<InvalidDataException>(() => t.RequireColumns("a", "zzz"));
        Assert.Contains("'zzz'", e3.Message);
        Assert.Contains("f.csv", e3.Message);
        Assert.Throws<KeyNotFoundException>(() => t.Rows[0]["zzz"]);
        Assert.Throws<InvalidDataException>(() => Csv.Parse("a,a\n1,2\n"));
    }

    [Fact]
    public void Escape_QuotesOnlyWhenNeeded()
    {
        Assert.Equal("abc", Csv.Escape("abc"));
        Assert.Equal("\"a,b\"", Csv.Escape("a,b"));
        Assert.Equal("\"say \"\"hi\"\"\"", Csv.Escape("say \"hi\""));
        Assert.Equal("", Csv.Escape(null));
    }

    [Fact]
    public void A_short_row_is_an_error_naming_the_file_and_line_or_a_counted_skip_never_padded()
    {
        var e = Assert.Throws<InvalidDataException>(() => Csv.Parse("id,text,extra\n1,a,b\n2,b\n", "short.csv"));
        Assert.Contains("short.csv: line 3 has 2 fields, the header has 3; expected 3", e.Message);
        var skipped = Csv.Parse("id,text,extra\n1,a,b\n2,b\n3,c,d\n", "short.csv", skipShortRows: true);
        Assert.Equal(["1", "3"], skipped.Rows.Select(r => r["id"]));
        Assert.Equal([3], skipped.SkippedLines);
        // Control characters in a header reach messages escaped.
        var dup = Assert.Throws<InvalidDataException>(() => Csv.Parse("a\u001b[31m,a\u001b[31m\n1,2\n", "dup.csv"));
        Assert.Contains("duplicate column 'a\\e[31m'", dup.Message);
        Assert.False(dup.Message.Contains('\u001b', StringComparison.Ordinal));
    }

    [Fact]
    public void Devices_and_fifos_are_refused_as_csv_input()
    {
        if (!OperatingSystem.IsLinux()) return;
        var e = Assert.Throws<InvalidDataException>(() => Csv.ReadFile("/dev/zero"));
        Assert.Contains("/dev/zero: the CSV file is a device, FIFO or socket, not a regular file", e.Message);
    }
}
