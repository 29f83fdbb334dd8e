using System.CommandLine;
using RoentGen.Cli.Commands;
using RoentGen.Diffusion;
using RoentGen.Interop;
using RoentGen.Interop.Diffusers;
using RoentGen.Nn;
using RoentGen.Tests.Interop.Diffusers;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

/// <summary>
/// <see cref="FineTuning"/> on a tiny SD 1.x folder in diffusers' key names: a LoRA run interrupted between steps resumes
/// to the same losses and adapters as an uninterrupted one and its file reloads to the same samples; a UNet + text run
/// trains both and leaves the VAE alone, and its exported diffusers folder reloads to identical samples.
/// </summary>
[Collection(ProcessStateCollection.Name)]
public class FineTuningTests
{
    private static readonly SampleRequest Request = new()
    {
        Prompts = ["small left pleural effusion", "no pneumothorax"], Steps = 2, Seed = 3, GuidanceScale = 3, Scheduler = SchedulerKind.Ddim,
    };

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static string Weights()
    {
        var dir = TestPaths.NewTempDir("finetune-weights");
        SdFixture.Write(dir, SdFixture.Sd1);
        return dir;
    }

    private static FineTuneConfig Config(string weights, FineTuneMode mode) => new()
    {
        Weights = weights, Data = LdmTrainingData.Phantoms, PhantomImages = 4, Train = mode, Steps = 4, Batch = 2, Lr = 1e-3,
        Lora = new LoraConfig { Rank = 2 }, Seed = 5,
    };

    [Fact]
    public void A_lora_run_resumes_after_an_interruption_and_its_file_reloads()
    {
        using var scope = NewDisposeScope();
        var weights = Weights();
        var cfg = Config(weights, FineTuneMode.Lora);
        var straightDir = TestPaths.NewTempDir("finetune-straight");
        var straight = FineTuning.Run(cfg, straightDir, new LdmRunOptions { CheckpointEvery = 1 });
        Assert.Equal(4, straight.StepsTrained);
        Assert.Equal(Path.Combine(straightDir, "lora", LoraFile.FileName), straight.Output);

        var runDir = TestPaths.NewTempDir("finetune-interrupted");
        using var cts = new CancellationTokenSource();
        var options = new LdmRunOptions { CheckpointEvery = 1, Cancellation = cts.Token, AfterStep = (_, step) => { if (step == 1) cts.Cancel(); } };
        Assert.ThrowsAny<OperationCanceledException>(() => FineTuning.Run(cfg, runDir, options));
        Assert.False(File.Exists(Path.Combine(runDir, "lora", LoraFile.FileName)));
        var resumed = FineTuning.Run(cfg, runDir, new LdmRunOptions { CheckpointEvery = 1 });
        Assert.Equal(2, resumed.StepsTrained);
        Assert.Equal(straight.History.Loss, resumed.History.Loss);
        Assert.All(resumed.History.Loss, l => Assert.True(double.IsFinite(l)));

        using (var a = SafeTensors.Load(straight.Output))
        using (var b = SafeTensors.Load(resumed.Output))
        {
            Assert.Equal(a.Tensors.Keys, b.Tensors.Keys);
            foreach (var (key, t) in a.Tensors) Assert.True(Same(t, b.Tensors[key]), $"{key} differs after resuming");
            Assert.Contains(a.Tensors, kv => kv.Key.EndsWith(".lora_B.weight", StringComparison.Ordinal) && kv.Value.abs().max().item<float>() > 0);
        }

        // The file on the base model samples what the trained pipeline samples; the base model alone samples otherwise.
        var images = resumed.Pipeline.Sample(Request);
        var reloaded = DiffusersPipelineLoader.Load(weights);
        var baseImages = reloaded.Sample(Request);
        Assert.False(Same(images, baseImages), "the trained adapters changed nothing");
        using (LoraFile.Load(resumed.Output, reloaded.Unet)) Assert.True(Same(images, reloaded.Sample(Request)), "the reloaded LoRA samples differently");

        var again = FineTuning.Run(cfg, runDir);
        Assert.True(again.Skipped);
        Assert.Equal(resumed.History.Loss, again.History.Loss);
        Assert.True(Same(images, again.Pipeline.Sample(Request)));
    }

