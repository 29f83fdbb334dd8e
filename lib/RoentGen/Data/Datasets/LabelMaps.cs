namespace RoentGen.Data.Datasets;

/// <summary>
/// Maps label names used by other datasets onto the 14 CheXpert observations. Matching ignores case,
/// spaces, underscores and hyphens. The map (source name → CheXpert observation):
/// <list type="bullet">
/// <item>No Finding, normal → No Finding</item>
/// <item>Effusion, Pleural Effusion → Pleural Effusion</item>
/// <item>Infiltration, Infiltrate, Opacity, Lung Opacity, Airspace Disease → Lung Opacity</item>
/// <item>Mass, Nodule, Lung Lesion → Lung Lesion</item>
/// <item>Pleural_Thickening, Pleural Thickening, Pleural Other → Pleural Other</item>
/// <item>Pulmonary Atelectasis → Atelectasis; Pulmonary Edema → Edema; Fractures, Bone → Fracture</item>
/// <item>Catheters, Indwelling; Tube, Inserted; Implanted Medical Device; Pacemaker, Artificial → Support Devices</item>
/// <item>every CheXpert name maps to itself (Consolidation, Pneumonia, Pneumothorax, Edema, Atelectasis, Cardiomegaly, ...)</item>
/// </list>
/// Anything else (tuberculosis, COVID-19, Emphysema, Fibrosis, Hernia, bacterial, ...) has no CheXpert
/// counterpart: it stays only in <see cref="CxrRecord.SourceLabels"/>. Names are matched whole:
/// "Mycoplasma Bacterial Pneumonia" is not mapped to Pneumonia.
/// </summary>
public static class ChexpertLabelMap
{
    private static readonly Dictionary<string, Observation> Map = Build();

    private static Dictionary<string, Observation> Build()
    {
        var m = new Dictionary<string, Observation>();
        for (int i = 0; i < Observations.Names.Count; i++) m[Key(Observations.Names[i])] = (Observation)i;
        void Add(Observation o, params string[] names) { foreach (var n in names) m[Key(n)] = o; }
        Add(Observation.NoFinding, "normal", "No Finding");
        Add(Observation.PleuralEffusion, "Effusion");
        Add(Observation.LungOpacity, "Infiltration", "Infiltrate", "Opacity", "Airspace Disease");
        Add(Observation.LungLesion, "Mass", "Nodule");
        Add(Observation.PleuralOther, "Pleural_Thickening");
        Add(Observation.Atelectasis, "Pulmonary Atelectasis");
        Add(Observation.Edema, "Pulmonary Edema");
        Add(Observation.Fracture, "Fractures, Bone");
        Add(Observation.SupportDevices, "Catheters, Indwelling", "Tube, Inserted", "Implanted Medical Device", "Pacemaker, Artificial");
        return m;
    }

    /// <summary>The CheXpert observation a source label stands for, if any.</summary>
    public static bool TryMap(string sourceLabel, out Observation observation) => Map.TryGetValue(Key(sourceLabel), out observation);

    /// <summary>
    /// Labels from a list of source names: mapped names are positive, the rest of the 14 not mentioned.
    /// <paramref name="unmapped"/> receives the names without a CheXpert counterpart.
    /// </summary>
    public static CxrLabels ToLabels(IEnumerable<string> sourceLabels, out IReadOnlyList<string> unmapped)
    {
        var labels = new CxrLabels();
        var rest = new List<string>();
        foreach (var s in sourceLabels)
        {
            if (TryMap(s, out var o)) labels[o] = Mention.Positive;
            else rest.Add(s);
        }
        // A finding and "No Finding" together (e.g. a 'normal' tag beside a device) keeps the finding only.
        if (labels.Positives.Any(o => o != Observation.NoFinding && o != Observation.SupportDevices) && labels.Has(Observation.NoFinding))
            labels[Observation.NoFinding] = Mention.NotMentioned;
        unmapped = rest;
        return labels;
    }

    private static string Key(string s) => new(s.Where(char.IsLetterOrDigit).Select(char.ToLowerInvariant).ToArray());
}
