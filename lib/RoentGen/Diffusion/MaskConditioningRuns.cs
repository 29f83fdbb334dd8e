using System.Diagnostics;
using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Synthetic;
using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>
/// The denoising objective of a mask-conditioned model (<see cref="DenoisingObjective"/> with masks): some prompts
/// replaced by the empty prompt (the masks stay, so guidance pushes along the text only), the latents noised at uniform
/// timesteps, the prediction regressed on the schedule's target, optionally weighted by Min-SNR-γ. Random draws, in this
/// order, from the step's generator: which prompts drop, the noise, the timesteps.
/// </summary>
/// <param name="Schedule">The base model's noise schedule.</param>
/// <param name="PromptDropout">Probability of the empty prompt.</param>
/// <param name="MinSnrGamma">Min-SNR-γ, or null for the plain mean squared error.</param>
public sealed record MaskConditioningObjective(NoiseSchedule Schedule, double PromptDropout, double? MinSnrGamma)
{
    /// <summary>The scalar loss of a batch: clean latents (B, C, h, w), token ids (B, L), masks (B, M, H, W).</summary>
    public Tensor Loss(MaskConditionedModel model, Tensor latents, Tensor tokenIds, Tensor masks, Generator generator)
    {
        long b = latents.shape[0];
        Tensor emptyIds, context;
        using (no_grad())
        {
            emptyIds = model.Base.Tokenizer.EncodeBatch([""], model.Base.MaxTokens).Ids;           // (1, L)
            var drop = rand(b, generator: generator).lt(PromptDropout).unsqueeze(1);               // (B, 1)
            context = model.Base.TextEncoder.call(where(drop, emptyIds.expand(b, -1), tokenIds));  // (B, L, D), frozen
        }
        var noise = randn(latents.shape, generator: generator);
        var t = randint(0, Schedule.TrainTimesteps, [b], dtype: ScalarType.Int64, generator: generator);   // (B)
        var pred = model.Predict(Schedule.AddNoise(latents, noise, t), t, context, masks);
        var target = Schedule.Target(latents, noise, t);
        if (MinSnrGamma is not double gamma) return nn.functional.mse_loss(pred, target);
        return ((pred - target).pow(2).mean([1, 2, 3]) * Schedule.MinSnrWeights(t, gamma)).mean();
    }
}

/// <summary>Mask-conditioning training data: images, masks and prompts of phantom cases, and the conditions themselves.</summary>
/// <param name="Images">(N, 1, S, S) in [−1, 1].</param>
/// <param name="Masks">(N, M, S, S) in {0, 1}, one channel per mask name.</param>
/// <param name="Prompts">One prompt per case.</param>
/// <param name="Conditions">The cases as conditions (masks, truth, report).</param>
public sealed record MaskConditioningData(Tensor Images, Tensor Masks, IReadOnlyList<string> Prompts, IReadOnlyList<MaskCondition> Conditions)
{
    /// <summary>
    /// Phantom cases <paramref name="start"/> to start + count − 1 of world <paramref name="seed"/>, drawn at 64 px or more
    /// and resized to <paramref name="size"/>: the image, the named masks (thresholded) and the report's prompt.
    /// </summary>
    public static MaskConditioningData FromPhantoms(int count, int size, long seed, int start, IReadOnlyList<string> channels, PromptSource prompt)
    {
        var cases = new PhantomGenerator(new PhantomOptions { Size = Math.Max(size, 64), Seed = seed }).Generate(start, count);
        var conditions = cases.Select(MaskCondition.FromCase).ToList();
        var images = ImageTensors.Stack(cases.Select(c => c.Image.Width == size ? c.Image : ImageResize.Resize(c.Image, size, size)), -1f, 1f);
        return new MaskConditioningData(images, MaskConditionedModel.MaskTensor(conditions, channels, size),
            conditions.Select(c => MaskConditionedModel.PromptOf(c, prompt)).ToList(), conditions);
    }

    /// <summary>Held-out phantom conditions (no images): cases <paramref name="start"/> onwards of world <paramref name="seed"/>.</summary>
    public static IReadOnlyList<MaskCondition> PhantomConditions(int count, int size, long seed, int start) =>
        PhantomCases(count, size, seed, start).Select(MaskCondition.FromCase).ToList();

