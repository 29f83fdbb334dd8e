using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation;

// Training seeds libtorch's global generator (as the proxy classifier does): alone in the process-state collection.
[Collection(ProcessStateCollection.Name)]
public class LateralityJudgeTests
{
    private static readonly ProxyClassifierConfig Tiny = new() { InputSize = 64, Channels = [8, 16, 16], FeatureWidth = 24, NormGroups = 4 };

    [Theory]
    [InlineData("Small left pleural effusion.", PatientSides.Left)]
    [InlineData("Large right pneumothorax.", PatientSides.Right)]
    [InlineData("RLL consolidation.", PatientSides.Right)]
    [InlineData("LUL nodule, 8 mm.", PatientSides.Left)]
    [InlineData("Opacity in the RML.", PatientSides.Right)]
    [InlineData("Lingular atelectasis.", PatientSides.Left)]
    [InlineData("L base atelectasis.", PatientSides.Left)]
    [InlineData("Small bilateral pleural effusions.", PatientSides.None)]
    [InlineData("Drained 2 L of fluid. No pneumothorax.", PatientSides.None)]
    [InlineData("Left chest wall pacemaker with a single lead in the right ventricle.", PatientSides.Both)]
    [InlineData("Left-sided effusion.", PatientSides.Left)]
    public void Sides_named_by_a_text(string text, PatientSides expected) => Assert.Equal(expected, Laterality.SidesNamed(text));

    [Fact]
    public void A_masks_side_is_the_patients_side_with_the_image_left_the_patients_right()
    {
        var mask = new GrayImage(8, 4);
        Assert.Equal(PatientSides.None, LateralityJudge.SidesOfMask(mask));
        mask[1, 1] = 1; mask[2, 2] = 1;                                  // image left only
        Assert.Equal(PatientSides.Right, LateralityJudge.SidesOfMask(mask));
        mask[6, 1] = 1;                                                  // one of three pixels on the image right: both sides
        Assert.Equal(PatientSides.Both, LateralityJudge.SidesOfMask(mask));
        for (int y = 0; y < 4; y++) for (int x = 4; x < 8; x++) mask[x, y] = 1;   // 16 of 18 on the image right
        Assert.Equal(PatientSides.Left, LateralityJudge.SidesOfMask(mask));
    }

