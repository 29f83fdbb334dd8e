using System.Text;
using System.Text.RegularExpressions;

namespace RoentGen.Data.Reports;

/// <summary>One labelled mention: which observation, how it is spoken of, where.</summary>
/// <param name="Observation">The observation; <see cref="Observation.NoFinding"/> for a finding outside the 14 observations
/// (emphysema, granuloma, degenerative change, ...), which adds no label but, when positive or uncertain, withholds No Finding.</param>
/// <param name="Mention">Positive, Negative or Uncertain.</param>
/// <param name="Phrase">The matched text.</param>
/// <param name="Sentence">The (normalised) sentence it was found in.</param>
/// <param name="Reason">Which cue decided (e.g. "negation 'no'"), or "mention".</param>
public sealed record LabeledMention(Observation Observation, Mention Mention, string Phrase, string Sentence, string Reason);

/// <summary>
/// A rule-based CheXpert-style report labeler, after the approach Irvin et al. (2019) document for the CheXpert labeler:
/// mention extraction from phrase lists per observation, then NegBio-style negation and uncertainty cues before and
/// after each mention, then aggregation. The text is normalised and split into sentences and those into clauses
/// (negation and uncertainty scopes end at "but", "however", "although", "which", "except", ...). Each observation has
/// mention phrases with synonyms and abbreviations (PTX, CHF, enlarged heart, collapse, infiltrate, airspace disease,
/// vascular prominence, cephalization, ETT, CP angle, ...) and exclusions ("pericardial effusion", a calcified nodule); attribute rules
/// read "heart size is normal" / "the heart is enlarged" / "costophrenic angles are blunted" by the qualifier nearest the
/// subject ("at the upper limits of normal" reads as normal, as in CheXpert's negation patterns; "borderline" as
/// uncertain). A mention is uncertain when a double-negative uncertainty phrase is in its clause ("cannot be excluded",
/// "cannot rule out"); otherwise negative when a negation cue precedes it in the clause ("no", "without", "neither",
/// "negative for", "free of", "absence of", "resolved") or follows it ("is not seen", "has resolved", "has cleared",
/// "has been ruled out"); otherwise uncertain when an uncertainty cue precedes it ("possible", "may", "likely",
/// "borderline", "suggestive of", "concerning for", "rule out", ...) or follows it ("is suspected", "versus");
/// otherwise positive. Mentions of one observation aggregate as positive over uncertain over negative.
/// No Finding, as in CheXpert's aggregation: positive when no observation other than Support Devices is positive or
/// uncertain AND no finding outside the 14 observations (emphysema, granuloma, calcification, scarring, degenerative
/// change, scoliosis, hernia, atherosclerosis, low lung volumes, ...: CheXpert's "No Finding" mention list does the same)
/// is positive or uncertain; else blank. An empty report gets no label at all.
/// Works on real reports too (IU X-ray phrasing and "XXXX" de-identification tokens); its lexicons were rebuilt from
/// radiology phrasing against the development half of the shared IU sample only (<see cref="IuReportSplit"/>), and
/// its agreement is reported on the held-out half.
/// </summary>
public sealed class ReportLabeler
{
    private const RegexOptions Opt = RegexOptions.Compiled | RegexOptions.CultureInvariant;

    private sealed record Rule(Observation Obs, Regex Pattern);

    private sealed record AttributeRule(Observation Obs, Regex Subject, Regex Abnormal, Regex Normal, Regex? Borderline);

    private static Regex R(string pattern) => new(pattern, Opt);

