using System.Text.Json;
using RoentGen.Platform;
using RoentGen.Visualization;
using RoentGen.Interop;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Training;

/// <summary>How a training loop runs: steps, learning-rate schedule, clipping, accumulation, EMA, checkpoints.</summary>
public sealed record TrainerOptions
{
    /// <summary>Optimizer steps in all.</summary>
    public int TotalSteps { get; init; } = 1000;
    /// <summary>Linear warm-up steps before the cosine decay.</summary>
    public int WarmupSteps { get; init; } = 50;
    /// <summary>Final learning rate as a fraction of each group's initial rate.</summary>
    public double MinLrFraction { get; init; } = 0.1;
    /// <summary>Clip the global gradient norm to this (0: no clipping).</summary>
    public double GradClipNorm { get; init; } = 1.0;
    /// <summary>Micro-batches whose gradients are summed (averaged) per optimizer step.</summary>
    public int GradAccumulation { get; init; } = 1;
    /// <summary>
    /// EMA decay of the weights (null: no EMA): one average per trained module (a module with at least one parameter
    /// that requires a gradient; frozen modules get none). It is warmed up as min(decay, (1 + step) / (10 + step)), as diffusers'
    /// EMA does: with a fixed 0.999 a 1,500-step run would keep 0.999^1500 = 22% of the random initial weights in its
    /// average, and samples from such weights come out as noise.
    /// </summary>
    public double? EmaDecay { get; init; }

    /// <summary>The EMA decay used after optimizer step <paramref name="step"/> (0-based) for a target decay.</summary>
    public static double WarmedUpEmaDecay(double decay, int step) => Math.Min(decay, (1.0 + step) / (10.0 + step));
    /// <summary>Write a checkpoint every this many steps (0: only at the end).</summary>
    public int CheckpointEvery { get; init; } = 100;
    /// <summary>Checkpoints kept (older ones are deleted).</summary>
    public int KeepCheckpoints { get; init; } = 2;
    /// <summary>Seed of everything random in the run; each (step, micro-step) gets its own stream from it.</summary>
    public long Seed { get; init; }
    /// <summary>Title of the progress display.</summary>
    public string Title { get; init; } = "train";
}

/// <summary>What one micro-step gets: where it is and its own random streams (for data order, noise, dropout).</summary>
/// <param name="Step">Optimizer step (0-based).</param>
/// <param name="MicroStep">Micro-batch within the step.</param>
/// <param name="Generator">Torch generator for this micro-step.</param>
/// <param name="Random">.NET random stream for this micro-step (e.g. which examples to take).</param>
public sealed record TrainStepContext(int Step, int MicroStep, Generator Generator, Random Random);

/// <summary>The loss history of a run.</summary>
public sealed class TrainingHistory
{
    /// <summary>Mean loss of each completed step.</summary>
    public List<double> Loss { get; init; } = new();
    /// <summary>Learning-rate multiplier of each step.</summary>
    public List<double> LrFactor { get; init; } = new();
    /// <summary>Extra named metrics per step (reported by the loss function through <see cref="Trainer.Report"/>).</summary>
    public Dictionary<string, List<double>> Metrics { get; init; } = new();
    /// <summary>Steps completed.</summary>
    public int Steps => Loss.Count;
}

/// <summary>
/// A training loop that any model uses: per-step learning rate (warm-up then cosine) on every parameter
/// group, gradient accumulation and clipping, EMA weights, progress, and atomic checkpoints (weights, EMA,
/// optimizer state, history) from which an interrupted run resumes and continues with the same losses as
/// an uninterrupted one. Randomness is derived from (seed, step, micro-step), so nothing else needs saving.
/// </summary>
public sealed class Trainer
{
    private readonly IReadOnlyDictionary<string, nn.Module> _modules;
    private readonly OptimizerHelper _optimizer;
    private readonly TrainerOptions _options;
    private readonly string? _outputDir;
    private readonly object? _config;
    private readonly Dictionary<string, double> _stepMetrics = new();
    private Dictionary<string, Ema>? _emas;
    private readonly IReadOnlyList<BFloat16Shadow> _shadows;

