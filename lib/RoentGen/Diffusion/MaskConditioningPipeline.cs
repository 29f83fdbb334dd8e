using RoentGen.Data;
using RoentGen.Synthetic;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>
/// Sampling of a <see cref="MaskConditionedModel"/> (text + masks), in the steps of <see cref="TextToImagePipeline"/>:
/// encode the reports and the empty prompt; start from per-image noise (image i from seed + i); denoise with the
/// conditional and unconditional passes batched together, both given the masks, combined by classifier-free guidance
/// over the text; decode with the base VAE. Images come out in [0, 1].
/// </summary>
public sealed class MaskConditioningPipeline : IMaskConditionedGenerator
{
    private readonly TextToImagePipeline _text;

    /// <summary>Creates a pipeline over a model (shared, not copied).</summary>
    public MaskConditioningPipeline(MaskConditionedModel model)
    {
        Model = model;
        _text = model.Base.ToPipeline();
    }

    /// <summary>The model.</summary>
    public MaskConditionedModel Model { get; }
    /// <summary>Denoising steps.</summary>
    public int Steps { get; set; } = 20;
    /// <summary>Classifier-free guidance over the text (1: none).</summary>
    public double GuidanceScale { get; set; } = 4.0;
    /// <summary>The sampler.</summary>
    public SchedulerKind Scheduler { get; set; } = SchedulerKind.DpmSolverPlusPlus;
    /// <summary>Images per UNet pass (does not change the images).</summary>
    public int BatchSize { get; set; } = 8;

    /// <inheritdoc />
    public int ImageSize => Model.ImageSize;
    /// <inheritdoc />
    public IReadOnlyList<string> MaskChannels => Model.MaskChannels;

    /// <inheritdoc />
    public IReadOnlyList<GrayImage> Generate(IReadOnlyList<MaskCondition> conditions, long seed, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        if (conditions.Count == 0) return [];
        new SampleRequest { Prompts = ["x"], Steps = Steps, GuidanceScale = GuidanceScale, BatchSize = BatchSize }.Validate();
        using var _ = no_grad();
        Model.Base.Unet.eval(); Model.Base.TextEncoder.eval(); Model.Base.Vae.eval(); Model.Trainable.eval();
        var result = new List<GrayImage>();
        for (int start = 0; start < conditions.Count; start += BatchSize)
        {
            using var scope = NewDisposeScope();
            var batch = conditions.Skip(start).Take(BatchSize).ToList();
            result.AddRange(ImageTensors.Unstack(SampleBatch(batch, seed + start), -1f, 1f));
            progress?.Invoke(result.Count, conditions.Count);
        }
        return result;
    }

    private Tensor SampleBatch(List<MaskCondition> batch, long seed)
    {
        int n = batch.Count;
        bool guided = Math.Abs(GuidanceScale - 1.0) > 1e-9;
        var cond = _text.EncodePrompts(batch.Select(Model.PromptOf).ToList());                       // (n, L, D)
        var context = guided ? cat([_text.EncodePrompts(Enumerable.Repeat("", n).ToList()), cond], 0) : cond;
        var masks = MaskConditionedModel.MaskTensor(batch, Model.MaskChannels, ImageSize);          // (n, M, S, S)
        if (guided) masks = cat([masks, masks], 0);
        var scheduler = NoiseScheduler.Create(Scheduler, _text.Schedule);
        scheduler.SetTimesteps(Steps);
        var latents = _text.DrawNoise(n, seed) * scheduler.InitNoiseSigma;                           // (n, C, h, w)
        for (int i = 0; i < scheduler.Timesteps.Count; i++)
        {
            using var stepScope = NewDisposeScope();
            var input = scheduler.ScaleModelInput(latents, i);
            var ts = full(guided ? 2 * n : n, scheduler.Timesteps[i], dtype: ScalarType.Int64);
            var output = Model.Predict(guided ? cat([input, input], 0) : input, ts, context, masks);
            if (guided)
            {
                var parts = output.chunk(2, 0);
                output = parts[0] + GuidanceScale * (parts[1] - parts[0]);
            }
            latents = scheduler.Step(output, i, latents).MoveToOuterDisposeScope();
            if (!latents.isfinite().all().item<bool>())
                throw new SamplingDivergedException($"mask-conditioned sampling diverged: the latents after step {i + 1} of {scheduler.Timesteps.Count} hold NaN or infinite values; expected finite latents (check the model and the guidance scale {GuidanceScale})",
                    i + 1, scheduler.Timesteps.Count);
        }
        var decoded = Model.Base.Vae.DecodeScaled(latents).to(ScalarType.Float32);
        return TextToImagePipeline.ToGrayscale(decoded).clamp(-1, 1);                               // (n, 1, S, S)
    }
}

