using RoentGen.Platform;
using System.Text.Json;
using RoentGen.Evaluation.Probes;
using RoentGen.Methods;
using RoentGen.PairAug;
using Xunit;

namespace RoentGen.Tests.PairAug;

/// <summary>The PairAug VLP study at the tiny preset, end to end, and the evaluation's JSON.</summary>
[Collection(ProcessStateCollection.Name)]
public class PairAugStudyTests
{
    [Fact]
    public void The_tiny_study_writes_results_with_the_four_arms_and_a_second_call_resumes_without_training()
    {
        var dir = TestPaths.NewTempDir("pairaug-study");
        var lines = new List<string>();
        var config = PairAugStudyConfig.Tiny;
        // An untrained tiny generator (16 px) stands in for the trained one: this test is about the study's plumbing.
        var generator = RoentGen.Tests.Diffusion.TinyPipelines.Untrained(11);
        var result = PairAugStudy.Run(config, dir, realSample: TestPaths.RealSample, log: lines.Add, generator: generator);
        Assert.DoesNotContain(lines, l => l.StartsWith("generator:", StringComparison.Ordinal));
        var json = Path.Combine(dir, PairAugStudy.ResultFile);
        Assert.True(File.Exists(json));
        Assert.Equal(["real", "inter", "intra", "both"], result.Runs.Select(r => r.Arm).Distinct());
        Assert.Equal([0L, 1L], result.Seeds);
        Assert.Equal(8, result.Runs.Count);                                     // 4 arms x 2 seeds
        foreach (var r in result.Runs)
        {
            Assert.True(File.Exists(Path.Combine(PairAugStudy.ArmFolder(dir, r.Arm, r.Seed), PairAugStudy.EvalFile)));
            Assert.Equal(13, r.Evaluation.ZeroShot.Count);
            Assert.Equal([0.01, 0.1, 1.0], r.Evaluation.Probes.Select(p => p.Fraction));
        }
        // Same real pool in every arm; augmented arms add their kept pairs.
        var pairs = result.Runs.Where(r => r.Seed == 0).ToDictionary(r => r.Arm, r => r.TrainPairs);
        Assert.Equal(config.Clip.Phantoms, pairs["real"]);
        Assert.Equal(pairs["real"] + result.InterCounts["kept"], pairs["inter"]);
        Assert.Equal(pairs["real"] + result.IntraCounts["kept"], pairs["intra"]);
        Assert.Equal(pairs["real"] + result.InterCounts["kept"] + result.IntraCounts["kept"], pairs["both"]);
        Assert.Equal(config.RealEdits, result.IntraCounts["inverted"]);
        Assert.Equal(result.InterCounts["generated"], result.InterCounts["kept"] + result.InterCounts["pruned"]);
        // Tests of each augmented arm against real-only on every metric.
        Assert.Equal(["inter", "intra", "both"], result.Tests.Select(t => t.Arm).Distinct());
        Assert.Contains(result.Tests, t => t.Metric == "zero_shot_macro_auc");
        Assert.Contains(result.Tests, t => t.Metric == "probe_1pct_macro_auc");
        Assert.Equal(3, result.Verdicts.Count);
        Assert.NotEmpty(result.Tsne.Images);
        Assert.Contains(result.Tsne.Images, p => p.Group == "real");
        Assert.Contains(result.Tsne.Images, p => p.Group != "real");
        Assert.Contains(result.Tsne.Reports, p => p.Group.EndsWith("rewrite", StringComparison.Ordinal));
        if (TestPaths.RealSample is not null) Assert.All(result.Runs, r => Assert.NotNull(r.RealTb));
        // The file reads back.
        var back = PairAugStudyResult.Load(json);
        Assert.Equal(result.Runs.Count, back.Runs.Count);
        Assert.Equal(4, result.ResultsTable().Rows.Count);

        // The HTML report holds the tables and both t-SNE charts.
        var html = RoentGen.Experiments.PairAugStudyReport.Build(result).ToHtml();
        Assert.Contains("real + InterAug + IntraAug pairs (kept)", html, StringComparison.Ordinal);
        Assert.Contains("zero_shot_macro_auc", html, StringComparison.Ordinal);
        Assert.Contains("t-SNE of image embeddings", html, StringComparison.Ordinal);
        Assert.Contains("t-SNE of report embeddings", html, StringComparison.Ordinal);

        // A second call trains and generates nothing.
        var again = new List<string>();
        var second = PairAugStudy.Run(config, dir, realSample: TestPaths.RealSample, log: again.Add);
        Assert.DoesNotContain(again, l => l.Contains("steps in", StringComparison.Ordinal));
        Assert.Contains(again, l => l.Contains("InterAug: finished before", StringComparison.Ordinal));
        Assert.Contains(again, l => l.Contains("IntraAug: finished before", StringComparison.Ordinal));
        Assert.Equal(result.Runs.Select(r => r.Evaluation.ZeroShotMacroAuc), second.Runs.Select(r => r.Evaluation.ZeroShotMacroAuc));
        // Another generator, the seeds in another order (another scorer) or another real sample would mix artefacts: refused.
        var other = Path.Combine(dir, "other-generator");
        var e = Assert.Throws<RunStateException>(() => PairAugStudy.Run(config, dir, generatorDir: other, realSample: TestPaths.RealSample, log: _ => { }));
        Assert.Contains($"generator is '{PairAugStudy.InMemoryGenerator}', not '{other}'", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<RunStateException>(() => PairAugStudy.Run(config, dir, seeds: [1, 0], realSample: TestPaths.RealSample, log: _ => { }));
        Assert.Contains("scorer seed is '0', not '1'", e.Message, StringComparison.Ordinal);
        if (TestPaths.RealSample is not null)
        {
            e = Assert.Throws<RunStateException>(() => PairAugStudy.Run(config, dir, log: _ => { }));
            Assert.Contains("real sample is '", e.Message, StringComparison.Ordinal);
            Assert.Contains("not 'none'", e.Message, StringComparison.Ordinal);
        }
        // Another config in the same folder is refused.
        Assert.ThrowsAny<Exception>(() => PairAugStudy.Run(config with { InterRewrites = 5 }, dir, log: _ => { }));
    }

    [Fact]
    public void The_folder_pins_its_generator_scorer_seed_and_real_sample_and_refuses_others_before_anything_trains()
    {
        var dir = Path.Combine(TestPaths.NewTempDir("pairaug-pins"), "study");
        var config = PairAugStudyConfig.Tiny;
        var generator = RoentGen.Tests.Diffusion.TinyPipelines.Untrained(11);
        // Every call is cancelled from the start: one that passes the pins stops at the rewrite stage, before any training.
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        PairAugStudyResult Run(IReadOnlyList<long> seeds, string? generatorDir = null, string? realSample = null, bool inMemory = true) =>
            PairAugStudy.Run(config, dir, seeds, generatorDir, realSample, _ => { }, cancelled.Token, inMemory ? generator : null);

        Assert.ThrowsAny<OperationCanceledException>(() => Run([0, 1]));
        var pins = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(dir, PairAugStudy.PinsFile)))!;
        Assert.Equal(PairAugStudy.InMemoryGenerator, pins["generator"]);
        Assert.Equal("0", pins["scorer seed"]);
        Assert.Equal("none", pins["real sample"]);
        Assert.ThrowsAny<OperationCanceledException>(() => Run([0, 1, 2]));         // the same pins (more seeds) pass

