using System.CommandLine;
using RoentGen.Data.Datasets;
using RoentGen.Diffusion;
using RoentGen.Platform;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen train vae|ldm|...</c>: training verbs. Add one by adding its builder to <see cref="Verbs"/>.</summary>
internal static class TrainCommand
{
    private static readonly Func<Command>[] Verbs = [BuildVae, BuildLdm, TrainDinoCommand.Build, TrainBaselineCommand.BuildSupervised, TrainBaselineCommand.BuildClip];

    public static Command Build()
    {
        var cmd = new Command("train", "Train a model: the latent-diffusion autoencoder or denoiser, a self-supervised encoder, or its supervised and CLIP-style baselines.");
        foreach (var verb in Verbs) cmd.Subcommands.Add(verb());
        return cmd;
    }

    private static (Option<string> Preset, Option<FileInfo?> Config, Option<DirectoryInfo> Out, Option<string> Data, Option<bool> Outside, Option<string?> Precision) CommonOptions() => (
        new Option<string>("--preset") { Description = "quick (CPU minutes), study (the quickstart's study preset: 16,000 phantoms, 12,000 denoiser steps, about an hour on 2 cores), foundation (roentgen adapt's foundation model: 4,000 general-domain scenes, use with --data scenes) or tiny (seconds, for checks).", DefaultValueFactory = _ => "quick" },
        new Option<FileInfo?>("--config") { Description = "An experiment.json to use instead of a preset." },
        new Option<DirectoryInfo>("--out") { Description = "Experiment folder (a finished stage is skipped, an interrupted one resumes).", Required = true },
        new Option<string>("--data") { Description = "phantoms (the config's phantom world), scenes (the general-domain world of captioned shapes, for pretraining a foundation model), or a labels.csv folder (every record; see data/README.md).", DefaultValueFactory = _ => LdmTrainingData.Phantoms },
        Cli.AllowOutsideRootOption(),
        PrecisionOption());

    /// <summary>The <c>--precision</c> option of the training verbs and the quickstart (null: the config's, Auto by default).</summary>
    internal static Option<string?> PrecisionOption() =>
        new("--precision") { Description = "Training arithmetic: fp32, bf16 (bfloat16 compute, float32 weights and optimizer state) or auto (bf16 where the CPU has AVX-512 BF16 and multiplies faster in it). Default: the config's Precision (auto)." };

    private static LdmExperimentConfig Resolve(string preset, FileInfo? config, string? precision)
    {
        var cfg = config is not null ? LdmExperimentConfig.Load(config.FullName) : preset switch
        {
            "quick" => LdmExperimentConfig.Quick,
            "study" => LdmExperimentConfig.Study,
            "foundation" => Experiments.DomainAdaptationConfig.Quick.Foundation(),
            "tiny" => LdmExperimentConfig.Tiny,
            _ => throw new ArgumentException($"unknown preset '{preset}'; expected quick, study, foundation or tiny"),
        };
        return precision is null ? cfg : cfg with { Precision = Cli.ParsePrecision(precision) };
    }

    private static Command BuildVae()
    {
        var (preset, config, output, data, outside, precision) = CommonOptions();
        var cmd = new Command("vae", "Train the autoencoder and measure its latent scaling factor.") { preset, config, output, data, outside, precision };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var cfg = Resolve(parse.GetValue(preset)!, parse.GetValue(config), parse.GetValue(precision));
            var dir = parse.GetValue(output)!.FullName;
            var result = LatentDiffusionRuns.TrainVae(cfg, LdmTrainingData.From(parse.GetValue(data)!, cfg, new LoadOptions { AllowOutsideRoot = parse.GetValue(outside) }), dir);
            Console.WriteLine($"VAE{(result.Skipped ? " (already trained)" : "")}: final loss {result.History.Loss[^1]:F4}, latent scaling factor {result.Vae.Config.ScalingFactor:F4}; saved to {dir}/vae");
        }));
        return cmd;
    }

    private static Command BuildLdm()
    {
        var (preset, config, output, data, outside, precision) = CommonOptions();
        var frozen = new Option<bool>("--freeze-text-encoder") { Description = "Train the UNet only (RoentGen's ablation baseline)." };
        var initFrom = new Option<DirectoryInfo?>("--init-from") { Description = "Start from the model of a trained experiment folder (e.g. a foundation model: train ldm --preset foundation --data scenes, or an adapt run's foundation/), as RoentGen fine-tunes Stable Diffusion: its architecture and weights, its tokenizer kept, the UNet and text encoder (unless --freeze-text-encoder) trained, the VAE fine-tuned for the config's VaeSteps (unless --freeze-vae); steps, data and the rest from --preset or --config." };
        var frozenVae = new Option<bool>("--freeze-vae") { Description = "With --init-from: keep its VAE frozen (RoentGen's setting) instead of fine-tuning it." };
        var cmd = new Command("ldm", "Train the text-conditioned latent diffusion model (and its VAE first when the experiment trains one and has not yet).") { preset, config, output, data, outside, frozen, initFrom, frozenVae, precision };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var cfg = Resolve(parse.GetValue(preset)!, parse.GetValue(config), parse.GetValue(precision));
            if (parse.GetValue(frozen)) cfg = cfg with { TrainTextEncoder = false };
            if (parse.GetValue(initFrom) is { } from)
            {
                if (!from.Exists) throw new DirectoryNotFoundException($"--init-from {from}: no such folder");
                cfg = cfg.InitFrom(LatentDiffusionRuns.LoadConfig(from.FullName), from.FullName, trainVae: !parse.GetValue(frozenVae));
            }
            else if (parse.GetValue(frozenVae)) throw new ArgumentException("--freeze-vae needs --init-from (the folder whose VAE stays frozen)");
            var dir = parse.GetValue(output)!.FullName;
            var trainingData = LdmTrainingData.From(parse.GetValue(data)!, cfg, new LoadOptions { AllowOutsideRoot = parse.GetValue(outside) });
            cfg = trainingData.Fit(cfg, line => Console.WriteLine(Cli.Escape(line)));   // e.g. the quick preset on a labels.csv folder without finding masks
            var result = LatentDiffusionRuns.EnsureTrained(cfg, trainingData, dir);
            Console.WriteLine($"LDM{(result.Skipped ? " (already trained)" : "")}: final loss {result.History.Loss[^1]:F4} after {result.History.Steps} steps; saved to {dir}");
        }));
        return cmd;
    }
}
