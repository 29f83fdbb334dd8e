using System.Globalization;
using System.Text.RegularExpressions;
using RoentGen.Data.Phantoms;

namespace RoentGen.Data.Reports;

/// <summary>A written report and the CheXpert labels of what it says.</summary>
/// <param name="Findings">The FINDINGS section.</param>
/// <param name="Impression">The IMPRESSION section.</param>
/// <param name="Labels">What each sentence asserts, aggregated the CheXpert way (positive over uncertain over negative), with the No Finding rule.</param>
public sealed record WrittenReport(string Findings, string Impression, CxrLabels Labels)
{
    /// <summary>"FINDINGS: ...\nIMPRESSION: ...".</summary>
    public string Text => $"FINDINGS: {Findings}\nIMPRESSION: {Impression}";
}

/// <summary>How much the wording of <see cref="ReportWriter"/>'s reports varies beyond its templates.</summary>
public enum ReportStyle
{
    /// <summary>The templates only (the reports every earlier run trained on; the default).</summary>
    Templates,
    /// <summary>
    /// The templates' choices, then restyled with a wording stream of their own: synonyms ("effusion", "cardiac
    /// enlargement", "edema"), abbreviations (PTX, ETT, CP angle), other hedge words ("questionable", "probable",
    /// "suspected", "cannot be ruled out"), the terse style of the Indiana University reports ("Heart size normal.",
    /// "Lungs clear.", no leading "There is a" or "The"), other normal impressions, and the findings sentences in a
    /// shuffled order. What each sentence asserts is unchanged, so the labels are the same as with
    /// <see cref="Templates"/>. Lobe abbreviations (RLL), CHF, NG and "fx" are left to
    /// <see cref="RoentGen.Evaluation.ParaphrasePrompts"/> as words the text encoder never sees in training.
    /// </summary>
    Varied,
}

/// <summary>
/// Writes radiology-style reports (FINDINGS, IMPRESSION) for phantom findings: several templates and
/// synonyms per finding, varied sentence order, explicit negatives, hedged mentions of subtle findings,
/// severity, laterality and device positions. Every template declares what it asserts, so the labels come
/// with the text. Reports never state sex or age. Deterministic from the seed.
/// </summary>
public static class ReportWriter
{
    private sealed record Sentence(string Text, (Observation Obs, Mention Mention)[] Says);

