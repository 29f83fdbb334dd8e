using System.CommandLine;
using System.Text.Json.Nodes;
using RoentGen.Cli.Commands;
using RoentGen.Data.Phantoms;
using RoentGen.Interop;
using RoentGen.Tests.Cli;
using RoentGen.Training;
using RoentGen.Vision.Segmentation;
using static TorchSharp.torch;
using CliPolicy = RoentGen.Cli.Commands.Cli;

namespace RoentGen.Tests.Vision;

/// <summary>One tiny segmenter trained on phantoms, shared by the tests that score it.</summary>
public sealed class TinySegmenterFixture : IDisposable
{
    /// <summary>The run folder.</summary>
    public string Dir { get; } = TestPaths.NewTempDir("roentgen-seg-fixture");

    /// <summary>The trained run.</summary>
    public SegmentationRun Run { get; }

    /// <summary>Trains the tiny preset (lungs and heart, 64 px).</summary>
    public TinySegmenterFixture()
    {
        var old = ProgressReporter.SinkFactory;
        ProgressReporter.SinkFactory = RoentGen.Interactive.ProgressSinks.None;
        try { Run = SegmentationRuns.Train(SegmentationConfig.FromPreset("tiny"), Dir); }
        finally { ProgressReporter.SinkFactory = old; }
    }

    /// <inheritdoc />
    public void Dispose() => TestPaths.DeleteQuietly(Dir);
}

[Collection(ProcessStateCollection.Name)]
public sealed class SegmentationTests : IClassFixture<TinySegmenterFixture>, IDisposable
{
    private readonly TinySegmenterFixture _tiny;
    private readonly string _dir = TestPaths.NewTempDir("roentgen-seg");
    private readonly Func<IProgressSink>? _oldSink = ProgressReporter.SinkFactory;

    public SegmentationTests(TinySegmenterFixture tiny)
    {
        _tiny = tiny;
        ProgressReporter.SinkFactory = RoentGen.Interactive.ProgressSinks.None;
    }

    public void Dispose()
    {
        ProgressReporter.SinkFactory = _oldSink;
        TestPaths.DeleteQuietly(_dir);
    }

    [Fact]
    public void UNet_keeps_the_image_size_and_gives_one_channel_per_structure()
    {
        using var scope = NewDisposeScope();
        var config = new UNetConfig { Widths = [8, 16, 32, 64], Groups = 4, OutChannels = 3 };
        using var net = new SegmentationUNet(config);
        var y = net.call(randn(2, 1, 64, 48));
        Assert.Equal(new long[] { 2, 3, 64, 48 }, y.shape);
        Assert.Equal(config.ParameterEstimate(), net.parameters().Sum(p => p.numel()));
        // PLATFORM.md: GroupNorm's affine parameters must start at 1 and 0, not torch.empty garbage.
        foreach (var (name, p) in net.named_parameters().Where(kv => kv.name.Contains("norm")))
            Assert.Equal(name.EndsWith("weight") ? 1f : 0f, p.data<float>().ToArray().Distinct().Single());
        var bad = Assert.Throws<ArgumentException>(() => net.call(randn(1, 1, 60, 64)));
        Assert.Contains("divisible by 8", bad.Message);
    }

    [Fact]
    public void Soft_Dice_and_BCE_equal_a_hand_computation()
    {
        using var scope = NewDisposeScope();
        // One image, one structure, 4 pixels: p = sigmoid(logits) = 0.5, 0.8808, 0.1192, 0.5; target 1, 1, 0, 0.
        var logits = tensor(new float[] { 0, 2, -2, 0 }, [1, 1, 2, 2]);
        var target = tensor(new float[] { 1, 1, 0, 0 }, [1, 1, 2, 2]);
        double s = 1 / (1 + Math.Exp(-2));
        double[] p = [0.5, s, 1 - s, 0.5];
        double inter = p[0] + p[1], denom = p.Sum() + 2;
        double dice = 1 - (2 * inter + 1) / (denom + 1);
        Assert.Equal(dice, SegmentationLoss.SoftDice(logits, target).item<float>(), 5);
        double bce = -(Math.Log(p[0]) + Math.Log(p[1]) + Math.Log(1 - p[2]) + Math.Log(1 - p[3])) / 4;
        Assert.Equal(bce, SegmentationLoss.Bce(logits, target).item<float>(), 5);
        Assert.Equal(bce + 0.5 * dice, SegmentationLoss.DiceBce(logits, target, diceWeight: 0.5).item<float>(), 5);
        // An absent mask (present = 0) contributes nothing: a second image with a wrong prediction changes neither term.
        var logits2 = cat([logits, full(1, 1, 2, 2, 5f)], 0);
        var target2 = cat([target, zeros(1, 1, 2, 2)], 0);
        var present = tensor(new float[] { 1, 0 }, [2, 1]);
        Assert.Equal(dice, SegmentationLoss.SoftDice(logits2, target2, present).item<float>(), 5);
        Assert.Equal(bce, SegmentationLoss.Bce(logits2, target2, present).item<float>(), 5);
        // Hard Dice: 2|P∩G| / (|P| + |G|) = 2·1 / (2 + 1).
        Assert.Equal(2.0 / 3, SegmentationLoss.Dice([1, 1, 0, 0], [1, 0, 0, 0]), 12);
        Assert.True(double.IsNaN(SegmentationLoss.Dice([0, 0], [0, 0])));
    }

