using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Data;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation;

/// <summary>The judge's per-finding report, its class-balanced loss, reconstruction fidelity, and the judge / vae-eval verbs.</summary>
[Collection(ProcessStateCollection.Name)]
public class JudgeFidelityTests(ITestOutputHelper output)
{
    private static readonly ProxyClassifierConfig Tiny32 = new() { InputSize = 32, Channels = [8, 16, 16], FeatureWidth = 24, NormGroups = 4 };

    private static int Invoke(Command verb, params string[] args) => new RootCommand("test") { verb }.Parse([verb.Name, .. args]).Invoke();

    private static Command Verb(string name) => JudgeCommand.Build().Single(c => c.Name == name);

    [Fact]
    public void Psnr_and_ssim_of_identical_images_are_infinite_and_one()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var x = rand(3, 1, 16, 16);
        Assert.Equal(double.PositiveInfinity, ReconstructionFidelity.MeanPsnr(x, x.clone()));
        Assert.Equal(1.0, Ssim.Compute(x, x.clone()).mean().item<float>(), 5);
    }

    [Fact]
    public void Psnr_and_ssim_of_a_constant_shift_match_the_hand_computed_values()
    {
        using var scope = NewDisposeScope();
        // Float64, so that the variance terms (E[x²] − E[x]², divided by C2 = 9e-4) carry no float32 cancellation error.
        var a = full(2, 1, 16, 16, 0.5, dtype: ScalarType.Float64);
        var b = full(2, 1, 16, 16, 0.6, dtype: ScalarType.Float64);
        // MSE = 0.1² = 0.01, so PSNR = 10·log10(1 / 0.01) = 20 dB.
        Assert.Equal(20.0, ReconstructionFidelity.MeanPsnr(b, a), 4);
        // Flat images: every variance and covariance is 0, so SSIM = (2·0.5·0.6 + C1) / (0.5² + 0.6² + C1) with C1 = (0.01·1)².
        double c1 = 1e-4;
        Assert.Equal((2 * 0.5 * 0.6 + c1) / (0.25 + 0.36 + c1), Ssim.Compute(b, a).mean().item<double>(), 8);
        // Range 2 (images in [-1, 1]) adds 20·log10(2) dB.
        Assert.Equal(20.0 + 20 * Math.Log10(2), ReconstructionFidelity.MeanPsnr(b, a, dataRange: 2.0), 4);
        Assert.Throws<ArgumentException>(() => ReconstructionFidelity.MeanPsnr(a, zeros(2, 1, 8, 8, dtype: ScalarType.Float64)));
    }

    [Fact]
    public void Positive_weights_are_negatives_over_positives_clamped()
    {
        using var scope = NewDisposeScope();
        var data = new float[8 * ProxyFindingClassifier.Outputs];
        void Set(int row, int col, float v) => data[row * ProxyFindingClassifier.Outputs + col] = v;
        Set(0, 0, 1);                                           // column 0: 1 positive, 7 negatives -> 7, clamped to 5
        Set(0, 1, 1); Set(1, 1, 1); Set(2, 1, -1);              // column 1: 2 positives, 5 negatives, 1 left out -> 2.5
        for (int i = 0; i < 6; i++) Set(i, 2, 1);               // column 2: 6 positives, 2 negatives -> 1/3, clamped to 1
        var weights = ProxyFindingClassifier.PositiveWeights(tensor(data, [8, ProxyFindingClassifier.Outputs]), 5);
        Assert.Equal(new long[] { ProxyFindingClassifier.Outputs }, weights.shape);
        var w = weights.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        output.WriteLine(string.Join(" ", w));
        Assert.Equal(5.0, w[0], 6);
        Assert.Equal(2.5, w[1], 6);
        Assert.Equal(1.0, w[2], 6);
        Assert.Equal(1.0, w[3], 6);                             // no positives: 1
        Assert.Throws<ArgumentOutOfRangeException>(() => ProxyFindingClassifier.PositiveWeights(tensor(data, [8, ProxyFindingClassifier.Outputs]), 0.5));
    }

    [Fact]
    public void Class_balance_changes_the_training_and_is_the_plain_loss_otherwise()
    {
        using var scope = NewDisposeScope();
        var (x, y) = ProxyFindingClassifier.PhantomData(32, 0, 24, 5);
        Tensor Trained(double maxWeight)
        {
            manual_seed(2);
            var judge = new ProxyFindingClassifier(Tiny32);
            judge.Train(x, y, new ProxyTrainingOptions { Steps = 3, BatchSize = 8, WarmupSteps = 1, LearningRate = 1e-2, MaxPositiveWeight = maxWeight, Seed = 3 });
            return judge.Predict(x);
        }
        var plain = Trained(0);
        Assert.True(Trained(1).eq(plain).all().item<bool>(), "a largest weight of 1 must be the plain loss");
        Assert.False(Trained(5).allclose(plain, rtol: 0, atol: 1e-6), "class balance left the training unchanged");
    }

    [Fact]
    public void A_tiny_judge_learns_an_easy_rare_synthetic_finding_well_above_chance()
    {
        // An easy finding: a bright 8x8 square somewhere in a noisy 32-px image, present in about 1 image in 5.
        static (Tensor X, Tensor Y) Data(int n, long seed)
        {
            var g = new TorchSharp.torch.Generator((ulong)seed);
            var x = rand(n, 1, 32, 32, generator: g) * 0.6f - 0.8f;
            var y = zeros(n, ProxyFindingClassifier.Outputs);
            var has = rand(n, generator: g).lt(0.2).data<bool>().ToArray();
            var pos = randint(0, 24, [n, 2], generator: g).data<long>().ToArray();
            for (int i = 0; i < n; i++)
            {
                if (!has[i]) continue;
                x[i, 0, TensorIndex.Slice(pos[2 * i], pos[2 * i] + 8), TensorIndex.Slice(pos[2 * i + 1], pos[2 * i + 1] + 8)] = tensor(0.9f);
                y[i, (int)Observation.Cardiomegaly] = tensor(1f);
            }
            return (x, y);
        }
        using var scope = NewDisposeScope();
        var (x, y) = Data(256, 1);
        var (hx, hy) = Data(200, 2);
        manual_seed(4);
        var judge = new ProxyFindingClassifier(Tiny32);
        double before = judge.Evaluate(hx, hy)[(int)Observation.Cardiomegaly].Auc;
        judge.Train(x, y, new ProxyTrainingOptions { Steps = 40, BatchSize = 32, WarmupSteps = 4, LearningRate = 1e-2, MaxShift = 0, MaxPositiveWeight = 4, Seed = 5 });
        double after = judge.Evaluate(hx, hy)[(int)Observation.Cardiomegaly].Auc;
        output.WriteLine($"held-out AUC of the square: untrained {before:F3}, trained {after:F3}");
        Assert.True(after > 0.9, $"held-out AUC {after:F3} after training (untrained {before:F3}): expected well above chance");
        Assert.True(after > before + 0.1, $"training did not improve the AUC: {before:F3} -> {after:F3}");
    }

    [Fact]
    public void The_judge_report_lists_every_prompted_finding_in_order_and_writes_its_json_fields()
    {
        var aucs = Enumerable.Range(0, ProxyFindingClassifier.Outputs)
            .Select(o => new FindingAuc((Observation)o, o == (int)Observation.PleuralOther ? double.NaN : 0.80 + 0.01 * o, 10, 90)).Reverse().ToList();
        var report = JudgeReport.FromAucs(aucs, 128, 100, worldSeed: 2001) with { TrainSeconds = 12.5 };
        Assert.Equal(PromptAdherence.DefaultFindings, report.Findings.Select(f => f.Finding));
        Assert.Equal(9, report.Findings.Count);
        Assert.Equal(ProxyFindingClassifier.Outputs - 9, report.Others.Count);
        Assert.Equal(0.80 + 0.01 * (int)Observation.Cardiomegaly, report.MinAuc, 10);
        Assert.False(report.MeetsTarget);   // cardiomegaly's 0.82 is under 0.85
        Assert.Contains("below target", report.Summary());
        using var doc = JsonDocument.Parse(report.ToJson());
        var r = doc.RootElement;
        Assert.Equal(128, r.GetProperty("input_size").GetInt32());
        Assert.Equal(100, r.GetProperty("images").GetInt32());
        Assert.Equal(2001, r.GetProperty("world_seed").GetInt64());
        Assert.Equal(12.5, r.GetProperty("train_seconds").GetDouble());
        Assert.Equal(JudgeReport.TargetAuc, r.GetProperty("target_auc").GetDouble());
        Assert.Equal(report.MeanAuc, r.GetProperty("mean_auc").GetDouble(), 10);
        Assert.Equal(report.MinAuc, r.GetProperty("min_auc").GetDouble(), 10);
        Assert.False(r.GetProperty("meets_target").GetBoolean());
        var findings = r.GetProperty("findings").EnumerateArray().ToList();
        Assert.Equal(PromptAdherence.DefaultFindings.Select(f => f.ToString()), findings.Select(f => f.GetProperty("finding").GetString()));
        Assert.All(findings, f => Assert.True(f.TryGetProperty("auc", out _) && f.GetProperty("positives").GetInt32() == 10 && f.GetProperty("negatives").GetInt32() == 90));
        Assert.Equal("NaN", r.GetProperty("other_observations").EnumerateArray().Single(f => f.GetProperty("finding").GetString() == "PleuralOther").GetProperty("auc").GetString());
        Assert.Throws<ArgumentException>(() => JudgeReport.FromAucs(aucs.Where(a => a.Finding != Observation.Fracture).ToList(), 64, 100));
    }

    [Fact]
    public void A_judge_run_without_class_balance_or_another_batch_pins_the_same_json_as_before()
    {
        var plain = JsonSerializer.Serialize(new ProxyFindingClassifier.JudgeRun(64, 10, 2, 1, Tiny32), RoentGen.Interop.SafeTensors.ConfigJsonOptions);
        Assert.DoesNotContain("MaxPositiveWeight", plain);
        Assert.DoesNotContain("BatchSize", plain);
        var balanced = JsonSerializer.Serialize(new ProxyFindingClassifier.JudgeRun(64, 10, 2, 1, Tiny32) { MaxPositiveWeight = 4, BatchSize = 32 }, RoentGen.Interop.SafeTensors.ConfigJsonOptions);
        Assert.Contains("MaxPositiveWeight", balanced);
        Assert.Contains("\"BatchSize\": 32", balanced);
    }

    [Fact]
    public void A_judge_folder_pins_its_batch_so_another_batch_is_an_error_not_a_silent_reuse()
    {
        var dir = Path.Combine(Path.GetTempPath(), "judge-batch-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var judge = ProxyFindingClassifier.LoadOrTrain(dir, 32, count: 16, steps: 2, seed: 3, config: Tiny32, batchSize: 8)) { }
            Assert.Contains("\"BatchSize\": 8", File.ReadAllText(Path.Combine(dir, "run", "config.json")));
            using (var again = ProxyFindingClassifier.LoadOrTrain(dir, 32, count: 16, steps: 2, seed: 3, config: Tiny32, batchSize: 8)) { }
            Assert.Throws<RoentGen.Platform.RunStateException>(() => ProxyFindingClassifier.LoadOrTrain(dir, 32, count: 16, steps: 2, seed: 3, config: Tiny32));
            Assert.Throws<ArgumentOutOfRangeException>(() => ProxyFindingClassifier.LoadOrTrain(dir, 32, count: 16, steps: 2, seed: 3, config: Tiny32, batchSize: 0));
            // A reader of another run's folder takes the saved judge whatever its recipe, and trains nothing.
            var stamp = File.GetLastWriteTimeUtc(Path.Combine(dir, "model.safetensors"));
            using (var saved = ProxyFindingClassifier.LoadSavedOrTrain(dir, 32, count: 4000, steps: 600, seed: 3))
                Assert.Equal(Tiny32.Channels, saved.Config.Channels);   // the default judge is wider
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(dir, "model.safetensors")));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void Reconstruction_fidelity_of_exact_copies_has_no_gap_and_writes_every_json_field()
    {
        using var scope = NewDisposeScope();
        using var judge = ProxyFindingClassifier.TrainOnPhantoms(32, 16, seed: 3, steps: 2, config: Tiny32, options: new ProxyTrainingOptions { BatchSize = 8 });
        var (x, y) = ProxyFindingClassifier.PhantomData(32, 0, 40, 7);
        var same = ReconstructionFidelity.Compare(judge, x, x.clone(), y);
        Assert.Equal(double.PositiveInfinity, same.Psnr);
        Assert.Equal(1.0, same.Ssim, 5);
        Assert.True(Math.Abs(same.FeatureFid) < 1e-3, $"FID of a set with itself {same.FeatureFid}");
        Assert.Equal(PromptAdherence.DefaultFindings, same.Findings.Select(f => f.Finding));
        Assert.All(same.Findings.Where(f => double.IsFinite(f.OriginalAuc)), f => Assert.Equal(0.0, f.Gap));

        // A real (tiny, untrained) autoencoder: shapes and a finite, lower fidelity.
        manual_seed(1);
        using var vae = new AutoencoderKL(new VaeConfig { BlockOutChannels = [8, 8], NormGroups = 4, LatentChannels = 2 });
        var fid = ReconstructionFidelity.Measure(vae, judge, x, y);
        Assert.Equal(40, fid.Images);
        Assert.True(double.IsFinite(fid.Psnr) && fid.Psnr > 0 && fid.Ssim < 1, $"PSNR {fid.Psnr}, SSIM {fid.Ssim}");
        using var doc = JsonDocument.Parse(fid.ToJson());
        var r = doc.RootElement;
        foreach (var key in new[] { "images", "psnr_db", "ssim", "judge_feature_fid", "target_gap", "max_gap", "meets_target" })
            Assert.True(r.TryGetProperty(key, out _), $"missing {key}");
        var rows = r.GetProperty("findings").EnumerateArray().ToList();
        Assert.Equal(9, rows.Count);
        foreach (var key in new[] { "finding", "original_auc", "reconstruction_auc", "gap", "positives", "negatives" })
            Assert.True(rows[0].TryGetProperty(key, out _), $"missing findings[].{key}");
        Assert.Equal("Infinity", JsonDocument.Parse(same.ToJson()).RootElement.GetProperty("psnr_db").GetString());
    }

    [Fact]
    public void The_judge_and_vae_eval_verbs_train_measure_and_write_json()
    {
        var dir = TestPaths.NewTempDir("judge-cli");
        var judgeDir = Path.Combine(dir, "judge");
        var trainJson = Path.Combine(dir, "train.json");
        Assert.Equal(0, Invoke(Verb("judge"), "train", "--size", "32", "--out", judgeDir, "--images", "16", "--steps", "2",
            "--balance", "4", "--held-out", "12", "--json", trainJson));
        using (var doc = JsonDocument.Parse(File.ReadAllText(trainJson)))
        {
            Assert.Equal(32, doc.RootElement.GetProperty("input_size").GetInt32());
            Assert.Equal(9, doc.RootElement.GetProperty("findings").GetArrayLength());
            Assert.True(doc.RootElement.GetProperty("train_seconds").GetDouble() >= 0);
        }
        var evalJson = Path.Combine(dir, "eval.json");
        Assert.Equal(0, Invoke(Verb("judge"), "eval", "--model", judgeDir, "--images", "12", "--json", evalJson));
        using (var doc = JsonDocument.Parse(File.ReadAllText(evalJson)))
            Assert.Equal(12, doc.RootElement.GetProperty("images").GetInt32());
        // The run pinned its class balance: the same folder with another one is refused.
        Assert.NotEqual(0, Invoke(Verb("judge"), "train", "--size", "32", "--out", judgeDir, "--images", "16", "--steps", "2", "--held-out", "0"));

        // vae-eval on a folder whose VAE stage (only) has run.
        var cfg = LdmExperimentConfig.Tiny with { VaeSteps = 2 };
        var run = Path.Combine(dir, "experiment");
        LatentDiffusionRuns.TrainVae(cfg, LdmTrainingData.FromPhantoms(cfg), run);
        var vaeJson = Path.Combine(dir, "vae.json");
        Assert.Equal(0, Invoke(Verb("vae-eval"), "--model", run, "--judge", judgeDir, "--images", "12", "--json", vaeJson));
        using (var doc = JsonDocument.Parse(File.ReadAllText(vaeJson)))
        {
            Assert.Equal(12, doc.RootElement.GetProperty("images").GetInt32());
            Assert.Equal(9, doc.RootElement.GetProperty("findings").GetArrayLength());
        }
        Assert.NotEqual(0, Invoke(Verb("vae-eval"), "--model", dir, "--judge", judgeDir));   // no experiment there
        TestPaths.DeleteQuietly(dir);
    }
}
