using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;

namespace RoentGen.Synthetic;

/// <summary>
/// What a mask-conditioned generator is given: masks by name (as in <see cref="PhantomCase.Masks"/>: "lungs", "heart",
/// one per finding), the structured truth, and the report written from it with its CheXpert labels. Made from a
/// phantom case and changed by <see cref="FindingEdits"/>, which keep the three in agreement.
/// </summary>
public sealed record MaskCondition
{
    /// <summary>Id, e.g. "phantom_000042" or "phantom_000042+flip(nodule)".</summary>
    public required string Id { get; init; }

    /// <summary>Binary masks by name, all the same size.</summary>
    public required IReadOnlyDictionary<string, GrayImage> Masks { get; init; }

    /// <summary>What the masks show.</summary>
    public required PhantomFindings Truth { get; init; }

    /// <summary>The report of <see cref="Truth"/> and its labels (what <see cref="ReportLabeler"/> reads from it).</summary>
    public required WrittenReport Report { get; init; }

    /// <summary>The edits made since the case, in order (e.g. "flip nodule: right upper lobe -> left upper lobe").</summary>
    public IReadOnlyList<string> Edits { get; init; } = [];

    /// <summary>A case's masks, truth and report, unchanged.</summary>
    public static MaskCondition FromCase(PhantomCase phantom)
    {
        ArgumentNullException.ThrowIfNull(phantom);
        return new MaskCondition
        {
            Id = phantom.Id,
            Masks = phantom.Masks,
            Truth = phantom.Truth,
            Report = new WrittenReport(phantom.Findings, phantom.Impression, phantom.Labels),
        };
    }
}

/// <summary>
/// New, plausible conditions made from a case by moving its findings: affine moves and resizing of a lung lesion or a
/// consolidation inside the lungs, elastic deformation of any finding, and flipping a finding to the other side. Each
/// edit changes the finding's mask and its truth (side, lobe, size) together and rewrites the report with
/// <see cref="ReportWriter"/>, so that the labels, the text and what <see cref="ReportLabeler"/> reads from the text
/// agree. Sides are the patient's: the patient's right is the image's left.
/// </summary>
public static class FindingEdits
{
    /// <summary>Findings whose masks lie inside the lungs (their edits are kept inside the "lungs" mask).</summary>
    public static IReadOnlyList<string> LungFindings { get; } = ["nodule", "mass", "consolidation", "atelectasis", "edema"];

    /// <summary>Findings that <see cref="Flip"/> can move to the other side.</summary>
    public static IReadOnlyList<string> Flippable { get; } = ["nodule", "mass", "consolidation", "atelectasis", "pleural_effusion", "pneumothorax", "fracture"];

    /// <summary>
    /// The lobe at an image point, from the lung mask: the side from the lungs' midline (<see cref="Midline"/>; image
    /// left = patient's right); the upper lobe in the upper half of that lung's height; below that, the middle lobe
    /// (lingula on the left) when the point is nearer the midline than half of that lung's greatest distance from it,
    /// else the lower lobe. A coarse frontal-view rule (lobes overlap on a radiograph), used to name where a moved
    /// finding now is.
    /// </summary>
    public static (string Side, string Lobe) Locate(GrayImage lungs, double x, double y)
    {
        ArgumentNullException.ThrowIfNull(lungs);
        double mid = Midline(lungs);
        bool right = x < mid; // patient's right = image left
        int top = int.MaxValue, bottom = -1;
        double reach = 0;
        for (int yy = 0; yy < lungs.Height; yy++)
            for (int xx = 0; xx < lungs.Width; xx++)
                if (lungs[xx, yy] >= 0.5f && (xx < mid) == right)
                {
                    top = Math.Min(top, yy); bottom = Math.Max(bottom, yy);
                    reach = Math.Max(reach, Math.Abs(xx - mid));
                }
        string side = right ? "right" : "left";
        if (bottom < 0) return (side, side + " lower lobe");
        double t = (y - top) / Math.Max(1.0, bottom - top);
        if (t < 0.5) return (side, side + " upper lobe");
        bool medial = Math.Abs(x - mid) < 0.5 * reach;
        return medial ? (side, right ? "right middle lobe" : "lingula") : (side, side + " lower lobe");
    }

    /// <summary>The vertical line halfway between the outer edges of the lungs (a half-pixel position), or the image's middle when the mask is empty.</summary>
    public static double Midline(GrayImage lungs)
    {
        ArgumentNullException.ThrowIfNull(lungs);
        int x0 = int.MaxValue, x1 = -1;
        for (int y = 0; y < lungs.Height; y++)
            for (int x = 0; x < lungs.Width; x++)
                if (lungs.Pixels[y * lungs.Width + x] >= 0.5f) { x0 = Math.Min(x0, x); x1 = Math.Max(x1, x); }
        return x1 < 0 ? (lungs.Width - 1) / 2.0 : (x0 + x1) / 2.0;
    }

