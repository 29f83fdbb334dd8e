using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Analysis;
using RoentGen.Evaluation.Probes;
using RoentGen.Platform;

namespace RoentGen.Experiments;

/// <summary>One metric of one encoder over the seeds of a comparison.</summary>
/// <param name="Metric">Metric key ("linear/macro_auc").</param>
/// <param name="Encoder">Encoder name.</param>
/// <param name="Mean">Mean over the seeds where the value is defined.</param>
/// <param name="StandardDeviation">Sample standard deviation (n − 1); NaN with fewer than two values.</param>
/// <param name="Values">The value of each seed, in seed order (NaN where undefined).</param>
public sealed record SeedStat(string Metric, string Encoder, double Mean, double StandardDeviation, IReadOnlyList<double> Values);

/// <summary>One of RAD-DINO's claims over the seeds of a comparison.</summary>
/// <param name="Metric">Metric key.</param>
/// <param name="Claim">The paper's claim for it.</param>
/// <param name="Advantages">DINO's advantage over CLIP in each seed (see <see cref="ClaimCheck.Advantage"/>).</param>
/// <param name="AdvantageMean">Mean advantage.</param>
/// <param name="AdvantageStandardDeviation">Sample standard deviation of the advantage.</param>
/// <param name="Holds">Seeds in which the claim held.</param>
/// <param name="Decided">Seeds in which it was decided (held or not).</param>
public sealed record SeedClaim(string Metric, string Claim, IReadOnlyList<double> Advantages, double AdvantageMean, double AdvantageStandardDeviation, int Holds, int Decided);

/// <summary>
/// The four-encoder comparison repeated with several seeds (weights, data order, augmentations; the probe data stays
/// the same): every metric's mean and spread per encoder, and each claim's DINO advantage and how many seeds it held
/// in. One seed's difference of 0.02 means little when the seeds disagree by 0.05.
/// </summary>
public sealed class EncoderSeedSummary
{
    /// <summary>File name of the summary inside the output folder.</summary>
    public const string ResultFile = "seeds.json";

    /// <summary>Summarises comparisons that differ only in their seed.</summary>
    /// <exception cref="ArgumentException">No comparison, or comparisons that differ in more than the seed.</exception>
    public EncoderSeedSummary(IReadOnlyList<EncoderComparisonResult> runs, double margin = 0.02)
    {
        if (runs.Count == 0) throw new ArgumentException("a seed summary needs at least one comparison");
        var first = runs[0].Config with { Seed = 0 };
        var other = runs.FirstOrDefault(r => r.Config with { Seed = 0 } != first);
        if (other is not null) throw new ArgumentException($"the comparison of seed {other.Config.Seed} differs from seed {runs[0].Config.Seed}'s in more than the seed");
        var dup = runs.GroupBy(r => r.Config.Seed).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"seed {dup.Key} is given {dup.Count()} times");
        Runs = runs;
        Margin = margin;
        Seeds = runs.Select(r => r.Config.Seed).ToList();

        var keys = new List<string>();
        foreach (var r in runs) foreach (var p in r.Probes) foreach (var m in p.Metrics) if (!keys.Contains(m.Key)) keys.Add(m.Key);
        var encoders = EncoderComparisonResult.EncoderNames.Where(e => runs.Any(r => r.Probes.Any(p => p.Encoder == e))).ToList();
        Encoders = encoders;
        Stats = keys.SelectMany(k => encoders.Select(e =>
        {
            var values = runs.Select(r => r.Probes.FirstOrDefault(p => p.Encoder == e)?[k] ?? double.NaN).ToList();
            var (mean, sd) = MeanSd(values);
            return new SeedStat(k, e, mean, sd, values);
        })).ToList();

