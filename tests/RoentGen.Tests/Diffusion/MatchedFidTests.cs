using RoentGen.Data;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

/// <summary>The FID against real images with the prompts' own findings pairs each prompt's generated images with its real ones.</summary>
[Collection(ProcessStateCollection.Name)]
public sealed class MatchedFidTests
{
    [Fact]
    public void Matched_fid_compares_each_prompts_generated_images_with_the_real_images_that_show_its_findings()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipelines.Untrained(8);
        manual_seed(9);
        using var proxy = new ProxyFindingClassifier(new ProxyClassifierConfig { InputSize = 16, Channels = [8, 16], FeatureWidth = 16, NormGroups = 4 });
        manual_seed(4);
        var real = rand(12, 1, 16, 16) * 2 - 1;
        // Cardiomegaly in images 2 and 5, one effusion (7), the rest normal: the effusion prompt gets one real image.
        var labels = new float[12, 14];
        labels[2, (int)Observation.Cardiomegaly] = labels[5, (int)Observation.Cardiomegaly] = 1;
        labels[7, (int)Observation.PleuralEffusion] = 1;
        var labelTensor = tensor(labels.Cast<float>().ToArray(), [12, 14]);
        var prompts = new List<AdherencePrompt>
        {
            new("Cardiomegaly.", [Observation.Cardiomegaly]),
            new("Small left pleural effusion.", [Observation.PleuralEffusion]),
            new("No acute cardiopulmonary process.", []),
        };
        var options = new DiffusionEvaluationOptions
        {
            Prompts = prompts, ImagesPerPrompt = 2, Steps = 2, Scheduler = SchedulerKind.Ddim, BatchSize = 4, Seed = 21,
            UntrainedBaseline = false, SamplerComparisonImages = 0,
        };

        var (matches, shortPrompts) = PromptAdherence.MatchingImages(labelTensor, prompts, 2);
        Assert.Equal(new (int, long)[] { (0, 2), (0, 5), (1, 7), (2, 0), (2, 1) }, matches);
        Assert.Equal(new[] { "Small left pleural effusion." }, shortPrompts);

        var result = DiffusionEvaluation.Run(pipe, proxy, real, options, realLabels: labelTensor);
        Assert.Equal(5, result.MatchedFidImages);
        // Generated images are prompt-major (two per prompt): the effusion prompt's first image only, index 2.
        var expected = FrechetDistance.Compute(proxy.Features(real.index_select(0, tensor(new long[] { 2, 5, 7, 0, 1 }))),
            proxy.Features(result.Images!.index_select(0, tensor(new long[] { 0, 1, 2, 4, 5 }))));
        Assert.Equal(expected, result.MatchedFid!.Value, 6);
        Assert.NotEqual(result.Trained.Fid, result.MatchedFid!.Value, 6);
        Assert.Contains("\"fid_matched\"", result.ToJson());
        Assert.Contains("matched findings", string.Join(";", result.Summary().Columns["metric"].Cast<string>()));

        // Without the real images' labels there is nothing to match.
        var plain = DiffusionEvaluation.Run(pipe, proxy, real, options, samples: result.Images);
        Assert.Null(plain.MatchedFid);
        Assert.Equal(0, plain.MatchedFidImages);
    }
}
