using Xunit.Abstractions;
using System.Diagnostics;
using RoentGen.Data;
using RoentGen.Data.Datasets;

namespace RoentGen.Tests.Data.Datasets;

public class GenericCsvLoaderTests
{
    [Fact]
    public void Fixture_fields_labels_masks_and_attributes()
    {
        var root = Fixtures.Generic();
        var ds = GenericCsvLoader.Load(root);
        Assert.Equal(4, ds.Count);
        Assert.Equal(0, ds.SkippedCount);

        var a = ds[0];
        Assert.Equal("images/00000001_000.png", a.Id);
        Assert.Equal("00000001", a.PatientId);
        Assert.Equal("nih", a.Dataset);
        Assert.Equal(["Effusion", "Infiltration"], a.SourceLabels);
        Assert.Equal(Mention.Positive, a.Labels[Observation.PleuralEffusion]);
        Assert.Equal(Mention.Positive, a.Labels[Observation.LungOpacity]);
        Assert.Equal(Mention.NotMentioned, a.Labels[Observation.Edema]);
        Assert.Equal("M", a.Sex);
        Assert.Equal(63, a.Age);
        Assert.Equal(2, a.SourceLine);
        Assert.Equal(64, ds[1].Age);
        Assert.Equal(ds[0].PatientId, ds[1].PatientId);
        Assert.True(ds[1].Labels.Has(Observation.NoFinding));

        var tb = ds[2];
        Assert.Equal("CHNCXR_0001", tb.PatientId);
        Assert.Empty(tb.Labels.Positives);
        Assert.Equal(["tuberculosis", "Emphysema"], tb.SourceLabels);
        Assert.Equal(["left_lung", "mask"], tb.Masks.Keys.Order());
        Assert.Equal("small left pleural effusion, no pneumothorax.", tb.Report.Findings);
        Assert.Equal("effusion.", tb.Report.Impression);
        Assert.Equal("left", tb.Attributes["side"]);
        Assert.Equal(4, tb.SourceLine);

        var c = ds[3];
        Assert.Equal("P9", c.PatientId);
        Assert.Equal("case with \"quotes\", commas", c.Report.Full);
        Assert.Null(c.Report.Findings);
        Assert.Null(c.Sex);
        Assert.Null(c.Age);
        Assert.Equal(6, c.SourceLine); // the quoted report of line 4 spans lines 4-5

        var img = ds.LoadImage(c);
        Assert.Equal((12, 6), (img.Width, img.Height));
        var sq = ds.LoadImage(c, 16);
        Assert.Equal((16, 16), (sq.Width, sq.Height));
        Assert.Equal(0f, sq[8, 0]); // padded rows are black
        var m = ds.LoadMask(tb, "mask", 5);
        Assert.All(m.Pixels, v => Assert.True(v is 0f or 1f));
        Assert.Throws<KeyNotFoundException>(() => ds.LoadMask(c, "mask"));
    }

    [Fact]
    public void Chexpert_columns_when_all_present_are_the_labels()
    {
        var root = TestPaths.NewTempDir("generic-cx");
        Fixtures.Png(root, "a.png");
        var header = "file,labels," + string.Join(",", Observations.Names.Select(n => n.Contains(' ') ? n : n));
        var codes = new string[14]; Array.Fill(codes, "");
        codes[(int)Observation.Edema] = "1"; codes[(int)Observation.Pneumonia] = "-1"; codes[(int)Observation.Fracture] = "0.0";
        File.WriteAllText(Path.Combine(root, "labels.csv"), header + "\na.png,Effusion," + string.Join(",", codes) + "\n");
        var r = GenericCsvLoader.Load(Path.Combine(root, "labels.csv"))[0];
        Assert.Equal(Mention.Positive, r.Labels[Observation.Edema]);
        Assert.Equal(Mention.Uncertain, r.Labels[Observation.Pneumonia]);
        Assert.Equal(Mention.Negative, r.Labels[Observation.Fracture]);
        Assert.Equal(Mention.NotMentioned, r.Labels[Observation.PleuralEffusion]); // raw 'labels' ignored when codes exist
    }

