using RoentGen.Data;
using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using RoentGen.Vision;

namespace RoentGen.Methods;

/// <summary>
/// The loss centres of a DINO run as module buffers (<c>dino_center</c>, <c>ibot_center</c>), so that the
/// trainer checkpoints them beside the weights and a resumed run continues with the same targets.
/// </summary>
public sealed class DinoLossState : nn.Module
{
    /// <summary>Creates zero centres for <paramref name="prototypes"/> prototypes.</summary>
    public DinoLossState(int prototypes) : base("dino_loss")
    {
        DinoCenter = zeros(1, prototypes);
        IBotCenter = zeros(1, prototypes);
        register_buffer("dino_center", DinoCenter);
        register_buffer("ibot_center", IBotCenter);
    }

    /// <summary>(1, K) centre of the teacher's CLS logits.</summary>
    public Tensor DinoCenter { get; }
    /// <summary>(1, K) centre of the teacher's masked-patch logits.</summary>
    public Tensor IBotCenter { get; }
}

/// <summary>
/// The parts of a DINO student or teacher (dinov2's dictionary of parts): <c>backbone</c>, <c>dino_head</c>,
/// <c>ibot_head</c>, which are also the prefixes of its state-dict keys.
/// </summary>
public sealed class DinoParts : nn.Module
{
#pragma warning disable IDE1006 // snake_case fields are the state-dict prefixes
    private readonly VisionTransformer backbone;
    private readonly DinoHead dino_head;
    private readonly DinoHead ibot_head;
#pragma warning restore IDE1006

    /// <summary>Groups the three parts.</summary>
    public DinoParts(VisionTransformer backbone, DinoHead dinoHead, DinoHead ibotHead) : base(nameof(DinoParts))
    {
        this.backbone = backbone;
        dino_head = dinoHead;
        ibot_head = ibotHead;
        RegisterComponents();
    }

    /// <summary>The ViT.</summary>
    public VisionTransformer Backbone => backbone;
    /// <summary>The CLS-token head (DINO loss).</summary>
    public DinoHead DinoHead => dino_head;
    /// <summary>The patch-token head (iBOT loss).</summary>
    public DinoHead IBotHead => ibot_head;
}

