using System.Security.Cryptography;
using System.Text;
using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;

namespace RoentGen.PairAug;

/// <summary>
/// The offline rewriter, always available: reads the report into structured findings (<see cref="ReportFindingsReader"/>),
/// edits them and writes the result with <see cref="ReportWriter"/> (no hedging, so every finding is stated plainly).
/// <list type="bullet">
/// <item><see cref="RewriteOperation.PartialOpposite"/> makes one or two edits, each to a different finding, chosen
/// uniformly among: remove a present finding, add an absent one (seeded attributes), flip a finding's side (left and
/// right, and the matching lobes: right middle lobe and lingula), flip its severity or size to the opposite end.</item>
/// <item><see cref="RewriteOperation.ChangeInSymptoms"/> makes one edit to a present finding: one step of progression
/// (mild to moderate to severe, small to moderate to large, a lesion grown by half) or regression (one step back, or
/// resolved from the lowest step for effusion, pneumothorax, edema, consolidation and atelectasis; a lesion shrunk),
/// and says so in the impression ("Interval increase in the left pleural effusion."). A report with no finding present
/// has nothing to change: the result is null.</item>
/// </list>
/// The result carries the intended edits and the intended presence changes (from
/// <see cref="ReportFindingsReader.PresentObservations"/> before and after). Deterministic: the same report, operation
/// and seed give the same rewrite.
/// </summary>
public sealed class RuleBasedReportRewriter : IReportRewriter
{
    private static readonly string[] Sizes = ["small", "moderate", "large"];
    private static readonly string[] Severities = ["mild", "moderate", "severe"];

    private readonly ReportFindingsReader _reader;

    /// <summary>A rewriter over a findings reader (a new one when null).</summary>
    public RuleBasedReportRewriter(ReportFindingsReader? reader = null) => _reader = reader ?? new ReportFindingsReader();

    /// <inheritdoc />
    public string Name => "rule-based";

    /// <inheritdoc />
    public Task<ReportRewrite?> RewriteAsync(RewriteRequest request, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(Rewrite(request));
    }

    /// <summary>The synchronous form of <see cref="RewriteAsync"/>.</summary>
    public ReportRewrite? Rewrite(RewriteRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var before = _reader.Read(request.Report);
        var r = new PhantomRandom(request.Seed, (long)(StableHash(request.Report) & 0x7FFFFFFFFFFFFFFF), 17 + (ulong)request.Operation);
        var (after, edits, comparisons) = request.Operation switch
        {
            RewriteOperation.PartialOpposite => PartialOpposite(before, ref r),
            RewriteOperation.ChangeInSymptoms => ChangeInSymptoms(before, ref r),
            _ => throw new ArgumentOutOfRangeException(nameof(request), request.Operation, "unknown rewrite operation"),
        };
        if (edits.Count == 0) return null;
        var written = ReportWriter.Write(after, r.NextULong(), hedgeProbability: 0);
        string impression = comparisons.Count == 0 ? written.Impression : string.Join(" ", comparisons) + " " + written.Impression;
        string text = $"FINDINGS: {written.Findings}\nIMPRESSION: {impression}";
        var was = ReportFindingsReader.PresentObservations(before);
        var now = ReportFindingsReader.PresentObservations(after);
        var changes = Observations.All.Where(o => was.Contains(o) != now.Contains(o)).Select(o => new LabelChange(o, was.Contains(o), now.Contains(o))).ToList();
        return new ReportRewrite(request.Id, request.Operation, request.Report, text, Name, edits, changes);
    }

