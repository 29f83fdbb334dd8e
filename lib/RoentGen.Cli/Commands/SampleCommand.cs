using System.CommandLine;
using RoentGen.Diffusion;
using RoentGen.Platform;
using RoentGen.Interactive;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen sample --checkpoint DIR --prompt "..." [--guidance 4 --steps 20 --scheduler dpmpp --seed 1 --n 8] --out FILE.png</c>,
/// or <c>roentgen sample --checkpoint DIR --prompts FILE [--shard i/N] --out DIR</c>: one image per line of FILE, prompt i with
/// seed --seed + i, written into the folder as a sharded job (<see cref="PromptListSampling"/>; <c>roentgen merge DIR</c> ends it).
/// </summary>
internal static class SampleCommand
{
    public static Command Build()
    {
        var checkpoint = new Option<DirectoryInfo>("--checkpoint") { Description = "A trained experiment folder (roentgen train ldm --out) or a diffusers Stable Diffusion folder.", Required = true };
        var prompt = new Option<string[]>("--prompt") { Description = "Prompt (repeat for several); or use --prompts.", AllowMultipleArgumentsPerToken = false };
        var promptFile = new Option<FileInfo?>("--prompts") { Description = "A prompt list: one prompt per line, one image each, prompt i seeded with --seed + i; --out is then a folder (images/, samples.csv after merge)." };
        var shard = ShardOption.Create();
        var negative = new Option<string>("--negative") { Description = "Negative prompt.", DefaultValueFactory = _ => "" };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 4.0 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 20 };
        var scheduler = new Option<string>("--scheduler") { Description = "ddpm, ddim, dpmpp or euler.", DefaultValueFactory = _ => "dpmpp" };
        var seed = new Option<long>("--seed") { Description = "Seed.", DefaultValueFactory = _ => 1 };
        var n = new Option<int>("--n") { Description = "Images per prompt.", DefaultValueFactory = _ => 4 };
        var output = new Option<FileInfo>("--out") { Description = "PNG grid to write.", Required = true };
        var cmd = new Command("sample", "Generate chest X-rays from text with a trained latent diffusion model.") { checkpoint, prompt, promptFile, shard, negative, guidance, steps, scheduler, seed, n, output };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            if (parse.GetValue(promptFile) is { } listFile)
            {
                if (parse.GetValue(prompt) is { Length: > 0 }) throw new ArgumentException("give either --prompt or --prompts, not both");
                var dir = parse.GetValue(output)!.FullName;
                var settings = new PromptListSettings
                {
                    Prompts = PromptListSampling.ReadPromptFile(listFile.FullName), Model = parse.GetValue(checkpoint)!.FullName,
                    NegativePrompt = parse.GetValue(negative)!, GuidanceScale = parse.GetValue(guidance), Steps = parse.GetValue(steps),
                    Scheduler = NoiseScheduler.ParseKind(parse.GetValue(scheduler)!), Seed = parse.GetValue(seed),
                };
                var listPipe = LatentDiffusionRuns.LoadPipeline(settings.Model);
                ShardOption.RunAndMergeIfWhole(dir, ShardOption.Get(parse, shard),
                    s => PromptListSampling.Run(listPipe, settings, dir, s, line => Console.WriteLine(Cli.Escape(line))));
                return;
            }
            if (parse.GetValue(shard) is not null) throw new ArgumentException("--shard needs --prompts (a prompt list to split); --prompt samples one grid in one process");
            if (parse.GetValue(prompt) is not { Length: > 0 }) throw new ArgumentException("give --prompt \"...\" (repeatable) or --prompts FILE");
            var file = parse.GetValue(output)!;
            RoentGen.Platform.AtomicFile.EnsureWritable(file.FullName, "--out");
            var pipe = LatentDiffusionRuns.LoadPipeline(parse.GetValue(checkpoint)!.FullName);
            int perPrompt = parse.GetValue(n);
            if (perPrompt < 1) throw new ArgumentException("--n must be at least 1");
            var prompts = parse.GetValue(prompt)!.SelectMany(p => Enumerable.Repeat(p, perPrompt)).ToList();
            var request = new SampleRequest
            {
                Prompts = prompts, NegativePrompt = parse.GetValue(negative)!, GuidanceScale = parse.GetValue(guidance),
                Steps = parse.GetValue(steps), Scheduler = NoiseScheduler.ParseKind(parse.GetValue(scheduler)!), Seed = parse.GetValue(seed),
            };
            var images = pipe.SampleWithProgress(request, "sampling");
            var grid = ImageGrid.FromTensor(images, columns: perPrompt, captions: prompts);
            RoentGen.Platform.AtomicFile.WriteAllBytes(file.FullName, grid.ToPng());
            Console.WriteLine($"wrote {prompts.Count} images to {Cli.Escape(file.FullName)}");
        }));
        return cmd;
    }
}