    private static readonly Rule[] Mentions =
    [
        new(Observation.EnlargedCardiomediastinum, R(@"\benlarged cardiomediastinum\b|\bmediastinal (widening|enlargement)\b|\bwidened mediastinum\b|\bcardiomediastinal enlargement\b|\bwidening of the mediastinum\b")),
        new(Observation.Cardiomegaly, R(@"\bcardiomegaly\b|\bcardiac enlargement\b|\benlarged (heart|cardiac)\b|\benlargement of the (heart|cardiac)\b")),
        new(Observation.LungOpacity, R(@"\bopaci\w+|\binfiltrat\w*|\bair ?space (disease|process)\b|\bhaz(y|iness)\b|(?<!(calcified|bone|bony|breast|soft tissue) )\bdensit(y|ies)\b")),
        new(Observation.LungLesion, R(@"(?<!calcified )\bnodul(e|es|ar|arity)\b|\bmass(es)?\b(?! effect)|(?<!(rib|bone|bony|osseous|lytic|sclerotic|blastic|skin) )\blesions?\b|\btumou?rs?\b|\bneoplas\w*|\bcarcinoma\b|\bmalignan\w*|\bmetasta\w*|\bcancer\b")),
        new(Observation.Edema, R(@"(?<!(subcutaneous|soft tissue) )\bo?edema\b|\bchf\b|\bheart failure\b|\b(pulmonary|vascular|venous) congestion\b|\bcongestive\b|\bfluid overload\b|\bcephali[sz]ation\b|\bkerley\b|\bvascular (prominence|engorgement|redistribution)\b|\bprominen(t|ce of the|ce of) (central |pulmonary |hilar )?(vasculature|vascularity|vessels|vascular markings)\b|\bindistinct(ness of the| the|ness of)? (pulmonary )?(vessels|vasculature|vascular markings)\b")),
        new(Observation.Consolidation, R(@"\bconsolidat\w*")),
        new(Observation.Pneumonia, R(@"\b(broncho)?pneumonias?\b|\bpneumonitis\b|\binfectio(n|us)\b|\binfective\b")),
        new(Observation.Atelectasis, R(@"\batelecta\w*|(?<!(vertebral|vertebra|body|compression|lung) )\bcollapsed?\b")),
        new(Observation.Pneumothorax, R(@"\b(hydro)?pneumothora(x|ces)\b|\bptx\b")),
        new(Observation.PleuralEffusion, R(@"(?<!pericardial )\beffusions?\b|\bpleural fluid\b|\bhydrothora(x|ces)\b")),
        new(Observation.PleuralOther, R(@"\bpleural (thickening|plaques?|scarring|calcifications?)\b|\bfibrothorax\b|\bapical (pleural )?(thickening|cap)\b|\bthickening of the pleura\b")),
        new(Observation.Fracture, R(@"(?<!(catheter|line|wire|lead|tube)s? )\bfractur\w*|\bfx\b")),
        new(Observation.SupportDevices, R(@"\btubes?\b|\bcatheters?\b|\bpicc\b|\b(central|venous|midline|arterial) lines?\b|\blines and tubes\b|\bport ?a ?cath\b|\bpacemakers?\b|\bpacers?\b|\bdefibrillators?\b|\baicd\b|\bicd\b|\bleads?\b|\belectrodes?\b|\bstents?\b|\b(support|medical|monitoring|cardiac) devices?\b|\bendotracheal\b|\bett\b|\btracheostomy\b|(?<!scapular )\btip\b")),
    ];

    // "At the upper limits of normal" is a negation in CheXpert's patterns (size at or within the upper limit of normal).
    private static readonly Regex Normalish = R(@"\b(upper limits? of normal|upper normal|top (of )?normal|high normal|normal|within normal limits|unremarkable|not (significantly |substantially |markedly )?(enlarged|widened|increased)|no (enlargement|widening))\b");
    private static readonly Regex Borderline = R(@"\bborderline\b");

    private static readonly AttributeRule[] Attributes =
    [
        new(Observation.Cardiomegaly,
            R(@"\bheart\b(?! failure)|\bcardiac (silhouettes?|size|contours?|shadow|diameter|dimensions?)\b"),
            R(@"\b(enlarged|enlargement|enlarging|increased|large|prominent|big)\b"), Normalish, Borderline),
        new(Observation.EnlargedCardiomediastinum,
            R(@"\bcardiomediastinal( (silhouettes?|contours?|shadow|width))?\b|\bmediastinal (silhouettes?|contours?|width|shadow)\b|\bmediastinum\b|\bcardiomediastinum\b"),
            R(@"\b(enlarged|enlargement|widened|widening|wide|prominent|prominence|increased|large)\b"), Normalish, Borderline),
        new(Observation.PleuralEffusion,
            R(@"\b(costophrenic|cp) (angles?|sulcus|sulci|recess(es)?)\b"),
            R(@"\b(blunt\w*|obscured|obliterat\w*)"), R(@"\b(sharp|clear|normal|preserved|unremarkable|well defined)\b"), null),
        new(Observation.PleuralEffusion, R(@"\bpleural spaces?\b"), R(@"(?!)"), R(@"\b(clear|normal|unremarkable)\b"), null),
    ];

