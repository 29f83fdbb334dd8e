using RoentGen.Data;

namespace RoentGen.Tests.Data;

public class DataTourChartsTests
{
    [Fact]
    public void Anatomy_plates_show_a_normal_man_and_woman_plain_then_with_their_lungs_and_heart_masks()
    {
        var generator = new RoentGen.Data.Phantoms.PhantomGenerator(new RoentGen.Data.Phantoms.PhantomOptions { Size = 64, Seed = 5 });
        var grid = DataTour.AnatomyPlates(generator, size: 96);
        Assert.Equal(6, grid.Cells.Count);
        Assert.Contains("man", grid.Cells[0].Caption);
        Assert.Contains("woman", grid.Cells[3].Caption);
        foreach (int person in new[] { 0, 3 })
        {
            var id = grid.Cells[person].Caption!.Split(':')[0];
            var again = new RoentGen.Data.Phantoms.PhantomGenerator(generator.Options with { Size = 96 }).Generate(int.Parse(id["phantom_".Length..], System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(again.Labels.Has(Observation.NoFinding), $"{id} is not a normal case");
            Assert.Equal(person == 0 ? "M" : "F", again.Sex);
            Assert.Equal(again.Image.Pixels, grid.Cells[person].Image.Pixels);
            Assert.Equal(again.Masks["lungs"].Pixels, grid.Cells[person + 1].Mask!.Pixels);
            Assert.Equal(again.Masks["heart"].Pixels, grid.Cells[person + 2].Mask!.Pixels);
        }
    }

    [Fact]
    public void Statistics_beside_real_compare_equal_numbers_of_images_and_a_set_with_itself_is_at_distance_zero()
    {
        var cases = new RoentGen.Data.Phantoms.PhantomGenerator(new RoentGen.Data.Phantoms.PhantomOptions { Size = 64, Seed = 2 }).Generate(0, 6);
        var dir = TestPaths.NewTempDir("tour-stats");
        try
        {
            RoentGen.Data.Phantoms.PhantomDataset.WriteFolder(dir, new RoentGen.Data.Phantoms.PhantomOptions { Size = 64, Seed = 2 }, 6);
            var same = RoentGen.Data.Datasets.GenericCsvLoader.Load(Path.Combine(dir, "labels.csv"));
            var table = DataTour.StatisticsBesideReal(cases, same, size: 64);
            var rows = Enumerable.Range(0, (int)table.Rows.Count).ToDictionary(i => (string)table.Columns[0][i], i => table.Rows[i]);
            // The same phantoms, once in memory and once through 8-bit PNG files: only quantisation (under 1/256) apart.
            Assert.InRange(Convert.ToDouble(rows["histogram_w1"][1], System.Globalization.CultureInfo.InvariantCulture), 0, 1.0 / 256);
            Assert.Equal(Convert.ToDouble(rows["body_mean"][1], System.Globalization.CultureInfo.InvariantCulture), Convert.ToDouble(rows["body_mean"][3], System.Globalization.CultureInfo.InvariantCulture), 2);
            var other = DataTour.StatisticsBesideReal(new RoentGen.Data.Phantoms.PhantomGenerator(new RoentGen.Data.Phantoms.PhantomOptions { Size = 64, Seed = 2, NoiseLevel = 5 }).Generate(0, 6), same, size: 64);
            Assert.True(Convert.ToDouble(other.Rows[Enumerable.Range(0, (int)other.Rows.Count).First(i => (string)other.Columns[0][i] == "histogram_w1")][1], System.Globalization.CultureInfo.InvariantCulture) > 2.0 / 256);
        }
        finally { TestPaths.DeleteQuietly(dir); }
    }

    [Fact]
    public void Finding_signs_are_close_ups_of_each_mask_plain_then_tinted_with_the_sign_drawn()
    {
        var cases = new RoentGen.Data.Phantoms.PhantomGenerator(new RoentGen.Data.Phantoms.PhantomOptions { Size = 96, Seed = 3 }).Generate(0, 300);
        var grid = DataTour.FindingSigns(cases, tile: 48);
        var present = DataTour.SignsDrawn.Keys.Where(k => cases.Any(c => c.Masks.TryGetValue(k, out var m) && m.Pixels.Any(v => v > 0.5f))).ToList();
        Assert.True(present.Count >= 7, $"only {present.Count} finding masks in 300 phantoms");
        Assert.Equal(2 * present.Count, grid.Cells.Count);
        for (int i = 0; i < present.Count; i++)
        {
            var (plain, tinted) = (grid.Cells[2 * i], grid.Cells[2 * i + 1]);
            Assert.StartsWith(present[i].Replace('_', ' '), plain.Caption);
            Assert.Equal(DataTour.SignsDrawn[present[i]], tinted.Caption);
            Assert.Equal(plain.Image, tinted.Image);
            Assert.Equal((48, 48), (plain.Image.Width, plain.Image.Height));
            // The close-up holds the finding: its mask covers part of the tile but not all of it (a margin around it).
            double covered = tinted.Mask!.Pixels.Average(v => v > 0.5f ? 1.0 : 0.0);
            Assert.True(covered > 0.005 && covered < 0.95, $"{present[i]}: mask covers {covered:P1} of its close-up");
        }
        if (Environment.GetEnvironmentVariable("ROENTGEN_DUMP_PNG") is { Length: > 0 } dump) File.WriteAllBytes(dump, grid.ToPng());
    }

    [Fact]
    public void Label_chart_has_a_bar_trace_per_mention_with_a_bar_per_observation()
    {
        var labels = new List<CxrLabels>
        {
            CxrLabels.FromPositives([Observation.Edema, Observation.Cardiomegaly]),
            CxrLabels.FromPositives([Observation.Edema]),
            new CxrLabels { [Observation.Edema] = Mention.Negative, [Observation.Pneumothorax] = Mention.Uncertain },
        };
        var chart = DataTour.LabelChart(labels);
        Assert.Equal("label distribution", chart.Title);
        var bars = chart.Traces.Select(t => Assert.IsType<BarTrace>(t)).ToList();
        Assert.Equal(["positive (1)", "uncertain (-1)", "negative (0)"], bars.Select(b => b.Name));
        Assert.All(bars, b => Assert.Equal(Observations.Names, b.Categories!));
        Assert.Equal(2.0, bars[0].Values[(int)Observation.Edema]);
        Assert.Equal(1.0, bars[1].Values[(int)Observation.Pneumothorax]);
        Assert.Equal(1.0, bars[2].Values[(int)Observation.Edema]);
        Assert.Equal(3.0, bars[0].Values.Sum());
        Assert.Equal(BarMode.Group, chart.Layout.BarMode);
    }

    [Fact]
    public void Age_histogram_is_binned_into_overlaid_bars_sharing_bins_and_views_are_counted()
    {
        var rng = new Random(1);
        var rows = Enumerable.Range(0, 101).Select(i => (
            Sex: (string?)(i % 3 == 0 ? "F" : i % 3 == 1 ? "M" : null),
            Age: (double?)(i == 7 ? null : 18 + rng.NextDouble() * 70),
            View: (string?)(i % 4 == 0 ? "AP" : i % 4 == 1 ? "PA" : i % 4 == 2 ? "lateral" : null))).ToList();
        var (age, views) = DataTour.MetadataCharts(rows);

        Assert.Equal("age by sex (never written in reports)", age.Title);
        var bars = age.Traces.Select(t => Assert.IsType<BarTrace>(t)).ToList();
        Assert.Equal(["female", "male"], bars.Select(b => b.Name));
        int females = rows.Count(r => r.Sex == "F" && r.Age is not null), males = rows.Count(r => r.Sex == "M" && r.Age is not null);
        Assert.Equal(females, bars[0].Values.Sum());
        Assert.Equal(males, bars[1].Values.Sum());
        Assert.Equal(bars[0].Positions!, bars[1].Positions!);          // the same bins for both sexes
        Assert.InRange(bars[0].Positions!.Count, 5, DataTour.AgeBins + 1);
        Assert.All(bars, b => Assert.Equal(b.Positions![1] - b.Positions[0], b.Width!.Value, 9));
        Assert.Equal(BarMode.Overlay, age.Layout.BarMode);
        Assert.Equal(0, age.Layout.BarGap);
        Assert.Equal("age (years)", age.Layout.XAxis!.Title);
        Assert.DoesNotContain("histogram", age.ToJson());                // the basic plotly.js bundle has no histogram trace

        Assert.Equal("views", views.Title);
        var v = Assert.IsType<BarTrace>(Assert.Single(views.Traces));
        Assert.Equal(["AP", "lateral", "PA", "unknown"], v.Categories!);
        Assert.Equal(rows.Count, v.Values.Sum());
    }

    [Fact]
    public void Metadata_without_ages_gives_an_empty_age_chart()
    {
        var (age, views) = DataTour.MetadataCharts([("F", null, "PA")]);
        Assert.Empty(age.Traces);
        Assert.Single(views.Traces);
        Assert.NotEmpty(age.ToJson());
    }
}
