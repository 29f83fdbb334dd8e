using RoentGen.Data;

namespace RoentGen.Text;

/// <summary>
/// Short radiology statements written apart from <see cref="Data.Reports.ReportWriter"/>, for text-encoder pretraining
/// only: the other names radiologists give each finding, the way the CheXpert labeler's mention lists gather them
/// (Irvin et al. 2019: "CHF", "heart failure", "vascular congestion" for edema; "nodular opacity", "neoplasm" for a
/// lesion; "PICC", "pacer", "NG tube" for devices), lobe abbreviations (RLL, LUL, ...), "fx", and word orders and hedges
/// the writer's templates do not use ("Enlarged heart.", "Fracture, left 6th rib.", "Suspect ..."). The denoiser never
/// sees these sentences: they have no images. They are there so that the text encoder, whose pretraining predicts the
/// findings the report labeler reads in a prompt, learns that different words name the same finding, as a general
/// language model would have learned before it met the reports (what the prompts' paraphrase adherence measures).
/// Each sentence states one finding, or two, or one and denies another, or negates one; its pretraining targets are
/// what the labeler reads in it, as for the training prompts. Deterministic for a seed.
/// </summary>
public static class RadiologyPhrasebook
{
    /// <summary>The findings that have statements, with the names radiologists give them.</summary>
    public static IReadOnlyDictionary<Observation, IReadOnlyList<string>> Names { get; } = new Dictionary<Observation, IReadOnlyList<string>>
    {
        [Observation.Cardiomegaly] = ["cardiomegaly", "cardiac enlargement", "enlarged heart", "enlarged cardiac silhouette", "enlargement of the heart"],
        [Observation.Edema] = ["pulmonary edema", "interstitial edema", "edema", "CHF", "congestive heart failure", "heart failure", "pulmonary vascular congestion",
                               "vascular congestion", "pulmonary congestion", "vascular prominence", "pulmonary oedema"],
        [Observation.Consolidation] = ["consolidation", "airspace consolidation", "consolidative opacity", "lobar consolidation"],
        [Observation.LungLesion] = ["nodule", "pulmonary nodule", "mass", "lung mass", "nodular opacity", "nodular density", "neoplasm", "tumor", "carcinoma", "cavitary lesion"],
        [Observation.Atelectasis] = ["atelectasis", "atelectatic change", "subsegmental atelectasis", "collapse", "plate-like atelectasis"],
        [Observation.Pneumothorax] = ["pneumothorax", "PTX", "apical pneumothorax"],
        [Observation.PleuralEffusion] = ["pleural effusion", "effusion", "pleural fluid"],
        [Observation.Fracture] = ["rib fracture", "fracture", "rib fx", "fx"],
        [Observation.SupportDevices] = ["ETT", "endotracheal tube", "NG tube", "nasogastric tube", "enteric tube", "feeding tube", "PICC", "PICC line",
                                        "central line", "central venous catheter", "pacemaker", "pacer", "ICD", "dual-lead pacemaker"],
    };

    private static readonly HashSet<string> HeldOut = Evaluation.PromptAdherence.DefaultPrompts.Concat(Evaluation.ParaphrasePrompts.All)
        .Select(p => p.Text).ToHashSet(StringComparer.OrdinalIgnoreCase);

    private static readonly string[] Lobes =
        ["right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe", "lingula", "RUL", "RML", "RLL", "LUL", "LLL",
         "right base", "left base", "right lung base", "left lung base", "right mid lung", "left mid lung", "right hilum", "left hilum", "right perihilar region"];
    private static readonly string[] Apices = ["right apex", "left apex", "right apical region", "left apical region", "right hemithorax", "left hemithorax"];
    private static readonly string[] Bases = ["right base", "left base", "right costophrenic angle", "left costophrenic angle", "both bases", "right hemithorax", "left hemithorax"];
    private static readonly string[] Sides = ["right", "left", "right-sided", "left-sided"];
    private static readonly string[] Sizes = ["small", "moderate", "large", "tiny", "trace", "mild", "minimal"];
    private static readonly string[] Course = ["new", "stable", "persistent", "worsening", "improving", "unchanged", "increasing", "decreasing"];
    private static readonly string[] Hedges = ["possible", "probable", "questionable", "suspected", "likely", "suspicious for", "concerning for", "may represent"];
    private static readonly string[] Positions = ["in satisfactory position", "in standard position", "with tip in the SVC", "terminating in the stomach",
                                                  "tip at the carina level", "in expected position", "tip projecting over the right atrium"];
    private static readonly string[] Normal = ["Lungs clear.", "Heart size normal.", "No acute process.", "Clear lungs.", "Normal mediastinum.",
                                               "No other abnormality.", "Otherwise unremarkable.", "Bones intact."];

