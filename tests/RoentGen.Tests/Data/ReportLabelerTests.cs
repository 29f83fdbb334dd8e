using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using Xunit.Abstractions;

namespace RoentGen.Tests.Data;

public class ReportLabelerTests(ITestOutputHelper output)
{
    private static readonly ReportLabeler Labeler = new();

    private static Mention L(string text, Observation o) => Labeler.Label(text)[o];

    [Fact]
    public void RecoversGeneratorLabels_Exactly_On5000Reports()
    {
        var g = new PhantomGenerator(new PhantomOptions { Seed = 2024 });
        int hedged = 0, negatives = 0;
        for (int i = 0; i < 5000; i++)
        {
            var (_, report) = g.GenerateReport(i);
            var got = Labeler.Label(report.Text);
            Assert.True(got.Equals(report.Labels), $"report {i}:\n{report.Text}\nwriter:  {report.Labels}\nlabeler: {got}");
            hedged += Observations.All.Count(o => report.Labels[o] == Mention.Uncertain);
            negatives += Observations.All.Count(o => report.Labels[o] == Mention.Negative);
        }
        // the check is only meaningful if all three kinds of mention occur often
        Assert.True(hedged > 100, $"only {hedged} uncertain labels");
        Assert.True(negatives > 5000, $"only {negatives} negative labels");
    }

    [Theory]
    [InlineData("No pneumothorax or pleural effusion.", Observation.Pneumothorax, Mention.Negative)]
    [InlineData("No pneumothorax or pleural effusion.", Observation.PleuralEffusion, Mention.Negative)]
    [InlineData("Lungs are without focal consolidation.", Observation.Consolidation, Mention.Negative)]
    [InlineData("Negative for pneumothorax.", Observation.Pneumothorax, Mention.Negative)]
    [InlineData("The lungs are free of edema.", Observation.Edema, Mention.Negative)]
    [InlineData("No evidence of pneumonia.", Observation.Pneumonia, Mention.Negative)]
    [InlineData("Previously seen right effusion has resolved.", Observation.PleuralEffusion, Mention.Negative)]
    [InlineData("Possible small left effusion.", Observation.PleuralEffusion, Mention.Uncertain)]
    [InlineData("Opacity may represent atelectasis.", Observation.Atelectasis, Mention.Uncertain)]
    [InlineData("Opacity may represent atelectasis.", Observation.LungOpacity, Mention.Positive)]
    [InlineData("Pneumonia cannot be excluded.", Observation.Pneumonia, Mention.Uncertain)]
    [InlineData("Findings suggestive of pulmonary edema.", Observation.Edema, Mention.Uncertain)]
    [InlineData("Atelectasis versus scarring at the left base.", Observation.Atelectasis, Mention.Uncertain)]
    [InlineData("No focal consolidation but there is a small right pleural effusion.", Observation.PleuralEffusion, Mention.Positive)]
    [InlineData("No focal consolidation but there is a small right pleural effusion.", Observation.Consolidation, Mention.Negative)]
    [InlineData("Heart size normal.", Observation.Cardiomegaly, Mention.Negative)]
    [InlineData("The heart is not enlarged.", Observation.Cardiomegaly, Mention.Negative)]
    [InlineData("The heart is mildly enlarged.", Observation.Cardiomegaly, Mention.Positive)]
    [InlineData("Heart size is at the upper limits of normal.", Observation.Cardiomegaly, Mention.Negative)]
    [InlineData("Heart size is borderline.", Observation.Cardiomegaly, Mention.Uncertain)]
    [InlineData("The heart, pulmonary XXXX and mediastinum are within normal limits.", Observation.EnlargedCardiomediastinum, Mention.Negative)]
    [InlineData("Blunting of the left costophrenic angle.", Observation.PleuralEffusion, Mention.Positive)]
    [InlineData("The costophrenic angles are sharp.", Observation.PleuralEffusion, Mention.Negative)]
    [InlineData("No pericardial effusion.", Observation.PleuralEffusion, Mention.NotMentioned)]
    [InlineData("Right IJ central venous catheter tip in the SVC.", Observation.SupportDevices, Mention.Positive)]
    [InlineData("Endotracheal tube terminates 4 cm above the carina.", Observation.SupportDevices, Mention.Positive)]
    [InlineData("Old healed left rib fractures.", Observation.Fracture, Mention.Positive)]
    [InlineData("No displaced rib fractures identified.", Observation.Fracture, Mention.Negative)]
    [InlineData("A 1.2 cm nodule in the right upper lobe.", Observation.LungLesion, Mention.Positive)]
    [InlineData("No interval change in the small left pleural effusion.", Observation.PleuralEffusion, Mention.Positive)]
    [InlineData("Mild pleural thickening at the apices.", Observation.PleuralOther, Mention.Positive)]
    public void Rules(string text, Observation obs, Mention expected) => Assert.Equal(expected, L(text, obs));

