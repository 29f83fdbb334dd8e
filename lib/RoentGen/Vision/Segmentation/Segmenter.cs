using System.Diagnostics;
using RoentGen.Data.Datasets;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Vision.Segmentation;

/// <summary>A trained segmenter: its config (structures, size, normalisation) and U-Net.</summary>
public sealed class Segmenter : IDisposable
{
    /// <summary>The model folder inside a run folder.</summary>
    public const string ModelFolder = "segmenter";

    /// <summary>Wraps a network built from <paramref name="config"/>.</summary>
    public Segmenter(SegmentationConfig config, SegmentationUNet network)
    {
        Config = config;
        Network = network;
    }

    /// <summary>The run's config.</summary>
    public SegmentationConfig Config { get; }

    /// <summary>The network.</summary>
    public SegmentationUNet Network { get; }

    /// <summary>The structures, in output-channel order.</summary>
    public IReadOnlyList<string> Structures => Config.Structures;

    /// <summary>Logits of (B, 1, S, S) intensities in [0, 1] (any range: the input is normalised per image first).</summary>
    public Tensor Logits(Tensor images) => Network.call(InputNormalizer.Apply(images, Config.Normalization));

    /// <summary>
    /// Binary masks (B, C, S, S) in {0, 1}: sigmoid ≥ 0.5, batch by batch, without gradients; with
    /// <paramref name="cleanup"/>, each structure's anatomical clean-up (<see cref="MaskCleanup"/>: the two largest
    /// components of the lungs, the largest of the heart, holes filled).
    /// </summary>
    /// <param name="images">(B, 1, S, S) intensities.</param>
    /// <param name="batchSize">Images per forward pass.</param>
    /// <param name="cleanup">Apply <see cref="MaskCleanup"/> to each structure.</param>
    /// <param name="tta">Average the probabilities over <see cref="TestTimeAugmentation"/>'s zooms before thresholding (null: one pass).</param>
    public Tensor Predict(Tensor images, int batchSize = 16, bool cleanup = false, TestTimeAugmentation? tta = null)
    {
        var raw = PredictRaw(images, batchSize, tta);
        if (!cleanup || Structures.All(s => MaskCleanup.ComponentsOf(s) == 0)) return raw;
        long b = raw.shape[0], c = raw.shape[1];
        int h = (int)raw.shape[2], w = (int)raw.shape[3];
        var values = raw.contiguous().data<float>().ToArray();
        raw.Dispose();
        for (long i = 0; i < b; i++)
            for (int ch = 0; ch < c; ch++)
            {
                int keep = MaskCleanup.ComponentsOf(Structures[ch]);
                if (keep == 0) continue;
                int offset = (int)((i * c + ch) * h * w);
                MaskCleanup.KeepLargest(values.AsSpan(offset, h * w), w, h, keep).CopyTo(values, offset);
            }
        return tensor(values, [b, c, h, w]);
    }

    private Tensor PredictRaw(Tensor images, int batchSize, TestTimeAugmentation? tta)
    {
        Network.eval();
        using var _ = no_grad();
        var parts = new List<Tensor>();
        for (long s = 0; s < images.shape[0]; s += batchSize)
        {
            using var scope = NewDisposeScope();
            var x = images.narrow(0, s, Math.Min(batchSize, images.shape[0] - s));
            var mask = tta is null ? Logits(x).ge(0) : tta.Probabilities(x, Logits).ge(0.5);
            parts.Add(mask.to_type(ScalarType.Float32).MoveToOuterDisposeScope());
        }
        using var joined = NewDisposeScope();
        var result = cat(parts, 0).MoveToOuterDisposeScope();
        foreach (var p in parts) p.Dispose();
        return result;
    }

    /// <summary>Writes the model folder (model.safetensors and config.json, through <see cref="Checkpoint"/>).</summary>
    public void Save(string folder) => Checkpoint.Save(folder, Network, Config);

