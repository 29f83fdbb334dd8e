using System.Globalization;
using RoentGen.Data;
using RoentGen.Platform;

namespace RoentGen.Diffusion;

/// <summary>
/// Settings of sampling a list of prompts into a folder, one image per prompt (<see cref="PromptListSampling"/>). Every
/// value here goes into the job's config hash, so shards that differ in any of them are refused by the merge.
/// </summary>
public sealed record PromptListSettings
{
    /// <summary>The prompts; image i is prompt i.</summary>
    public required IReadOnlyList<string> Prompts { get; init; }
    /// <summary>Identifies the model (the CLI passes the checkpoint folder's full path): part of the config hash.</summary>
    public required string Model { get; init; }
    /// <summary>The negative prompt.</summary>
    public string NegativePrompt { get; init; } = "";
    /// <summary>Classifier-free guidance scale.</summary>
    public double GuidanceScale { get; init; } = 4.0;
    /// <summary>Denoising steps.</summary>
    public int Steps { get; init; } = 20;
    /// <summary>The sampler.</summary>
    public SchedulerKind Scheduler { get; init; } = SchedulerKind.DpmSolverPlusPlus;
    /// <summary>Base seed: prompt i is sampled with seed <see cref="Seed"/> + i (<see cref="SeedOf"/>), whatever the sharding.</summary>
    public long Seed { get; init; } = 1;

    /// <summary>The seed of prompt <paramref name="index"/>: <see cref="Seed"/> + index.</summary>
    public long SeedOf(int index) => Seed + index;
}

/// <summary>
/// Samples a prompt list into a folder as a sharded job (<see cref="ShardJob"/>, kind "samples"): image i is
/// images/sample_IIIIII.png, sampled alone (batch of one) with seed <see cref="PromptListSettings.SeedOf"/>(i), so an
/// image depends only on its prompt, its index and the model, never on which shard or batch it ran in; the merge writes
/// samples.csv (index, prompt, seed, file).
/// </summary>
public static class PromptListSampling
{
    /// <summary>The columns of samples.csv.</summary>
    public static IReadOnlyList<string> TableHeader { get; } = ["index", "prompt", "seed", "file"];

    /// <summary>
    /// Reads a prompt file: one prompt per line (UTF-8), blank lines skipped, surrounding spaces trimmed; the remaining
    /// lines are prompts 0, 1, 2... in file order.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file holds no prompt.</exception>
    public static IReadOnlyList<string> ReadPromptFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--prompts {path}: no such file", path);
        var prompts = InputFile.ReadAllTextStrict(path).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (prompts.Length == 0) throw new InvalidDataException($"--prompts {path}: no prompt in the file (expected one prompt per line)");
        return prompts;
    }

    /// <summary>Runs <paramref name="shard"/> of sampling <paramref name="settings"/> into <paramref name="dir"/> (see the class summary).</summary>
    /// <exception cref="RunStateException">The folder holds shards of another sampling job.</exception>
    public static ShardRunResult Run(TextToImagePipeline pipeline, PromptListSettings settings, string dir, Shard shard, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(shard);
        if (settings.Prompts.Count == 0) throw new ArgumentException("no prompts to sample");
        var full = Path.GetFullPath(dir);
        var job = new ShardJob
        {
            Kind = "samples", ConfigHash = ShardJob.HashConfig("samples", settings), TotalItems = settings.Prompts.Count,
            TableFile = "samples.csv", TableHeader = TableHeader, ChunkSize = 8,
        };
        var range = shard.Range(settings.Prompts.Count);
        ProgressReporter? progress = null;   // started with the first chunk to produce: a refused or finished shard shows none
        try
        {
            return job.Run(full, shard, chunk => ProduceChunk(chunk, progress ??= ProgressReporter.Start($"sampling shard {shard}", (long)range.Count * settings.Steps, "steps")), log);
        }
        finally
        {
            progress?.Dispose();
        }

        List<ShardItem> ProduceChunk(ItemRange chunk, ProgressReporter progress)
        {
            Directory.CreateDirectory(Path.Combine(full, "images"));
            var items = new List<ShardItem>(chunk.Count);
            for (int i = chunk.Start; i < chunk.End; i++)
            {
                var request = new SampleRequest
                {
                    Prompts = [settings.Prompts[i]], NegativePrompt = settings.NegativePrompt, GuidanceScale = settings.GuidanceScale,
                    Steps = settings.Steps, Scheduler = settings.Scheduler, Seed = settings.SeedOf(i), BatchSize = 1,
                };
                using var images = pipeline.Sample(request, (_, _) => progress.Advance());   // (1, 1, H, W)
                using var first = images[0];
                var file = string.Create(CultureInfo.InvariantCulture, $"images/sample_{i:D6}.png");
                File.WriteAllBytes(Path.Combine(full, file), ImageIO.EncodePng(ImageTensors.FromTensor(first)));
                items.Add(new ShardItem(i, [i.ToString(CultureInfo.InvariantCulture), settings.Prompts[i], settings.SeedOf(i).ToString(CultureInfo.InvariantCulture), file], [file]));
            }
            return items;
        }
    }
}