    /// <summary>The phantom cases behind <see cref="PhantomConditions"/> (drawn at 64 px or more), with their images.</summary>
    public static IReadOnlyList<PhantomCase> PhantomCases(int count, int size, long seed, int start) =>
        new PhantomGenerator(new PhantomOptions { Size = Math.Max(size, 64), Seed = seed }).Generate(start, count);
}

/// <summary>Settings of a training call that do not change its result.</summary>
public sealed record MaskConditioningRunOptions
{
    /// <summary>Checkpoint every this many steps (null: 100).</summary>
    public int? CheckpointEvery { get; init; }
    /// <summary>Stops between steps (the run resumes from its last checkpoint).</summary>
    public CancellationToken Cancellation { get; init; }
    /// <summary>Called after each optimizer step with the step (0-based).</summary>
    public Action<int>? AfterStep { get; init; }
    /// <summary>Progress lines, or null.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>What a mask-conditioning run gives.</summary>
/// <param name="Model">The trained model (EMA weights when the config keeps an EMA).</param>
/// <param name="History">The loss history.</param>
public sealed record MaskConditioningRunResult(MaskConditionedModel Model, TrainingHistory History)
{
    /// <summary>The run folder.</summary>
    public string Dir { get; init; } = "";
    /// <summary>True when the run had finished before this call.</summary>
    public bool Skipped { get; init; }
    /// <summary>Optimizer steps this call ran.</summary>
    public int StepsTrained { get; init; }
    /// <summary>Wall time of this call in seconds.</summary>
    public double Seconds { get; init; }
}

/// <summary>
/// Trains a mask-conditioned model into a run folder (config pinned, atomic checkpoints, resume after interruption,
/// run.json last) from a trained latent diffusion folder: the base model stays frozen and only the ControlNet (or the
/// widened UNet) trains, on phantom cases' masks and reports with their images encoded by the base VAE. The model is
/// saved in DIR/model (<see cref="MaskConditionedModel.Save"/>). Float32 arithmetic.
/// </summary>
public static class MaskConditioningRuns
{
    /// <summary>The run folder's kind.</summary>
    public const string Kind = "mask-conditioning";
    /// <summary>The saved model's subfolder of a run folder.</summary>
    public const string ModelFolder = "model";

    /// <summary>The prompt source the base model was trained with (its experiment.json), else impression and findings.</summary>
    public static PromptSource PromptSourceOf(string ldmDir)
    {
        var cfgPath = Path.Combine(ldmDir, LatentDiffusionRuns.ConfigFile);
        return File.Exists(cfgPath) ? LdmExperimentConfig.Load(cfgPath).Prompt : PromptSource.ImpressionAndFindings;
    }

