using RoentGen.Evaluation.Probes;
using RoentGen.Experiments;

namespace RoentGen.Tests.Experiments;

[Collection(ProcessStateCollection.Name)]
public class EncoderSeedsTests
{
    // A comparison result with given sex AUCs and age errors (dino, clip, supervised, random), no training runs.
    private static EncoderComparisonResult Result(long seed, double[] sexAuc, double[] ageMae)
    {
        var names = EncoderComparisonResult.EncoderNames;
        var probes = names.Select((n, i) => new EncoderProbes(n,
            [new ProbeMetric("sex", "auc", sexAuc[i]), new ProbeMetric("age", "mae_years", ageMae[i])],
            new Dictionary<string, string>(), 1)).ToList();
        return new EncoderComparisonResult(EncoderComparisonConfig.Tiny with { Seed = seed }, [], probes);
    }

    [Fact]
    public void Comparison_chart_has_grouped_bars_per_encoder()
    {
        var chart = Result(0, [0.95, 0.90, 0.80, 0.70], [10, 12, 14, 16]).Chart();
        Assert.Equal("probes of the four encoders (held-out phantoms)", chart.Title);
        Assert.Equal(EncoderComparisonResult.EncoderNames, chart.Traces.Select(t => t.Name));
        var dino = Assert.IsType<BarTrace>(chart.Traces[0]);
        Assert.Equal(["sex/auc"], dino.Categories!);   // the only headline metric these results have
        Assert.Equal([0.95], dino.Values);
        Assert.Equal(BarMode.Group, chart.Layout.BarMode);
    }

    [Fact]
    public void Summary_gives_mean_and_sample_sd_per_encoder_and_counts_the_seeds_a_claim_held_in()
    {
        var runs = new[]
        {
            Result(0, [0.95, 0.90, 0.80, 0.70], [10, 12, 14, 16]),   // sex: +0.05 (holds clearly); age: 2/12 = +0.167 (holds)
            Result(1, [0.91, 0.90, 0.80, 0.70], [12, 12, 14, 16]),   // sex: +0.01 (not clearly); age: 0 (does not hold)
            Result(2, [0.99, 0.90, 0.80, 0.70], [11, 12, 14, 16]),   // sex: +0.09; age: +0.083
        };
        var s = new EncoderSeedSummary(runs);
        Assert.Equal([0L, 1, 2], s.Seeds);
        var dinoSex = s["sex/auc", "dino"];
        Assert.Equal(0.95, dinoSex.Mean, 9);
        Assert.Equal(0.04, dinoSex.StandardDeviation, 9);                   // values 0.95, 0.91, 0.99
        Assert.Equal([0.95, 0.91, 0.99], dinoSex.Values);
        Assert.Equal(0.0, s["sex/auc", "clip"].StandardDeviation, 9);
        var sex = s.Claims.Single(c => c.Metric == "sex/auc");
        Assert.Equal(2, sex.Holds);
        Assert.Equal(3, sex.Decided);
        Assert.Equal(0.05, sex.AdvantageMean, 9);
        var age = s.Claims.Single(c => c.Metric == "age/mae_years");
        Assert.Equal(2, age.Holds);
        // Claims whose metrics are absent are undecided in every seed.
        Assert.Equal(0, s.Claims.Single(c => c.Metric == "linear/macro_auc").Decided);

        var table = s.ToDataFrame();
        Assert.Equal(["metric", "dino", "dino sd", "clip", "clip sd", "supervised", "supervised sd", "random", "random sd"], table.Columns.Select(c => c.Name).ToArray());
        Assert.Equal(2, table.Rows.Count);
        Assert.Equal(7, s.ClaimTable().Rows.Count);
        Assert.Contains("sex/auc 2/3", s.Summary());
        var json = System.Text.Json.Nodes.JsonNode.Parse(s.ToJson())!;
        Assert.Equal(3, json["seeds"]!.AsArray().Count);
        Assert.Equal(2, json["claims"]!.AsArray().Single(c => c!["metric"]!.GetValue<string>() == "sex/auc")!["holds"]!.GetValue<int>());
    }

    [Fact]
    public void Summary_refuses_comparisons_that_differ_in_more_than_the_seed_or_repeat_one()
    {
        var a = Result(0, [0.9, 0.9, 0.9, 0.9], [1, 1, 1, 1]);
        var other = new EncoderComparisonResult(EncoderComparisonConfig.Tiny with { Seed = 1, Phantoms = 99 }, [], a.Probes);
        Assert.Contains("more than the seed", Assert.Throws<ArgumentException>(() => new EncoderSeedSummary([a, other])).Message);
        Assert.Contains("seed 0", Assert.Throws<ArgumentException>(() => new EncoderSeedSummary([a, a])).Message);
        Assert.Throws<ArgumentException>(() => new EncoderSeedSummary([]));
        Assert.Equal([3L, 1], EncoderComparisonSeeds.ParseSeeds(" 3, 1 "));
        Assert.Contains("--seeds: 'x'", Assert.Throws<ArgumentException>(() => EncoderComparisonSeeds.ParseSeeds("1,x", "--seeds")).Message);
    }

    [Fact]
    public void Two_tiny_seeds_train_into_their_own_folders_and_write_the_summary()
    {
        var dir = TestPaths.NewTempDir("seeds");
        var probes = EncoderComparisonConfig.ProbesFor("tiny") with { Targets = [ProbeTarget.Sex, ProbeTarget.Age] };
        var log = new List<string>();
        var s = EncoderComparisonSeeds.Run(EncoderComparisonConfig.Tiny, [0, 1], dir, probes, log.Add);
        Assert.True(File.Exists(Path.Combine(dir, "seed-0", EncoderComparison.ResultFile)));
        Assert.True(File.Exists(Path.Combine(dir, "seed-1", EncoderComparison.ResultFile)));
        Assert.True(File.Exists(Path.Combine(dir, EncoderSeedSummary.ResultFile)));
        Assert.Equal([0L, 1], s.Seeds);
        // Different seeds train different weights, so the trained encoders' sex AUCs are not all equal across seeds.
        var dino = s["sex/auc", "dino"].Values;
        Assert.Equal(2, dino.Count);
        Assert.All(dino, v => Assert.InRange(v, 0, 1));
        Assert.NotEqual(s.Runs[0]["dino"]["age/mae_years"], s.Runs[1]["dino"]["age/mae_years"]);
        // The summary's values are each seed's saved result, and its mean and sample sd are those of the two values.
        foreach (var encoder in EncoderComparisonResult.EncoderNames)
            foreach (var metric in new[] { "sex/auc", "age/mae_years" })
            {
                var saved = new[] { 0L, 1 }.Select(seed => EncoderComparisonResult.Load(Path.Combine(EncoderComparisonSeeds.SeedFolder(dir, seed), EncoderComparison.ResultFile))[encoder][metric]).ToArray();
                var stat = s[metric, encoder];
                Assert.Equal(saved, stat.Values);
                Assert.Equal((saved[0] + saved[1]) / 2, stat.Mean, 12);
                Assert.Equal(Math.Abs(saved[0] - saved[1]) / Math.Sqrt(2), stat.StandardDeviation, 12);
            }
        Assert.Equal(s.ToJson(), File.ReadAllText(Path.Combine(dir, EncoderSeedSummary.ResultFile)));
        Directory.Delete(dir, true);
    }
}
