using System.CommandLine;
using System.Diagnostics;
using RoentGen.Diffusion;
using RoentGen.Interactive;
using RoentGen.Interop.Diffusers;
using RoentGen.Platform;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen sample --checkpoint DIR | --weights DIR|FILE.safetensors|random:PRESET [--config DIR|PRESET] --prompt "..."
/// [--guidance 4 --steps 20 --scheduler dpmpp --seed 1 --n 8 --size 512 --precision fp32|bf16|auto --attention-slicing --vae-tiling]
/// --out FILE.png</c>; prints seconds per step and peak memory. Or <c>roentgen sample --checkpoint DIR --prompts FILE
/// [--shard i/N] --out DIR</c>: one image per line of FILE, prompt i with seed --seed + i, written into the folder as a
/// sharded job (<see cref="PromptListSampling"/>; <c>roentgen merge DIR</c> ends it).
/// </summary>
internal static class SampleCommand
{
    /// <summary>Query rows per chunk under --attention-slicing (SD's 4096 top-level tokens at 512 px in 4 chunks).</summary>
    public const int SliceQueries = 1024;

    public static Command Build()
    {
        var checkpoint = new Option<DirectoryInfo?>("--checkpoint") { Description = "A trained experiment folder (roentgen train ldm --out) or a diffusers Stable Diffusion folder." };
        var weights = new Option<string?>("--weights")
        {
            Description = "Stable Diffusion weights: a diffusers folder, a single-file LDM checkpoint (.safetensors; needs --config), "
                          + $"or random:PRESET for random weights at a real model's size (presets: {string.Join(", ", StableDiffusionConfigs.Presets)}).",
        };
        var config = new Option<string?>("--config") { Description = $"Configs for --weights FILE or random:: a diffusers folder's configs (with tokenizer/) or a preset ({string.Join(", ", StableDiffusionConfigs.Presets)})." };
        var tokenizerDir = new Option<DirectoryInfo?>("--tokenizer") { Description = "A CLIP tokenizer folder (vocab.json, merges.txt) for a preset --config, which carries none." };
        var prompt = new Option<string[]>("--prompt") { Description = "Prompt (repeat for several); or use --prompts.", AllowMultipleArgumentsPerToken = false };
        var promptFile = new Option<FileInfo?>("--prompts") { Description = "A prompt list: one prompt per line, one image each, prompt i seeded with --seed + i; --out is then a folder (images/, samples.csv after merge)." };
        var shard = ShardOption.Create();
        var negative = new Option<string>("--negative") { Description = "Negative prompt.", DefaultValueFactory = _ => "" };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 4.0 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 20 };
        var scheduler = new Option<string>("--scheduler") { Description = "ddpm, ddim, dpmpp or euler.", DefaultValueFactory = _ => "dpmpp" };
        var seed = new Option<long>("--seed") { Description = "Seed.", DefaultValueFactory = _ => 1 };
        var n = new Option<int>("--n") { Description = "Images per prompt.", DefaultValueFactory = _ => 4 };
        var batch = new Option<int?>("--batch") { Description = "Images per UNet call (default: 1 with --weights, 8 otherwise); guidance doubles the rows." };
        var size = new Option<int?>("--size") { Description = "Image side in pixels with --weights (default: the model's, 512 for SD 1.x and 2.x-base)." };
        var precision = new Option<string>("--precision")
        {
            Description = "fp32, bf16 or auto (bf16 where the CPU has AVX-512 BF16 and multiplies faster in it). With --checkpoint the UNet runs on a bfloat16 copy of the float32 weights; "
                          + "with --weights the weights are stored and computed in bfloat16.",
            DefaultValueFactory = _ => "auto",
        };
        var slicing = new Option<bool>("--attention-slicing") { Description = $"Compute attention over chunks of {SliceQueries} queries (same result, less memory)." };
        var tiling = new Option<bool>("--vae-tiling") { Description = "Decode in overlapping 32-latent tiles (256 px for SD), blended (close to, not equal to, the whole decode)." };
        var output = new Option<FileInfo>("--out") { Description = "PNG grid to write.", Required = true };
        var cmd = new Command("sample", "Generate chest X-rays from text with a trained latent diffusion model or Stable Diffusion weights.")
        {
            checkpoint, weights, config, tokenizerDir, prompt, promptFile, shard, negative, guidance, steps, scheduler, seed, n, batch, size, precision, slicing, tiling, output,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            if (parse.GetValue(promptFile) is { } listFile)
            {
                if (parse.GetValue(prompt) is { Length: > 0 }) throw new ArgumentException("give either --prompt or --prompts, not both");
                var model = parse.GetValue(checkpoint)?.FullName ?? throw new ArgumentException("--prompts needs --checkpoint DIR (a trained run or a diffusers folder)");
                var outDir = parse.GetValue(output)!.FullName;
                var settings = new PromptListSettings
                {
                    Prompts = PromptListSampling.ReadPromptFile(listFile.FullName), Model = model,
                    NegativePrompt = parse.GetValue(negative)!, GuidanceScale = parse.GetValue(guidance), Steps = parse.GetValue(steps),
                    Scheduler = NoiseScheduler.ParseKind(parse.GetValue(scheduler)!), Seed = parse.GetValue(seed),
                };
                var listPipe = LatentDiffusionRuns.LoadPipeline(settings.Model);
                ShardOption.RunAndMergeIfWhole(outDir, ShardOption.Get(parse, shard),
                    s => PromptListSampling.Run(listPipe, settings, outDir, s, line => Console.WriteLine(Cli.Escape(line))));
                return;
            }
            if (parse.GetValue(shard) is not null) throw new ArgumentException("--shard needs --prompts (a prompt list to split); --prompt samples one grid in one process");
            if (parse.GetValue(prompt) is not { Length: > 0 }) throw new ArgumentException("give --prompt \"...\" (repeatable) or --prompts FILE");
            var file = parse.GetValue(output)!;
            AtomicFile.EnsureWritable(file.FullName, "--out");
            int perPrompt = parse.GetValue(n);
            if (perPrompt < 1) throw new ArgumentException("--n must be at least 1");
            var dir = parse.GetValue(checkpoint);
            var source = parse.GetValue(weights);
            if ((dir is null) == (source is null)) throw new ArgumentException("give exactly one of --checkpoint DIR and --weights DIR|FILE|random:PRESET");
            var sampling = Precisions.Resolve(Cli.ParsePrecision(parse.GetValue(precision)!));
            var dtype = sampling == Precision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
            if (dir is not null && (parse.GetValue(size) is not null || parse.GetValue(config) is not null))
                throw new ArgumentException("--size and --config apply to --weights only");

            var clock = Stopwatch.StartNew();
            TextToImagePipeline pipe;
            if (dir is not null)
            {
                pipe = LatentDiffusionRuns.LoadPipeline(dir.FullName);
                pipe.Precision = sampling;
            }
            else
            {
                var configs = parse.GetValue(config) is { } c ? StableDiffusionConfigs.Resolve(c) : null;
                if (parse.GetValue(tokenizerDir) is { } tok)
                {
                    configs ??= source!.StartsWith(StableDiffusionWeights.RandomPrefix, StringComparison.Ordinal)
                        ? StableDiffusionConfigs.Resolve(source[StableDiffusionWeights.RandomPrefix.Length..])
                        : throw new ArgumentException("--tokenizer goes with --config (a preset carries no tokenizer)");
                    configs = configs with { Tokenizer = BpeTokenizer.LoadFolder(tok.FullName) };
                }
                int? latent = null;
                if (parse.GetValue(size) is int px)
                {
                    var factor = 1 << ((configs ?? (source!.StartsWith(StableDiffusionWeights.RandomPrefix, StringComparison.Ordinal)
                        ? StableDiffusionConfigs.Resolve(source[StableDiffusionWeights.RandomPrefix.Length..]) : null))?.Vae.BlockOutChannels.Count - 1 ?? 3);
                    if (px < factor || px % factor != 0) throw new ArgumentException($"--size {px}: expected a positive multiple of the VAE's {factor}x down-sampling");
                    latent = px / factor;
                }
                pipe = StableDiffusionWeights.Open(source!, configs, new DiffusersLoadOptions { DType = dtype, LatentSize = latent });
            }
            double loadSeconds = clock.Elapsed.TotalSeconds;
            if (parse.GetValue(slicing)) pipe.SetAttentionSlicing(SliceQueries);
            if (parse.GetValue(tiling)) pipe.VaeTiling = new VaeTiling();
            if (source is not null) pipe.DecodeChunk = 1;

            var prompts = parse.GetValue(prompt)!.SelectMany(p => Enumerable.Repeat(p, perPrompt)).ToList();
            var request = new SampleRequest
            {
                Prompts = prompts, NegativePrompt = parse.GetValue(negative)!, GuidanceScale = parse.GetValue(guidance),
                Steps = parse.GetValue(steps), Scheduler = NoiseScheduler.ParseKind(parse.GetValue(scheduler)!), Seed = parse.GetValue(seed),
                BatchSize = parse.GetValue(batch) ?? (source is not null ? 1 : new SampleRequest().BatchSize),
            };
            Memory.TrimNativeHeap();
            double rssBefore = Memory.CurrentRssMb(), peakLoading = Memory.PeakRssMb();
            bool reset = Memory.ResetPeakRss();
            var stepTimes = new List<double>();
            int batches = (prompts.Count + request.BatchSize - 1) / request.BatchSize;
            clock.Restart();
            double last = 0;
            Tensor images;
            using (var progress = ProgressReporter.Start("sampling", (long)batches * request.Steps, "steps"))
            {
                images = pipe.Sample(request, (_, _) =>
                {
                    double now = clock.Elapsed.TotalSeconds;
                    stepTimes.Add(now - last);
                    last = now;
                    progress.Advance();
                });
            }
            double total = clock.Elapsed.TotalSeconds;
            var grid = ImageGrid.FromTensor(images, columns: perPrompt, captions: prompts);
            AtomicFile.WriteAllBytes(file.FullName, grid.ToPng());
            Console.WriteLine($"wrote {prompts.Count} images to {Cli.Escape(file.FullName)}");
            var timing = SamplingTiming.From(stepTimes, total);
            Console.WriteLine($"loaded in {loadSeconds:F1} s; {timing.Steps} steps at {timing.SecondsPerStep:F2} s/step{(request.GuidanceScale != 1 ? " (guided: conditional and unconditional rows)" : "")}, "
                              + $"decode and the rest {timing.OtherSeconds:F1} s, {total:F1} s in all");
            Console.WriteLine($"memory: {rssBefore:F0} MiB resident before sampling; peak {Memory.PeakRssMb():F0} MiB {(reset ? "while sampling" : "over the process")}"
                              + $"{(reset ? $", {peakLoading:F0} MiB while loading" : "")} ({images.shape[^1]} px, {Precisions.ToShortName(sampling)}"
                              + $"{(parse.GetValue(slicing) ? ", attention slicing" : "")}{(parse.GetValue(tiling) ? ", VAE tiling" : "")}, {get_num_threads()} threads)");
        }));
        return cmd;
    }
}

/// <summary>Seconds per denoising step from the step callbacks' intervals, and what the rest of sampling (text, decode) took.</summary>
internal sealed record SamplingTiming(int Steps, double SecondsPerStep, double OtherSeconds)
{
    /// <summary>Step intervals (the first includes the text encoding of its batch; decoding follows the last step of each batch).</summary>
    public static SamplingTiming From(IReadOnlyList<double> intervals, double total)
    {
        if (intervals.Count == 0) return new SamplingTiming(0, 0, total);
        // The median interval is a UNet step's; the difference to the total is text encoding and decoding.
        var sorted = intervals.Order().ToList();
        double median = sorted[sorted.Count / 2];
        return new SamplingTiming(intervals.Count, median, Math.Max(0, total - median * intervals.Count));
    }
}
