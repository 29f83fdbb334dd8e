using System.Globalization;
using System.Runtime.InteropServices;
using RoentGen.Evaluation;
using RoentGen.Platform;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>
/// The separable part of <see cref="DiffusionEvaluation.Run"/> as a sharded job (kind "eval-samples"): sampling the
/// adherence images of the trained model. An item is one sampling batch of <see cref="DiffusionEvaluationOptions.BatchSize"/>
/// images (batch b holds images b·B .. b·B + B − 1 with the noise of seeds Seed + i), exactly the batches the unsharded
/// evaluation samples, so the images are the same tensors. Each batch is stored as raw little-endian float32
/// (n, 1, H, W) in eval-samples/batch_BBBBBB.f32; the merge writes eval-samples.csv. <see cref="Load"/> then gives the
/// images to <see cref="DiffusionEvaluation.Run"/>, which computes the features, FID/KID, adherence and diversity over all
/// of them at once (those are joint statistics, so they are not split). The untrained baseline and the sampler
/// comparison still run in that last process (skip them with UntrainedBaseline = false, SamplerComparisonImages = 0).
/// </summary>
public static class EvaluationSampleShards
{
    /// <summary>The job kind.</summary>
    public const string Kind = "eval-samples";

    /// <summary>The columns of eval-samples.csv.</summary>
    public static IReadOnlyList<string> TableHeader { get; } = ["batch", "first_image", "images", "height", "width", "file"];