/// <summary>The losses and diagnostics of one DINO step.</summary>
/// <param name="Total">Weighted sum of the enabled losses (scalar, with gradient).</param>
/// <param name="Metrics">Named values: dino, ibot, koleo (when enabled), teacher_entropy, effective_prototypes,
/// prototypes_used, teacher_temp, momentum, weight_decay, masked_fraction.</param>
public sealed record DinoStepResult(Tensor Total, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// The self-supervised meta-architecture of DINOv2 (Oquab et al. 2023) as used by RAD-DINO (Pérez-García et
/// al. 2025): a student {backbone, dino_head, ibot_head} trained by gradient, and a teacher of the same
/// structure that only follows the student by EMA. Each step: multi-crop the batch; the teacher sees the two
/// global crops unmasked; the student sees the global crops with iBOT block masks (Zhou et al. 2022) and the
/// local crops; the DINO loss (Caron et al. 2021) compares every student crop's CLS with the teacher's other
/// global crops, the iBOT loss the student's masked patches with the teacher's, and KoLeo spreads the student's
/// global CLS features. A loss runs only when its weight is above zero. After the optimizer step,
/// <see cref="UpdateTeacher"/> applies the momentum schedule.
/// </summary>
public sealed class DinoTraining : IDisposable
{
    private readonly VisionTransformer _studentBackbone, _teacherBackbone;
    private readonly DinoHead _studentDino, _studentIBot, _teacherDino, _teacherIBot;
    private readonly DinoClsLoss _dinoLoss;
    private readonly IBotPatchLoss _ibotLoss;
    private readonly AdamW.ParamGroup _decayGroup;

    /// <summary>Builds student, teacher (a copy of the student) and the AdamW optimizer, seeded by the config.</summary>
    /// <exception cref="ArgumentException">The config is inconsistent.</exception>
    public DinoTraining(DinoConfig config)
    {
        config.Validate();
        Config = config;
        var vit = config.Vit with { ImageSize = config.Crops.GlobalSize };
        manual_seed(config.Seed);
        _studentBackbone = new VisionTransformer(vit);
        _studentDino = new DinoHead(vit.HiddenSize, config.Prototypes, config.HeadHidden, config.HeadBottleneck, config.HeadBatchNorm);
        _studentIBot = new DinoHead(vit.HiddenSize, config.Prototypes, config.HeadHidden, config.HeadBottleneck, config.HeadBatchNorm);
        // DINOv2's teacher has no stochastic depth; the parameters are the same.
        _teacherBackbone = new VisionTransformer(vit with { DropPathRate = 0 });
        _teacherDino = new DinoHead(vit.HiddenSize, config.Prototypes, config.HeadHidden, config.HeadBottleneck, config.HeadBatchNorm);
        _teacherIBot = new DinoHead(vit.HiddenSize, config.Prototypes, config.HeadHidden, config.HeadBottleneck, config.HeadBatchNorm);
        Student = new DinoParts(_studentBackbone, _studentDino, _studentIBot);
        Teacher = new DinoParts(_teacherBackbone, _teacherDino, _teacherIBot);
        if (!Student.named_parameters().Any()) throw new InvalidOperationException("the DINO student registered no parameters");
        Ema.UpdateModule(Teacher, Student, 0.0);                 // teacher ← student
        foreach (var p in Teacher.parameters()) p.requires_grad = false;
        LossState = new DinoLossState(config.Prototypes);
        _dinoLoss = new DinoClsLoss(config.Prototypes, config.StudentTemperature, config.CenterMomentum);
        _ibotLoss = new IBotPatchLoss(config.Prototypes, config.StudentTemperature, config.CenterMomentum);
        Crops = new MultiCrop(config.Crops);

        // As DINOv2: no weight decay on biases, norms, LayerScale and the learned tokens / position embeddings.
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, p) in Student.named_parameters())
            (IsNoDecay(name, p) ? noDecay : decay).Add(p);
        _decayGroup = new AdamW.ParamGroup(decay, lr: config.LearningRate, weight_decay: config.WeightDecayStart);
        var noDecayGroup = new AdamW.ParamGroup(noDecay, lr: config.LearningRate, weight_decay: 0.0);
        Optimizer = new ScalarSafe.AdamW(new[] { _decayGroup, noDecayGroup }, lr: config.LearningRate, beta1: 0.9, beta2: 0.999);
        DecayParameterCount = decay.Count;
        NoDecayParameterCount = noDecay.Count;
    }

    /// <summary>The run's config.</summary>
    public DinoConfig Config { get; }
    /// <summary>Student parts: backbone, dino_head, ibot_head.</summary>
    public DinoParts Student { get; }
    /// <summary>Teacher parts (same structure; no gradients; moved only by <see cref="UpdateTeacher"/>).</summary>
    public DinoParts Teacher { get; }
    /// <summary>The checkpointed loss centres.</summary>
    public DinoLossState LossState { get; }
    /// <summary>The student's backbone.</summary>
    public VisionTransformer StudentBackbone => _studentBackbone;
    /// <summary>The teacher's backbone (the usual encoder to keep after training).</summary>
    public VisionTransformer TeacherBackbone => _teacherBackbone;
    /// <summary>The multi-crop augmentation.</summary>
    public MultiCrop Crops { get; }
    /// <summary>AdamW over the student: group 0 decays (scheduled), group 1 does not.</summary>
    public OptimizerHelper Optimizer { get; }
    /// <summary>Parameter tensors with weight decay.</summary>
    public int DecayParameterCount { get; }
    /// <summary>Parameter tensors without weight decay.</summary>
    public int NoDecayParameterCount { get; }

    /// <summary>What the trainer checkpoints: student, teacher and the loss centres.</summary>
    public IReadOnlyDictionary<string, nn.Module> Modules => new Dictionary<string, nn.Module>
    {
        ["student"] = Student, ["teacher"] = Teacher, ["dino_loss"] = LossState,
    };

    /// <summary>True for parameters DINOv2 excludes from weight decay (biases, norms, LayerScale, tokens).</summary>
    public static bool IsNoDecay(string name, Tensor p) =>
        p.dim() < 2 || name.EndsWith("bias", StringComparison.Ordinal) || name.Contains("norm", StringComparison.Ordinal)
        || name.Contains("token", StringComparison.Ordinal) || name.Contains("position_embeddings", StringComparison.Ordinal);

    /// <summary>Teacher EMA momentum at a step: cosine from MomentumStart to MomentumEnd over the run.</summary>
    public double MomentumAt(int step) => Schedules.Cosine(Config.MomentumStart, Config.MomentumEnd, step, Config.Steps);
    /// <summary>Teacher temperature at a step: linear warm-up, then constant.</summary>
    public double TeacherTemperatureAt(int step) =>
        Schedules.Linear(Config.TeacherTemperatureStart, Config.TeacherTemperature, step, Config.TeacherTemperatureWarmupSteps);
    /// <summary>Weight decay at a step: cosine from WeightDecayStart to WeightDecayEnd over the run.</summary>
    public double WeightDecayAt(int step) => Schedules.Cosine(Config.WeightDecayStart, Config.WeightDecayEnd, step, Config.Steps);

    /// <summary>Whether the student's prototype layers learn at a step (not before <see cref="DinoConfig.FreezePrototypesSteps"/>).</summary>
    public bool PrototypesLearnAt(int step) => step >= Config.FreezePrototypesSteps;

    /// <summary>Turns the student's prototype layers' gradients off or on for a step (<see cref="PrototypesLearnAt"/>).</summary>
    public void FreezePrototypes(int step)
    {
        bool learn = PrototypesLearnAt(step);
        _studentDino.Prototypes.requires_grad = learn;
        _studentIBot.Prototypes.requires_grad = learn;
    }

    /// <summary>Sets the decayed group's weight decay for a step.</summary>
    public void ApplyWeightDecay(int step) => _decayGroup.Options.weight_decay = WeightDecayAt(step);

    /// <summary>The decayed group's current weight decay.</summary>
    public double CurrentWeightDecay => _decayGroup.Options.weight_decay ?? 0;

    /// <summary>teacher ← m·teacher + (1 − m)·student with m from the momentum schedule; call after the optimizer step.</summary>
    public void UpdateTeacher(int step) => Ema.UpdateModule(Teacher, Student, MomentumAt(step));

    /// <summary>
    /// One step's forward pass and losses on a batch of images (intensities in [0, 1]); updates the centres.
    /// Backward and the optimizer step are the caller's (or the trainer's).
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than two images while KoLeo is enabled.</exception>
    public DinoStepResult Step(IReadOnlyList<GrayImage> images, int step, Random rng)
    {
        var c = Config;
        if (c.KoLeoWeight > 0 && images.Count < 2) throw new ArgumentException($"KoLeo needs at least two images per step, got {images.Count}");
        var metrics = new Dictionary<string, double>();
        int b = images.Count;
        double tt = TeacherTemperatureAt(step);
        var crops = Crops.Apply(images, rng);
        var globals = cat(crops.Globals, 0);                                    // (2B, 1, G, G)
        int grid = c.Crops.GlobalSize / c.Vit.PatchSize, n = grid * grid;

        // iBOT masks: a fraction of the global crops, each with its own ratio.
        bool ibotOn = c.IBotWeight > 0;
        Tensor? mask = null;
        bool anyMasked = false;
        if (ibotOn)
        {
            var m = new bool[2 * b * n];
            for (int i = 0; i < 2 * b; i++)
            {
                if (rng.NextDouble() >= c.MaskProbability) continue;
                double ratio = c.MaskRatioMin + rng.NextDouble() * (c.MaskRatioMax - c.MaskRatioMin);
                var one = BlockMasking.Sample(grid, grid, ratio, rng);
                Array.Copy(one, 0, m, i * n, n);
            }
            anyMasked = m.Any(v => v);
            mask = tensor(m, [2 * b, n]);                                         // (2B, N)
            metrics["masked_fraction"] = m.Count(v => v) / (double)m.Length;
        }
        bool ibotActive = ibotOn && anyMasked;

        // Sync centres from the checkpointed buffers (they are the source of truth across resumes).
        using (no_grad())
        {
            _dinoLoss.Center.copy_(LossState.DinoCenter);
            _ibotLoss.Center.copy_(LossState.IBotCenter);
        }

        // Teacher: global crops, no masks, no gradients.
        Tensor teacherProbs, teacherClsLogits;
        Tensor? ibotTargets = null, teacherPatchLogits = null;
        using (no_grad())
        {
            var tout = _teacherBackbone.Forward(globals);
            teacherClsLogits = _teacherDino.call(tout.Cls);                   // (2B, K)
            teacherProbs = c.SinkhornKnopp ? DinoClsLoss.SinkhornKnopp(teacherClsLogits, tt) : _dinoLoss.TeacherTargets(teacherClsLogits, tt);
            if (ibotActive)
            {
                teacherPatchLogits = _teacherIBot.call(tout.Patches);         // (2B, N, K)
                if (c.SinkhornKnopp)
                {
                    var sk = DinoClsLoss.SinkhornKnopp(teacherPatchLogits[mask!], tt); // (M, K)
                    ibotTargets = zeros_like(teacherPatchLogits).index_put_(sk, TensorIndex.Tensor(mask!));
                }
                else ibotTargets = _ibotLoss.TeacherTargets(teacherPatchLogits, tt);
            }
        }
        var teacherTargets = teacherProbs.chunk(2, 0);

        // Student.
        var sout = _studentBackbone.Forward(globals, ibotActive ? mask : null);
        Tensor total = zeros(1).squeeze();
        if (c.DinoWeight > 0)
        {
            var studentLogits = new List<Tensor>(_studentDino.call(sout.Cls).chunk(2, 0));
            if (crops.Locals.Length > 0)
            {
                var locals = cat(crops.Locals, 0);                               // (nL·B, 1, L, L)
                var localCls = _studentBackbone.Forward(locals).Cls;             // (nL·B, D)
                studentLogits.AddRange(_studentDino.call(localCls).chunk(crops.Locals.Length, 0));
            }
            var dino = _dinoLoss.Forward(studentLogits, teacherTargets);
            metrics["dino"] = dino.item<float>();
            total = total + dino * c.DinoWeight;
        }
        if (ibotActive)
        {
            var studentPatchLogits = _studentIBot.call(sout.Patches);         // (2B, N, K)
            var ibot = _ibotLoss.Forward(studentPatchLogits, ibotTargets!, mask!);
            metrics["ibot"] = ibot.item<float>();
            total = total + ibot * c.IBotWeight;
        }
        else if (ibotOn) metrics["ibot"] = 0;
        if (c.KoLeoWeight > 0)
        {
            var parts = sout.Cls.chunk(2, 0);
            var koleo = KoLeoLoss.Forward(parts[0]) + KoLeoLoss.Forward(parts[1]);
            metrics["koleo"] = koleo.item<float>();
            total = total + koleo * c.KoLeoWeight;
        }

        // Centres move after the targets are made (DINO, iBOT); Sinkhorn-Knopp needs none.
        using (no_grad())
        {
            if (!c.SinkhornKnopp)
            {
                _dinoLoss.UpdateCenter(teacherClsLogits);
                LossState.DinoCenter.copy_(_dinoLoss.Center);
                if (ibotActive)
                {
                    _ibotLoss.UpdateCenter(teacherPatchLogits!, mask!);
                    LossState.IBotCenter.copy_(_ibotLoss.Center);
                }
            }
            // Collapse indicators: mean entropy of the teacher's distributions, and exp(entropy) of their batch mean
            // (about 1 when every image goes to one prototype).
            var p = teacherProbs.clamp_min(1e-12);
            metrics["teacher_entropy"] = (-(p * p.log()).sum(-1)).mean().item<float>();
            var mean = teacherProbs.mean([0]).clamp_min(1e-12);
            metrics["effective_prototypes"] = Math.Exp(-(mean * mean.log()).sum().item<float>());
            metrics["prototypes_used"] = teacherClsLogits.argmax(-1).unique().Item1.shape[0];
        }
        metrics["teacher_temp"] = tt;
        metrics["momentum"] = MomentumAt(step);
        metrics["weight_decay"] = CurrentWeightDecay;
        return new DinoStepResult(total, metrics);
    }

    /// <summary>A trainer over <see cref="Modules"/> with this run's schedule, checkpointing under <paramref name="outputDir"/>.</summary>
    public Trainer CreateTrainer(string? outputDir = null, string title = "dino") =>
        new(Modules, Optimizer, new TrainerOptions
        {
            TotalSteps = Config.Steps, WarmupSteps = Config.WarmupSteps, MinLrFraction = Config.MinLrFraction,
            GradClipNorm = Config.GradClipNorm, CheckpointEvery = Config.CheckpointEvery, Seed = Config.Seed, Title = title,
        }, outputDir, Config);

    /// <summary>
    /// Trains to <see cref="DinoConfig.Steps"/> (resuming from the trainer's latest checkpoint): per step, the
    /// weight decay of the schedule, the step's images from <paramref name="source"/> (labels and reports unused),
    /// <see cref="Step"/>, backward and the optimizer step (by the trainer), then <see cref="UpdateTeacher"/>. Metrics go
    /// to the trainer's history.
    /// </summary>
    public TrainingHistory Train(Trainer trainer, TrainingRecords source, CancellationToken cancellation = default) =>
        trainer.Run(ctx =>
        {
            ApplyWeightDecay(ctx.Step);
            FreezePrototypes(ctx.Step);
            var images = source.Images(ctx.Step, Config.BatchSize, ctx.Random);
            var result = Step(images, ctx.Step, ctx.Random);
            foreach (var (k, v) in result.Metrics) trainer.Report(k, v);
            return result.Total;
        }, cancellation, UpdateTeacher);

    /// <summary>Trains with a new trainer (see <see cref="Train(Trainer, TrainingRecords, CancellationToken)"/>).</summary>
    public TrainingHistory Train(TrainingRecords source, string? outputDir = null, CancellationToken cancellation = default) =>
        Train(CreateTrainer(outputDir), source, cancellation);

    /// <inheritdoc />
    public void Dispose()
    {
        _dinoLoss.Dispose();
        _ibotLoss.Dispose();
        Optimizer.Dispose();
        Student.Dispose();
        Teacher.Dispose();
        LossState.Dispose();
    }
}
