using System.CommandLine;
using RoentGen.Data;
using RoentGen.Data.Datasets;

namespace RoentGen.Tests.Data.Datasets;

public class CacheFrameInspectTests
{
    [Fact]
    public void Cache_serves_second_load_and_invalidates_changed_source()
    {
        var root = Fixtures.Generic();
        var cacheDir = TestPaths.NewTempDir("cache");
        var ds = GenericCsvLoader.Load(root).WithCache(cacheDir);
        var first = ds.Select(r => ds.LoadImage(r, 6)).ToList();
        var mask = ds.LoadMask(ds[2], "mask", 6);
        ds.Cache!.Flush();
        Assert.Equal((5, 0), (ds.Cache.Misses, ds.Cache.Hits));
        Assert.True(File.Exists(ds.Cache.ManifestPath));
        Assert.Equal(5, Directory.GetFiles(cacheDir, "*.png").Length);

        // A new process (new cache object) finds the manifest and serves every image from it.
        var again = GenericCsvLoader.Load(root).WithCache(cacheDir);
        var second = again.Select(r => again.LoadImage(r, 6)).ToList();
        Assert.Equal((0, 4), (again.Cache!.Misses, again.Cache.Hits));
        for (int i = 0; i < first.Count; i++) Assert.Equal(first[i].Pixels, second[i].Pixels);
        Assert.Equal(mask.Pixels, again.LoadMask(again[2], "mask", 6).Pixels);

        // Another size is another entry; a changed source is re-read.
        again.LoadImage(again[0], 4);
        Assert.Equal(1, again.Cache.Misses);
        var src = again[0].ImagePath!;
        ImageIO.WritePng(src, new GrayImage(8, 8, Enumerable.Repeat(1f, 64).ToArray()));
        File.SetLastWriteTimeUtc(src, DateTime.UtcNow.AddMinutes(1));
        var changed = again.LoadImage(again[0], 6);
        Assert.Equal(2, again.Cache.Misses);
        Assert.All(changed.Pixels, v => Assert.Equal(1f, v));
    }

    [Fact]
    public void Data_frame_has_one_row_per_record_and_code_columns()
    {
        var ds = GenericCsvLoader.Load(Fixtures.Generic());
        var df = ds.ToDataFrame();
        Assert.Equal(4, df.Rows.Count);
        Assert.Equal(["id", "patient", "dataset", "sex", "age", "view"], df.Columns.Take(6).Select(c => c.Name));
        Assert.Equal(Observations.Names, df.Columns.Skip(6).Take(14).Select(c => c.Name));
        Assert.Equal("report", df.Columns[20].Name);
        Assert.Equal(1, df["Pleural Effusion"][0]);
        Assert.Null(df["Edema"][0]);
        Assert.Equal(63.0, df["age"][0]);
        Assert.Null(df["age"][3]);
        Assert.Equal("00000001", df["patient"][1]);
    }

    [Fact]
    public void Inspection_of_fixture_counts_labels_demographics_masks_and_missing()
    {
        var root = Fixtures.Generic("images/gone.png,nih,Edema,F,70,PA,,,,,\nimages/p9.png,nih,,Z,70,PA,,,,,\n");
        var s = DatasetInspection.InspectCsv(root);
        Assert.Equal(5, s.Records);
        Assert.Equal(1, s.Skipped); // unknown sex 'Z'
        Assert.Contains("'Z'", s.SkippedExamples[0]);
        Assert.Equal(1, s.MissingImages);
        Assert.EndsWith("gone.png", s.MissingImageExamples[0]);
        Assert.Equal(4, s.Patients);
        Assert.Equal(new Dictionary<string, int> { ["covid"] = 1, ["nih"] = 3, ["tb"] = 1 }, s.Datasets);
        var eff = s.Observations.Single(o => o.Observation == "Pleural Effusion");
        Assert.Equal((1, 0, 0, 4), (eff.Positive, eff.Negative, eff.Uncertain, eff.NotMentioned));
        Assert.Equal(new Dictionary<string, int> { ["F"] = 2, ["M"] = 2, ["unknown"] = 1 }, s.Sex);
        Assert.Equal((4, 1, 31.0, 70.0), (s.Age.Known, s.Age.Missing, s.Age.Min!.Value, s.Age.Max!.Value));
        Assert.Equal(63.5, s.Age.Median);
        Assert.Equal(new Dictionary<string, int> { ["left_lung"] = 1, ["mask"] = 1 }, s.Masks);
        Assert.Equal(3, s.Views["PA"]);
        var back = DatasetSummary.FromJson(s.ToJson());
        Assert.Equal(s.Records, back.Records);
        Assert.Equal(s.Observations, back.Observations);
        Assert.Contains("\"missingImages\": 1", s.ToJson());
    }

    [SkippableFact]
    public void Inspection_of_real_sample()
    {
        Skip.If(TestPaths.RealSample is null, "real-cxr-sample not present");
        var s = DatasetInspection.InspectCsv(TestPaths.RealSample!);
        Assert.Equal(60, s.Records);
        Assert.Equal((0, 0, 0), (s.MissingImages, s.MissingMasks, s.Skipped));
        Assert.Equal(16, s.RecordsWithMasks);
        Assert.Equal(5, s.Datasets.Count);
        Assert.Equal(14, s.Sex["M"]);
        Assert.Equal(9, s.Sex["F"]);
        Assert.Equal(24, s.Views["frontal"]);
        Assert.Equal(8, s.SourceLabels["tuberculosis"]);
        Assert.Equal(19, s.Observations.Single(o => o.Observation == "No Finding").Positive);
        Assert.True(s.Age.Known > 10 && s.Age.Min >= 0 && s.Age.Max <= 100);
    }

    [Fact]
    public void Cli_inspect_command_is_named_inspect_and_reports_errors_by_exit_code()
    {
        var type = Type.GetType("RoentGen.Cli.Commands.DataInspectCommand, RoentGen.Cli")!;
        var cmd = (Command)type.GetMethod("Build")!.Invoke(null, null)!;
        Assert.Equal("inspect", cmd.Name);
        var root = new RootCommand { cmd };
        Assert.Equal(2, root.Parse(["inspect", Path.Combine(TestPaths.NewTempDir("empty"), "nothing")]).Invoke());
        var fixture = Fixtures.Generic();
        Assert.Equal(0, root.Parse(["inspect", fixture]).Invoke());            // tables
        Assert.Equal(0, root.Parse(["inspect", fixture, "--json"]).Invoke());  // JSON
    }
}
