namespace RoentGen.Data.Phantoms;

/// <summary>A pleural effusion: side (left, right, both) and size (small, moderate, large).</summary>
public sealed record EffusionFinding(string Side, string Size);
/// <summary>A pneumothorax: side (left, right) and size (small, moderate, large).</summary>
public sealed record PneumothoraxFinding(string Side, string Size);
/// <summary>A lobar consolidation; <paramref name="Pneumonia"/> says whether the report calls it pneumonia.</summary>
/// <param name="Lobe">right upper lobe, right middle lobe, right lower lobe, left upper lobe, lingula, left lower lobe.</param>
/// <param name="Pneumonia">"yes" (called pneumonia), "possible" (suspected) or "no".</param>
public sealed record ConsolidationFinding(string Lobe, string Pneumonia);
/// <summary>Pulmonary edema of a severity (mild, moderate, severe).</summary>
public sealed record EdemaFinding(string Severity);
/// <summary>A nodule (under 30 mm) or mass (30 mm or more) in a lobe.</summary>
public sealed record LesionFinding(string Location, int SizeMm)
{
    /// <summary>True for a mass (30 mm or more).</summary>
    public bool IsMass => SizeMm >= 30;
}
/// <summary>Atelectasis: Kind plate (plate-like, at a base or both bases) or lobar; Location names where.</summary>
public sealed record AtelectasisFinding(string Kind, string Location);
/// <summary>A rib fracture: side (left, right) and posterior rib number (1..10).</summary>
public sealed record FractureFinding(string Side, int Rib);
/// <summary>
/// Support devices present: an endotracheal tube (tip in cm above the carina), a central venous catheter
/// (access side and vein, tip position), a pacemaker (number of leads). Null members are absent.
/// </summary>
public sealed record DevicesFinding(double? EttCmAboveCarina, string? CvcSide, string? CvcAccess, string? CvcTip, int? PacemakerLeads)
{
    /// <summary>Device short names present, e.g. ["ett", "cvc"].</summary>
    public IReadOnlyList<string> Names =>
        new[] { EttCmAboveCarina is null ? null : "ett", CvcTip is null ? null : "cvc", PacemakerLeads is null ? null : "pacemaker" }
            .Where(n => n is not null).Select(n => n!).ToArray();
}

/// <summary>
/// What a phantom case truly shows, the input of <see cref="Reports.ReportWriter"/>. Null means absent.
/// Patient attributes (sex, age, habitus) are deliberately not here: reports never state them.
/// </summary>
public sealed record PhantomFindings
{
    /// <summary>Cardiothoracic ratio as drawn.</summary>
    public double Ctr { get; init; }
    /// <summary>Cardiomegaly severity (mild, moderate, severe), or null when the heart is normal.</summary>
    public string? Cardiomegaly { get; init; }
    /// <summary>Widened upper mediastinum / enlarged cardiomediastinal silhouette.</summary>
    public bool EnlargedCardiomediastinum { get; init; }
    /// <summary>Pleural effusion, or null.</summary>
    public EffusionFinding? Effusion { get; init; }
    /// <summary>Pneumothorax, or null.</summary>
    public PneumothoraxFinding? Pneumothorax { get; init; }
    /// <summary>Consolidation, or null.</summary>
    public ConsolidationFinding? Consolidation { get; init; }
    /// <summary>Edema, or null.</summary>
    public EdemaFinding? Edema { get; init; }
    /// <summary>Nodule or mass, or null.</summary>
    public LesionFinding? Lesion { get; init; }
    /// <summary>Atelectasis, or null.</summary>
    public AtelectasisFinding? Atelectasis { get; init; }
    /// <summary>Rib fracture, or null.</summary>
    public FractureFinding? Fracture { get; init; }
    /// <summary>Support devices, or null.</summary>
    public DevicesFinding? Devices { get; init; }

    /// <summary>True when nothing is present.</summary>
    public bool IsNormal => Cardiomegaly is null && !EnlargedCardiomediastinum && Effusion is null && Pneumothorax is null
        && Consolidation is null && Edema is null && Lesion is null && Atelectasis is null && Fracture is null && Devices is null;
}
