namespace RoentGen.Evaluation.Statistics;

/// <summary>One named metric over the seeds of a sweep.</summary>
/// <param name="Metric">Metric name.</param>
/// <param name="Values">Its value in each seed, in seed order (NaN where a seed did not report it or it was undefined).</param>
/// <param name="Summary">Summary of the finite values (see <see cref="Summary.OfFinite"/>).</param>
public sealed record MetricOverSeeds(string Metric, IReadOnlyList<double> Values, Summary Summary);

/// <summary>One metric of a two-arm comparison over the same seeds.</summary>
/// <param name="Metric">Metric name.</param>
/// <param name="Test">Paired t-test of arm A against arm B over the seeds where both are finite.</param>
/// <param name="AdjustedP">The test's p-value adjusted across the compared metrics.</param>
/// <param name="Rejected">Whether the null hypothesis is rejected: <paramref name="AdjustedP"/> ≤ α.</param>
public sealed record MetricComparison(string Metric, TTestResult Test, double AdjustedP, bool Rejected);

/// <summary>Two arms compared metric by metric.</summary>
/// <param name="Alternative">Alternative of every test (<see cref="Alternative.Greater"/>: arm A is larger).</param>
/// <param name="Correction">Correction applied across the metrics.</param>
/// <param name="Alpha">Family-wise level α.</param>
/// <param name="Metrics">One comparison per metric, in arm A's metric order.</param>
public sealed record ArmComparison(Alternative Alternative, Correction Correction, double Alpha, IReadOnlyList<MetricComparison> Metrics)
{
    /// <summary>The comparison of one metric.</summary>
    /// <exception cref="KeyNotFoundException">The metric was not compared.</exception>
    public MetricComparison this[string metric] => Metrics.FirstOrDefault(m => m.Metric == metric)
        ?? throw new KeyNotFoundException($"metric '{metric}' is not in the comparison (compared: {string.Join(", ", Metrics.Select(m => m.Metric))})");
}

/// <summary>
/// An experiment run once per seed, each run reporting named metrics: every metric's values and <see cref="Summary"/>
/// over the seeds. Two sweeps over the same seeds (two arms) are compared with <see cref="Compare"/>.
/// </summary>
/// <param name="Seeds">The seeds, in run order.</param>
/// <param name="Metrics">Every metric reported by any seed, in order of first appearance.</param>
public sealed record SeedSweep(IReadOnlyList<long> Seeds, IReadOnlyList<MetricOverSeeds> Metrics)
{
    /// <summary>Runs <paramref name="run"/> once per seed and summarises each metric it reports.</summary>
    /// <param name="seeds">Distinct seeds.</param>
    /// <param name="run">One run: seed → metric name → value.</param>
    /// <param name="level">Confidence level of the summaries.</param>
    /// <exception cref="ArgumentException">No seed, a repeated seed, or a level outside (0, 1).</exception>
    public static SeedSweep Run(IReadOnlyList<long> seeds, Func<long, IReadOnlyDictionary<string, double>> run, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        ArgumentNullException.ThrowIfNull(run);
        if (seeds.Count == 0) throw new ArgumentException("a seed sweep needs at least one seed", nameof(seeds));
        var dup = seeds.GroupBy(s => s).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"seed {dup.Key} is given {dup.Count()} times", nameof(seeds));
        Summary.CheckLevel(level);
        var results = seeds.Select(s => run(s) ?? throw new ArgumentException($"the run of seed {s} returned no metrics", nameof(run))).ToList();
        var names = new List<string>();
        foreach (var r in results) foreach (var k in r.Keys) if (!names.Contains(k)) names.Add(k);
        var metrics = names.Select(k =>
        {
            var values = results.Select(r => r.TryGetValue(k, out var v) ? v : double.NaN).ToArray();
            return new MetricOverSeeds(k, values, Summary.OfFinite(values, level));
        }).ToArray();
        return new SeedSweep(seeds.ToArray(), metrics);
    }

    /// <summary>One metric over the seeds.</summary>
    /// <exception cref="KeyNotFoundException">No seed reported the metric.</exception>
    public MetricOverSeeds this[string metric] => Metrics.FirstOrDefault(m => m.Metric == metric)
        ?? throw new KeyNotFoundException($"no seed reported metric '{metric}' (reported: {string.Join(", ", Metrics.Select(m => m.Metric))})");

    /// <summary>
    /// Compares arm <paramref name="a"/> with arm <paramref name="b"/> metric by metric: a paired t-test per metric
    /// (seed i of one arm paired with seed i of the other, over seeds where both values are finite), then the
    /// p-values adjusted across the metrics by <paramref name="correction"/> and rejected at <paramref name="alpha"/>.
    /// </summary>
    /// <param name="a">First arm.</param>
    /// <param name="b">Second arm, run over the same seeds in the same order.</param>
    /// <param name="alternative">Alternative of each test; <see cref="Alternative.Greater"/> asks whether A is larger.</param>
    /// <param name="correction">Correction across metrics.</param>
    /// <param name="alpha">Family-wise level α.</param>
    /// <param name="metrics">Metrics to compare (default: every metric both arms report, in A's order).</param>
    /// <exception cref="ArgumentException">Different seeds, no common metric, a requested metric missing from an arm, or a metric whose paired test is undefined (named).</exception>
    public static ArmComparison Compare(SeedSweep a, SeedSweep b, Alternative alternative = Alternative.Greater,
        Correction correction = Correction.Holm, double alpha = 0.05, IReadOnlyList<string>? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!a.Seeds.SequenceEqual(b.Seeds))
            throw new ArgumentException($"a paired comparison needs the same seeds in the same order: arm A has {string.Join(", ", a.Seeds)}, arm B has {string.Join(", ", b.Seeds)}", nameof(b));
        var names = metrics ?? a.Metrics.Select(m => m.Metric).Where(k => b.Metrics.Any(m => m.Metric == k)).ToList();
        if (names.Count == 0) throw new ArgumentException("the two arms have no metric in common", nameof(b));
        var tests = names.Select(k =>
        {
            var va = a.Metrics.FirstOrDefault(m => m.Metric == k)?.Values ?? throw new ArgumentException($"arm A has no metric '{k}'", nameof(metrics));
            var vb = b.Metrics.FirstOrDefault(m => m.Metric == k)?.Values ?? throw new ArgumentException($"arm B has no metric '{k}'", nameof(metrics));
            var pairs = Enumerable.Range(0, va.Count).Where(i => double.IsFinite(va[i]) && double.IsFinite(vb[i])).ToArray();
            try { return TTest.Paired(pairs.Select(i => va[i]).ToArray(), pairs.Select(i => vb[i]).ToArray(), alternative); }
            catch (ArgumentException e) { throw new ArgumentException($"metric '{k}': {e.Message}", nameof(a), e); }
        }).ToArray();
        var adjusted = MultipleComparisons.Adjust(tests.Select(t => t.P).ToArray(), correction);
        var rejected = MultipleComparisons.Reject(adjusted, alpha);
        return new ArmComparison(alternative, correction, alpha,
            names.Select((k, i) => new MetricComparison(k, tests[i], adjusted[i], rejected[i])).ToArray());
    }
}
