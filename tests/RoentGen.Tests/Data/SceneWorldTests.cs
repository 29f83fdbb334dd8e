using RoentGen.Data.GeneralDomain;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using static TorchSharp.torch;

namespace RoentGen.Tests.Data;

/// <summary>The general-domain world: deterministic scenes whose captions say what the pixels show, in words radiology reports never use.</summary>
public class SceneWorldTests
{
    [Fact]
    public void SameSeedAndIndex_GiveIdenticalScenes_WhateverTheThreadCountOrOrder()
    {
        var g = new SceneGenerator(new SceneOptions { Size = 64, Seed = 3 });
        var one = g.Generate(10, 20, threads: 1);
        var two = g.Generate(10, 20, threads: 2);
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(one[i].Image.Pixels, two[i].Image.Pixels);
            Assert.Equal(one[i].Caption, two[i].Caption);
            Assert.Equal(one[i].Image.Pixels, g.Generate(10 + i).Image.Pixels);
        }
        var other = new SceneGenerator(new SceneOptions { Size = 64, Seed = 4 }).Generate(10);
        Assert.NotEqual(one[0].Caption + string.Join(",", one[0].Image.Pixels.Take(200)), other.Caption + string.Join(",", other.Image.Pixels.Take(200)));
    }

    [Fact]
    public void Captions_ReadBackToTheScenesTruth()
    {
        var g = new SceneGenerator(new SceneOptions { Size = 32, Seed = 1 });
        foreach (var s in g.Generate(0, 400))
        {
            var (groups, background) = SceneGenerator.ParseCaption(s.Caption);
            Assert.Equal(s.Background, background);
            Assert.Equal(s.Groups, groups);
        }
        Assert.Throws<FormatException>(() => SceneGenerator.ParseCaption("a big grey circle in the middle, on a fog background."));
        Assert.Throws<FormatException>(() => SceneGenerator.ParseCaption("Mild cardiomegaly."));
    }

    [Fact]
    public void Captions_MatchThePixels_ShadePlaceAndSize()
    {
        const int n = 96;
        var g = new SceneGenerator(new SceneOptions { Size = n, Seed = 5, NoiseLevel = 0 });
        var areaByScale = SceneGenerator.Scales.ToDictionary(s => s, _ => new List<double>());
        int checkedShades = 0;
        foreach (var s in g.Generate(0, 300))
        {
            for (int k = 0; k < s.Groups.Count; k++)
            {
                var grp = s.Groups[k]; var mask = s.GroupMasks[k];
                double sx = 0, sy = 0; int cnt = 0;
                double inner = 0; int innerCount = 0;
                for (int y = 0; y < n; y++) for (int x = 0; x < n; x++)
                {
                    if (mask[x, y] < 0.5f) continue;
                    sx += x; sy += y; cnt++;
                    // the interior (all four neighbours inside): the edge pixels blend with the background
                    if (x > 0 && y > 0 && x < n - 1 && y < n - 1 && mask[x - 1, y] > 0.5f && mask[x + 1, y] > 0.5f && mask[x, y - 1] > 0.5f && mask[x, y + 1] > 0.5f)
                    { inner += s.Image[x, y]; innerCount++; }
                }
                Assert.True(cnt > 0, $"{s.Id}: group {k} ({grp}) drew nothing");
                // the place: the group's centroid lies in its named cell of the 3 x 3 grid
                int cell = SceneGenerator.Places.ToList().IndexOf(grp.Place);
                Assert.Equal(cell % 3, (int)(sx / cnt * 3 / n));
                Assert.Equal(cell / 3, (int)(sy / cnt * 3 / n));
                // the shade: a plain object's pixels have its shade's grey level, in the shades' order
                if (grp.Pattern == "plain" && grp.Scale != "tiny" && innerCount > 10)
                {
                    double[] levels = [0.06, 0.4, 0.68, 0.95];
                    double mean = inner / innerCount;
                    int nearest = Enumerable.Range(0, 4).MinBy(j => Math.Abs(levels[j] - mean));
                    Assert.True(SceneGenerator.Shades[nearest] == grp.Shade, $"{s.Id}: a {grp.Shade} object has mean {mean:F3}, nearest to {SceneGenerator.Shades[nearest]}");
                    checkedShades++;
                }
                if (grp.Count == 1) areaByScale[grp.Scale].Add(cnt);
            }
        }
        Assert.True(checkedShades > 50, $"only {checkedShades} plain objects checked");
        // the size: single objects' areas grow with the size word
        var means = SceneGenerator.Scales.Select(sc => areaByScale[sc].Average()).ToArray();
        for (int i = 1; i < means.Length; i++)
            Assert.True(means[i] > means[i - 1] * 1.2, $"mean area by size {string.Join(", ", means.Select(m => m.ToString("F0")))}: each size should be larger than the one before");
    }

    [Fact]
    public void CaptionWords_AreDisjointFromTheRadiologyReportWriters()
    {
        var gen = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 2 });
        var reportWords = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < 3000; i++)
        {
            var (_, report) = gen.GenerateReport(i);
            foreach (var w in report.Text.Split([' ', ',', '.', ':', ';', '\n', '(', ')', '-', '/'], StringSplitOptions.RemoveEmptyEntries)) reportWords.Add(w);
        }
        string[] functionWords = ["a", "an", "in", "the", "on", "of"];
        var shared = SceneGenerator.Vocabulary.Where(w => !functionWords.Contains(w) && reportWords.Contains(w)).ToArray();
        Assert.True(shared.Length == 0, $"caption words that radiology reports also use: {string.Join(", ", shared)}");
        Assert.True(reportWords.Count > 100, $"only {reportWords.Count} report words collected");
    }

    [Fact]
    public void LdmTrainingData_FromScenes_PairsEachImageWithItsCaption()
    {
        using var scope = NewDisposeScope();
        var cfg = LdmExperimentConfig.Tiny with { TrainImages = 6 };
        var data = LdmTrainingData.From("scenes", cfg);
        var scenes = new SceneGenerator(new SceneOptions { Size = Math.Max(32, cfg.ImageSize), Seed = cfg.DataSeed }).Generate(0, 6);
        Assert.Equal(scenes.Select(s => s.Caption), data.Prompts);
        Assert.Equal(new long[] { 6, 1, cfg.ImageSize, cfg.ImageSize }, data.Images.shape);
        Assert.StartsWith("scenes:", data.Source);
        Assert.True(data.Images.min().item<float>() >= -1 && data.Images.max().item<float>() <= 1);
    }

    [Fact]
    public void Records_CarryTheCaptionAsTheReport_AtTheCxrWorldsSizes()
    {
        var records = SceneRecords.Create(new SceneOptions { Size = 64, Seed = 8 }, 5, start: 2);
        Assert.Equal(5, records.Count);
        var r = records[0];
        var scene = new SceneGenerator(new SceneOptions { Size = 64, Seed = 8 }).Generate(2);
        Assert.Equal(scene.Caption, r.Report.FullText);
        Assert.Equal(scene.Image.Pixels, r.Image.Load().Pixels);
        Assert.Equal(64, r.Image.Load().Width);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SceneGenerator(new SceneOptions { Size = 16 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SceneGenerator(new SceneOptions { MaxGroups = 0 }));
    }
}
