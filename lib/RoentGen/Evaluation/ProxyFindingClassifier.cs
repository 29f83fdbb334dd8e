using System.Diagnostics;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Interop;
using RoentGen.Nn;
using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>Shape of the proxy finding classifier.</summary>
public sealed record ProxyClassifierConfig
{
    /// <summary>Side of the square input in pixels; other sizes are resized to it (area downsampling, bilinear upsampling).</summary>
    public int InputSize { get; init; } = 64;
    /// <summary>Channels of each stage; every stage halves the resolution (64 px → 4 px with four stages).</summary>
    public IReadOnlyList<int> Channels { get; init; } = [16, 32, 64, 128];
    /// <summary>Width of the penultimate layer: the features used for FID and KID.</summary>
    public int FeatureWidth { get; init; } = 128;
    /// <summary>GroupNorm groups per normalisation layer (must divide every stage's channels).</summary>
    public int NormGroups { get; init; } = 8;
    /// <summary>
    /// Width of the output layer when it is not the 14 CheXpert observations (null): the same network trained on other
    /// multi-label targets, such as <see cref="LateralityJudge"/>'s sides. Left out of the JSON when null, so configs
    /// written before it read and pin as they did.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public int? Outputs { get; init; }
    /// <summary>
    /// Input channels when not one grey image (null): e.g. <see cref="LateralityJudge"/>'s pair of hemithoraces. Left out of
    /// the JSON when null, as <see cref="Outputs"/>.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public int? InputChannels { get; init; }

    /// <summary>Throws when the shape is inconsistent.</summary>
    /// <exception cref="ArgumentException">A setting is out of range (the message names it).</exception>
    public void Validate()
    {
        if (Channels is null || Channels.Count == 0) throw new ArgumentException("ProxyClassifierConfig.Channels must list at least one stage");
        if (InputSize < 8 || InputSize % (1 << Channels.Count) != 0)
            throw new ArgumentException($"ProxyClassifierConfig.InputSize {InputSize} must be at least 8 and divisible by 2^{Channels.Count} (one halving per stage)");
        foreach (var c in Channels)
            if (c < 1 || c % NormGroups != 0) throw new ArgumentException($"ProxyClassifierConfig.Channels entry {c} must be positive and divisible by NormGroups {NormGroups}");
        if (FeatureWidth < 1) throw new ArgumentException($"ProxyClassifierConfig.FeatureWidth must be positive, got {FeatureWidth}");
        if (Outputs is < 1) throw new ArgumentException($"ProxyClassifierConfig.Outputs must be positive (or null for the 14 observations), got {Outputs}");
        if (InputChannels is < 1) throw new ArgumentException($"ProxyClassifierConfig.InputChannels must be positive (or null for one grey channel), got {InputChannels}");
    }

    /// <summary>
    /// A judge that reads 128 px images at about the compute of the default 64 px one: five stages, thin at full
    /// resolution ([8, 16, 32, 64, 128] channels, 128 px down to 4 px), so that thin findings (a rib's fracture gap, a
    /// small lesion, a pneumothorax's pleural line) survive the input resizing that the 64 px judge's area downsampling blurs.
    /// </summary>
    public static ProxyClassifierConfig Sharp128 { get; } = new() { InputSize = 128, Channels = [8, 16, 32, 64, 128] };
}

/// <summary>How uncertain (−1) CheXpert labels enter training.</summary>
public enum UncertainLabels
{
    /// <summary>Uncertain counts as positive ("U-Ones", Irvin et al. 2019). In the phantom world a hedged finding is truly drawn, so this is the default.</summary>
    Positive,
    /// <summary>Uncertain entries are left out of the loss ("U-Ignore").</summary>
    Ignore,
}

