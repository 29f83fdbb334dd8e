using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using RoentGen.Evaluation.Probes;
using RoentGen.Methods;
using RoentGen.PairAug;
using RoentGen.Training;
using Xunit;
using static TorchSharp.torch;

namespace RoentGen.Tests.PairAug;

public class ZeroShotTests
{
    /// <summary>Fixed embeddings: the image i is images[i]; prompts map to rows of a table.</summary>
    private sealed class KnownEmbedder(float[,] images, Dictionary<string, float[]> prompts) : IClipEmbedder
    {
        public int ImageSize => 8;
        public List<string> Asked { get; } = [];
        public Tensor EmbedImages(Tensor x) => tensor(images);
        public Tensor EmbedTexts(IReadOnlyList<string> texts)
        {
            Asked.AddRange(texts);
            return stack(texts.Select(t => tensor(prompts[t])).ToArray());
        }
    }

    [Fact]
    public void The_zero_shot_score_is_the_softmax_over_the_two_cosines()
    {
        // Image 0 points at the positive prompt, image 1 at the negative one, image 2 halfway (scaled, to show normalisation).
        using var images = tensor(new float[,] { { 2, 0 }, { 0, 3 }, { 1, 1 } });
        using var pos = tensor(new float[] { 1, 0 });
        using var neg = tensor(new float[] { 0, 5 });
        var p = ZeroShot.Probabilities(images, pos, neg);
        double e = Math.E;
        Assert.Equal(e / (e + 1), p[0], 12);          // cos = 1 and 0
        Assert.Equal(1 / (1 + e), p[1], 12);          // cos = 0 and 1
        Assert.Equal(0.5, p[2], 12);                  // equal cosines
        var scaled = ZeroShot.Probabilities(images, pos, neg, scale: 10);
        Assert.Equal(1 / (1 + Math.Exp(-10)), scaled[0], 12);
    }

    [Fact]
    public void Evaluate_asks_the_templates_and_scores_a_known_case()
    {
        // Two images: one with an effusion (labels row 0), one without. Embeddings put each on its own prompt.
        var prompts = new Dictionary<string, float[]>
        {
            ["effusion present"] = [1, 0], ["effusion absent"] = [0, 1],
        };
        var model = new KnownEmbedder(new float[,] { { 1, 0 }, { 0, 1 }, { 0.9f, 0.1f }, { 0.2f, 0.8f } }, prompts);
        var labels = new float[4, Observations.All.Count];
        labels[0, (int)Observation.PleuralEffusion] = 1;
        labels[2, (int)Observation.PleuralEffusion] = 1;
        var options = new ZeroShotOptions
        {
            PositiveTemplate = "{finding} present", NegativeTemplate = "{finding} absent",
            Findings = [Observation.PleuralEffusion], Phrases = new Dictionary<Observation, string> { [Observation.PleuralEffusion] = "effusion" }, Resamples = 200,
        };
        var result = ZeroShot.Evaluate(model, zeros(4, 1, 8, 8), labels, options);
        Assert.Equal(["effusion present", "effusion absent"], model.Asked);
        var r = Assert.Single(result.PerFinding);
        Assert.Equal("effusion present", r.PositivePrompt);
        Assert.Equal(1.0, r.Auc.Estimate);           // both positives score above both negatives
        Assert.Equal(2, r.Positives);
        Assert.Equal(4, r.Count);
        Assert.Equal(1.0, result.MacroAuc);
        Assert.Throws<ArgumentException>(() => ZeroShot.Evaluate(model, zeros(4, 1, 8, 8), new float[3, 14], options));
        Assert.Throws<ArgumentException>(() => new ZeroShotOptions { PositiveTemplate = "finding" }.Validate());
        Assert.Throws<ArgumentException>(() => new ZeroShotOptions { PositiveTemplate = "no {finding}" }.Validate());
    }