    /// <summary>
    /// Moves a finding to the other side: its mask mirrored about the lungs' midline (then, for a finding inside the
    /// lungs, shifted by the fewest pixels that bring it inside the other lung, and cut to the lungs), its side or lobe
    /// swapped in the truth (right upper lobe ↔ left upper lobe, right middle lobe ↔ lingula, right lower lobe ↔ left
    /// lower lobe; base and rib sides likewise), and the report rewritten.
    /// </summary>
    /// <param name="condition">The condition to change.</param>
    /// <param name="finding">A mask name of <see cref="Flippable"/> that the condition has.</param>
    /// <param name="seed">Seed of the new report's wording.</param>
    /// <exception cref="ArgumentException">The condition has no such finding, it cannot be flipped (bilateral), or has no "lungs" mask.</exception>
    public static MaskCondition Flip(MaskCondition condition, string finding, ulong seed)
    {
        var (mask, lungs) = Parts(condition, finding);
        if (!Flippable.Contains(finding))
            throw new ArgumentException($"finding '{finding}' cannot be flipped; expected one of {string.Join(", ", Flippable)}", nameof(finding));
        var f = condition.Truth;
        string from, to;
        PhantomFindings truth;
        switch (finding)
        {
            case "nodule" or "mass":
                from = f.Lesion!.Location; to = MirrorLobe(from);
                truth = f with { Lesion = f.Lesion with { Location = to } };
                break;
            case "consolidation":
                from = f.Consolidation!.Lobe; to = MirrorLobe(from);
                truth = f with { Consolidation = f.Consolidation with { Lobe = to } };
                break;
            case "atelectasis":
                from = f.Atelectasis!.Location;
                to = from switch
                {
                    "bibasilar" => throw new ArgumentException($"{condition.Id}: bibasilar atelectasis is on both sides; there is no other side to flip it to", nameof(finding)),
                    "right base" => "left base",
                    "left base" => "right base",
                    _ => MirrorLobe(from),
                };
                truth = f with { Atelectasis = f.Atelectasis with { Location = to } };
                break;
            case "pleural_effusion":
                from = f.Effusion!.Side;
                if (from == "both") throw new ArgumentException($"{condition.Id}: the pleural effusion is bilateral; there is no other side to flip it to", nameof(finding));
                to = OtherSide(from);
                truth = f with { Effusion = f.Effusion with { Side = to } };
                break;
            case "pneumothorax":
                from = f.Pneumothorax!.Side; to = OtherSide(from);
                truth = f with { Pneumothorax = f.Pneumothorax with { Side = to } };
                break;
            default: // fracture
                from = f.Fracture!.Side; to = OtherSide(from);
                truth = f with { Fracture = f.Fracture with { Side = to } };
                break;
        }
        var mirrored = MaskTransforms.Mirror(mask, Midline(lungs));
        if (LungFindings.Contains(finding))
        {
            var (dx, dy) = MaskTransforms.ShiftInto(mirrored, lungs, maxShift: Math.Max(2, lungs.Width / 6));
            mirrored = MaskTransforms.Intersect(MaskTransforms.Shift(mirrored, dx, dy), lungs);
        }
        return Rebuild(condition, finding, finding, mirrored, truth, seed, $"flip {finding}: {from} -> {to}");
    }

    /// <summary>
    /// Moves, turns and resizes a lung lesion (nodule or mass) or a consolidation inside the lungs
    /// (<see cref="MaskTransforms.AffineWithin"/>: nudged, or the transform scaled back, when it would leave them), then names its
    /// new lobe with <see cref="Locate"/>; a lesion's size in mm scales with the applied scale (a nodule that reaches
    /// 30 mm becomes a mass and its mask is renamed, and back), and the report is rewritten.
    /// </summary>
    /// <exception cref="ArgumentException">The condition has no such finding, or the finding is not a lesion or consolidation.</exception>
    public static MaskCondition Move(MaskCondition condition, string finding, MaskAffine transform, ulong seed)
    {
        var (mask, lungs) = Parts(condition, finding);
        if (finding is not ("nodule" or "mass" or "consolidation"))
            throw new ArgumentException($"finding '{finding}' cannot be moved; expected nodule, mass or consolidation (use Deform or Flip for the others)", nameof(finding));
        var fit = MaskTransforms.AffineWithin(mask, lungs, transform);
        if (MaskTransforms.Area(fit.Mask) == 0)
            throw new ArgumentException($"{condition.Id}: moving {finding} by {transform} leaves nothing of it inside the lungs", nameof(transform));
        var (cx, cy) = MaskTransforms.Centroid(fit.Mask)!.Value;
        var (_, lobe) = Locate(lungs, cx, cy);
        var f = condition.Truth;
        string newName = finding;
        PhantomFindings truth;
        string what;
        if (finding == "consolidation")
        {
            truth = f with { Consolidation = f.Consolidation! with { Lobe = lobe } };
            what = $"move consolidation: {f.Consolidation!.Lobe} -> {lobe}";
        }
        else
        {
            int mm = Math.Max(3, (int)Math.Round(f.Lesion!.SizeMm * fit.Applied.Scale));
            var lesion = new LesionFinding(lobe, mm);
            newName = lesion.IsMass ? "mass" : "nodule";
            truth = f with { Lesion = lesion };
            what = $"move {finding}: {f.Lesion.Location} {f.Lesion.SizeMm} mm -> {lobe} {mm} mm";
        }
        return Rebuild(condition, finding, newName, fit.Mask, truth, seed, what + $" ({Describe(fit.Applied)})");
    }

