using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>One denoising training step done twice on the same batch and random draws: written out, and by the library.</summary>
/// <param name="WrittenLoss">The loss of <see cref="DiffusionWalkthrough.WrittenOutLoss"/>: each operation of the step spelled out.</param>
/// <param name="LibraryLoss">The loss of <see cref="DenoisingObjective.Loss"/> (what training minimises).</param>
/// <param name="UnetGradientNorm">L2 norm of the UNet's gradient after the written-out step's backward pass (NaN when the UNet is frozen).</param>
public sealed record TrainingStepComparison(double WrittenLoss, double LibraryLoss, double UnetGradientNorm)
{
    /// <summary>|written − library| / max(|library|, 1e-12).</summary>
    public double RelativeDifference => Math.Abs(WrittenLoss - LibraryLoss) / Math.Max(Math.Abs(LibraryLoss), 1e-12);

    /// <summary>Whether the two losses agree to <paramref name="tolerance"/> (relative).</summary>
    public bool Agrees(double tolerance = 1e-4) => RelativeDifference <= tolerance;

    /// <summary>"written-out loss 0.123456, library loss 0.123456 (relative difference 1e-7): the same".</summary>
    public override string ToString() =>
        FormattableString.Invariant($"written-out loss {WrittenLoss:F6}, library loss {LibraryLoss:F6} (relative difference {RelativeDifference:G2}): {(Agrees() ? "the same" : "DIFFERENT")}; UNet gradient norm {UnetGradientNorm:G4}");
}

/// <summary>Images with one caption each, for an image grid.</summary>
/// <param name="Images">(N, 1, H, W) in [−1, 1].</param>
/// <param name="Captions">N captions.</param>
public sealed record CaptionedImages(Tensor Images, IReadOnlyList<string> Captions);

/// <summary>
/// The pieces of latent diffusion that notebook 02 opens up, each checked against the library's own code path: the
/// forward (noising) process z_t = √ᾱ_t z₀ + √(1 − ᾱ_t) ε on one image, one training step written out operation by
/// operation, and the reverse chain of a sampler decoded every few steps.
/// </summary>
public static class DiffusionWalkthrough
{
    /// <summary>The first <paramref name="count"/> training images as a denoising batch: scaled VAE latents and prompt tokens.</summary>
    public static DenoisingBatch Batch(LatentDiffusionModel model, LdmTrainingData data, int count)
    {
        int n = (int)Math.Min(count, data.Images.shape[0]);
        if (n < 1) throw new ArgumentException($"count must be at least 1 and the data non-empty (count {count}, {data.Images.shape[0]} images)", nameof(count));
        using var _ = no_grad();
        model.Vae.eval();
        var images = TextToImagePipeline.ToVaeChannels(data.Images.narrow(0, 0, n), model.Vae.Config.InChannels);
        var latents = model.Vae.EncodeScaled(images);                                          // (n, C, h, w)
        var ids = model.Tokenizer.EncodeBatch(data.Prompts.Take(n).ToList(), model.MaxTokens).Ids;   // (n, L)
        return new DenoisingBatch(latents, ids);
    }

    /// <summary>
    /// One image noised to each timestep by the forward process and decoded: what the UNet sees at each t. Each caption
    /// gives t and ᾱ_t (the fraction of the signal's variance left).
    /// </summary>
    /// <param name="vae">The autoencoder (its scaling factor is used).</param>
    /// <param name="schedule">The noise schedule.</param>
    /// <param name="image">One image (1, C, H, W) or (C, H, W) in [−1, 1].</param>
    /// <param name="timesteps">Timesteps in [0, T).</param>
    /// <param name="seed">Seed of the one noise draw shared by every timestep.</param>
    public static CaptionedImages NoisingStrip(AutoencoderKL vae, NoiseSchedule schedule, Tensor image, IReadOnlyList<int> timesteps, long seed = 0)
    {
        foreach (var t in timesteps)
            if (t < 0 || t >= schedule.TrainTimesteps) throw new ArgumentOutOfRangeException(nameof(timesteps), t, $"timesteps must be in [0, {schedule.TrainTimesteps})");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        vae.eval();
        var x = image.dim() == 3 ? image.unsqueeze(0) : image.narrow(0, 0, 1);
        var z0 = vae.EncodeScaled(TextToImagePipeline.ToVaeChannels(x, vae.Config.InChannels));   // (1, C, h, w)
        using var g = new Generator(seed: (ulong)seed);
        var eps = randn(z0.shape, generator: g);
        var frames = new List<Tensor> { x.clamp(-1, 1) };
        var captions = new List<string> { "image" };
        foreach (var t in timesteps)
        {
            var zt = schedule.AddNoise(z0, eps, tensor(new long[] { t }));
            frames.Add(TextToImagePipeline.ToGrayscale(vae.DecodeScaled(zt)).clamp(-1, 1));
            captions.Add(FormattableString.Invariant($"t={t} abar={schedule.AlphaBar(t):F2}"));
        }
        return new CaptionedImages(cat(frames, 0).MoveToOuterDisposeScope(), captions);
    }

