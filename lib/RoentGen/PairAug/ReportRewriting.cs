using RoentGen.Data;

namespace RoentGen.PairAug;

/// <summary>The two rewriting operations of PairAug (Xie et al., CVPR 2024).</summary>
public enum RewriteOperation
{
    /// <summary>InterAug: a new patient whose report conveys partially opposite meanings (some findings' presence, laterality or severity flipped).</summary>
    PartialOpposite,
    /// <summary>IntraAug: the same patient with a change in symptoms (progression or regression of findings already present).</summary>
    ChangeInSymptoms,
}

/// <summary>Command-line names of <see cref="RewriteOperation"/>.</summary>
public static class RewriteOperations
{
    /// <summary>"partial-opposite" or "change-in-symptoms".</summary>
    public static string CliName(this RewriteOperation op) => op switch
    {
        RewriteOperation.PartialOpposite => "partial-opposite",
        RewriteOperation.ChangeInSymptoms => "change-in-symptoms",
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "unknown rewrite operation"),
    };

    /// <summary>Parses a command-line name (or the enum name, case-insensitive).</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static RewriteOperation Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "partial-opposite" or "partialopposite" or "inter" => RewriteOperation.PartialOpposite,
        "change-in-symptoms" or "changeinsymptoms" or "intra" => RewriteOperation.ChangeInSymptoms,
        _ => throw new ArgumentException($"unknown rewrite operation '{name}'; expected partial-opposite or change-in-symptoms"),
    };
}

/// <summary>One report to rewrite.</summary>
/// <param name="Id">The report's id (a file name, a row number), carried to the result.</param>
/// <param name="Report">The report text.</param>
/// <param name="Operation">What to do to it.</param>
/// <param name="Seed">Seed of the rewrite (the rule-based choices; the LLM request's seed).</param>
public sealed record RewriteRequest(string Id, string Report, RewriteOperation Operation, long Seed);

/// <summary>What kind of change one edit makes to a finding.</summary>
public enum FindingEditKind
{
    /// <summary>Present to absent or absent to present (partial opposite).</summary>
    Presence,
    /// <summary>Left to right or right to left (partial opposite).</summary>
    Laterality,
    /// <summary>Severity or size to its opposite (partial opposite).</summary>
    Severity,
    /// <summary>Worse than before (change in symptoms).</summary>
    Progression,
    /// <summary>Better than before, or resolved (change in symptoms).</summary>
    Regression,
}

/// <summary>One intended change to one finding of a report.</summary>
/// <param name="Observation">The CheXpert observation the finding belongs to.</param>
/// <param name="Kind">What changes.</param>
/// <param name="From">The finding before, in words ("small left pleural effusion", "absent").</param>
/// <param name="To">The finding after, in words.</param>
public sealed record FindingEdit(Observation Observation, FindingEditKind Kind, string From, string To);

/// <summary>A change of one observation's presence (positive or uncertain = present; negative or not mentioned = absent).</summary>
/// <param name="Observation">The observation.</param>
/// <param name="Before">Present in the original.</param>
/// <param name="After">Present in the rewrite.</param>
public sealed record LabelChange(Observation Observation, bool Before, bool After)
{
    /// <inheritdoc />
    public override string ToString() => $"{Observation.Name()}: {(Before ? "present" : "absent")} -> {(After ? "present" : "absent")}";
}

/// <summary>
/// A rewrite of one report. <see cref="IntendedEdits"/> and <see cref="IntendedLabelChanges"/> are known for the
/// rule-based rewriter (what it meant to change) and null for an LLM (only the operation's contract can be checked).
/// </summary>
/// <param name="Id">The request's id.</param>
/// <param name="Operation">The operation.</param>
/// <param name="Original">The original report.</param>
/// <param name="Rewritten">The rewritten report.</param>
/// <param name="Source">Who wrote it ("rule-based" or "llm:MODEL").</param>
/// <param name="IntendedEdits">The edits meant, or null when unknown.</param>
/// <param name="IntendedLabelChanges">The presence changes meant (every other observation keeps its presence), or null when unknown.</param>
/// <param name="FromCache">True when the text came from the disk cache (no request was made).</param>
public sealed record ReportRewrite(string Id, RewriteOperation Operation, string Original, string Rewritten, string Source,
    IReadOnlyList<FindingEdit>? IntendedEdits, IReadOnlyList<LabelChange>? IntendedLabelChanges, bool FromCache = false);

/// <summary>Rewrites radiology reports; implementations are the offline <see cref="RuleBasedReportRewriter"/> and <see cref="LlmReportRewriter"/>.</summary>
public interface IReportRewriter
{
    /// <summary>A short name for outputs ("rule-based", "llm:MODEL").</summary>
    string Name { get; }

    /// <summary>
    /// Rewrites one report; null when the operation does not apply to it (e.g. a change in symptoms of a report with
    /// no finding present, for the rule-based rewriter).
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    Task<ReportRewrite?> RewriteAsync(RewriteRequest request, CancellationToken cancellationToken = default);
}
