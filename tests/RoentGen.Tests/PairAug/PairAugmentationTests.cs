using System.CommandLine;
using RoentGen.Cli.Commands;
using RoentGen.Diffusion;
using RoentGen.PairAug;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

using RoentGen.Tests.Diffusion;

namespace RoentGen.Tests.PairAug;

/// <summary>PairAug's pruning rules on hand-checked numbers, and InterAug / IntraAug folders on a tiny pipeline.</summary>
[Collection(ProcessStateCollection.Name)]
public class PairAugmentationTests
{
    private static readonly string[] Corpus =
    [
        "small left pleural effusion", "no acute cardiopulmonary process", "right upper lobe pneumonia",
        "cardiomegaly with mild edema", "left lower lobe atelectasis", "no pneumothorax", "large right pleural effusion",
    ];

    private static TextToImagePipeline TinyPipeline() => TinyPipelines.Untrained(11, Corpus);

    private static ReportRewrite Rewrite(string id, RewriteOperation op, string original, string rewritten) =>
        new(id, op, original, rewritten, "test", null, null);

    private static readonly ReportRewrite[] Intra =
    [
        Rewrite("r0", RewriteOperation.ChangeInSymptoms, "small left pleural effusion", "large left pleural effusion"),
        Rewrite("r1", RewriteOperation.ChangeInSymptoms, "right upper lobe pneumonia", "no pneumonia"),
        Rewrite("r2", RewriteOperation.ChangeInSymptoms, "cardiomegaly with mild edema", "cardiomegaly with edema"),
        Rewrite("r3", RewriteOperation.ChangeInSymptoms, "left lower lobe atelectasis", "left lower lobe atelectasis and small effusion"),
    ];

    [Fact]
    public void Hybrid_pruning_keeps_pairs_above_each_mean_minus_0_003_with_counts_per_stage()
    {
        // Means: image 0.80025, change 0.3, text 0.3, so thresholds 0.79725, 0.297, 0.297.
        IntraScores[] s = [new(0.9, 0.5, 0.4), new(0.8, 0.1, 0.3), new(0.7, 0.3, 0.2), new(0.801, 0.3, 0.3)];
        var r = PairPruning.KeepIntra(s);
        Assert.Equal(0.79725, r.ImageThreshold, 12);
        Assert.Equal(0.297, r.ChangeThreshold, 12);
        Assert.Equal(0.297, r.TextThreshold, 12);
        Assert.Equal([true, false, false, true], r.Kept);
        Assert.Equal((4, 3, 2, 2, 2), (r.Total, r.AfterImage, r.AfterChange, r.AfterText, r.Pruned));
        // Margin 0.21: thresholds 0.59025, 0.09, 0.09, below every score: all four kept. Margin 0.15: the change
        // threshold 0.15 is still above B's 0.1, and the image threshold 0.65025 is below C's 0.7.
        Assert.Equal([true, true, true, true], PairPruning.KeepIntra(s, margin: 0.21).Kept);
        Assert.Equal([true, false, true, true], PairPruning.KeepIntra(s, margin: 0.15).Kept);
        Assert.Throws<ArgumentException>(() => PairPruning.KeepIntra([new(double.NaN, 0, 0)]));
    }

    [Fact]
    public void InterAug_rule_is_a_strict_threshold_on_logit_scale_times_cosine()
    {
        Assert.Equal([false, true, false, true], PairPruning.KeepInter([0.3, 0.30001, 0.29, 1.2]));
        // With CLIP's initial scale 1/0.07: cosine 0.05 gives 0.714 (kept), 0.02 gives 0.286 (pruned).
        Assert.Equal(0.05 / 0.07, PairPruning.InterAugScore(0.05, 1 / 0.07), 12);
        Assert.Equal([true, false], PairPruning.KeepInter([PairPruning.InterAugScore(0.05, 1 / 0.07), PairPruning.InterAugScore(0.02, 1 / 0.07)]));
    }