    /// <summary>Trains (or resumes, or finds finished) the run of <paramref name="cfg"/> in <paramref name="dir"/>.</summary>
    /// <exception cref="ArgumentException">The config is out of range.</exception>
    /// <exception cref="FileNotFoundException">From holds no trained latent diffusion model.</exception>
    /// <exception cref="RunStateException">The folder holds a run of another config.</exception>
    public static MaskConditioningRunResult Train(MaskConditioningConfig cfg, string dir, MaskConditioningRunOptions? options = null)
    {
        options ??= new MaskConditioningRunOptions();
        cfg.Validate();
        cfg = cfg with { From = Path.GetFullPath(cfg.From) };
        if (!LatentDiffusionModel.Exists(cfg.From))
            throw new FileNotFoundException($"From = {cfg.From}: no trained latent diffusion model there (train one with 'roentgen train' first)", Path.Combine(cfg.From, LatentDiffusionModel.IndexFile));
        dir = Path.GetFullPath(dir);
        var run = RunFolder.Open(dir, Kind, cfg, nameof(MaskConditioningConfig.Steps));
        var modelDir = Path.Combine(dir, ModelFolder);
        if (run.IsFinishedAt(cfg.Steps) && MaskConditionedModel.Resolve(modelDir) is not null)
            return new MaskConditioningRunResult(MaskConditionedModel.Load(modelDir), Trainer.ReadHistory(dir)) { Dir = dir, Skipped = true };

        var clock = Stopwatch.StartNew();
        var baseModel = LatentDiffusionModel.Load(cfg.From);
        var prompt = PromptSourceOf(cfg.From);
        int size = baseModel.LatentSize * baseModel.Vae.Config.DownsampleFactor;
        var data = MaskConditioningData.FromPhantoms(cfg.TrainImages, size, cfg.DataSeed, cfg.DataStart, cfg.MaskChannels, prompt);
        var latents = baseModel.Vae.EncodeScaledInChunks(data.Images);                     // (N, C, h, w)
        var ids = baseModel.Tokenizer.EncodeBatch(data.Prompts, baseModel.MaxTokens).Ids;  // (N, L)
        options.Log?.Invoke($"mask conditioning ({cfg.Variant}): {cfg.TrainImages} phantoms at {size} px, {cfg.MaskChannels.Count} mask channels, {cfg.Steps} steps of {cfg.Batch}; data ready in {clock.Elapsed.TotalSeconds:0.0} s");
        run.Start();
        int before = run.StepsDone;
        manual_seed(cfg.Seed);
        var model = MaskConditionedModel.Create(baseModel, cfg.Variant, cfg.MaskChannels, cfg.ConditioningWidth, cfg.ConditioningScale, prompt);
        var trainable = model.Trainable;
        foreach (var p in trainable.parameters()) p.requires_grad = true;
        var opt = new ScalarSafe.AdamW(trainable.parameters(), lr: cfg.Lr, weight_decay: 0.01);
        string name = cfg.Variant == MaskConditioningVariant.ControlNet ? MaskConditionedModel.ControlNetFolder : MaskConditionedModel.ConcatUnetFolder;
        var trainer = new Trainer(new Dictionary<string, nn.Module> { [name] = trainable }, opt,
            new TrainerOptions
            {
                TotalSteps = cfg.Steps, WarmupSteps = Math.Min(50, cfg.Steps / 10), CheckpointEvery = options.CheckpointEvery ?? 100,
                EmaDecay = cfg.EmaDecay, Seed = cfg.Seed + 1, Title = cfg.Variant == MaskConditioningVariant.ControlNet ? "ControlNet" : "mask concat",
            }, dir, cfg);
        var objective = new MaskConditioningObjective(new NoiseSchedule(baseModel.Scheduler), cfg.PromptDropout, cfg.MinSnrGamma);
        long n = latents.shape[0];
        var history = trainer.Run(ctx =>
        {
            var idx = tensor(Enumerable.Range(0, cfg.Batch).Select(_ => (long)ctx.Random.Next((int)n)).ToArray());
            return objective.Loss(model, latents.index_select(0, idx), ids.index_select(0, idx), data.Masks.index_select(0, idx), ctx.Generator);
        }, options.Cancellation, options.AfterStep);
        trainer.ApplyEma();
        foreach (var p in trainable.parameters()) p.requires_grad = false;
        trainable.eval();
        model.Save(modelDir);
        double loss = history.Loss.Count > 0 ? history.Loss[^1] : double.NaN;
        run.Finish(cfg.Steps, clock.Elapsed.TotalSeconds, loss, "fp32");
        options.Log?.Invoke($"mask conditioning: {history.Steps - before} steps in {clock.Elapsed.TotalSeconds:0.0} s, final loss {loss:0.0000}; model in {modelDir}");
        return new MaskConditioningRunResult(model, history) { Dir = dir, StepsTrained = history.Steps - before, Seconds = clock.Elapsed.TotalSeconds };
    }

    /// <summary>
    /// The training config of the run a model folder belongs to: <paramref name="folder"/>'s own config.json (a run
    /// folder), or its parent's when <paramref name="folder"/> is the run's model/ folder; null when neither has one.
    /// </summary>
    public static MaskConditioningConfig? FindRunConfig(string folder)
    {
        var full = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar);
        if (File.Exists(Path.Combine(full, RunFolder.ConfigFile)) && !File.Exists(Path.Combine(full, MaskConditionedModel.IndexFile))) return LoadConfig(full);
        var parent = Path.GetDirectoryName(full);
        if (parent is not null && Path.GetFileName(full) == ModelFolder && File.Exists(Path.Combine(parent, RunFolder.ConfigFile))) return LoadConfig(parent);
        return null;
    }

    /// <summary>The config pinned in a run folder.</summary>
    /// <exception cref="FileNotFoundException">The folder pins no mask-conditioning config.</exception>
    public static MaskConditioningConfig LoadConfig(string dir)
    {
        var path = Path.Combine(dir, RunFolder.ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{dir} is not a mask-conditioning run folder: no {RunFolder.ConfigFile}", path);
        return MaskConditioningConfig.Load(path);
    }
}