    /// <summary>Creates a loop over named modules (e.g. "unet", "text_encoder") and their optimizer.</summary>
    /// <param name="modules">Trained modules by name; each is checkpointed as NAME.safetensors.</param>
    /// <param name="optimizer">The optimizer; its parameter groups' initial learning rates are the peaks.</param>
    /// <param name="options">Loop settings.</param>
    /// <param name="outputDir">Where checkpoints go (null: none, no resume).</param>
    /// <param name="config">The experiment's config record, written as config.json beside every checkpoint.</param>
    /// <param name="shadows">
    /// Mixed precision: bfloat16 copies of (some of) <paramref name="modules"/> that the loss function computes with
    /// (null or empty: the loss uses the modules themselves). The loop casts the float32 weights into each copy before
    /// the first step and after every optimizer step, and adds each copy's gradients to the float32 weights after every
    /// backward pass; the optimizer, clipping, EMA and checkpoints see only the float32 modules.
    /// </param>
    public Trainer(IReadOnlyDictionary<string, nn.Module> modules, OptimizerHelper optimizer, TrainerOptions options, string? outputDir = null, object? config = null,
        IReadOnlyList<BFloat16Shadow>? shadows = null)
    {
        if (options.TotalSteps < 1) throw new ArgumentException($"TotalSteps must be at least 1, got {options.TotalSteps}");
        if (options.GradAccumulation < 1) throw new ArgumentException($"GradAccumulation must be at least 1, got {options.GradAccumulation}");
        _modules = modules;
        _optimizer = optimizer;
        _options = options;
        _outputDir = outputDir;
        _config = config;
        _shadows = shadows ?? [];
        foreach (var s in _shadows)
            if (!modules.Values.Contains(s.MasterModule))
                throw new ArgumentException("a bfloat16 copy's master is not one of the trained modules", nameof(shadows));
    }

    /// <summary>The history so far (restored on resume).</summary>
    public TrainingHistory History { get; private set; } = new();

    /// <summary>
    /// The EMA of each trained module by its name, when <see cref="TrainerOptions.EmaDecay"/> is set (empty before
    /// <see cref="Run"/> and without EMA). Frozen modules (no parameter requires a gradient) have none.
    /// </summary>
    public IReadOnlyDictionary<string, Ema> Emas => (IReadOnlyDictionary<string, Ema>?)_emas ?? new Dictionary<string, Ema>();

    /// <summary>Copies every module's EMA into the module (for sampling or evaluation with the averaged weights).</summary>
    public void ApplyEma()
    {
        foreach (var (name, ema) in Emas) ema.CopyTo(_modules[name]);
    }

    /// <summary>True when a module has a parameter that requires a gradient (it is trained, so it gets an EMA).</summary>
    public static bool IsTrained(nn.Module module) => module.parameters().Any(p => p.requires_grad);

    /// <summary>Records a metric for the current step (averaged over its micro-steps).</summary>
    public void Report(string name, double value) =>
        _stepMetrics[name] = _stepMetrics.TryGetValue(name, out var v) ? v + value / _options.GradAccumulation : value / _options.GradAccumulation;

    /// <summary>Folder of the checkpoints.</summary>
    public string? CheckpointRoot => _outputDir is null ? null : Path.Combine(_outputDir, "checkpoints");

