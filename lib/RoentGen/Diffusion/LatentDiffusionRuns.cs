using System.Diagnostics;
using System.Text.Json;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Text;
using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>What the VAE stage's run folder pins: every setting the trained autoencoder depends on.</summary>
public sealed record VaeStageConfig
{
    /// <summary>The training data (<see cref="LdmTrainingData.Source"/>).</summary>
    public string Data { get; init; } = "";
    /// <summary>Image side in pixels.</summary>
    public int ImageSize { get; init; }
    /// <summary>The autoencoder.</summary>
    public VaeConfig Vae { get; init; } = new();
    /// <summary>Where its start weights come from and that it is trained.</summary>
    public LdmPartConfig Part { get; init; } = new();
    /// <summary>Training steps (may grow: the run continues).</summary>
    public int VaeSteps { get; init; }
    /// <summary>Batch size.</summary>
    public int VaeBatch { get; init; }
    /// <summary>Learning rate.</summary>
    public double VaeLr { get; init; }
    /// <summary>Loss weights.</summary>
    public VaeLossConfig VaeLoss { get; init; } = new();
    /// <summary>Seed.</summary>
    public long Seed { get; init; }
    /// <summary>Training arithmetic (<see cref="LdmExperimentConfig.Precision"/>; left out of the JSON when Auto, as configs written before it).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public Precision Precision { get; init; }

    /// <summary>The VAE stage of an experiment on some data.</summary>
    public static VaeStageConfig Of(LdmExperimentConfig cfg, string data) => new()
    {
        Data = data, ImageSize = cfg.ImageSize, Vae = cfg.Vae, Part = cfg.Parts.Vae, VaeSteps = cfg.VaeSteps, VaeBatch = cfg.VaeBatch,
        VaeLr = cfg.VaeLr, VaeLoss = cfg.VaeLoss, Seed = cfg.Seed, Precision = cfg.Precision,
    };
}

/// <summary>What the denoising stage's run folder pins: the whole experiment (its LdmSteps may grow) and the data.</summary>
public sealed record LdmStageConfig
{
    /// <summary>The training data (<see cref="LdmTrainingData.Source"/>).</summary>
    public string Data { get; init; } = "";
    /// <summary>The experiment.</summary>
    public LdmExperimentConfig Experiment { get; init; } = new();
}

/// <summary>Settings of a stage call that do not change its results.</summary>
public sealed record LdmRunOptions
{
    /// <summary>Checkpoint every this many steps (null: the stage's default, 100 for the VAE and 200 for the denoiser).</summary>
    public int? CheckpointEvery { get; init; }
    /// <summary>Stops the run between steps (it resumes from its last checkpoint when called again).</summary>
    public CancellationToken Cancellation { get; init; }
    /// <summary>Called after each optimizer step with the stage ("vae" or "ldm") and the step (0-based), e.g. for a live chart.</summary>
    public Action<string, int>? AfterStep { get; init; }
    /// <summary>
    /// Called after each optimizer step of the denoising stage (after <see cref="AfterStep"/>, before the step is
    /// checkpointed) with the model being trained (its raw weights, not the EMA) and the step (0-based): e.g. to evaluate
    /// the model at a few step counts. It must leave the weights as they are; it may switch the parts to evaluation mode
    /// (the stage puts its trained parts back into training mode after it).
    /// </summary>
    public Action<LatentDiffusionModel, int>? AfterLdmStep { get; init; }
}

/// <summary>What the VAE stage gives.</summary>
/// <param name="Vae">The trained autoencoder with its measured scaling factor.</param>
/// <param name="History">Its loss history (read back from the last checkpoint when the stage was already finished).</param>
public sealed record VaeRunResult(AutoencoderKL Vae, TrainingHistory History)
{
    /// <summary>True when the stage had finished before this call, which trained nothing.</summary>
    public bool Skipped { get; init; }
    /// <summary>Optimizer steps this call ran.</summary>
    public int StepsTrained { get; init; }
}