    [Fact]
    public void Equalized_input_is_the_same_under_any_increasing_intensity_change()
    {
        using var scope = NewDisposeScope();
        var x = rand(2, 1, 32, 32, generator: new Generator(3));
        var a = InputNormalizer.Apply(x, InputNormalization.Equalize);
        var b = InputNormalizer.Apply(x.pow(2.0) * 0.5 + 0.1, InputNormalization.Equalize);
        Assert.True(a.allclose(b, atol: 1e-6), "equalisation must absorb a monotone change (gamma, contrast, brightness)");
        Assert.InRange(a.min().item<float>(), -1f, -0.99f);
        Assert.InRange(a.max().item<float>(), 0.99f, 1f);
    }

    [Fact]
    public void Domain_randomisation_moves_masks_with_the_image_and_is_repeatable()
    {
        using var scope = NewDisposeScope();
        var img = zeros(4, 1, 32, 32);
        img[.., .., 8..24, 8..24] = tensor(1f);
        var mask = img.clone();
        var aug = new DomainRandomization { GeometricProbability = 1, BlurProbability = 0, NoiseProbability = 0, CollimationProbability = 0, BiasFieldProbability = 0, MinGamma = 1, MaxGamma = 1, Contrast = 0, Brightness = 0 };
        var (x1, m1) = aug.Apply(img, mask, new Random(5), new Generator(5));
        var (x2, m2) = aug.Apply(img, mask, new Random(5), new Generator(5));
        Assert.True(x1.eq(x2).all().item<bool>() && m1.eq(m2).all().item<bool>(), "the same streams must give the same batch");
        Assert.False(m1.eq(mask).all().item<bool>(), "a geometric transform must move the mask");
        // The mask is the thresholded image: they agree except on the resampled edge.
        double disagree = x1.ge(0.5).to_type(ScalarType.Float32).sub(m1).abs().mean().item<float>();
        Assert.True(disagree < 0.01, $"mask and image moved differently ({disagree:P1} of pixels disagree)");
        var (x3, _) = new DomainRandomization().Apply(img, mask, new Random(1), new Generator(1));
        Assert.InRange(x3.min().item<float>(), 0f, 1f);
        Assert.InRange(x3.max().item<float>(), 0f, 1f);
    }

    [Fact]
    public void The_bias_field_is_smooth_varies_across_the_image_and_leaves_the_masks_alone()
    {
        using var scope = NewDisposeScope();
        var img = full(8, 1, 64, 64, 0.5f);
        var mask = zeros(8, 1, 64, 64);
        mask[.., .., 16..48, 8..30] = tensor(1f);
        var only = DomainRandomization.None with { BiasFieldProbability = 1, MaxBiasField = 0.2 };
        var (x, m) = only.Apply(img, mask, new Random(3), new Generator(3));
        Assert.True(m.eq(mask).all().item<bool>(), "a photometric change must not touch the masks");
        var change = x - img;                                                 // the field itself (no clamping at 0.5 ± a few sd)
        double spread = change.std([2, 3]).mean().item<float>();
        Assert.True(spread > 0.005, $"the field must vary across the image (mean within-image sd {spread:0.0000})");
        // Smooth: neighbouring pixels differ far less than the field varies over the image.
        double step = (change.narrow(3, 1, 63) - change.narrow(3, 0, 63)).abs().mean().item<float>();
        Assert.True(step < spread / 10, $"neighbour step {step:0.00000} must be much smaller than the spread {spread:0.0000}");
        var (same, _) = (DomainRandomization.None with { MaxBiasField = 0.2 }).Apply(img, mask, new Random(3), new Generator(3));
        Assert.True(same.eq(img).all().item<bool>(), "probability 0 must leave the image as it is");
        Assert.Throws<ArgumentException>(() => (DomainRandomization.None with { MaxBiasField = -0.1 }).Validate());
        Assert.Throws<ArgumentException>(() => (DomainRandomization.None with { BiasFieldProbability = 1.5 }).Validate());
    }

