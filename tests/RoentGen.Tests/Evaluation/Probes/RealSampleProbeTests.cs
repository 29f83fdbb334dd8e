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
}
