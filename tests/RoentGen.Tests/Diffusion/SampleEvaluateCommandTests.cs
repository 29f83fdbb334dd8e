using System.Buffers.Binary;
using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Diffusion;
using RoentGen.Evaluation;

namespace RoentGen.Tests.Diffusion;

/// <summary>
/// The <c>roentgen sample</c> and <c>roentgen evaluate</c> verbs on a model trained here with the library's Tiny
/// preset (a few steps: the verbs' plumbing is under test, not the model's quality).
/// </summary>
[Collection(ProcessStateCollection.Name)]
public class SampleEvaluateCommandTests
{
    private static int Invoke(Command verb, params string[] args) => new RootCommand("test") { verb }.Parse([verb.Name, .. args]).Invoke();

    private static string TrainTiny(string dir)
    {
        var cfg = LdmExperimentConfig.Tiny with { VaeSteps = 2, LdmSteps = 3 };
        var run = Path.Combine(dir, "experiment");
        LatentDiffusionRuns.EnsureTrained(cfg, LdmTrainingData.FromPhantoms(cfg), run);
        return run;
    }

    private static (int Width, int Height) PngSize(string file)
    {
        var bytes = File.ReadAllBytes(file);
        Assert.True(bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }), $"{file} is not a PNG");
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    [Fact]
    public void Sample_writes_a_grid_of_n_images_per_prompt_that_depends_on_the_seed_only()
    {
        var dir = TestPaths.NewTempDir("sample-cli");
        var run = TrainTiny(dir);
        string[] Args(string output, string seed, string n) =>
            ["--checkpoint", run, "--prompt", "Right pleural effusion.", "--prompt", "No acute cardiopulmonary process.",
             "--steps", "2", "--scheduler", "ddim", "--n", n, "--seed", seed, "--out", output];
        string a = Path.Combine(dir, "a.png"), b = Path.Combine(dir, "b.png"), c = Path.Combine(dir, "c.png"), one = Path.Combine(dir, "one.png");
        Assert.Equal(0, Invoke(SampleCommand.Build(), Args(a, "5", "3")));
        Assert.Equal(0, Invoke(SampleCommand.Build(), Args(b, "5", "3")));
        Assert.Equal(0, Invoke(SampleCommand.Build(), Args(c, "6", "3")));
        Assert.Equal(0, Invoke(SampleCommand.Build(), Args(one, "5", "1")));
        // 3 columns (images per prompt) and 2 rows (prompts) of 32-pixel images: the grid is wider than tall and
        // at least 3 x 32 by 2 x 32; one image per prompt gives a narrower grid of the same height.
        var (w, h) = PngSize(a);
        Assert.True(w >= 3 * 32 && h >= 2 * 32, $"grid {w}x{h}");
        var (w1, h1) = PngSize(one);
        Assert.Equal(h, h1);
        Assert.True(w1 < w && w1 >= 32, $"one-per-prompt grid {w1}x{h1} against {w}x{h}");
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.NotEqual(File.ReadAllBytes(a), File.ReadAllBytes(c));
        // Refused: no images, and a folder with no model.
        Assert.NotEqual(0, Invoke(SampleCommand.Build(), Args(Path.Combine(dir, "zero.png"), "5", "0")));
        Assert.False(File.Exists(Path.Combine(dir, "zero.png")));
        Assert.NotEqual(0, Invoke(SampleCommand.Build(), ["--checkpoint", dir, "--prompt", "x", "--out", Path.Combine(dir, "none.png")]));
        TestPaths.DeleteQuietly(dir);
    }

    [Fact]
    public void Evaluate_scores_a_tiny_model_with_a_given_judge_and_writes_every_json_field()
    {
        var dir = TestPaths.NewTempDir("evaluate-cli");
        var run = TrainTiny(dir);
        var judgeDir = Path.Combine(dir, "judge");
        using (var judge = ProxyFindingClassifier.TrainOnPhantoms(32, 16, seed: 3, steps: 2,
                   config: new ProxyClassifierConfig { InputSize = 32, Channels = [8, 16, 16], FeatureWidth = 24, NormGroups = 4 },
                   options: new ProxyTrainingOptions { BatchSize = 8 }))
            judge.Save(judgeDir);
        var file = Path.Combine(dir, "eval.json");
        Assert.Equal(0, Invoke(EvaluateCommand.Build(), "--checkpoint", run, "--classifier", judgeDir, "--json", file,
            "--images-per-prompt", "2", "--steps", "2", "--scheduler", "ddim", "--compare-images", "4", "--ddpm-steps", "3", "--held-out", "12"));
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        var r = doc.RootElement;
        int prompts = PromptAdherence.DefaultPrompts.Count;
        foreach (var part in new[] { "trained", "untrained" })
        {
            var g = r.GetProperty(part);
            Assert.Equal(12, g.GetProperty("real_images").GetInt32());
            Assert.Equal(2 * prompts, g.GetProperty("generated_images").GetInt32());
            Assert.True(g.GetProperty("fid").GetDouble() is var fid && double.IsFinite(fid) && fid >= 0, $"{part} fid {g.GetProperty("fid")}");
            Assert.True(g.GetProperty("adherence").GetProperty("findings").GetArrayLength() > 0);
            Assert.True(g.TryGetProperty("ms_ssim_generated", out _) && g.TryGetProperty("kid", out _));
        }
        var samplers = r.GetProperty("samplers").EnumerateArray().ToList();
        Assert.Equal(2, samplers.Count);
        Assert.Equal(4, r.GetProperty("sampler_comparison_images").GetInt32());
        var options = r.GetProperty("options");
        Assert.Equal(2, options.GetProperty("images_per_prompt").GetInt32());
        Assert.Equal(2, options.GetProperty("steps").GetInt32());
        Assert.Equal(3, options.GetProperty("ddpm_steps").GetInt32());
        Assert.True(r.GetProperty("sample_images_per_second").GetDouble() > 0);
        // --no-baseline leaves the untrained part out.
        var noBase = Path.Combine(dir, "nobase.json");
        Assert.Equal(0, Invoke(EvaluateCommand.Build(), "--checkpoint", run, "--classifier", judgeDir, "--json", noBase,
            "--images-per-prompt", "1", "--steps", "2", "--compare-images", "0", "--held-out", "4", "--no-baseline"));
        using var nb = JsonDocument.Parse(File.ReadAllText(noBase));
        Assert.Equal(JsonValueKind.Null, nb.RootElement.GetProperty("untrained").ValueKind);
        Assert.Equal(0, nb.RootElement.GetProperty("samplers").GetArrayLength());
        TestPaths.DeleteQuietly(dir);
    }
}
