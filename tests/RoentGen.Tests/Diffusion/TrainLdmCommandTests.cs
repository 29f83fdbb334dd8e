using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Diffusion;
using RoentGen.Experiments;
using RoentGen.Interop;
using RoentGen.Training;

namespace RoentGen.Tests.Diffusion;

[Collection(ProcessStateCollection.Name)]
public class TrainLdmCommandTests
{
    private static int Invoke(params string[] args)
    {
        var root = new RootCommand("test") { TrainCommand.Build() };
        return root.Parse(["train", .. args]).Invoke();
    }

    [SkippableFact]
    public void Train_ldm_trains_both_stages_on_a_labels_csv_folder_and_skips_them_when_run_again()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real-cxr-sample is not beside this clone");
        var dir = TestPaths.NewTempDir("ldm-cli");
        var configPath = Path.Combine(dir, "tiny.json");
        // The finding-weighted loss asked for: the sample's masks are lung masks, so the run trains without it and says so.
        File.WriteAllText(configPath, JsonSerializer.Serialize(LdmExperimentConfig.Tiny with { VaeSteps = 2, LdmSteps = 2, FindingLossWeight = 4 }, SafeTensors.ConfigJsonOptions));
        var run = Path.Combine(dir, "run");
        Assert.Equal(0, Invoke("ldm", "--config", configPath, "--data", TestPaths.RealSample!, "--out", run));
        Assert.True(File.Exists(Path.Combine(run, LatentDiffusionModel.IndexFile)));
        Assert.Null(LatentDiffusionRuns.LoadConfig(run).FindingLossWeight);
        foreach (var stage in new[] { LatentDiffusionRuns.VaeRunPath(run), LatentDiffusionRuns.LdmRunPath(run) })
            Assert.True(File.Exists(Path.Combine(stage, RunFolder.RunFile)), $"{stage} did not finish");
        Assert.Contains("real-cxr-sample", File.ReadAllText(Path.Combine(LatentDiffusionRuns.LdmRunPath(run), RunFolder.ConfigFile)));
        var finished = File.GetLastWriteTimeUtc(Path.Combine(LatentDiffusionRuns.LdmRunPath(run), RunFolder.RunFile));