/// <summary>What the denoising stage (or a whole experiment) gives.</summary>
/// <param name="Model">The trained model (EMA weights of every trained part).</param>
/// <param name="History">The denoiser's loss history (read back from the last checkpoint when the stage was already finished).</param>
public sealed record LdmRunResult(LatentDiffusionModel Model, TrainingHistory History)
{
    /// <summary>The experiment folder.</summary>
    public string Dir { get; init; } = "";
    /// <summary>The experiment's config.</summary>
    public LdmExperimentConfig Config { get; init; } = new();
    /// <summary>True when the stage had finished before this call, which trained nothing.</summary>
    public bool Skipped { get; init; }
    /// <summary>Optimizer steps this call ran.</summary>
    public int StepsTrained { get; init; }
    /// <summary>The VAE stage's history, when <see cref="LatentDiffusionRuns.EnsureTrained"/> ran or skipped it.</summary>
    public TrainingHistory? VaeHistory { get; init; }
    /// <summary>
    /// The text-encoder pretraining of this run (<see cref="LdmExperimentConfig.TextPretrainSteps"/>), read back from
    /// the stage folder's <see cref="LatentDiffusionRuns.TextPretrainingFile"/> when an earlier call ran it; null when none ran.
    /// </summary>
    public TextPretrainingResult? TextPretraining { get; init; }
}

/// <summary>
/// The run lifecycle of a latent diffusion experiment, in the order of Rombach et al. (2022): the autoencoder stage
/// (then its latent scaling factor), then the denoising stage, which trains the text-conditioned UNet (and, when
/// configured, the text encoder) on cached latents with <see cref="DenoisingObjective"/>. Each stage runs in a
/// <see cref="RunFolder"/> under the experiment folder (runs/vae, runs/ldm): its config is pinned and compared, an
/// interrupted stage resumes from its checkpoints, and a finished one is skipped. The trained model is saved in the
/// experiment folder as <see cref="LatentDiffusionModel.Save"/> lays it out, with experiment.json beside it. CLI verbs,
/// the quickstart and the notebooks call these and hold no lifecycle logic of their own.
/// </summary>
public static class LatentDiffusionRuns
{
    /// <summary>The experiment config's file name in an experiment folder.</summary>
    public const string ConfigFile = "experiment.json";
    /// <summary>The folder of the stages' run folders.</summary>
    public const string RunsFolder = "runs";

    /// <summary>The file in the denoising stage's run folder where <see cref="TrainLdm"/> keeps the text-encoder pretraining's result.</summary>
    public const string TextPretrainingFile = "text_pretraining.json";

    /// <summary>The text-encoder pretraining result kept in a denoising stage's run folder, or null when it has none.</summary>
    public static TextPretrainingResult? ReadTextPretraining(string ldmRunPath)
    {
        var path = Path.Combine(ldmRunPath, TextPretrainingFile);
        return File.Exists(path) ? JsonSerializer.Deserialize<TextPretrainingResult>(File.ReadAllText(path), SafeTensors.ConfigJsonOptions) : null;
    }

    /// <summary>The VAE stage's run folder of an experiment folder.</summary>
    public static string VaeRunPath(string dir) => Path.Combine(dir, RunsFolder, "vae");
    /// <summary>The denoising stage's run folder of an experiment folder.</summary>
    public static string LdmRunPath(string dir) => Path.Combine(dir, RunsFolder, "ldm");

