using System.CommandLine;
using RoentGen.Cli.Commands;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using RoentGen.Evaluation.Statistics;
using RoentGen.Experiments;
using RoentGen.Platform;
using RoentGen.Tests.Cli;

namespace RoentGen.Tests.Experiments;

[Collection(ProcessStateCollection.Name)]
public class AugmentationStudyTests
{
    [Fact]
    public void Relative_change_on_a_hand_made_set_gives_the_hand_computed_mean_interval_and_one_sided_p()
    {
        // Seeds whose arm beats real-only by 5 %, 4 % and 3 %: mean 4, sd 1, SE 1/√3, t = 4√3 on 2 df.
        double[] real = [0.70, 0.72, 0.74];
        double[] arm = [0.70 * 1.05, 0.72 * 1.04, 0.74 * 1.03];
        var change = RelativeChangeResult.Of(arm, real);
        Assert.Equal(new[] { 5.0, 4.0, 3.0 }, change.PerSeedPercent.Select(v => Math.Round(v, 10)));
        Assert.Equal(4.0, change.Summary.Mean, 10);
        double half = 4.302652729911275 / Math.Sqrt(3);                   // t(0.975; 2) · SE
        Assert.Equal(4.0 - half, change.Summary.Lower, 8);
        Assert.Equal(4.0 + half, change.Summary.Upper, 8);
        // One-sided p on 2 df: P(T > t) = (1 − t/√(t² + 2)) / 2 with t² = 48.
        Assert.Equal(0.5 * (1 - Math.Sqrt(48) / Math.Sqrt(50)), change.P, 8);
        Assert.Equal("helps", change.Verdict);

        var single = RelativeChangeResult.Of([0.8], [0.7]);
        Assert.True(double.IsNaN(single.P));
        Assert.StartsWith("undecided", single.Verdict);
        Assert.Throws<ArgumentException>(() => RelativeChangeResult.Of([0.8, 0.7], [0.7]));

        // Build pairs runs by seed whatever their order, and puts the paper's figures beside the changes.
        var cfg = AugmentationStudyConfig.Tiny with { Sizes = [10], Seeds = [7, 8, 9] };
        ArmRun Run(string a, long seed, double auc) => new(a, 10, seed, 10, auc, 0.5, [], 1);
        var runs = new List<ArmRun>();
        for (int i = 0; i < 3; i++)
        {
            runs.Add(Run("synthetic", 9 - i, 0.5 + 0.01 * (2 - i)));       // reversed order: seed 9 first
            runs.Add(Run("real", 7 + i, real[i]));
            runs.Add(Run("real-synthetic", 7 + i, arm[i]));
        }
        var audit = new MemorizationAudit(new MemorizationOptions(), 1, [], [], NearDuplicateRate.Of([], new()), NearDuplicateRate.Of([], new()), []);
        var quality = new GeneratorQuality(10, 0.5, 0.9, [], 0.5, 0.4, 0.3);
        var result = AugmentationStudyResult.Build(cfg, new GeneratorInfo("g", true, 32, 1, 48, 6, "Impression", 48, 2001), runs, quality, audit, 1);
        var aug = result.ChangeOf(10, AugmentationArm.RealPlusSynthetic);
        Assert.Equal(4.0, aug.Change.Summary.Mean, 10);
        Assert.Equal(AugmentationStudyResult.PaperAugmentedPercent, aug.PaperPercent);
        Assert.True(aug.PaperInsideInterval);
        var syn = result.ChangeOf(10, AugmentationArm.Synthetic);
        Assert.Equal(AugmentationStudyResult.PaperSyntheticPercent, syn.PaperPercent);
        Assert.Equal(100 * (0.50 / 0.70 - 1), syn.Change.PerSeedPercent[0], 10);   // seed 7 with seed 7
        Assert.Equal("hurts", syn.Change.Verdict);
        Assert.Equal(3, result.Arms.Count);
        Assert.Equal(2, result.ClaimTable().Rows.Count);
        Assert.Contains(result.Narrative(), l => l.StartsWith("Synthetic data did not measurably help", StringComparison.Ordinal));

        // Bad command-line values are user errors (exit 2) before any work.
        var root = new RootCommand { AugmentStudyCommand.Build() };
        var outDir = Path.Combine(Path.GetTempPath(), $"augment-never-{Guid.NewGuid():N}");
        foreach (var (args, expected) in new[] { (new[] { "--sizes", "250,abc" }, "--sizes"), (new[] { "--sizes", "24,24" }, "repeats"), (new[] { "--seeds", "x" }, "--seeds"), (new[] { "--preset", "huge" }, "known presets") })
        {
            string[] preset = args[0] == "--preset" ? [] : ["--preset", "tiny"];
            var (rc, _, stderr) = CliCases.Invoke(root, ["augment-study", .. preset, "--out", outDir, .. args]);
            Assert.True(rc == 2, $"{string.Join(" ", args)}: exit {rc}, {stderr}");
            Assert.Contains(expected, stderr);
        }
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Tiny_study_writes_every_arm_and_resumes_after_an_interruption_without_recomputing_finished_runs()
    {
        var dir = TestPaths.NewTempDir("augment");
        try
        {
            var cfg = AugmentationStudyConfig.Tiny;
            using var cts = new CancellationTokenSource();
            var log = new List<string>();
            void Log(string line)
            {
                log.Add(line);
                if (line.Contains("seed 0, real-synthetic: wrote", StringComparison.Ordinal)) cts.Cancel();
            }
            Assert.Throws<OperationCanceledException>(() => AugmentationStudy.Run(cfg, dir, null, Log, cts.Token));
            int n = cfg.Sizes[0];
            var real0 = AugmentationStudy.RunPath(dir, n, AugmentationArm.Real, 0);
            var aug0 = AugmentationStudy.RunPath(dir, n, AugmentationArm.RealPlusSynthetic, 0);
            Assert.True(File.Exists(real0) && File.Exists(aug0));
            Assert.False(File.Exists(AugmentationStudy.RunPath(dir, n, AugmentationArm.Synthetic, 0)));
            Assert.False(File.Exists(Path.Combine(dir, AugmentationStudy.ResultFile)));
            var hashes = new[] { real0, aug0, AugmentationStudy.SyntheticPath(dir, 1, n - 1) }.ToDictionary(p => p, CliCases.Hash);

            // The same study through the CLI: the generator, the synthetic images and the two finished runs are read back.
            var root = new RootCommand { AugmentStudyCommand.Build() };
            var (rc, stdout, stderr) = CliCases.Invoke(root, "augment-study", "--preset", "tiny", "--out", dir, "--generator", Path.Combine(dir, "no-such-model"));
            Assert.Equal(2, rc);
            Assert.Contains("--generator", stderr);
            (rc, stdout, stderr) = CliCases.Invoke(root, "augment-study", "--preset", "tiny", "--out", dir, "--seeds", "0,1");
            Assert.True(rc == 0, stderr);
            Assert.Contains("generator: finished before, loaded", stdout);
            Assert.Contains($"synthetic images: all {cfg.SyntheticMultiple * n} cached", stdout);
            Assert.Contains($"size {n}, seed 0, real: finished before", stdout);
            Assert.Contains($"size {n}, seed 0, real-synthetic: finished before", stdout);
            Assert.Contains($"size {n}, seed 0, synthetic: wrote", stdout);
            foreach (var (path, hash) in hashes) Assert.Equal(hash, CliCases.Hash(path));
            Assert.True(File.Exists(Path.Combine(dir, AugmentationStudyReport.ReportFile)));

            var result = AugmentationStudyResult.Load(dir);
            Assert.Equal(6, result.Runs.Count);
            foreach (var arm in AugmentationStudy.Arms)
                foreach (var seed in cfg.Seeds)
                {
                    var run = Assert.Single(result.Runs, r => r.Arm == AugmentationStudy.Key(arm) && r.Seed == seed);
                    Assert.Equal(arm switch { AugmentationArm.Real => n, AugmentationArm.RealPlusSynthetic => 2 * n, _ => cfg.SyntheticMultiple * n }, run.TrainImages);
                    Assert.Equal(ProxyFindingClassifier.Outputs, run.PerFinding.Count);
                    Assert.True(double.IsFinite(run.MacroAuc), $"{run.Arm} seed {seed}: macro AUC {run.MacroAuc}");
                }
            Assert.Equal(3, result.Arms.Count);
            Assert.Equal(4, result.Changes.Count);                                 // 2 arms x 2 metrics
            Assert.All(result.Arms, a => Assert.Equal(2, a.MacroAuc.N));
            Assert.Equal(Math.Min(cfg.AuditImages!.Value, cfg.SyntheticMultiple * n), result.Memorization.GeneratedRate.Images);
            Assert.Equal(Math.Max(n, result.Generator.GeneratorTrainImages), result.Memorization.TrainingImages);   // the generator's whole training set
            Assert.Equal(cfg.Memorization.ClosestPairs, result.Memorization.ClosestPairs.Count);
            Assert.True(double.IsFinite(result.Quality.SyntheticAdherence) || result.Quality.Findings.Count == 0);
            Assert.Equal(32, result.Generator.ImageSize);
            Assert.Equal(WorldSeeds.HeldOut(result.Generator.World), result.Generator.TestWorld);
            // Validation lies beyond any size a later call may add, so extending the study keeps its thresholds' data.
            Assert.Equal(Math.Max(AugmentationStudy.MaxSize, result.Generator.GeneratorTrainImages), result.Generator.ValidationStart);
            var memGrid = result.MemorizationGrid(dir);
            Assert.Equal(8, memGrid.Cells.Count);
            // Captions name the audited images themselves (report/copy and phantom index), not their places in the grid.
            var top = result.Memorization.ClosestPairs[0];
            Assert.StartsWith($"syn {top.Generated % n}/{top.Generated / n} SSIM", memGrid.Cells[0].Caption);
            Assert.Equal($"phantom {top.Training}", memGrid.Cells[1].Caption);

            // A generator folder is resolved (and a folder of another study's settings is refused).
            var gen = AugmentationStudy.ResolveGenerator(Path.Combine(dir, AugmentationStudy.GeneratorFolder));
            Assert.Equal(32, gen.Experiment.ImageSize);
            Assert.Throws<ArgumentException>(() => AugmentationStudy.ResolveGenerator(dir));
            var other = Assert.Throws<RunStateException>(() => AugmentationStudy.Run(cfg with { SyntheticMultiple = 3 }, dir, null, _ => { }));
            Assert.Contains("SyntheticMultiple", other.Message);
            // The pin is checked before the generator trains: a longer generator budget is refused without a step taken.
            string genDir = Path.Combine(dir, AugmentationStudy.GeneratorFolder);
            string Snapshot() => string.Join("\n", Directory.GetFiles(genDir, "*", SearchOption.AllDirectories).Order()
                .Select(f => $"{f} {new FileInfo(f).Length} {File.GetLastWriteTimeUtc(f).Ticks}"));
            string before = Snapshot();
            Assert.Throws<RunStateException>(() => AugmentationStudy.Run(cfg with { Generator = cfg.Generator with { LdmSteps = cfg.Generator.LdmSteps + 5 } }, dir, null, _ => { }));
            Assert.Equal(before, Snapshot());
            // A given generator is pinned by its weights too: the same folder retrained or overwritten in place is refused
            // before anything is drawn.
            var given = TestPaths.NewTempDir("augment-given");
            var study2 = TestPaths.NewTempDir("augment-study2");
            try
            {
                foreach (var f in Directory.GetFiles(genDir, "*", SearchOption.AllDirectories))
                {
                    var to = Path.Combine(given, Path.GetRelativePath(genDir, f));
                    Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                    File.Copy(f, to);
                }
                using (var cancelled = new CancellationTokenSource())
                {
                    cancelled.Cancel();
                    Assert.ThrowsAny<OperationCanceledException>(() => AugmentationStudy.Run(cfg, study2, given, _ => { }, cancelled.Token));
                }
                Assert.Contains("sha256:", File.ReadAllText(Path.Combine(study2, "study", AugmentationStudy.WeightsPinFile)));
                var weights = Directory.GetFiles(Path.Combine(given, "unet"), "*.safetensors").Single();
                var bytes = File.ReadAllBytes(weights);
                bytes[^1] ^= 1;
                File.WriteAllBytes(weights, bytes);
                string Files() => string.Join("\n", Directory.GetFiles(study2, "*", SearchOption.AllDirectories).Order()
                    .Select(f => $"{f} {new FileInfo(f).Length} {File.GetLastWriteTimeUtc(f).Ticks}"));
                string kept = Files();
                var changed = Assert.Throws<RunStateException>(() => AugmentationStudy.Run(cfg, study2, given, _ => { }));
                Assert.Contains("generator weights", changed.Message);
                Assert.Equal(kept, Files());
            }
            finally { TestPaths.DeleteQuietly(given); TestPaths.DeleteQuietly(study2); }
            // Quality and memorization are kept per largest size, so a larger size measures again.
            Assert.True(File.Exists(Path.Combine(dir, AugmentationStudy.QualityFile(n))));
            Assert.True(File.Exists(Path.Combine(dir, AugmentationStudy.MemorizationFile(n))));
        }
        finally { TestPaths.DeleteQuietly(dir); }
    }
}
