using RoentGen.Nn;
using RoentGen.Platform;
using RoentGen.Text;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>One sampling request.</summary>
public sealed record SampleRequest
{
    /// <summary>One prompt per image.</summary>
    public IReadOnlyList<string> Prompts { get; init; } = [];
    /// <summary>The prompt guidance pushes away from ("" = unconditional).</summary>
    public string NegativePrompt { get; init; } = "";
    /// <summary>Classifier-free guidance scale w: ε = ε_u + w (ε_c − ε_u); 1 = no guidance.</summary>
    public double GuidanceScale { get; init; } = 4.0;
    /// <summary>Denoising steps.</summary>
    public int Steps { get; init; } = 20;
    /// <summary>The sampler.</summary>
    public SchedulerKind Scheduler { get; init; } = SchedulerKind.DpmSolverPlusPlus;
    /// <summary>DDIM's η.</summary>
    public double DdimEta { get; init; }
    /// <summary>Seed; image i's noise comes from seed + i, so an image does not depend on its batch.</summary>
    public long Seed { get; init; }
    /// <summary>Images per forward pass.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>img2img: start images (B, 1, H, W) in [−1, 1], one per prompt, or null for text-to-image.</summary>
    public Tensor? InitImages { get; init; }
    /// <summary>img2img: how much noise to add (1 = start from pure noise, 0 = return the input).</summary>
    public double Strength { get; init; } = 0.6;
    /// <summary>
    /// Starting noise (N, C, h, w) in the latent space, one per prompt, used instead of the noise drawn from
    /// <see cref="Seed"/> (and, like it, scaled by the scheduler's initial sigma; for img2img it is the noise added to
    /// the encoded images). Null draws it as <see cref="TextToImagePipeline.DrawNoise"/> does. Rows may repeat, so
    /// that several prompts share one starting latent (prompt-to-prompt).
    /// </summary>
    public Tensor? Latents { get; init; }

    /// <summary>The largest guidance scale accepted: far beyond any useful value (Stable Diffusion uses about 7.5), and low
    /// enough that the guided noise prediction stays finite.</summary>
    public const double MaxGuidanceScale = 100;

    /// <summary>Checks the numeric options: guidance in [0, <see cref="MaxGuidanceScale"/>], 1 to 10000 steps, a batch of
    /// 1 to 4096, DDIM η and strength in [0, 1]; every value finite.</summary>
    /// <exception cref="ArgumentException">An option is out of range or not finite; the message names it and the range.</exception>
    public void Validate()
    {
        if (Prompts is null || Prompts.Count == 0) throw new ArgumentException("no prompts given");
        if (!double.IsFinite(GuidanceScale) || GuidanceScale < 0 || GuidanceScale > MaxGuidanceScale)
            throw new ArgumentException($"guidance scale must be >= 0 and at most {MaxGuidanceScale} (a finite number; 1 = no guidance), got {GuidanceScale}");
        ModelSize.InRange(nameof(Steps), Steps, 1, 10_000);
        ModelSize.InRange(nameof(BatchSize), BatchSize, 1, 4096);
        ModelSize.InRange(nameof(DdimEta), DdimEta, 0, 1);
        ModelSize.InRange(nameof(Strength), Strength, 0, 1);
    }
}

/// <summary>
/// Sampling produced NaN or infinite latents or pixels (diverging weights, an extreme guidance scale): an error naming the
/// step, rather than a black image.
/// </summary>
public sealed class SamplingDivergedException(string message, int step, int steps) : InvalidOperationException(message)
{
    /// <summary>The 1-based step whose output was not finite (0 for the decoder, after the last step).</summary>
    public int Step { get; } = step;
    /// <summary>Steps in the run.</summary>
    public int Steps { get; } = steps;
}

/// <summary>What a step callback of <see cref="TextToImagePipeline.Sample(SampleRequest, Action{SamplingStepState})"/> is given.</summary>
/// <remarks>
/// <see cref="Latents"/> is a view of the pipeline's own tensor, valid only during the call: it is disposed when the
/// callback returns. Do not modify it in place; to keep it, take <c>Latents.clone().DetachFromDisposeScope()</c>
/// (tensors the callback makes are disposed with the call's dispose scope otherwise).
/// </remarks>
/// <param name="Step">The step, its timestep and the batch's prompts and guidance layout.</param>
/// <param name="Latents">The latents (n, C, h, w) this step starts from (x_t, before the UNet call), n = <see cref="SamplingStep.BatchCount"/>.</param>
public sealed record SamplingStepState(SamplingStep Step, Tensor Latents);