    [Fact]
    public void A_unet_and_text_run_trains_both_and_its_export_reloads_identically()
    {
        using var scope = NewDisposeScope();
        var weights = Weights();
        var basePipe = DiffusersPipelineLoader.Load(weights);
        var cfg = Config(weights, FineTuneMode.UnetAndText) with { Steps = 2, Lr = 1e-4 };
        var runDir = TestPaths.NewTempDir("finetune-full");
        var result = FineTuning.Run(cfg, runDir);
        Assert.Equal(FineTuning.ModelPath(runDir), result.Output);
        Assert.True(DiffusersPipelineLoader.IsDiffusersFolder(result.Output));
        bool Changed(TorchSharp.torch.nn.Module a, TorchSharp.torch.nn.Module b) =>
            a.state_dict().Any(kv => !Same(kv.Value, b.state_dict()[kv.Key]));
        Assert.True(Changed(result.Pipeline.Unet, basePipe.Unet), "the UNet did not train");
        Assert.True(Changed(result.Pipeline.TextEncoder, basePipe.TextEncoder), "the text encoder did not train");
        Assert.False(Changed(result.Pipeline.Vae, basePipe.Vae), "the frozen VAE changed");

        var exported = DiffusersPipelineLoader.Load(result.Output);
        Assert.True(Same(result.Pipeline.Sample(Request), exported.Sample(Request)), "the exported folder samples differently");

        var unetOnly = FineTuning.Run(cfg with { Train = FineTuneMode.Unet }, TestPaths.NewTempDir("finetune-unet"));
        Assert.False(Changed(unetOnly.Pipeline.TextEncoder, basePipe.TextEncoder), "--train unet changed the text encoder");
    }

    [Fact]
    public void The_finetune_verb_runs_a_tiny_lora_job_and_refuses_unknown_modes()
    {
        var weights = Weights();
        var runDir = TestPaths.NewTempDir("finetune-cli");
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        int code, bad, missing;
        try
        {
            code = new RootCommand("test") { FinetuneCommand.Build() }
                .Parse(["finetune", "--weights", weights, "--data", "phantoms", "--phantoms", "2", "--out", runDir, "--train", "lora", "--rank", "2", "--steps", "2"]).Invoke();
            bad = new RootCommand("test") { FinetuneCommand.Build() }
                .Parse(["finetune", "--weights", weights, "--out", TestPaths.NewTempDir("finetune-cli-bad"), "--train", "vae"]).Invoke();
            missing = new RootCommand("test") { FinetuneCommand.Build() }
                .Parse(["finetune", "--weights", Path.Combine(runDir, "no-such-model"), "--out", TestPaths.NewTempDir("finetune-cli-missing")]).Invoke();
        }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        Assert.True(code == 0, e.ToString());
        Assert.Contains("finetune Lora", o.ToString());
        Assert.True(File.Exists(Path.Combine(runDir, "lora", LoraFile.FileName)));
        Assert.Equal(2, bad);
        Assert.Contains("--train 'vae'", e.ToString());
        Assert.Equal(2, missing);
        Assert.Contains("no-such-model", e.ToString());
    }

    [Fact]
    public void The_random_sd1_folder_helper_writes_a_folder_that_loads_and_samples()
    {
        using var scope = NewDisposeScope();
        var dir = RandomStableDiffusion.Write(TestPaths.NewTempDir("random-sd"));
        var summary = DiffusersFolder.Inspect(dir);
        Assert.Empty(summary.Unknown);
        Assert.Empty(summary.Unsupported);
        var pipe = DiffusersPipelineLoader.Load(dir);
        Assert.Equal(RandomStableDiffusion.LatentSize, pipe.LatentSize);
        Assert.Equal(3, pipe.Vae.Config.InChannels);
        var images = pipe.Sample(Request);
        Assert.Equal([2L, 1, 32, 32], images.shape);
        Assert.True(images.isfinite().all().item<bool>());
        Assert.True(Same(images, DiffusersPipelineLoader.Load(RandomStableDiffusion.Write(TestPaths.NewTempDir("random-sd2"))).Sample(Request)), "the same seed wrote other weights");
    }
}