    [Fact]
    public void The_stratified_interval_contains_the_estimate_and_is_reproducible()
    {
        var rng = new Random(3);
        var labels = Enumerable.Range(0, 80).Select(i => i % 3 == 0).ToArray();
        var scores = labels.Select(l => (l ? 0.6 : 0.4) + rng.NextDouble() * 0.5).ToArray();
        var a = ZeroShot.StratifiedAucInterval(scores, labels, 1000, seed: 4);
        var b = ZeroShot.StratifiedAucInterval(scores, labels, 1000, seed: 4);
        Assert.Equal(a, b);
        Assert.Equal(Auc.Compute(scores, labels), a.Estimate);
        Assert.InRange(a.Estimate, a.Lower, a.Upper);
        Assert.True(a.Upper - a.Lower > 0.01 && a.Upper - a.Lower < 0.5, $"{a.Lower}..{a.Upper}");
        Assert.Equal(1000, a.Resamples);
        var single = ZeroShot.StratifiedAucInterval([0.1, 0.2], [true, true]);
        Assert.True(double.IsNaN(single.Estimate) && double.IsNaN(single.Lower));
    }

    [Fact]
    public void A_tiny_clip_is_judged_zero_shot_and_by_linear_probes_at_label_fractions()
    {
        var cfg = ClipConfig.Matching(DinoConfig.Tiny with { Steps = 3, BatchSize = 4 }, 12, 2) with { TokenizerReports = 12 };
        var pool = TrainingRecords.Phantoms(new PhantomOptions { Size = cfg.SourceSize, Seed = cfg.WorldSeed }, cfg.Phantoms);
        using var clip = new ClipTraining(cfg, ClipTraining.TrainTokenizer(cfg, pool));
        clip.Train(clip.CreateTrainer(), pool);
        foreach (var m in clip.Modules.Values) m.train();            // as if training went on after the evaluation

        var data = ProbeData.FromPhantoms(60, size: 32, seed: 5);
        var zs = ZeroShot.Evaluate(clip, data.Train.Images, data.Train.Labels, new ZeroShotOptions { Resamples = 1000 });
        Assert.True(clip.Backbone.training);                       // evaluation leaves the run's mode alone
        Assert.Equal(13, zs.PerFinding.Count);
        Assert.Contains("stratified", zs.IntervalMethod, StringComparison.Ordinal);
        var scored = zs.PerFinding.Where(r => double.IsFinite(r.Auc.Estimate)).ToList();
        Assert.NotEmpty(scored);
        foreach (var r in scored)
        {
            Assert.InRange(r.Auc.Estimate, 0, 1);
            Assert.InRange(r.Auc.Estimate, r.Auc.Lower, r.Auc.Upper);
            Assert.Equal(1000, r.Auc.Resamples);
            Assert.Equal($"no {r.Finding.Name().ToLowerInvariant()}", r.NegativePrompt);
        }
        foreach (var r in zs.PerFinding.Except(scored)) Assert.True(r.Positives == 0 || r.Positives == r.Count);
        Assert.InRange(zs.MacroAuc, 0, 1);

        var probes = ZeroShot.LinearProbeAtFractions(clip, data, options: LinearProbeOptions.Quick with { Steps = 20 });
        Assert.Equal([0.01, 0.1, 1.0], probes.Select(p => p.Fraction));
        int n = data.Train.Count;
        Assert.Equal([ZeroShot.TrainCount(0.01, n), ZeroShot.TrainCount(0.1, n), n], probes.Select(p => p.TrainCount));
        Assert.Equal(1, probes[0].TrainCount);                         // 1 % of 36 rounds up to one image
        Assert.Equal((int)Math.Ceiling(0.1 * n), probes[1].TrainCount);
        Assert.Subset(probes[1].TrainIndices.ToHashSet(), probes[0].TrainIndices.ToHashSet());   // nested subsets
        Assert.Subset(probes[2].TrainIndices.ToHashSet(), probes[1].TrainIndices.ToHashSet());
        Assert.All(probes, p => Assert.Equal(14, p.Result.PerLabel.Count));
        Assert.All(probes[2].Result.Scored, s => Assert.InRange(s.Auc, 0, 1));
        Assert.True(clip.Backbone.training);
        Assert.Equal(3, ZeroShot.TrainCount(0.1, 30));
        Assert.Throws<ArgumentException>(() => ZeroShot.LinearProbeAtFractions(clip, data, [0.0]));
    }
}
