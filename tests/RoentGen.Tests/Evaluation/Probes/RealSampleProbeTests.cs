using RoentGen.Evaluation.Probes;
using Xunit.Abstractions;

namespace RoentGen.Tests.Evaluation.Probes;

public class RealSampleProbeTests(ITestOutputHelper output)
{
    private static string Csv => Path.Combine(TestPaths.RealSample!, "labels.csv");

    [SkippableFact]
    public void Real_sample_loads_with_patient_splits_and_lung_segmentation_from_a_random_encoder_is_finite()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real-cxr-sample is not beside this clone");
        var data = ProbeData.FromCsv(Csv, size: 64);
        Assert.Equal(60, data.Train.Count + data.Validation.Count + data.Test.Count);
        Assert.Empty(data.Train.PatientIds.Intersect(data.Test.PatientIds));
        Assert.True(data.Train.Masks.ContainsKey("mask"));
        int trainMasks = data.Train.Masks["mask"].Present.Count(p => p), testMasks = data.Test.Masks["mask"].Present.Count(p => p);
        output.WriteLine($"lung masks: {trainMasks} train, {data.Validation.Masks["mask"].Present.Count(p => p)} validation, {testMasks} test");
        var enc = new RandomEncoder(SegmentationProbeTests.TinyVit);
        var r = ProbeSuite.Run(enc, data, ProbeSuiteOptions.Quick with { Targets = [ProbeTarget.Segmentation, ProbeTarget.Sex, ProbeTarget.Report] });
        output.WriteLine(r.ToJson());
        if (testMasks > 0 && trainMasks > 0)
        {
            double dice = r["segmentation/dice:mask"];
            Assert.True(double.IsFinite(dice) && dice > 0.3, $"lung Dice {dice}");
        }
        // Sex is known for the TB and COVID rows only: the probe either runs or says why not.
        Assert.True(r.Sex is not null || r.NotAvailable.ContainsKey("sex"));
    }

    [SkippableFact]
    public void Knn_scores_tuberculosis_against_normal_on_real_tb_images()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real-cxr-sample is not beside this clone");
        var data = ProbeData.FromCsv(Csv, size: 64);
        var enc = new RandomEncoder(SegmentationProbeTests.TinyVit);
        // TB vs normal among the Shenzhen/Montgomery rows: train on train + validation, test on test.
        var rows = new List<(float[] Feature, bool Tb, bool Test)>();
        foreach (var (name, split) in data.Parts)
        {
            var f = EncodedFeatures.Extract(enc, split.Images);
            for (int i = 0; i < split.Count; i++)
            {
                var src = split.SourceLabels[i];
                bool tb = src.Contains("tuberculosis"), normal = src.Contains("normal") && split.Ids[i].Contains("CXR", StringComparison.Ordinal);
                if (tb || normal) rows.Add((f.Cls[i].data<float>().ToArray(), tb, name == "test"));
            }
        }
        var train = rows.Where(r => !r.Test).ToList();
        var test = rows.Where(r => r.Test).ToList();
        output.WriteLine($"TB rows: {train.Count} train ({train.Count(r => r.Tb)} TB), {test.Count} test ({test.Count(r => r.Tb)} TB)");
        Skip.If(test.Select(r => r.Tb).Distinct().Count() < 2 || train.Select(r => r.Tb).Distinct().Count() < 2, "this split leaves one class out of train or test");
        static (TorchSharp.torch.Tensor, float[,]) M(List<(float[] Feature, bool Tb, bool Test)> rs)
        {
            var y = new float[rs.Count, 1];
            for (int i = 0; i < rs.Count; i++) y[i, 0] = rs[i].Tb ? 1 : 0;
            return (TorchSharp.torch.stack(rs.Select(r => TorchSharp.torch.tensor(r.Feature)).ToArray()), y);
        }
        var (xtr, ytr) = M(train); var (xte, yte) = M(test);
        var knn = KnnProbe.Evaluate(xtr, ytr, xte, yte, ["tuberculosis"], k: 5);
        output.WriteLine($"k-NN TB vs normal AUC (random encoder, k=5): {knn.MacroAuc:0.###}");
        Assert.InRange(knn.MacroAuc, 0, 1);
    }
}
