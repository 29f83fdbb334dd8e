using RoentGen.Training;
using RoentGen.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>The images of a prompt-to-prompt edit.</summary>
/// <param name="Images">(P, 1, H, W) in [−1, 1]: row 0 the source prompt's image, rows 1..E the edits'.</param>
/// <param name="Controller">The controller that ran (its layers, recorded maps).</param>
public sealed record PromptEditResult(Tensor Images, PromptToPromptController Controller);

/// <summary>
/// Runs prompt-to-prompt edits on a <see cref="TextToImagePipeline"/>'s parts: the source and edited prompts are
/// sampled as one guided DDIM batch from one shared starting latent, with a <see cref="PromptToPromptController"/>
/// installed on every UNet attention module for the run (the previous processors are put back after). The loop is the
/// pipeline's (same guidance, scheduler step and decoding) plus local blending after each step and, for real-image
/// editing, per-step unconditional embeddings from <see cref="NullTextInversion"/>.
/// </summary>
public sealed class PromptToPromptEditor(TextToImagePipeline pipeline)
{
    /// <summary>The pipeline whose parts are used.</summary>
    public TextToImagePipeline Pipeline { get; } = pipeline;

    /// <summary>
    /// Edits: images of the source and of each edited prompt from one starting latent.
    /// </summary>
    /// <param name="source">The source prompt.</param>
    /// <param name="edits">The edited prompts.</param>
    /// <param name="options">The edit, guidance, steps and seed.</param>
    /// <param name="startLatent">The shared starting latent (1, C, h, w), or null to draw it from the seed as the pipeline does.</param>
    /// <param name="nullEmbeddings">Per step, the unconditional text tokens (1, L, D) to use instead of the empty prompt's (null-text inversion), or null.</param>
    /// <param name="controller">A controller to use (built from the same prompts and options), or null to build one.</param>
    /// <exception cref="ArgumentException">The starting latent or the embeddings do not fit.</exception>
    public PromptEditResult Edit(string source, IReadOnlyList<string> edits, PromptToPromptOptions options,
        Tensor? startLatent = null, IReadOnlyList<Tensor>? nullEmbeddings = null, PromptToPromptController? controller = null)
    {
        options.Validate();
        var pipe = Pipeline;
        controller ??= new PromptToPromptController(pipe.Tokenizer, pipe.MaxTokens, pipe.LatentSize, source, edits, options);
        if (nullEmbeddings is not null && nullEmbeddings.Count != options.Steps)
            throw new ArgumentException($"{nullEmbeddings.Count} null-text embeddings for {options.Steps} steps; expected one per step", nameof(nullEmbeddings));
        var shape = pipe.LatentShape(1);
        if (startLatent is not null && !startLatent.shape.SequenceEqual(shape))
            throw new ArgumentException($"starting latent has shape [{string.Join(", ", startLatent.shape)}]; expected [{string.Join(", ", shape)}]", nameof(startLatent));
        var previous = pipe.Unet.AttentionModules.Select(a => (a, a.Processor)).ToList();
        controller.Reset();
        try
        {
            pipe.Unet.SetAttentionProcessor(_ => controller);
            var images = Run(controller.Prompts, options, startLatent, nullEmbeddings, controller);
            return new PromptEditResult(images, controller);
        }
        finally
        {
            foreach (var (a, p) in previous) a.Processor = p;
        }
    }

    private Tensor Run(IReadOnlyList<string> prompts, PromptToPromptOptions o, Tensor? startLatent, IReadOnlyList<Tensor>? nullEmbeddings, PromptToPromptController controller)
    {
        var pipe = Pipeline;
        using var _ = no_grad();
        pipe.Unet.eval(); pipe.TextEncoder.eval(); pipe.Vae.eval();
        using var scope = NewDisposeScope();
        int n = prompts.Count;
        bool guided = Math.Abs(o.GuidanceScale - 1.0) > 1e-9;
        var cond = pipe.EncodePrompts(prompts);                                              // (P, L, D)
        var empty = pipe.EncodePrompts(Enumerable.Repeat("", n).ToList());                   // (P, L, D)
        var scheduler = new DdimScheduler(pipe.Schedule);
        scheduler.SetTimesteps(o.Steps);
        var noise = startLatent ?? pipe.DrawNoise(1, o.Seed);                                // (1, C, h, w)
        var latents = noise.expand(n, noise.shape[1], noise.shape[2], noise.shape[3]) * scheduler.InitNoiseSigma;   // (P, C, h, w)
        for (int i = 0; i < scheduler.Timesteps.Count; i++)
        {
            using var stepScope = NewDisposeScope();
            var step = new SamplingStep(i, scheduler.Timesteps.Count, scheduler.Timesteps[i], 0, n, guided);
            var uncond = nullEmbeddings is null ? empty : nullEmbeddings[i].to(cond.dtype).expand(n, cond.shape[1], cond.shape[2]);
            var context = guided ? cat([uncond, cond], 0) : cond;
            var input = scheduler.ScaleModelInput(latents, i);
            var ts = full(step.Rows, step.Timestep, dtype: ScalarType.Int64);
            Tensor output;
            using (step.Enter()) output = pipe.Unet.call(guided ? cat([input, input], 0) : input, ts, context);
            if (guided)
            {
                var parts = output.chunk(2, 0);
                output = parts[0] + o.GuidanceScale * (parts[1] - parts[0]);
            }
            var next = scheduler.Step(output, i, latents);
            latents = controller.AfterStep(next, i, scheduler.Timesteps.Count).MoveToOuterDisposeScope();
            if (!latents.isfinite().all().item<bool>())
                throw new SamplingDivergedException($"prompt-to-prompt sampling diverged at step {i + 1} of {scheduler.Timesteps.Count}: the latents hold NaN or infinite values (guidance {o.GuidanceScale})", i + 1, scheduler.Timesteps.Count);
        }
        return Decode(latents).MoveToOuterDisposeScope();
    }

    /// <summary>Latents (n, C, h, w) decoded as the pipeline decodes them: (n, 1, H, W) in [−1, 1], <see cref="TextToImagePipeline.DecodeChunk"/> at a time.</summary>
    public Tensor Decode(Tensor latents)
    {
        var pipe = Pipeline;
        using var _ = no_grad();
        var vaeType = BFloat16Kernels.ComputeType(pipe.Vae);
        var images = new List<Tensor>();
        for (long i = 0; i < latents.shape[0]; i += pipe.DecodeChunk)
        {
            using var scope = NewDisposeScope();
            var decoded = pipe.Vae.DecodeScaled(latents.narrow(0, i, Math.Min(pipe.DecodeChunk, latents.shape[0] - i)).to(vaeType)).to(ScalarType.Float32);
            images.Add(TextToImagePipeline.ToGrayscale(decoded).clamp(-1, 1).MoveToOuterDisposeScope());
        }
        var all = cat(images, 0);
        foreach (var im in images) im.Dispose();
        return all;
    }
}