    /// <summary>Resizes a lung lesion or consolidation about its centroid (a <see cref="Move"/> with only a scale).</summary>
    public static MaskCondition Resize(MaskCondition condition, string finding, double scale, ulong seed) =>
        Move(condition, finding, new MaskAffine(Scale: scale), seed);

    /// <summary>
    /// Deforms a finding's mask elastically (<see cref="MaskTransforms.Elastic"/>; kept inside the lungs for
    /// <see cref="LungFindings"/>). Its side, lobe and size are taken as unchanged, so the report stays as it was.
    /// </summary>
    public static MaskCondition Deform(MaskCondition condition, string finding, ElasticOptions options, ulong seed)
    {
        var (mask, lungs) = Parts(condition, finding);
        var warped = MaskTransforms.Elastic(mask, options, seed, LungFindings.Contains(finding) ? lungs : null);
        return condition with
        {
            Id = $"{condition.Id}+deform({finding})",
            Masks = With(condition.Masks, finding, finding, warped),
            Edits = [.. condition.Edits, $"deform {finding} (elastic alpha {options.Alpha}, sigma {options.Sigma}, seed {seed})"],
        };
    }

    private static (GrayImage Mask, GrayImage Lungs) Parts(MaskCondition condition, string finding)
    {
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentException.ThrowIfNullOrEmpty(finding);
        if (!condition.Masks.TryGetValue("lungs", out var lungs))
            throw new ArgumentException($"{condition.Id} has no 'lungs' mask; expected one to place findings in", nameof(condition));
        if (!condition.Masks.TryGetValue(finding, out var mask))
            throw new ArgumentException($"{condition.Id} has no '{finding}' mask; it has: {string.Join(", ", condition.Masks.Keys)}", nameof(finding));
        return (mask, lungs);
    }

    private static MaskCondition Rebuild(MaskCondition c, string oldName, string newName, GrayImage mask, PhantomFindings truth, ulong seed, string edit)
    {
        var report = ReportWriter.Write(truth, seed);
        string op = edit.Split(' ')[0];
        return c with
        {
            Id = $"{c.Id}+{op}({oldName})",
            Masks = With(c.Masks, oldName, newName, mask),
            Truth = truth,
            Report = report,
            Edits = [.. c.Edits, edit],
        };
    }

    private static Dictionary<string, GrayImage> With(IReadOnlyDictionary<string, GrayImage> masks, string oldName, string newName, GrayImage mask)
    {
        var d = new Dictionary<string, GrayImage>(StringComparer.Ordinal);
        foreach (var (k, v) in masks) if (k != oldName) d[k] = v;
        d[newName] = mask;
        return d;
    }

    private static string Describe(MaskAffine t) =>
        FormattableString.Invariant($"shift {t.ShiftX:0.#},{t.ShiftY:0.#} px, rotate {t.RotationDegrees:0.#} deg, scale {t.Scale:0.###}");

    private static string OtherSide(string side) => side switch
    {
        "right" => "left",
        "left" => "right",
        _ => throw new ArgumentException($"side '{side}' is not left or right"),
    };

    /// <summary>The lobe in the same place on the other side.</summary>
    public static string MirrorLobe(string lobe) => lobe switch
    {
        "right upper lobe" => "left upper lobe",
        "left upper lobe" => "right upper lobe",
        "right middle lobe" => "lingula",
        "lingula" => "right middle lobe",
        "right lower lobe" => "left lower lobe",
        "left lower lobe" => "right lower lobe",
        _ => throw new ArgumentException($"lobe '{lobe}' is not one of the six phantom lobes", nameof(lobe)),
    };
}