/// <summary>Settings of one proxy-classifier training run (the loop itself is <see cref="Trainer"/>).</summary>
public sealed record ProxyTrainingOptions
{
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 600;
    /// <summary>Name shown on the progress line.</summary>
    public string Title { get; init; } = "proxy classifier";
    /// <summary>The default of <see cref="BatchSize"/>.</summary>
    public const int DefaultBatchSize = 64;
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = DefaultBatchSize;
    /// <summary>Peak AdamW learning rate.</summary>
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>AdamW weight decay.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Linear warm-up steps before the cosine decay.</summary>
    public int WarmupSteps { get; init; } = 30;
    /// <summary>Random shifts of up to this many pixels and a mild brightness/contrast jitter (0: no augmentation). No flips: laterality matters.</summary>
    public int MaxShift { get; init; } = 3;
    /// <summary>Seed of batch order and augmentation, and of the weight initialisation in <see cref="ProxyFindingClassifier.TrainOnPhantoms"/>.</summary>
    public long Seed { get; init; }
    /// <summary>
    /// Class balance of the loss: when above 1, each observation's positive entries are weighted by its negatives over
    /// its positives in the training labels, clamped to [1, this] (binary cross-entropy's pos_weight), so that rare
    /// findings pull on the shared features as hard as common ones. 0 (the default) or 1: unweighted, as before.
    /// </summary>
    public double MaxPositiveWeight { get; init; }
    /// <summary>Folder for Trainer checkpoints (a run there resumes); null: none.</summary>
    public string? OutputDir { get; init; }
    /// <summary>Checkpoint every this many steps when <see cref="OutputDir"/> is set (0: only at the end).</summary>
    public int CheckpointEvery { get; init; }
}

/// <summary>What one training step reports.</summary>
/// <param name="Step">Step (0-based).</param>
/// <param name="TotalSteps">Steps in the run.</param>
/// <param name="Loss">Masked binary cross-entropy of the step's batch.</param>
public sealed record ProxyTrainingProgress(int Step, int TotalSteps, double Loss);

/// <summary>Held-out AUC of one observation.</summary>
/// <param name="Finding">The observation.</param>
/// <param name="Auc">ROC AUC (NaN when the held-out set lacks positives or negatives).</param>
/// <param name="Positives">Held-out images labelled positive.</param>
/// <param name="Negatives">Held-out images labelled negative.</param>
public sealed record FindingAuc(Observation Finding, double Auc, int Positives, int Negatives);

/// <summary>Something that scores images for the 14 CheXpert observations (the proxy classifier, or a test double).</summary>
public interface IFindingScorer
{
    /// <summary>Images (N, 1, H, W) in [−1, 1] → probabilities (N, 14) in <see cref="Observations.All"/> order.</summary>
    Tensor Predict(Tensor images);
}

/// <summary>
/// A small CNN that recognises the 14 CheXpert observations in chest X-rays: the evaluation's stand-in for a
/// radiologist (prompt adherence) and for the Inception network (its penultimate layer gives the features for FID and
/// KID). Multi-label: one sigmoid per observation, trained with binary cross-entropy where positives are
/// <see cref="Mention.Positive"/> labels, uncertain labels follow <see cref="UncertainLabels"/>, and negative or
/// unmentioned ones are 0.
/// <para>
/// Layout: stem conv → per stage [3x3 conv stride 2, GroupNorm, SiLU, 3x3 conv, GroupNorm, SiLU] → global average
/// pool → linear to <see cref="ProxyClassifierConfig.FeatureWidth"/> + SiLU (the features) → linear to 14 logits.
/// </para>
/// </summary>
public sealed class ProxyFindingClassifier : nn.Module<Tensor, Tensor>, IFindingScorer
{
    /// <summary>
    /// Training steps of the quick judge (the quickstart's, <c>roentgen judge train</c>'s and <c>roentgen evaluate</c>'s
    /// when it trains one): 2,400 steps of <see cref="QuickJudgeBatch"/> images. Measured in s17 on the quickstart's
    /// 1,000 held-out phantoms (8 images per prompt): the judge's ceiling (<see cref="PromptAdherence.JudgeCeiling"/>)
    /// was 0.832, against 0.668 for 600 steps of 64, for about 35 s more training on 2 cores.
    /// </summary>
    public const int QuickJudgeSteps = 2400;
    /// <summary>Images per training step of the quick judge (<see cref="QuickJudgeSteps"/>).</summary>
    public const int QuickJudgeBatch = 32;

    private readonly Sequential stem;
    private readonly ModuleList<Sequential> stages;
    private readonly Linear feature;
    private readonly Linear head;

    /// <summary>Number of outputs of a finding judge: the CheXpert observations.</summary>
    public const int Outputs = 14;