    [Fact]
    public void NoFinding_FollowsTheCheXpertRule()
    {
        Assert.Equal(Mention.Positive, L("Heart size normal. Lungs are clear. No focal airspace disease. XXXX are intact.", Observation.NoFinding));
        // a finding outside the 14 observations (CheXpert's "No Finding" mention list: degenerative change, granuloma, emphysema,
        // ...) withholds No Finding when present, not when negated
        Assert.Equal(Mention.NotMentioned, L("The lungs are clear. Degenerative changes of the spine.", Observation.NoFinding));
        Assert.Equal(Mention.Positive, L("The lungs are clear. No emphysema.", Observation.NoFinding));
        // support devices do not cancel No Finding
        Assert.Equal(Mention.Positive, L("Left chest wall pacemaker. No acute cardiopulmonary process.", Observation.NoFinding));
        // an uncertain finding does
        Assert.Equal(Mention.NotMentioned, L("Possible small left pleural effusion.", Observation.NoFinding));
        Assert.Equal(Mention.NotMentioned, L("Mild cardiomegaly.", Observation.NoFinding));
    }

    [Fact]
    public void SentenceSplitting_KeepsDecimalsAndDropsListNumbers()
    {
        var s = ReportLabeler.SplitSentences(ReportLabeler.Normalize("1. Tip 3.5 cm above the carina. 2. No effusion;\nclear lungs")).ToArray();
        Assert.Equal(["tip 3.5 cm above the carina", "no effusion", "clear lungs"], s);
        Assert.Contains(Labeler.LabelMentions("No effusion."), m => m.Observation == Observation.PleuralEffusion && m.Reason.Contains("no"));
    }

    /// <summary>
    /// Agreement with the human MeSH tags of the 300 real IU reports in the shared sample. The floors were set
    /// a little under what was measured ON THIS SAME SAMPLE while writing the rules (so this is a tuned, not a
    /// held-out, estimate): macro F1 0.856 (uncertain counted positive). The rules were later rebuilt against the development
    /// half only (#16); the held-out figure is <see cref="ReportLabelerHeldOutTests.Agrees_with_human_tags_on_held_out_IU_reports"/>.
    /// </summary>
    [SkippableFact]
    public void AgreesWithHumanTags_OnRealIuReports()
    {
        Skip.If(TestPaths.RealSample is null, "shared real-data sample not present");
        var table = Csv.ReadFile(Path.Combine(TestPaths.RealSample!, "iu_xray_reports_sample.csv"));
        Assert.Equal(300, table.Rows.Count);
        var rows = LabelerAgreement.EvaluateIu(table, Labeler);
        output.WriteLine("uncertain counted as positive (U-Ones):");
        output.WriteLine(LabelerAgreement.FormatTable(rows));
        output.WriteLine("uncertain counted as negative (U-Zeros):");
        output.WriteLine(LabelerAgreement.FormatTable(LabelerAgreement.EvaluateIu(table, Labeler, uncertainAsPositive: false)));
        var f1 = rows.ToDictionary(r => r.Finding, r => r.F1);
        Assert.True(LabelerAgreement.MacroF1(rows) >= 0.82, $"macro F1 {LabelerAgreement.MacroF1(rows):F3}");
        Assert.True(f1["Cardiomegaly"] >= 0.85, $"Cardiomegaly F1 {f1["Cardiomegaly"]:F3}");
        Assert.True(f1["Pleural Effusion"] >= 0.9, $"Pleural Effusion F1 {f1["Pleural Effusion"]:F3}");
        Assert.True(f1["Atelectasis"] >= 0.85, $"Atelectasis F1 {f1["Atelectasis"]:F3}");
        Assert.True(f1["Support Devices"] >= 0.88, $"Support Devices F1 {f1["Support Devices"]:F3}");
        Assert.True(f1["No Finding"] >= 0.62, $"No Finding F1 {f1["No Finding"]:F3}");
        Assert.All(rows, r => Assert.True(r.Accuracy >= 0.65, $"{r.Finding} accuracy {r.Accuracy:F3}"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("\n\t")]
    public void An_empty_report_is_unlabelled_not_no_finding(string text)
    {
        var labels = Labeler.Label(text);
        Assert.All(Observations.All, o => Assert.Equal(Mention.NotMentioned, labels[o]));
        Assert.Equal(Mention.Positive, Labeler.Label("No acute cardiopulmonary process.")[Observation.NoFinding]);
    }
}