    // Findings outside the 14 observations (CheXpert's "No Finding" mention list works this way): a positive or uncertain one
    // means the study is not normal, so No Finding is not given; it adds no observation label. Grouped by organ.
    private static readonly Regex OtherFinding = R(string.Join("|",
        // airways and lung parenchyma, chronic change
        @"\b(subcutaneous )?emphysema(tous)?\b|\bcopd\b|\bobstructive (pulmonary|lung|airways?) disease\b|\bhyper ?(inflat|expan|aerat|lucen)\w*|\boverinflat\w*",
        @"\bbullae\b|\bbulla\b|\bbullous\b|\bblebs?\b|\bcysts?\b|\bcystic\b|\bbronchiectasis\b|\bbronchi(tis|olitis)\b|\basthma\b|\bairways? disease\b",
        @"\b(peribronchial|bronchial wall) (thickening|cuffing)\b|\bscar(s|ring|red)?\b|\bcicatri\w*|\bfibros[ie]s\b|\bfibrotic\b",
        @"\binterstitial (markings?|prominence|disease|lung disease|pattern|changes?|thickening)\b|\breticul\w*|\b(increased|coarse\w*|prominent|chronic|accentuated|interstitial) (interstitial )?markings\b",
        @"\bgranulom\w*|\bcalcified (lymph|node|nodes|hilar|mediastinal|granulom|lesion|densit)\w*|\bcalcific\w*|\bcalcinosis\b",
        @"\blow (lung )?volumes?\b|\bhypo ?(inflat|aerat|ventilat|expan)\w*|\baspiration\b|\bcontusion\b|\bhemorrhage\b|\bhematoma\b|\binflammat\w*",
        // vessels, hila and heart outside the observations
        @"\batherosclero\w*|\btortu\w*|\bectatic\b|\bectasia\b|\baneurysm\w*|\bunfold(ed|ing)\b|\bpulmonary (arterial )?hypertension\b",
        @"\b(enlarged|prominent|dilated) (central )?pulmonary arter\w*|\b(lymph)?adenopathy\b|\bhilar (prominence|enlargement|fullness|adenopathy)\b|\bprominen\w*",
        // diaphragm, pleura and mediastinum outside the observations
        @"\bhernia\w*|\beventration\b|\belevat\w*|\bflatten\w*|\bpneumomediastinum\b|\bpneumoperitoneum\b|\bthicken\w*|\bvolume loss\b",
        // bones and soft tissue
        @"\bdegenerat\w*|\bspondyl\w*|\bosteophyt\w*|\bspurs?\b|\bspurring\b|\barthriti\w*|\barthropathy\b|\b(levo|dextro)?scolio\w*|\bkypho\w*",
        @"\bosteopeni\w*|\bosteoporo\w*|\bhyperostosis\b|\bdish\b|\bdeformit\w*|\bforeign bod(y|ies)\b|\bbullets?\b|\bshrapnel\b"));

    // A double-negative uncertainty phrase anywhere in the clause makes its mentions uncertain.
    private static readonly Regex UncertainOverride = R(@"\b(cannot|can not|could not|not) (be )?(excluded|ruled out|exclude|rule out)\b|\bnot entirely excluded\b|\bcannot be entirely excluded\b");
    // Phrases that contain a negation word but do not negate.
    private static readonly Regex PseudoNegation = R(@"\bno (interval |significant |substantial )?(change|changes|increase|decrease)\b|\bnot (significantly )?changed\b|\bno longer\b(?= (seen|visible|identified|present|evident))|\bnot only\b|\bgram negative\b");
    private static readonly Regex PreNegation = R(@"\b(no|not|neither|nor|never|without|negative for|free of|clear of|absence of|absent|resolved|resolution of|rather than|ruled out|no longer|removal of|removed)\b");
    private static readonly Regex PostNegation = R(@"\b(not|no longer) (be )?(seen|identified|present|visuali[sz]ed|visible|appreciated|evident|demonstrated|noted|detected)\b|\b(has|have)? ?resolved\b|\b(has|have) cleared\b|\bresolution\b|\b(is|are) absent\b|\b(has|have) been removed\b|\b(has been|have been|is|are|was|were) (ruled out|excluded)\b");
    private static readonly Regex PreUncertainty = R(@"\b(borderline|possible|possibly|probable|probably|may|might|could|likely|questionable|question of|questioned|suspicious for|concerning for|worrisome for|suggestive of|suggests?|suggesting|suspect|suspected|consider|considered|differential|versus|vs|equivocal|indeterminate|presumed|presumably|rule out|perhaps|cannot exclude|can not exclude|suspicion (for|of)|evaluation (of|for)|evaluate for|assess for)\b");
    private static readonly Regex PostUncertainty = R(@"\b(is|are) (possible|suspected|likely|questioned|considered)\b|\bversus\b|\bvs\b|\bin the differential\b|\bcould be\b|\bmay be\b");
    private static readonly Regex Versus = R(@"\b(versus|vs)\b");
    private static readonly Regex ClauseBreak = R(@"\b(but|however|although|though|except|which|whereas|while|aside from|apart from|otherwise)\b");

