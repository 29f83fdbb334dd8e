using RoentGen.Diffusion;
using RoentGen.Nn;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

/// <summary>Starting latents, step callbacks and the sampling context attention processors see, on an untrained tiny pipeline.</summary>
[Collection(ProcessStateCollection.Name)]
public class PipelineSamplingTests
{
    private static readonly string[] Corpus =
    [
        "small left pleural effusion", "no acute cardiopulmonary process", "right upper lobe pneumonia",
        "cardiomegaly with mild edema", "left lower lobe atelectasis", "no pneumothorax",
    ];

    /// <summary>Random weights (seeded), 16x16 images, 8x8 latents: enough to tell prompts and latents apart.</summary>
    private static TextToImagePipeline TinyPipeline() => TinyPipelines.Untrained(11, Corpus);

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void Without_latents_sampling_draws_the_helpers_noise_and_explicit_latents_reproduce_it()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        var request = new SampleRequest { Prompts = ["small left pleural effusion", "no pneumothorax", "cardiomegaly"], Steps = 3, Seed = 5, GuidanceScale = 3, BatchSize = 2 };
        var a = pipe.Sample(request);
        Assert.Equal([3L, 1, 16, 16], a.shape);
        Assert.True(Same(a, pipe.Sample(request)), "two runs with the same seed differ");
        // Image i's noise comes from seed + i, whatever the count drawn.
        var noise = pipe.DrawNoise(3, request.Seed);
        Assert.Equal(pipe.LatentShape(3), noise.shape);
        Assert.True(Same(noise.narrow(0, 1, 2), pipe.DrawNoise(2, request.Seed + 1)));
        Assert.True(Same(a, pipe.Sample(request with { Latents = noise })), "explicit latents from DrawNoise differ from the drawn noise");
        Assert.False(Same(a, pipe.Sample(request with { Latents = pipe.DrawNoise(3, 99) })), "the given latents were ignored");
    }

    [Fact]
    public void Trimming_the_native_heap_between_steps_changes_no_image_and_a_negative_interval_is_refused()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        Assert.Equal(2, pipe.TrimNativeHeapEvery);
        var request = new SampleRequest { Prompts = ["small left pleural effusion", "cardiomegaly"], Steps = 4, Seed = 3, GuidanceScale = 3 };
        var trimmed = pipe.Sample(request);
        pipe.TrimNativeHeapEvery = 0;
        Assert.True(Same(trimmed, pipe.Sample(request)), "never trimming changed the images");
        pipe.TrimNativeHeapEvery = 1;
        Assert.True(Same(trimmed, pipe.Sample(request)), "trimming every step changed the images");
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => pipe.TrimNativeHeapEvery = -1);
        Assert.Contains("TrimNativeHeapEvery", ex.Message);
    }

    [Fact]
    public void Latents_of_the_wrong_shape_are_refused_naming_expected_and_got()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        var request = new SampleRequest { Prompts = ["a", "b"], Steps = 2 };
        var wrongCount = Assert.Throws<ArgumentException>(() => pipe.Sample(request with { Latents = pipe.DrawNoise(1, 0) }));
        Assert.Contains("[1, 4, 8, 8]", wrongCount.Message);
        Assert.Contains("expected [2, 4, 8, 8]", wrongCount.Message);
        var wrongSide = Assert.Throws<ArgumentException>(() => pipe.Sample(request with { Latents = randn(2, 4, 16, 16) }));
        Assert.Contains("[2, 4, 16, 16]", wrongSide.Message);
    }

    [Fact]
    public void Two_prompts_from_one_shared_latent_start_equal_and_end_different()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        var shared = pipe.DrawNoise(1, 42);                                                      // (1, C, h, w)
        var request = new SampleRequest { Steps = 3, GuidanceScale = 3, Latents = shared };
        Tensor? StartOf(string prompt, out Tensor image)
        {
            Tensor? start = null;
            image = pipe.Sample(request with { Prompts = [prompt] }, s =>
            {
                if (s.Step.Step == 0) start = s.Latents.clone().DetachFromDisposeScope();
            });
            return start;
        }
        using var startA = StartOf("small left pleural effusion", out var imageA);
        using var startB = StartOf("cardiomegaly with mild edema", out var imageB);
        Assert.NotNull(startA);
        Assert.True(Same(startA!, startB!), "the two runs did not start from the same latent");
        Assert.False(imageA.allclose(imageB), "different prompts from one latent gave the same image");
        StartOf("small left pleural effusion", out var imageA2)?.Dispose();
        Assert.True(Same(imageA, imageA2), "the same prompt from the same latent gave a different image");
        // Repeated in one request: both rows start alike, so the same prompt twice gives the same image.
        var twice = pipe.Sample(request with { Prompts = ["no pneumothorax", "no pneumothorax"], Latents = shared.repeat(2, 1, 1, 1) });
        Assert.True(twice[0].allclose(twice[1], rtol: 0, atol: 1e-6), "the same prompt twice from one shared latent gave different images");
    }

    [Fact]
    public void The_step_callback_runs_once_per_step_and_batch_in_order_and_the_old_one_still_counts()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        var request = new SampleRequest { Prompts = ["a", "b", "c"], Steps = 4, BatchSize = 2, GuidanceScale = 2 };
        var seen = new List<SamplingStep>();
        var shapes = new List<long[]>();
        pipe.Sample(request, s => { seen.Add(s.Step); shapes.Add(s.Latents.shape); });
        Assert.Equal([0, 1, 2, 3, 0, 1, 2, 3], seen.Select(s => s.Step));
        Assert.All(seen, s => Assert.Equal(4, s.TotalSteps));
        Assert.Equal([0, 0, 0, 0, 2, 2, 2, 2], seen.Select(s => s.BatchStart));
        Assert.Equal([2, 2, 2, 2, 1, 1, 1, 1], seen.Select(s => s.BatchCount));
        Assert.True(seen.Take(4).Zip(seen.Skip(1).Take(3)).All(p => p.First.Timestep > p.Second.Timestep), "timesteps do not descend");
        Assert.Equal([2L, 4, 8, 8], shapes[0]);
        Assert.Equal([1L, 4, 8, 8], shapes[4]);
        var old = new List<(int Done, int Total)>();
        pipe.Sample(request, (done, total) => old.Add((done, total)));
        Assert.Equal([(1, 4), (2, 4), (3, 4), (4, 4), (1, 4), (2, 4), (3, 4), (4, 4)], old);
    }

    private sealed class RecordingProcessor : IAttentionProcessor
    {
        public readonly List<(string Name, int? Step, GuidanceHalf[] Halves)> Calls = [];
        public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call)
        {
            var halves = call.Sampling is { } s ? Enumerable.Range(0, (int)query.shape[0]).Select(r => s.HalfOf(r)).ToArray() : [];
            Calls.Add((call.Name, call.Sampling?.Step, halves));
            return ScaledDotProductProcessor.Instance.Attend(query, key, value, call);
        }
    }

    [Fact]
    public void Attention_processors_see_module_paths_steps_and_guidance_halves_in_sampling_and_no_step_in_training()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        var request = new SampleRequest { Prompts = ["small left pleural effusion", "no pneumothorax"], Steps = 2, GuidanceScale = 3, Seed = 1 };
        var reference = pipe.Sample(request);
        var recorder = new RecordingProcessor();
        pipe.Unet.SetAttentionProcessor(a => a.IsCrossAttention ? recorder : ScaledDotProductProcessor.Instance);
        var recorded = pipe.Sample(request);
        Assert.True(Same(reference, recorded), "a processor that delegates to the default one changed the images");
        Assert.Contains(recorder.Calls, c => c.Name == "down_blocks.0.attentions.0.transformer_blocks.0.attn2");
        Assert.Contains(recorder.Calls, c => c.Name == "mid_block.attentions.0.transformer_blocks.0.attn2");
        Assert.All(recorder.Calls, c => Assert.EndsWith(".attn2", c.Name));
        Assert.Equal([0, 1], recorder.Calls.Select(c => c.Step).Distinct());
        var layout = new[] { GuidanceHalf.Unconditional, GuidanceHalf.Unconditional, GuidanceHalf.Conditional, GuidanceHalf.Conditional };
        Assert.All(recorder.Calls, c => Assert.Equal(layout, c.Halves));

        recorder.Calls.Clear();
        pipe.Sample(request with { GuidanceScale = 1 });
        Assert.All(recorder.Calls, c => Assert.Equal([GuidanceHalf.Conditional, GuidanceHalf.Conditional], c.Halves));

        // A training forward, outside any sampling step, sees no step.
        recorder.Calls.Clear();
        Assert.Null(SamplingStep.Current);
        pipe.Unet.train();
        var latents = randn(pipe.LatentShape(2));
        pipe.Unet.call(latents, tensor(new long[] { 10, 500 }), pipe.EncodePrompts(request.Prompts));
        Assert.NotEmpty(recorder.Calls);
        Assert.All(recorder.Calls, c => Assert.Null(c.Step));
    }

    [Fact]
    public void A_sampling_step_maps_rows_to_halves_and_prompts_and_its_scope_restores_the_previous_one()
    {
        var step = new SamplingStep(Step: 3, TotalSteps: 10, Timestep: 700, BatchStart: 4, BatchCount: 2, Guided: true);
        Assert.Equal(4, step.Rows);
        Assert.Equal([GuidanceHalf.Unconditional, GuidanceHalf.Unconditional, GuidanceHalf.Conditional, GuidanceHalf.Conditional], Enumerable.Range(0, 4).Select(r => step.HalfOf(r)));
        Assert.Equal([4, 5, 4, 5], Enumerable.Range(0, 4).Select(r => step.PromptOf(r)));
        Assert.Contains("0..3", Assert.Throws<ArgumentOutOfRangeException>(() => step.HalfOf(4)).Message);
        var inner = step with { Step = 4 };
        using (step.Enter())
        {
            using (inner.Enter()) Assert.Same(inner, SamplingStep.Current);
            Assert.Same(step, SamplingStep.Current);
        }
        Assert.Null(SamplingStep.Current);
    }
}