    [Fact]
    public void Targets_from_masks_agree_with_the_sides_the_phantoms_were_drawn_with()
    {
        var cases = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 3 }).Generate(0, 600);
        using var scope = NewDisposeScope();
        var t = LateralityJudge.Targets(cases).data<float>().ToArray();
        int k = 2 * LateralityJudge.Findings.Count;
        foreach (var (finding, attribute) in new[] { (Observation.PleuralEffusion, "effusion_side"), (Observation.Pneumothorax, "pneumothorax_side"), (Observation.Fracture, "fracture_side") })
        {
            int f = LateralityJudge.Findings.ToList().IndexOf(finding), checkedCases = 0, agree = 0;
            for (int i = 0; i < cases.Count; i++)
            {
                if (!cases[i].Attributes.TryGetValue(attribute, out var side) || side is not ("left" or "right")) continue;
                checkedCases++;
                bool right = t[i * k + 2 * f] == 1, left = t[i * k + 2 * f + 1] == 1;
                if (side == "left" ? left && !right : right && !left) agree++;
            }
            Assert.True(checkedCases >= 10, $"{finding}: only {checkedCases} one-sided cases in 600 phantoms");
            Assert.True(agree >= 0.95 * checkedCases, $"{finding}: the mask gives the drawn side in {agree} of {checkedCases} cases");
        }
        // A finding the image does not show is left out of the loss.
        string[] lateral = ["pleural_effusion", "pneumothorax", "consolidation", "nodule", "mass", "atelectasis", "fracture"];
        int normal = cases.ToList().FindIndex(c => !lateral.Any(c.Masks.ContainsKey));
        Assert.True(normal >= 0);
        Assert.All(Enumerable.Range(0, k), o => Assert.Equal(-1f, t[normal * k + o]));
    }

    [Fact]
    public void Score_counts_images_on_the_named_side_and_skips_prompts_without_one_side()
    {
        int k = 2 * LateralityJudge.Findings.Count, eff = 0, ptx = 1;
        var prompts = new List<AdherencePrompt>
        {
            new("Small left pleural effusion.", [Observation.PleuralEffusion]),     // left beats right: correct
            new("Small left pleural effusion.", [Observation.PleuralEffusion]),     // right beats left: wrong
            new("Large right pneumothorax.", [Observation.Pneumothorax]),           // correct
            new("Small bilateral pleural effusions.", [Observation.PleuralEffusion]), // no single side: skipped
            new("Moderate cardiomegaly.", [Observation.Cardiomegaly]),              // not lateralised: skipped
        };
        var p = new float[prompts.Count * k];
        p[0 * k + 2 * eff + 1] = 0.9f; p[0 * k + 2 * eff] = 0.1f;
        p[1 * k + 2 * eff + 1] = 0.2f; p[1 * k + 2 * eff] = 0.7f;
        p[2 * k + 2 * ptx] = 0.6f; p[2 * k + 2 * ptx + 1] = 0.3f;
        var q = new float[prompts.Count * 14];
        q[0 * 14 + (int)Observation.PleuralEffusion] = 0.8f;                    // the finding judge sees image 0's effusion only
        using var scope = NewDisposeScope();
        var r = LateralityJudge.Score(tensor(p, [prompts.Count, k]), prompts, tensor(q, [prompts.Count, 14]),
            new Dictionary<Observation, double> { [Observation.PleuralEffusion] = 0.97 });
        Assert.Equal(3, r.Images);
        Assert.Equal(2.0 / 3, r.Accuracy, 6);
        Assert.Equal(1.0, r.SeenAccuracy, 6);
        var e = r.Findings.Single(f => f.Finding == Observation.PleuralEffusion);
        Assert.Equal((2, 1, 1, 1), (e.Images, e.Correct, e.Seen, e.SeenCorrect));
        Assert.Equal(0.97, e.JudgeAccuracy);
        Assert.True(double.IsNaN(r.Findings.Single(f => f.Finding == Observation.Pneumothorax).JudgeAccuracy));
        // Only findings the side judge reads reliably (effusion 0.97; pneumothorax not measured) count in ReliableAccuracy.
        Assert.Equal(2, r.ReliableImages);
        Assert.Equal(0.5, r.ReliableAccuracy, 6);
        Assert.Contains("\"laterality_reliable_accuracy\": 0.5", r.ToJson());
        var unreliable = LateralityJudge.Score(tensor(p, [prompts.Count, k]), prompts, tensor(q, [prompts.Count, 14]),
            new Dictionary<Observation, double> { [Observation.PleuralEffusion] = 0.85, [Observation.Pneumothorax] = 0.95 });
        Assert.Equal(1, unreliable.ReliableImages);
        Assert.Equal(1.0, unreliable.ReliableAccuracy, 6);
        Assert.True(double.IsNaN(LateralityJudge.Score(tensor(p, [prompts.Count, k]), prompts).ReliableAccuracy));
        Assert.Throws<ArgumentException>(() => LateralityJudge.Score(tensor(p, [prompts.Count, k]), prompts.Take(2).ToList()));
    }

    [Fact]
    public void A_trained_side_judge_is_saved_reloaded_and_not_retrained()
    {
        var dir = Path.Combine(Path.GetTempPath(), "roentgen-sides-" + Guid.NewGuid().ToString("N"));
        try
        {
            var judge = LateralityJudge.LoadOrTrain(dir, 64, count: 48, steps: 3, seed: 4, config: Tiny);
            Assert.Equal(LateralityJudge.Findings.Count, judge.Network.OutputCount);
            var (images, targets) = LateralityJudge.PhantomData(64, 0, 40, seed: 9);
            Assert.Equal(images.shape[0], targets.shape[0]);
            Assert.True(images.shape[0] > 0 && images.shape[0] < 40, $"kept {images.shape[0]} of 40: only phantoms with a lateralised finding");
            var before = judge.Predict(images);
            var stamp = File.GetLastWriteTimeUtc(Path.Combine(dir, "model.safetensors"));
            var again = LateralityJudge.LoadOrTrain(dir, 64, count: 48, steps: 3, seed: 4, config: Tiny);
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(dir, "model.safetensors")));
            Assert.True(before.allclose(again.Predict(images), 1e-5, 1e-6));
            // A mirrored image swaps the two halves, so every finding's right and left outputs swap.
            int f = LateralityJudge.Findings.Count;
            var mirrored = again.Predict(images.flip(3)).view(-1, f, 2);
            Assert.True(mirrored.select(2, 0).allclose(before.view(-1, f, 2).select(2, 1), 1e-5, 1e-6));
            Assert.True(mirrored.select(2, 1).allclose(before.view(-1, f, 2).select(2, 0), 1e-5, 1e-6));
            var acc = again.Accuracy(images, targets);
            Assert.Equal(LateralityJudge.Findings.Count, acc.Count);
            Assert.All(acc.Values.Where(double.IsFinite), a => Assert.InRange(a, 0, 1));
            Assert.Throws<RoentGen.Platform.RunStateException>(() => LateralityJudge.LoadOrTrain(dir, 64, count: 48, steps: 5, seed: 5, config: Tiny));
            // A reader of another run's folder (notebook 03, evaluate) takes the saved judge whatever its recipe.
            Assert.True(before.allclose(LateralityJudge.LoadSavedOrTrain(dir, 64, count: 4000, steps: 400, seed: 5).Predict(images), 1e-5, 1e-6));
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(dir, "model.safetensors")));
            Assert.Throws<ArgumentException>(() => new LateralityJudge(new ProxyFindingClassifier(Tiny)));                 // 14 outputs
            Assert.Throws<ArgumentException>(() => new LateralityJudge(new ProxyFindingClassifier(Tiny with { Outputs = 6 }))); // one channel
            Assert.Equal(2, judge.Network.Config.InputChannels);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void Halves_put_the_patients_right_first_and_mirror_the_left()
    {
        using var scope = NewDisposeScope();
        var x = arange(2 * 5, dtype: ScalarType.Float32).reshape(1, 1, 2, 5);   // rows [0 1 2 3 4], [5 6 7 8 9]
        var h = LateralityJudge.Halves(x);
        // right half [0 1; 5 6] with the mirrored left half [4 3; 9 8] beside it, then the other way round
        Assert.Equal(new long[] { 2, 2, 2, 2 }, h.shape);
        Assert.Equal(new float[] { 0, 1, 5, 6, 4, 3, 9, 8, 4, 3, 9, 8, 0, 1, 5, 6 }, h.data<float>().ToArray());
        Assert.Throws<ArgumentException>(() => LateralityJudge.Halves(zeros(2, 5)));
    }

    [Fact]
    public void A_finding_judge_config_still_writes_no_outputs_field()
    {
        var json = System.Text.Json.JsonSerializer.Serialize(new ProxyClassifierConfig());
        Assert.DoesNotContain("Outputs", json);
        Assert.DoesNotContain("InputChannels", json);
        Assert.Contains("\"Outputs\":12", System.Text.Json.JsonSerializer.Serialize(new ProxyClassifierConfig { Outputs = 12 }));
    }
}
