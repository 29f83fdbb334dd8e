using System.Globalization;
using System.Text.RegularExpressions;
using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;

namespace RoentGen.PairAug;

/// <summary>
/// Reads a report back into the structured findings that <see cref="ReportWriter"/> writes (<see cref="PhantomFindings"/>):
/// which observations are present comes from <see cref="ReportLabeler"/> (positive or uncertain counts as present, the
/// U-Ones reading), and each present finding's attributes (side, size, severity, lobe, millimetres, rib) from the words
/// of the clauses that mention it. An attribute the report does not state takes a default (documented per finding), so
/// a rewrite may state what the original left open. Observations the phantom world has no finding for (Pleural Other,
/// Lung Opacity without consolidation or edema) are not represented.
/// </summary>
public sealed class ReportFindingsReader
{
    private const RegexOptions Opt = RegexOptions.Compiled | RegexOptions.CultureInvariant;
    private static readonly Regex Lobe = new(@"\b(right|left) (upper|middle|lower) lobe\b|\blingula(r)?\b|\b(rul|rml|rll|lul|lll)\b", Opt);
    private static readonly Regex Millimetres = new(@"\b(\d+(?:\.\d+)?) ?(mm|cm)\b", Opt);
    private static readonly Regex Rib = new(@"\b(\d+)(?:st|nd|rd|th)\b", Opt);
    private static readonly Regex CarinaCm = new(@"(\d+(?:\.\d+)?) cm above the carina", Opt);
    private static readonly Regex Cvc = new(@"\b(right|left) (internal jugular|subclavian)\b", Opt);
    private static readonly Regex CvcTip = new(@"\b(superior vena cava|cavoatrial junction|right atrium)\b", Opt);

    private readonly ReportLabeler _labeler;

    /// <summary>A reader over a labeler (a new one when null).</summary>
    public ReportFindingsReader(ReportLabeler? labeler = null) => _labeler = labeler ?? new ReportLabeler();

    /// <summary>The labeler used.</summary>
    public ReportLabeler Labeler => _labeler;

    /// <summary>The findings a report states.</summary>
    public PhantomFindings Read(string report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var mentions = _labeler.LabelMentions(report);
        var labels = _labeler.Label(report);
        bool Present(Observation o) => labels[o] is Mention.Positive or Mention.Uncertain;
        // The clauses of present mentions of an observation, the text its attributes are read from.
        string Clauses(Observation o) => string.Join(" | ", mentions
            .Where(m => m.Observation == o && m.Mention is Mention.Positive or Mention.Uncertain).Select(m => m.Sentence).Distinct());

        var f = new PhantomFindings();
        if (Present(Observation.Cardiomegaly))
            f = f with { Cardiomegaly = Severity(Clauses(Observation.Cardiomegaly), "mild") };                  // default: mild
        if (Present(Observation.EnlargedCardiomediastinum)) f = f with { EnlargedCardiomediastinum = true };
        if (Present(Observation.PleuralEffusion))
        {
            string c = Clauses(Observation.PleuralEffusion);
            f = f with { Effusion = new EffusionFinding(Side(c, allowBoth: true, "right"), Size(c, "small")) };  // default: small, right
        }
        if (Present(Observation.Pneumothorax))
        {
            string c = Clauses(Observation.Pneumothorax);
            f = f with { Pneumothorax = new PneumothoraxFinding(Side(c, allowBoth: false, "right"), Size(c, "small")) };
        }
        if (Present(Observation.Consolidation))
        {
            string c = Clauses(Observation.Consolidation);
            string pneumonia = labels[Observation.Pneumonia] switch { Mention.Positive => "yes", Mention.Uncertain => "possible", _ => "no" };
            f = f with { Consolidation = new ConsolidationFinding(LobeOf(c) ?? "right lower lobe", pneumonia) };
        }
        if (Present(Observation.Edema))
            f = f with { Edema = new EdemaFinding(Severity(Clauses(Observation.Edema), "mild")) };
        if (Present(Observation.LungLesion))
        {
            string c = Clauses(Observation.LungLesion);
            bool mass = Regex.IsMatch(c, @"\bmass(es)?\b");
            int mm = SizeMm(c) ?? (mass ? 40 : 8);                                                                  // default: 40 mm mass, 8 mm nodule
            f = f with { Lesion = new LesionFinding(LobeOf(c) ?? "right upper lobe", mm) };
        }
        if (Present(Observation.Atelectasis))
        {
            string c = Clauses(Observation.Atelectasis);
            bool plate = Regex.IsMatch(c, @"\b(plate|linear|subsegmental|basilar|bibasilar|bases?|minimal|discoid)\b") || LobeOf(c) is null;
            f = f with
            {
                Atelectasis = plate
                    ? new AtelectasisFinding("plate", Regex.IsMatch(c, @"\b(bibasilar|both|bilateral|bases)\b") ? "bibasilar"
                        : Side(c, allowBoth: false, "") is { Length: > 0 } s ? $"{s} base" : "bibasilar")
                    : new AtelectasisFinding("lobar", LobeOf(c)!),
            };
        }
        if (Present(Observation.Fracture))
        {
            string c = Clauses(Observation.Fracture);
            var rib = Rib.Match(c);
            f = f with { Fracture = new FractureFinding(Side(c, allowBoth: false, "right"), rib.Success ? Math.Clamp(int.Parse(rib.Groups[1].Value, CultureInfo.InvariantCulture), 1, 10) : 6) };
        }
        if (Present(Observation.SupportDevices))
        {
            string c = Clauses(Observation.SupportDevices);
            var cm = CarinaCm.Match(c);
            var cvc = Cvc.Match(c);
            var tip = CvcTip.Match(c);
            bool pacer = Regex.IsMatch(c, @"\b(pacemaker|pacer|leads?)\b");
            double? ett = cm.Success ? double.Parse(cm.Groups[1].Value, CultureInfo.InvariantCulture)
                : Regex.IsMatch(c, @"\b(endotracheal|et tube)\b") ? 4.0 : null;
            bool anyCvc = cvc.Success || Regex.IsMatch(c, @"\b(central venous|central line|catheter)\b");
            int? leads = pacer ? (Regex.IsMatch(c, @"\b(dual|two leads|leads in|leads terminating|dual lead)\b") ? 2 : 1) : null;
            if (ett is null && !anyCvc && leads is null) leads = 1;                                                 // a device of unstated kind: a pacemaker
            f = f with
            {
                Devices = new DevicesFinding(ett, anyCvc ? (cvc.Success ? cvc.Groups[1].Value : "right") : null,
                    anyCvc ? (cvc.Success ? cvc.Groups[2].Value : "internal jugular") : null,
                    anyCvc ? (tip.Success ? tip.Value : "superior vena cava") : null, leads),
            };
        }
        return f;
    }