    /// <summary>
    /// Trains (or resumes, or skips when finished) the autoencoder stage; the VAE, with its measured scaling factor, is
    /// saved in DIR/vae.
    /// </summary>
    /// <exception cref="ArgumentException">Parts.Vae is frozen (there is no VAE stage).</exception>
    /// <exception cref="RoentGen.Platform.RunStateException">The stage's folder holds a run of another config or data.</exception>
    public static VaeRunResult TrainVae(LdmExperimentConfig cfg, LdmTrainingData data, string dir, LdmRunOptions? options = null)
    {
        options ??= new LdmRunOptions();
        cfg.ValidateParts();
        if (!cfg.Trains(LdmPart.Vae))
            throw new ArgumentException($"Parts.Vae.Train is false: the VAE is taken from Parts.Vae.From ({cfg.Parts.Vae.From}), so there is no VAE stage to run");
        var run = RunFolder.Open(VaeRunPath(dir), "vae", VaeStageConfig.Of(cfg, data.Source), nameof(VaeStageConfig.VaeSteps));
        var vaeDir = Path.Combine(dir, LatentDiffusionModel.VaeFolder);
        if (run.IsFinishedAt(cfg.VaeSteps) && File.Exists(Path.Combine(vaeDir, Checkpoint.WeightsFileName)))
            return new VaeRunResult(LatentDiffusionModel.LoadVae(vaeDir, cfg.Vae, "the VAE stage's output"), Trainer.ReadHistory(run.Path)) { Skipped = true };

        run.Start();
        var clock = Stopwatch.StartNew();
        int before = run.StepsDone;
        manual_seed(cfg.Seed);
        var vae = cfg.Parts.Vae.From is { } from
            ? LatentDiffusionModel.LoadVae(LatentDiffusionModel.ResolvePartFolder(from, LdmPart.Vae), cfg.Vae, "Parts.Vae.From")
            : new AutoencoderKL(cfg.Vae);
        var opt = new ScalarSafe.AdamW(vae.parameters(), lr: cfg.VaeLr, weight_decay: 0);
        var precision = Precisions.Resolve(cfg.Precision);
        // Mixed precision: forward and backward on a bfloat16 copy, float32 weights, optimizer state and loss.
        var shadow = precision == Precision.BFloat16 ? new BFloat16Shadow<AutoencoderKL>(vae, () => new AutoencoderKL(vae.Config)) : null;
        var computeVae = shadow?.Compute ?? vae;
        var trainer = new Trainer(new Dictionary<string, nn.Module> { ["vae"] = vae }, opt,
            new TrainerOptions { TotalSteps = cfg.VaeSteps, WarmupSteps = Math.Min(50, cfg.VaeSteps / 10), CheckpointEvery = options.CheckpointEvery ?? 100, Seed = cfg.Seed, Title = "VAE" },
            run.Path, cfg, shadow is null ? null : [shadow]);
        long n = data.Images.shape[0];
        var history = trainer.Run(ctx =>
        {
            var idx = tensor(Enumerable.Range(0, cfg.VaeBatch).Select(_ => (long)ctx.Random.Next((int)n)).ToArray());
            var x = data.Images.index_select(0, idx);
            var terms = VaeTrainingLoss(computeVae, x, ctx.Generator, cfg.VaeLoss);
            trainer.Report("l1", terms.L1);
            trainer.Report("ssim", terms.Ssim);
            return terms.Total;
        }, options.Cancellation, AfterStep(options, "vae"));
        vae.MeasureScalingFactor(data.Images);
        Checkpoint.Save(vaeDir, vae, vae.Config);
        run.Finish(cfg.VaeSteps, clock.Elapsed.TotalSeconds, history.Loss.Count > 0 ? history.Loss[^1] : double.NaN, Precisions.ToShortName(precision));
        return new VaeRunResult(vae, history) { StepsTrained = history.Steps - before };
    }

