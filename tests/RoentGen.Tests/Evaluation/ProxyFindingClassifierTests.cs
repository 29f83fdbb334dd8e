using System.Diagnostics;
using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation;

// Training seeds libtorch's global generator before it builds the network (torch.random.manual_seed), so a test running
// beside it that draws from that generator changes the weights: "same records and seed, same classifier" failed that
// way once in CI (s8). Alone in the process-state collection.
[Collection(ProcessStateCollection.Name)]
public class ProxyFindingClassifierTests(ITestOutputHelper output)
{
    private static readonly ProxyClassifierConfig Tiny = new() { InputSize = 64, Channels = [8, 16, 16], FeatureWidth = 24, NormGroups = 4 };

    [Fact]
    public void Labels_follow_the_uncertain_policy()
    {
        var l = new CxrLabels { [Observation.Cardiomegaly] = Mention.Positive, [Observation.Edema] = Mention.Uncertain, [Observation.Pneumothorax] = Mention.Negative };
        using var scope = NewDisposeScope();
        var ones = ProxyFindingClassifier.LabelTensor([l], UncertainLabels.Positive);
        var ignore = ProxyFindingClassifier.LabelTensor([l], UncertainLabels.Ignore);
        Assert.Equal(new long[] { 1, 14 }, ones.shape);
        Assert.Equal(1f, ones[0, (int)Observation.Cardiomegaly].item<float>());
        Assert.Equal(1f, ones[0, (int)Observation.Edema].item<float>());
        Assert.Equal(-1f, ignore[0, (int)Observation.Edema].item<float>());
        Assert.Equal(0f, ones[0, (int)Observation.Pneumothorax].item<float>());
        Assert.Equal(0f, ones[0, (int)Observation.Fracture].item<float>());
    }

