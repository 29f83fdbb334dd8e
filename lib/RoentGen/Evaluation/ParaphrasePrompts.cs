using RoentGen.Data;
using RoentGen.Data.Reports;

namespace RoentGen.Evaluation;

/// <summary>
/// A held-out prompt set for prompt adherence, written by hand apart from <see cref="ReportWriter"/>: the same nine
/// findings as <see cref="PromptAdherence.DefaultPrompts"/>, each said in words the writer's templates do not produce
/// (synonyms, other word order, hedges such as "possible" and "cannot exclude", negations of other findings,
/// abbreviations such as PTX, CHF, CP angle, ETT, NG, RLL, laterality, and the terse style of the Indiana University
/// reports), plus normal studies said the same ways. A generator whose text side learned the findings rather than the
/// writer's templates scores as well here as on the writer-phrased prompts; one that learned the templates falls
/// toward chance. Every prompt's findings are what <see cref="ReportLabeler"/> reads in it (positive or uncertain)
/// among <see cref="PromptAdherence.DefaultFindings"/>, and no prompt's finding-bearing sentence is one the writer can
/// write (both checked by the tests).
/// </summary>
public static class ParaphrasePrompts
{
    /// <summary>The prompts: at least eight per default finding, then the normal studies (which name nothing).</summary>
    public static IReadOnlyList<AdherencePrompt> All { get; } = Build();

    /// <summary>The prompts that name <paramref name="finding"/>.</summary>
    public static IReadOnlyList<AdherencePrompt> For(Observation finding) => All.Where(p => p.Findings.Contains(finding)).ToList();

    /// <summary>The prompts that name nothing (normal studies).</summary>
    public static IReadOnlyList<AdherencePrompt> Normal => All.Where(p => p.Findings.Count == 0).ToList();

    private static IReadOnlyList<AdherencePrompt> Build()
    {
        var byFinding = new (Observation Finding, string[] Prompts)[]
        {
            (Observation.Cardiomegaly,
            [
                "Enlarged heart.",
                "Cardiac enlargement, moderate.",
                "Heart size is increased.",
                "Stable cardiomegaly without pulmonary edema.",
                "Possible mild cardiomegaly.",
                "Cardiomegaly cannot be excluded on this AP view.",
                "Heart is enlarged. Lungs clear. No effusion.",
                "Globular enlargement of the cardiac silhouette.",
                "The heart size is enlarged. The lungs are clear.",
                "Cardiomegaly with clear lungs.",
            ]),
            (Observation.LungLesion,
            [
                "Spiculated mass in the left upper lobe.",
                "1.5 cm nodular opacity in the right lower lobe.",
                "Rounded density in the RUL, concerning for neoplasm.",
                "Right upper lobe nodule, CT recommended.",
                "Cannot exclude a small nodule at the left base.",
                "Large mass projecting over the right hilum.",
                "Solitary pulmonary nodule, left lower lobe.",
                "Lung mass on the right, about 4 cm.",
                "A nodule is seen in the left mid lung. No pneumothorax.",
            ]),
            (Observation.Edema,
            [
                "CHF with pulmonary vascular congestion.",
                "Findings of CHF.",
                "Mild interstitial edema.",
                "Vascular congestion and perihilar haziness, likely early edema.",
                "Kerley B lines with cephalization, consistent with fluid overload.",
                "Worsening pulmonary edema.",
                "Pulmonary oedema, moderate.",
                "Possible mild edema. No focal consolidation.",
                "Congestive heart failure pattern with bilateral hazy opacities.",
            ]),
            (Observation.Consolidation,
            [
                "RLL consolidation.",
                "LLL consolidation, possibly pneumonia.",
                "Consolidation of the right middle lobe.",
                "Focal consolidation in the left upper lobe, cannot exclude pneumonia.",
                "Right basilar consolidation.",
                "Lingular consolidation with air bronchograms.",
                "Dense consolidation involving the right upper lobe. Heart size normal.",
                "Patchy consolidation at the left base; no effusion.",
                "Right lower lobe airspace consolidation.",
            ]),
            (Observation.Atelectasis,
            [
                "Discoid atelectasis at the left base.",
                "Bibasilar atelectatic changes.",
                "Streaky opacity at the right base, likely atelectasis.",
                "Collapse of the left lower lobe.",
                "Mild right basal atelectasis.",
                "Subsegmental atelectasis in the left lung base. No pneumothorax.",
                "Atelectasis, right lower lobe.",
                "Minimal dependent atelectasis bilaterally.",
                "Linear bandlike opacities at both bases consistent with atelectasis.",
            ]),
            (Observation.Pneumothorax,
            [
                "Small PTX on the left.",
                "Right apical PTX.",
                "Large pneumothorax on the right with no mediastinal shift.",
                "Pneumothorax at the left apex, moderate in size.",
                "Cannot exclude a small right apical pneumothorax.",
                "Visible pleural line at the left apex consistent with pneumothorax.",
                "New left-sided pneumothorax. No effusion.",
                "Moderate right PTX, no tension.",
                "Pneumothorax, right, small.",
            ]),
            (Observation.PleuralEffusion,
            [
                "Left pleural effusion, small.",
                "Blunting of the right CP angle, likely small effusion.",
                "Moderate effusion on the left.",
                "Bilateral pleural effusions, left greater than right.",
                "Small amount of pleural fluid in the right hemithorax.",
                "Possible trace left effusion; no pneumothorax.",
                "Layering fluid at the left base consistent with effusion.",
                "Obscured left costophrenic angle suggesting a pleural effusion.",
                "Effusion, right. Heart size normal.",
            ]),
            (Observation.Fracture,
            [
                "Fractured left sixth rib.",
                "Displaced right 7th rib fx.",
                "Possible nondisplaced fracture of a left lower rib.",
                "Right posterior rib fractures, ribs 5 and 6.",
                "Acute left rib fracture. Lungs are clear.",
                "Cortical break in the right 8th rib consistent with fracture.",
                "Fracture of the seventh rib on the left, no pneumothorax.",
                "Healing fracture of the left posterior 5th rib.",
                "Rib fracture on the right.",
            ]),
            (Observation.SupportDevices,
            [
                "ETT 5 cm above the carina.",
                "ETT in good position.",
                "NG tube in the stomach.",
                "Enteric tube tip below the diaphragm.",
                "Right PICC line with tip in the SVC.",
                "Left subclavian central line terminating at the cavoatrial junction.",
                "Dual-lead pacer in place.",
                "Endotracheal tube in satisfactory position, tip at the thoracic inlet.",
                "Cardiac pacemaker, leads in the right heart. Lungs clear.",
            ]),
        };
        var prompts = new List<AdherencePrompt>();
        foreach (var (finding, texts) in byFinding)
            prompts.AddRange(texts.Select(t => new AdherencePrompt(t, [finding])));
        foreach (var normal in new[]
                 {
                     "Lungs clear. Heart normal size. No effusion or PTX.",
                     "Negative chest radiograph.",
                     "No acute disease.",
                     "Unremarkable chest x-ray.",
                     "Normal heart and lungs.",
                     "No evidence of active cardiopulmonary disease.",
                     "Clear lungs without consolidation, effusion, or pneumothorax.",
                     "No CHF, pneumonia, or pneumothorax.",
                     "The heart, mediastinum and lungs are within normal limits.",
                 })
            prompts.Add(new AdherencePrompt(normal, []));
        return prompts;
    }
}
