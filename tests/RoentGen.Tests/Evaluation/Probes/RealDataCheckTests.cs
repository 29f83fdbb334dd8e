using System.CommandLine;
using System.Text;
using RoentGen.Cli.Commands;
using RoentGen.Data;
using RoentGen.Evaluation.Probes;
using RoentGen.Training;
using RoentGen.Vision;
using Xunit.Abstractions;
using static TorchSharp.torch;
using RoentGen.Methods;
using RoentGen.Experiments;

namespace RoentGen.Tests.Evaluation.Probes;

public class RealDataCheckTests(ITestOutputHelper output)
{
    /// <summary>
    /// Features that are the pixels themselves: each 8x8 patch's 64 pixels are its token, the CLS feature is the grid of
    /// patch means. Whatever is visible in the images is in the features, so the checks' plumbing can be tested exactly.
    /// </summary>
    private sealed class PixelEncoder(string name = "pixels", int size = 32, int patch = 8) : IImageEncoder
    {
        public string Name => name;
        public int FeatureDim => size / patch * (size / patch);
        public int PatchDim => patch * patch;
        public int InputSize => size;

        public (Tensor Cls, Tensor Patches, int GridH, int GridW) Encode(Tensor images)
        {
            int g = size / patch;
            long b = images.shape[0];
            var tokens = images.reshape(b, g, patch, g, patch).permute(0, 1, 3, 2, 4).reshape(b, g * g, patch * patch); // (B, g·g, p·p)
            return (tokens.mean([2]), tokens, g, g);
        }
    }

    /// <summary>
    /// A generic-layout folder of 32x32 images: in dataset "tb-x", <paramref name="positives"/> "tuberculosis" rows (top half
    /// bright) and <paramref name="negatives"/> "normal" rows (bottom half bright), one "Effusion" row; in dataset "other",
    /// <paramref name="otherNormals"/> "No Finding" rows that look like positives. With <paramref name="masks"/>, every
    /// image carries a very bright 16x16 square on the 8-px grid and its mask. Positive rows 0 and 1 share a patient.
    /// </summary>
    internal static string Synthetic(int positives = 6, int negatives = 6, int otherNormals = 4, bool masks = false, int seed = 0)
    {
        var root = TestPaths.NewTempDir("realcheck");
        var rng = new Random(seed);
        var csv = new StringBuilder("file,dataset,labels,mask,patientid\n");
        int n = 0;
        void Row(string dataset, string labels, bool topBright, string? patient = null)
        {
            var img = new GrayImage(32, 32);
            int sx = 8 * rng.Next(0, 3), sy = 8 * rng.Next(0, 3);
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                {
                    bool top = y < 16;
                    float v = (top == topBright ? 0.7f : 0.3f) + (float)(rng.NextDouble() - 0.5) * 0.2f;
                    if (masks && x >= sx && x < sx + 16 && y >= sy && y < sy + 16) v = 1f;
                    img[x, y] = Math.Clamp(v, 0f, 1f);
                }
            var file = $"images/{n:000}.png";
            ImageIO.WritePng(Path.Combine(root, file), img);
            string mask = "";
            if (masks)
            {
                mask = RoentGen.Tests.Data.Datasets.Fixtures.MaskPng(root, $"masks/{n:000}.png", 32, 32, sx, sy, sx + 16, sy + 16);
                mask = Path.GetRelativePath(root, mask);
            }
            csv.Append($"{file},{dataset},{labels},{mask},{patient ?? $"p{n}"}\n");
            n++;
        }
        Directory.CreateDirectory(Path.Combine(root, "images"));
        for (int i = 0; i < positives; i++) Row("tb-x", "tuberculosis", topBright: true, patient: i < 2 ? "shared" : null);
        for (int i = 0; i < negatives; i++) Row("tb-x", "normal", topBright: false);
        Row("tb-x", "Effusion", topBright: true);
        for (int i = 0; i < otherNormals; i++) Row("other", "No Finding", topBright: true);
        File.WriteAllText(Path.Combine(root, "labels.csv"), csv.ToString());
        return root;
    }

