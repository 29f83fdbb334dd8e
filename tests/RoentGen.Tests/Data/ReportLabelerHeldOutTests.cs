using RoentGen.Data;
using RoentGen.Data.Reports;
using Xunit.Abstractions;

namespace RoentGen.Tests.Data;

/// <summary>
/// Issue #16, the report labeler on unseen real reports: the fixed dev / held-out split of the IU sample, the agreement on
/// the held-out half (reports whose text was not read while the rules were written), and the negation and uncertainty
/// patterns on sentences written here (none taken from the sample).
/// </summary>
public class ReportLabelerHeldOutTests(ITestOutputHelper output)
{
    private static readonly ReportLabeler Labeler = new();

    [Fact]
    public void The_split_is_fixed_by_uid()
    {
        // uid parity: odd is held out
        Assert.All(new long[] { 1, 3, 57, 91, 139 }, u => Assert.True(IuReportSplit.IsHeldOut(u, IuSplitRule.UidParity)));
        Assert.All(new long[] { 2, 8, 16, 104, 3692 }, u => Assert.False(IuReportSplit.IsHeldOut(u, IuSplitRule.UidParity)));
        // the seeded hash, pinned: a change of the rule would silently move reports between halves
        long[] seededHeldOut = [2, 3, 7, 9, 10, 11, 13, 15, 17, 19];
        for (long u = 1; u <= 20; u++)
            Assert.True(seededHeldOut.Contains(u) == IuReportSplit.IsHeldOut(u, IuSplitRule.SeededHalf), $"uid {u}");
        foreach (var rule in new[] { IuSplitRule.UidParity, IuSplitRule.SeededHalf })
            for (long u = 0; u < 50; u++)
            {
                Assert.True(IuReportSplit.InHalf(u, IuHalf.All, rule));
                Assert.NotEqual(IuReportSplit.InHalf(u, IuHalf.Dev, rule), IuReportSplit.InHalf(u, IuHalf.HeldOut, rule));
            }
    }

    [Fact]
    public void Select_partitions_a_table_and_names_a_bad_uid()
    {
        var table = Csv.Parse("uid,Problems,findings,impression\n1,normal,a,b\n2,normal,c,d\n3,normal,e,f\n", "t.csv");
        Assert.Equal(["1", "3"], IuReportSplit.Select(table, IuHalf.HeldOut).Select(r => r["uid"]));
        Assert.Equal(["2"], IuReportSplit.Select(table, IuHalf.Dev).Select(r => r["uid"]));
        Assert.Equal(3, IuReportSplit.Select(table, IuHalf.All).Count);
        var bad = Csv.Parse("uid,Problems,findings,impression\nx7,normal,a,b\n", "bad.csv");
        var e = Assert.Throws<InvalidDataException>(() => IuReportSplit.Select(bad, IuHalf.Dev));
        Assert.Contains("bad.csv", e.Message);
        Assert.Contains("x7", e.Message);
    }

    [Fact]
    public void MacroF1_leaves_out_a_finding_with_no_positive_on_either_side()
    {
        AgreementRow[] rows = [new("A", 1, 0, 0, 9), new("B", 1, 1, 0, 8), new("C", 0, 0, 0, 10)];
        Assert.False(rows[2].IsDefined);
        Assert.Equal((1.0 + 2.0 / 3) / 2, LabelerAgreement.MacroF1(rows), 12);
        Assert.Contains("left out", LabelerAgreement.FormatTable(rows));
    }

