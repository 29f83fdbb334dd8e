using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using RoentGen.Synthetic;
using RoentGen.Vision.Segmentation;
using static TorchSharp.torch;

namespace RoentGen.Tests.Synthetic;

public class ProxyFilterTests
{
    /// <summary>Scores Pneumothorax as the image's mean brightness mapped to [0, 1]; every other observation 0.</summary>
    private sealed class BrightnessScorer : IFindingScorer
    {
        public Tensor Predict(Tensor images)
        {
            var p = zeros(images.shape[0], ProxyFindingClassifier.Outputs);
            p[TensorIndex.Colon, (int)Observation.Pneumothorax] = (images.mean([1, 2, 3]) + 1) / 2;
            return p;
        }
    }

    private static GrayImage Flat(int size, float value) => new(size, size, Enumerable.Repeat(value, size * size).ToArray());

    private static SyntheticImage Image(string id, float brightness, bool pneumothorax, IReadOnlyDictionary<string, GrayImage>? masks = null) =>
        new(id, "test", Flat(16, brightness), pneumothorax ? CxrLabels.FromPositives([Observation.Pneumothorax]) : new CxrLabels(), masks, "prompt");

    private static readonly double[] Half = Enumerable.Repeat(0.5, ProxyFindingClassifier.Outputs).ToArray();

    [Fact]
    public void The_classifier_check_keeps_an_agreeing_image_and_drops_a_disagreeing_one()
    {
        var filter = new ProxyFilter(new BrightnessScorer(), Half, null);
        var verdicts = filter.Judge([
            Image("bright-ptx", 0.9f, pneumothorax: true),    // p = 0.9 >= 0.5 for a conditioned finding: agrees
            Image("dark-ptx", 0.1f, pneumothorax: true),      // p = 0.1 < 0.5 for a conditioned finding: disagrees
            Image("bright-normal", 0.9f, pneumothorax: false), // p = 0.9 >= 0.5 for an absent finding: disagrees
            Image("dark-normal", 0.1f, pneumothorax: false),  // agrees
        ]);
        Assert.Equal([true, false, false, true], verdicts.Select(v => v.Keep));
        Assert.Equal([true, false, false, true], verdicts.Select(v => v.ClassifierAgrees!.Value));
        Assert.Contains("Pneumothorax", verdicts[1].Disagreements.Single());
        Assert.Contains("absent", verdicts[2].Disagreements.Single());
        Assert.All(verdicts, v => Assert.Null(v.Dice));
    }

    [Fact]
    public void The_segmenter_check_keeps_a_mask_it_reproduces_and_drops_one_it_does_not()
    {
        // A segmenter that marks every pixel as lungs: all weights 0, the head's bias +10 (sigmoid ~ 1 everywhere).
        var config = new SegmentationConfig { Size = 32, Widths = [8, 16], Groups = 4, Structures = ["lungs"] };
        using var net = new SegmentationUNet(config.Network);
        using (no_grad())
            foreach (var (name, p) in net.named_parameters())
            {
                if (name.StartsWith("head.") && name.EndsWith("bias")) p.fill_(10);
                else if (!name.Contains("norm")) p.zero_();
            }
        using var segmenter = new Segmenter(config, net);
        var whole = Flat(32, 1f);                         // Dice 1 with an all-foreground prediction
        var corner = new GrayImage(32, 32);               // 4 of 1024 pixels: Dice 2·4 / (1024 + 4) ≈ 0.008
        for (int y = 0; y < 2; y++) for (int x = 0; x < 2; x++) corner[x, y] = 1;
        var filter = new ProxyFilter(null, null, segmenter, new ProxyFilterOptions { MinDice = 0.5 }, expertRejected: new HashSet<string> { "vetoed" });
        var verdicts = filter.Judge([
            Image("whole", 0.5f, false, new Dictionary<string, GrayImage> { ["lungs"] = whole }),
            Image("corner", 0.5f, false, new Dictionary<string, GrayImage> { ["lungs"] = corner }),
            Image("no-masks", 0.5f, false),
            Image("vetoed", 0.5f, false, new Dictionary<string, GrayImage> { ["lungs"] = whole }),
        ]);
        Assert.Equal(1.0, verdicts[0].Dice!.Value, 6);
        Assert.Equal(8.0 / 1028, verdicts[1].Dice!.Value, 6);
        Assert.Null(verdicts[2].Dice);
        Assert.Equal([true, false, true, false], verdicts.Select(v => v.Keep));
        Assert.True(verdicts[3].ExpertRejected);
        Assert.All(verdicts, v => Assert.Null(v.ClassifierAgrees));
    }