    /// <summary>A stable 64-bit hash of a text (the first 8 bytes of its SHA-256), independent of the process.</summary>
    public static ulong StableHash(string text) =>
        BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes(text)), 0);

    // ---------------- partial opposite ----------------

    private static (PhantomFindings, List<FindingEdit>, List<string>) PartialOpposite(PhantomFindings f, ref PhantomRandom r)
    {
        // Each candidate edits one finding; at most one edit per finding.
        var candidates = new List<(string Key, Func<PhantomFindings, PhantomRandom, (PhantomFindings, FindingEdit)> Apply)>();
        void Add(string key, Func<PhantomFindings, PhantomRandom, (PhantomFindings, FindingEdit)> apply) => candidates.Add((key, apply));

        if (f.Cardiomegaly is string cm)
        {
            Add("heart", (g, _) => (g with { Cardiomegaly = null }, new FindingEdit(Observation.Cardiomegaly, FindingEditKind.Presence, $"{cm} cardiomegaly", "absent")));
            Add("heart", (g, q) => { var o = Opposite(Severities, cm, ref q); return (g with { Cardiomegaly = o }, new FindingEdit(Observation.Cardiomegaly, FindingEditKind.Severity, $"{cm} cardiomegaly", $"{o} cardiomegaly")); });
        }
        else Add("heart", (g, q) => { var s = q.Pick(Severities); return (g with { Cardiomegaly = s }, new FindingEdit(Observation.Cardiomegaly, FindingEditKind.Presence, "absent", $"{s} cardiomegaly")); });

        if (f.Effusion is { } ef)
        {
            Add("effusion", (g, _) => (g with { Effusion = null }, new FindingEdit(Observation.PleuralEffusion, FindingEditKind.Presence, Describe(ef), "absent")));
            if (ef.Side != "both")
                Add("effusion", (g, _) => { var n = ef with { Side = Flip(ef.Side) }; return (g with { Effusion = n }, new FindingEdit(Observation.PleuralEffusion, FindingEditKind.Laterality, Describe(ef), Describe(n))); });
            Add("effusion", (g, q) => { var n = ef with { Size = Opposite(Sizes, ef.Size, ref q) }; return (g with { Effusion = n }, new FindingEdit(Observation.PleuralEffusion, FindingEditKind.Severity, Describe(ef), Describe(n))); });
        }
        else Add("effusion", (g, q) => { var n = new EffusionFinding(q.Pick(["left", "right", "both"]), q.Pick(Sizes)); return (g with { Effusion = n }, new FindingEdit(Observation.PleuralEffusion, FindingEditKind.Presence, "absent", Describe(n))); });

        if (f.Pneumothorax is { } px)
        {
            Add("pneumothorax", (g, _) => (g with { Pneumothorax = null }, new FindingEdit(Observation.Pneumothorax, FindingEditKind.Presence, Describe(px), "absent")));
            Add("pneumothorax", (g, _) => { var n = px with { Side = Flip(px.Side) }; return (g with { Pneumothorax = n }, new FindingEdit(Observation.Pneumothorax, FindingEditKind.Laterality, Describe(px), Describe(n))); });
            Add("pneumothorax", (g, q) => { var n = px with { Size = Opposite(Sizes, px.Size, ref q) }; return (g with { Pneumothorax = n }, new FindingEdit(Observation.Pneumothorax, FindingEditKind.Severity, Describe(px), Describe(n))); });
        }
        else Add("pneumothorax", (g, q) => { var n = new PneumothoraxFinding(q.Pick(["left", "right"]), q.Pick(Sizes)); return (g with { Pneumothorax = n }, new FindingEdit(Observation.Pneumothorax, FindingEditKind.Presence, "absent", Describe(n))); });

        if (f.Consolidation is { } co)
        {
            Add("consolidation", (g, _) => (g with { Consolidation = null }, new FindingEdit(Observation.Consolidation, FindingEditKind.Presence, $"{co.Lobe} consolidation", "absent")));
            Add("consolidation", (g, _) => { var n = co with { Lobe = FlipLobe(co.Lobe) }; return (g with { Consolidation = n }, new FindingEdit(Observation.Consolidation, FindingEditKind.Laterality, $"{co.Lobe} consolidation", $"{n.Lobe} consolidation")); });
        }
        else Add("consolidation", (g, q) => { var n = new ConsolidationFinding(q.Pick(PhantomSampler.Lobes), q.Pick(["yes", "no"])); return (g with { Consolidation = n }, new FindingEdit(Observation.Consolidation, FindingEditKind.Presence, "absent", $"{n.Lobe} consolidation")); });

        if (f.Edema is { } ed)
        {
            Add("edema", (g, _) => (g with { Edema = null }, new FindingEdit(Observation.Edema, FindingEditKind.Presence, $"{ed.Severity} pulmonary edema", "absent")));
            Add("edema", (g, q) => { var s = Opposite(Severities, ed.Severity, ref q); return (g with { Edema = new EdemaFinding(s) }, new FindingEdit(Observation.Edema, FindingEditKind.Severity, $"{ed.Severity} pulmonary edema", $"{s} pulmonary edema")); });
        }
        else Add("edema", (g, q) => { var s = q.Pick(Severities); return (g with { Edema = new EdemaFinding(s) }, new FindingEdit(Observation.Edema, FindingEditKind.Presence, "absent", $"{s} pulmonary edema")); });

        if (f.Lesion is { } le)
        {
            Add("lesion", (g, _) => (g with { Lesion = null }, new FindingEdit(Observation.LungLesion, FindingEditKind.Presence, Describe(le), "absent")));
            Add("lesion", (g, _) => { var n = le with { Location = FlipLobe(le.Location) }; return (g with { Lesion = n }, new FindingEdit(Observation.LungLesion, FindingEditKind.Laterality, Describe(le), Describe(n))); });
        }
        else Add("lesion", (g, q) => { var n = new LesionFinding(q.Pick(PhantomSampler.Lobes), q.Int(5, 45)); return (g with { Lesion = n }, new FindingEdit(Observation.LungLesion, FindingEditKind.Presence, "absent", Describe(n))); });

        if (f.Atelectasis is { } at)
        {
            Add("atelectasis", (g, _) => (g with { Atelectasis = null }, new FindingEdit(Observation.Atelectasis, FindingEditKind.Presence, Describe(at), "absent")));
            if (at.Location != "bibasilar")
                Add("atelectasis", (g, _) => { var n = at with { Location = at.Kind == "plate" ? (at.Location == "left base" ? "right base" : "left base") : FlipLobe(at.Location) }; return (g with { Atelectasis = n }, new FindingEdit(Observation.Atelectasis, FindingEditKind.Laterality, Describe(at), Describe(n))); });
        }
        else Add("atelectasis", (g, q) => { var n = new AtelectasisFinding("plate", q.Pick(["right base", "left base", "bibasilar"])); return (g with { Atelectasis = n }, new FindingEdit(Observation.Atelectasis, FindingEditKind.Presence, "absent", Describe(n))); });

        if (f.Fracture is { } fx)
        {
            Add("fracture", (g, _) => (g with { Fracture = null }, new FindingEdit(Observation.Fracture, FindingEditKind.Presence, Describe(fx), "absent")));
            Add("fracture", (g, _) => { var n = fx with { Side = Flip(fx.Side) }; return (g with { Fracture = n }, new FindingEdit(Observation.Fracture, FindingEditKind.Laterality, Describe(fx), Describe(n))); });
        }
        else Add("fracture", (g, q) => { var n = new FractureFinding(q.Pick(["left", "right"]), q.Int(3, 9)); return (g with { Fracture = n }, new FindingEdit(Observation.Fracture, FindingEditKind.Presence, "absent", Describe(n))); });

        int wanted = r.Chance(0.5) ? 1 : 2;
        var edits = new List<FindingEdit>();
        var used = new HashSet<string>();
        var g = f;
        while (edits.Count < wanted)
        {
            var open = candidates.Where(c => !used.Contains(c.Key)).ToList();
            if (open.Count == 0) break;
            var pick = open[r.Int(0, open.Count - 1)];
            used.Add(pick.Key);
            var sub = new PhantomRandom((long)r.NextULong(), 0, 5);
            (g, var edit) = pick.Apply(g, sub);
            edits.Add(edit);
        }
        // Enlarged cardiomediastinum is written only beside cardiomegaly or alone; keep it as read.
        return (g, edits, []);
    }

    // ---------------- change in symptoms ----------------

    private static (PhantomFindings, List<FindingEdit>, List<string>) ChangeInSymptoms(PhantomFindings f, ref PhantomRandom r)
    {
        var candidates = new List<(PhantomFindings After, FindingEdit Edit, string Comparison)>();
        if (f.Cardiomegaly is string cm)
        {
            int i = Array.IndexOf(Severities, cm);
            if (i < 2) candidates.Add((f with { Cardiomegaly = Severities[i + 1] }, new FindingEdit(Observation.Cardiomegaly, FindingEditKind.Progression, $"{cm} cardiomegaly", $"{Severities[i + 1]} cardiomegaly"), "Interval worsening of cardiomegaly."));
            if (i > 0) candidates.Add((f with { Cardiomegaly = Severities[i - 1] }, new FindingEdit(Observation.Cardiomegaly, FindingEditKind.Regression, $"{cm} cardiomegaly", $"{Severities[i - 1]} cardiomegaly"), "Interval improvement in cardiomegaly."));
        }
        if (f.Effusion is { } ef)
        {
            int i = Array.IndexOf(Sizes, ef.Size);
            string what = ef.Side == "both" ? "bilateral pleural effusions" : $"{ef.Side} pleural effusion";
            if (i < 2) { var n = ef with { Size = Sizes[i + 1] }; candidates.Add((f with { Effusion = n }, new FindingEdit(Observation.PleuralEffusion, FindingEditKind.Progression, Describe(ef), Describe(n)), $"Interval increase in the {what}.")); }
            if (i > 0) { var n = ef with { Size = Sizes[i - 1] }; candidates.Add((f with { Effusion = n }, new FindingEdit(Observation.PleuralEffusion, FindingEditKind.Regression, Describe(ef), Describe(n)), $"Interval decrease in the {what}.")); }
            else candidates.Add((f with { Effusion = null }, new FindingEdit(Observation.PleuralEffusion, FindingEditKind.Regression, Describe(ef), "resolved"), $"Interval resolution of the {what}."));
        }
        if (f.Pneumothorax is { } px)
        {
            int i = Array.IndexOf(Sizes, px.Size);
            if (i < 2) { var n = px with { Size = Sizes[i + 1] }; candidates.Add((f with { Pneumothorax = n }, new FindingEdit(Observation.Pneumothorax, FindingEditKind.Progression, Describe(px), Describe(n)), $"Interval increase in the {px.Side} pneumothorax.")); }
            if (i > 0) { var n = px with { Size = Sizes[i - 1] }; candidates.Add((f with { Pneumothorax = n }, new FindingEdit(Observation.Pneumothorax, FindingEditKind.Regression, Describe(px), Describe(n)), $"Interval decrease in the {px.Side} pneumothorax.")); }
            else candidates.Add((f with { Pneumothorax = null }, new FindingEdit(Observation.Pneumothorax, FindingEditKind.Regression, Describe(px), "resolved"), $"Interval resolution of the {px.Side} pneumothorax."));
        }
        if (f.Edema is { } ed)
        {
            int i = Array.IndexOf(Severities, ed.Severity);
            if (i < 2) candidates.Add((f with { Edema = new EdemaFinding(Severities[i + 1]) }, new FindingEdit(Observation.Edema, FindingEditKind.Progression, $"{ed.Severity} pulmonary edema", $"{Severities[i + 1]} pulmonary edema"), "Interval worsening of pulmonary edema."));
            if (i > 0) candidates.Add((f with { Edema = new EdemaFinding(Severities[i - 1]) }, new FindingEdit(Observation.Edema, FindingEditKind.Regression, $"{ed.Severity} pulmonary edema", $"{Severities[i - 1]} pulmonary edema"), "Interval improvement in pulmonary edema."));
            else candidates.Add((f with { Edema = null }, new FindingEdit(Observation.Edema, FindingEditKind.Regression, $"{ed.Severity} pulmonary edema", "resolved"), "Interval resolution of pulmonary edema."));
        }
        if (f.Consolidation is { } co)
            candidates.Add((f with { Consolidation = null }, new FindingEdit(Observation.Consolidation, FindingEditKind.Regression, $"{co.Lobe} consolidation", "resolved"), $"Interval resolution of the {co.Lobe} consolidation."));
        if (f.Lesion is { } le)
        {
            var grown = le with { SizeMm = Math.Min(120, (int)Math.Round(le.SizeMm * 1.5)) };
            var shrunk = le with { SizeMm = Math.Max(3, (int)Math.Round(le.SizeMm * 0.6)) };
            string noun = le.IsMass ? "mass" : "nodule";
            candidates.Add((f with { Lesion = grown }, new FindingEdit(Observation.LungLesion, FindingEditKind.Progression, Describe(le), Describe(grown)), $"Interval growth of the {le.Location} {noun}."));
            if (shrunk.SizeMm < le.SizeMm)
                candidates.Add((f with { Lesion = shrunk }, new FindingEdit(Observation.LungLesion, FindingEditKind.Regression, Describe(le), Describe(shrunk)), $"Interval decrease in size of the {le.Location} {noun}."));
        }
        if (f.Atelectasis is { } at)
            candidates.Add((f with { Atelectasis = null }, new FindingEdit(Observation.Atelectasis, FindingEditKind.Regression, Describe(at), "resolved"), "Interval resolution of atelectasis."));
        if (candidates.Count == 0) return (f, [], []);
        var pick = candidates[r.Int(0, candidates.Count - 1)];
        return (pick.After, [pick.Edit], [pick.Comparison]);
    }

    // ---------------- helpers ----------------

    private static string Opposite(string[] scale, string value, ref PhantomRandom r)
    {
        int i = Array.IndexOf(scale, value);
        return i switch { 0 => scale[2], 2 => scale[0], _ => r.Chance(0.5) ? scale[0] : scale[2] };
    }

    private static string Flip(string side) => side switch { "left" => "right", "right" => "left", _ => side };

    /// <summary>The lobe on the other side (right middle lobe and lingula are each other's opposite).</summary>
    internal static string FlipLobe(string lobe) => lobe switch
    {
        "right upper lobe" => "left upper lobe", "left upper lobe" => "right upper lobe",
        "right middle lobe" => "lingula", "lingula" => "right middle lobe",
        "right lower lobe" => "left lower lobe", "left lower lobe" => "right lower lobe",
        _ => lobe.StartsWith("right", StringComparison.Ordinal) ? "left" + lobe[5..] : lobe.StartsWith("left", StringComparison.Ordinal) ? "right" + lobe[4..] : lobe,
    };

    private static string Describe(EffusionFinding e) => e.Side == "both" ? $"{e.Size} bilateral pleural effusions" : $"{e.Size} {e.Side} pleural effusion";
    private static string Describe(PneumothoraxFinding p) => $"{p.Size} {p.Side} pneumothorax";
    private static string Describe(LesionFinding l) => $"{l.SizeMm} mm {l.Location} {(l.IsMass ? "mass" : "nodule")}";
    private static string Describe(AtelectasisFinding a) => a.Kind == "plate" ? $"plate-like atelectasis ({a.Location})" : $"{a.Location} atelectasis";
    private static string Describe(FractureFinding f) => $"{f.Side} rib {f.Rib} fracture";

    /// <summary>
    /// The finding of <paramref name="o"/> in <paramref name="f"/> in the words of <see cref="FindingEdit.From"/> and
    /// <see cref="FindingEdit.To"/> ("small left pleural effusion"), "absent" when there is none, null for an observation
    /// with no finding of its own (No Finding, Lung Opacity, Pneumonia, Pleural Other, Enlarged Cardiomediastinum, Support Devices).
    /// </summary>
    public static string? Describe(PhantomFindings f, Observation o)
    {
        ArgumentNullException.ThrowIfNull(f);
        return o switch
        {
            Observation.Cardiomegaly => f.Cardiomegaly is string c ? $"{c} cardiomegaly" : "absent",
            Observation.PleuralEffusion => f.Effusion is { } e ? Describe(e) : "absent",
            Observation.Pneumothorax => f.Pneumothorax is { } p ? Describe(p) : "absent",
            Observation.Consolidation => f.Consolidation is { } c ? $"{c.Lobe} consolidation" : "absent",
            Observation.Edema => f.Edema is { } e ? $"{e.Severity} pulmonary edema" : "absent",
            Observation.LungLesion => f.Lesion is { } l ? Describe(l) : "absent",
            Observation.Atelectasis => f.Atelectasis is { } a ? Describe(a) : "absent",
            Observation.Fracture => f.Fracture is { } x ? Describe(x) : "absent",
            _ => null,
        };
    }
}