    /// <summary>
    /// Runs to <see cref="TrainerOptions.TotalSteps"/>, resuming from the latest checkpoint when there is one.
    /// <paramref name="loss"/> computes the scalar loss of one micro-batch; the loop does backward, clipping and
    /// the optimizer step. A non-finite loss stops the run with an error naming the step.
    /// <paramref name="afterStep"/>, when given, runs after each optimizer step (and EMA update) and before the
    /// step is recorded and checkpointed, with the step index: e.g. a DINO teacher's EMA update. Whatever it
    /// changes must live in the modules (or be derived from the step) for a resumed run to match.
    /// </summary>
    public TrainingHistory Run(Func<TrainStepContext, Tensor> loss, CancellationToken cancellation = default, Action<int>? afterStep = null)
    {
        if (_options.EmaDecay is not null)
            _emas ??= _modules.Where(kv => IsTrained(kv.Value)).ToDictionary(kv => kv.Key, kv => new Ema(kv.Value));
        int start = TryResume();
        var groups = _optimizer.ParamGroups.ToList();
        var initialLrs = groups.Select(g => g.InitialLearningRate).ToArray();
        var parameters = _modules.Values.SelectMany(m => m.parameters()).Where(p => p.requires_grad).ToList();
        foreach (var m in _modules.Values) m.train();
        foreach (var s in _shadows) s.PullWeights();

        using var progress = ProgressReporter.Start(_options.Title, _options.TotalSteps, "steps");
        if (start > 0) progress.Advance(start);
        for (int step = start; step < _options.TotalSteps; step++)
        {
            cancellation.ThrowIfCancellationRequested();
            double factor = Schedules.WarmupCosine(step, _options.WarmupSteps, _options.TotalSteps, _options.MinLrFraction);
            for (int g = 0; g < groups.Count; g++) groups[g].LearningRate = initialLrs[g] * factor;
            _stepMetrics.Clear();
            _optimizer.zero_grad();
            double stepLoss = 0;
            for (int micro = 0; micro < _options.GradAccumulation; micro++)
            {
                using var scope = NewDisposeScope();
                long streamSeed = StreamSeed(_options.Seed, step, micro);
                torch.random.manual_seed(streamSeed);                 // dropout, drop-path
                using var gen = new Generator(seed: (ulong)streamSeed);
                var l = loss(new TrainStepContext(step, micro, gen, new Random((int)(streamSeed & 0x7fffffff))));
                double value = l.item<float>();
                if (!double.IsFinite(value)) throw new RoentGen.Platform.RunStateException($"{_options.Title}: loss is {value} at step {step} (micro-batch {micro})");
                (l / _options.GradAccumulation).backward();
                foreach (var s in _shadows) s.PushGradients();
                stepLoss += value / _options.GradAccumulation;
            }
            if (_options.GradClipNorm > 0) nn.utils.clip_grad_norm_(parameters, _options.GradClipNorm);
            _optimizer.step();
            foreach (var s in _shadows) s.PullWeights();
            if (_emas is not null)
                foreach (var (name, ema) in _emas) ema.Update(_modules[name], TrainerOptions.WarmedUpEmaDecay(_options.EmaDecay!.Value, step));
            if (afterStep is not null)
            {
                using var scope = NewDisposeScope();
                afterStep(step);
            }

            History.Loss.Add(stepLoss);
            History.LrFactor.Add(factor);
            foreach (var (k, v) in _stepMetrics)
            {
                if (!History.Metrics.TryGetValue(k, out var list)) History.Metrics[k] = list = new List<double>();
                list.Add(v);
                progress.SetMetric(k, v);
            }
            progress.SetMetric("loss", stepLoss);
            progress.Advance();
            bool last = step + 1 == _options.TotalSteps;
            if (_outputDir is not null && (last || (_options.CheckpointEvery > 0 && (step + 1) % _options.CheckpointEvery == 0)))
                SaveCheckpoint(step + 1);
        }
        foreach (var m in _modules.Values) m.eval();
        foreach (var s in _shadows) s.ComputeModule.eval();
        return History;
    }

