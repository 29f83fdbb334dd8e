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
        // The split is fixed (seed 0): lung masks fall in both train and test, so the Dice is always scored, and it has
        // to beat predicting "lung" everywhere, which already scores about 0.5 on these images.
        Assert.True(trainMasks > 0 && testMasks > 0, $"lung masks: {trainMasks} train, {testMasks} test");
        double dice = r["segmentation/dice:mask"];
        double allForeground = SegmentationProbeTests.AllForegroundDice(data.Test.Masks["mask"]);
        output.WriteLine($"lung Dice {dice:F3}, all-foreground baseline {allForeground:F3}");
        Assert.True(double.IsFinite(dice) && dice > allForeground + 0.02, $"lung Dice {dice} does not beat the all-foreground mask's {allForeground}");
        // Sex is known for the TB and COVID rows only; counted here, both sexes fall in every split, so the probe must run
        // and score exactly the test rows with a known sex.
        foreach (var (name, split) in data.Parts)
            Assert.True(split.Sex.Count(s => s == "F") > 0 && split.Sex.Count(s => s == "M") > 0, $"{name}: {split.Sex.Count(s => s == "F")} F, {split.Sex.Count(s => s == "M")} M");
        Assert.False(r.NotAvailable.ContainsKey("sex"), r.NotAvailable.GetValueOrDefault("sex"));
        var sex = Assert.Single(r.Sex!.PerLabel);
        Assert.Equal(data.Test.Sex.Count(s => s is "M" or "F"), sex.TestCount);
        Assert.Equal(data.Test.Sex.Count(s => s == "F"), sex.TestPositives);
        Assert.InRange(sex.Auc, 0, 1);
    }
}
