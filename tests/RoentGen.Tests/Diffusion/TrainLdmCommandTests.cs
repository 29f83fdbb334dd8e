using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Diffusion;
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
        File.WriteAllText(configPath, JsonSerializer.Serialize(LdmExperimentConfig.Tiny with { VaeSteps = 2, LdmSteps = 2 }, SafeTensors.ConfigJsonOptions));
        var run = Path.Combine(dir, "run");
        Assert.Equal(0, Invoke("ldm", "--config", configPath, "--data", TestPaths.RealSample!, "--out", run));
        Assert.True(File.Exists(Path.Combine(run, LatentDiffusionModel.IndexFile)));
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
}