    private static Sentence S(string text, params (Observation, Mention)[] says) => new(text, says);
    private static (Observation, Mention) Pos(Observation o) => (o, Mention.Positive);
    private static (Observation, Mention) Neg(Observation o) => (o, Mention.Negative);
    private static (Observation, Mention) Unc(Observation o) => (o, Mention.Uncertain);
    private static string Cap(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    /// <summary>Writes the report of one case.</summary>
    /// <param name="f">What the case shows.</param>
    /// <param name="seed">Seed of the wording choices.</param>
    /// <param name="hedgeProbability">Probability that a subtle finding (small effusion, nodule of 12 mm or less, plate-like atelectasis) is hedged (labelled uncertain).</param>
    /// <param name="style">How far the wording varies beyond the templates (<see cref="ReportStyle.Templates"/>: the
    /// templates' text exactly as before; <see cref="ReportStyle.Varied"/>: restyled, same labels).</param>
    public static WrittenReport Write(PhantomFindings f, ulong seed, double hedgeProbability = 0.25, ReportStyle style = ReportStyle.Templates)
    {
        ArgumentNullException.ThrowIfNull(f);
        var r = new PhantomRandom((long)seed, 0, 3);
        var heart = new List<Sentence>();
        var lungs = new List<Sentence>();
        var pleura = new List<Sentence>();
        var bones = new List<Sentence>();
        var devices = new List<Sentence>();
        var impression = new List<Sentence>();

        // ---------- devices ----------
        if (f.Devices is { } dv)
        {
            if (dv.EttCmAboveCarina is double cm)
            {
                string x = cm.ToString("0.#", CultureInfo.InvariantCulture);
                devices.Add(S(r.Pick([
                    $"Endotracheal tube terminates {x} cm above the carina.",
                    $"The endotracheal tube tip is {x} cm above the carina.",
                    $"Endotracheal tube in place with its tip {x} cm above the carina.",
                    $"ET tube tip projects {x} cm above the carina."]), Pos(Observation.SupportDevices)));
            }
            if (dv.CvcTip is string tip)
            {
                string access = $"{dv.CvcSide} {dv.CvcAccess}";
                devices.Add(S(r.Pick([
                    $"{Cap(access)} central venous catheter terminates in the {tip}.",
                    $"{Cap(access)} central line with tip in the {tip}.",
                    $"A {access} catheter is present with its tip at the {tip}.",
                    $"The {access} central venous catheter tip projects over the {tip}."]), Pos(Observation.SupportDevices)));
            }
            if (dv.PacemakerLeads is int leads)
            {
                devices.Add(S(leads == 1
                    ? r.Pick(["Left chest wall pacemaker with a single lead in the right ventricle.",
                              "Left-sided pacemaker with lead tip over the right ventricle.",
                              "A single-lead pacemaker is present, lead terminating in the right ventricle."])
                    : r.Pick(["Dual-chamber pacemaker with leads in the right atrium and right ventricle.",
                              "Left chest wall pacemaker with two leads terminating in the right atrium and right ventricle.",
                              "Left-sided dual-lead pacemaker, leads in expected position."]), Pos(Observation.SupportDevices)));
            }
        }

        // ---------- heart and mediastinum ----------
        if (f.Cardiomegaly is string sev)
        {
            string adv = sev switch { "mild" => "mildly", "moderate" => "moderately", _ => "markedly" };
            string adj = sev == "severe" ? r.Pick(["marked", "severe"]) : sev;
            heart.Add(S(r.Pick([$"The heart is {adv} enlarged.", $"{Cap(adj)} cardiomegaly.", $"The cardiac silhouette is {adv} enlarged.", $"There is {adj} cardiomegaly."]),
                Pos(Observation.Cardiomegaly)));
            if (f.EnlargedCardiomediastinum)
                heart.Add(S(r.Pick(["The mediastinum is widened.", "The cardiomediastinal silhouette is enlarged.", "Widened mediastinal contours.", "The superior mediastinum is prominent."]),
                    Pos(Observation.EnlargedCardiomediastinum)));
            else if (r.Chance(0.4))
                heart.Add(S(r.Pick(["Mediastinal contours are within normal limits.", "The mediastinal contours are normal."]), Neg(Observation.EnlargedCardiomediastinum)));
        }
        else if (f.EnlargedCardiomediastinum)
        {
            heart.Add(S("The mediastinum is widened.", Pos(Observation.EnlargedCardiomediastinum)));
        }
        else
        {
            double k = r.Next();
            if (k < 0.5)
                heart.Add(S(r.Pick(["Heart size is normal.", "The heart is normal in size.", "Normal heart size.", "The cardiac silhouette is within normal limits."]), Neg(Observation.Cardiomegaly)));
            else if (k < 0.75)
                heart.Add(S(r.Pick(["Heart size and mediastinal contours are within normal limits.", "The heart and mediastinum are within normal limits."]),
                    Neg(Observation.Cardiomegaly), Neg(Observation.EnlargedCardiomediastinum)));
            else if (k < 0.9)
                heart.Add(S(r.Pick(["Normal cardiomediastinal silhouette.", "The cardiomediastinal silhouette is within normal limits."]), Neg(Observation.EnlargedCardiomediastinum)));
        }

        // ---------- lungs ----------
        if (f.Consolidation is { } co)
        {
            string lobe = co.Lobe;
            string lobeAdj = lobe == "lingula" ? "lingular" : lobe;
            lungs.Add(S(r.Pick([
                $"{r.Pick(["Patchy", "Focal", "Dense"])} airspace opacity in the {lobe}, consistent with consolidation.",
                $"There is consolidation in the {lobe} with surrounding airspace opacity.",
                $"{Cap(lobeAdj)} consolidation with associated airspace opacity and air bronchograms.",
                $"Airspace opacity is present in the {lobe}, compatible with consolidation."]),
                Pos(Observation.LungOpacity), Pos(Observation.Consolidation)));
            if (co.Pneumonia == "yes")
            {
                if (r.Chance(0.5)) lungs.Add(S(r.Pick(["Findings are consistent with pneumonia.", "This is compatible with pneumonia."]), Pos(Observation.Pneumonia)));
                impression.Add(S(r.Pick([$"{Cap(lobeAdj)} pneumonia.", $"{Cap(lobeAdj)} consolidation consistent with pneumonia."]),
                    Pos(Observation.Pneumonia), Pos(Observation.Consolidation)));
            }
            else if (co.Pneumonia == "possible")
            {
                impression.Add(S(r.Pick([$"{Cap(lobeAdj)} consolidation, concerning for pneumonia.",
                                         $"{Cap(lobeAdj)} consolidation; this may represent pneumonia in the appropriate clinical setting."]),
                    Pos(Observation.Consolidation), Unc(Observation.Pneumonia)));
            }
            else impression.Add(S($"{Cap(lobeAdj)} consolidation.", Pos(Observation.Consolidation)));
        }
        if (f.Edema is { } ed)
        {
            string sv = ed.Severity;
            lungs.Add(S(r.Pick([
                $"{Cap(sv)} pulmonary edema with bilateral perihilar haziness.",
                $"Bilateral perihilar opacities consistent with {sv} pulmonary edema.",
                $"There is {sv} interstitial edema with perihilar airspace opacities.",
                $"Pulmonary vascular congestion with {sv} interstitial edema and hazy perihilar opacity."]),
                Pos(Observation.Edema), Pos(Observation.LungOpacity)));
            impression.Add(S(r.Pick([$"{Cap(sv)} pulmonary edema.", $"Findings consistent with {sv} pulmonary edema."]), Pos(Observation.Edema)));
        }
        if (f.Lesion is { } le)
        {
            string loc = le.Location;
            if (le.IsMass)
            {
                string cm = (le.SizeMm / 10.0).ToString("0.0", CultureInfo.InvariantCulture);
                lungs.Add(S(r.Pick([$"There is a {cm} cm mass in the {loc}.", $"{Cap(loc)} mass measuring {cm} cm.", $"A {cm} cm mass projects over the {loc}."]), Pos(Observation.LungLesion)));
                impression.Add(S(r.Pick([$"{Cap(loc)} mass; CT is recommended for further evaluation.", $"{cm} cm {loc} mass."]), Pos(Observation.LungLesion)));
            }
            else if (le.SizeMm <= 12 && r.Chance(hedgeProbability))
            {
                lungs.Add(S(r.Pick([$"Possible {le.SizeMm} mm nodule in the {loc}.", $"Questionable {le.SizeMm} mm nodule in the {loc}.",
                                    $"A {le.SizeMm} mm nodule in the {loc} cannot be excluded."]), Unc(Observation.LungLesion)));
                impression.Add(S($"Possible {loc} nodule; CT could be considered.", Unc(Observation.LungLesion)));
            }
            else
            {
                lungs.Add(S(r.Pick([$"There is a {le.SizeMm} mm nodule in the {loc}.", $"{le.SizeMm} mm pulmonary nodule in the {loc}.",
                                    $"A {le.SizeMm} mm rounded nodule projects over the {loc}."]), Pos(Observation.LungLesion)));
                impression.Add(S(r.Pick([$"{le.SizeMm} mm {loc} nodule; CT is recommended for further evaluation.", $"{Cap(loc)} pulmonary nodule."]), Pos(Observation.LungLesion)));
            }
        }
        if (f.Atelectasis is { } at)
        {
            if (at.Kind == "plate")
            {
                string where = at.Location switch { "right base" => "at the right lung base", "left base" => "at the left lung base", _ => "at both lung bases" };
                string adj = at.Location switch { "right base" => "right basilar", "left base" => "left basilar", _ => "bibasilar" };
                if (r.Chance(hedgeProbability))
                    lungs.Add(S(r.Pick([$"Minimal {adj} atelectasis versus scarring.", $"Possible {adj} subsegmental atelectasis."]), Unc(Observation.Atelectasis)));
                else
                {
                    lungs.Add(S(r.Pick([$"Plate-like atelectasis {where}.", $"{Cap(adj)} subsegmental atelectasis.", $"Linear atelectasis {where}."]), Pos(Observation.Atelectasis)));
                    if (r.Chance(0.5)) impression.Add(S($"{Cap(adj)} atelectasis.", Pos(Observation.Atelectasis)));
                }
            }
            else
            {
                lungs.Add(S(r.Pick([$"{Cap(at.Location)} collapse.", $"Atelectasis of the {at.Location} with volume loss.", $"There is {at.Location} atelectasis."]), Pos(Observation.Atelectasis)));
                impression.Add(S(r.Pick([$"{Cap(at.Location)} collapse.", $"{Cap(at.Location)} atelectasis."]), Pos(Observation.Atelectasis)));
            }
        }

        // ---------- pleura ----------
        if (f.Effusion is { } ef)
        {
            bool both = ef.Side == "both";
            string side = both ? "bilateral" : ef.Side, sfx = both ? "s" : "", angle = both ? "costophrenic angles" : "costophrenic angle";
            if (ef.Size == "small" && r.Chance(hedgeProbability))
            {
                pleura.Add(S(r.Pick([$"Possible small {side} pleural effusion{sfx}.", $"Small {side} pleural effusion{sfx} cannot be excluded."]), Unc(Observation.PleuralEffusion)));
                impression.Add(S($"Possible small {side} pleural effusion{sfx}.", Unc(Observation.PleuralEffusion)));
            }
            else
            {
                pleura.Add(S(r.Pick([
                    $"{Cap(ef.Size)} {side} pleural effusion{sfx}.",
                    both ? $"There are {ef.Size} bilateral pleural effusions." : $"There is a {ef.Size} {side} pleural effusion.",
                    $"{Cap(ef.Size)} {side} pleural effusion{sfx} with blunting of the {angle}.",
                    $"{Cap(ef.Size)} layering {side} pleural effusion{sfx}."]), Pos(Observation.PleuralEffusion)));
                impression.Add(S($"{Cap(ef.Size)} {side} pleural effusion{sfx}.", Pos(Observation.PleuralEffusion)));
            }
        }
        if (f.Pneumothorax is { } px)
        {
            pleura.Add(S(r.Pick([
                $"{Cap(px.Size)} {px.Side} pneumothorax.",
                $"There is a {px.Size} {px.Side} apical pneumothorax.",
                $"{Cap(px.Size)} {px.Side} pneumothorax with a visible visceral pleural line.",
                $"{Cap(px.Side)} pneumothorax, {px.Size} in size."]), Pos(Observation.Pneumothorax)));
            impression.Insert(0, S(r.Pick([$"{Cap(px.Size)} {px.Side} pneumothorax.", $"{Cap(px.Side)} pneumothorax, {px.Size}."]), Pos(Observation.Pneumothorax)));
        }
        // explicit negatives of what is absent
        bool noEff = f.Effusion is null, noPtx = f.Pneumothorax is null;
        if (noEff && noPtx && r.Chance(0.75))
            pleura.Add(S(r.Pick(["No pleural effusion or pneumothorax.", "No pneumothorax or pleural effusion.", "There is no pleural effusion or pneumothorax.",
                                 "No effusion or pneumothorax is seen."]), Neg(Observation.PleuralEffusion), Neg(Observation.Pneumothorax)));
        else
        {
            if (noEff && r.Chance(0.6))
                pleura.Add(S(r.Pick(["No pleural effusion.", "The costophrenic angles are sharp.", "No pleural effusions."]), Neg(Observation.PleuralEffusion)));
            if (noPtx && r.Chance(0.7))
                pleura.Add(S(r.Pick(["No pneumothorax.", "There is no pneumothorax."]), Neg(Observation.Pneumothorax)));
        }
        if (f.Consolidation is null && r.Chance(0.6))
        {
            if (f.Edema is null && r.Chance(0.3)) lungs.Add(S("No focal airspace disease.", Neg(Observation.LungOpacity)));
            else if (r.Chance(0.4)) lungs.Add(S("There is no focal consolidation to suggest pneumonia.", Neg(Observation.Consolidation), Neg(Observation.Pneumonia)));
            else lungs.Add(S(r.Pick(["No focal consolidation.", "No focal airspace consolidation."]), Neg(Observation.Consolidation)));
        }
        if (f.Edema is null && r.Chance(0.35))
            lungs.Add(S(r.Pick(["No pulmonary edema.", "No evidence of pulmonary edema."]), Neg(Observation.Edema)));
        if (f.Lesion is null && r.Chance(0.2))
            lungs.Add(S(r.Pick(["No suspicious pulmonary nodules or masses.", "No focal mass or nodule."]), Neg(Observation.LungLesion)));
        bool lungsNormal = f.Consolidation is null && f.Edema is null && f.Lesion is null && f.Atelectasis is null;
        if (lungsNormal && noPtx && r.Chance(0.7))
            lungs.Insert(0, S(r.Pick(["The lungs are clear.", "Lungs are clear bilaterally.", "The lungs are well expanded and clear."])));
        else if (!lungsNormal && r.Chance(0.3))
            lungs.Add(S("The lungs are otherwise clear."));
        if (f.Edema is null && r.Chance(0.25)) lungs.Add(S("Pulmonary vascularity is within normal limits."));

        // ---------- bones ----------
        if (f.Fracture is { } fx)
        {
            string ord = Ordinal(fx.Rib);
            bones.Add(S(r.Pick([
                $"Acute fracture of the {fx.Side} {ord} posterior rib.",
                $"{Cap(fx.Side)} {ord} rib fracture.",
                $"There is a mildly displaced fracture of the {fx.Side} {ord} rib.",
                $"Nondisplaced fracture of the {fx.Side} {ord} posterior rib."]), Pos(Observation.Fracture)));
            impression.Add(S($"{Cap(fx.Side)} {ord} rib fracture.", Pos(Observation.Fracture)));
        }
        else
        {
            double k = r.Next();
            if (k < 0.25) bones.Add(S(r.Pick(["No displaced rib fractures.", "No acute fracture."]), Neg(Observation.Fracture)));
            else if (k < 0.6) bones.Add(S(r.Pick(["The visualized osseous structures are unremarkable.", "No acute osseous abnormality."])));
        }

        // ---------- impression ----------
        if (f.Cardiomegaly is string cs)
            impression.Add(S(r.Pick(["Cardiomegaly.", $"{Cap(cs == "severe" ? "marked" : cs)} cardiomegaly."]), Pos(Observation.Cardiomegaly)));
        if (impression.Count == 0)
        {
            impression.Add(S(r.Pick<string>(f.IsNormal
                ? ["No acute cardiopulmonary process.", "No acute cardiopulmonary abnormality.", "No acute cardiopulmonary disease.", "Normal chest radiograph."]
                : ["No acute cardiopulmonary process.", "No acute cardiopulmonary abnormality."])));
        }
        if (f.Devices is { } d2 && r.Chance(0.7))
        {
            string text = d2.EttCmAboveCarina is null && d2.CvcTip is null ? "Pacemaker in place." : r.Pick(["Support devices as described.", "Lines and tubes as above.", "Support devices in expected position."]);
            impression.Add(S(text, Pos(Observation.SupportDevices)));
        }

        // ---------- assemble ----------
        int order = r.Int(0, 2);
        List<Sentence>[] groups = order switch
        {
            0 => [heart, lungs, pleura, bones, devices],
            1 => [devices, lungs, pleura, heart, bones],
            _ => [devices, heart, lungs, pleura, bones],
        };
        var findings = groups.SelectMany(g => g).ToList();
        if (findings.Count == 0) findings.Add(S("The lungs are clear."));
        if (style == ReportStyle.Varied)
        {
            // A stream of its own, so the templates' choices (and so the labels) are those of the Templates style.
            var v = new PhantomRandom((long)seed, 0, 11);
            findings = Restyle(findings, ref v);
            for (int i = findings.Count - 1; i > 0; i--)
            {
                int j = v.Int(0, i);
                (findings[i], findings[j]) = (findings[j], findings[i]);
            }
            impression = Restyle(impression, ref v);
        }
        string findingsText = string.Join(" ", findings.Select(s => s.Text));
        string impressionText = impression.Count > 1 && r.Chance(0.6)
            ? string.Join(" ", impression.Select((s, i) => $"{i + 1}. {s.Text}"))
            : string.Join(" ", impression.Select(s => s.Text));
        var labels = new CxrLabels();
        foreach (var s in findings.Concat(impression))
            foreach (var (o, m) in s.Says)
                labels[o] = Stronger(labels[o], m);
        ApplyNoFindingRule(labels);
        return new WrittenReport(findingsText, impressionText, labels);
    }

    private sealed record StyleRule(Regex Pattern, string[] Replacements, double Probability);

    private static StyleRule Rule(string pattern, double probability, params string[] replacements) =>
        new(new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant), replacements, probability);