    /// <summary>
    /// The loss of <see cref="DenoisingObjective.Loss"/> written out operation by operation, with the same random draws in
    /// the same order from a generator seeded with <paramref name="seed"/>: drop prompts, draw ε, draw t, z_t = √ᾱ_t z₀ +
    /// √(1 − ᾱ_t) ε, predict, squared error on the target, Min-SNR weights, mean. Gradients flow to the trainable parts.
    /// </summary>
    public static Tensor WrittenOutLoss(LatentDiffusionModel model, DenoisingObjective objective, DenoisingBatch batch, long seed)
    {
        using var g = new Generator(seed: (ulong)seed);
        var z0 = batch.Latents;                                                        // (B, C, h, w)
        long b = z0.shape[0];
        Tensor empty;
        using (no_grad()) empty = model.Tokenizer.EncodeBatch([""], model.MaxTokens).Ids;   // (1, L)
        var drop = rand(b, generator: g).lt(objective.PromptDropout).unsqueeze(1);    // (B, 1): these prompts become ""
        var tokens = where(drop, empty.expand(b, -1), batch.TokenIds);                // (B, L)
        var context = model.TextEncoder.call(tokens);                                  // (B, L, D)
        var eps = randn(z0.shape, generator: g);                                       // ε ~ N(0, I)
        var t = randint(0, objective.Schedule.TrainTimesteps, [b], dtype: ScalarType.Int64, generator: g);   // (B)
        var alphaBar = tensor(objective.Schedule.AlphasCumprod, dtype: ScalarType.Float64).index_select(0, t)
            .to(z0.dtype).view(-1, 1, 1, 1);                                            // (B, 1, 1, 1)
        var zt = alphaBar.sqrt() * z0 + (1 - alphaBar).sqrt() * eps;                   // the forward process
        var predicted = model.Unet.call(zt, t, context);
        var target = objective.Prediction == PredictionType.Epsilon ? eps : alphaBar.sqrt() * eps - (1 - alphaBar).sqrt() * z0;   // ε or v
        var perSample = (predicted - target).pow(2).mean([1, 2, 3]);                   // (B)
        var weights = objective.MinSnrGamma is double gamma ? objective.Schedule.MinSnrWeights(t, gamma) : ones(b);
        return (perSample * weights).mean();
    }

    /// <summary>
    /// Runs <see cref="WrittenOutLoss"/> with its backward pass and <see cref="DenoisingObjective.Loss"/> on the same
    /// batch and seed, with the UNet and text encoder in eval mode (no dropout draws) and their gradients cleared
    /// afterwards, so the model is left as it was. The two losses agree to float32 rounding.
    /// </summary>
    public static TrainingStepComparison CompareTrainingStep(LatentDiffusionModel model, DenoisingObjective objective, DenoisingBatch batch, long seed)
    {
        bool unetTraining = model.Unet.training, textTraining = model.TextEncoder.training;
        model.Unet.eval(); model.TextEncoder.eval();
        try
        {
            double written, library, norm = double.NaN;
            using (var scope = NewDisposeScope())
            {
                var loss = WrittenOutLoss(model, objective, batch, seed);
                written = loss.item<float>();
                if (loss.requires_grad)
                {
                    loss.backward();
                    var grads = model.Unet.parameters().Where(p => p.grad is not null).Select(p => p.grad!.pow(2).sum()).ToList();
                    if (grads.Count > 0) norm = Math.Sqrt(stack(grads).sum().item<float>());
                }
                model.Unet.zero_grad(); model.TextEncoder.zero_grad();
            }
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                using var g = new Generator(seed: (ulong)seed);
                library = objective.Loss(model, batch, g).item<float>();
            }
            return new TrainingStepComparison(written, library, norm);
        }
        finally
        {
            model.Unet.train(unetTraining); model.TextEncoder.train(textTraining);
        }
    }

    /// <summary>
    /// The sampler's latents x_t decoded every <paramref name="every"/> steps (and the final image): noise becoming an
    /// X-ray. Captions give the step and its timestep.
    /// </summary>
    /// <param name="pipe">The pipeline.</param>
    /// <param name="request">One prompt (only the first is used).</param>
    /// <param name="every">Decode every this many steps.</param>
    public static CaptionedImages DenoisingChain(TextToImagePipeline pipe, SampleRequest request, int every = 4)
    {
        if (every < 1) throw new ArgumentOutOfRangeException(nameof(every), every, "every must be at least 1");
        if (request.Prompts.Count < 1) throw new ArgumentException("the request needs a prompt", nameof(request));
        var one = request with { Prompts = [request.Prompts[0]], BatchSize = 1 };
        var kept = new List<Tensor>();
        var captions = new List<string>();
        var final = pipe.Sample(one, state =>
        {
            if (state.Step.Step % every != 0) return;
            // The callback's latents live only during the call: decode now, keep the image.
            kept.Add(TextToImagePipeline.ToGrayscale(pipe.Vae.DecodeScaled(state.Latents.narrow(0, 0, 1).to(ScalarType.Float32)))
                .clamp(-1, 1).DetachFromDisposeScope());
            captions.Add($"step {state.Step.Step} t={state.Step.Timestep}");
        });
        kept.Add(final);
        captions.Add($"final ({one.Steps} steps)");
        var all = cat(kept, 0);
        foreach (var k in kept) k.Dispose();
        return new CaptionedImages(all, captions);
    }
}
