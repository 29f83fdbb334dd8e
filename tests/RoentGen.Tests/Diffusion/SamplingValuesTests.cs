using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using RoentGen.Text;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

// Issue #12, root cause 5: numbers that should not pass.
[Collection(ProcessStateCollection.Name)]
public class SamplingValuesTests
{
    private static TextToImagePipeline TinyPipeline() => TinyPipelines.Untrained(3);

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(1e308)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(-1)]
    [InlineData(100.5)]
    public void Guidance_scale_must_be_finite_and_within_0_to_100(double scale)
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        var e = Assert.Throws<ArgumentException>(() => pipe.Sample(new SampleRequest { Prompts = ["no pneumothorax"], Steps = 2, GuidanceScale = scale }));
        Assert.Contains($"guidance scale must be >= 0 and at most 100", e.Message);
        Assert.Contains($"got {scale}", e.Message);
        Assert.Contains("Steps is 0; expected 1 to 10000", Assert.Throws<ArgumentException>(() => new SampleRequest { Prompts = ["x"], Steps = 0 }.Validate()).Message);
        Assert.Contains("Strength is NaN", Assert.Throws<ArgumentException>(() => new SampleRequest { Prompts = ["x"], Strength = double.NaN }.Validate()).Message);
        new SampleRequest { Prompts = ["x"], GuidanceScale = 100 }.Validate();
    }

    [Fact]
    public void Nan_weights_are_an_error_naming_the_step_not_a_black_image()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        using (no_grad()) foreach (var p in pipe.Unet.parameters()) p.fill_(float.NaN);
        var e = Assert.Throws<SamplingDivergedException>(() => pipe.Sample(new SampleRequest { Prompts = ["no pneumothorax", "cardiomegaly"], Steps = 3, GuidanceScale = 2 }));
        Assert.Equal(1, e.Step);
        Assert.Contains("latents after step 1 of 3", e.Message);
        Assert.Contains("NaN or infinite", e.Message);
        // A finite UNet with a NaN decoder: the decoder is named.
        var pipe2 = TinyPipeline();
        using (no_grad()) foreach (var p in pipe2.Vae.parameters()) p.fill_(float.NaN);
        var e2 = Assert.Throws<SamplingDivergedException>(() => pipe2.Sample(new SampleRequest { Prompts = ["no pneumothorax"], Steps = 2 }));
        Assert.Equal(0, e2.Step);
        Assert.Contains("the VAE decoder", e2.Message);
    }

    [Fact]
    public void Fid_from_fewer_than_ten_images_on_a_side_carries_a_warning()
    {
        using var scope = NewDisposeScope();
        var cases = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 5 }).Generate(0, 24);
        var real = ImageTensors.Stack(cases.Take(12).Select(c => c.Image));
        var gen = ImageTensors.Stack(cases.Skip(12).Select(c => c.Image));
        static Tensor Features(Tensor x) => nn.functional.avg_pool2d(x, 8).flatten(1);
        var scorer = new RoentGen.Tests.Evaluation.PromptAdherenceTests.OracleScorer(cases, 5);
        var prompts = Enumerable.Range(0, 12).Select(i => AdherencePrompt.FromText(i % 2 == 0 ? "Moderate cardiomegaly." : "No acute cardiopulmonary process.")).ToList();
        var opts = new GenerationEvaluationOptions { KidSubsets = 2 };
        var enough = GenerationEvaluation.Run(real, gen, prompts, Features, scorer, opts);
        Assert.DoesNotContain(enough.Warnings, w => w.Contains("FID"));
        var few = GenerationEvaluation.Run(real.narrow(0, 0, 3), gen, prompts, Features, scorer, opts);
        Assert.Contains(few.Warnings, w => w.Contains("FID and KID from 3 real and 12 generated images: fewer than 10 on a side"));
        Assert.Contains("fewer than 10 on a side", few.ToJson());
    }
}
