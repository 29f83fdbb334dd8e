using RoentGen.Platform;
using RoentGen.Experiments;
using RoentGen.Tests.Diffusion;

namespace RoentGen.Tests.Experiments;

// Compares a fresh run with a resumed one, which draws from libtorch's global generator: alone, not beside other classes.
[Collection(ProcessStateCollection.Name)]
public class SyntheticDataStudyTests
{
    /// <summary>The tiny preset cut further: 8 real images, 2 steps per model, 12 validation and test phantoms, no real sample.</summary>
    private static SyntheticDataStudyConfig Tiny() => SyntheticDataStudyConfig.FromPreset("tiny") with
    {
        Sizes = [8], ValidationImages = 12, TestImages = 12, ClassifierSteps = 2, SamplingSteps = 1, RealSampleSeeds = 0,
        Segmentation = SyntheticDataStudyConfig.FromPreset("tiny").Segmentation with { Steps = 2 },
    };

    [Fact]
    public void Tiny_study_writes_every_arm_and_resumes_after_an_interruption()
    {
        var dir = TestPaths.NewTempDir("synth-study");
        var options = new SyntheticDataStudyOptions
        {
            TextGenerator = TinyPipelines.Untrained(3), TextGeneratorName = "untrained tiny LDM", Seeds = [0, 1],
            ExpertRejected = new HashSet<string> { "n8-s0-mask-0000" },   // an expert's veto (what --ratings reads from a ratings CSV)
        };
        using var stop = new CancellationTokenSource();
        var lines = new List<string>();
        Assert.ThrowsAny<OperationCanceledException>(() => SyntheticDataStudy.Run(Tiny(), dir, options, line =>
        {
            lines.Add(line);
            if (line.StartsWith("[3/", StringComparison.Ordinal)) stop.Cancel();
        }, stop.Token));
        Assert.False(File.Exists(Path.Combine(dir, SyntheticDataStudy.ResultFile)));

        var result = SyntheticDataStudy.Run(Tiny(), dir, options);
        int arms = SyntheticArm.All.Count;
        Assert.Equal(9, arms);
        Assert.Equal(arms * 2, result.Cells.Count);
        Assert.Equal(arms * 2 - 3, result.CellsComputed);                 // the three finished cells were read back
        Assert.Empty(result.Skipped);
        foreach (var arm in SyntheticArm.All)
        {
            var cells = result.Cells.Where(c => c.Arm == arm.Name).ToList();
            Assert.Equal([0L, 1L], cells.Select(c => c.Seed).Order());
            Assert.All(cells, c => Assert.True(double.IsFinite(c.MacroAuc), $"{arm.Name}: AUC {c.MacroAuc}"));
            Assert.All(cells, c => Assert.Equal(arm.Segments, c.MeanDice is not null));
            if (arm.Synthetic)
            {
                Assert.Contains(result.Differences, d => d.Arm == arm.Name && d.Metric == "macro_f1");
                Assert.All(cells, c => Assert.True(c.SyntheticImages >= 8 && c.SyntheticKept <= c.SyntheticImages));
                if (!arm.Filtered) Assert.All(cells, c => Assert.Equal(c.SyntheticImages, c.SyntheticKept));
            }
        }
        Assert.Equal(["mask", "text-report", "text-single"], result.Filter.Select(f => f.Source).Distinct().Order());
        Assert.Equal(1, result.Filter.Single(f => f.Seed == 0 && f.Source == "mask").ExpertRejected);
        Assert.Equal(0, result.Filter.Single(f => f.Seed == 1 && f.Source == "mask").ExpertRejected);
        var json = File.ReadAllText(Path.Combine(dir, SyntheticDataStudy.ResultFile));
        foreach (var arm in SyntheticArm.All) Assert.Contains($"\"{arm.Name}\"", json);
        var back = SyntheticDataStudyResult.Load(Path.Combine(dir, SyntheticDataStudy.ResultFile));
        Assert.Equal(result.Cells.Count, back.Cells.Count);
        Assert.Equal(2, back.Headlines().Count);
        Assert.NotNull(SyntheticDataStudy.Examples(dir, 8, 0, "mask"));
        // A cached source is a folder the feedback page serves as it is, under the ids the --ratings filter looks up.
        var catalog = RoentGen.Feedback.FeedbackCatalog.Load(Path.Combine(dir, "synthetic", "n8-s0", "mask"));
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"n8-s0-mask-{i:D4}"), catalog.Images.Select(i => i.Id));
        Assert.All(catalog.Images, i => Assert.Contains("lungs", i.Masks.Keys));
        Assert.NotNull(SyntheticDataStudy.FilterExamples(dir, 8, 0));
        var html = SyntheticDataStudyReport.Build(result, dir).ToHtml();
        Assert.Contains("Prakash et al. 2024", html);
        Assert.Contains("data:image/png;base64", html);

        // A run never interrupted gives the same cells: every arm trains on the saved (8-bit) synthetic images, whether
        // this call generated them or read them back.
        var fresh = SyntheticDataStudy.Run(Tiny(), TestPaths.NewTempDir("synth-study-fresh"), options);
        foreach (var c in result.Cells)
        {
            var f = fresh.Cells.Single(x => x.Arm == c.Arm && x.Seed == c.Seed);
            Assert.True(c.MacroAuc == f.MacroAuc && c.MacroF1 == f.MacroF1, $"{c.Arm} seed {c.Seed}: resumed AUC {c.MacroAuc}, fresh {f.MacroAuc}");
        }

        // A third call finds everything done and trains nothing.
        Assert.Equal(0, SyntheticDataStudy.Run(Tiny(), dir, options).CellsComputed);
        // Weights fingerprints are pinned beside the names once given: the same folder name with other weights is refused.
        Assert.Equal(0, SyntheticDataStudy.Run(Tiny(), dir, options with { TextGeneratorWeights = "sha256:aaaa" }).CellsComputed);
        Assert.Contains("text generator weights is 'sha256:aaaa', not 'sha256:bbbb'", Assert.Throws<RunStateException>(() =>
            SyntheticDataStudy.Run(Tiny(), dir, options with { TextGeneratorWeights = "sha256:bbbb" })).Message);
        // Another config in the same folder is refused rather than mixed in.
        var e = Assert.Throws<RunStateException>(() => SyntheticDataStudy.Run(Tiny() with { ClassifierSteps = 3 }, dir, options));
        Assert.Contains("another config", e.Message);
        // So are other generators: the cached images and finished cells were drawn by the first ones.
        Assert.Contains("text generator is 'untrained tiny LDM', not 'another LDM'", Assert.Throws<RunStateException>(() =>
            SyntheticDataStudy.Run(Tiny(), dir, options with { TextGeneratorName = "another LDM" })).Message);
        Assert.Contains("mask generator is", Assert.Throws<RunStateException>(() =>
            SyntheticDataStudy.Run(Tiny(), dir, options with { MaskGeneratorName = "a ControlNet" })).Message);
        // So are other expert ratings: the filtered arms were trained without these vetoes.
        Assert.Contains("other expert ratings", Assert.Throws<RunStateException>(() => SyntheticDataStudy.Run(Tiny(), dir, options with { ExpertRejected = null })).Message);
    }

    [Fact]
    public void Real_sets_do_not_move_when_a_larger_size_is_added_and_seeds_never_share_a_case()
    {
        // A study run at size 100 and later extended to 100 and 1000 must read its finished n100 cells back with the
        // same real images; the start of a seed's cases therefore cannot depend on the sizes asked for.
        var small = SyntheticDataStudyConfig.FromPreset("quick") with { Sizes = [100] };
        var large = small with { Sizes = [100, 300, 1000] };
        for (long seed = 0; seed < 5; seed++) Assert.Equal(small.RealCaseStart(seed), large.RealCaseStart(seed));
        // The largest set of one seed ends before the next seed's first case, and the last seed before validation.
        Assert.True(large.RealCaseStart(0) + large.Sizes.Max() <= large.RealCaseStart(1));
        long lastSeed = large.ValidationStart / large.SeedStride - 1;
        Assert.True(large.RealCaseStart(lastSeed) + large.Sizes.Max() <= large.ValidationStart);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => large.RealCaseStart(lastSeed + 1));
        Assert.Contains("study seeds must lie in 0 to", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => large.RealCaseStart(-1));
    }

    [Fact]
    public void Synthetic_sources_and_seeds_never_start_from_the_same_noise()
    {
        // Image i of a source starts from its base + i; ranges of 100,000 images must not meet across sources or seeds.
        var bases = new List<long>();
        for (long seed = 0; seed < 20; seed++)
            for (int source = 1; source <= 3; source++) bases.Add(SyntheticDataStudy.SourceNoiseSeed(seed, source));
        Assert.All(bases, b => Assert.True(b >= 0));
        var sorted = bases.Order().ToList();
        for (int i = 1; i < sorted.Count; i++) Assert.True(sorted[i] - sorted[i - 1] > 100_000, $"bases {sorted[i - 1]} and {sorted[i]} overlap");
        Assert.Equal(SyntheticDataStudy.SourceNoiseSeed(3, 2), SyntheticDataStudy.SourceNoiseSeed(3, 2));
    }

    [Fact]
    public void Paired_gain_matches_the_hand_computed_interval_and_one_sided_p()
    {
        // Differences 1, 2, 4: mean 7/3, sd √(7/3), SE √7 / 3, t = √7 with 2 df. With 2 df, P(T ≤ t) = 1/2 + t / (2√(t² + 2)),
        // so the 97.5 % quantile solves t / √(t² + 2) = 0.95: t² = 2 · 0.95² / (1 − 0.95²) = 18.51282..., t = 4.30265273.
        // The 95 % interval is 7/3 ± 4.30265273 · √7 / 3, and the one-sided p is 1 − P(T ≤ √7) = 1/2 − √7/6.
        double[] arm = [1.5, 2.5, 4.5], real = [0.5, 0.5, 0.5];
        var (d, lo, hi, p, n) = SyntheticDataStudyResult.PairedGain(arm, real);
        double half = Math.Sqrt(2 * 0.95 * 0.95 / (1 - 0.95 * 0.95)) * Math.Sqrt(7) / 3;
        Assert.Equal(3, n);
        Assert.Equal(7.0 / 3, d, 12);
        Assert.Equal(7.0 / 3 - half, lo, 9);
        Assert.Equal(7.0 / 3 + half, hi, 9);
        Assert.Equal(0.5 - Math.Sqrt(7) / 6, p, 9);
    }

    [Fact]
    public void Comparisons_are_corrected_over_the_whole_family_and_undefined_ones_left_out()
    {
        static StudyCell Cell(string arm, long seed, double f1, double? dice) =>
            new(arm, 10, seed, 0, 0, f1, 0.5, new Dictionary<string, double>(), new Dictionary<string, double>(), new Dictionary<string, double>(), dice, null, 0);
        var cells = new List<StudyCell>();
        double[] real = [0.30, 0.40, 0.50], mask = [0.35, 0.48, 0.52], text = [0.31, 0.45, 0.49];
        for (int s = 0; s < 3; s++)
        {
            cells.Add(Cell("real", s, real[s], 0.6));
            cells.Add(Cell("mask", s, mask[s], 0.6));              // Dice unchanged on every seed: no test
            cells.Add(Cell("text-single", s, text[s], null));
        }
        var diffs = SyntheticDataStudyResult.Compare(cells);
        Assert.Equal(3, diffs.Count);
        var undefined = diffs.Single(x => x.Arm == "mask" && x.Metric == "mean_dice");
        Assert.Equal(0, undefined.Difference);
        Assert.True(double.IsNaN(undefined.P) && double.IsNaN(undefined.PHolm));
        var tested = diffs.Where(x => double.IsFinite(x.P)).OrderBy(x => x.P).ToList();
        Assert.Equal(2, tested.Count);
        Assert.All(tested, x => Assert.Equal(Math.Min(1, 2 * x.P), x.PBonferroni, 12));
        Assert.Equal(Math.Min(1, 2 * tested[0].P), tested[0].PHolm, 12);                                 // Holm: m·p for the smallest
        Assert.Equal(Math.Max(tested[0].PHolm, Math.Min(1, tested[1].P)), tested[1].PHolm, 12);            // then (m − 1)·p, kept monotone
    }

    [Fact]
    public void Arm_and_real_means_are_taken_over_the_paired_seeds_so_they_differ_by_the_reported_difference()
    {
        static StudyCell Cell(string arm, long seed, double f1, double? dice) =>
            new(arm, 10, seed, 0, 0, f1, 0.5, new Dictionary<string, double>(), new Dictionary<string, double>(), new Dictionary<string, double>(), dice, null, 0);
        // Seed 2's mask Dice is undefined: the Dice row pairs seeds 0 and 1 only, and both its means must too.
        var cells = new List<StudyCell>
        {
            Cell("real", 0, 0.3, 0.50), Cell("real", 1, 0.4, 0.60), Cell("real", 2, 0.5, 0.90),
            Cell("mask", 0, 0.3, 0.55), Cell("mask", 1, 0.4, 0.70), Cell("mask", 2, 0.5, double.NaN),
        };
        var dice = SyntheticDataStudyResult.Compare(cells).Single(x => x.Metric == "mean_dice");
        Assert.Equal(2, dice.Seeds);
        Assert.Equal(0.625, dice.ArmMean, 12);
        Assert.Equal(0.55, dice.RealMean, 12);
        Assert.Equal(dice.ArmMean - dice.RealMean, dice.Difference, 12);
    }

    [Fact]
    public void Repeated_sizes_or_seeds_are_refused_before_any_work()
    {
        Assert.Contains("repeats a size", Assert.Throws<ArgumentException>(() => (Tiny() with { Sizes = [8, 8] }).Validate()).Message);
        var e = Assert.Throws<ArgumentException>(() => SyntheticDataStudy.Run(Tiny(), TestPaths.NewTempDir("synth-rep"), new SyntheticDataStudyOptions { Seeds = [0, 0] }));
        Assert.Contains("seeds repeat", e.Message);
    }
}