    /// <summary>A distinct, reproducible seed for each (seed, step, micro-step).</summary>
    public static long StreamSeed(long seed, int step, int micro)
    {
        ulong h = (ulong)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)step << 20) ^ (ulong)micro;
        h ^= h >> 33; h *= 0xFF51AFD7ED558CCDUL; h ^= h >> 33; h *= 0xC4CEB9FE1A85EC53UL; h ^= h >> 33;
        return (long)(h & 0x7FFFFFFFFFFFFFFFUL);
    }

    // Layout: checkpoints/step-000100/{NAME.safetensors, ema-NAME.safetensors (trained modules, with EMA), optimizer.bin,
    // history.json, config.json}
    // and checkpoints/latest naming the newest complete one. A folder is written under a temporary name and
    // renamed when complete, so a run killed mid-write leaves the previous checkpoint intact.
    private void SaveCheckpoint(int step)
    {
        var root = CheckpointRoot!;
        Directory.CreateDirectory(root);
        string name = $"step-{step:D6}";
        var tmp = Path.Combine(root, $".tmp-{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        foreach (var (key, module) in _modules)
            SafeTensors.Save(Path.Combine(tmp, key + ".safetensors"), module.state_dict());
        if (_emas is not null)
            foreach (var (key, ema) in _emas) SafeTensors.Save(Path.Combine(tmp, EmaFileName(key)), ema.State);
        using (var ms = new MemoryStream())
        {
            using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) _optimizer.save_state_dict(w);
            File.WriteAllBytes(Path.Combine(tmp, "optimizer.bin"), ms.ToArray());
        }
        File.WriteAllText(Path.Combine(tmp, "history.json"), JsonSerializer.Serialize(History));
        if (_config is not null) File.WriteAllText(Path.Combine(tmp, "config.json"), JsonSerializer.Serialize(_config, _config.GetType(), SafeTensors.ConfigJsonOptions));
        var final = Path.Combine(root, name);
        if (Directory.Exists(final)) Directory.Delete(final, true);
        Directory.Move(tmp, final);
        AtomicFile.WriteAllText(Path.Combine(root, "latest"), name);
        foreach (var old in Directory.GetDirectories(root, "step-*").OrderByDescending(d => d, StringComparer.Ordinal).Skip(Math.Max(1, _options.KeepCheckpoints)))
            Directory.Delete(old, true);
        foreach (var stale in Directory.GetDirectories(root, ".tmp-*")) Directory.Delete(stale, true);
    }

    /// <summary>The file of a module's EMA inside a checkpoint folder.</summary>
    public static string EmaFileName(string module) => $"ema-{module}.safetensors";

    /// <summary>The loss history saved with the newest checkpoint under an output folder (empty when there is none).</summary>
    /// <exception cref="InvalidDataException">history.json is missing or unreadable.</exception>
    public static TrainingHistory ReadHistory(string outputDir)
    {
        if (LatestCheckpoint(outputDir) is not { } dir) return new TrainingHistory();
        var file = Path.Combine(dir, "history.json");
        if (!File.Exists(file)) throw new InvalidDataException($"{dir}: checkpoint has no history.json");
        return JsonSerializer.Deserialize<TrainingHistory>(File.ReadAllText(file)) ?? throw new InvalidDataException($"{file} is empty");
    }

    /// <summary>The newest complete checkpoint folder under an output folder, or null.</summary>
    public static string? LatestCheckpoint(string outputDir)
    {
        var root = Path.Combine(outputDir, "checkpoints");
        var pointer = Path.Combine(root, "latest");
        if (!File.Exists(pointer)) return null;
        var dir = Path.Combine(root, File.ReadAllText(pointer).Trim());
        return Directory.Exists(dir) ? dir : null;
    }

    private int TryResume()
    {
        if (_outputDir is null) return 0;
        var dir = LatestCheckpoint(_outputDir);
        if (dir is null) return 0;
        foreach (var (key, module) in _modules)
        {
            using var file = SafeTensors.Load(Path.Combine(dir, key + ".safetensors"));
            StateDict.Load(module, file.Tensors, strict: true, sourceName: Path.Combine(dir, key + ".safetensors"));
        }
        if (_emas is not null)
        {
            foreach (var (name, ema) in _emas)
            {
                var emaPath = Path.Combine(dir, EmaFileName(name));
                // Checkpoints written before EMA covered every trained module hold the first module's as ema.safetensors.
                var legacy = Path.Combine(dir, "ema.safetensors");
                if (!File.Exists(emaPath) && name == _modules.Keys.First() && File.Exists(legacy)) emaPath = legacy;
                if (!File.Exists(emaPath))
                    throw new InvalidDataException($"{dir}: the run keeps an EMA of the trained module '{name}' but the checkpoint has no {EmaFileName(name)}");
                using var file = SafeTensors.Load(emaPath);
                ema.Load(file.Tensors);
            }
        }
        using (var r = new BinaryReader(File.OpenRead(Path.Combine(dir, "optimizer.bin")))) _optimizer.load_state_dict(r);
        History = JsonSerializer.Deserialize<TrainingHistory>(File.ReadAllText(Path.Combine(dir, "history.json")))
                  ?? throw new InvalidDataException($"{dir}/history.json is empty");
        if (History.Steps > _options.TotalSteps)
            throw new RoentGen.Platform.RunStateException($"checkpoint {dir} is at step {History.Steps}, beyond TotalSteps {_options.TotalSteps}");
        return History.Steps;
    }
}