    [Fact]
    public void Visibly_different_positives_give_a_high_leave_one_out_auc_against_same_dataset_normals_only()
    {
        var dir = Synthetic();
        var r = RealDataCheck.Run([new PixelEncoder()], dir, log: output.WriteLine);
        var knn = r["pixels"].Knn!;
        output.WriteLine(r.Summary());
        Assert.Equal((6, 6, 0), (knn.Positives, knn.Negatives, knn.Unscored));
        Assert.Equal(["tb-x"], knn.Datasets);
        Assert.True(knn.Auc > 0.95, $"AUC {knn.Auc}");
        Assert.True(knn.AucStandardError is >= 0 and < 0.1, $"SE {knn.AucStandardError}");
        Assert.Equal(knn.Auc, r["pixels"]["knn/auc:tuberculosis"]);

        // The 'other' normals look like positives: taking them too is possible, and makes the check worse, as it should.
        var all = RealDataCheck.Run([new PixelEncoder()], dir, new RealDataCheckOptions { NegativesFromAllDatasets = true });
        Assert.Equal(10, all["pixels"].Knn!.Negatives);
        Assert.True(all["pixels"].Knn!.Auc < knn.Auc, $"all-datasets AUC {all["pixels"].Knn!.Auc}");
        Assert.Equal("segmentation", Assert.Single(r["pixels"].NotAvailable).Key);
        Assert.Contains("no row has a mask", r["pixels"].NotAvailable["segmentation"]);
    }

    [Fact]
    public void Same_patient_rows_are_never_neighbours()
    {
        // A and A2 are the same patient with identical features; B (negative) is next to them, C (negative) far away.
        var f = tensor(new float[,] { { 1, 0 }, { 1, 0 }, { 0.9f, 0.1f }, { 0, 1 } });
        var r = RealDataCheck.LeaveOneOutKnn(f, [true, true, false, false], ["p", "p", "q", "r"], new RealDataCheckOptions { K = 1 }, ["d"]);
        // With A2 excluded, A's nearest is B: positives score 0, 0; negatives 1 (B's nearest is A), 0 (C's is B). AUC 0.25.
        Assert.Equal(0.25, r.Auc, 12);
        // Had A2 been allowed, both positives would score 1 (AUC 0.75).
        var leaky = RealDataCheck.LeaveOneOutKnn(f, [true, true, false, false], ["p", "p2", "q", "r"], new RealDataCheckOptions { K = 1 }, ["d"]);
        Assert.Equal(0.75, leaky.Auc, 12);
        // A patient with every row: nothing left to vote.
        var alone = RealDataCheck.LeaveOneOutKnn(f, [true, true, false, false], ["p", "p", "p", "p"], new RealDataCheckOptions { K = 1 }, ["d"]);
        Assert.Equal(4, alone.Unscored);
        Assert.True(double.IsNaN(alone.Auc));
    }

    [Fact]
    public void Uninformative_features_score_chance_even_when_k_covers_every_other_row()
    {
        // Identical features: every weight is equal. A plain vote fraction would give each positive 7/15 and each
        // negative 8/15 (its own row is left out), AUC 0; the class-balanced vote gives every row 0.5, AUC 0.5.
        var f = ones(16, 4);
        var y = Enumerable.Range(0, 16).Select(i => i < 8).ToArray();
        var patients = Enumerable.Range(0, 16).Select(i => $"p{i}").ToArray();
        foreach (int k in new[] { 5, 15 })
            Assert.Equal(0.5, RealDataCheck.LeaveOneOutKnn(f, y, patients, new RealDataCheckOptions { K = k }, ["d"]).Auc, 12);
        // Random features: chance on average over draws, not systematically below it.
        double mean = Enumerable.Range(0, 40).Average(s =>
        {
            manual_seed(s);
            return RealDataCheck.LeaveOneOutKnn(randn(16, 8), y, patients, new RealDataCheckOptions { K = 15 }, ["d"]).Auc;
        });
        Assert.InRange(mean, 0.4, 0.6);
    }