    // One sentence per cue, written for this test; the expected label is what CheXpert's rules give.
    [Theory]
    // pre-mention negation
    [InlineData("No pneumothorax.", Observation.Pneumothorax, Mention.Negative)]
    [InlineData("Lungs without consolidation.", Observation.Consolidation, Mention.Negative)]
    [InlineData("The lungs are free of edema.", Observation.Edema, Mention.Negative)]
    [InlineData("Negative for pneumonia.", Observation.Pneumonia, Mention.Negative)]
    [InlineData("There is absence of pleural effusion.", Observation.PleuralEffusion, Mention.Negative)]
    [InlineData("Neither pneumothorax nor effusion.", Observation.Pneumothorax, Mention.Negative)]
    [InlineData("Neither pneumothorax nor effusion.", Observation.PleuralEffusion, Mention.Negative)]
    [InlineData("Interval resolution of the right effusion.", Observation.PleuralEffusion, Mention.Negative)]
    // post-mention negation
    [InlineData("A pneumothorax is not seen.", Observation.Pneumothorax, Mention.Negative)]
    [InlineData("The left basilar atelectasis has cleared.", Observation.Atelectasis, Mention.Negative)]
    [InlineData("Right lower lobe consolidation has resolved.", Observation.Consolidation, Mention.Negative)]
    [InlineData("Pneumonia has been ruled out.", Observation.Pneumonia, Mention.Negative)]
    // pre-mention uncertainty
    [InlineData("Possible right middle lobe pneumonia.", Observation.Pneumonia, Mention.Uncertain)]
    [InlineData("Streaky opacity may be atelectasis.", Observation.Atelectasis, Mention.Uncertain)]
    [InlineData("Appearance suggestive of interstitial edema.", Observation.Edema, Mention.Uncertain)]
    [InlineData("Cannot exclude a tiny apical pneumothorax.", Observation.Pneumothorax, Mention.Uncertain)]
    [InlineData("Rule out pneumonia.", Observation.Pneumonia, Mention.Uncertain)]
    [InlineData("Borderline cardiomegaly.", Observation.Cardiomegaly, Mention.Uncertain)]
    [InlineData("Findings are concerning for a lung mass.", Observation.LungLesion, Mention.Uncertain)]
    // post-mention uncertainty and double negatives
    [InlineData("A small left effusion is suspected.", Observation.PleuralEffusion, Mention.Uncertain)]
    [InlineData("Early edema cannot be excluded.", Observation.Edema, Mention.Uncertain)]
    [InlineData("Atelectasis versus pneumonia in the lingula.", Observation.Pneumonia, Mention.Uncertain)]
    // scope ends at a clause break
    [InlineData("No effusion, but a small right pneumothorax is present.", Observation.Pneumothorax, Mention.Positive)]
    // pseudo-negation does not negate
    [InlineData("No change in the moderate left pleural effusion.", Observation.PleuralEffusion, Mention.Positive)]
    // synonyms and abbreviations
    [InlineData("Small right PTX.", Observation.Pneumothorax, Mention.Positive)]
    [InlineData("Findings of CHF.", Observation.Edema, Mention.Positive)]
    [InlineData("Cephalization of the pulmonary vessels.", Observation.Edema, Mention.Positive)]
    [InlineData("The cardiac silhouette is enlarged.", Observation.Cardiomegaly, Mention.Positive)]
    [InlineData("Enlarged heart.", Observation.Cardiomegaly, Mention.Positive)]
    [InlineData("Left lower lobe collapse.", Observation.Atelectasis, Mention.Positive)]
    [InlineData("Patchy infiltrate in the right base.", Observation.LungOpacity, Mention.Positive)]
    [InlineData("Bilateral airspace disease.", Observation.LungOpacity, Mention.Positive)]
    [InlineData("Blunting of the right costophrenic angle.", Observation.PleuralEffusion, Mention.Positive)]
    [InlineData("A calcified nodule in the left apex, an old granuloma.", Observation.LungLesion, Mention.NotMentioned)]
    [InlineData("The heart size is at the upper limit of normal.", Observation.Cardiomegaly, Mention.Negative)]
    public void Negation_and_uncertainty_cues(string sentence, Observation observation, Mention expected)
    {
        var labels = Labeler.Label(sentence);
        Assert.True(labels[observation] == expected, $"'{sentence}': {observation.Name()} is {labels[observation]}, expected {expected}");
    }