    /// <summary>
    /// Trains (or resumes, or skips when finished) the denoising stage: builds the model (<see cref="LatentDiffusionModel.Build"/>:
    /// this experiment's VAE from DIR/vae, or the frozen one of Parts.Vae.From; parts initialised from their From folders),
    /// caches the latents and token ids, and trains the trainable parts with <see cref="DenoisingObjective"/>, keeping an
    /// EMA of each. The model is saved with the EMA weights of every trained part, then experiment.json, then the stage's run.json.
    /// </summary>
    /// <exception cref="RoentGen.Platform.RunStateException">The VAE stage has not finished, or a stage folder holds a run of another config or data.</exception>
    /// <exception cref="InvalidDataException">A part loaded from a folder does not fit (see <see cref="LatentDiffusionModel.Build"/>).</exception>
    /// <exception cref="ArgumentException">The config asks for the finding-weighted loss but the data has no finding masks.</exception>
    public static LdmRunResult TrainLdm(LdmExperimentConfig cfg, LdmTrainingData data, string dir, LdmRunOptions? options = null)
    {
        options ??= new LdmRunOptions();
        cfg.ValidateParts();
        if (cfg.FindingLossWeight is double fw && data.FindingMasks is null)
            throw new ArgumentException($"FindingLossWeight {fw} weights the loss by finding masks, but the training data ({data.Source}) has none; "
                + "load it with its masks (LdmTrainingData.From / FromPhantoms with this config) or leave FindingLossWeight unset", nameof(data));
        dir = Path.GetFullPath(dir);
        var run = RunFolder.Open(LdmRunPath(dir), "ldm", new LdmStageConfig { Data = data.Source, Experiment = cfg }, "Experiment.LdmSteps");
        string? trainedVae = null;
        if (cfg.Trains(LdmPart.Vae))
        {
            var vaeRun = RunFolder.Open(VaeRunPath(dir), "vae", VaeStageConfig.Of(cfg, data.Source), nameof(VaeStageConfig.VaeSteps));
            if (!vaeRun.IsFinishedAt(cfg.VaeSteps))
                throw new RoentGen.Platform.RunStateException($"{dir}: the VAE stage ({vaeRun.Path}) has not finished at {cfg.VaeSteps} steps; train it first (TrainVae, or EnsureTrained for both stages)");
            trainedVae = Path.Combine(dir, LatentDiffusionModel.VaeFolder);
        }
        if (run.IsFinishedAt(cfg.LdmSteps) && LatentDiffusionModel.Exists(dir))
            return new LdmRunResult(LatentDiffusionModel.Load(dir), Trainer.ReadHistory(run.Path)) { Dir = dir, Config = cfg, Skipped = true, TextPretraining = ReadTextPretraining(run.Path) };

        run.Start();
        var clock = Stopwatch.StartNew();
        int before = run.StepsDone;
        // The phrasebook's statements (text pretraining only; the tokenizer's corpus too when asked), drawn the same on a resume.
        var phrases = cfg.TextPretrainSteps > 0 && cfg.TextPretrainPhrases > 0 ? RadiologyPhrasebook.Sentences(cfg.TextPretrainPhrases, cfg.Seed + 11) : [];
        var model = LatentDiffusionModel.Build(cfg, cfg.TokenizerLearnsPhrases ? [.. data.Prompts, .. phrases] : data.Prompts, trainedVae);
        var objective = DenoisingObjective.For(cfg);
        var latents = model.Vae.EncodeScaledInChunks(data.Images);                  // (N, C, h, w)
        var ids = model.Tokenizer.EncodeBatch(data.Prompts, cfg.MaxTokens).Ids;     // (N, L)
        // Before the EMA and the bfloat16 copies are taken; a resumed run restores the weights it had.
        TextPretrainingResult? pre = null;
        if (cfg.TextPretrainSteps > 0 && before == 0 && cfg.Parts.TextEncoder.From is null)
        {
            if (phrases.Count > 0)
            {
                using var phraseIds = model.Tokenizer.EncodeBatch(phrases, cfg.MaxTokens).Ids;
                using var textIds = cat([ids, phraseIds], 0);
                pre = TextEncoderPretraining.Run(model.TextEncoder, textIds, TextEncoderPretraining.Targets([.. data.Prompts, .. phrases]), cfg.TextPretrainSteps, seed: cfg.Seed + 7);
            }
            else pre = TextEncoderPretraining.Run(model.TextEncoder, ids, TextEncoderPretraining.Targets(data.Prompts), cfg.TextPretrainSteps, seed: cfg.Seed + 7);
            AtomicFile.WriteAllText(Path.Combine(run.Path, TextPretrainingFile), JsonSerializer.Serialize(pre, SafeTensors.ConfigJsonOptions));
        }
        var groups = new List<AdamW.ParamGroup>();
        if (cfg.Trains(LdmPart.Unet)) groups.Add(new AdamW.ParamGroup(model.Unet.parameters(), cfg.UnetLr, 0.9, 0.999, 1e-8, 0.01));
        if (cfg.Trains(LdmPart.TextEncoder)) groups.Add(new AdamW.ParamGroup(model.TextEncoder.parameters(), cfg.TextLr, 0.9, 0.999, 1e-8, 0.01));
        var opt = new ScalarSafe.AdamW(groups);
        var precision = Precisions.Resolve(cfg.Precision);
        var (computeModel, shadows) = precision == Precision.BFloat16 ? MixedPrecisionModel(model) : (model, []);
        // Frozen parts are checkpointed too (a resumed run checks they are the same); only trained ones get an EMA.
        var modules = new Dictionary<string, nn.Module> { [LatentDiffusionModel.UnetFolder] = model.Unet, [LatentDiffusionModel.TextEncoderFolder] = model.TextEncoder };
        var trainer = new Trainer(modules, opt,
            new TrainerOptions
            {
                TotalSteps = cfg.LdmSteps, WarmupSteps = Math.Min(100, cfg.LdmSteps / 10), CheckpointEvery = options.CheckpointEvery ?? 200,
                EmaDecay = cfg.EmaDecay, Seed = cfg.Seed + 1, Title = "LDM",
            },
            run.Path, cfg, shadows);
        long n = latents.shape[0];
        // Class-balanced draws when asked for; otherwise the uniform draws (and random stream) of every earlier run.
        var balance = cfg.BalanceFindings is double power ? FindingBalance.FromPrompts(data.Prompts, power) : null;
        var weights = cfg.FindingLossWeight is double extra ? DenoisingObjective.FindingWeights(data.FindingMasks!, latents.shape[2], extra) : null;   // (N, 1, h, w)
        var history = trainer.Run(ctx =>
        {
            var idx = tensor(Enumerable.Range(0, cfg.LdmBatch).Select(_ => balance is null ? (long)ctx.Random.Next((int)n) : balance.Draw(ctx.Random)).ToArray());
            return objective.Loss(computeModel, new DenoisingBatch(latents.index_select(0, idx), ids.index_select(0, idx), weights?.index_select(0, idx)), ctx.Generator);
        }, options.Cancellation, LdmAfterStep(options, model));
        trainer.ApplyEma();   // sample with the EMA weights of every trained part
        model.Save(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), JsonSerializer.Serialize(cfg, SafeTensors.ConfigJsonOptions));
        run.Finish(cfg.LdmSteps, clock.Elapsed.TotalSeconds, history.Loss.Count > 0 ? history.Loss[^1] : double.NaN, Precisions.ToShortName(precision));
        return new LdmRunResult(model, history) { Dir = dir, Config = cfg, StepsTrained = history.Steps - before, TextPretraining = pre ?? ReadTextPretraining(run.Path) };
    }

    /// <summary>
    /// Runs what an experiment folder still lacks: the VAE stage (when the VAE is trained here) and the denoising stage,
    /// each skipped when finished and resumed when interrupted.
    /// </summary>
    /// <exception cref="RoentGen.Platform.RunStateException">A stage folder holds a run of another config or data.</exception>
    public static LdmRunResult EnsureTrained(LdmExperimentConfig cfg, LdmTrainingData data, string dir, LdmRunOptions? options = null)
    {
        cfg.ValidateParts();
        var vae = cfg.Trains(LdmPart.Vae) ? TrainVae(cfg, data, dir, options) : null;
        return TrainLdm(cfg, data, dir, options) with { VaeHistory = vae?.History };
    }

    /// <summary>A trained experiment folder: its model (every part frozen), config and denoiser history.</summary>
    /// <exception cref="FileNotFoundException">The folder holds no trained model or no experiment.json.</exception>
    public static LdmRunResult Open(string dir)
    {
        dir = Path.GetFullPath(dir);
        var model = LatentDiffusionModel.Load(dir);
        var history = Trainer.LatestCheckpoint(LdmRunPath(dir)) is not null ? Trainer.ReadHistory(LdmRunPath(dir)) : new TrainingHistory();
        return new LdmRunResult(model, history) { Dir = dir, Config = LoadConfig(dir), Skipped = true };
    }

    /// <summary>
    /// The trained experiment in <paramref name="dir"/> when there is one; otherwise <paramref name="fallback"/> trained on
    /// its phantoms into <paramref name="fallbackDir"/> (<see cref="EnsureTrained"/>): e.g. the quickstart's model, or a
    /// small one where the quickstart has not run.
    /// </summary>
    public static LdmRunResult OpenOrTrain(string dir, LdmExperimentConfig fallback, string fallbackDir, LdmRunOptions? options = null) =>
        LatentDiffusionModel.Exists(dir) ? Open(dir) : EnsureTrained(fallback, LdmTrainingData.FromPhantoms(fallback), fallbackDir, options);

    /// <summary>The experiment config saved in a trained experiment folder.</summary>
    /// <exception cref="FileNotFoundException">The folder has no experiment.json.</exception>
    public static LdmExperimentConfig LoadConfig(string dir)
    {
        var cfgPath = Path.Combine(dir, ConfigFile);
        if (!File.Exists(cfgPath)) throw new FileNotFoundException($"{dir} is not a trained latent-diffusion folder: no {ConfigFile}", cfgPath);
        return LdmExperimentConfig.Load(cfgPath);
    }

    /// <summary>
    /// Loads a trained experiment folder as a sampling pipeline; a diffusers Stable Diffusion folder (its model_index.json
    /// names a _class_name) is read by <see cref="RoentGen.Interop.Diffusers.DiffusersPipelineLoader"/> instead.
    /// </summary>
    /// <exception cref="FileNotFoundException">A part is missing; the message names it.</exception>
    public static TextToImagePipeline LoadPipeline(string dir) =>
        RoentGen.Interop.Diffusers.DiffusersPipelineLoader.IsDiffusersFolder(dir)
            ? RoentGen.Interop.Diffusers.DiffusersPipelineLoader.Load(dir)
            : LatentDiffusionModel.Load(dir).ToPipeline();

    private static Action<int>? LdmAfterStep(LdmRunOptions options, LatentDiffusionModel model)
    {
        var after = AfterStep(options, "ldm");
        if (options.AfterLdmStep is not { } hook) return after;
        return step =>
        {
            after?.Invoke(step);
            hook(model, step);
            model.Unet.train();
            model.TextEncoder.train();
        };
    }

    /// <summary>
    /// The autoencoder's training loss on images <paramref name="x"/> (float32, [−1, 1]) computed by <paramref name="vae"/>
    /// in its own arithmetic: a bfloat16 copy (<see cref="BFloat16Shadow{TModule}"/>) encodes and decodes in bfloat16,
    /// while the posterior's sample, the KL and the reconstruction loss are float32. A float32 model computes as before.
    /// </summary>
    public static VaeLossTerms VaeTrainingLoss(AutoencoderKL vae, Tensor x, Generator? generator, VaeLossConfig loss)
    {
        var type = BFloat16Kernels.ComputeType(vae);
        if (type == ScalarType.Float32)
        {
            var posterior = vae.Encode(x);
            return VaeLoss.Compute(x, vae.Decode(posterior.Sample(generator)), posterior, loss);
        }
        var moments = vae.Encode(x.to(type));
        var posterior32 = new DiagonalGaussian(cat([moments.Mean, moments.LogVar], 1).to(ScalarType.Float32));   // (B, 2L, h, w), float32
        var reconstruction = vae.Decode(posterior32.Sample(generator).to(type)).to(ScalarType.Float32);
        return VaeLoss.Compute(x, reconstruction, posterior32, loss);
    }

    /// <summary>
    /// A model whose UNet and text encoder are bfloat16 copies of <paramref name="model"/>'s (its VAE and tokenizer
    /// shared), with the copies that keep them in step with the float32 parts during training.
    /// </summary>
    public static (LatentDiffusionModel Compute, IReadOnlyList<BFloat16Shadow> Shadows) MixedPrecisionModel(LatentDiffusionModel model)
    {
        var unet = new BFloat16Shadow<UNet2DConditionModel>(model.Unet, () => new UNet2DConditionModel(model.Unet.Config));
        var text = new BFloat16Shadow<ClipTextModel>(model.TextEncoder, () => new ClipTextModel(model.TextEncoder.Config));
        var compute = new LatentDiffusionModel(model.Vae, text.Compute, model.Tokenizer, unet.Compute, model.Scheduler, model.LatentSize, model.MaxTokens,
            model.Sources);
        return (compute, [unet, text]);
    }

    private static Action<int>? AfterStep(LdmRunOptions options, string stage) =>
        options.AfterStep is { } f ? step => f(stage, step) : null;
}