    [Fact]
    public void Hanley_McNeil_standard_error_follows_the_formula()
    {
        // A = 0.5, 8 vs 8: Q1 = Q2 = 1/3, SE² = (0.25 + 7·(1/3 − 0.25)·2) / 64.
        Assert.Equal(Math.Sqrt((0.25 + 14 * (1.0 / 3 - 0.25)) / 64), RealDataCheck.AucStandardError(0.5, 8, 8), 12);
        Assert.Equal(0, RealDataCheck.AucStandardError(1, 8, 8), 12);
        Assert.True(RealDataCheck.AucStandardError(0.8, 80, 80) < RealDataCheck.AucStandardError(0.8, 8, 8));
        Assert.True(double.IsNaN(RealDataCheck.AucStandardError(double.NaN, 8, 8)));
    }

    [Fact]
    public void Cross_validated_dice_is_high_when_the_tokens_show_the_mask_and_folds_cover_every_masked_image_once()
    {
        var dir = Synthetic(positives: 6, negatives: 6, otherNormals: 0, masks: true);
        var options = new RealDataCheckOptions { Folds = 4, SegmentationEpochs = 60, SegmentationLearningRate = 5e-2 };
        using var sample = RealDataSample.Load(dir, options);
        Assert.Equal(13, sample.MaskRows.Count);
        var seg = RealDataCheck.Check(new PixelEncoder(), sample, options, output.WriteLine).Segmentation!;
        Assert.Equal((13, 12, 4), (seg.Images, seg.Patients, seg.Folds.Count));   // rows 0 and 1 are one patient
        Assert.Equal(13, seg.Folds.Sum(f => f.TestImages));
        Assert.All(seg.Folds, f => Assert.Equal(13, f.TrainImages + f.TestImages));
        Assert.Equal(["mask"], seg.Structures);
        Assert.True(seg.MeanDice > 0.8, $"Dice {seg.MeanDice}");
        Assert.All(seg.Folds, f => Assert.True(double.IsFinite(f.MeanDice)));

        Assert.Throws<ArgumentException>(() => RealDataCheck.Check(new PixelEncoder(), sample, options with { PositiveLabel = "normal" }));

        // Images are loaded once per size and kept.
        var (a, _) = sample.At(32);
        Assert.Same(a, sample.At(32).Images);
        Assert.Equal(16, sample.At(16).Images.shape[3]);
    }

    [Fact]
    public void What_cannot_be_computed_is_recorded_with_a_reason()
    {
        var dir = Synthetic(positives: 1, negatives: 5, otherNormals: 0);
        var r = RealDataCheck.Run([new PixelEncoder()], dir);
        var e = r["pixels"];
        Assert.Null(e.Knn);
        Assert.Null(e.Segmentation);
        Assert.Contains("at least 2 'tuberculosis' and 2 normal rows, found 1 and 5", e.NotAvailable["knn"]);
        Assert.Contains("no row has a mask", e.NotAvailable["segmentation"]);
        var none = RealDataCheck.Run([new PixelEncoder()], dir, new RealDataCheckOptions { PositiveLabel = "pneumothorax" });
        Assert.Contains("no row has the source label 'pneumothorax'", none["pixels"].NotAvailable["knn"]);
        // The table keeps a row per missing check and says why.
        var table = r.ToDataFrame();
        var metrics = Enumerable.Range(0, (int)table.Rows.Count).Select(i => (string)table.Columns["metric"][i]).ToList();
        Assert.Equal(["knn/", "segmentation/"], metrics);
        Assert.Contains("found 1 and 5", (string)table.Columns["not available"][0]);
    }