    /// <summary>
    /// Loads a segmenter from a model folder, from a run folder holding one (<see cref="ModelFolder"/>), or from one of
    /// the run's checkpoint folders (checkpoints/step-NNNNNN, whose weights are <c>unet.safetensors</c>), to score a run
    /// part-way.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="FileNotFoundException">The folder holds no segmenter (the message says what was expected).</exception>
    /// <exception cref="InvalidDataException">The config or weights do not fit.</exception>
    public static Segmenter Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"--model: no such folder: {folder}");
        var checkpointWeights = Path.Combine(folder, CheckpointWeights);
        if (File.Exists(checkpointWeights) && File.Exists(Path.Combine(folder, Checkpoint.ConfigFileName)))
        {
            var pinned = RunFolder.ReadConfig<SegmentationConfig>(Path.Combine(folder, Checkpoint.ConfigFileName), "segmentation checkpoint");
            pinned.Validate();
            var model = new SegmentationUNet(pinned.Network);
            using (var file = SafeTensors.Load(checkpointWeights)) StateDict.Load(model, file.Tensors, strict: true, sourceName: checkpointWeights);
            model.eval();
            return new Segmenter(pinned, model);
        }
        var dir = File.Exists(Path.Combine(folder, Checkpoint.WeightsFileName)) ? folder : Path.Combine(folder, ModelFolder);
        if (!File.Exists(Path.Combine(dir, Checkpoint.WeightsFileName)))
            throw new FileNotFoundException($"{folder}: no trained segmenter ({Checkpoint.WeightsFileName} here or in {ModelFolder}/, or a checkpoint's {CheckpointWeights}); "
                + $"train one with 'roentgen segment train --out {folder}'", Path.Combine(dir, Checkpoint.WeightsFileName));
        var config = Checkpoint.ReadConfig<SegmentationConfig>(dir);
        var net = new SegmentationUNet(config.Network);
        Checkpoint.Load(dir, net);
        net.eval();
        return new Segmenter(config, net);
    }

    /// <summary>The U-Net's weights file inside a training checkpoint folder (the trainer names it after the module, "unet").</summary>
    public const string CheckpointWeights = "unet.safetensors";

    /// <summary>Frees the network.</summary>
    public void Dispose() => Network.Dispose();
}

/// <summary>What <see cref="SegmentationRuns"/>.Train did.</summary>
/// <param name="Folder">The run folder.</param>
/// <param name="ModelFolder">The saved segmenter.</param>
/// <param name="TrainedNow">False when the folder already held the finished run.</param>
/// <param name="Steps">Steps reached.</param>
/// <param name="Seconds">Wall time of this call.</param>
/// <param name="FinalLoss">Loss of the last step.</param>
/// <param name="TrainImages">Images trained on.</param>
public sealed record SegmentationRun(string Folder, string ModelFolder, bool TrainedNow, int Steps, double Seconds, double FinalLoss, int TrainImages);

/// <summary>
/// Trains a <see cref="SegmentationUNet"/> into a <see cref="RunFolder"/> (config pinned, atomic checkpoints, resume
/// after interruption, run.json last), then saves it as <see cref="Segmenter.ModelFolder"/>. Each step draws a batch
/// from the training images with the step's own random stream, applies the config's <see cref="DomainRandomization"/>,
/// normalises each image (<see cref="InputNormalization"/>) and minimises BCE + soft Dice.
/// </summary>
public static class SegmentationRuns
{
    /// <summary>The run folder's kind.</summary>
    public const string Kind = "segmentation";

    /// <summary>Trains (or resumes, or finds finished) the run of <paramref name="config"/> in <paramref name="folder"/>.</summary>
    /// <param name="config">The run's config (validated).</param>
    /// <param name="folder">The run folder.</param>
    /// <param name="allowOutsideRoot">With labels.csv data: accept image and mask paths outside its folder.</param>
    /// <param name="log">Progress lines (default: none).</param>
    /// <param name="cancellation">Stops the run between steps (the last checkpoint stays).</param>
    /// <exception cref="ArgumentException">The config is out of range.</exception>
    /// <exception cref="InvalidOperationException">The folder holds another run.</exception>
    /// <exception cref="InvalidDataException">The data have no mask of the structures.</exception>
    public static SegmentationRun Train(SegmentationConfig config, string folder, bool allowOutsideRoot = false, Action<string>? log = null,
        CancellationToken cancellation = default)
    {
        config.Validate();
        log ??= _ => { };
        var run = RunFolder.Open(folder, Kind, config, "Steps");
        var modelDir = Path.Combine(run.Path, Segmenter.ModelFolder);
        if (run.IsFinishedAt(config.Steps) && File.Exists(Path.Combine(modelDir, Checkpoint.WeightsFileName)))
            return new SegmentationRun(run.Path, modelDir, false, config.Steps, 0, run.Finished!.FinalLoss ?? double.NaN, 0);
        var data = config.Data.Equals(SegmentationData.Phantoms, StringComparison.OrdinalIgnoreCase)
            ? SegmentationData.PhantomRecords(config.Size, config.Seed, config.TrainImages)
            : SegmentationData.LabelsCsv(config.Data, allowOutsideRoot);
        var watch = Stopwatch.StartNew();
        var (set, _) = SegmentationData.Load(data, config.Structures, config.Size, config.TrainImages);
        using var pool = set;
        return TrainOn(config, run, modelDir, pool, data.Name, watch, log, cancellation);
    }

