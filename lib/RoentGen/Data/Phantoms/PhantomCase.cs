namespace RoentGen.Data.Phantoms;

/// <summary>
/// One generated chest X-ray with its ground truth.
/// <para>
/// <see cref="Labels"/> are the CheXpert labels of <see cref="Report"/>, exactly what
/// <see cref="Reports.ReportLabeler"/> extracts from it: a finding drawn in the image is Positive (1), or
/// Uncertain (-1) when the report hedges it (only subtle findings are hedged; pneumonia may be "concerning
/// for"); an absent observation that the report explicitly negates ("No pneumothorax.") is Negative (0);
/// every other observation is NotMentioned (blank). No Finding follows the CheXpert rule: Positive when no
/// observation other than Support Devices is Positive or Uncertain, else NotMentioned. Pleural Other is
/// never drawn. <see cref="Present"/> lists what the image truly shows, hedged or not.
/// </para>
/// </summary>
public sealed class PhantomCase
{
    internal PhantomCase(string id, string patientId, GrayImage image, IReadOnlyDictionary<string, GrayImage> masks, CxrLabels labels,
        IReadOnlyList<Observation> present, IReadOnlyDictionary<string, string> attributes, string sex, int age, string view,
        string findings, string impression, PhantomFindings truth)
    {
        Id = id; PatientId = patientId; Image = image; Masks = masks; Labels = labels; Present = present; Attributes = attributes;
        Sex = sex; Age = age; View = view; Findings = findings; Impression = impression; Truth = truth;
    }

    /// <summary>Case id, e.g. "phantom_000042".</summary>
    public string Id { get; }
    /// <summary>Patient id, e.g. "pp000042" (one case per patient).</summary>
    public string PatientId { get; }
    /// <summary>The radiograph: float intensities in [0, 1], bright = dense.</summary>
    public GrayImage Image { get; }
    /// <summary>
    /// Binary masks (0/1), same size as the image: "lungs", "heart", and one per present finding:
    /// "pleural_effusion", "pneumothorax", "consolidation", "edema", "nodule" or "mass", "atelectasis",
    /// "fracture", "support_devices". Cardiomegaly and an enlarged cardiomediastinum have no mask of their own
    /// (the heart mask and the ctr attribute measure them).
    /// </summary>
    public IReadOnlyDictionary<string, GrayImage> Masks { get; }
    /// <summary>CheXpert labels of the report (see the class summary).</summary>
    public CxrLabels Labels { get; }
    /// <summary>Observations truly present in the image (independent of hedging).</summary>
    public IReadOnlyList<Observation> Present { get; }
    /// <summary>
    /// Finding and patient attributes: ctr, effusion_side, effusion_size, pneumothorax_side, pneumothorax_size,
    /// consolidation_lobe, edema_severity, nodule_location, nodule_size_mm (also for masses), lesion_kind,
    /// atelectasis_type, atelectasis_location, fracture_side, fracture_rib, devices (pipe-separated ett|cvc|pacemaker),
    /// ett_cm_above_carina, cvc_access, cvc_tip, pacemaker_leads, cardiomegaly_severity, habitus, inspiration_ribs,
    /// rotation, exposure. Present keys only.
    /// </summary>
    public IReadOnlyDictionary<string, string> Attributes { get; }
    /// <summary>"M" or "F" (visible in the image, never in the report).</summary>
    public string Sex { get; }
    /// <summary>Age in years (visible in the image, never in the report).</summary>
    public int Age { get; }
    /// <summary>"PA" or "AP".</summary>
    public string View { get; }
    /// <summary>The FINDINGS section text.</summary>
    public string Findings { get; }
    /// <summary>The IMPRESSION section text.</summary>
    public string Impression { get; }
    /// <summary>"FINDINGS: ...\nIMPRESSION: ...".</summary>
    public string Report => $"FINDINGS: {Findings}\nIMPRESSION: {Impression}";
    /// <summary>The structured truth the image and report were made from.</summary>
    public PhantomFindings Truth { get; }
}