    [Fact]
    public void A_classifier_without_fourteen_thresholds_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new ProxyFilter(new BrightnessScorer(), [0.5], null));
        Assert.Contains("14 validation thresholds", e.Message);
    }
}

public class PhantomOracleGeneratorTests
{
    [Fact]
    public void The_oracle_draws_a_moved_nodule_where_the_condition_mask_puts_it()
    {
        var world = new PhantomOptions { Size = 64, Seed = 0 };
        var generator = new PhantomGenerator(world);
        int index = Enumerable.Range(0, 2000).First(i => generator.GenerateReport(i).Truth is { Lesion: { IsMass: false } } t && t.Consolidation is null);
        var phantom = generator.Generate(index);
        var moved = FindingEdits.Move(MaskCondition.FromCase(phantom), "nodule", new MaskAffine(ShiftY: 6), seed: 1);
        var oracle = new PhantomOracleGenerator(world);

        var image = oracle.Generate([moved], seed: 0).Single();
        var drawn = generator.GenerateEdited(index, moved.Truth, MaskTransforms.Centroid(moved.Masks[moved.Masks.ContainsKey("nodule") ? "nodule" : "mass"]));
        Assert.Equal(drawn.Image.Pixels, image.Pixels);
        string name = drawn.Masks.ContainsKey("nodule") ? "nodule" : "mass";
        var (cx, cy) = MaskTransforms.Centroid(drawn.Masks[name])!.Value;
        var (tx, ty) = MaskTransforms.Centroid(moved.Masks[name])!.Value;
        Assert.True(Math.Abs(cx - tx) < 2.5 && Math.Abs(cy - ty) < 2.5, $"drawn nodule at ({cx:0.0}, {cy:0.0}), condition at ({tx:0.0}, {ty:0.0})");
        Assert.Same(moved.Truth, drawn.Truth);
        Assert.NotEqual(phantom.Image.Pixels, image.Pixels);
    }

    [Fact]
    public void A_right_upper_lobe_collapse_flipped_left_is_drawn_in_the_left_upper_zone_with_its_volume_loss()
    {
        var world = new PhantomOptions { Size = 128, Seed = 0 };
        var generator = new PhantomGenerator(world);
        int index = Enumerable.Range(0, 4000).First(i => generator.GenerateReport(i).Truth.Atelectasis is { Kind: "lobar", Location: "right upper lobe" });
        var phantom = generator.Generate(index);
        var truth = phantom.Truth with { Atelectasis = new AtelectasisFinding("lobar", "left upper lobe") };
        var flipped = generator.GenerateEdited(index, truth);
        var (ox, oy) = MaskTransforms.Centroid(phantom.Masks["atelectasis"])!.Value;
        var (fx, fy) = MaskTransforms.Centroid(flipped.Masks["atelectasis"])!.Value;
        // The patient's left is the image's right; an upper-lobe collapse stays high (not the lower-lobe triangle by the spine).
        Assert.True(ox < 64 && fx > 64, $"collapse centroid x {ox:0.0} -> {fx:0.0}");
        Assert.True(Math.Abs(fy - oy) < 8, $"collapse centroid y {oy:0.0} -> {fy:0.0}: the upper lobe should stay in the upper zone");
        Assert.Contains("left upper lobe", flipped.Report, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_condition_not_made_from_a_phantom_case_is_refused_with_its_id()
    {
        var e = Assert.Throws<ArgumentException>(() => PhantomOracleGenerator.CaseIndex("scan_17"));
        Assert.Contains("scan_17", e.Message);
        Assert.Equal(42, PhantomOracleGenerator.CaseIndex("phantom_000042+flip(nodule)"));
    }
}