    /// <summary>
    /// Trains (or resumes, or finds finished) the run of <paramref name="config"/> in <paramref name="folder"/> on images and
    /// masks already stacked (e.g. real images joined with synthetic ones); <see cref="SegmentationConfig.Data"/> and
    /// <see cref="SegmentationConfig.TrainImages"/> are only recorded. The set's masks must be in the config's structure
    /// order and its images at the config's size.
    /// </summary>
    /// <param name="config">The run's config (validated).</param>
    /// <param name="folder">The run folder.</param>
    /// <param name="pool">Training images (N, 1, S, S) in [0, 1], masks (N, C, S, S) and presence (N, C); not disposed here.</param>
    /// <param name="dataName">How the log names the data.</param>
    /// <param name="log">Progress lines (default: none).</param>
    /// <param name="cancellation">Stops the run between steps (the last checkpoint stays).</param>
    /// <exception cref="ArgumentException">The config is out of range, or the set's shape does not fit it (the message names the shapes).</exception>
    /// <exception cref="InvalidOperationException">The folder holds another run.</exception>
    public static SegmentationRun Train(SegmentationConfig config, string folder, SegmentationSet pool, string dataName, Action<string>? log = null,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(pool);
        config.Validate();
        log ??= _ => { };
        long[] want = [pool.Images.shape[0], config.Structures.Count, config.Size, config.Size];
        if (pool.Images.dim() != 4 || pool.Images.shape[1] != 1 || pool.Images.shape[2] != config.Size || pool.Images.shape[3] != config.Size
            || !pool.Masks.shape.SequenceEqual(want) || !pool.Present.shape.SequenceEqual(new[] { want[0], want[1] }) || want[0] < 1)
            throw new ArgumentException($"segmentation set: images [{string.Join(", ", pool.Images.shape)}], masks [{string.Join(", ", pool.Masks.shape)}], present [{string.Join(", ", pool.Present.shape)}]; "
                + $"expected (N >= 1, 1, {config.Size}, {config.Size}), (N, {config.Structures.Count}, {config.Size}, {config.Size}) and (N, {config.Structures.Count}) for structures {string.Join(", ", config.Structures)}", nameof(pool));
        var run = RunFolder.Open(folder, Kind, config, "Steps");
        var modelDir = Path.Combine(run.Path, Segmenter.ModelFolder);
        if (run.IsFinishedAt(config.Steps) && File.Exists(Path.Combine(modelDir, Checkpoint.WeightsFileName)))
            return new SegmentationRun(run.Path, modelDir, false, config.Steps, 0, run.Finished!.FinalLoss ?? double.NaN, 0);
        return TrainOn(config, run, modelDir, pool, dataName, Stopwatch.StartNew(), log, cancellation);
    }

    private static SegmentationRun TrainOn(SegmentationConfig config, RunFolder run, string modelDir, SegmentationSet pool, string dataName, Stopwatch watch,
        Action<string> log, CancellationToken cancellation)
    {
        log($"segmentation: {pool.Images.shape[0]} training images of {dataName} at {config.Size} px, structures {string.Join(", ", config.Structures)}; "
            + $"U-Net {string.Join("-", config.Widths)} ({config.ParameterEstimate() / 1e6:0.00}M parameters), {config.Steps} steps of {config.BatchSize}; loaded in {watch.Elapsed.TotalSeconds:0.0} s");
        run.Start();

        manual_seed(config.Seed);
        using var net = new SegmentationUNet(config.Network);
        using var optimizer = new ScalarSafe.AdamW(net.parameters(), lr: config.LearningRate, weight_decay: config.WeightDecay);
        var trainer = new Trainer(new Dictionary<string, nn.Module> { ["unet"] = net }, optimizer, new TrainerOptions
        {
            TotalSteps = config.Steps, WarmupSteps = Math.Min(config.WarmupSteps, config.Steps - 1), MinLrFraction = 0.05, GradClipNorm = 1.0,
            CheckpointEvery = config.CheckpointEvery, Seed = config.Seed, Title = "segment",
        }, run.Path, config);
        var segmenter = new Segmenter(config, net);
        long n = pool.Images.shape[0];
        var history = trainer.Run(ctx =>
        {
            var idx = tensor(Enumerable.Range(0, config.BatchSize).Select(_ => (long)ctx.Random.Next((int)n)).ToArray());
            var x = pool.Images.index_select(0, idx);       // (B, 1, S, S)
            var y = pool.Masks.index_select(0, idx);        // (B, C, S, S)
            var present = pool.Present.index_select(0, idx); // (B, C)
            if (config.Augment is { } augment) (x, y) = augment.Apply(x, y, ctx.Random, ctx.Generator);
            return SegmentationLoss.DiceBce(segmenter.Logits(x), y, present, config.DiceWeight);
        }, cancellation);
        watch.Stop();
        segmenter.Save(modelDir);
        double loss = history.Steps > 0 ? history.Loss[^1] : double.NaN;
        run.Finish(history.Steps, watch.Elapsed.TotalSeconds, loss);
        log($"segmentation: {history.Steps} steps in {watch.Elapsed.TotalSeconds:0.0} s, final loss {loss:0.0000}; model in {modelDir}");
        return new SegmentationRun(run.Path, modelDir, true, history.Steps, watch.Elapsed.TotalSeconds, loss, (int)pool.Images.shape[0]);
    }
}
