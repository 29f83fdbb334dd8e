using RoentGen.Reporting;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation.Probes;
using RoentGen.Training;
using RoentGen.Vision;
using static TorchSharp.torch;
using RoentGen.Methods;

namespace RoentGen.Tests.Methods;

[Collection(ProcessStateCollection.Name)]
public class EncoderBaselineTests
{
    private static readonly VitConfig TinyVit = new() { ImageSize = 32, PatchSize = 8, HiddenSize = 32, Layers = 2, Heads = 2 };

    private static SupervisedConfig TinySupervised => new()
    {
        Vit = TinyVit, Phantoms = 8, SourceSize = 64, CropScaleMin = 0.9, Steps = 40, BatchSize = 8, WarmupSteps = 2,
        LearningRate = 3e-3, CheckpointEvery = 0, Seed = 5,
    };

    [Fact]
    public void Supervised_loss_falls_on_a_tiny_run_and_the_encoder_loads_as_a_vit()
    {
        var pool = TrainingRecords.Phantoms(new PhantomOptions { Size = 64, Seed = 3 }, 8);
        using var training = new SupervisedTraining(TinySupervised);
        var history = training.Train(training.CreateTrainer(), pool);
        Assert.Equal(40, history.Steps);
        double first = history.Loss.Take(5).Average(), last = history.Loss.TakeLast(5).Average();
        Assert.True(first > 0.5, $"BCE of an untrained head should start near ln 2, got {first:F3}");
        Assert.True(last < 0.8 * first, $"supervised loss did not fall: first 5 steps {first:F4}, last 5 {last:F4}");
        Assert.Equal(40, history.Metrics["accuracy"].Count);

        var dir = TestPaths.NewTempDir("supervised-run");
        var run = EncoderRuns.Supervised(TinySupervised with { Steps = 2 }, pool, dir);
        Assert.True(run.TrainedNow);
        // The core library writes the loss chart as figure JSON only (the CLI verbs draw loss.html from it).
        Assert.Equal("total", Figure.FromJson(File.ReadAllText(Path.Combine(dir, RunReport.FigureFileName))).Traces[0].Name);
        Assert.False(File.Exists(Path.Combine(dir, RunReport.ChartFileName)));
        var encoder = VitEncoder.Load(run.EncoderFolder);
        Assert.Equal(TinyVit, encoder.Model.Config);
        Assert.Equal(32, encoder.InputSize);
        var again = EncoderRuns.Supervised(TinySupervised with { Steps = 2 }, pool, dir);
        Assert.False(again.TrainedNow);
        Assert.Equal(2, again.Steps);
        Assert.Equal(run.FinalLoss, again.FinalLoss, 6);

        var e = Assert.Throws<RoentGen.Platform.RunStateException>(() => EncoderRuns.Supervised(TinySupervised with { Steps = 2, LearningRate = 1e-2 }, pool, dir));
        Assert.Contains("LearningRate", e.Message);
        Assert.Contains(dir, e.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Clip_loss_is_symmetric_and_matches_its_closed_forms()
    {
        manual_seed(1);
        using var scope = NewDisposeScope();
        var a = randn(6, 16);
        var b = randn(6, 16);
        Assert.Equal(ClipLoss.Symmetric(a, b, 3.0).item<float>(), ClipLoss.Symmetric(b, a, 3.0).item<float>(), 5);

        // Every image the same and every text the same: all logits are equal, so the loss is ln B whatever the scale.
        var same = randn(1, 16).expand(6, 16);
        var sameText = randn(1, 16).expand(6, 16);
        Assert.Equal(Math.Log(6), ClipLoss.Symmetric(same, sameText, 1.0).item<float>(), 5);
        Assert.Equal(Math.Log(6), ClipLoss.Symmetric(same, sameText, 20.0).item<float>(), 4);
        // Images alike but texts not: the text → image half is still ln B, the image → text half is not.
        Assert.NotEqual(Math.Log(6), ClipLoss.Symmetric(same, b, 1.0).item<float>(), 3);

        // Orthonormal pairs (image i = text i = e_i) at scale s: ln(1 + (B − 1) e^(−s)).
        var e = eye(5, 8);
        foreach (var s in new[] { 1.0, 4.0 })
            Assert.Equal(Math.Log(1 + 4 * Math.Exp(-s)), ClipLoss.Symmetric(e, e, s).item<float>(), 5);
        // A wrong pairing costs more than the right one.
        Assert.True(ClipLoss.Symmetric(e, e.index_select(0, tensor(new long[] { 1, 2, 3, 4, 0 })), 4.0).item<float>() > Math.Log(5));

        // Random, uncorrelated embeddings in a wide space at temperature 1: cosines are about 0, so about ln B.
        var wideA = randn(8, 4096);
        var wideB = randn(8, 4096);
        Assert.Equal(Math.Log(8), ClipLoss.Symmetric(wideA, wideB, 1.0).item<float>(), 1);
        Assert.InRange(ClipLoss.Symmetric(wideA, wideB, 1.0).item<float>(), Math.Log(8) - 0.05, Math.Log(8) + 0.05);

        // Identical reports share the target: groups [0, 0, 1, 2] with image = text = e_group give
        // ½ per row of a pair: ln(2 + 2e^(−s)); singletons: ln(1 + 3e^(−s)).
        var g = new[] { 0, 0, 1, 2 };
        var x = eye(3, 8).index_select(0, tensor(new long[] { 0, 0, 1, 2 }));
        double s2 = 3;
        double expected = (2 * Math.Log(2 + 2 * Math.Exp(-s2)) + 2 * Math.Log(1 + 3 * Math.Exp(-s2))) / 4;
        Assert.Equal(expected, ClipLoss.Symmetric(x, x, s2, g).item<float>(), 5);
        Assert.Equal(g, ClipLoss.Groups(["a", "a", "b", "c"]));

        // Retrieval top-1 by hand: image i is closest to text perm[i]; a hit when that text is i's own or shares its group.
        var perm = new long[] { 1, 0, 3, 2 };
        var images = eye(4, 6);
        var texts = eye(4, 6).index_select(0, tensor(perm));   // text row r is e_perm[r], so image i's best text is r with perm[r] = i
        Assert.Equal(0.0, ClipLoss.RetrievalTop1(images, texts, [0, 1, 2, 3]));
        Assert.Equal(0.5, ClipLoss.RetrievalTop1(images, texts, [0, 0, 1, 2]));    // 0 and 1 share a report: both hits
        Assert.Equal(1.0, ClipLoss.RetrievalTop1(images, texts, [0, 0, 1, 1]));
        Assert.Equal(1.0, ClipLoss.RetrievalTop1(images, images, [0, 1, 2, 3]));
        Assert.Throws<ArgumentException>(() => ClipLoss.RetrievalTop1(images, texts, [0, 1, 2]));

        Assert.Throws<ArgumentException>(() => ClipLoss.Symmetric(randn(1, 4), randn(1, 4), 1.0));
        Assert.Throws<ArgumentException>(() => ClipLoss.Symmetric(randn(3, 4), randn(3, 5), 1.0));
    }

    [Fact]
    public void Clip_training_steps_reach_the_temperature_and_save_the_image_tower()
    {
        var cfg = ClipConfig.Matching(DinoConfig.Tiny with { Steps = 3, BatchSize = 4 }, 12, 2) with { TokenizerReports = 12, CheckpointEvery = 2 };
        var pool = TrainingRecords.Phantoms(new PhantomOptions { Size = cfg.SourceSize, Seed = cfg.WorldSeed }, cfg.Phantoms);
        var tokenizer = ClipTraining.TrainTokenizer(cfg, pool);
        using (var training = new ClipTraining(cfg, tokenizer))
        {
            using var scope = NewDisposeScope();
            var (loss, accuracy) = training.Loss(pool.Examples([0, 1, 2, 3]), new Random(0));
            Assert.True(float.IsFinite(loss.item<float>()));
            Assert.Contains(accuracy, new[] { 0, 0.25, 0.5, 0.75, 1 });   // a fraction of the 4 images in the batch
            loss.backward();
            Assert.Contains(training.Heads.parameters(), p => p.grad is not null && p.grad.abs().sum().item<float>() > 0);
            Assert.Contains(training.TextEncoder.parameters(), p => p.grad is not null && p.grad.abs().sum().item<float>() > 0);
            Assert.Equal(1 / 0.07, training.Heads.LogitScale().item<float>(), 3);
        }

        var dir = TestPaths.NewTempDir("clip-run");
        var run = EncoderRuns.Clip(cfg, pool, dir);
        Assert.True(run.TrainedNow);
        Assert.Equal(3, run.Steps);
        Assert.True(File.Exists(Path.Combine(dir, "tokenizer", "vocab.json")));
        Assert.EndsWith("step-000003", Trainer.LatestCheckpoint(dir));
        Assert.Equal(cfg.Vit, VitEncoder.Load(run.EncoderFolder).Model.Config);
        Directory.Delete(dir, true);
    }
}