    /// <summary>Outputs of this network: <see cref="Outputs"/> unless its config gives another width.</summary>
    public int OutputCount => Config.Outputs ?? Outputs;

    /// <summary>The shape this classifier was built with.</summary>
    public ProxyClassifierConfig Config { get; }

    /// <summary>Builds a randomly initialised classifier.</summary>
    public ProxyFindingClassifier(ProxyClassifierConfig? config = null) : base(nameof(ProxyFindingClassifier))
    {
        Config = config ?? new ProxyClassifierConfig();
        Config.Validate();
        int g = Config.NormGroups;
        int c0 = Config.Channels[0];
        stem = nn.Sequential(nn.Conv2d(Config.InputChannels ?? 1, c0, 3, padding: 1), Layers.GroupNorm(g, c0), nn.SiLU());
        stages = new ModuleList<Sequential>();
        int prev = c0;
        foreach (var c in Config.Channels)
        {
            stages.Add(nn.Sequential(
                nn.Conv2d(prev, c, 3, stride: 2, padding: 1), Layers.GroupNorm(g, c), nn.SiLU(),
                nn.Conv2d(c, c, 3, padding: 1), Layers.GroupNorm(g, c), nn.SiLU()));
            prev = c;
        }
        feature = nn.Linear(prev, Config.FeatureWidth);
        head = nn.Linear(Config.FeatureWidth, Config.Outputs ?? Outputs);
        RegisterComponents();
    }