        // A generator folder, or none (train one in generator/, since nothing is drawn yet), is another generator.
        var other = Path.Combine(dir, "..", "gen");
        var e = Assert.Throws<RunStateException>(() => Run([0, 1], generatorDir: other, inMemory: false));
        Assert.Contains($"generator is '{PairAugStudy.InMemoryGenerator}', not '{Path.GetFullPath(other)}'", e.Message, StringComparison.Ordinal);
        Assert.Contains("give the same generator", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<RunStateException>(() => Run([0, 1], inMemory: false));
        Assert.Contains($"not '{PairAugStudy.TrainedGenerator}'", e.Message, StringComparison.Ordinal);
        // The seeds in another order: another scorer.
        e = Assert.Throws<RunStateException>(() => Run([1, 0]));
        Assert.Contains("scorer seed is '0', not '1'", e.Message, StringComparison.Ordinal);
        Assert.Contains("list that seed first in --seeds, or use another --out", e.Message, StringComparison.Ordinal);
        // A real sample where none was used.
        if (TestPaths.RealSample is not null)
        {
            e = Assert.Throws<RunStateException>(() => Run([0, 1], realSample: TestPaths.RealSample));
            Assert.Contains($"real sample is 'none', not '{TestPaths.RealSample}: ", e.Message, StringComparison.Ordinal);
            Assert.Contains("give the same --real-sample", e.Message, StringComparison.Ordinal);
        }
        Assert.False(Directory.Exists(Path.Combine(dir, "arms")));
        Assert.False(Directory.Exists(Path.Combine(dir, "generator")));
        // The refused calls changed no pin.
        Assert.Equal(pins, JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(dir, PairAugStudy.PinsFile)))!);
    }

    [Fact]
    public void A_bad_inter_or_evaluation_setting_fails_validation_before_the_study_starts()
    {
        var tiny = PairAugStudyConfig.Tiny;
        var cases = new (PairAugStudyConfig Config, string[] Words)[]
        {
            (tiny with { Inter = tiny.Inter with { Steps = 0 } }, ["Inter", "Steps"]),
            (tiny with { Inter = tiny.Inter with { BatchSize = 0 } }, ["Inter", "BatchSize"]),
            (tiny with { Inter = tiny.Inter with { GuidanceScale = double.NaN } }, ["Inter", "GuidanceScale"]),
            (tiny with { Evaluation = tiny.Evaluation with { Fractions = [] } }, ["Evaluation", "Fractions"]),
            (tiny with { Evaluation = tiny.Evaluation with { Fractions = [0.1, 0] } }, ["Evaluation", "Fractions", "(0, 1]"]),
            (tiny with { Evaluation = tiny.Evaluation with { Fractions = [0.1, 1.5] } }, ["Evaluation", "Fractions", "(0, 1]"]),
            (tiny with { Evaluation = tiny.Evaluation with { Fractions = [0.1, 0.1] } }, ["Evaluation", "Fractions repeat"]),
            (tiny with { Evaluation = tiny.Evaluation with { Probe = tiny.Evaluation.Probe with { Steps = 0 } } }, ["Evaluation", "Probe.Steps"]),
            (tiny with { Evaluation = tiny.Evaluation with { Probe = tiny.Evaluation.Probe with { LearningRates = [] } } }, ["Evaluation", "LearningRates"]),
            (tiny with { Evaluation = tiny.Evaluation with { Probe = tiny.Evaluation.Probe with { LearningRates = [-1e-3] } } }, ["Evaluation", "LearningRates"]),
            (tiny with { Evaluation = tiny.Evaluation with { Probe = tiny.Evaluation.Probe with { WeightDecays = [double.NaN] } } }, ["Evaluation", "WeightDecays"]),
            (tiny with { Evaluation = tiny.Evaluation with { ZeroShot = tiny.Evaluation.ZeroShot with { Resamples = 0 } } }, ["Evaluation", "ZeroShot", "Resamples"]),
        };
        foreach (var (config, words) in cases)
        {
            var e = Assert.Throws<ArgumentException>(config.Validate);
            foreach (var w in words) Assert.Contains(w, e.Message, StringComparison.Ordinal);
            // The study refuses it before it makes its folder.
            var dir = Path.Combine(TestPaths.NewTempDir("pairaug-bad-config"), "study");
            Assert.Throws<ArgumentException>(() => PairAugStudy.Run(config, dir, log: _ => { }));
            Assert.False(Directory.Exists(dir));
        }
        tiny.Validate();
        PairAugStudyConfig.Quick.Validate();
    }

    [Fact]
    public void The_evaluation_json_holds_zero_shot_intervals_and_probes_per_fraction()
    {
        var cfg = ClipConfig.Matching(DinoConfig.Tiny with { Steps = 1, BatchSize = 4 }, 8, 2) with { TokenizerReports = 8 };
        var pool = RoentGen.Training.TrainingRecords.Phantoms(new RoentGen.Data.Phantoms.PhantomOptions { Size = cfg.SourceSize, Seed = cfg.WorldSeed }, cfg.Phantoms);
        using var clip = new ClipTraining(cfg, ClipTraining.TrainTokenizer(cfg, pool));
        var data = ProbeData.FromPhantoms(20, cfg.Vit.ImageSize, 4);
        var result = VlpEvaluation.Run(clip.Model, data, PairAugStudyConfig.Tiny.Evaluation, "tiny");
        var path = Path.Combine(TestPaths.NewTempDir("vlp-eval"), "eval.json");
        result.Save(path);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        foreach (var key in new[] { "model", "data", "test_images", "zero_shot_macro_auc", "zero_shot", "interval_method", "resamples", "level", "probes", "seconds" })
            Assert.True(root.TryGetProperty(key, out _), key);
        Assert.Equal(1000, root.GetProperty("resamples").GetInt32());
        Assert.Equal(13, root.GetProperty("zero_shot").GetArrayLength());
        var first = root.GetProperty("zero_shot")[0];
        foreach (var key in new[] { "finding", "positive_prompt", "negative_prompt", "auc", "lower", "upper", "positives", "count" })
            Assert.True(first.TryGetProperty(key, out _), key);
        Assert.Equal([0.01, 0.1, 1.0], root.GetProperty("probes").EnumerateArray().Select(p => p.GetProperty("fraction").GetDouble()));
        Assert.Equal(14, root.GetProperty("probes")[2].GetProperty("per_finding").EnumerateObject().Count());
        var back = VlpEvaluationResult.Load(path);
        Assert.Equal(result.TestImages, back.TestImages);
        Assert.Equal(data.Test.Count, back.TestImages);
    }
}
