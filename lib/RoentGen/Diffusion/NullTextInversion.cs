using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>Options of <see cref="NullTextInversion"/> (Mokady et al. 2023).</summary>
public sealed record NullTextOptions
{
    /// <summary>DDIM steps of the inversion and of the later edit (they must match).</summary>
    public int Steps { get; init; } = 50;
    /// <summary>Guidance scale of the edit the embeddings are optimised for (the paper: 7.5; PairAug generates at 4).</summary>
    public double GuidanceScale { get; init; } = 4;
    /// <summary>Adam iterations per step at most (the paper: 10).</summary>
    public int InnerIterations { get; init; } = 10;
    /// <summary>Adam learning rate at step 0; step i uses it times (1 − i / (2·steps)) (the paper: 1e−2 decaying over 100 steps).</summary>
    public double LearningRate { get; init; } = 1e-2;
    /// <summary>A step's iterations stop early once the latent error is below this (the paper: 1e−5).</summary>
    public double EarlyStopLoss { get; init; } = 1e-5;

    /// <summary>Checks the ranges.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        Nn.ModelSize.InRange(nameof(Steps), Steps, 1, 10_000);
        Nn.ModelSize.InRange(nameof(InnerIterations), InnerIterations, 0, 10_000);
        Nn.ModelSize.InRange(nameof(GuidanceScale), GuidanceScale, 0, SampleRequest.MaxGuidanceScale);
        Nn.ModelSize.InRange(nameof(LearningRate), LearningRate, 0, 10);
    }
}

/// <summary>What null-text inversion of one image gives.</summary>
/// <param name="EncodedLatent">The image's latent z₀ (1, C, h, w).</param>
/// <param name="StartLatent">z_T of the DDIM inversion (1, C, h, w): the starting latent of an edit.</param>
/// <param name="NullEmbeddings">Per step, the optimised unconditional text tokens (1, L, D).</param>
/// <param name="PlainInversionError">Mean squared error between z₀ and the guided DDIM sample from z_T with the empty prompt's embeddings.</param>
/// <param name="NullTextError">Mean squared error between z₀ and the guided DDIM sample from z_T with the optimised embeddings.</param>
public sealed record NullTextResult(Tensor EncodedLatent, Tensor StartLatent, IReadOnlyList<Tensor> NullEmbeddings, double PlainInversionError, double NullTextError);

/// <summary>
/// Real-image editing: DDIM inversion of the image's latent under the source prompt (guidance 1), then null-text
/// optimisation (Mokady et al. 2023): per step, the unconditional embedding is optimised so that the guided DDIM step
/// from the current latent lands on the inversion's latent of the next step; the edit then starts from z_T with these
/// embeddings (<see cref="PromptToPromptEditor.Edit"/>'s nullEmbeddings).
/// </summary>
public static class NullTextInversion
{
    /// <summary>The DDIM inversion trajectory: latents at Timesteps[0..N−1] (index 0 the noisiest) and, last, z₀ itself.</summary>
    public static IReadOnlyList<Tensor> Invert(TextToImagePipeline pipe, Tensor z0, Tensor cond, int steps)
    {
        using var _ = no_grad();
        var ddim = new DdimScheduler(pipe.Schedule);
        ddim.SetTimesteps(steps);
        var trajectory = new Tensor[steps + 1];
        trajectory[steps] = z0.clone();
        var x = z0;
        for (int index = steps - 1; index >= 0; index--)
        {
            using var scope = NewDisposeScope();
            var t = full(1, ddim.Timesteps[index], dtype: ScalarType.Int64);
            var eps = pipe.Unet.call(x, t, cond);
            x = ddim.InvertStep(eps, index, x).MoveToOuterDisposeScope();
            trajectory[index] = x;
        }
        return trajectory;
    }