        Assert.Equal(0, Invoke("vae", "--config", configPath, "--data", TestPaths.RealSample!, "--out", run));
        Assert.Equal(0, Invoke("ldm", "--config", configPath, "--data", TestPaths.RealSample!, "--out", run));
        Assert.Equal(finished, File.GetLastWriteTimeUtc(Path.Combine(LatentDiffusionRuns.LdmRunPath(run), RunFolder.RunFile)));
        // Other data in the same folder is refused.
        Assert.NotEqual(0, Invoke("ldm", "--config", configPath, "--data", "phantoms", "--out", run));
        TestPaths.DeleteQuietly(dir);
    }

    [Fact]
    public void Train_ldm_init_from_fine_tunes_a_scene_model_on_phantoms_with_its_tokenizer_and_architecture()
    {
        var dir = TestPaths.NewTempDir("ldm-init");
        // A "foundation" of another architecture than the target config (wider text encoder, longer prompts), on scenes.
        var source = LdmExperimentConfig.Tiny with
        {
            VaeSteps = 2, LdmSteps = 2, MaxTokens = 20,
            Text = LdmExperimentConfig.Tiny.Text with { HiddenSize = 48, Heads = 3, MaxPositions = 20 },
            Unet = LdmExperimentConfig.Tiny.Unet with { CrossAttentionDim = 48 },
        };
        var sourcePath = Path.Combine(dir, "source.json");
        File.WriteAllText(sourcePath, JsonSerializer.Serialize(source, SafeTensors.ConfigJsonOptions));
        var targetPath = Path.Combine(dir, "target.json");
        File.WriteAllText(targetPath, JsonSerializer.Serialize(LdmExperimentConfig.Tiny with { VaeSteps = 2, LdmSteps = 3 }, SafeTensors.ConfigJsonOptions));
        string foundation = Path.Combine(dir, "foundation"), adapted = Path.Combine(dir, "adapted"), frozen = Path.Combine(dir, "frozen");
        Assert.Equal(0, Invoke("ldm", "--config", sourcePath, "--data", "scenes", "--out", foundation));
        Assert.Equal(0, Invoke("ldm", "--config", targetPath, "--init-from", foundation, "--out", adapted));
        Assert.Equal(0, Invoke("ldm", "--config", targetPath, "--init-from", foundation, "--freeze-vae", "--freeze-text-encoder", "--out", frozen));

        var f = LatentDiffusionModel.Load(foundation);
        var a = LatentDiffusionModel.Load(adapted);
        var z = LatentDiffusionModel.Load(frozen);
        var cfg = LatentDiffusionRuns.LoadConfig(adapted);
        Assert.Equal(20, cfg.MaxTokens);                                        // the source's architecture, the target's budget
        Assert.Equal(48, a.TextEncoder.Config.HiddenSize);
        Assert.Equal(3, cfg.LdmSteps);
        Assert.Equal(f.Tokenizer.Merges, a.Tokenizer.Merges);                   // the scene tokenizer kept
        Assert.False(DomainAdaptation.SameWeights(f.Unet, a.Unet));
        Assert.False(DomainAdaptation.SameWeights(f.TextEncoder, a.TextEncoder));
        Assert.False(DomainAdaptation.SameWeights(f.Vae, a.Vae));               // VAE fine-tuned by default
        Assert.True(DomainAdaptation.SameWeights(f.Vae, z.Vae));                // --freeze-vae
        Assert.True(DomainAdaptation.SameWeights(f.TextEncoder, z.TextEncoder)); // --freeze-text-encoder
        Assert.False(DomainAdaptation.SameWeights(f.Unet, z.Unet));

        Assert.NotEqual(0, Invoke("ldm", "--config", targetPath, "--init-from", Path.Combine(dir, "missing"), "--out", Path.Combine(dir, "x")));
        Assert.NotEqual(0, Invoke("ldm", "--config", targetPath, "--freeze-vae", "--out", Path.Combine(dir, "y")));   // --freeze-vae alone
        TestPaths.DeleteQuietly(dir);
    }

    [Fact]
    public void Init_from_takes_the_source_architecture_and_keeps_the_target_budget()
    {
        var foundation = DomainAdaptationConfig.Quick.Foundation();
        var cfg = LdmExperimentConfig.Study.InitFrom(foundation, "/f");
        Assert.Equal(foundation.MaxTokens, cfg.MaxTokens);
        Assert.Equal(foundation.Text, cfg.Text);
        Assert.Equal(LdmExperimentConfig.Study.LdmSteps, cfg.LdmSteps);
        Assert.Equal(LdmExperimentConfig.Study.BalanceFindings, cfg.BalanceFindings);
        Assert.False(cfg.Trains(LdmPart.Tokenizer));
        Assert.True(cfg.Trains(LdmPart.Vae) && cfg.Trains(LdmPart.TextEncoder) && cfg.Trains(LdmPart.Unet));
        Assert.All(new[] { cfg.Parts.Vae, cfg.Parts.Tokenizer, cfg.Parts.TextEncoder, cfg.Parts.Unet }, p => Assert.Equal("/f", p.From));
        Assert.False(LdmExperimentConfig.Study.InitFrom(foundation, "/f", trainVae: false).Trains(LdmPart.Vae));
        Assert.False((LdmExperimentConfig.Study with { TrainTextEncoder = false }).InitFrom(foundation, "/f").Trains(LdmPart.TextEncoder));
        Assert.Throws<ArgumentException>(() => LdmExperimentConfig.Study.InitFrom(foundation, " "));
    }
}
