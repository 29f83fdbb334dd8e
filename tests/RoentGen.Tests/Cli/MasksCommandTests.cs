using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Diffusion;
using RoentGen.Tests.Diffusion;
using RoentGen.Vision.Segmentation;
using CliPolicy = RoentGen.Cli.Commands.Cli;

namespace RoentGen.Tests.Cli;

/// <summary><c>roentgen masks transform|train|generate|eval</c>, in-process, at tiny sizes.</summary>
[Collection(ProcessStateCollection.Name)]
public sealed class MasksCommandTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-masks-cli");
    private readonly Func<IProgressSink>? _sinks = ProgressReporter.SinkFactory;

    public MasksCommandTests() => ProgressReporter.SinkFactory = RoentGen.Interactive.ProgressSinks.None;

    public void Dispose()
    {
        ProgressReporter.SinkFactory = _sinks;
        TestPaths.DeleteQuietly(_dir);
    }

    private static RootCommand Roentgen()
    {
        var root = new RootCommand { MasksCommand.Build() };
        root.Options.Add(CliPolicy.Verbose);
        return root;
    }

    private (int ExitCode, string Out, string Err) Run(params string[] args) => CliCases.Invoke(Roentgen(), args);

    [Fact]
    public void Transform_writes_edited_conditions_that_read_back_the_same()
    {
        var dir = Path.Combine(_dir, "conds");
        var (code, stdout, err) = Run("masks", "transform", "--data", "phantoms", "--n", "6", "--size", "64", "--out", dir);
        Assert.True(code == 0, err);
        Assert.Contains("wrote 6 conditions", stdout);
        var again = MaskConditionSets.Transformed(6, 64, 1, 100_000, 1);
        var read = MaskConditionSets.Read(dir);
        Assert.Equal(6, read.Count);
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(again[i].Id, read[i].Id);
            Assert.NotEmpty(read[i].Edits);
            Assert.Equal(again[i].Edits, read[i].Edits);
            Assert.Equal(again[i].Report, read[i].Report with { Labels = again[i].Report.Labels });
            Assert.Equal(again[i].Report.Labels, read[i].Report.Labels);
            Assert.Equal(again[i].Truth, read[i].Truth);
            Assert.Equal(again[i].Masks.Keys.Order(), read[i].Masks.Keys.Order());
            foreach (var (name, mask) in again[i].Masks) Assert.Equal(mask.Pixels, read[i].Masks[name].Pixels);
        }
        var kinds = read.SelectMany(c => c.Edits).Select(e => e.Split(' ')[0]).Distinct().ToList();
        Assert.True(kinds.Count >= 2, $"edits: {string.Join(", ", read.SelectMany(c => c.Edits))}");
        Assert.Equal(2, Run("masks", "transform", "--data", "nih", "--n", "2", "--out", dir).ExitCode);
        Assert.Equal(2, Run("masks", "generate", "--model", _dir, "--conditions", dir, "--out", Path.Combine(_dir, "gen")).ExitCode);
    }

    [Fact]
    public void Train_generate_and_eval_at_tiny_size_write_a_model_images_and_the_adherence_json()
    {
        var run = Path.Combine(_dir, "run");
        var bad = Run("masks", "train", "--variant", "lora", "--from", TinyMaskModels.Ldm.Value, "--out", run, "--preset", "tiny");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("controlnet, concat", CliCases.AssertOneLine(bad.Err));
        var (code, stdout, err) = Run("masks", "train", "--variant", "controlnet", "--from", TinyMaskModels.Ldm.Value, "--out", run, "--preset", "tiny", "--steps", "2");
        Assert.True(code == 0, err);
        Assert.Contains("done: 2 steps", stdout);
        Assert.True(File.Exists(Path.Combine(run, "model", MaskConditionedModel.IndexFile)));

        var conds = Path.Combine(_dir, "conds");
        Assert.Equal(0, Run("masks", "transform", "--data", "phantoms", "--n", "2", "--size", "64", "--out", conds).ExitCode);
        var gen = Path.Combine(_dir, "gen");
        (code, stdout, err) = Run("masks", "generate", "--model", run, "--conditions", conds, "--out", gen, "--steps", "2");
        Assert.True(code == 0, err);
        Assert.Equal(2, Directory.GetFiles(Path.Combine(gen, "images"), "*.png").Length);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(gen, "samples.csv")).Length);

        var seg = SegmentationRuns.Train(SegmentationConfig.FromPreset("tiny") with { Size = 32, Steps = 4, TrainImages = 8 }, Path.Combine(_dir, "seg"));
        var json = Path.Combine(_dir, "adherence.json");
        (code, stdout, err) = Run("masks", "eval", "--model", run, "--json", json, "--segmenter", seg.Folder, "--n", "2", "--steps", "2");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var generators = doc.RootElement.GetProperty("generators");
        Assert.True(generators.TryGetProperty("controlnet", out _));
        Assert.True(generators.TryGetProperty("text-only", out var text));
        Assert.Equal(2, text.GetProperty("images").GetInt32());
        Assert.True(text.GetProperty("structures").TryGetProperty("lungs", out _));
        // Held-out phantom conditions come with their images: the segmenter's own score on them is the ceiling row.
        Assert.True(generators.TryGetProperty(MaskAdherence.PhantomsName, out var ceiling));
        Assert.Equal(2, ceiling.GetProperty("images").GetInt32());
        Assert.Contains("the ceiling for each structure", stdout);

        // The run's model/ folder finds the run config beside it (held-out cases follow the trained ones); a model copied
        // away from its run cannot know them and asks for --conditions instead of guessing.
        (code, _, err) = Run("masks", "eval", "--model", Path.Combine(run, "model"), "--json", json, "--segmenter", seg.Folder, "--n", "2", "--steps", "2", "--no-text-only");
        Assert.True(code == 0, err);
        var away = Path.Combine(_dir, "away");
        CopyTree(Path.Combine(run, "model"), away);
        (code, _, err) = Run("masks", "eval", "--model", away, "--json", json, "--segmenter", seg.Folder, "--n", "2", "--steps", "2", "--no-text-only");
        Assert.NotEqual(0, code);
        Assert.Contains("give --conditions", err);
    }

    private static void CopyTree(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(file, file.Replace(from, to));
    }
}