    /// <summary>
    /// <paramref name="count"/> statements drawn with <paramref name="seed"/>: about 60 % name one finding (a bare name,
    /// with a place, size, course or hedge, in several word orders), 15 % two, 10 % one and deny another ("Left PTX. No
    /// effusion.", "RLL consolidation; no effusion."), 10 % negate one ("No CHF."), 5 % name none.
    /// Place words fit the finding (lobes for consolidation, lesions and atelectasis, apices for a pneumothorax, bases
    /// for an effusion, ribs for a fracture).
    /// A statement that is one of the adherence prompts (<see cref="Evaluation.PromptAdherence.DefaultPrompts"/>,
    /// <see cref="Evaluation.ParaphrasePrompts.All"/>) word for word is drawn again.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">count is negative.</exception>
    public static IReadOnlyList<string> Sentences(int count, long seed)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be 0 or more");
        var r = new Random(unchecked((int)(seed * 1_000_003 + 17)));
        var findings = Names.Keys.ToArray();
        var result = new List<string>(count);
        for (int i = 0; i < count; i++)
        {
            double u = r.NextDouble();
            Observation F() => findings[r.Next(findings.Length)];
            string text;
            if (u < 0.60) text = Statement(F(), r);
            else if (u < 0.85)
            {
                var a = F();
                var b = F();
                while (b == a) b = F();
                text = u < 0.75 ? Statement(a, r) + " " + Statement(b, r) : NamedAndNegated(a, b, r);
            }
            else if (u < 0.95) text = Negation(F(), r);
            else text = Pick(r, Normal);
            if (r.NextDouble() < 0.3) text += " " + Pick(r, Normal);
            if (HeldOut.Contains(text)) { i--; continue; }   // drawn again: the adherence prompts stay unseen
            result.Add(text);
        }
        return result;
    }

    private static string Statement(Observation f, Random r)
    {
        string name = Pick(r, Names[f]);
        string? place = Place(f, r);
        string detail = f switch
        {
            Observation.SupportDevices => r.NextDouble() < 0.6 ? " " + Pick(r, Positions) : "",
            _ => "",
        };
        string? modifier = r.NextDouble() < 0.35 ? Pick(r, f is Observation.Edema or Observation.Cardiomegaly or Observation.Atelectasis or Observation.PleuralEffusion
                                                               or Observation.Pneumothorax ? Sizes : Course) : null;
        string hedge = r.NextDouble() < 0.2 ? Pick(r, Hedges) + " " : "";
        string core = modifier is null ? name : $"{modifier} {name}";
        string s = place is null
            ? r.Next(3) switch { 0 => $"{hedge}{core}{detail}", 1 => $"{hedge}{core} is present{detail}", _ => $"{hedge}{core} seen{detail}" }
            : r.Next(4) switch
            {
                0 => $"{hedge}{core} in the {place}",
                1 => $"{hedge}{Strip(place)} {core}",
                2 => $"{Cap(place)}: {hedge}{core}",
                _ => $"{hedge}{core}, {Strip(place)}",
            };
        if (f == Observation.Fracture && place is not null) s = r.Next(2) == 0 ? $"{hedge}{core} of the {place}" : $"{Cap(Strip(place))} {core}";
        return Cap(s.Trim()) + ".";
    }

    // One finding stated and another denied in the same prompt ("Left pneumothorax. No effusion.", "Nodule, RLL; no
    // pneumothorax."): the targets keep the first only, so the encoder learns that a denied name is not a finding.
    private static string NamedAndNegated(Observation named, Observation denied, Random r)
    {
        string statement = Statement(named, r);
        if (r.Next(2) == 0) return statement + " " + Negation(denied, r);
        string no = Pick(r, Names[denied]);
        return statement[..^1] + (r.Next(2) == 0 ? $"; no {no}." : $", without {no}.");
    }

    private static string Negation(Observation f, Random r)
    {
        string name = Pick(r, Names[f]);
        return r.Next(3) switch { 0 => $"No {name}.", 1 => $"No evidence of {name}.", _ => $"Negative for {name}." };
    }

    private static string? Place(Observation f, Random r)
    {
        if (r.NextDouble() < 0.35) return null;
        return f switch
        {
            Observation.Consolidation or Observation.LungLesion or Observation.Atelectasis => Pick(r, Lobes),
            Observation.Pneumothorax => Pick(r, Apices),
            Observation.PleuralEffusion => Pick(r, Bases),
            Observation.Fracture => $"{Pick(r, ["right", "left"])} {Ordinal(r.Next(3, 10))} rib",
            _ => null,
        };
    }

    // "the right base" reads as a place; "right base consolidation" drops the article.
    private static string Strip(string place) => place.StartsWith("the ", StringComparison.Ordinal) ? place[4..] : place;

    private static string Ordinal(int n) => n switch { 1 => "1st", 2 => "2nd", 3 => "3rd", _ => $"{n}th" };

    private static string Pick(Random r, IReadOnlyList<string> options) => options[r.Next(options.Count)];

    private static string Cap(string s) => s.Length == 0 || char.IsUpper(s[0]) ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
