using RoentGen.Data;
using RoentGen.Data.Reports;

namespace RoentGen.Tests.Data;

/// <summary>
/// Report sentences written by hand for this test, not by <see cref="RoentGen.Data.Phantoms.PhantomGenerator"/>'s report
/// writer, with the label a radiologist reading CheXpert's rules would give: positive, negated, uncertain, with
/// laterality and synonyms. The 5,000-report test shares the writer's phrasing and its No Finding rule with the labeler;
/// these do not.
/// </summary>
public class ReportLabelerHandWrittenTests
{
    private static readonly ReportLabeler Labeler = new();

    [Theory]
    [InlineData("Moderate right pleural effusion.", Observation.PleuralEffusion, Mention.Positive)]
    [InlineData("Left-sided pleural effusion has increased in size.", Observation.PleuralEffusion, Mention.Positive)]
    [InlineData("No pleural effusion or pneumothorax.", Observation.PleuralEffusion, Mention.Negative)]
    [InlineData("No pleural effusion or pneumothorax.", Observation.Pneumothorax, Mention.Negative)]
    [InlineData("Small left apical pneumothorax.", Observation.Pneumothorax, Mention.Positive)]
    [InlineData("Without evidence of pneumothorax.", Observation.Pneumothorax, Mention.Negative)]
    [InlineData("The heart is enlarged.", Observation.Cardiomegaly, Mention.Positive)]
    [InlineData("Heart size is normal.", Observation.Cardiomegaly, Mention.Negative)]
    [InlineData("Mild cardiomegaly is present.", Observation.Cardiomegaly, Mention.Positive)]
    // CheXpert's negation patterns read a size "at (or within) the upper limit of normal" as normal; "borderline" stays uncertain.
    [InlineData("Heart size is at the upper limits of normal.", Observation.Cardiomegaly, Mention.Negative)]
    [InlineData("Borderline cardiomegaly.", Observation.Cardiomegaly, Mention.Uncertain)]
    [InlineData("The heart size is borderline.", Observation.Cardiomegaly, Mention.Uncertain)]
    [InlineData("Widened mediastinum.", Observation.EnlargedCardiomediastinum, Mention.Positive)]
    [InlineData("Bibasilar opacities may represent atelectasis.", Observation.Atelectasis, Mention.Uncertain)]
    [InlineData("Bibasilar opacities may represent atelectasis.", Observation.LungOpacity, Mention.Positive)]
    [InlineData("Mild bibasilar atelectasis.", Observation.Atelectasis, Mention.Positive)]
    [InlineData("Pneumonia cannot be excluded.", Observation.Pneumonia, Mention.Uncertain)]
    [InlineData("Findings are concerning for right lower lobe pneumonia.", Observation.Pneumonia, Mention.Uncertain)]
    [InlineData("Left basilar infiltrate, likely pneumonia.", Observation.LungOpacity, Mention.Positive)]
    [InlineData("Left basilar infiltrate, likely pneumonia.", Observation.Pneumonia, Mention.Uncertain)]
    [InlineData("There is no evidence of consolidation.", Observation.Consolidation, Mention.Negative)]
    [InlineData("Dense consolidation in the left lower lobe.", Observation.Consolidation, Mention.Positive)]
    [InlineData("Mild interstitial pulmonary edema.", Observation.Edema, Mention.Positive)]
    [InlineData("The previously seen edema has resolved.", Observation.Edema, Mention.Negative)]
    [InlineData("A 1 cm nodule in the right upper lobe.", Observation.LungLesion, Mention.Positive)]
    [InlineData("No suspicious pulmonary nodules or masses.", Observation.LungLesion, Mention.Negative)]
    [InlineData("Possible small right pleural effusion.", Observation.PleuralEffusion, Mention.Uncertain)]
    [InlineData("A small effusion is suspected on the left.", Observation.PleuralEffusion, Mention.Uncertain)]
    [InlineData("Healed fracture of the left seventh rib.", Observation.Fracture, Mention.Positive)]
    [InlineData("No acute displaced rib fracture.", Observation.Fracture, Mention.Negative)]
    [InlineData("Endotracheal tube terminates 4 cm above the carina.", Observation.SupportDevices, Mention.Positive)]
    [InlineData("Left-sided pacemaker with leads in the right atrium and ventricle.", Observation.SupportDevices, Mention.Positive)]
    [InlineData("Patchy airspace opacity in the right lung base.", Observation.LungOpacity, Mention.Positive)]
    [InlineData("No focal airspace disease.", Observation.LungOpacity, Mention.Negative)]
    [InlineData("Emphysema with no acute infiltrate.", Observation.LungOpacity, Mention.Negative)]
    [InlineData("Stable small pericardial effusion.", Observation.PleuralEffusion, Mention.NotMentioned)]
    [InlineData("Pleural thickening at the right apex.", Observation.PleuralOther, Mention.Positive)]
    [InlineData("Free of focal consolidation; however, there is a new left effusion.", Observation.Consolidation, Mention.Negative)]
    [InlineData("Free of focal consolidation; however, there is a new left effusion.", Observation.PleuralEffusion, Mention.Positive)]
    [InlineData("Lungs are clear. No acute cardiopulmonary process.", Observation.NoFinding, Mention.Positive)]
    [InlineData("No pneumothorax. Sternotomy wires are intact.", Observation.NoFinding, Mention.Positive)]
    [InlineData("Mild bibasilar atelectasis.", Observation.NoFinding, Mention.NotMentioned)]
    [InlineData("Possible small right pleural effusion.", Observation.NoFinding, Mention.NotMentioned)]
    [InlineData("Left PICC line tip in the superior vena cava. Lungs are clear.", Observation.NoFinding, Mention.Positive)]
    public void Hand_written_sentence_gets_the_expected_label(string report, Observation observation, Mention expected)
    {
        var labels = Labeler.Label(report);
        Assert.True(labels[observation] == expected, $"'{report}': {observation.Name()} is {labels[observation]}, expected {expected} (all: {labels})");
    }
}