    // Applied in order to every sentence; each rule that matches fires with its probability and replaces every match
    // with one pick. Every replacement says what the text said (the labeler reads both the same way).
    private static readonly StyleRule[] StyleRules =
    [
        // hedge words
        Rule(@"^Possible ", 0.6, "Questionable ", "Probable ", "Suspected "),
        Rule(@"\bcannot be excluded\b", 0.5, "cannot be ruled out", "is not excluded"),
        // synonyms and abbreviations
        Rule(@"\b(left|right) pleural effusion\b", 0.3, "$1-sided pleural effusion"),
        Rule(@"\bpleural effusion", 0.4, "effusion"),
        Rule(@"\b[Pp]neumothorax\b", 0.4, "PTX"),
        Rule(@"\b[Cc]ardiomegaly\b", 0.35, "cardiac enlargement", "enlargement of the heart"),
        Rule(@"\b([Ee]ndotracheal|ET) tube\b", 0.5, "ETT"),
        Rule(@"\bcostophrenic angle", 0.5, "CP angle"),
        Rule(@"\bcentral venous catheter\b", 0.4, "central line", "central venous line"),
        Rule(@"\b[Pp]ulmonary edema\b", 0.35, "edema", "pulmonary oedema"),
        Rule(@"\bosseous\b", 0.5, "bony"),
        // the terse style of the IU reports
        Rule(@"^There (is|are) (a |an )?", 0.5, ""),
        Rule(@"^The ", 0.5, ""),
        Rule(@" (is|are) within normal limits\b", 0.5, " within normal limits"),
        Rule(@"\bsize is normal\b", 0.6, "size normal"),
        Rule(@"^Lungs are clear\b", 0.6, "Lungs clear"),
        // other normal impressions (they assert nothing)
        Rule(@"^No acute cardiopulmonary (process|abnormality|disease)\.$", 0.5,
             "No active disease.", "No acute cardiopulmonary findings.", "No active cardiopulmonary process.", "No acute chest findings."),
    ];

