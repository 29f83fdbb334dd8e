using RoentGen.Data;
using RoentGen.Data.Reports;
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
        // The examples are the first test reports with what the decoder wrote for them.
        var testReports = data.Test.Reports.Where(t => !string.IsNullOrWhiteSpace(t)).Select(t => t!).ToList();
        Assert.Equal(testReports.Take(3), r.Examples.Select(e => e.Reference));
        // A trained decoder writes words of the training reports (a broken decoder or tokenizer writes nothing or
        // BPE fragments that are not words of the corpus).
        var vocabulary = data.Train.Reports.Where(t => t is not null).SelectMany(t => Words(t!)).ToHashSet();
        foreach (var (_, generated) in r.Examples)
        {
            var words = Words(generated);
            Assert.True(words.Count >= 3, $"generated '{generated}' has fewer than 3 words");
            double known = words.Count(vocabulary.Contains) / (double)words.Count;
            Assert.True(known >= 0.8, $"only {known:P0} of the words of '{generated}' occur in the training reports");
        }
        // Reference positives per finding are the labeler's on the test reports, counted here independently; each F1
        // is 2TP / (truth + predicted positives) with a whole TP no larger than either; the macro F1 is their mean.
        var labeler = new ReportLabeler();
        var truth = testReports.Select(labeler.Label).ToList();
        foreach (var o in Observations.All)
        {
            var f = r.PerFinding.Single(p => p.Observation == o.Name());
            Assert.Equal(truth.Count(t => t.Has(o)), f.TruthPositives);
            if (f.TruthPositives + f.PredictedPositives == 0) { Assert.True(double.IsNaN(f.F1), $"{f.Observation}: F1 {f.F1} without positives"); continue; }
            double tp = f.F1 * (f.TruthPositives + f.PredictedPositives) / 2;
            Assert.True(Math.Abs(tp - Math.Round(tp)) < 1e-6 && Math.Round(tp) <= Math.Min(f.TruthPositives, f.PredictedPositives), $"{f.Observation}: F1 {f.F1} is not 2TP/(T+P) for a whole TP");
        }
        Assert.Contains(r.PerFinding, f => f.TruthPositives > 0);
        var finite = r.PerFinding.Select(f => f.F1).Where(double.IsFinite).ToList();
        Assert.Equal(finite.Average(), r.MacroF1, 9);
    }

    private static List<string> Words(string text) =>
        System.Text.RegularExpressions.Regex.Matches(text.ToLowerInvariant(), "[a-z]+").Select(m => m.Value).ToList();
}