/// <summary>
/// Text-to-image sampling for latent diffusion, in the few numbered steps of diffusers' pipeline: encode the
/// prompts and the negative prompt; make initial latents; denoise with conditional and unconditional passes
/// batched together and combined by classifier-free guidance (Ho and Salimans 2022); decode.
/// </summary>
public sealed class TextToImagePipeline
{
    /// <summary>Creates a pipeline over trained components.</summary>
    public TextToImagePipeline(AutoencoderKL vae, UNet2DConditionModel unet, ClipTextModel textEncoder, BpeTokenizer tokenizer, NoiseSchedule schedule, int latentSize, int maxTokens)
    {
        Vae = vae; Unet = unet; TextEncoder = textEncoder; Tokenizer = tokenizer; Schedule = schedule;
        LatentSize = latentSize; MaxTokens = maxTokens;
    }

    /// <summary>Creates a pipeline over a model's parts (shared, not copied).</summary>
    public TextToImagePipeline(LatentDiffusionModel model)
        : this(model.Vae, model.Unet, model.TextEncoder, model.Tokenizer, new NoiseSchedule(model.Scheduler), model.LatentSize, model.MaxTokens)
    {
    }

    /// <summary>The autoencoder.</summary>
    public AutoencoderKL Vae { get; }
    /// <summary>The denoiser.</summary>
    public UNet2DConditionModel Unet { get; }
    /// <summary>The text encoder.</summary>
    public ClipTextModel TextEncoder { get; }
    /// <summary>The tokenizer.</summary>
    public BpeTokenizer Tokenizer { get; }
    /// <summary>The training noise schedule.</summary>
    public NoiseSchedule Schedule { get; }
    /// <summary>Latent side.</summary>
    public int LatentSize { get; }
    /// <summary>Token sequence length.</summary>
    public int MaxTokens { get; }

    /// <summary>Images decoded per VAE call at the end of sampling (1: VAE slicing, one image at a time).</summary>
    public int DecodeChunk { get; set; } = 2;

    /// <summary>Tiled decoding of the final latents (<see cref="Diffusion.VaeTiling"/>: close to, not equal to, the whole decode), or null to decode each image whole.</summary>
    public VaeTiling? VaeTiling { get; set; }

    /// <summary>
    /// Attention slicing: every attention module of the UNet and the VAE computes its attention over chunks of at most
    /// <paramref name="queryChunk"/> queries (<see cref="SlicedAttentionProcessor"/>; equal to the whole computation up to
    /// float rounding); null installs the default fused processor again. Replaces any processor installed before.
    /// </summary>
    public void SetAttentionSlicing(int? queryChunk)
    {
        IAttentionProcessor processor = queryChunk is int q ? new SlicedAttentionProcessor(q) : ScaledDotProductProcessor.Instance;
        Unet.SetAttentionProcessor(_ => processor);
        foreach (var a in Vae.modules().OfType<MultiHeadAttention>()) a.Processor = processor;
    }

    /// <summary>
    /// Arithmetic of the UNet calls (float32 by default). With bfloat16 (or Auto on a CPU with AVX-512 BF16) a float32
    /// UNet runs through a bfloat16 copy of its weights (<see cref="BFloat16Shadow{TModule}"/>, refreshed from the UNet at
    /// the start of every <c>Sample</c> call and given the UNet's attention processors), while the latents, the guidance
    /// combination, the scheduler's update, the text encoder and the decoder stay float32. A UNet loaded in half precision
    /// computes in its own type whatever this says.
    /// </summary>
    public Precision Precision { get; set; } = Precision.Float32;