    [Fact]
    public void Tiny_training_on_phantoms_beats_the_all_foreground_baseline_on_held_out_phantoms()
    {
        var heldOut = SegmentationData.PhantomRecords(64, 0, 24, start: 5000);
        using var trained = Segmenter.Load(_tiny.Dir);
        var result = SegmentationEvaluation.Evaluate(trained, heldOut, "tiny");
        var lungs = result["lungs"];
        Assert.Equal(24, lungs.Images);
        // An untrained net of the same shape, for what the margin means.
        manual_seed(123);
        using var untrained = new Segmenter(trained.Config, new SegmentationUNet(trained.Config.Network));
        var before = SegmentationEvaluation.Evaluate(untrained, heldOut, "untrained")["lungs"];
        double bar = lungs.AllForegroundDice + 0.15;
        Assert.True(lungs.MeanDice > bar, $"trained lung Dice {lungs.MeanDice:0.000} must beat all-foreground {lungs.AllForegroundDice:0.000} by 0.15");
        Assert.True(before.MeanDice < bar, $"an untrained net ({before.MeanDice:0.000}) must not pass the same bar {bar:0.000}");
        Assert.Equal(0, lungs.AllBackgroundDice);
    }

    [Fact]
    public void A_run_killed_after_a_checkpoint_resumes_to_the_same_weights_and_losses()
    {
        var config = SegmentationConfig.FromPreset("tiny") with { TrainImages = 16, Steps = 8, BatchSize = 4, CheckpointEvery = 4 };
        var whole = Path.Combine(_dir, "whole");
        var cut = Path.Combine(_dir, "cut");
        SegmentationRuns.Train(config, whole);
        SegmentationRuns.Train(config, cut);
        // Kill after step 4: the step-8 checkpoint, the model and run.json never got written.
        var ckpt = Path.Combine(cut, "checkpoints");
        Directory.Delete(Path.Combine(ckpt, "step-000008"), true);
        File.WriteAllText(Path.Combine(ckpt, "latest"), "step-000004");
        File.Delete(Path.Combine(cut, RunFolder.RunFile));
        Directory.Delete(Path.Combine(cut, Segmenter.ModelFolder), true);
        var resumed = SegmentationRuns.Train(config, cut);
        Assert.True(resumed.TrainedNow);
        Assert.Equal(Trainer.ReadHistory(whole).Loss, Trainer.ReadHistory(cut).Loss);
        using var a = SafeTensors.Load(Path.Combine(whole, Segmenter.ModelFolder, Checkpoint.WeightsFileName));
        using var b = SafeTensors.Load(Path.Combine(cut, Segmenter.ModelFolder, Checkpoint.WeightsFileName));
        Assert.Equal(a.Tensors.Keys.Order(), b.Tensors.Keys.Order());
        foreach (var (key, t) in a.Tensors) Assert.True(t.eq(b.Tensors[key]).all().item<bool>(), $"weight {key} differs after resuming");
        // A finished run is not trained again.
        Assert.False(SegmentationRuns.Train(config, cut).TrainedNow);
    }

    private static RootCommand Roentgen()
    {
        var root = new RootCommand { SegmentCommand.Build() };
        root.Options.Add(CliPolicy.Verbose);
        return root;
    }

    [Fact]
    public void Segment_eval_writes_lungs_and_per_image_dice_with_baselines()
    {
        var data = Path.Combine(_dir, "phantoms");
        PhantomDataset.WriteFolder(data, new PhantomOptions { Size = 64, Seed = 9 }, 6);
        var json = Path.Combine(_dir, "eval.json");
        var (rc, stdout, err) = CliCases.Invoke(Roentgen(), "segment", "eval", "--model", _tiny.Dir, "--data", Path.Combine(data, "labels.csv"), "--json", json);
        Assert.True(rc == 0, err);
        Assert.Contains("lungs: mean Dice", stdout);
        Assert.Contains("\nheart: mean Dice", stdout.ReplaceLineEndings("\n"));   // one printed line per structure, not an escaped "\n"
        var root = JsonNode.Parse(File.ReadAllText(json))!;
        var lungs = root["structures"]!["lungs"]!;
        Assert.Equal(6, lungs["images"]!.GetValue<int>());
        Assert.InRange(lungs["mean_dice"]!.GetValue<double>(), 0, 1);
        Assert.InRange(lungs["baselines"]!["all_foreground"]!.GetValue<double>(), 0.05, 1);
        Assert.Equal(0, lungs["baselines"]!["all_background"]!.GetValue<double>());
        Assert.NotNull(root["structures"]!["heart"]);
        var images = root["images"]!.AsArray();
        Assert.Equal(12, images.Count);   // 6 images x (lungs, heart)
        Assert.All(images, i => Assert.StartsWith("images/", i!["file"]!.GetValue<string>()));
        Assert.Equal(0, root["skipped_without_mask"]!.GetValue<int>());

        // The picture agrees with the numbers: each image's reference then its prediction, captioned with the Dice that
        // the JSON reports for that image; --overlays writes it as a PNG.
        using (var model = Segmenter.Load(_tiny.Dir))
        {
            var grid = SegmentationEvaluation.Overlays(model, SegmentationData.LabelsCsv(Path.Combine(data, "labels.csv"), false));
            Assert.Equal(12, grid.Cells.Count);
            var lungDice = images.Where(i => i!["structure"]!.GetValue<string>() == "lungs").Select(i => i!["dice"]!.GetValue<double>()).ToList();
            for (int k = 0; k < 6; k++)
            {
                Assert.EndsWith(": reference", grid.Cells[2 * k].Caption);
                Assert.Equal(FormattableString.Invariant($"Dice {lungDice[k]:0.000}"), grid.Cells[2 * k + 1].Caption);
            }
        }
        var png = Path.Combine(_dir, "overlays.png");
        (rc, _, err) = CliCases.Invoke(Roentgen(), "segment", "eval", "--model", _tiny.Dir, "--data", Path.Combine(data, "labels.csv"), "--json", json, "--overlays", png);
        Assert.True(rc == 0, err);
        Assert.Equal(new byte[] { 137, 80, 78, 71 }, File.ReadAllBytes(png)[..4]);
    }

