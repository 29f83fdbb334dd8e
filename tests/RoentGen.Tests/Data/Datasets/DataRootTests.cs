using RoentGen.Data;
using RoentGen.Data.Datasets;

namespace RoentGen.Tests.Data.Datasets;

// Issue #12, root cause 6: paths in a labels.csv stay inside the dataset's folder.
[Collection(ProcessStateCollection.Name)]
public class DataRootTests : IDisposable
{
    private readonly string _root = TestPaths.NewTempDir("data-root");
    private readonly string _data;
    private readonly string _outside;

    public DataRootTests()
    {
        _data = Path.Combine(_root, "dataset");
        Directory.CreateDirectory(_data);
        _outside = Path.Combine(_root, "secret.png");
        File.WriteAllBytes(_outside, ImageIO.EncodePng(new GrayImage(2, 2, [0f, 1f, 1f, 0f])));
        File.WriteAllBytes(Path.Combine(_data, "a.png"), ImageIO.EncodePng(new GrayImage(2, 2, new float[4])));
    }

    public void Dispose() => Directory.Delete(_root, true);

    private void Csv(string body) => File.WriteAllText(Path.Combine(_data, "labels.csv"), "file,mask\na.png,\n" + body);

    [Theory]
    [InlineData("../secret.png,", "column 'file'", "'../secret.png' leads outside the folder")]
    [InlineData("../../../../../../etc/shadow,", "column 'file'", "'../../../../../../etc/shadow' leads outside the folder")]
    [InlineData("/etc/shadow,", "column 'file'", "'/etc/shadow' is an absolute path")]
    [InlineData("b.png,../secret.png", "column 'mask'", "'../secret.png' leads outside the folder")]
    [InlineData("link.png,", "line 3: image:", "through a symbolic link that leads outside the folder")]
    public void Paths_leaving_the_dataset_folder_are_refused_naming_row_and_column_unless_allowed(string row, string where, string expected)
    {
        File.CreateSymbolicLink(Path.Combine(_data, "link.png"), _outside);
        Csv(row + "\n");
        var e = Assert.Throws<DatasetFormatException>(() => GenericCsvLoader.Load(_data));
        Assert.Equal(3, e.Line);
        Assert.Contains("labels.csv, line 3", e.Message);
        Assert.Contains(where, e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Contains("--allow-outside-root", e.Message);
        // Skipping bad rows counts it as skipped; allowing outside paths loads it.
        var skipped = GenericCsvLoader.Load(_data, new LoadOptions { SkipBadRows = true, CheckFilesExist = false });
        Assert.Single(skipped);
        Assert.Equal(1, skipped.SkippedCount);
        var allowed = GenericCsvLoader.Load(_data, new LoadOptions { AllowOutsideRoot = true, CheckFilesExist = false });
        Assert.Equal(2, allowed.Count);
    }

    [Fact]
    public void A_link_inside_the_folder_to_a_file_inside_it_is_fine()
    {
        Directory.CreateDirectory(Path.Combine(_data, "sub"));
        File.CreateSymbolicLink(Path.Combine(_data, "sub", "b.png"), Path.Combine(_data, "a.png"));
        Directory.CreateSymbolicLink(Path.Combine(_data, "alias"), Path.Combine(_data, "sub"));
        Csv("sub/b.png,\nalias/b.png,\nsub/../a.png,\n".Replace("sub/../a.png", "sub/../sub/b.png"));
        Assert.Equal(4, GenericCsvLoader.Load(_data, new LoadOptions { CheckFilesExist = true }).Count);
    }

    [Fact]
    public void Data_inspect_does_not_report_a_file_outside_the_folder_as_a_present_image()
    {
        Csv("../../../../../../../../etc/shadow,\n/etc/passwd,\n");
        var s = DatasetInspection.InspectCsv(_data);
        Assert.Equal(1, s.Records);
        Assert.Equal(2, s.Skipped);
        Assert.Contains(s.SkippedExamples, x => x.Contains("leads outside the folder"));
        Assert.Contains(s.SkippedExamples, x => x.Contains("is an absolute path"));
        Assert.DoesNotContain("/etc/shadow\"", s.ToJson()); // no record, present or missing, points at it
        Assert.Equal(3, DatasetInspection.InspectCsv(_data, allowOutsideRoot: true).Records);
    }

    [Fact]
    public void Control_characters_from_csv_headers_and_values_are_escaped_in_messages()
    {
        File.WriteAllText(Path.Combine(_data, "labels.csv"), "image\u001b[2J,labels\na.png,x\n");
        var e = Assert.Throws<DatasetFormatException>(() => GenericCsvLoader.Load(_data));
        Assert.Contains("image\\e[2J", e.Message);
        Assert.False(e.Message.Contains('\u001b', StringComparison.Ordinal), "a raw escape character reached the message");
        File.WriteAllText(Path.Combine(_data, "labels.csv"), "file,sex\na.png,\u001b]0;pwned\u0007\n");
        e = Assert.Throws<DatasetFormatException>(() => GenericCsvLoader.Load(_data));
        Assert.Contains("unknown sex '\\e]0;pwned\\u{0007}'", e.Message);
    }

    [Fact]
    public void Cli_data_inspect_takes_allow_outside_root()
    {
        Csv("../secret.png,\n");
        var type = Type.GetType("RoentGen.Cli.Commands.DataInspectCommand, RoentGen.Cli")!;
        var root = new System.CommandLine.RootCommand { (System.CommandLine.Command)type.GetMethod("Build")!.Invoke(null, null)! };
        var output = Console.Out;
        try
        {
            var plain = new StringWriter();
            Console.SetOut(plain);
            Assert.Equal(0, root.Parse(["inspect", _data, "--json"]).Invoke());
            var allowed = new StringWriter();
            Console.SetOut(allowed);
            Assert.Equal(0, root.Parse(["inspect", _data, "--json", "--allow-outside-root"]).Invoke());
            Assert.Equal(1, DatasetSummary.FromJson(plain.ToString()).Records);
            Assert.Equal(1, DatasetSummary.FromJson(plain.ToString()).Skipped);
            Assert.Equal(2, DatasetSummary.FromJson(allowed.ToString()).Records);
        }
        finally { Console.SetOut(output); }
    }
}
