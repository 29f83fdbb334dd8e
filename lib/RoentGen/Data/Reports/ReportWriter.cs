using RoentGen.Data.Phantoms;

namespace RoentGen.Data.Reports;

/// <summary>A written report and the CheXpert labels of what it says.</summary>
public sealed record WrittenReport(string Findings, string Impression, CxrLabels Labels)
{
    /// <summary>"FINDINGS: ...\nIMPRESSION: ...".</summary>
    public string Text => $"FINDINGS: {Findings}\nIMPRESSION: {Impression}";
}

/// <summary>Writes radiology reports for phantom findings.</summary>
public static class ReportWriter
{
    /// <summary>Writes a report (stub).</summary>
    public static WrittenReport Write(PhantomFindings f, ulong seed) => new("The lungs are clear.", "No acute cardiopulmonary process.", new CxrLabels());
}
