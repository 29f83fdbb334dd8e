using System.CommandLine;
using System.Text.Json;
using RoentGen.Diffusion;
using RoentGen.Interop;
using RoentGen.Training;

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

    private static (Option<string> Preset, Option<FileInfo?> Config, Option<DirectoryInfo> Out) CommonOptions() => (
        new Option<string>("--preset") { Description = "quick (CPU minutes) or tiny (seconds, for checks).", DefaultValueFactory = _ => "quick" },
        new Option<FileInfo?>("--config") { Description = "An experiment.json to use instead of a preset." },
        new Option<DirectoryInfo>("--out") { Description = "Experiment folder (checkpoints; resumes when it has one).", Required = true });

    private static LdmExperimentConfig Resolve(string preset, FileInfo? config)
    {
        if (config is not null) return LdmExperimentConfig.Load(config.FullName);
        return preset switch
        {
            "quick" => LdmExperimentConfig.Quick,
            "tiny" => LdmExperimentConfig.Tiny,
            _ => throw new ArgumentException($"unknown preset '{preset}'; expected quick or tiny"),
        };
    }

    private static Command BuildVae()
    {
        var (preset, config, output) = CommonOptions();
        var cmd = new Command("vae", "Train the autoencoder on phantoms and measure its latent scaling factor.") { preset, config, output };
        cmd.SetAction(parse => Cli.Run(() =>
        {
            var cfg = Resolve(parse.GetValue(preset)!, parse.GetValue(config));
            var dir = parse.GetValue(output)!.FullName;
            var data = LdmTrainingData.FromPhantoms(cfg);
            var (vae, history) = LatentDiffusionTraining.TrainVae(cfg, data, dir);
            Console.WriteLine($"VAE: final loss {history.Loss[^1]:F4}, latent scaling factor {vae.Config.ScalingFactor:F4}; saved to {dir}/vae");
        }));
        return cmd;
    }

    private static Command BuildLdm()
    {
        var (preset, config, output) = CommonOptions();
        var frozen = new Option<bool>("--freeze-text-encoder") { Description = "Train the UNet only (RoentGen's ablation baseline)." };
        var cmd = new Command("ldm", "Train the text-conditioned latent diffusion model (trains the VAE first when the folder has none).") { preset, config, output, frozen };
        cmd.SetAction(parse => Cli.Run(() =>
        {
            var cfg = Resolve(parse.GetValue(preset)!, parse.GetValue(config));
            if (parse.GetValue(frozen)) cfg = cfg with { TrainTextEncoder = false };
            var dir = parse.GetValue(output)!.FullName;
            var data = LdmTrainingData.FromPhantoms(cfg);
            AutoencoderKL vae;
            var vaeDir = Path.Combine(dir, LatentDiffusionTraining.VaeDir);
            if (File.Exists(Path.Combine(vaeDir, Checkpoint.WeightsFileName)))
            {
                vae = new AutoencoderKL(Checkpoint.ReadConfig<VaeConfig>(vaeDir));
                Checkpoint.Load(vaeDir, vae);
            }
            else vae = LatentDiffusionTraining.TrainVae(cfg, data, dir).Vae;
            var (_, _, _, history) = LatentDiffusionTraining.TrainLdm(cfg, data, vae, dir);
            Console.WriteLine($"LDM: final loss {history.Loss[^1]:F4} after {history.Steps} steps; saved to {dir}");
        }));
        return cmd;
    }
}
