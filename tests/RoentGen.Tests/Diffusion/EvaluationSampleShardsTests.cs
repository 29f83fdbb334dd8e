using RoentGen.Diffusion;
using RoentGen.Evaluation;
using RoentGen.Text;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

/// <summary>Issue #20: the evaluation images sampled in shards are the unsharded evaluation's images, and so are its numbers.</summary>
[Collection(ProcessStateCollection.Name)]
public sealed class EvaluationSampleShardsTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-eval-shards");

    public void Dispose() => TestPaths.DeleteQuietly(_dir);

    private static TextToImagePipeline TinyPipeline() => TinyPipelines.Untrained(8);

    [Fact]
    public void Sharded_evaluation_samples_equal_the_unsharded_ones_and_give_the_same_numbers()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        manual_seed(9);
        using var proxy = new ProxyFindingClassifier(new ProxyClassifierConfig { InputSize = 16, Channels = [8, 16], FeatureWidth = 16, NormGroups = 4 });
        manual_seed(4);
        var real = rand(12, 1, 16, 16) * 2 - 1;
        var options = new DiffusionEvaluationOptions
        {
            Prompts = new[] { "cardiomegaly", "small left pleural effusion", "no pneumothorax" }.Select(AdherencePrompt.FromText).ToList(),
            ImagesPerPrompt = 2, Steps = 2, Scheduler = SchedulerKind.Ddim, BatchSize = 4, Seed = 21, UntrainedBaseline = false, SamplerComparisonImages = 0,
        };
        var unsharded = DiffusionEvaluation.Run(pipe, proxy, real, options);

        var samples = Path.Combine(_dir, "samples");
        var first = EvaluationSampleShards.Run(pipe, options, "tiny", samples, new Shard(1, 2));   // 6 images in batches of 4: batch 1 is images 4..5
        Assert.Equal(new ItemRange(1, 1), new ItemRange(first.Manifest.ItemStart, first.Manifest.ItemCount));
        EvaluationSampleShards.Run(pipe, options, "tiny", samples, new Shard(0, 2));
        var notMerged = Assert.Throws<InvalidDataException>(() => EvaluationSampleShards.Load(samples, options, "tiny"));
        Assert.Contains("roentgen merge", notMerged.Message);
        ShardMerge.Merge(samples);
        var loaded = EvaluationSampleShards.Load(samples, options, "tiny");
        Assert.Equal(unsharded.Images!.shape, loaded.shape);
        Assert.True(loaded.eq(unsharded.Images!).all().item<bool>(), "the sharded evaluation images differ from the unsharded ones");

        var fromShards = DiffusionEvaluation.Run(pipe, proxy, real, options, samples: loaded);
        Assert.Equal(unsharded.Trained.ToJson(), fromShards.Trained.ToJson());
        Assert.Equal(0, fromShards.SampleImagesPerSecond);
        Assert.Null(fromShards.Laterality);
        // With a side judge: the two "small left pleural effusion" images are the ones scored for their side.
        var sides = new LateralityJudge(new ProxyFindingClassifier(new ProxyClassifierConfig { InputSize = 16, Channels = [8, 16], FeatureWidth = 16, NormGroups = 4, Outputs = LateralityJudge.Findings.Count, InputChannels = 2 }));
        var withSides = DiffusionEvaluation.Run(pipe, proxy, real, options, samples: loaded, sides: sides);
        Assert.Equal(2, withSides.Laterality!.Images);
        Assert.Equal(RoentGen.Data.Observation.PleuralEffusion, Assert.Single(withSides.Laterality.Findings).Finding);
        Assert.Contains("\"laterality_accuracy\"", withSides.ToJson());
        // Other settings than the shards ran with: refused, naming the folder's merged manifest.
        Assert.Contains("other settings", Assert.Throws<InvalidDataException>(() => EvaluationSampleShards.Load(samples, options with { Steps = 3 }, "tiny")).Message);
        Assert.Throws<ArgumentException>(() => { DiffusionEvaluation.Run(pipe, proxy, real, options with { ImagesPerPrompt = 3 }, samples: loaded); });
    }
}
