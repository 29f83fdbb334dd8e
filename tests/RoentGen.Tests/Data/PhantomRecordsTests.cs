using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Interactive;

namespace RoentGen.Tests.Data;

public class PhantomRecordsTests
{
    private static readonly PhantomOptions Options = new() { Size = 64, Seed = 17 };

    [Fact]
    public void Records_equal_the_generators_cases_field_by_field_and_bit_by_bit()
    {
        var records = PhantomRecords.Create(Options, 6, start: 3);
        Assert.Equal(6, records.Count);
        Assert.StartsWith("phantoms", records.Name);
        var gen = new PhantomGenerator(Options);
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i];
            var c = gen.Generate(3 + i);
            Assert.Equal(c.Id, r.Id);
            Assert.Equal(c.PatientId, r.PatientId);
            Assert.Equal("phantom", r.Dataset);
            Assert.Equal("phantom/" + c.PatientId, r.SplitKey);
            Assert.Equal(c.Image.Pixels, r.Image.Load().Pixels);
            Assert.Equal(c.Image.Pixels, records.LoadImage(r).Pixels);
            Assert.Equal(c.Labels, r.Labels);
            Assert.Equal(c.Labels.Positives.Select(o => o.Name()), r.SourceLabels);
            Assert.Equal(c.Findings, r.Report.Findings);
            Assert.Equal(c.Impression, r.Report.Impression);
            Assert.Equal(c.Report, r.Report.Full);
            Assert.Equal(c.Report, r.Report.FullText);
            Assert.Equal($"{c.Findings} {c.Impression}", r.Report.Text);
            Assert.Equal(c.Masks.Keys.OrderBy(k => k), r.Masks.Keys.OrderBy(k => k));
            foreach (var (name, mask) in c.Masks)
            {
                Assert.Equal(mask.Pixels, r.Masks[name].Load().Pixels);
                Assert.Equal(mask.Pixels, records.LoadMask(r, name).Pixels);
            }
            Assert.Equal(c.Sex, r.Sex);
            Assert.Equal(c.Age, r.Age);
            Assert.Equal(c.View, r.View);
            Assert.Equal(c.Attributes, r.Attributes);
            Assert.Null(r.ImagePath);
        }
    }

    [Fact]
    public void Records_are_deterministic_and_masks_can_be_left_out()
    {
        var a = PhantomRecords.Create(Options, 4);
        var b = PhantomRecords.Create(Options, 4);
        var light = PhantomRecords.Create(Options, 4, masks: false);
        for (int i = 3; i >= 0; i--)   // another order than a's
        {
            Assert.Equal(a[i].Image.Load().Pixels, b[i].Image.Load().Pixels);
            Assert.Equal(a[i].Report, b[i].Report);
            Assert.Equal(a[i].Image.Load().Pixels, light[i].Image.Load().Pixels);
            Assert.Empty(light[i].Masks);
            Assert.Contains("lungs", a[i].Masks.Keys);
        }
        Assert.Equal(a[2].Image.Load().Pixels, PhantomRecords.Create(Options, 2, start: 2)[0].Image.Load().Pixels);
        Assert.Throws<ArgumentOutOfRangeException>(() => PhantomRecords.Create(Options, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PhantomRecords.Create(Options, 1, start: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PhantomRecords.Create(Options with { Size = 8 }, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => a[4]);
    }

    [Fact]
    public void A_record_is_generated_on_first_use_only_and_once()
    {
        var records = PhantomRecords.Create(Options, 10_000);
        Assert.All(Enumerable.Range(0, 10), i => Assert.False(PhantomRecords.IsGenerated(records, i)));
        var seen = new CxrRecord[8];
        Parallel.For(0, seen.Length, k => seen[k] = records[7]);
        Assert.All(seen, r => Assert.Same(seen[0], r));        // one drawing shared by every caller
        Assert.Same(seen[0].Image.Load(), records[7].Image.Load());
        Assert.True(PhantomRecords.IsGenerated(records, 7));
        Assert.Equal(1, Enumerable.Range(0, records.Count).Count(i => PhantomRecords.IsGenerated(records, i)));
        records.Prefetch([1, 2, 2]);
        Assert.Equal(3, Enumerable.Range(0, records.Count).Count(i => PhantomRecords.IsGenerated(records, i)));
        Assert.Same(records[7], records.WithCache(TestPaths.NewTempDir("phantom-cache"))[7]);
        Assert.Equal(3, Enumerable.Range(0, records.Count).Count(i => PhantomRecords.IsGenerated(records, i)));
    }

    [Fact]
    public void A_written_folder_loads_back_as_the_same_records()
    {
        string dir = TestPaths.NewTempDir("phantom-records-folder");
        try
        {
            PhantomDataset.WriteFolder(dir, Options, 5, start: 2, sink: ProgressSinks.None());
            var loaded = GenericCsvLoader.Load(dir);
            var records = PhantomRecords.Create(Options, 5, start: 2);
            Assert.Equal(records.Count, loaded.Count);
            for (int i = 0; i < records.Count; i++)
            {
                CxrRecord r = records[i], l = loaded[i];
                Assert.Equal(r.PatientId, l.PatientId);
                Assert.Equal(r.Dataset, l.Dataset);
                Assert.Equal(r.Labels, l.Labels);
                Assert.Equal(r.SourceLabels, l.SourceLabels);
                Assert.Equal(r.Report, l.Report);
                Assert.Equal(r.Sex, l.Sex);
                Assert.Equal(r.Age, l.Age);
                Assert.Equal(r.View, l.View);
                Assert.Equal(r.Masks.Keys.OrderBy(k => k), l.Masks.Keys.Where(k => k != "mask").OrderBy(k => k));
                foreach (var (k, v) in r.Attributes) Assert.Equal(v, l.Attributes[k]);
                // 8-bit PNG: within half a grey level of the generator's float pixels.
                var a = r.Image.Load().Pixels; var b = loaded.LoadImage(l).Pixels;
                Assert.All(Enumerable.Range(0, a.Length), j => Assert.InRange(Math.Abs(a[j] - b[j]), 0, 0.5f / 255 + 1e-6f));
            }
        }
        finally { Directory.Delete(dir, true); }
    }
}