    /// <summary>
    /// Inverts a real image (1, 1, H, W) in [−1, 1] under <paramref name="prompt"/> and optimises the null-text
    /// embeddings; reports the latent reconstruction error of plain inversion and of null-text inversion at
    /// <see cref="NullTextOptions.GuidanceScale"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The image is not one (1, 1|C, H, W) image.</exception>
    public static NullTextResult Run(TextToImagePipeline pipe, Tensor image, string prompt, NullTextOptions options)
    {
        options.Validate();
        if (image.dim() != 4 || image.shape[0] != 1)
            throw new ArgumentException($"null-text inversion takes one image (1, 1, H, W); got ({string.Join(", ", image.shape)})", nameof(image));
        pipe.Unet.eval(); pipe.TextEncoder.eval(); pipe.Vae.eval();
        using var outer = NewDisposeScope();
        Tensor z0, cond, empty;
        using (no_grad())
        {
            z0 = pipe.Vae.EncodeScaled(TextToImagePipeline.ToVaeChannels(image, pipe.Vae.Config.InChannels)).to(ScalarType.Float32);
            cond = pipe.EncodePrompts([prompt]);                     // (1, L, D)
            empty = pipe.EncodePrompts([""]);                        // (1, L, D)
        }
        var trajectory = Invert(pipe, z0, cond, options.Steps);
        var ddim = new DdimScheduler(pipe.Schedule);
        ddim.SetTimesteps(options.Steps);
        double w = options.GuidanceScale;

        Tensor Guided(Tensor latent, int i, Tensor uncond, Tensor condEps)
        {
            var t = full(1, ddim.Timesteps[i], dtype: ScalarType.Int64);
            var u = pipe.Unet.call(latent, t, uncond);
            return u + w * (condEps - u);
        }
        Tensor CondEps(Tensor latent, int i) => pipe.Unet.call(latent, full(1, ddim.Timesteps[i], dtype: ScalarType.Int64), cond);

        // Plain inversion's reconstruction with the empty prompt.
        double plainError;
        using (no_grad())
        {
            var x = trajectory[0];
            for (int i = 0; i < options.Steps; i++)
            {
                using var scope = NewDisposeScope();
                x = ddim.Step(Guided(x, i, empty, CondEps(x, i)), i, x).MoveToOuterDisposeScope();
            }
            plainError = nn.functional.mse_loss(x, z0).item<float>();
        }

        // Null-text optimisation, step by step along the trajectory.
        var parameters = pipe.Unet.parameters().ToList();
        var requires = parameters.Select(p => p.requires_grad).ToList();
        foreach (var p in parameters) p.requires_grad = false;
        var embeddings = new List<Tensor>();
        double nullError;
        try
        {
            var latent = trajectory[0];
            var current = empty.clone();
            for (int i = 0; i < options.Steps; i++)
            {
                using var stepScope = NewDisposeScope();
                Tensor condEps;
                using (no_grad()) condEps = CondEps(latent, i);
                var uncond = new TorchSharp.Modules.Parameter(current.detach().clone());
                double lr = options.LearningRate * Math.Max(1 - i / (2.0 * options.Steps), 0.5);
                using var optimizer = optim.Adam([uncond], lr);
                var target = trajectory[i + 1];
                for (int j = 0; j < options.InnerIterations; j++)
                {
                    using var iterScope = NewDisposeScope();
                    optimizer.zero_grad();
                    var prev = ddim.Step(Guided(latent, i, uncond, condEps), i, latent);
                    var loss = nn.functional.mse_loss(prev, target);
                    loss.backward();
                    optimizer.step();
                    if (loss.item<float>() < options.EarlyStopLoss) break;
                }
                using (no_grad())
                {
                    var kept = uncond.detach().clone();
                    latent = ddim.Step(Guided(latent, i, kept, condEps), i, latent).MoveToOuterDisposeScope();
                    current = kept.MoveToOuterDisposeScope();
                    embeddings.Add(kept.clone().DetachFromDisposeScope());
                }
            }
            nullError = nn.functional.mse_loss(latent, z0).item<float>();
        }
        finally
        {
            for (int k = 0; k < parameters.Count; k++) parameters[k].requires_grad = requires[k];
        }
        var result = new NullTextResult(z0.DetachFromDisposeScope(), trajectory[0].DetachFromDisposeScope(), embeddings, plainError, nullError);
        return result;
    }
}
