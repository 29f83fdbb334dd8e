using System.CommandLine;
using RoentGen.Cli.Commands;
using RoentGen.Interop.Diffusers;

namespace RoentGen.Tests.Interop.Diffusers;

/// <summary><c>roentgen sample --weights</c>: a diffusers folder, a single-file LDM checkpoint with --config, and random:DIR, with the memory options.</summary>
[Collection(ProcessStateCollection.Name)] // the verb writes to Console.Out / Console.Error, which these tests swap
public class SampleWeightsCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (new RootCommand("test") { SampleCommand.Build() }.Parse(["sample", .. args]).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    [Fact]
    public void Samples_from_a_folder_a_single_file_and_random_weights_and_reports_time_and_memory()
    {
        var dir = TestPaths.NewTempDir("sample-weights");
        SdFixture.Write(dir, SdFixture.Sd1);
        var file = Path.Combine(dir, "model.safetensors");
        SingleFileCheckpoint.Save(DiffusersPipelineLoader.Load(dir), file, LdmTextEncoderKind.Clip);
        string[] Common(string png) => ["--prompt", "small left pleural effusion", "--steps", "2", "--n", "1", "--scheduler", "ddim", "--seed", "4", "--out", png];
        string a = Path.Combine(dir, "folder.png"), b = Path.Combine(dir, "file.png"), c = Path.Combine(dir, "sliced.png"), d = Path.Combine(dir, "random.png");

        var (code, output, err) = Run(["--weights", dir, .. Common(a)]);
        Assert.True(code == 0, err);
        Assert.Matches(@"2 steps at \d+\.\d\d s/step", output);
        Assert.Matches(@"peak \d+ MiB", output);
        (code, _, err) = Run(["--weights", file, "--config", dir, .. Common(b)]);
        Assert.True(code == 0, err);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));   // the same weights in either layout draw the same image

        // bf16, attention slicing, VAE tiling, a larger size: runs and says so.
        (code, output, err) = Run(["--weights", file, "--config", dir, "--precision", "bf16", "--attention-slicing", "--vae-tiling", "--size", "64", .. Common(c)]);
        Assert.True(code == 0, err);
        Assert.Contains("64 px, bf16, attention slicing, VAE tiling", output);
        (code, _, err) = Run(["--weights", $"random:{dir}", "--size", "32", .. Common(d)]);
        Assert.True(code == 0, err);
        Assert.True(File.Exists(d));

        // Refused: a single file without configs, both sources, neither, an unknown precision.
        Assert.Contains("holds no configs", Run(["--weights", file, .. Common(Path.Combine(dir, "x.png"))]).Err);
        Assert.NotEqual(0, Run(["--weights", dir, "--checkpoint", dir, .. Common(Path.Combine(dir, "x.png"))]).Code);
        Assert.NotEqual(0, Run(Common(Path.Combine(dir, "x.png"))).Code);
        Assert.Contains("unknown precision 'fp16'; expected fp32, bf16 or auto", Run(["--weights", dir, "--precision", "fp16", .. Common(Path.Combine(dir, "x.png"))]).Err);
        Assert.False(File.Exists(Path.Combine(dir, "x.png")));
        TestPaths.DeleteQuietly(dir);
    }
}
