using System.Diagnostics;
using RoentGen.Data.Datasets;
using RoentGen.Interop.Diffusers;
using RoentGen.Nn;
using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>What a fine-tuning run trains.</summary>
public enum FineTuneMode
{
    /// <summary>Every UNet weight; the text encoder and the VAE frozen.</summary>
    Unet,
    /// <summary>Every UNet and text-encoder weight (as RoentGen fine-tuned Stable Diffusion); the VAE frozen.</summary>
    UnetAndText,
    /// <summary>Low-rank adapters on the UNet's attention projections only (<see cref="LoraConfig"/>); everything else frozen.</summary>
    Lora,
}

/// <summary>
/// A fine-tuning job of a loaded model (a diffusers Stable Diffusion folder, or a model folder trained here): which weights,
/// which data, what trains, and how long. Pinned in the run folder, so an interrupted run resumes only with the same job.
/// </summary>
public sealed record FineTuneConfig
{
    /// <summary>The model folder to start from (a diffusers folder or a latent-diffusion folder trained here).</summary>
    public string Weights { get; init; } = "";
    /// <summary><see cref="LdmTrainingData.Phantoms"/>, or a labels.csv (or a folder holding one).</summary>
    public string Data { get; init; } = LdmTrainingData.Phantoms;
    /// <summary>What trains.</summary>
    public FineTuneMode Train { get; init; } = FineTuneMode.Lora;
    /// <summary>The adapters (when <see cref="Train"/> is <see cref="FineTuneMode.Lora"/>).</summary>
    public LoraConfig Lora { get; init; } = new();
    /// <summary>Optimizer steps (may grow: a finished run continues to more).</summary>
    public int Steps { get; init; } = 100;
    /// <summary>Images per step.</summary>
    public int Batch { get; init; } = 1;
    /// <summary>Peak learning rate of the UNet (or the adapters). diffusers' LoRA script uses 1e-4; full fine-tuning wants about 1e-5.</summary>
    public double Lr { get; init; } = 1e-4;
    /// <summary>Peak learning rate of the text encoder (UnetAndText); null: <see cref="Lr"/>.</summary>
    public double? TextLr { get; init; }
    /// <summary>Linear warm-up steps.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Image side in pixels; null: the model's native size (its latent side times the VAE's downsampling).</summary>
    public int? Resolution { get; init; }
    /// <summary>Phantom images (when <see cref="Data"/> is phantoms).</summary>
    public int PhantomImages { get; init; } = 16;
    /// <summary>Phantom world seed.</summary>
    public long PhantomSeed { get; init; } = 7;
    /// <summary>Which part of a report becomes the prompt.</summary>
    public PromptSource Prompt { get; init; } = PromptSource.ImpressionAndFindings;
    /// <summary>Probability of training a prompt as the empty prompt (keeps classifier-free guidance working).</summary>
    public double PromptDropout { get; init; } = 0.1;
    /// <summary>Min-SNR-γ weighting, or null for the plain mean squared error (diffusers' scripts' default).</summary>
    public double? MinSnrGamma { get; init; }
    /// <summary>Seed of the adapters' initial A, the data order, noise and timesteps.</summary>
    public long Seed { get; init; }

    /// <summary>Checks every field's range.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Weights)) throw new ArgumentException("Weights: a model folder is required");
        if (string.IsNullOrWhiteSpace(Data)) throw new ArgumentException($"Data: '{LdmTrainingData.Phantoms}' or a labels.csv is required");
        ModelSize.InRange(nameof(Steps), Steps, 1, 10_000_000);
        ModelSize.InRange(nameof(Batch), Batch, 1, 4096);
        ModelSize.InRange(nameof(WarmupSteps), WarmupSteps, 0, 10_000_000);
        ModelSize.InRange(nameof(PhantomImages), PhantomImages, 1, 1_000_000);
        if (Resolution is int r) ModelSize.InRange(nameof(Resolution), r, 8, 4096);
        foreach (var (name, lr) in new[] { (nameof(Lr), Lr), (nameof(TextLr), TextLr ?? Lr) })
            if (!(double.IsFinite(lr) && lr > 0)) throw new ArgumentException($"{name} must be a positive learning rate, got {lr}");
        if (Train == FineTuneMode.Lora) Lora.Validate();
    }
}

/// <summary>What a fine-tuning run folder pins: the job and the data it saw (<see cref="LdmTrainingData.Source"/>).</summary>
public sealed record FineTuneRunConfig
{
    /// <summary>The training data in words.</summary>
    public string Data { get; init; } = "";
    /// <summary>The job.</summary>
    public FineTuneConfig FineTune { get; init; } = new();
}