    // The No Finding rule: a finding outside the 14 observations withholds No Finding when present or hedged, not when negated.
    [Theory]
    [InlineData("The lungs are clear. Calcified granuloma in the right upper lobe.", Mention.NotMentioned)]
    [InlineData("Heart size normal. Hyperinflated lungs consistent with COPD.", Mention.NotMentioned)]
    [InlineData("No acute process. Mild dextroscoliosis of the thoracic spine.", Mention.NotMentioned)]
    [InlineData("Lungs are clear. Possible old healed granulomatous disease.", Mention.NotMentioned)]
    [InlineData("Tortuous thoracic aorta. Lungs are clear.", Mention.NotMentioned)]
    [InlineData("Lungs are clear. No emphysema or hyperinflation.", Mention.Positive)]
    [InlineData("Normal heart size. Lungs are clear. No acute osseous abnormality.", Mention.Positive)]
    [InlineData("Right PICC tip in the SVC. Lungs are clear.", Mention.Positive)]
    public void No_finding_rule_with_other_findings(string report, Mention expected) =>
        Assert.Equal(expected, Labeler.Label(report)[Observation.NoFinding]);

    /// <summary>
    /// The labeler's agreement with human tags on the HELD-OUT half of the shared IU sample (odd uids): reports whose text was
    /// not read while its rules were rebuilt (only this final score was looked at). Measured when written: macro F1 0.897
    /// (U-Ones) on 133 reports; the floor sits just under it. The second split (seeded hash of the uid) is printed
    /// beside it; half of its held-out half is the development half of the first split, so it is not an unseen figure.
    /// </summary>
    [SkippableFact]
    public void Agrees_with_human_tags_on_held_out_IU_reports()
    {
        Skip.If(TestPaths.RealSample is null, "shared real-data sample not present");
        var table = Csv.ReadFile(Path.Combine(TestPaths.RealSample!, "iu_xray_reports_sample.csv"));
        Assert.Equal(300, table.Rows.Count);
        Assert.Equal(133, IuReportSplit.Select(table, IuHalf.HeldOut).Count);
        Assert.Equal(146, IuReportSplit.Select(table, IuHalf.HeldOut, IuSplitRule.SeededHalf).Count);
        foreach (var (rule, half) in new[] { (IuSplitRule.UidParity, IuHalf.Dev), (IuSplitRule.UidParity, IuHalf.HeldOut), (IuSplitRule.SeededHalf, IuHalf.Dev), (IuSplitRule.SeededHalf, IuHalf.HeldOut) })
        {
            output.WriteLine($"{rule} {half}:");
            output.WriteLine(LabelerAgreement.FormatTable(LabelerAgreement.EvaluateIu(table, Labeler, half, rule)));
        }
        var neverRead = table.Rows.Where(r => IuReportSplit.IsHeldOut(IuReportSplit.Uid(r), IuSplitRule.UidParity)
                                          && IuReportSplit.IsHeldOut(IuReportSplit.Uid(r), IuSplitRule.SeededHalf)).ToArray();
        output.WriteLine($"held out by both rules ({neverRead.Length} reports):");
        output.WriteLine(LabelerAgreement.FormatTable(LabelerAgreement.EvaluateIu(neverRead, Labeler)));

        var heldOut = LabelerAgreement.EvaluateIu(table, Labeler, IuHalf.HeldOut);
        var f1 = heldOut.ToDictionary(r => r.Finding, r => r.F1);
        Assert.True(LabelerAgreement.MacroF1(heldOut) >= 0.88, $"held-out macro F1 {LabelerAgreement.MacroF1(heldOut):F3}");
        Assert.True(f1["No Finding"] >= 0.88, $"held-out No Finding F1 {f1["No Finding"]:F3}");
        Assert.True(f1["Cardiomegaly"] >= 0.9, $"held-out Cardiomegaly F1 {f1["Cardiomegaly"]:F3}");
        Assert.True(f1["Atelectasis"] >= 0.9, $"held-out Atelectasis F1 {f1["Atelectasis"]:F3}");
        Assert.True(f1["Pleural Effusion"] >= 0.9, $"held-out Pleural Effusion F1 {f1["Pleural Effusion"]:F3}");
        // the second split: above the floor too, though lower (few positives per finding: Edema has 2, Pneumothorax none)
        Assert.True(LabelerAgreement.MacroF1(LabelerAgreement.EvaluateIu(table, Labeler, IuHalf.HeldOut, IuSplitRule.SeededHalf)) >= 0.78);
    }
}
