using System.CommandLine;
using RoentGen.Diffusion;
using RoentGen.Interactive;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen sample --checkpoint DIR --prompt "..." [--guidance 4 --steps 20 --scheduler dpmpp --seed 1 --n 8] --out FILE.png</c>.</summary>
internal static class SampleCommand
{
    public static Command Build()
    {
        var checkpoint = new Option<DirectoryInfo>("--checkpoint") { Description = "A trained experiment folder (roentgen train ldm --out) or a diffusers Stable Diffusion folder.", Required = true };
        var prompt = new Option<string[]>("--prompt") { Description = "Prompt (repeat for several).", Required = true, AllowMultipleArgumentsPerToken = false };
        var negative = new Option<string>("--negative") { Description = "Negative prompt.", DefaultValueFactory = _ => "" };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 4.0 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 20 };
        var scheduler = new Option<string>("--scheduler") { Description = "ddpm, ddim, dpmpp or euler.", DefaultValueFactory = _ => "dpmpp" };
        var seed = new Option<long>("--seed") { Description = "Seed.", DefaultValueFactory = _ => 1 };
        var n = new Option<int>("--n") { Description = "Images per prompt.", DefaultValueFactory = _ => 4 };
        var output = new Option<FileInfo>("--out") { Description = "PNG grid to write.", Required = true };
        var precision = new Option<string>("--precision") { Description = "UNet arithmetic: fp32, bf16 (a bfloat16 copy of the float32 weights) or auto (bf16 where the CPU has AVX-512 BF16).", DefaultValueFactory = _ => "auto" };
        var cmd = new Command("sample", "Generate chest X-rays from text with a trained latent diffusion model.") { checkpoint, prompt, negative, guidance, steps, scheduler, seed, n, output, precision };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var file = parse.GetValue(output)!;
            RoentGen.Platform.AtomicFile.EnsureWritable(file.FullName, "--out");
            var sampling = RoentGen.Platform.Precisions.Parse(parse.GetValue(precision)!);
            var pipe = LatentDiffusionRuns.LoadPipeline(parse.GetValue(checkpoint)!.FullName);
            pipe.Precision = sampling;
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