    [Fact]
    public void A_bad_path_or_bad_options_fail_with_a_message_naming_them()
    {
        var missing = Path.Combine(TestPaths.NewTempDir("realcheck-missing"), "nope", "labels.csv");
        var e = Assert.Throws<FileNotFoundException>(() => RealDataCheck.Run([new PixelEncoder()], missing));
        Assert.Contains(missing, e.Message);
        var empty = TestPaths.NewTempDir("realcheck-empty");
        Assert.Contains(empty, Assert.Throws<FileNotFoundException>(() => RealDataCheck.Run([new PixelEncoder()], empty)).Message);
        var dir = Synthetic(otherNormals: 0);
        Assert.Contains("Folds", Assert.Throws<ArgumentException>(() => RealDataCheck.Run([new PixelEncoder()], dir, new RealDataCheckOptions { Folds = 1 })).Message);
        Assert.Contains("'pixels'", Assert.Throws<ArgumentException>(() => RealDataCheck.Run([new PixelEncoder(), new PixelEncoder()], dir)).Message);
        Assert.Throws<ArgumentException>(() => RealDataCheck.Run([], dir));
    }

    [Fact]
    public void Json_round_trip_keeps_every_number_and_the_transfer_over_random()
    {
        var dir = Synthetic(otherNormals: 0, masks: true);
        var options = new RealDataCheckOptions { SegmentationEpochs = 5, Folds = 3 };
        var r = RealDataCheck.Run([new PixelEncoder("pixels"), new PixelEncoder("random", size: 16, patch: 4)], dir, options);
        var transfer = r.Transfer();
        Assert.Contains(transfer, t => t.Encoder == "pixels" && t.Metric == "knn/auc:tuberculosis");
        Assert.DoesNotContain(transfer, t => t.Metric is "knn/positives" or "segmentation/dice_sd");
        var table = r.ToDataFrame();
        Assert.Equal(["metric", "pixels", "random", "pixels − random"], table.Columns.Select(c => c.Name).ToArray());
        Assert.Equal(["metric", "pixels − random"], r.TransferTable().Columns.Select(c => c.Name).ToArray());

        var file = Path.Combine(TestPaths.NewTempDir("realcheck-json"), "sub", "check.json");
        r.Save(file);
        var back = RealDataCheckResult.Load(file);
        Assert.Equal(r.Options.Folds, back.Options.Folds);
        Assert.Equal(r.Options.NormalLabels, back.Options.NormalLabels);
        Assert.Equal(r.Data, back.Data);
        foreach (var enc in r.Encoders)
        {
            Assert.Equal(enc.Metrics.Select(m => m.Key), back[enc.Encoder].Metrics.Select(m => m.Key));
            foreach (var m in enc.Metrics)
                Assert.Equal(m.Value, back[enc.Encoder][m.Key], 9);
            Assert.Equal(enc.Knn!.Datasets, back[enc.Encoder].Knn!.Datasets);
        }
        Assert.Equal(transfer.Count, back.Transfer().Count);
        var chart = r.Chart();
        Assert.Contains("tuberculosis", chart.Title);
        Assert.Equal(["pixels", "random"], chart.Traces.Select(t => t.Name));
        Assert.All(chart.Traces, t => Assert.Equal(["knn/auc:tuberculosis", "segmentation/mean_dice"], Assert.IsType<BarTrace>(t).Categories!));
        File.WriteAllText(file, "{\"data\": 1}");
        Assert.Throws<InvalidDataException>(() => RealDataCheckResult.Load(file));
    }

