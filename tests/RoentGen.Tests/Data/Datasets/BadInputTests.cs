using RoentGen.Data;
using RoentGen.Data.Datasets;

namespace RoentGen.Tests.Data.Datasets;

public class BadInputTests
{
    [Fact]
    public void Csv_reader_handles_quotes_commas_newlines_and_reports_lines()
    {
        var t = DatasetCsv.Parse("a,b,c\r\n1,\"x, \"\"y\"\"\nz\",3\n\n4,5,6\n", "t.csv");
        Assert.Equal(["a", "b", "c"], t.Header);
        Assert.Equal(2, t.Rows.Count);
        Assert.Equal("x, \"y\"\nz", t.Rows[0]["b"]);
        Assert.Equal(2, t.Rows[0].Line);
        Assert.Equal(5, t.Rows[1].Line);
        Assert.Equal("6", t.Rows[1]["C"]);
        var ex = Assert.Throws<DatasetFormatException>(() => DatasetCsv.Parse("a,b\n1,2\n3,\"open\n4,5\n", "u.csv"));
        Assert.Equal(3, ex.Line);
        Assert.Contains("u.csv, line 3", ex.Message);
        var wide = Assert.Throws<DatasetFormatException>(() => DatasetCsv.Parse("a,b\n1,2,3\n", "w.csv"));
        Assert.Equal(2, wide.Line);
    }

    [Fact]
    public void Missing_required_column_names_file_and_column()
    {
        var root = TestPaths.NewTempDir("bad");
        File.WriteAllText(Path.Combine(root, "labels.csv"), "image,labels\na.png,x\n");
        var ex = Assert.Throws<DatasetFormatException>(() => GenericCsvLoader.Load(root));
        Assert.Equal("file", ex.Column);
        Assert.Equal(1, ex.Line);
        Assert.EndsWith("labels.csv", ex.File);
        Assert.Contains("image, labels", ex.Message); // says what the header had
        // Even when skipping bad rows: a missing column is not a row problem.
        Assert.Throws<DatasetFormatException>(() => GenericCsvLoader.Load(root, new LoadOptions { SkipBadRows = true }));
    }

    [Fact]
    public void Missing_image_unknown_value_and_bad_age_throw_with_line_or_are_counted_when_skipping()
    {
        var root = Fixtures.Generic(
            "images/gone.png,nih,Edema,M,40,PA,,,,,\n"          // line 7: missing image
            + "images/p9.png,nih,Edema,X,40,PA,,,,Q,\n"         // line 8: unknown sex
            + "images/p9.png,nih,Edema,M,forty,PA,,,,Q2,\n");   // line 9: bad age (and duplicate id would come after)
        var ex = Assert.Throws<DatasetFormatException>(() => GenericCsvLoader.Load(root));
        Assert.Equal(7, ex.Line);
        Assert.Contains("gone.png", ex.Message);

        var ds = GenericCsvLoader.Load(root, new LoadOptions { SkipBadRows = true });
        Assert.Equal(4, ds.Count);
        Assert.Equal(3, ds.SkippedCount);
        Assert.Equal([7, 8, 9], ds.Skipped.Select(s => s.Line!.Value));
        Assert.Contains("unknown sex 'X'", ds.Skipped[1].Reason);
        Assert.Contains("column 'sex'", ds.Skipped[1].Reason);
        Assert.Contains("forty", ds.Skipped[2].Reason);

        // Without the existence check the missing image is found when it is loaded, naming the row.
        var unchecked_ = GenericCsvLoader.Load(root, new LoadOptions { SkipBadRows = true, CheckFilesExist = false });
        Assert.Equal(5, unchecked_.Count);
        var gone = unchecked_.Single(r => r.Id == "images/gone.png");
        var le = Assert.Throws<DatasetFormatException>(() => unchecked_.LoadImage(gone, 8));
        Assert.Equal(7, le.Line);
    }

    [Fact]
    public void Unknown_chexpert_code_and_corrupt_image_are_named()
    {
        var root = TestPaths.NewTempDir("bad-codes");
        Fixtures.Png(root, "a.png");
        File.WriteAllBytes(Path.Combine(root, "broken.png"), [1, 2, 3, 4, 5]);
        var codes = new string[14]; Array.Fill(codes, "");
        codes[3] = "2";
        File.WriteAllText(Path.Combine(root, "labels.csv"),
            "file," + string.Join(",", Observations.Names) + "\na.png," + string.Join(",", codes) + "\nbroken.png" + new string(',', 14) + "\n");
        var ex = Assert.Throws<DatasetFormatException>(() => GenericCsvLoader.Load(root));
        Assert.Equal((2, "Lung Opacity"), (ex.Line!.Value, ex.Column));
        Assert.Contains("'2'", ex.Message);
        Assert.Contains("expected 1, 0, -1 or blank", ex.Message);

        var ds = GenericCsvLoader.Load(root, new LoadOptions { SkipBadRows = true, DecodeImages = true });
        Assert.Empty(ds);
        Assert.Equal(2, ds.SkippedCount);
        Assert.Contains("broken.png", ds.Skipped[1].Reason);
        Assert.Equal(3, ds.Skipped[1].Line);
    }

    [Fact]
    public void A_short_labels_csv_row_is_an_error_naming_file_and_line_or_a_counted_skip()
    {
        var root = TestPaths.NewTempDir("short-row");
        File.WriteAllBytes(Path.Combine(root, "a.png"), ImageIO.EncodePng(new GrayImage(2, 2, new float[4])));
        File.WriteAllBytes(Path.Combine(root, "b.png"), ImageIO.EncodePng(new GrayImage(2, 2, new float[4])));
        File.WriteAllText(Path.Combine(root, "labels.csv"), "file,labels,sex\na.png,Effusion,M\nb.png\n");
        var ex = Assert.Throws<DatasetFormatException>(() => GenericCsvLoader.Load(root));
        Assert.Equal(3, ex.Line);
        Assert.Contains("labels.csv, line 3", ex.Message);
        Assert.Contains("row has 1 fields; expected 3", ex.Message);
        var ds = GenericCsvLoader.Load(root, new LoadOptions { SkipBadRows = true });
        Assert.Single(ds);
        Assert.Equal(1, ds.SkippedCount);
        Assert.Contains("row has 1 fields", ds.Skipped[0].ToString());
    }
}