    /// <summary>
    /// The observations present (positive) in the report that <see cref="ReportWriter"/> writes for <paramref name="f"/>
    /// with no hedging: each finding's own observation, Lung Opacity with consolidation or edema, Pneumonia when the
    /// consolidation is called or suspected pneumonia, and No Finding when nothing but support devices is present.
    /// </summary>
    public static ISet<Observation> PresentObservations(PhantomFindings f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return PhantomGenerator.PresentObservations(f).ToHashSet();
    }

    /// <summary>Presence of every observation in labels: positive or uncertain is present.</summary>
    public static bool[] Presence(CxrLabels labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return Observations.All.Select(o => labels[o] is Mention.Positive or Mention.Uncertain).ToArray();
    }

    private static string Severity(string c, string fallback) =>
        Regex.IsMatch(c, @"\b(marked|markedly|severe|severely|massive|massively)\b") ? "severe"
        : Regex.IsMatch(c, @"\b(moderate|moderately)\b") ? "moderate"
        : Regex.IsMatch(c, @"\b(mild|mildly|minimal|slight|slightly)\b") ? "mild" : fallback;

    private static string Size(string c, string fallback) =>
        Regex.IsMatch(c, @"\b(large|massive)\b") ? "large"
        : Regex.IsMatch(c, @"\b(moderate|moderately)\b") ? "moderate"
        : Regex.IsMatch(c, @"\b(small|trace|tiny|minimal)\b") ? "small" : fallback;

    private static string Side(string c, bool allowBoth, string fallback)
    {
        bool both = Regex.IsMatch(c, @"\b(bilateral|bilaterally|both|bibasilar)\b");
        bool left = Regex.IsMatch(c, @"\bleft\b"), right = Regex.IsMatch(c, @"\bright\b");
        if (allowBoth && (both || (left && right))) return "both";
        if (left && !right) return "left";
        if (right && !left) return "right";
        if (left && right) return c.IndexOf("left", StringComparison.Ordinal) < c.IndexOf("right", StringComparison.Ordinal) ? "left" : "right";
        return fallback;
    }

    private static string? LobeOf(string c)
    {
        var m = Lobe.Match(c);
        if (!m.Success) return null;
        return m.Value switch
        {
            "rul" => "right upper lobe", "rml" => "right middle lobe", "rll" => "right lower lobe",
            "lul" => "left upper lobe", "lll" => "left lower lobe",
            "lingula" or "lingular" => "lingula",
            _ => m.Value,
        };
    }

    private static int? SizeMm(string c)
    {
        var m = Millimetres.Match(c);
        if (!m.Success) return null;
        double v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * (m.Groups[2].Value == "cm" ? 10 : 1);
        return Math.Clamp((int)Math.Round(v), 2, 120);
    }
}