    /// <summary>
    /// Return freed native memory to the system (glibc's malloc_trim; a no-op where it is missing) before every this many
    /// denoising steps after the first; 0 never trims. Sampling's memory beyond one UNet call comes from freed blocks of
    /// earlier steps that the native heap keeps but cannot reuse, not from live tensors. Trimming is not free: each trim
    /// hands back pages that the next step faults in again, and a page fault is dear in a virtual machine. Quick model on
    /// the 2-core machine (`roentgen bench --only ldm`, one run each; peak is weights + what sampling adds, over weights +
    /// one guided UNet call; images/s float32 / bfloat16): every step 1.17x, 2.7 / 3.1; every 2 steps (the default)
    /// 1.48x, 4.0 / 5.6; every 4 1.51x, 4.9 / 5.9; every 8 1.64x, 6.6 / 8.0; never 1.78x, 10.8 / 13.4. Jobs that sample
    /// many images from a small model (the quickstart's evaluation) set 0.
    /// </summary>
    public int TrimNativeHeapEvery
    {
        get => _trimEvery;
        set => _trimEvery = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "TrimNativeHeapEvery must be 0 (never) or a number of steps");
    }
    private int _trimEvery = 2;

    private BFloat16Shadow<UNet2DConditionModel>? _bf16Unet;

    // The module that computes the UNet calls of one Sample call: the UNet, or its refreshed bfloat16 copy.
    private UNet2DConditionModel ComputeUnet()
    {
        if (Precisions.Resolve(Precision) != Precision.BFloat16 || BFloat16Kernels.ComputeType(Unet) != ScalarType.Float32) return Unet;
        _bf16Unet ??= new BFloat16Shadow<UNet2DConditionModel>(Unet, () => new UNet2DConditionModel(Unet.Config));
        _bf16Unet.PullWeights();
        foreach (var (master, copy) in Unet.AttentionModules.Zip(_bf16Unet.Compute.AttentionModules)) copy.Processor = master.Processor;
        return _bf16Unet.Compute;
    }

    /// <summary>
    /// Grayscale images (B, 1, H, W) for a VAE of <paramref name="channels"/> input channels: the one channel repeated
    /// (a chest X-ray shown to Stable Diffusion's 3-channel VAE as an RGB image with equal channels). Images that already
    /// have that many channels are returned as they are (an alias).
    /// </summary>
    /// <exception cref="ArgumentException">The images have neither 1 nor <paramref name="channels"/> channels.</exception>
    public static Tensor ToVaeChannels(Tensor images, int channels)
    {
        if (images.shape[1] == channels) return images.alias();
        if (images.shape[1] != 1)
            throw new ArgumentException($"images have {images.shape[1]} channels; the VAE takes {channels} (or 1, repeated)", nameof(images));
        return images.expand(images.shape[0], channels, images.shape[2], images.shape[3]).contiguous();
    }

    /// <summary>
    /// Decoded images (B, C, H, W) as grayscale (B, 1, H, W): the mean over the channels (Stable Diffusion's VAE decodes
    /// RGB; a chest X-ray is the average of its nearly equal channels). One-channel images are returned as they are (an alias).
    /// </summary>
    public static Tensor ToGrayscale(Tensor images) => images.shape[1] == 1 ? images.alias() : images.mean([1], keepdim: true);

    /// <summary>Text tokens (B, L, D) for prompts.</summary>
    public Tensor EncodePrompts(IReadOnlyList<string> prompts)
    {
        using var scope = NewDisposeScope();
        var batch = Tokenizer.EncodeBatch(prompts, MaxTokens);
        return TextEncoder.call(batch.Ids).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="Sample(SampleRequest, Action{int, int}?)"/> with a progress bar over all batches' steps.</summary>
    public Tensor SampleWithProgress(SampleRequest request, string title)
    {
        int batches = (request.Prompts.Count + request.BatchSize - 1) / request.BatchSize;
        using var progress = ProgressReporter.Start(title, (long)batches * request.Steps, "steps");
        return Sample(request, (_, _) => progress.Advance());
    }

    /// <summary>The shape (count, C, h, w) of <paramref name="count"/> starting latents.</summary>
    public long[] LatentShape(int count) => [count, Vae.Config.LatentChannels, LatentSize, LatentSize];

    /// <summary>
    /// The starting noise (count, C, h, w) that <see cref="Sample(SampleRequest, Action{int, int}?)"/> draws when
    /// <see cref="SampleRequest.Latents"/> is null: image i from its own generator seeded with seed + i, so an image
    /// does not depend on its batch. Unscaled (the pipeline multiplies by the scheduler's initial sigma).
    /// </summary>
    public Tensor DrawNoise(int count, long seed)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "noise count must be positive");
        var shape = LatentShape(1);
        var rows = Enumerable.Range(0, count).Select(i =>
        {
            using var g = new Generator(seed: (ulong)(seed + i));
            return randn(shape, generator: g);                      // (1, C, h, w)
        }).ToList();
        var noise = cat(rows, 0);                                   // (count, C, h, w)
        foreach (var row in rows) row.Dispose();
        return noise;
    }

    /// <summary>Generates images (B, 1, H, W) in [−1, 1], one per prompt (a VAE with more output channels is averaged to one, <see cref="ToGrayscale"/>); <paramref name="onStep"/> gets (steps done, steps) after each step.</summary>
    public Tensor Sample(SampleRequest request, Action<int, int>? onStep = null) => Run(request, onStep, null);

    /// <summary>
    /// Generates images (B, 1, H, W) in [−1, 1], one per prompt; <paramref name="onStep"/> is called once per denoising
    /// step of each batch, before the UNet call, with the latents the step starts from (see <see cref="SamplingStepState"/>
    /// for how long they live).
    /// </summary>
    public Tensor Sample(SampleRequest request, Action<SamplingStepState> onStep)
    {
        ArgumentNullException.ThrowIfNull(onStep);
        return Run(request, null, onStep);
    }

    private Tensor Run(SampleRequest request, Action<int, int>? onStepDone, Action<SamplingStepState>? onStep)
    {
        request.Validate();
        if (request.InitImages is { } init && init.shape[0] != request.Prompts.Count)
            throw new ArgumentException($"{init.shape[0]} init images for {request.Prompts.Count} prompts");
        if (request.Latents is { } given && !given.shape.SequenceEqual(LatentShape(request.Prompts.Count)))
            throw new ArgumentException(
                $"starting latents have shape [{string.Join(", ", given.shape)}]; expected [{string.Join(", ", LatentShape(request.Prompts.Count))}] " +
                $"(one per prompt for {request.Prompts.Count} prompts, latent channels and side of this pipeline)", nameof(request));
        using var _ = no_grad();
        Unet.eval(); TextEncoder.eval(); Vae.eval();
        var unet = ComputeUnet();
        var outputs = new List<Tensor>();
        for (int start = 0; start < request.Prompts.Count; start += request.BatchSize)
        {
            int n = Math.Min(request.BatchSize, request.Prompts.Count - start);
            using var scope = NewDisposeScope();
            var prompts = request.Prompts.Skip(start).Take(n).ToList();
            var images = SampleBatch(unet, request, prompts, start, onStepDone, onStep);
            outputs.Add(images.MoveToOuterDisposeScope());
        }
        var all = cat(outputs, 0);
        foreach (var o in outputs) o.Dispose();
        return all;
    }

    private Tensor SampleBatch(UNet2DConditionModel unet, SampleRequest r, List<string> prompts, int offset, Action<int, int>? onStepDone, Action<SamplingStepState>? onStep)
    {
        int n = prompts.Count;
        // 1. Text: conditional and unconditional (negative prompt) contexts, stacked for one UNet pass.
        bool guided = Math.Abs(r.GuidanceScale - 1.0) > 1e-9;
        var cond = EncodePrompts(prompts);
        var context = guided ? cat([EncodePrompts(Enumerable.Repeat(r.NegativePrompt, n).ToList()), cond], 0) : cond;
        // Models loaded in half precision (DiffusersLoadOptions.DType) take their inputs in their own dtype; images come out float32.
        var unetType = BFloat16Kernels.ComputeType(Unet);
        var vaeType = BFloat16Kernels.ComputeType(Vae);
        if (context.dtype != unetType) context = context.to(unetType);

        // 2. Sampler and initial latents: per-image generators so results do not depend on the batching.
        var scheduler = NoiseScheduler.Create(r.Scheduler, Schedule, r.DdimEta);
        scheduler.SetTimesteps(r.Steps);
        var noise = r.Latents is { } given ? given.narrow(0, offset, n) : DrawNoise(n, r.Seed + offset);   // (n, C, h, w)
        int first = 0;
        Tensor latents;
        if (r.InitImages is { } init)
        {
            // img2img: encode, then noise to the timestep that matches the strength, and skip the earlier steps.
            first = Math.Clamp((int)Math.Round(r.Steps * (1 - r.Strength)), 0, r.Steps);
            if (first >= r.Steps) return init.narrow(0, offset, n).clone();
            var x0 = Vae.EncodeScaled(ToVaeChannels(init.narrow(0, offset, n), Vae.Config.InChannels).to(vaeType)).to(noise.dtype);
            var t = full(n, scheduler.Timesteps[first], dtype: ScalarType.Int64);
            latents = Schedule.AddNoise(x0, noise, t) * (r.Scheduler == SchedulerKind.Euler ? scheduler.InitNoiseSigma : 1.0);
        }
        else
        {
            latents = noise * scheduler.InitNoiseSigma;
        }
        if (latents.dtype != unetType) latents = latents.to(unetType);

        // 3. Denoising loop with classifier-free guidance.
        for (int i = first; i < scheduler.Timesteps.Count; i++)
        {
            if (_trimEvery > 0 && i > first && (i - first) % _trimEvery == 0) Memory.TrimNativeHeap();   // the previous step's scope is freed by now
            var step = new SamplingStep(i, scheduler.Timesteps.Count, scheduler.Timesteps[i], offset, n, guided);
            if (onStep is not null)
            {
                using var callbackScope = NewDisposeScope();
                onStep(new SamplingStepState(step, latents.alias()));
            }
            using var stepScope = NewDisposeScope();
            var input = scheduler.ScaleModelInput(latents, i);
            var ts = full(step.Rows, step.Timestep, dtype: ScalarType.Int64);
            Tensor output;
            using (step.Enter()) output = unet.call(guided ? cat([input, input], 0) : input, ts, context);   // (rows, C, h, w)
            if (output.dtype != latents.dtype) output = output.to(latents.dtype);   // a bfloat16 copy: guidance and the update in float32
            if (guided)
            {
                var parts = output.chunk(2, 0);
                output = parts[0] + r.GuidanceScale * (parts[1] - parts[0]);
            }
            latents = scheduler.Step(output, i, latents).MoveToOuterDisposeScope();
            if (!latents.isfinite().all().item<bool>())
                throw new SamplingDivergedException(
                    $"sampling diverged: the latents after step {i + 1} of {scheduler.Timesteps.Count} (timestep {step.Timestep}, prompts {offset + 1} to {offset + n}) hold NaN or infinite values; " +
                    $"expected finite latents (check the model's weights and the guidance scale {r.GuidanceScale})", i + 1, scheduler.Timesteps.Count);
            onStepDone?.Invoke(i + 1, scheduler.Timesteps.Count);
        }

        // 4. Decode, a few images at a time: the decoder works at full resolution, so decoding the whole batch at once
        // would hold more activations than a UNet call does.
        var images = new List<Tensor>();
        for (long i = 0; i < n; i += DecodeChunk)
        {
            using var decodeScope = NewDisposeScope();
            var chunk = latents.narrow(0, i, Math.Min(DecodeChunk, n - i)).to(vaeType);
            var decoded = (VaeTiling is { } tiling ? tiling.Decode(Vae, chunk / Vae.Config.ScalingFactor) : Vae.DecodeScaled(chunk)).to(ScalarType.Float32);
            if (!decoded.isfinite().all().item<bool>())
                throw new SamplingDivergedException(
                    $"sampling diverged: the VAE decoder turned finite latents of prompts {offset + i + 1} to {offset + i + decoded.shape[0]} into NaN or infinite pixels; expected finite images (check the VAE's weights)",
                    0, scheduler.Timesteps.Count);
            images.Add(ToGrayscale(decoded).clamp(-1, 1).MoveToOuterDisposeScope());
        }
        return images.Count == 1 ? images[0] : cat(images, 0);
    }
}