    [Fact]
    public void Split_column_and_view_filter_select_rows()
    {
        var root = TestPaths.NewTempDir("generic-split");
        Fixtures.Png(root, "a.png"); Fixtures.Png(root, "b.png"); Fixtures.Png(root, "c.png");
        File.WriteAllText(Path.Combine(root, "labels.csv"), "file,view,split\na.png,PA,train\nb.png,LATERAL,train\nc.png,AP,test\n");
        Assert.Equal(["a.png", "b.png"], GenericCsvLoader.Load(root, new LoadOptions { Splits = ["train"] }).Select(r => r.Id));
        Assert.Equal(["a.png", "c.png"], GenericCsvLoader.Load(root, new LoadOptions { Views = ViewFilter.FrontalOnly }).Select(r => r.Id));
        Assert.Equal("train", GenericCsvLoader.Load(root)[0].Attributes["split"]);
        File.WriteAllText(Path.Combine(root, "labels.csv"), "file,view\na.png,PA\n");
        var ex = Assert.Throws<DatasetFormatException>(() => GenericCsvLoader.Load(root, new LoadOptions { Splits = ["train"] }));
        Assert.Equal("split", ex.Column);
    }

    [SkippableFact]
    public void Real_sample_loads_60_rows_with_16_masks_at_256()
    {
        Skip.If(TestPaths.RealSample is null, "real-cxr-sample not present");
        var sw = Stopwatch.StartNew();
        var ds = GenericCsvLoader.Load(TestPaths.RealSample!, new LoadOptions { DecodeImages = true });
        var loadMs = sw.ElapsedMilliseconds;
        Assert.Equal(60, ds.Count);
        Assert.Equal(0, ds.SkippedCount);
        Assert.Equal(16, ds.Count(r => r.Masks.ContainsKey("mask")));
        Assert.All(ds.Where(r => r.Masks.Count > 0), r => Assert.StartsWith("tb-", r.Dataset));
        Assert.Equal(24, ds.Count(r => r.Dataset == "nih-cxr14"));

        // NIH names are mapped; unmappable ones stay raw only.
        var nih = ds.Single(r => r.Id == "images/nih/00021557_000.png");
        Assert.Equal("00021557", nih.PatientId);
        Assert.True(nih.Labels.Has(Observation.Atelectasis));
        Assert.True(nih.Labels.Has(Observation.LungOpacity));
        Assert.Equal("1", nih.Attributes["Infiltration"]); // NIH 0/1 columns stay attributes
        var tb = ds.Where(r => r.SourceLabels.Contains("tuberculosis")).ToList();
        Assert.Equal(8, tb.Count);
        Assert.All(tb, r => Assert.Empty(r.Labels.Positives));
        Assert.Equal(12 + 7, ds.Count(r => r.Labels.Has(Observation.NoFinding))); // 12 'normal' + 7 'No Finding'
        Assert.Contains(ds, r => r.Sex == "F" && r.Age is > 0);

        sw.Restart();
        foreach (var r in ds)
        {
            var img = ds.LoadImage(r, 256);
            Assert.Equal((256, 256), (img.Width, img.Height));
        }
        var tbRec = ds.First(r => r.Masks.Count > 0);
        var mask = ds.LoadMask(tbRec, "mask", 64);
        var frac = mask.Pixels.Average();
        Assert.InRange(frac, 0.1, 0.7); // lungs cover a good part of a CXR, not all of it
        Console.WriteLine($"real sample: load+decode-check {loadMs} ms, 60 images at 256: {sw.ElapsedMilliseconds} ms");
    }
}

public class RealSampleTimingTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void Real_sample_load_cache_and_batch_timings()
    {
        Skip.If(TestPaths.RealSample is null, "real-cxr-sample not present");
        var sw = Stopwatch.StartNew();
        var ds = GenericCsvLoader.Load(TestPaths.RealSample!);
        var tLoad = sw.Elapsed.TotalMilliseconds;
        var cacheDir = TestPaths.NewTempDir("real-cache");
        var cached = ds.WithCache(cacheDir);
        sw.Restart();
        foreach (var r in cached) cached.LoadImage(r, 128);
        cached.Cache!.Flush();
        var tFirst = sw.Elapsed.TotalMilliseconds;
        var again = GenericCsvLoader.Load(TestPaths.RealSample!).WithCache(cacheDir);
        sw.Restart();
        foreach (var r in again) again.LoadImage(r, 128);
        var tSecond = sw.Elapsed.TotalMilliseconds;
        Assert.Equal((60, 0), (again.Cache!.Hits, again.Cache.Misses));
        sw.Restart();
        using (var scope = TorchSharp.torch.NewDisposeScope())
        {
            using var b = CxrBatching.Collate(again, again.Take(32).ToList(), new BatchOptions { Size = 128, MaskNames = ["mask"] });
            Assert.Equal(new long[] { 32, 1, 128, 128 }, b.Images.shape);
        }
        var tBatch = sw.Elapsed.TotalMilliseconds;
        output.WriteLine($"real sample: labels.csv load + existence checks {tLoad:F0} ms; 60 images 256->128 uncached {tFirst:F0} ms, cached {tSecond:F0} ms; batch of 32 at 128 (cached, with masks) {tBatch:F0} ms");
    }
}