    [Fact]
    public void Check_real_verb_checks_a_comparison_folder_and_rejects_bad_input()
    {
        var data = Synthetic(otherNormals: 0, masks: true);
        // A comparison written from another working directory: its run folders are recorded relative to that one.
        var cmp = TestPaths.NewTempDir("realcheck-cmp");
        var cfg = EncoderComparisonConfig.Tiny;
        foreach (var (kind, inner) in new[] { ("dino", "teacher_backbone"), ("clip", "encoder"), ("supervised", "encoder") })
        {
            manual_seed(kind.Length);
            var vit = new VisionTransformer(cfg.Vit());
            Checkpoint.Save(Path.Combine(cmp, kind, inner), vit, vit.Config);
        }
        var runs = new[] { ("dino", "teacher_backbone"), ("clip", "encoder"), ("supervised", "encoder") }
            .Select(x => new EncoderRun(x.Item1, $"elsewhere/{x.Item1}", $"elsewhere/{x.Item1}/{x.Item2}", true, 3, 1, 1)).ToList();
        new EncoderComparisonResult(cfg, runs, []).Save(Path.Combine(cmp, EncoderComparison.ResultFile));

        var root = new RootCommand { CheckRealCommand.Build() };
        var json = Path.Combine(TestPaths.NewTempDir("realcheck-cli"), "r.json");
        int rc = root.Parse(["check-real", "--data", Path.Combine(data, "labels.csv"), "--comparison", cmp, "--random", "--epochs", "3", "--json", json]).Invoke();
        Assert.Equal(0, rc);
        var back = RealDataCheckResult.Load(json);
        Assert.Equal(["dino", "clip", "supervised", "random"], back.Encoders.Select(e => e.Encoder).ToArray());
        Assert.Equal(3, back.Transfer().Select(t => t.Encoder).Distinct().Count());

        // A named encoder folder plus a random one shaped like it.
        rc = root.Parse(["check-real", "--data", data, "--encoder", $"mine={Path.Combine(cmp, "dino", "teacher_backbone")}", "--random", "--epochs", "2", "--json", json]).Invoke();
        Assert.Equal(0, rc);
        Assert.Equal(["mine", "random"], RealDataCheckResult.Load(json).Encoders.Select(e => e.Encoder).ToArray());

        Assert.Equal(2, root.Parse(["check-real", "--data", Path.Combine(data, "nope.csv"), "--random"]).Invoke());
        Assert.Equal(2, root.Parse(["check-real", "--data", data]).Invoke());
        Assert.Equal(2, root.Parse(["check-real", "--data", data, "--comparison", Path.Combine(cmp, "missing")]).Invoke());
        Assert.Equal(2, root.Parse(["check-real", "--data", data, "--random", "--folds", "1"]).Invoke());
    }

    [SkippableFact]
    public void Real_sample_has_8_tb_positives_8_same_dataset_normals_and_16_lung_masks_with_finite_metrics()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real-cxr-sample is not beside this clone");
        var options = new RealDataCheckOptions { SegmentationEpochs = 20 };
        var r = RealDataCheck.Run([new RandomEncoder(SegmentationProbeTests.TinyVit)], TestPaths.RealSample!, options, output.WriteLine);
        var e = r.Encoders.Single();
        output.WriteLine(r.Summary());
        Assert.Empty(e.NotAvailable);
        Assert.Equal((8, 8, 0), (e.Knn!.Positives, e.Knn.Negatives, e.Knn.Unscored));
        Assert.Equal(["tb-montgomery", "tb-shenzhen"], e.Knn.Datasets);
        Assert.InRange(e.Knn.Auc, 0, 1);
        Assert.Equal(16, e.Segmentation!.Images);
        Assert.Equal(4, e.Segmentation.Folds.Count);
        // Predicting "lung" everywhere already scores about 0.5 on these masks: the head on random features has to beat
        // that baseline (pooled over the 16 masks at the encoder's size), on average and in at least three of four folds.
        double allForeground;
        using (var sample = RealDataSample.Load(TestPaths.RealSample!, options))
            allForeground = SegmentationProbeTests.AllForegroundDice(sample.At(SegmentationProbeTests.TinyVit.ImageSize).Masks["mask"]);
        output.WriteLine($"all-foreground Dice {allForeground:F3}; folds {string.Join(", ", e.Segmentation.Folds.Select(f => f.MeanDice.ToString("F3")))}");
        Assert.All(e.Segmentation.Folds, f => Assert.True(double.IsFinite(f.MeanDice), $"fold {f.Fold} Dice {f.MeanDice}"));
        Assert.True(e.Segmentation.MeanDice > allForeground + 0.02, $"mean Dice {e.Segmentation.MeanDice} does not beat the all-foreground mask's {allForeground}");
        Assert.True(e.Segmentation.Folds.Count(f => f.MeanDice > allForeground) >= 3,
            $"folds {string.Join(", ", e.Segmentation.Folds.Select(f => f.MeanDice.ToString("F3")))} against the all-foreground mask's {allForeground:F3}");
    }
}