    /// <summary>The expanded prompt list: each prompt of the set <see cref="DiffusionEvaluationOptions.ImagesPerPrompt"/> times, in order.</summary>
    public static IReadOnlyList<AdherencePrompt> ExpandedPrompts(DiffusionEvaluationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ImagesPerPrompt < 1) throw new ArgumentOutOfRangeException(nameof(options), options.ImagesPerPrompt, "ImagesPerPrompt must be at least 1");
        var prompts = options.Prompts ?? PromptAdherence.DefaultPrompts;
        return prompts.SelectMany(p => Enumerable.Repeat(p, options.ImagesPerPrompt)).ToList();
    }

    private static ShardJob Job(DiffusionEvaluationOptions options, string model)
    {
        var texts = ExpandedPrompts(options).Select(p => p.Text).ToList();
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be at least 1");
        var settings = new { model, texts, options.GuidanceScale, options.Steps, Scheduler = options.Scheduler.ToString(), options.Seed, options.BatchSize };
        return new ShardJob
        {
            Kind = Kind, ConfigHash = ShardJob.HashConfig(Kind, settings), TotalItems = (texts.Count + options.BatchSize - 1) / options.BatchSize,
            TableFile = Kind + ".csv", TableHeader = TableHeader, ChunkSize = 1,
        };
    }

    /// <summary>Samples <paramref name="shard"/>'s batches of the evaluation images into <paramref name="dir"/>.</summary>
    /// <param name="pipeline">The trained pipeline.</param>
    /// <param name="options">The evaluation settings (prompts, images per prompt, guidance, steps, sampler, seed, batch size).</param>
    /// <param name="model">Identifies the model in the config hash (the CLI passes the checkpoint's full path).</param>
    /// <param name="dir">The folder every shard of the job shares.</param>
    /// <param name="shard">Which shard.</param>
    /// <param name="log">Receives a line when a shard is skipped or resumed.</param>
    /// <exception cref="RunStateException">The folder holds shards of other settings.</exception>
    public static ShardRunResult Run(TextToImagePipeline pipeline, DiffusionEvaluationOptions options, string model, string dir, Shard shard, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(shard);
        var job = Job(options, model);
        var texts = ExpandedPrompts(options).Select(p => p.Text).ToList();
        var full = Path.GetFullPath(dir);
        var range = shard.Range(job.TotalItems);
        ProgressReporter? progress = null;
        try
        {
            return job.Run(full, shard, chunk => ProduceBatches(chunk, progress ??= ProgressReporter.Start($"evaluation samples shard {shard}", (long)range.Count * options.Steps, "steps")), log);
        }
        finally
        {
            progress?.Dispose();
        }

        List<ShardItem> ProduceBatches(ItemRange chunk, ProgressReporter progress)
        {
            Directory.CreateDirectory(Path.Combine(full, Kind));
            var items = new List<ShardItem>();
            for (int b = chunk.Start; b < chunk.End; b++)
            {
                int first = b * options.BatchSize, n = Math.Min(options.BatchSize, texts.Count - first);
                // The unsharded evaluation samples this batch with offset `first` into one request seeded `Seed`: its noise is
                // drawn from Seed + first + i, which a request of this batch alone seeded Seed + first reproduces.
                var request = new SampleRequest
                {
                    Prompts = texts.GetRange(first, n), GuidanceScale = options.GuidanceScale, Steps = options.Steps, Scheduler = options.Scheduler,
                    Seed = options.Seed + first, BatchSize = options.BatchSize,
                };
                using var images = pipeline.Sample(request, (_, _) => progress.Advance());   // (n, 1, H, W)
                var file = string.Create(CultureInfo.InvariantCulture, $"{Kind}/batch_{b:D6}.f32");
                var values = images.to(ScalarType.Float32).contiguous().data<float>().ToArray();
                File.WriteAllBytes(Path.Combine(full, file), MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
                var row = new[] { b, first, n, (int)images.shape[2], (int)images.shape[3] }.Select(v => v.ToString(CultureInfo.InvariantCulture)).Append(file).ToArray();
                items.Add(new ShardItem(b, row, [file]));
            }
            return items;
        }
    }

    /// <summary>
    /// The merged evaluation images (N, 1, H, W) of <paramref name="dir"/>, in image order, after <c>roentgen merge</c>.
    /// </summary>
    /// <exception cref="InvalidDataException">The folder is not merged, holds another job or other settings, or a batch file does not match its row.</exception>
    public static Tensor Load(string dir, DiffusionEvaluationOptions options, string model)
    {
        var job = Job(options, model);
        var full = Path.GetFullPath(dir);
        var mergedPath = Path.Combine(full, "shards", ShardMerge.MergedName);
        if (!File.Exists(mergedPath))
            throw new InvalidDataException($"{dir}: no shards/{ShardMerge.MergedName}; run every shard of the evaluation sampling, then roentgen merge {dir}");
        var merged = System.Text.Json.JsonSerializer.Deserialize<MergedManifest>(File.ReadAllText(mergedPath), ShardManifest.Json)
                     ?? throw new InvalidDataException($"{mergedPath}: empty");
        if (merged.Kind != Kind) throw new InvalidDataException($"{mergedPath}: a merged {merged.Kind} job, expected {Kind}");
        if (merged.ConfigHash != job.ConfigHash)
            throw new InvalidDataException($"{mergedPath}: the evaluation samples there were made with other settings or another model (config hash {merged.ConfigHash[..12]}..., "
                                           + $"these options {job.ConfigHash[..12]}...); pass the options the shards ran with");
        var table = RoentGen.Data.Csv.ReadFile(Path.Combine(full, job.TableFile!));
        if (table.Rows.Count != job.TotalItems) throw new InvalidDataException($"{job.TableFile}: {table.Rows.Count} batches, expected {job.TotalItems}");
        var batches = new List<Tensor>();
        try
        {
            foreach (var row in table.Rows)
            {
                int n = int.Parse(row["images"], CultureInfo.InvariantCulture), h = int.Parse(row["height"], CultureInfo.InvariantCulture), w = int.Parse(row["width"], CultureInfo.InvariantCulture);
                var path = Path.Combine(full, row["file"]);
                var bytes = File.ReadAllBytes(path);
                if (bytes.Length != (long)n * h * w * sizeof(float))
                    throw new InvalidDataException($"{path}: {bytes.Length} bytes, expected {n}x1x{h}x{w} float32 ({(long)n * h * w * sizeof(float)} bytes)");
                batches.Add(tensor(MemoryMarshal.Cast<byte, float>(bytes).ToArray(), [n, 1, h, w]));
            }
            return cat(batches, 0);
        }
        finally
        {
            foreach (var b in batches) b.Dispose();
        }
    }
}