    /// <summary>
    /// Labels a report: one mention per CheXpert observation. An empty or blank report is unlabelled (every observation
    /// blank, No Finding included): no report is not a normal report.
    /// </summary>
    public CxrLabels Label(string reportText)
    {
        var labels = new CxrLabels();
        ArgumentNullException.ThrowIfNull(reportText);
        if (string.IsNullOrWhiteSpace(reportText)) return labels;
        bool otherFinding = false;
        foreach (var m in LabelMentions(reportText))
        {
            if (m.Observation == Observation.NoFinding) { otherFinding |= m.Mention is Mention.Positive or Mention.Uncertain; continue; }
            labels[m.Observation] = ReportWriter.Stronger(labels[m.Observation], m.Mention);
        }
        ReportWriter.ApplyNoFindingRule(labels);
        if (otherFinding) labels[Observation.NoFinding] = Mention.NotMentioned;
        return labels;
    }

    /// <summary>Every labelled mention in a report, in reading order (for inspecting why a label came out).</summary>
    public IReadOnlyList<LabeledMention> LabelMentions(string reportText)
    {
        ArgumentNullException.ThrowIfNull(reportText);
        var result = new List<LabeledMention>();
        foreach (var sentence in SplitSentences(Normalize(reportText)))
            foreach (var clause in SplitClauses(sentence))
                LabelClause(clause, result);
        return result;
    }

    /// <summary>Lower-cases and joins hyphenated words ("plate-like" to "plate like"); line breaks end sentences.</summary>
    public static string Normalize(string text)
    {
        var sb = new StringBuilder(text.Length + 8);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\n' || c == '\r') { sb.Append(". "); continue; }
            if (c == '-' && i > 0 && i + 1 < text.Length && char.IsLetter(text[i - 1]) && char.IsLetter(text[i + 1])) { sb.Append(' '); continue; }
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>Splits at . ? ! ; : (not at a decimal point), dropping list numbers and empty pieces.</summary>
    public static IEnumerable<string> SplitSentences(string text)
    {
        int start = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            bool end = i == text.Length;
            if (!end)
            {
                char c = text[i];
                if (c is '?' or '!' or ';' or ':') end = true;
                else if (c == '.')
                    end = !(i > 0 && i + 1 < text.Length && char.IsDigit(text[i - 1]) && char.IsDigit(text[i + 1]));
            }
            if (!end) continue;
            var piece = text[start..i].Trim();
            start = i + 1;
            if (piece.Length == 0 || piece.All(ch => char.IsDigit(ch) || char.IsWhiteSpace(ch) || ch == ')')) continue;
            yield return piece;
        }
    }

    private static IEnumerable<string> SplitClauses(string sentence)
    {
        int start = 0;
        foreach (Match m in ClauseBreak.Matches(sentence))
        {
            if (m.Index > start) yield return sentence[start..m.Index];
            start = m.Index + m.Length;
        }
        if (start < sentence.Length) yield return sentence[start..];
    }