    [Fact]
    public void Segment_verbs_report_user_errors_in_one_line_with_exit_2()
    {
        var noMask = Path.Combine(_dir, "nomask");
        Directory.CreateDirectory(Path.Combine(noMask, "images"));
        PhantomDataset.WriteFolder(Path.Combine(_dir, "src"), new PhantomOptions { Size = 64 }, 2);
        File.Copy(Path.Combine(_dir, "src", "images", "phantom_000000.png"), Path.Combine(noMask, "images", "a.png"));
        File.WriteAllText(Path.Combine(noMask, "labels.csv"), "file,dataset,labels\nimages/a.png,x,normal\n");
        var json = Path.Combine(_dir, "e.json");

        var (rc, _, err) = CliCases.Invoke(Roentgen(), "segment", "eval", "--model", _tiny.Dir, "--data", Path.Combine(noMask, "labels.csv"), "--json", json);
        Assert.Equal(CliPolicy.UserError, rc);
        Assert.Contains("no mask column", CliCases.AssertOneLine(err));

        (rc, _, err) = CliCases.Invoke(Roentgen(), "segment", "eval", "--model", Path.Combine(_dir, "absent"), "--data", Path.Combine(noMask, "labels.csv"), "--json", json);
        Assert.Equal(CliPolicy.UserError, rc);
        Assert.Contains("absent", CliCases.AssertOneLine(err));

        (rc, _, err) = CliCases.Invoke(Roentgen(), "segment", "eval", "--model", noMask, "--data", Path.Combine(noMask, "labels.csv"), "--json", json);
        Assert.Equal(CliPolicy.UserError, rc);
        Assert.Contains("no trained segmenter", CliCases.AssertOneLine(err));

        // --model left out: a parse error (Program turns it into one line, exit 2).
        Assert.NotEmpty(Roentgen().Parse(["segment", "eval", "--data", noMask, "--json", json]).Errors);

        (rc, _, err) = CliCases.Invoke(Roentgen(), "segment", "train", "--data", Path.Combine(noMask, "labels.csv"), "--out", Path.Combine(_dir, "r"), "--preset", "tiny");
        Assert.Equal(CliPolicy.UserError, rc);
        Assert.Contains("no mask column", CliCases.AssertOneLine(err));

        (rc, _, err) = CliCases.Invoke(Roentgen(), "segment", "train", "--data", "phantoms", "--out", Path.Combine(_dir, "r"), "--preset", "huge");
        Assert.Equal(CliPolicy.UserError, rc);
        Assert.Contains("tiny, quick", CliCases.AssertOneLine(err));
        Assert.False(File.Exists(json));
    }

    [SkippableFact]
    public void Tiny_segmenter_is_scored_on_the_real_samples_lung_masks()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real sample (../shared/data/real-cxr-sample) is absent");
        using var model = Segmenter.Load(_tiny.Dir);
        var data = SegmentationData.LabelsCsv(Path.Combine(TestPaths.RealSample!, "labels.csv"), allowOutsideRoot: false);
        var result = SegmentationEvaluation.Evaluate(model, data, "tiny");
        Assert.Equal(["lungs"], result.Structures.Select(s => s.Structure));
        Assert.Equal(16, result["lungs"].Images);
        Assert.Equal(data.Count - 16, result.SkippedWithoutMask);
        Assert.Equal(16, result.Images.Count);
        Assert.All(result.Images, i => Assert.InRange(i.Dice, 0, 1));
    }
}
