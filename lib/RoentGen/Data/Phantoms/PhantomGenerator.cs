using System.Globalization;
using RoentGen.Data.Reports;

namespace RoentGen.Data.Phantoms;

/// <summary>
/// Generates procedural chest X-rays with masks, attributes, a radiology report and its CheXpert labels.
/// Deterministic: the same options and index give identical pixels and text, whatever the thread count
/// and whichever other indices were generated (every random number is a hash of seed, index and counter).
/// </summary>
public sealed class PhantomGenerator
{
    /// <summary>Creates a generator; the options are validated.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public PhantomGenerator(PhantomOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    /// <summary>The world's settings.</summary>
    public PhantomOptions Options { get; }

    /// <summary>Generates case <paramref name="index"/> (0 or more).</summary>
    public PhantomCase Generate(int index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "case index must be 0 or more");
        var spec = PhantomSampler.Sample(Options, index);
        int n = Options.Size;
        var res = new PhantomRenderer(spec, n).Render();
        var masks = new Dictionary<string, GrayImage>();
        foreach (var (k, m) in res.Masks) masks[k] = new GrayImage(n, n, m);
        var f = spec.Findings;
        var report = WriteReport(f, index);
        var present = PresentObservations(f);
        return new PhantomCase($"phantom_{index:D6}", $"pp{index:D6}", new GrayImage(n, n, res.Image), masks, report.Labels,
            present, Attributes(spec), spec.Sex, spec.Age, spec.View, report.Findings, report.Impression, f);
    }

    /// <summary>
    /// Case <paramref name="index"/> (its patient, anatomy and projection) drawn with the findings of
    /// <paramref name="truth"/> instead of its own: the phantom oracle of the synthetic-data study renders an edited
    /// condition (a finding moved, resized or flipped) this way. Only edits of the case's own findings are drawn: a lesion
    /// or consolidation is centred on <paramref name="lesionCentre"/> / <paramref name="consolidationCentre"/> (image
    /// pixels at <see cref="PhantomOptions.Size"/>) when given, else in its named lobe's place of this case; a changed side of
    /// an effusion, pneumothorax, fracture or atelectasis is mirrored; a finding absent from the case is not added, and
    /// one absent from <paramref name="truth"/> is not drawn. The report is written from <paramref name="truth"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The truth adds a finding the case does not have (the message names it).</exception>
    public PhantomCase GenerateEdited(int index, PhantomFindings truth, (double X, double Y)? lesionCentre = null, (double X, double Y)? consolidationCentre = null)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "case index must be 0 or more");
        ArgumentNullException.ThrowIfNull(truth);
        var spec = PhantomSampler.Sample(Options, index);
        PhantomEdits.Apply(spec, truth, Options.Size, lesionCentre, consolidationCentre, $"phantom_{index:D6}");
        int n = Options.Size;
        var res = new PhantomRenderer(spec, n).Render();
        var masks = new Dictionary<string, GrayImage>();
        foreach (var (k, m) in res.Masks) masks[k] = new GrayImage(n, n, m);
        var report = WriteReport(truth, index);
        return new PhantomCase($"phantom_{index:D6}", $"pp{index:D6}", new GrayImage(n, n, res.Image), masks, report.Labels,
            PresentObservations(truth), Attributes(spec), spec.Sex, spec.Age, spec.View, report.Findings, report.Impression, truth);
    }

    /// <summary>
    /// The truth and report of case <paramref name="index"/> without drawing the image (fast; identical to
    /// <see cref="PhantomCase.Truth"/>, <see cref="PhantomCase.Findings"/>, <see cref="PhantomCase.Impression"/> and <see cref="PhantomCase.Labels"/> of <see cref="Generate(int)"/>).
    /// </summary>
    public (PhantomFindings Truth, WrittenReport Report) GenerateReport(int index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "case index must be 0 or more");
        var spec = PhantomSampler.Sample(Options, index);
        return (spec.Findings, WriteReport(spec.Findings, index));
    }

    private WrittenReport WriteReport(PhantomFindings f, int index) =>
        ReportWriter.Write(f, PhantomRandom.Mix((ulong)Options.Seed * 31 + (ulong)index + 0x5EED), Options.HedgeProbability, Options.ReportStyle);

    /// <summary>Generates <paramref name="count"/> cases from <paramref name="start"/>, in parallel over cores; the result is in index order and identical to calling <see cref="Generate(int)"/> one by one.</summary>
    public IReadOnlyList<PhantomCase> Generate(int start, int count, int? maxDegreeOfParallelism = null)
    {
        if (start < 0) throw new ArgumentOutOfRangeException(nameof(start), start, "start must be 0 or more");
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be 0 or more");
        var result = new PhantomCase[count];
        var po = new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism ?? Environment.ProcessorCount };
        Parallel.For(0, count, po, i => result[i] = Generate(start + i));
        return result;
    }

    /// <summary>The observations truly drawn, in CheXpert order.</summary>
    internal static IReadOnlyList<Observation> PresentObservations(PhantomFindings f)
    {
        var list = new List<Observation>();
        if (f.EnlargedCardiomediastinum) list.Add(Observation.EnlargedCardiomediastinum);
        if (f.Cardiomegaly is not null) list.Add(Observation.Cardiomegaly);
        if (f.Consolidation is not null || f.Edema is not null) list.Add(Observation.LungOpacity);
        if (f.Lesion is not null) list.Add(Observation.LungLesion);
        if (f.Edema is not null) list.Add(Observation.Edema);
        if (f.Consolidation is not null) list.Add(Observation.Consolidation);
        if (f.Consolidation is { Pneumonia: not "no" }) list.Add(Observation.Pneumonia);
        if (f.Atelectasis is not null) list.Add(Observation.Atelectasis);
        if (f.Pneumothorax is not null) list.Add(Observation.Pneumothorax);
        if (f.Effusion is not null) list.Add(Observation.PleuralEffusion);
        if (f.Fracture is not null) list.Add(Observation.Fracture);
        if (f.Devices is not null) list.Add(Observation.SupportDevices);
        if (list.All(o => o == Observation.SupportDevices)) list.Insert(0, Observation.NoFinding);
        return list;
    }

    private static Dictionary<string, string> Attributes(PhantomSpec s)
    {
        static string F(double x) => x.ToString("0.###", CultureInfo.InvariantCulture);
        var f = s.Findings;
        var a = new Dictionary<string, string>
        {
            ["ctr"] = F(f.Ctr),
            ["habitus"] = s.Habitus,
            ["rotation"] = F(Math.Round(s.Rotation, 3)),
            ["exposure"] = F(Math.Round(s.Gain, 3)),
            ["inspiration_ribs"] = ((int)Math.Floor((s.DomeR - s.VApex + 0.005) / s.RibSpacing) + 1).ToString(CultureInfo.InvariantCulture),
        };
        if (f.Cardiomegaly is not null) a["cardiomegaly_severity"] = f.Cardiomegaly;
        if (f.EnlargedCardiomediastinum) a["mediastinum"] = "widened";
        if (f.Effusion is not null) { a["effusion_side"] = f.Effusion.Side; a["effusion_size"] = f.Effusion.Size; }
        if (f.Pneumothorax is not null) { a["pneumothorax_side"] = f.Pneumothorax.Side; a["pneumothorax_size"] = f.Pneumothorax.Size; }
        if (f.Consolidation is not null) { a["consolidation_lobe"] = f.Consolidation.Lobe; a["pneumonia"] = f.Consolidation.Pneumonia; }
        if (f.Edema is not null) a["edema_severity"] = f.Edema.Severity;
        if (f.Lesion is not null)
        {
            a["lesion_kind"] = f.Lesion.IsMass ? "mass" : "nodule";
            a["nodule_location"] = f.Lesion.Location;
            a["nodule_size_mm"] = f.Lesion.SizeMm.ToString(CultureInfo.InvariantCulture);
        }
        if (f.Atelectasis is not null) { a["atelectasis_type"] = f.Atelectasis.Kind; a["atelectasis_location"] = f.Atelectasis.Location; }
        if (f.Fracture is not null) { a["fracture_side"] = f.Fracture.Side; a["fracture_rib"] = f.Fracture.Rib.ToString(CultureInfo.InvariantCulture); }
        if (f.Devices is { } d)
        {
            a["devices"] = string.Join("|", d.Names);
            if (d.EttCmAboveCarina is double e) a["ett_cm_above_carina"] = F(e);
            if (d.CvcTip is not null) { a["cvc_access"] = $"{d.CvcSide} {d.CvcAccess}"; a["cvc_tip"] = d.CvcTip; }
            if (d.PacemakerLeads is int l) a["pacemaker_leads"] = l.ToString(CultureInfo.InvariantCulture);
        }
        return a;
    }

    /// <summary>Names of all attribute keys a case can have, in a fixed order (for CSV columns).</summary>
    public static IReadOnlyList<string> AttributeKeys { get; } =
    [
        "ctr", "cardiomegaly_severity", "mediastinum", "effusion_side", "effusion_size", "pneumothorax_side", "pneumothorax_size",
        "consolidation_lobe", "pneumonia", "edema_severity", "lesion_kind", "nodule_location", "nodule_size_mm", "atelectasis_type",
        "atelectasis_location", "fracture_side", "fracture_rib", "devices", "ett_cm_above_carina", "cvc_access", "cvc_tip",
        "pacemaker_leads", "habitus", "inspiration_ribs", "rotation", "exposure",
    ];
}