/// <summary>
/// The text-only baseline of mask adherence: a latent diffusion model given each condition's report as its prompt and
/// no masks (<see cref="MaskChannels"/> is empty), sampled as <see cref="TextToImagePipeline"/> samples (image i from
/// seed + i). Only what the report says of a finding's side and size can make its image match the masks.
/// </summary>
public sealed class TextOnlyMaskBaseline : IMaskConditionedGenerator
{
    /// <summary>Creates the baseline over a text-to-image pipeline and the prompt source its model was trained with.</summary>
    public TextOnlyMaskBaseline(TextToImagePipeline pipeline, PromptSource prompt = PromptSource.ImpressionAndFindings)
    {
        Pipeline = pipeline;
        Prompt = prompt;
    }

    /// <summary>The pipeline.</summary>
    public TextToImagePipeline Pipeline { get; }
    /// <summary>Which part of a report is the prompt.</summary>
    public PromptSource Prompt { get; }
    /// <summary>Denoising steps.</summary>
    public int Steps { get; set; } = 20;
    /// <summary>Classifier-free guidance scale.</summary>
    public double GuidanceScale { get; set; } = 4.0;
    /// <summary>The sampler.</summary>
    public SchedulerKind Scheduler { get; set; } = SchedulerKind.DpmSolverPlusPlus;
    /// <summary>Images per UNet pass.</summary>
    public int BatchSize { get; set; } = 8;

    /// <inheritdoc />
    public int ImageSize => Pipeline.LatentSize * Pipeline.Vae.Config.DownsampleFactor;
    /// <inheritdoc />
    public IReadOnlyList<string> MaskChannels => [];

    /// <inheritdoc />
    public IReadOnlyList<GrayImage> Generate(IReadOnlyList<MaskCondition> conditions, long seed, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        if (conditions.Count == 0) return [];
        var request = new SampleRequest
        {
            Prompts = conditions.Select(c => MaskConditionedModel.PromptOf(c, Prompt)).ToList(), Seed = seed, Steps = Steps,
            GuidanceScale = GuidanceScale, Scheduler = Scheduler, BatchSize = BatchSize,
        };
        int batchesDone = 0;
        using var images = Pipeline.Sample(request, (done, total) =>
        {
            if (done == total) progress?.Invoke(Math.Min(++batchesDone * BatchSize, conditions.Count), conditions.Count);   // a batch finished
        });
        return ImageTensors.Unstack(images, -1f, 1f);
    }
}

/// <summary>Loads the mask-conditioned generators the synthetic-data study and the CLI use.</summary>
public static class MaskConditionedModels
{
    /// <summary>
    /// The generator saved in <paramref name="folder"/> (a <c>roentgen masks train</c> run folder, or its model/ folder):
    /// a <see cref="MaskConditioningPipeline"/> over the ControlNet or input-concat model, with the default sampler settings.
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder holds no mask-conditioned model; the message says where it looked and how to train one.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or a part does not fit.</exception>
    public static IMaskConditionedGenerator Load(string folder) => new MaskConditioningPipeline(MaskConditionedModel.Load(folder));

    /// <summary>The content fingerprint (<see cref="Platform.ModelFingerprint.Of"/>) of the mask-conditioned model in <paramref name="folder"/> (a run folder or its model/ folder).</summary>
    /// <exception cref="FileNotFoundException">The folder holds no mask-conditioned model.</exception>
    public static string Fingerprint(string folder) => Platform.ModelFingerprint.Of(MaskConditionedModel.Resolve(folder)
        ?? throw new FileNotFoundException($"{folder} is not a mask-conditioned model (no {MaskConditionedModel.IndexFile} there or in its {MaskConditioningRuns.ModelFolder}/ folder)"));

    /// <summary>The text-only baseline of a saved mask-conditioned model: its frozen base model given the reports alone.</summary>
    /// <exception cref="FileNotFoundException">The folder holds no mask-conditioned model.</exception>
    public static TextOnlyMaskBaseline TextOnly(string folder)
    {
        var model = MaskConditionedModel.Load(folder);
        return new TextOnlyMaskBaseline(model.Base.ToPipeline(), model.Prompt);
    }
}
