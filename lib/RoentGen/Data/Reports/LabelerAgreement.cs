using System.Globalization;
using System.Text;

namespace RoentGen.Data.Reports;

/// <summary>Agreement of labeler output with reference tags for one finding (a 2x2 table).</summary>
/// <param name="Finding">Name of the finding.</param>
/// <param name="TruePositive">Labeler positive, reference positive.</param>
/// <param name="FalsePositive">Labeler positive, reference negative.</param>
/// <param name="FalseNegative">Labeler negative, reference positive.</param>
/// <param name="TrueNegative">Both negative.</param>
public sealed record AgreementRow(string Finding, int TruePositive, int FalsePositive, int FalseNegative, int TrueNegative)
{
    /// <summary>Reports the reference calls positive.</summary>
    public int ReferencePositives => TruePositive + FalseNegative;
    /// <summary>All reports.</summary>
    public int Total => TruePositive + FalsePositive + FalseNegative + TrueNegative;
    /// <summary>(TP + TN) / total.</summary>
    public double Accuracy => Total == 0 ? 0 : (double)(TruePositive + TrueNegative) / Total;
    /// <summary>TP / (TP + FP), 0 when undefined.</summary>
    public double Precision => TruePositive + FalsePositive == 0 ? 0 : (double)TruePositive / (TruePositive + FalsePositive);
    /// <summary>TP / (TP + FN), 0 when undefined.</summary>
    public double Recall => TruePositive + FalseNegative == 0 ? 0 : (double)TruePositive / (TruePositive + FalseNegative);
    /// <summary>Harmonic mean of precision and recall, 0 when undefined.</summary>
    public double F1 => Precision + Recall == 0 ? 0 : 2 * Precision * Recall / (Precision + Recall);
}

/// <summary>
/// Compares <see cref="ReportLabeler"/> output on the Indiana University (IU X-ray / Open-i) reports with
/// their human MeSH "Problems" tags. Mapping (labeler observation: IU tags): Cardiomegaly: Cardiomegaly;
/// Pleural Effusion: Pleural Effusion; Atelectasis: Pulmonary Atelectasis; Edema: Pulmonary Edema or
/// Pulmonary Congestion (CheXpert counts vascular congestion as edema); Pneumothorax: Pneumothorax;
/// Fracture: Fractures, Bone; No Finding: the tag list is exactly "normal"; Support Devices: Tube, Inserted /
/// Catheters, Indwelling / Medical Device / Implanted Medical Device / Stents / Pacemaker, Artificial
/// (surgical clips, tagged "Surgical Instruments", are not support devices). The text is the findings and
/// impression columns.
/// </summary>
public static class LabelerAgreement
{
    /// <summary>The finding, its observation, and the IU tags that mean it.</summary>
    public static IReadOnlyList<(string Finding, Observation Observation, string[] Tags)> IuMapping { get; } =
    [
        ("Cardiomegaly", Observation.Cardiomegaly, ["Cardiomegaly"]),
        ("Pleural Effusion", Observation.PleuralEffusion, ["Pleural Effusion"]),
        ("Atelectasis", Observation.Atelectasis, ["Pulmonary Atelectasis"]),
        ("Edema", Observation.Edema, ["Pulmonary Edema", "Pulmonary Congestion"]),
        ("Pneumothorax", Observation.Pneumothorax, ["Pneumothorax"]),
        ("Fracture", Observation.Fracture, ["Fractures, Bone"]),
        ("No Finding", Observation.NoFinding, ["normal"]),
        ("Support Devices", Observation.SupportDevices, ["Tube, Inserted", "Catheters, Indwelling", "Medical Device", "Implanted Medical Device", "Stents", "Pacemaker, Artificial"]),
    ];

    /// <summary>
    /// Evaluates on an IU reports table (columns Problems, findings, impression). With
    /// <paramref name="uncertainAsPositive"/> (U-Ones) a -1 counts as positive, otherwise (U-Zeros) as negative.
    /// </summary>
    /// <exception cref="InvalidDataException">A needed column is missing.</exception>
    public static IReadOnlyList<AgreementRow> EvaluateIu(CsvTable reports, ReportLabeler labeler, bool uncertainAsPositive = true)
    {
        reports.RequireColumns("Problems", "findings", "impression");
        var counts = new int[IuMapping.Count, 4];
        foreach (var row in reports.Rows)
        {
            var tags = row["Problems"].Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var labels = labeler.Label($"FINDINGS: {row["findings"]}\nIMPRESSION: {row["impression"]}");
            for (int k = 0; k < IuMapping.Count; k++)
            {
                var (_, obs, refTags) = IuMapping[k];
                bool truth = obs == Observation.NoFinding
                    ? tags.Length == 1 && tags[0].Equals("normal", StringComparison.OrdinalIgnoreCase)
                    : tags.Any(t => refTags.Contains(t, StringComparer.OrdinalIgnoreCase));
                var m = labels[obs];
                bool pred = m == Mention.Positive || (uncertainAsPositive && m == Mention.Uncertain);
                counts[k, pred ? (truth ? 0 : 1) : (truth ? 2 : 3)]++;
            }
        }
        return Enumerable.Range(0, IuMapping.Count)
            .Select(k => new AgreementRow(IuMapping[k].Finding, counts[k, 0], counts[k, 1], counts[k, 2], counts[k, 3])).ToArray();
    }

    /// <summary>Macro-averaged F1 over rows.</summary>
    public static double MacroF1(IReadOnlyList<AgreementRow> rows) => rows.Count == 0 ? 0 : rows.Average(r => r.F1);

    /// <summary>A fixed-width text table (finding, reference positives, accuracy, precision, recall, F1).</summary>
    public static string FormatTable(IReadOnlyList<AgreementRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"finding",-18} {"ref+",5} {"TP",4} {"FP",4} {"FN",4} {"acc",6} {"prec",6} {"rec",6} {"F1",6}");
        foreach (var r in rows)
            sb.AppendLine(CultureInfo.InvariantCulture, $"{r.Finding,-18} {r.ReferencePositives,5} {r.TruePositive,4} {r.FalsePositive,4} {r.FalseNegative,4} {r.Accuracy,6:F3} {r.Precision,6:F3} {r.Recall,6:F3} {r.F1,6:F3}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"macro F1 {MacroF1(rows):F3}");
        return sb.ToString();
    }
}