    /// <summary>Images (N, 1, H, W) in [−1, 1] → logits (N, 14).</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        return head.call(FeatureForward(images)).MoveToOuterDisposeScope();
    }

    private Tensor FeatureForward(Tensor images)
    {
        var x = stem.call(Resize(images));                     // (N, C0, S, S)
        foreach (var s in stages) x = s.call(x);               // (N, C_last, S/2^k, S/2^k)
        x = x.mean([2, 3]);                                       // (N, C_last)
        return nn.functional.silu(feature.call(x));            // (N, F)
    }

    private Tensor Resize(Tensor images)
    {
        long channels = Config.InputChannels ?? 1;
        if (images.dim() != 4 || images.shape[1] != channels)
            throw new ArgumentException($"the proxy classifier expects (N, {channels}, H, W) images in [-1, 1], got shape [{string.Join(", ", images.shape)}]");
        long s = Config.InputSize;
        if (images.shape[2] == s && images.shape[3] == s) return images;
        var mode = images.shape[2] > s ? InterpolationMode.Area : InterpolationMode.Bilinear;
        return nn.functional.interpolate(images, size: [s, s], mode: mode, align_corners: mode == InterpolationMode.Bilinear ? false : null);
    }

    /// <summary>Probabilities (N, 14) of each observation, in <see cref="Observations.All"/> order; computed without gradients in batches.</summary>
    public Tensor Predict(Tensor images) => Batched(images, 256, x => forward(x).sigmoid());

    /// <summary>Penultimate features (N, <see cref="ProxyClassifierConfig.FeatureWidth"/>) for FID and KID; without gradients, in batches.</summary>
    public Tensor Features(Tensor images) => Batched(images, 256, FeatureForward);

    private Tensor Batched(Tensor images, int batchSize, Func<Tensor, Tensor> f)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        bool wasTraining = training;
        eval();
        try
        {
            var parts = new List<Tensor>();
            for (long i = 0; i < images.shape[0]; i += batchSize)
                parts.Add(f(images.narrow(0, i, Math.Min(batchSize, images.shape[0] - i)).to(ScalarType.Float32)));
            if (parts.Count == 0) throw new ArgumentException("no images to score: the batch is empty");
            return cat(parts, 0).MoveToOuterDisposeScope();
        }
        finally
        {
            if (wasTraining) train();
        }
    }

    /// <summary>
    /// Training targets (N, 14): 1 for <see cref="Mention.Positive"/>, 0 for negative or not mentioned, and for
    /// <see cref="Mention.Uncertain"/> 1 (<see cref="UncertainLabels.Positive"/>) or −1, meaning "left out of the loss"
    /// (<see cref="UncertainLabels.Ignore"/>).
    /// </summary>
    public static Tensor LabelTensor(IEnumerable<CxrLabels> labels, UncertainLabels uncertain = UncertainLabels.Positive)
    {
        var rows = labels.ToList();
        var data = new float[rows.Count * Outputs];
        for (int r = 0; r < rows.Count; r++)
            for (int o = 0; o < Outputs; o++)
                data[r * Outputs + o] = rows[r][(Observation)o] switch
                {
                    Mention.Positive => 1f,
                    Mention.Uncertain => uncertain == UncertainLabels.Positive ? 1f : -1f,
                    _ => 0f,
                };
        return tensor(data, [rows.Count, Outputs]); // (N, 14)
    }

    /// <summary>
    /// Trains in place with <see cref="Trainer"/> (AdamW, warm-up + cosine, gradient clipping, optional checkpoints and
    /// resume). Loss: binary cross-entropy with logits averaged over the label entries that are not negative
    /// (a −1 target is left out, see <see cref="LabelTensor"/>).
    /// </summary>
    /// <param name="images">(N, 1, S, S) images in [−1, 1].</param>
    /// <param name="labels">(N, 14) targets: 1, 0, or −1 to ignore.</param>
    /// <param name="options">Run settings (null: defaults).</param>
    /// <param name="progress">Receives each step's loss.</param>
    /// <param name="cancellation">Stops the run between steps.</param>
    /// <returns>The loss history.</returns>
    /// <exception cref="ArgumentException">Shapes do not agree.</exception>
    public TrainingHistory Train(Tensor images, Tensor labels, ProxyTrainingOptions? options = null,
        IProgress<ProxyTrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        var o = options ?? new ProxyTrainingOptions();
        if (images.dim() != 4 || images.shape[1] != (Config.InputChannels ?? 1))
            throw new ArgumentException($"training images must be (N, {Config.InputChannels ?? 1}, H, W) in [-1, 1], got shape [{string.Join(", ", images.shape)}]", nameof(images));
        if (labels.dim() != 2 || labels.shape[0] != images.shape[0] || labels.shape[1] != OutputCount)
            throw new ArgumentException($"labels must be ({images.shape[0]}, {OutputCount}) to match the images, got shape [{string.Join(", ", labels.shape)}]", nameof(labels));
        if (o.BatchSize < 1 || o.Steps < 1) throw new ArgumentException($"BatchSize and Steps must be at least 1, got {o.BatchSize} and {o.Steps}");
        if (!(o.MaxPositiveWeight >= 0)) throw new ArgumentException($"ProxyTrainingOptions.MaxPositiveWeight must be 0 (off) or at least 1, got {o.MaxPositiveWeight}");
        int n = checked((int)images.shape[0]);
        var x = images.to(ScalarType.Float32);
        var y = labels.to(ScalarType.Float32);
        var posWeight = o.MaxPositiveWeight > 1 ? PositiveWeights(y, o.MaxPositiveWeight) : null;   // (outputs) or null

        var optimizer = new ScalarSafe.AdamW(parameters(), lr: o.LearningRate, weight_decay: o.WeightDecay);
        var trainer = new Trainer(new Dictionary<string, nn.Module> { ["classifier"] = this }, optimizer, new TrainerOptions
        {
            TotalSteps = o.Steps,
            WarmupSteps = Math.Min(o.WarmupSteps, o.Steps - 1),
            Seed = o.Seed,
            CheckpointEvery = o.CheckpointEvery,
            Title = o.Title,
        }, o.OutputDir, Config);
        return trainer.Run(ctx =>
        {
            var idx = tensor(Enumerable.Range(0, o.BatchSize).Select(_ => (long)ctx.Random.Next(n)).ToArray());
            var batch = Augment(x.index_select(0, idx), o.MaxShift, ctx);      // (B, 1, S, S)
            var target = y.index_select(0, idx);                                 // (B, 14)
            var mask = target.ge(0).to(ScalarType.Float32);
            var perEntry = nn.functional.binary_cross_entropy_with_logits(forward(batch), target.clamp_min(0), reduction: nn.Reduction.None);
            // pos_weight written out: w·y·(−log σ) + (1 − y)·(−log(1 − σ)) is the plain loss times 1 + (w − 1)·y for 0/1 targets.
            if (posWeight is not null) perEntry = perEntry * (1 + (posWeight - 1) * target.clamp_min(0));
            var loss = (perEntry * mask).sum() / mask.sum().clamp_min(1);
            progress?.Report(new ProxyTrainingProgress(ctx.Step, o.Steps, loss.item<float>()));
            return loss;
        }, cancellation);
    }

    /// <summary>
    /// Per observation, its negatives over its positives among the entries of <paramref name="labels"/> (N, outputs) that are
    /// not left out (−1), clamped to [1, <paramref name="max"/>]; 1 where an observation has no positives.
    /// </summary>
    public static Tensor PositiveWeights(Tensor labels, double max)
    {
        if (labels.dim() != 2)
            throw new ArgumentException($"labels must be (N, outputs), got shape [{string.Join(", ", labels.shape)}]", nameof(labels));
        if (!(max >= 1)) throw new ArgumentOutOfRangeException(nameof(max), max, "the largest positive weight must be at least 1");
        using var scope = NewDisposeScope();
        var y = labels.to(ScalarType.Float32);
        var pos = y.eq(1).to(ScalarType.Float32).sum(dim: 0);     // (14)
        var neg = y.eq(0).to(ScalarType.Float32).sum(dim: 0);     // (14)
        var w = where(pos.gt(0), neg / pos.clamp_min(1), ones_like(pos)).clamp(1, max);
        return w.MoveToOuterDisposeScope();
    }

    // Per-image random shift (edge padding, then crop) and a mild brightness/contrast jitter.
    private static Tensor Augment(Tensor batch, int maxShift, TrainStepContext ctx)
    {
        if (maxShift <= 0) return batch;
        long b = batch.shape[0], h = batch.shape[2], w = batch.shape[3];
        var padded = nn.functional.pad(batch, [maxShift, maxShift, maxShift, maxShift], PaddingModes.Replicate);
        var crops = new Tensor[b];
        for (int i = 0; i < b; i++)
        {
            int dy = ctx.Random.Next(2 * maxShift + 1), dx = ctx.Random.Next(2 * maxShift + 1);
            crops[i] = padded.narrow(0, i, 1).narrow(2, dy, h).narrow(3, dx, w);
        }
        var shifted = cat(crops, 0);
        var gain = 1 + 0.1 * (rand(b, 1, 1, 1, generator: ctx.Generator) * 2 - 1);
        var offset = 0.1 * (rand(b, 1, 1, 1, generator: ctx.Generator) * 2 - 1);
        return (shifted * gain + offset).clamp(-1, 1);
    }

    /// <summary>Held-out ROC AUC of each observation: positives are targets of 1, negatives 0, and −1 entries are left out.</summary>
    /// <param name="images">(N, 1, H, W) images in [−1, 1].</param>
    /// <param name="labels">(N, 14) targets as from <see cref="LabelTensor"/>.</param>
    public IReadOnlyList<FindingAuc> Evaluate(Tensor images, Tensor labels)
    {
        if (OutputCount != Outputs)
            throw new InvalidOperationException($"this network has {OutputCount} outputs, not the {Outputs} observations: evaluate it with the code that defined its targets");
        if (labels.dim() != 2 || labels.shape[0] != images.shape[0] || labels.shape[1] != Outputs)
            throw new ArgumentException($"labels must be ({images.shape[0]}, {Outputs}) to match the images, got shape [{string.Join(", ", labels.shape)}]", nameof(labels));
        using var scope = NewDisposeScope();
        var p = Predict(images).contiguous().data<float>().ToArray();
        var t = labels.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        int n = (int)images.shape[0];
        var result = new List<FindingAuc>();
        for (int o = 0; o < Outputs; o++)
        {
            var scores = new List<double>(); var truth = new List<bool>();
            for (int i = 0; i < n; i++)
            {
                float target = t[i * Outputs + o];
                if (target < 0) continue;
                scores.Add(p[i * Outputs + o]);
                truth.Add(target > 0.5f);
            }
            int pos = truth.Count(v => v);
            result.Add(new FindingAuc((Observation)o, Auc.Compute(scores, truth), pos, truth.Count - pos));
        }
        return result;
    }

    /// <summary>Saves the weights and config to a checkpoint folder (<see cref="Checkpoint"/> layout).</summary>
    public void Save(string folder) => Checkpoint.Save(folder, this, Config);

    /// <summary>Loads a classifier saved with <see cref="Save"/>, in evaluation mode.</summary>
    /// <exception cref="FileNotFoundException">The folder holds no checkpoint.</exception>
    /// <exception cref="StateDictMismatchException">The weights do not fit the saved config.</exception>
    public static ProxyFindingClassifier Load(string folder)
    {
        var config = Checkpoint.ReadConfig<ProxyClassifierConfig>(folder);
        var model = new ProxyFindingClassifier(config);
        Checkpoint.Load(folder, model);
        model.eval();
        return model;
    }

    /// <summary>
    /// Images (N, 1, size, size) in [−1, 1] and training targets (N, 14) of records (phantoms, a labels.csv folder or any
    /// loader's): images made square at <paramref name="size"/> by <see cref="CxrDataset.LoadImage"/>, targets from the
    /// records' CheXpert labels by <see cref="LabelTensor"/>.
    /// </summary>
    /// <exception cref="ArgumentException">No records.</exception>
    /// <exception cref="DatasetFormatException">An image could not be loaded.</exception>
    public static (Tensor Images, Tensor Labels) RecordData(CxrDataset records, int size, UncertainLabels uncertain = UncertainLabels.Positive)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count == 0) throw new ArgumentException($"{records.Name} holds no records", nameof(records));
        var images = ImageTensors.Stack(records.Select(r => records.LoadImage(r, size)));
        return (images, LabelTensor(records.Select(r => r.Labels), uncertain));
    }

    /// <summary>
    /// <see cref="RecordData"/> of phantom cases start..start+count of the world <paramref name="seed"/>. Sizes under the
    /// phantoms' 64 px minimum are drawn at 64 px and area-downsampled.
    /// </summary>
    public static (Tensor Images, Tensor Labels) PhantomData(int size, int start, int count, long seed, UncertainLabels uncertain = UncertainLabels.Positive) =>
        RecordData(PhantomRecords.Create(new PhantomOptions { Size = Math.Max(64, size), Seed = seed }, count, start, masks: false).Prefetch(), size, uncertain);

    /// <summary>
    /// The judge trained in <paramref name="folder"/> on <paramref name="count"/> phantoms of the world
    /// <paramref name="seed"/> at <paramref name="size"/> px for <paramref name="steps"/> steps: loaded when that run
    /// finished there, else trained (or resumed) and saved there. The run follows <see cref="RunFolder"/>'s rules in
    /// folder/run (its config pinned, checkpoints, run.json last), so a folder holding a judge of another config is an
    /// error rather than a silent reuse.
    /// </summary>
    /// <exception cref="InvalidOperationException">The folder holds a judge trained with another config.</exception>
    /// <param name="folder">Where the judge is saved (its run in folder/run).</param>
    /// <param name="size">Image side of its training phantoms, and its input size.</param>
    /// <param name="count">Training phantoms.</param>
    /// <param name="steps">Training steps.</param>
    /// <param name="seed">World seed of the training phantoms, and the run's seed.</param>
    /// <param name="config">Its shape (null: the default; InputSize is set to <paramref name="size"/>).</param>
    /// <param name="maxPositiveWeight">Class balance of the loss (<see cref="ProxyTrainingOptions.MaxPositiveWeight"/>; 0: unweighted).</param>
    /// <param name="batchSize">Images per step (<see cref="ProxyTrainingOptions.BatchSize"/>).</param>
    public static ProxyFindingClassifier LoadOrTrain(string folder, int size, int count = 4000, int steps = 600, long seed = 1001,
        ProxyClassifierConfig? config = null, double maxPositiveWeight = 0, int batchSize = ProxyTrainingOptions.DefaultBatchSize)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "the judge's batch needs at least one image");
        var modelConfig = (config ?? new ProxyClassifierConfig()) with { InputSize = size };
        var pinned = new JudgeRun(size, count, steps, seed, modelConfig)
        {
            MaxPositiveWeight = maxPositiveWeight,
            BatchSize = batchSize == ProxyTrainingOptions.DefaultBatchSize ? null : batchSize,
        };
        var run = RunFolder.Open(Path.Combine(folder, "run"), "judge", pinned);
        if (run.IsFinishedAt(steps) && IsSaved(folder)) return Load(folder);
        run.Start();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var model = TrainOnPhantoms(size, count, seed, steps, modelConfig,
            new ProxyTrainingOptions { Seed = seed, OutputDir = run.Path, CheckpointEvery = 200, MaxPositiveWeight = maxPositiveWeight, BatchSize = batchSize });
        model.Save(folder);
        run.Finish(steps, clock.Elapsed.TotalSeconds);
        return model;
    }

    /// <summary>
    /// The judge saved in <paramref name="folder"/> as it is, whatever recipe trained it (a quickstart's, a study's, one of
    /// <c>roentgen judge</c>); only where none is saved, <see cref="LoadOrTrain"/> with these settings. For readers of
    /// another run's folder, who cannot know its recipe; a run that owns the folder pins its recipe with
    /// <see cref="LoadOrTrain"/>.
    /// </summary>
    public static ProxyFindingClassifier LoadSavedOrTrain(string folder, int size, int count = 4000, int steps = 600, long seed = 1001,
        ProxyClassifierConfig? config = null, double maxPositiveWeight = 0, int batchSize = ProxyTrainingOptions.DefaultBatchSize) =>
        IsSaved(folder) ? Load(folder) : LoadOrTrain(folder, size, count, steps, seed, config, maxPositiveWeight, batchSize);

    /// <summary>True when <paramref name="folder"/> holds a saved classifier (weights and config).</summary>
    public static bool IsSaved(string folder) =>
        File.Exists(Path.Combine(folder, Checkpoint.WeightsFileName)) && File.Exists(Path.Combine(folder, Checkpoint.ConfigFileName));

    /// <summary>What a judge run in a <see cref="RunFolder"/> pins: its data, steps, seed and model config.</summary>
    public sealed record JudgeRun(int Size, int Count, int Steps, long Seed, ProxyClassifierConfig Model)
    {
        /// <summary>Class balance of the loss (<see cref="ProxyTrainingOptions.MaxPositiveWeight"/>); left out of the JSON when 0, as runs written before it.</summary>
        [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
        public double MaxPositiveWeight { get; init; }
        /// <summary>Images per step when not <see cref="ProxyTrainingOptions.DefaultBatchSize"/>; left out of the JSON when null, as runs written before it.</summary>
        [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
        public int? BatchSize { get; init; }
    }

    /// <summary>
    /// Generates <paramref name="count"/> phantoms of the world <paramref name="seed"/> (at <paramref name="size"/>
    /// pixels), trains a new classifier on them for <paramref name="steps"/> steps, and returns it in evaluation mode.
    /// Evaluate it on another world seed (e.g. <c>PhantomData(size, 0, 1000, seed + 1)</c>) for held-out AUCs.
    /// </summary>
    public static ProxyFindingClassifier TrainOnPhantoms(int size = 64, int count = 4000, long seed = 0, int steps = 600,
        ProxyClassifierConfig? config = null, ProxyTrainingOptions? options = null, IProgress<ProxyTrainingProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "train on at least one phantom");
        var records = PhantomRecords.Create(new PhantomOptions { Size = Math.Max(64, size), Seed = seed }, count, masks: false);
        return TrainOnRecords(records, size, steps, config, options, progress, cancellation);
    }

    /// <summary>
    /// Trains a new classifier on <paramref name="records"/> (their images at <paramref name="size"/> pixels and CheXpert
    /// labels, see <see cref="RecordData"/>) for <paramref name="steps"/> steps and returns it in evaluation mode.
    /// </summary>
    /// <exception cref="ArgumentException">No records.</exception>
    public static ProxyFindingClassifier TrainOnRecords(CxrDataset records, int size = 64, int steps = 600,
        ProxyClassifierConfig? config = null, ProxyTrainingOptions? options = null, IProgress<ProxyTrainingProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count == 0) throw new ArgumentException($"{records.Name} holds no records to train on", nameof(records));
        var o = (options ?? new ProxyTrainingOptions()) with { Steps = steps };
        torch.random.manual_seed(o.Seed);
        var model = new ProxyFindingClassifier((config ?? new ProxyClassifierConfig()) with { InputSize = config?.InputSize ?? size });
        using var scope = NewDisposeScope();
        var (images, labels) = RecordData(records.Prefetch(), size);
        model.Train(images, labels, o, progress, cancellation);
        model.eval();
        return model;
    }
}