    [Fact]
    public void InterAug_writes_images_and_pairs_whose_kept_flags_follow_the_scores_and_counts_add_up()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        var rewrites = Intra.Select(r => r with { Operation = RewriteOperation.PartialOpposite }).ToList();
        var options = new InterAugOptions { Steps = 3, Seed = 5, BatchSize = 3, Threshold = 0.0 };
        var dir = TestPaths.NewTempDir("interaug");
        var result = PairAugmentation.InterAug(pipe, new PooledEmbedder(), rewrites, options, dir);
        var counts = result.Counts.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(rewrites.Count, counts["generated"]);
        Assert.Equal(counts["generated"], counts["kept"] + counts["pruned"]);
        var pairs = PairAugmentation.ReadPairs(result.PairsFile);
        Assert.Equal(rewrites.Count, pairs.Count);
        foreach (var p in pairs)
        {
            Assert.True(File.Exists(Path.Combine(dir, p.Image)), p.Image);
            Assert.Equal(p.Scores["inter"] > options.Threshold, p.Kept);
        }
        Assert.Equal(counts["kept"], PairAugmentation.ToDataset(result.PairsFile).Count);
        Assert.Equal(rewrites.Count, PairAugmentation.ToDataset(result.PairsFile, keptOnly: false).Count);
        // Same seed, same scores.
        var again = PairAugmentation.InterAug(pipe, new PooledEmbedder(), rewrites, options, TestPaths.NewTempDir("interaug2"));
        Assert.Equal(result.Pairs.Select(p => p.Scores["inter"]), again.Pairs.Select(p => p.Scores["inter"]));
    }

    [Fact]
    public void IntraAug_edits_each_original_prunes_by_the_three_scores_and_inverts_real_images_when_given()
    {
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        var options = new IntraAugOptions
        {
            Edit = new IntraAugOptions().Edit with { Steps = 4 },
            NullText = new NullTextOptions { InnerIterations = 2 },
        };
        var real = new Dictionary<string, Tensor> { ["r1"] = rand(1, 1, 16, 16) * 2 - 1 };
        var dir = TestPaths.NewTempDir("intraaug");
        var result = PairAugmentation.IntraAug(pipe, new PooledEmbedder(), Intra, options, dir, seed: 9, realImages: real);
        var c = result.Counts.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(1, c["inverted"]);
        Assert.Equal(Intra.Length, c["generated"]);
        Assert.True(c["generated"] >= c["after_image"] && c["after_image"] >= c["after_change"] && c["after_change"] >= c["kept"]);
        Assert.Equal(c["generated"], c["kept"] + c["pruned"]);
        // The kept flags are the rule applied to the written scores.
        var pairs = PairAugmentation.ReadPairs(result.PairsFile);
        var recomputed = PairPruning.KeepIntra(pairs.Select(p => new IntraScores(p.Scores["image"], p.Scores["change"], p.Scores["text"])).ToList());
        Assert.Equal(recomputed.Kept, pairs.Select(p => p.Kept));
        Assert.Equal(c["kept"], recomputed.AfterText);
        Assert.All(pairs, p => Assert.True(File.Exists(Path.Combine(dir, p.Image)) && File.Exists(Path.Combine(dir, "images", p.Id + "-source.png"))));
        // The real image is the pair's source image (written at the pipeline's size).
        var again = PairAugmentation.IntraAug(pipe, new PooledEmbedder(), Intra, options, TestPaths.NewTempDir("intraaug2"), seed: 9, realImages: real);
        Assert.Equal(result.Pairs.Select(p => p.Scores["text"]), again.Pairs.Select(p => p.Scores["text"]));
    }

    /// <summary>PooledEmbedder with the first batch of images and of texts it embeds (IntraAug's img_syn and txt_new) lengthened row by row.</summary>
    private sealed class LengtheningEmbedder : IClipEmbedder
    {
        private readonly PooledEmbedder _inner = new();
        private int _imageCalls, _textCalls;
        public int ImageSize => _inner.ImageSize;
        public Tensor EmbedImages(Tensor images) => Lengthen(_inner.EmbedImages(images), _imageCalls++ == 0);
        public Tensor EmbedTexts(IReadOnlyList<string> texts) => Lengthen(_inner.EmbedTexts(texts), _textCalls++ == 0);
        // Powers of two: exact in float32, so only the length moves (an edit that left the image as it was stays a zero change).
        private static Tensor Lengthen(Tensor x, bool first) => first ? x * pow(2, arange(1, x.shape[0] + 1, dtype: x.dtype)).unsqueeze(1) : x;
    }

    [Fact]
    public void IntraAug_change_score_compares_differences_of_unit_embeddings_so_an_embedding_s_length_does_not_move_it()
    {
        // Hand-checked: unit vectors (1, 0) − (0, 1) and (1, 0) − (0, 1) are parallel, cosine 1; the raw differences
        // (2, −1) and (1, −3) would give 5 / √50 ≈ 0.707.
        var one = PairAugmentation.ChangeAlignments(tensor(new float[] { 2, 0 }).reshape(1, 2), tensor(new float[] { 0, 1 }).reshape(1, 2),
            tensor(new float[] { 1, 0 }).reshape(1, 2), tensor(new float[] { 0, 3 }).reshape(1, 2));
        Assert.Equal(1.0, Assert.Single(one), 12);

        // Through IntraAug: lengthening img_syn and txt_new by 2, 4, 8, 16 leaves every score of every pair where it was.
        using var scope = NewDisposeScope();
        var pipe = TinyPipeline();
        var options = new IntraAugOptions { Edit = new IntraAugOptions().Edit with { Steps = 2 } };
        var plain = PairAugmentation.IntraAug(pipe, new PooledEmbedder(), Intra, options, TestPaths.NewTempDir("intraaug-unit"), seed: 4);
        var longer = PairAugmentation.IntraAug(pipe, new LengtheningEmbedder(), Intra, options, TestPaths.NewTempDir("intraaug-long"), seed: 4);
        foreach (var score in new[] { "image", "change", "text" })
            for (int i = 0; i < Intra.Length; i++)
                Assert.Equal(plain.Pairs[i].Scores[score], longer.Pairs[i].Scores[score], 12);
        Assert.Equal(plain.Pairs.Select(p => p.Kept), longer.Pairs.Select(p => p.Kept));
    }

    [Fact]
    public void Prune_reapplies_both_rules_to_the_written_scores_from_the_command_line()
    {
        var dir = TestPaths.NewTempDir("prune");
        var file = Path.Combine(dir, PairAugmentation.PairsFileName);
        AugmentedPair Intra(string id, double a, double b, double c) =>
            new(id, $"images/{id}.png", "report", "s", new Dictionary<string, double> { ["image"] = a, ["change"] = b, ["text"] = c }, true);
        AugmentedPair Inter(string id, double s) => new(id, $"images/{id}.png", "report", "s", new Dictionary<string, double> { ["inter"] = s }, false);
        var pairs = new[] { Intra("a", 0.9, 0.5, 0.4), Intra("b", 0.8, 0.1, 0.3), Inter("x", 0.31), Intra("c", 0.7, 0.3, 0.2), Inter("y", 0.3), Intra("d", 0.801, 0.3, 0.3) };
        File.WriteAllLines(file, pairs.Select(p => System.Text.Json.JsonSerializer.Serialize(p)));
        var root = new RootCommand { PairAugCommand.Build() };
        Assert.Equal(0, root.Parse(["pairaug", "prune", "--pairs", file]).Invoke());
        var back = PairAugmentation.ReadPairs(file).ToDictionary(p => p.Id, p => p.Kept);
        Assert.Equal(new Dictionary<string, bool> { ["a"] = true, ["b"] = false, ["x"] = true, ["c"] = false, ["y"] = false, ["d"] = true }, back);
        var counts = PairAugmentation.Prune(file, threshold: 0.2, margin: 0.21).Counts.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal((6, 2, 4, 4, 4, 6, 0), (counts["pairs"], counts["inter_kept"], counts["intra_after_image"], counts["intra_after_change"], counts["intra_kept"], counts["kept"], counts["pruned"]));
    }
}
