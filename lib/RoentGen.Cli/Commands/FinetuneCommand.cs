using System.CommandLine;
using System.Globalization;
using RoentGen.Data.Datasets;
using RoentGen.Diffusion;
using RoentGen.Nn;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen finetune --weights DIR --data PATH|phantoms --out RUN --train unet|unet+text|lora [--rank 4] [--alpha A]
/// [--steps N] [--lr LR] [--resolution PX] ...</c>: fine-tunes a loaded model (<see cref="FineTuning.Run"/>).
/// </summary>
internal static class FinetuneCommand
{
    public static Command Build()
    {
        var weights = new Option<string>("--weights") { Description = "The model folder to start from: a diffusers Stable Diffusion folder, or a model trained here.", Required = true };
        var data = new Option<string>("--data") { Description = "phantoms, or a labels.csv (or a folder holding one; see data/README.md).", DefaultValueFactory = _ => LdmTrainingData.Phantoms };
        var output = new Option<DirectoryInfo>("--out") { Description = "Run folder (checkpoints; an interrupted run resumes, a finished one is skipped).", Required = true };
        var train = new Option<string>("--train") { Description = "unet, unet+text or lora: what trains (the VAE is always frozen).", DefaultValueFactory = _ => "lora" };
        var rank = new Option<int>("--rank") { Description = "LoRA rank r.", DefaultValueFactory = _ => 4 };
        var alpha = new Option<double?>("--alpha") { Description = "LoRA alpha (updates scaled by alpha/r); default: the rank." };
        var projections = new Option<bool>("--lora-projections") { Description = "Also adapt the transformers' proj_in / proj_out." };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => 100 };
        var batch = new Option<int>("--batch") { Description = "Images per step.", DefaultValueFactory = _ => 1 };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default 1e-4 for lora, 1e-5 otherwise)." };
        var resolution = new Option<int?>("--resolution") { Description = "Image side in pixels (default: the model's native size)." };
        var images = new Option<int>("--phantoms") { Description = "Phantom images to train on when --data is phantoms.", DefaultValueFactory = _ => 16 };
        var seed = new Option<long>("--seed") { Description = "Seed of the adapters' initialisation, data order and noise.", DefaultValueFactory = _ => 0 };
        var every = new Option<int?>("--checkpoint-every") { Description = "Checkpoint every N steps (default 100)." };
        var outside = Cli.AllowOutsideRootOption();
        var cmd = new Command("finetune", "Fine-tune a loaded model on chest X-rays: the UNet, the UNet and text encoder, or LoRA adapters on the UNet's attention. "
                                          + "Writes RUN/lora/pytorch_lora_weights.safetensors (diffusers' load_lora_weights reads it) or RUN/model, a diffusers folder.")
        {
            weights, data, output, train, rank, alpha, projections, steps, batch, lr, resolution, images, seed, every, outside,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var mode = parse.GetValue(train)!.ToLowerInvariant() switch
            {
                "unet" => FineTuneMode.Unet,
                "unet+text" or "unet+text_encoder" => FineTuneMode.UnetAndText,
                "lora" => FineTuneMode.Lora,
                var other => throw new ArgumentException($"--train '{other}': expected unet, unet+text or lora"),
            };
            var cfg = new FineTuneConfig
            {
                Weights = parse.GetValue(weights)!, Data = parse.GetValue(data)!, Train = mode,
                Lora = new LoraConfig { Rank = parse.GetValue(rank), Alpha = parse.GetValue(alpha), IncludeProjections = parse.GetValue(projections) },
                Steps = parse.GetValue(steps), Batch = parse.GetValue(batch), Lr = parse.GetValue(lr) ?? (mode == FineTuneMode.Lora ? 1e-4 : 1e-5),
                Resolution = parse.GetValue(resolution), PhantomImages = parse.GetValue(images), Seed = parse.GetValue(seed),
            };
            var result = FineTuning.Run(cfg, parse.GetValue(output)!.FullName, new LdmRunOptions { CheckpointEvery = parse.GetValue(every) },
                new LoadOptions { AllowOutsideRoot = parse.GetValue(outside) });
            var loss = result.History.Loss.Count > 0 ? result.History.Loss[^1].ToString("F4", CultureInfo.InvariantCulture) : "n/a";
            Console.WriteLine($"finetune {mode}{(result.Skipped ? " (already finished)" : "")}: final loss {loss} after {result.History.Steps} steps; wrote {Cli.Escape(result.Output)}");
        }));
        return cmd;
    }
}
