using RoentGen.Data;
using RoentGen.Evaluation.Probes;

namespace RoentGen.Tests.Evaluation.Probes;

public class ReportProbeTests
{
    [Fact]
    public void Label_f1_matches_hand_counts()
    {
        CxrLabels L(params Observation[] o) => CxrLabels.FromPositives(o);
        var truth = new[] { L(Observation.Edema), L(Observation.Edema, Observation.Cardiomegaly), L(Observation.Cardiomegaly), L() };
        var pred = new[] { L(Observation.Edema), L(Observation.Cardiomegaly), L(Observation.Cardiomegaly, Observation.Pneumothorax), L(Observation.Edema) };
        var (per, macro) = ReportProbe.LabelF1(truth, pred);
        double F(string n) => per.Single(p => p.Observation == n).F1;
        // Edema: TP 1, FN 1, FP 1 -> 2/4. Cardiomegaly: TP 2 -> 1. Pneumothorax: FP 1 -> 0. Others: undefined.
        Assert.Equal(0.5, F(Observation.Edema.Name()), 9);
        Assert.Equal(1.0, F(Observation.Cardiomegaly.Name()), 9);
        Assert.Equal(0.0, F(Observation.Pneumothorax.Name()), 9);
        Assert.True(double.IsNaN(F(Observation.Fracture.Name())));
        Assert.Equal(0.5, macro, 9);
        Assert.Equal(2, per.Single(p => p.Observation == Observation.Edema.Name()).TruthPositives);
        Assert.Throws<ArgumentException>(() => ReportProbe.LabelF1(truth, pred.Take(2).ToList()));
    }

    [Fact]
    public void Report_probe_trains_and_decodes_end_to_end_on_tiny_phantoms()
    {
        var data = ProbeData.FromPhantoms(30, size: 64, seed: 5);
        var enc = new RandomEncoder(SegmentationProbeTests.TinyVit);
        var tr = EncodedFeatures.Extract(enc, data.Train.Images);
        var te = EncodedFeatures.Extract(enc, data.Test.Images);
        var opts = ReportProbeOptions.Quick with { Steps = 60 };
        var r = ReportProbe.Train(tr, data.Train.Reports, te, data.Test.Reports, opts);
        Assert.Equal(14, r.PerFinding.Count);
        Assert.True(double.IsFinite(r.FinalLoss) && r.FinalLoss < Math.Log(opts.VocabSize), $"loss {r.FinalLoss} should fall below uniform {Math.Log(opts.VocabSize)}");
        Assert.NotEmpty(r.Examples);
        // A trained decoder writes report-like text (the phantom reports' section headers) rather than nothing.
        Assert.Contains(r.Examples, e => e.Generated.Contains("findings", StringComparison.OrdinalIgnoreCase) || e.Generated.Length > 10);
        Assert.True(double.IsFinite(r.MacroF1) || r.PerFinding.All(f => double.IsNaN(f.F1)));
    }
}