/// <summary>What a fine-tuning run gives.</summary>
/// <param name="Pipeline">The fine-tuned pipeline (for LoRA: the base model with <see cref="Lora"/> attached).</param>
/// <param name="History">The loss history.</param>
public sealed record FineTuneResult(TextToImagePipeline Pipeline, TrainingHistory History)
{
    /// <summary>The adapters (LoRA runs), attached to <see cref="Pipeline"/>'s UNet.</summary>
    public LoraAdapter? Lora { get; init; }
    /// <summary>What was written: the LoRA file, or the diffusers folder of the fine-tuned model.</summary>
    public string Output { get; init; } = "";
    /// <summary>True when the run had finished before this call, which trained nothing.</summary>
    public bool Skipped { get; init; }
    /// <summary>Optimizer steps this call ran.</summary>
    public int StepsTrained { get; init; }
}

/// <summary>
/// Fine-tuning of a loaded model on chest X-rays, through the same path as the project's own latent diffusion training:
/// the images are encoded once by the frozen VAE (grayscale repeated to the VAE's channels, <see cref="TextToImagePipeline.ToVaeChannels"/>),
/// <see cref="DenoisingObjective"/> gives the loss with the model's own noise schedule and prediction type, and
/// <see cref="Trainer"/> runs it in a <see cref="RunFolder"/> (pinned config, atomic checkpoints, resume, progress). At the end
/// a LoRA run writes its adapters as diffusers' <see cref="LoraFile.FileName"/> in RUN/lora, and a full run writes the
/// fine-tuned model as a diffusers folder in RUN/model (<see cref="DiffusersPipelineWriter"/>).
/// </summary>
public static class FineTuning
{
    /// <summary>The folder of a LoRA run's adapter file.</summary>
    public static string LoraPath(string runDir) => Path.Combine(runDir, "lora");
    /// <summary>The folder of a full run's fine-tuned diffusers model.</summary>
    public static string ModelPath(string runDir) => Path.Combine(runDir, "model");

    /// <summary>The training data of a job at a resolution (phantoms, or every record of a labels.csv).</summary>
    /// <exception cref="FileNotFoundException">The labels.csv is missing.</exception>
    /// <exception cref="DatasetFormatException">The CSV or an image is malformed.</exception>
    public static LdmTrainingData LoadData(FineTuneConfig cfg, int resolution, LoadOptions? options = null) =>
        string.Equals(cfg.Data, LdmTrainingData.Phantoms, StringComparison.OrdinalIgnoreCase)
            ? LdmTrainingData.FromPhantoms(cfg.PhantomImages, resolution, cfg.PhantomSeed, 0, cfg.Prompt)
            : LdmTrainingData.FromRecords(GenericCsvLoader.Load(cfg.Data, options), resolution, cfg.Prompt);

