namespace RoentGen.Data.Reports;

/// <summary>Rule-based CheXpert-style labeler (stub).</summary>
public sealed class ReportLabeler
{
    /// <summary>Labels a report.</summary>
    public CxrLabels Label(string reportText) => new();
}
