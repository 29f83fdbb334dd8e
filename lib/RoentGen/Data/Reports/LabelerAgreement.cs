using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

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
    /// <summary>Whether F1 is defined: some report is positive in the reference or in the labeler's output.</summary>
    public bool IsDefined => TruePositive + FalsePositive + FalseNegative > 0;
    /// <summary>Harmonic mean of precision and recall, 0 when undefined.</summary>
    public double F1 => Precision + Recall == 0 ? 0 : 2 * Precision * Recall / (Precision + Recall);
}

/// <summary>One report where the labeler and the human tags disagree on a finding.</summary>
/// <param name="Uid">The report's uid (or its line when the table has no uid column).</param>
/// <param name="Finding">The finding.</param>
/// <param name="Reference">Whether the human tags say the finding is present.</param>
/// <param name="Labeler">What the labeler said.</param>
/// <param name="Tags">The report's Problems tags.</param>
/// <param name="Text">The text the labeler read.</param>
public sealed record IuDisagreement(string Uid, string Finding, bool Reference, Mention Labeler, string Tags, string Text);

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
        ArgumentNullException.ThrowIfNull(reports);
        reports.RequireColumns("Problems", "findings", "impression");
        return EvaluateIu(reports.Rows, labeler, uncertainAsPositive);
    }

    /// <summary>
    /// Evaluates on one half of an IU reports table (see <see cref="IuReportSplit"/>; the table also needs a uid column
    /// unless <paramref name="half"/> is <see cref="IuHalf.All"/>).
    /// </summary>
    /// <exception cref="InvalidDataException">A needed column is missing, or a uid is not an integer.</exception>
    public static IReadOnlyList<AgreementRow> EvaluateIu(CsvTable reports, ReportLabeler labeler, IuHalf half, IuSplitRule rule = IuSplitRule.UidParity, bool uncertainAsPositive = true)
    {
        ArgumentNullException.ThrowIfNull(reports);
        reports.RequireColumns("Problems", "findings", "impression");
        return EvaluateIu(IuReportSplit.Select(reports, half, rule), labeler, uncertainAsPositive);
    }

    /// <summary>Evaluates on rows of an IU reports table (columns Problems, findings, impression).</summary>
    public static IReadOnlyList<AgreementRow> EvaluateIu(IEnumerable<CsvRow> reports, ReportLabeler labeler, bool uncertainAsPositive = true)
    {
        ArgumentNullException.ThrowIfNull(reports);
        ArgumentNullException.ThrowIfNull(labeler);
        var counts = new int[IuMapping.Count, 4];
        foreach (var row in reports)
        {
            var (truth, labels) = Compare(row, labeler);
            for (int k = 0; k < IuMapping.Count; k++)
            {
                var m = labels[IuMapping[k].Observation];
                bool pred = m == Mention.Positive || (uncertainAsPositive && m == Mention.Uncertain);
                counts[k, pred ? (truth[k] ? 0 : 1) : (truth[k] ? 2 : 3)]++;
            }
        }
        return Enumerable.Range(0, IuMapping.Count)
            .Select(k => new AgreementRow(IuMapping[k].Finding, counts[k, 0], counts[k, 1], counts[k, 2], counts[k, 3])).ToArray();
    }

    /// <summary>
    /// The reports where the labeler and the human tags disagree on a finding (uncertain counted as positive), in file
    /// order: for reading the labeler's mistakes on reports it may be developed against (never on held-out ones).
    /// </summary>
    public static IReadOnlyList<IuDisagreement> Disagreements(IEnumerable<CsvRow> reports, ReportLabeler labeler)
    {
        ArgumentNullException.ThrowIfNull(reports);
        ArgumentNullException.ThrowIfNull(labeler);
        var result = new List<IuDisagreement>();
        foreach (var row in reports)
        {
            var (truth, labels) = Compare(row, labeler);
            for (int k = 0; k < IuMapping.Count; k++)
            {
                var m = labels[IuMapping[k].Observation];
                bool pred = m is Mention.Positive or Mention.Uncertain;
                if (pred != truth[k])
                    result.Add(new IuDisagreement(row.Get("uid") ?? $"line {row.LineNumber}", IuMapping[k].Finding, truth[k], m, row["Problems"], ReportText(row)));
            }
        }
        return result;
    }

    /// <summary>The text the labeler reads from an IU row: "FINDINGS: ...\nIMPRESSION: ...".</summary>
    public static string ReportText(CsvRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        return $"FINDINGS: {row["findings"]}\nIMPRESSION: {row["impression"]}";
    }

    private static (bool[] Truth, CxrLabels Labels) Compare(CsvRow row, ReportLabeler labeler)
    {
        var tags = row["Problems"].Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var labels = labeler.Label(ReportText(row));
        var truth = new bool[IuMapping.Count];
        for (int k = 0; k < IuMapping.Count; k++)
        {
            var (_, obs, refTags) = IuMapping[k];
            truth[k] = obs == Observation.NoFinding
                ? tags.Length == 1 && tags[0].Equals("normal", StringComparison.OrdinalIgnoreCase)
                : tags.Any(t => refTags.Contains(t, StringComparer.OrdinalIgnoreCase));
        }
        return (truth, labels);
    }

    /// <summary>
    /// Macro-averaged F1 over the rows where F1 is defined (<see cref="AgreementRow.IsDefined"/>: some report positive in the
    /// reference or in the labeler's output); a finding absent from both, as can happen in half a small sample, is left out
    /// rather than counted as 0. 0 when no row is defined.
    /// </summary>
    public static double MacroF1(IReadOnlyList<AgreementRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var defined = rows.Where(r => r.IsDefined).ToArray();
        return defined.Length == 0 ? 0 : defined.Average(r => r.F1);
    }

    /// <summary>
    /// The agreement table as indented JSON: the file, the half and split rule, how uncertain labels were counted, the
    /// number of reports, macro F1, and per finding the 2x2 counts with precision, recall and F1.
    /// </summary>
    public static string ToJson(IReadOnlyList<AgreementRow> rows, string reports, IuHalf half, IuSplitRule rule, bool uncertainAsPositive, int reportCount)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var findings = new JsonArray();
        foreach (var r in rows)
            findings.Add(new JsonObject
            {
                ["finding"] = r.Finding, ["reference_positives"] = r.ReferencePositives,
                ["tp"] = r.TruePositive, ["fp"] = r.FalsePositive, ["fn"] = r.FalseNegative, ["tn"] = r.TrueNegative,
                ["accuracy"] = r.Accuracy, ["precision"] = r.Precision, ["recall"] = r.Recall, ["f1"] = r.IsDefined ? r.F1 : null,
            });
        var root = new JsonObject
        {
            ["reports"] = reports,
            ["half"] = half switch { IuHalf.Dev => "dev", IuHalf.HeldOut => "heldout", _ => "all" },
            ["rule"] = rule == IuSplitRule.UidParity ? "parity" : "seeded",
            ["uncertain"] = uncertainAsPositive ? "positive" : "negative",
            ["report_count"] = reportCount,
            ["macro_f1"] = MacroF1(rows),
            ["findings"] = findings,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>A fixed-width text table (finding, reference positives, accuracy, precision, recall, F1).</summary>
    public static string FormatTable(IReadOnlyList<AgreementRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"finding",-18} {"ref+",5} {"TP",4} {"FP",4} {"FN",4} {"acc",6} {"prec",6} {"rec",6} {"F1",6}");
        foreach (var r in rows)
            sb.AppendLine(CultureInfo.InvariantCulture, $"{r.Finding,-18} {r.ReferencePositives,5} {r.TruePositive,4} {r.FalsePositive,4} {r.FalseNegative,4} {r.Accuracy,6:F3} {r.Precision,6:F3} {r.Recall,6:F3} {(r.IsDefined ? r.F1.ToString("F3", CultureInfo.InvariantCulture) : "-"),6}");
        int undefined = rows.Count(r => !r.IsDefined);
        string leftOut = undefined == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $" (over {rows.Count - undefined} findings: {undefined} with no positive report on either side left out)");
        sb.AppendLine(CultureInfo.InvariantCulture, $"macro F1 {MacroF1(rows):F3}{leftOut}");
        return sb.ToString();
    }
}