    /// <summary>
    /// Runs (or resumes, or skips when finished) a fine-tuning job in <paramref name="runDir"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The config is out of range, or the resolution does not fit the model.</exception>
    /// <exception cref="RoentGen.Platform.RunStateException">The folder holds a run of another job or data.</exception>
    public static FineTuneResult Run(FineTuneConfig cfg, string runDir, LdmRunOptions? options = null, LoadOptions? dataOptions = null)
    {
        options ??= new LdmRunOptions();
        cfg = cfg with { Weights = Path.GetFullPath(cfg.Weights) };
        if (!string.Equals(cfg.Data, LdmTrainingData.Phantoms, StringComparison.OrdinalIgnoreCase)) cfg = cfg with { Data = Path.GetFullPath(cfg.Data) };
        cfg.Validate();
        runDir = Path.GetFullPath(runDir);

        var pipe = LatentDiffusionRuns.LoadPipeline(cfg.Weights);
        int factor = pipe.Vae.Config.DownsampleFactor;
        int resolution = cfg.Resolution ?? pipe.LatentSize * factor;
        int unetFactor = 1 << (pipe.Unet.Config.BlockOutChannels.Length - 1);
        if (resolution % (factor * unetFactor) != 0)
            throw new ArgumentException($"Resolution {resolution} must be a multiple of {factor * unetFactor} (the VAE downsamples by {factor}, the UNet by {unetFactor})");
        var data = LoadData(cfg, resolution, dataOptions);
        var run = RunFolder.Open(runDir, "finetune", new FineTuneRunConfig { Data = data.Source, FineTune = cfg }, "FineTune.Steps");
        var output = cfg.Train == FineTuneMode.Lora ? Path.Combine(LoraPath(runDir), LoraFile.FileName) : ModelPath(runDir);
        bool outputExists = cfg.Train == FineTuneMode.Lora ? File.Exists(output) : DiffusersPipelineLoader.IsDiffusersFolder(output);
        if (run.IsFinishedAt(cfg.Steps) && outputExists)
        {
            var history = Trainer.ReadHistory(run.Path);
            return cfg.Train == FineTuneMode.Lora
                ? new FineTuneResult(pipe, history) { Lora = LoraFile.Load(output, pipe.Unet), Output = output, Skipped = true }
                : new FineTuneResult(DiffusersPipelineLoader.Load(output), history) { Output = output, Skipped = true };
        }

        run.Start();
        var clock = Stopwatch.StartNew();
        int before = run.StepsDone;
        var model = new LatentDiffusionModel(pipe.Vae, pipe.TextEncoder, pipe.Tokenizer, pipe.Unet, pipe.Schedule.Config, resolution / factor, pipe.MaxTokens,
            new Dictionary<LdmPart, string> { [LdmPart.Vae] = cfg.Weights, [LdmPart.TextEncoder] = cfg.Weights, [LdmPart.Tokenizer] = cfg.Weights, [LdmPart.Unet] = cfg.Weights });
        foreach (var part in new[] { LdmPart.Vae, LdmPart.TextEncoder, LdmPart.Unet }) model.SetTrainable(part, false);
        LoraAdapter? lora = null;
        var modules = new Dictionary<string, nn.Module>();
        var groups = new List<AdamW.ParamGroup>();
        switch (cfg.Train)
        {
            case FineTuneMode.Lora:
                manual_seed(cfg.Seed);
                lora = LoraAdapter.Attach(pipe.Unet, cfg.Lora);
                modules["lora"] = lora;
                groups.Add(new AdamW.ParamGroup(lora.parameters(), cfg.Lr, 0.9, 0.999, 1e-8, 0.01));
                break;
            case FineTuneMode.Unet:
            case FineTuneMode.UnetAndText:
                model.SetTrainable(LdmPart.Unet, true);
                modules[LatentDiffusionModel.UnetFolder] = pipe.Unet;
                groups.Add(new AdamW.ParamGroup(pipe.Unet.parameters(), cfg.Lr, 0.9, 0.999, 1e-8, 0.01));
                if (cfg.Train == FineTuneMode.UnetAndText)
                {
                    model.SetTrainable(LdmPart.TextEncoder, true);
                    modules[LatentDiffusionModel.TextEncoderFolder] = pipe.TextEncoder;
                    groups.Add(new AdamW.ParamGroup(pipe.TextEncoder.parameters(), cfg.TextLr ?? cfg.Lr, 0.9, 0.999, 1e-8, 0.01));
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(cfg), cfg.Train, "unknown fine-tuning mode");
        }

        // The frozen VAE encodes every image once; the text is tokenized once.
        Tensor latents, ids;
        using (no_grad())
        {
            pipe.Vae.eval();
            var vaeType = BFloat16Kernels.ComputeType(pipe.Vae);
            var parts = new List<Tensor>();
            for (long i = 0; i < data.Images.shape[0]; i += 8)
            {
                using var scope = NewDisposeScope();
                var chunk = TextToImagePipeline.ToVaeChannels(data.Images.narrow(0, i, Math.Min(8, data.Images.shape[0] - i)), pipe.Vae.Config.InChannels);
                parts.Add(pipe.Vae.EncodeScaled(chunk.to(vaeType)).to(ScalarType.Float32).MoveToOuterDisposeScope());   // (n, C, h, w)
            }
            latents = cat(parts, 0);                                                           // (N, C, h, w)
            foreach (var p in parts) p.Dispose();
            ids = pipe.Tokenizer.EncodeBatch(data.Prompts, pipe.MaxTokens).Ids;                  // (N, L)
        }
        var unetType = BFloat16Kernels.ComputeType(pipe.Unet);
        var objective = new DenoisingObjective(pipe.Schedule.Config, cfg.PromptDropout, cfg.MinSnrGamma);
        var trainer = new Trainer(modules, new ScalarSafe.AdamW(groups),
            new TrainerOptions
            {
                TotalSteps = cfg.Steps, WarmupSteps = cfg.WarmupSteps, CheckpointEvery = options.CheckpointEvery ?? 100, Seed = cfg.Seed,
                Title = cfg.Train == FineTuneMode.Lora ? "LoRA" : "fine-tune",
            },
            run.Path, cfg);
        long n = latents.shape[0];
        TrainingHistory trained;
        try
        {
            trained = trainer.Run(ctx =>
            {
                var idx = tensor(Enumerable.Range(0, cfg.Batch).Select(_ => (long)ctx.Random.Next((int)n)).ToArray());
                var x0 = latents.index_select(0, idx);
                return objective.Loss(model, new DenoisingBatch(x0.dtype == unetType ? x0 : x0.to(unetType), ids.index_select(0, idx)), ctx.Generator);
            }, options.Cancellation, options.AfterStep is { } f ? step => f("finetune", step) : null);
        }
        finally
        {
            latents.Dispose();
            ids.Dispose();
        }
        foreach (var m in new nn.Module[] { pipe.Unet, pipe.TextEncoder, pipe.Vae }) m.eval();

        if (lora is not null) LoraFile.Save(lora, output);
        else DiffusersPipelineWriter.Save(pipe, output);
        run.Finish(cfg.Steps, clock.Elapsed.TotalSeconds, trained.Loss.Count > 0 ? trained.Loss[^1] : double.NaN);
        return new FineTuneResult(pipe, trained) { Lora = lora, Output = output, StepsTrained = trained.Steps - before };
    }
}