    private static void LabelClause(string clause, List<LabeledMention> result)
    {
        // Blank out pseudo-negations so their "no"/"not" does not negate.
        string masked = PseudoNegation.Replace(clause, m => new string('_', m.Length));
        bool overrideUncertain = UncertainOverride.IsMatch(masked);
        string cueText = overrideUncertain ? UncertainOverride.Replace(masked, m => new string('_', m.Length)) : masked;

        foreach (var rule in Mentions)
        {
            foreach (Match m in rule.Pattern.Matches(clause))
            {
                var (mention, reason) = overrideUncertain ? (Mention.Uncertain, "uncertain: cannot be excluded") : Decide(cueText, m.Index, m.Index + m.Length);
                result.Add(new LabeledMention(rule.Obs, mention, m.Value, clause.Trim(), reason));
            }
        }
        foreach (Match m in OtherFinding.Matches(clause))
        {
            var (mention, reason) = overrideUncertain ? (Mention.Uncertain, "uncertain: cannot be excluded") : Decide(cueText, m.Index, m.Index + m.Length);
            result.Add(new LabeledMention(Observation.NoFinding, mention, m.Value, clause.Trim(), "other finding, " + reason));
        }
        foreach (var rule in Attributes)
        {
            foreach (Match subj in rule.Subject.Matches(clause))
            {
                var q = NearestQualifier(clause, subj, rule);
                if (q is null) continue;
                var (kind, qm) = q.Value;
                Mention mention; string reason;
                if (kind == "normal") { mention = Mention.Negative; reason = $"qualifier '{qm.Value}'"; }
                else if (kind == "borderline") { mention = Mention.Uncertain; reason = $"qualifier '{qm.Value}'"; }
                else if (overrideUncertain) { mention = Mention.Uncertain; reason = "uncertain: cannot be excluded"; }
                else
                {
                    int s = Math.Min(subj.Index, qm.Index), e = Math.Max(subj.Index + subj.Length, qm.Index + qm.Length);
                    (mention, reason) = Decide(cueText, s, e);
                }
                result.Add(new LabeledMention(rule.Obs, mention, clause.Substring(Math.Min(subj.Index, qm.Index),
                    Math.Max(subj.Index + subj.Length, qm.Index + qm.Length) - Math.Min(subj.Index, qm.Index)), clause.Trim(), reason));
            }
        }
    }

    /// <summary>Negation first (before or after the mention), then uncertainty, else positive.</summary>
    private static (Mention, string) Decide(string clause, int start, int end)
    {
        string before = clause[..start], after = clause[end..];
        var pre = PreNegation.Match(before);
        if (pre.Success) return (Mention.Negative, $"negation '{pre.Value}'");
        var post = PostNegation.Match(after);
        if (post.Success) return (Mention.Negative, $"negation '{post.Value}'");
        var preU = PreUncertainty.Match(before);
        if (preU.Success) return (Mention.Uncertain, $"uncertainty '{preU.Value}'");
        var postU = PostUncertainty.Match(after);
        if (postU.Success) return (Mention.Uncertain, $"uncertainty '{postU.Value}'");
        if (Versus.IsMatch(clause)) return (Mention.Uncertain, "uncertainty 'versus'");
        return (Mention.Positive, "mention");
    }

    /// <summary>The qualifier nearest the subject within 60 characters (borderline and normal phrases mask the words they contain).</summary>
    private static (string kind, Match match)? NearestQualifier(string clause, Match subj, AttributeRule rule)
    {
        const int window = 60;
        var found = new List<(string kind, Match m)>();
        var taken = new bool[clause.Length];
        void Add(Regex? re, string kind)
        {
            if (re is null) return;
            foreach (Match m in re.Matches(clause))
            {
                bool overlap = false;
                for (int i = m.Index; i < m.Index + m.Length; i++) overlap |= taken[i];
                if (overlap) continue;
                for (int i = m.Index; i < m.Index + m.Length; i++) taken[i] = true;
                found.Add((kind, m));
            }
        }
        Add(rule.Borderline, "borderline");
        Add(rule.Normal, "normal");
        Add(rule.Abnormal, "abnormal");
        (string, Match)? best = null;
        int bestDist = int.MaxValue;
        foreach (var (kind, m) in found)
        {
            // a qualifier inside the subject itself ("enlarged" in "enlarged heart" is fine, overlap is not)
            if (m.Index < subj.Index + subj.Length && subj.Index < m.Index + m.Length) continue;
            int dist = m.Index >= subj.Index + subj.Length ? m.Index - (subj.Index + subj.Length) : subj.Index - (m.Index + m.Length);
            if (dist <= window && dist < bestDist) { bestDist = dist; best = (kind, m); }
        }
        return best;
    }
}