    private static List<Sentence> Restyle(List<Sentence> sentences, ref PhantomRandom v)
    {
        var result = new List<Sentence>(sentences.Count);
        foreach (var sentence in sentences)
        {
            string text = sentence.Text;
            foreach (var rule in StyleRules)
            {
                if (!rule.Pattern.IsMatch(text)) continue;
                bool fire = v.Chance(rule.Probability);
                string pick = v.Pick(rule.Replacements);
                if (!fire) continue;
                text = rule.Pattern.Replace(text, m => m.Result(pick));
                text = Cap(text);   // a sentence still starts with a capital after "The " or "There is a " is dropped
            }
            result.Add(sentence with { Text = text });
        }
        return result;
    }

    private static string Ordinal(int n) => n switch { 1 => "1st", 2 => "2nd", 3 => "3rd", _ => $"{n}th" };

    /// <summary>CheXpert aggregation of two mentions of one observation: positive over uncertain over negative over not mentioned.</summary>
    public static Mention Stronger(Mention a, Mention b)
    {
        static int Rank(Mention m) => m switch { Mention.Positive => 3, Mention.Uncertain => 2, Mention.Negative => 1, _ => 0 };
        return Rank(a) >= Rank(b) ? a : b;
    }

    /// <summary>CheXpert's No Finding rule: Positive when no observation other than Support Devices is positive or uncertain, else not mentioned.</summary>
    public static void ApplyNoFindingRule(CxrLabels labels)
    {
        bool any = Observations.All.Any(o => o is not (Observation.NoFinding or Observation.SupportDevices)
                                             && labels[o] is Mention.Positive or Mention.Uncertain);
        labels[Observation.NoFinding] = any ? Mention.NotMentioned : Mention.Positive;
    }
}