    [Fact]
    public void Short_training_lowers_the_loss_and_a_saved_classifier_predicts_the_same()
    {
        using var scope = NewDisposeScope();
        var (images, labels) = ProxyFindingClassifier.PhantomData(64, 0, 96, seed: 5);
        manual_seed(1);
        var model = new ProxyFindingClassifier(Tiny);
        var seen = new List<ProxyTrainingProgress>();
        var history = model.Train(images, labels, new ProxyTrainingOptions { Steps = 25, BatchSize = 16, WarmupSteps = 2, LearningRate = 1e-2, Seed = 2 },
            new SyncProgress(seen));
        Assert.Equal(25, history.Steps);
        Assert.Equal(25, seen.Count);
        Assert.True(history.Loss.Skip(20).Average() < 0.75 * history.Loss.Take(5).Average(),
            $"loss did not fall: first {history.Loss.Take(5).Average():F3}, last {history.Loss.Skip(20).Average():F3}; {string.Join(" ", history.Loss.Select(l => l.ToString("F2")))}");

        var p = model.Predict(images.narrow(0, 0, 10));
        Assert.Equal(new long[] { 10, 14 }, p.shape);
        Assert.True(p.ge(0).all().item<bool>() && p.le(1).all().item<bool>());
        Assert.Equal(new long[] { 10, 24 }, model.Features(images.narrow(0, 0, 10)).shape);
        // A larger input is resized to the configured 64 px.
        Assert.Equal(new long[] { 2, 14 }, model.Predict(zeros(2, 1, 128, 128)).shape);

        var dir = TestPaths.NewTempDir();
        model.Save(dir);
        var loaded = ProxyFindingClassifier.Load(dir);
        Assert.Equal(Tiny.Channels, loaded.Config.Channels);
        Assert.True(loaded.Predict(images.narrow(0, 0, 10)).allclose(p, rtol: 0, atol: 1e-6));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Wrong_shapes_name_what_was_expected()
    {
        using var scope = NewDisposeScope();
        var model = new ProxyFindingClassifier(Tiny);
        Assert.Contains("(N, 1, H, W)", Assert.Throws<ArgumentException>(() => model.Predict(zeros(2, 3, 64, 64))).Message);
        Assert.Contains("(4, 14)", Assert.Throws<ArgumentException>(() => model.Train(zeros(4, 1, 64, 64), zeros(4, 13))).Message);
        Assert.Contains("divisible", Assert.Throws<ArgumentException>(() => new ProxyFindingClassifier(Tiny with { InputSize = 60 })).Message);
    }

    /// <summary>
    /// The README's claim at a small scale (seconds): a classifier trained on phantoms with their own labels reads the
    /// findings that are large at 32 px on held-out phantoms of another world, and the same run with the training labels
    /// randomly permuted across images (same images, same label prevalences) does not. So the held-out AUCs depend on the
    /// labels reaching the loss row for row, not on the images alone or on the evaluation.
    /// </summary>
    [Fact]
    public void Held_out_aucs_come_from_the_labels_a_permuted_label_control_stays_near_chance()
    {
        using var scope = NewDisposeScope();
        var (images, labels) = ProxyFindingClassifier.PhantomData(32, 0, 800, seed: 0);
        var (testImages, testLabels) = ProxyFindingClassifier.PhantomData(32, 0, 500, seed: 1);
        var order = Enumerable.Range(0, 800).Select(i => (long)i).ToArray();
        new Random(100).Shuffle(order);
        var permuted = labels.index_select(0, tensor(order));
        Assert.True(labels.sum(0).eq(permuted.sum(0)).all().item<bool>());   // same prevalences

        Observation[] large = [Observation.NoFinding, Observation.EnlargedCardiomediastinum, Observation.Cardiomegaly,
            Observation.LungOpacity, Observation.Edema, Observation.PleuralEffusion];
        (double Large, double Defined, string Text) HeldOut(Tensor trainLabels)
        {
            manual_seed(0);
            using var model = new ProxyFindingClassifier(new ProxyClassifierConfig { InputSize = 32, Channels = [8, 16, 32], FeatureWidth = 32, NormGroups = 4 });
            model.Train(images, trainLabels, new ProxyTrainingOptions { Seed = 0, Steps = 400, BatchSize = 64, LearningRate = 1e-2, WarmupSteps = 5 });
            model.eval();
            var aucs = model.Evaluate(testImages, testLabels);
            return (aucs.Where(a => large.Contains(a.Finding)).Average(a => a.Auc),
                aucs.Where(a => a.Positives >= 15 && a.Negatives >= 15).Average(a => a.Auc),
                string.Join(" ", aucs.Select(a => $"{a.Finding.Name()} {a.Auc:F2}")));
        }
        var right = HeldOut(labels);
        var control = HeldOut(permuted);
        output.WriteLine($"own labels: large {right.Large:F3}, defined {right.Defined:F3}: {right.Text}");
        output.WriteLine($"permuted:   large {control.Large:F3}, defined {control.Defined:F3}: {control.Text}");
        Assert.True(right.Large > 0.8, $"mean held-out AUC of the large findings {right.Large:F3} (expected over 0.8): {right.Text}");
        Assert.True(right.Large > control.Large + 0.2,
            $"own labels {right.Large:F3} vs permuted labels {control.Large:F3} on the large findings: the labels do not drive the AUCs");
        Assert.True(right.Defined > control.Defined + 0.1, $"own labels {right.Defined:F3} vs permuted {control.Defined:F3} over the findings with 15+ cases a side");
    }

    /// <summary>
    /// The budget measurement reported with the classifier (minutes of CPU): runs only when ROENTGEN_MEASURE_PROXY=1.
    /// Trains on 4,000 phantoms of world seed 0 and reports AUCs on 1,000 phantoms of world seed 1.
    /// </summary>
    [SkippableFact]
    public void Measure_held_out_auc_at_a_small_budget()
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("ROENTGEN_MEASURE_PROXY") == "1", "set ROENTGEN_MEASURE_PROXY=1 to run the budget measurement");
        int count = int.Parse(Environment.GetEnvironmentVariable("ROENTGEN_MEASURE_COUNT") ?? "4000");
        int steps = int.Parse(Environment.GetEnvironmentVariable("ROENTGEN_MEASURE_STEPS") ?? "800");
        var sw = Stopwatch.StartNew();
        var model = ProxyFindingClassifier.TrainOnPhantoms(64, count, seed: 0, steps: steps, options: new ProxyTrainingOptions { Seed = 0 });
        double trainSeconds = sw.Elapsed.TotalSeconds;
        using var scope = NewDisposeScope();
        var (images, labels) = ProxyFindingClassifier.PhantomData(64, 0, 1000, seed: 1);
        var aucs = model.Evaluate(images, labels);
        var lines = aucs.Select(a => $"{a.Finding.Name(),-28} AUC {a.Auc:F3}  (+{a.Positives} / -{a.Negatives})").ToList();
        lines.Add($"mean over defined: {aucs.Where(a => double.IsFinite(a.Auc)).Average(a => a.Auc):F3}; train {count} images, {steps} steps: {trainSeconds:F0} s (including phantom generation)");
        foreach (var l in lines) output.WriteLine(l);
        File.WriteAllLines(Path.Combine(Path.GetTempPath(), "roentgen-proxy-auc.txt"), lines);
        Assert.True(aucs.Where(a => double.IsFinite(a.Auc)).Average(a => a.Auc) > 0.6);
    }

    [Fact]
    public void The_judges_data_is_a_function_of_records_with_the_generator_paths_numbers()
    {
        using var scope = NewDisposeScope();
        // Sums that main at 0eb3c78 gave for PhantomData(32, 3, 20, 7) and PhantomData(64, 0, 20, 7, Ignore) (scratch test),
        // recomputed the same way after the phantom world was redrawn (feat/world) and after the Kerley B / deep sulcus change;
        // the label sums did not change.
        var (images, labels) = ProxyFindingClassifier.PhantomData(32, 3, 20, 7);
        Assert.Equal(new long[] { 20, 1, 32, 32 }, images.shape);
        double s1 = images.to(ScalarType.Float64).sum().item<double>();
        var (images2, labels2) = ProxyFindingClassifier.PhantomData(64, 0, 20, 7, UncertainLabels.Ignore);
        double s2 = images2.to(ScalarType.Float64).sum().item<double>();
        string got = $"sums {s1:R} and {s2:R}";
        Assert.True(s1 == 5117.440657734871, got);
        Assert.Equal(37f, labels.sum().item<float>());
        Assert.True(s2 == 20099.869412004948, got);
        Assert.Equal(28f, labels2.sum().item<float>());

        var records = PhantomRecords.Create(new PhantomOptions { Size = 64, Seed = 7 }, 20, start: 3);
        var (fromRecords, recordLabels) = ProxyFindingClassifier.RecordData(records, 32);
        Assert.True(fromRecords.eq(images).all().item<bool>());
        Assert.True(recordLabels.eq(labels).all().item<bool>());
        Assert.Throws<ArgumentException>(() => ProxyFindingClassifier.RecordData(records.Derive("none", []), 32));
    }

    [Fact]
    public void Training_on_phantoms_is_training_on_their_records()
    {
        var options = new ProxyTrainingOptions { BatchSize = 8 };
        using var a = ProxyFindingClassifier.TrainOnPhantoms(64, 16, seed: 4, steps: 2, config: Tiny, options: options);
        using var b = ProxyFindingClassifier.TrainOnRecords(PhantomRecords.Create(new PhantomOptions { Size = 64, Seed = 4 }, 16), 64, steps: 2, config: Tiny, options: options);
        using var scope = NewDisposeScope();
        var (images, _) = ProxyFindingClassifier.PhantomData(64, 100, 4, seed: 4);
        Assert.True(a.Predict(images).eq(b.Predict(images)).all().item<bool>(), "the same records and seed must give the same classifier");
    }

    private sealed class SyncProgress(List<ProxyTrainingProgress> sink) : IProgress<ProxyTrainingProgress>
    {
        public void Report(ProxyTrainingProgress value) => sink.Add(value);
    }
}