        var perSeed = runs.Select(r => r.Claims(margin)).ToList();
        Claims = perSeed[0].Select((c, i) =>
        {
            var adv = perSeed.Select(s => s[i].Advantage).ToList();
            var (mean, sd) = MeanSd(adv);
            return new SeedClaim(c.Metric, c.Claim, adv, mean, sd, perSeed.Count(s => s[i].Holds == true), perSeed.Count(s => s[i].Holds is not null));
        }).ToList();
    }

    /// <summary>The comparisons, one per seed.</summary>
    public IReadOnlyList<EncoderComparisonResult> Runs { get; }
    /// <summary>Their seeds, in order.</summary>
    public IReadOnlyList<long> Seeds { get; }
    /// <summary>Encoders present (table order).</summary>
    public IReadOnlyList<string> Encoders { get; }
    /// <summary>Margin of the claims (see <see cref="EncoderComparisonResult.Claims"/>).</summary>
    public double Margin { get; }
    /// <summary>Every metric of every encoder over the seeds.</summary>
    public IReadOnlyList<SeedStat> Stats { get; }
    /// <summary>Every claim over the seeds.</summary>
    public IReadOnlyList<SeedClaim> Claims { get; }

    /// <summary>The statistic of one metric and encoder.</summary>
    /// <exception cref="KeyNotFoundException">No such metric or encoder.</exception>
    public SeedStat this[string metric, string encoder] => Stats.FirstOrDefault(s => s.Metric == metric && s.Encoder == encoder)
        ?? throw new KeyNotFoundException($"no metric '{metric}' for encoder '{encoder}' in the seed summary");

    /// <summary>Mean and sample standard deviation of the finite values (NaN when none; the deviation needs two).</summary>
    /// <remarks>The mean and deviation of <see cref="Evaluation.Statistics.Summary.OfFinite"/>.</remarks>
    public static (double Mean, double StandardDeviation) MeanSd(IEnumerable<double> values)
    {
        var s = Evaluation.Statistics.Summary.OfFinite(values);
        return (s.Mean, s.StandardDeviation);
    }

    /// <summary>One row per metric: each encoder's mean and standard deviation over the seeds.</summary>
    public DataFrame ToDataFrame()
    {
        var keys = Stats.Select(s => s.Metric).Distinct().ToList();
        var cols = new List<DataFrameColumn> { new StringDataFrameColumn("metric", keys) };
        static double? N(double v) => double.IsFinite(v) ? v : null;
        foreach (var e in Encoders)
        {
            cols.Add(new DoubleDataFrameColumn(e, keys.Select(k => N(this[k, e].Mean))));
            cols.Add(new DoubleDataFrameColumn($"{e} sd", keys.Select(k => N(this[k, e].StandardDeviation))));
        }
        return new DataFrame(cols);
    }

    /// <summary>One row per claim: the advantage in each seed, its mean and spread, and in how many seeds the claim held.</summary>
    public DataFrame ClaimTable()
    {
        static double? N(double v) => double.IsFinite(v) ? v : null;
        return new DataFrame(
            new StringDataFrameColumn("metric", Claims.Select(c => c.Metric)),
            new StringDataFrameColumn("RAD-DINO claim (images-only vs text-supervised)", Claims.Select(c => c.Claim)),
            new StringDataFrameColumn($"dino advantage per seed ({string.Join(", ", Seeds)})", Claims.Select(c => string.Join(", ", c.Advantages.Select(F)))),
            new DoubleDataFrameColumn("mean advantage", Claims.Select(c => N(c.AdvantageMean))),
            new DoubleDataFrameColumn("sd", Claims.Select(c => N(c.AdvantageStandardDeviation))),
            new StringDataFrameColumn("holds in", Claims.Select(c => $"{c.Holds} of {c.Decided} seeds" + (c.Decided < Seeds.Count ? $" ({Seeds.Count - c.Decided} undecided)" : ""))));
    }

    /// <summary>A paragraph: for each claim, in how many seeds it held and the mean advantage.</summary>
    public string Summary()
    {
        var parts = Claims.Select(c => $"{c.Metric} {c.Holds}/{c.Decided} (advantage {F(c.AdvantageMean)} ± {Sd(c.AdvantageStandardDeviation)})");
        return $"Over {Seeds.Count} seeds ({string.Join(", ", Seeds)}), RAD-DINO's claims held in: {string.Join("; ", parts)} (margin {Margin}).";
    }

    /// <summary>JSON: seeds, margin, the statistics and the claims (NaN as null).</summary>
    public string ToJson()
    {
        static JsonNode? N(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
        var root = new JsonObject
        {
            ["seeds"] = new JsonArray(Seeds.Select(s => (JsonNode)JsonValue.Create(s)).ToArray()),
            ["margin"] = Margin,
            ["stats"] = new JsonArray(Stats.Select(s => (JsonNode)new JsonObject
            {
                ["metric"] = s.Metric, ["encoder"] = s.Encoder, ["mean"] = N(s.Mean), ["sd"] = N(s.StandardDeviation),
                ["values"] = new JsonArray(s.Values.Select(N).ToArray()),
            }).ToArray()),
            ["claims"] = new JsonArray(Claims.Select(c => (JsonNode)new JsonObject
            {
                ["metric"] = c.Metric, ["claim"] = c.Claim, ["advantages"] = new JsonArray(c.Advantages.Select(N).ToArray()),
                ["advantage_mean"] = N(c.AdvantageMean), ["advantage_sd"] = N(c.AdvantageStandardDeviation), ["holds"] = c.Holds, ["decided"] = c.Decided,
            }).ToArray()),
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Writes <see cref="ToJson"/> atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    private static string Sd(double v) => double.IsFinite(v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "n/a";

    private static string F(double v) => double.IsFinite(v) ? v.ToString("+0.000;-0.000;0.000", CultureInfo.InvariantCulture) : "n/a";
}

/// <summary>Runs the four-encoder comparison once per seed (each into OUT/seed-S, resumable) and summarises the seeds.</summary>
public static class EncoderComparisonSeeds
{
    /// <summary>Parses a comma-separated seed list ("0,1,2").</summary>
    /// <param name="list">The list.</param>
    /// <param name="what">What to call it in errors (an option or parameter name).</param>
    /// <exception cref="ArgumentException">Empty, or an entry that is not an integer (the message names it).</exception>
    public static IReadOnlyList<long> ParseSeeds(string list, string what = "seeds")
    {
        var parts = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ArgumentException($"{what} needs at least one seed, e.g. 0,1,2");
        return parts.Select(p => long.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            ? v : throw new ArgumentException($"{what}: '{p}' is not an integer seed")).ToList();
    }

    /// <summary>The folder of one seed's comparison under <paramref name="outDir"/>.</summary>
    public static string SeedFolder(string outDir, long seed) => Path.Combine(outDir, $"seed-{seed}");

    /// <summary>
    /// Runs (or resumes) <see cref="EncoderComparison.Run"/> with each seed into OUT/seed-S, then writes OUT/seeds.json.
    /// </summary>
    /// <exception cref="ArgumentException">No seed, a repeated seed, or an inconsistent config.</exception>
    public static EncoderSeedSummary Run(EncoderComparisonConfig config, IReadOnlyList<long> seeds, string outDir, ProbeSuiteOptions? probes = null,
        Action<string>? log = null, CancellationToken cancellation = default)
    {
        if (seeds.Count == 0) throw new ArgumentException("give at least one seed");
        if (seeds.Distinct().Count() != seeds.Count) throw new ArgumentException($"seeds repeat: {string.Join(", ", seeds)}");
        log ??= Console.WriteLine;
        var runs = new List<EncoderComparisonResult>();
        var data = EncoderComparison.ProbeDataFor(config);   // the seed changes training only: the probe phantoms are shared
        foreach (var seed in seeds)
        {
            log($"seed {seed}: {SeedFolder(outDir, seed)}");
            runs.Add(EncoderComparison.RunWithProbeData(config with { Seed = seed }, SeedFolder(outDir, seed), probes, log, data, cancellation));
        }
        var summary = new EncoderSeedSummary(runs);
        summary.Save(Path.Combine(outDir, EncoderSeedSummary.ResultFile));
        return summary;
    }
}
