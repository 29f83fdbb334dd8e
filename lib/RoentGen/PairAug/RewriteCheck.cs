using System.Text.RegularExpressions;
using RoentGen.Data;
using RoentGen.Data.Reports;

namespace RoentGen.PairAug;

/// <summary>Whether a rewrite is kept, why, and how its labels changed.</summary>
/// <param name="Kept">True when the labels changed as the operation says.</param>
/// <param name="Reason">Why it was dropped (null when kept).</param>
/// <param name="Observed">The presence changes the labeler sees between original and rewrite.</param>
public sealed record RewriteVerdict(bool Kept, string? Reason, IReadOnlyList<LabelChange> Observed);

/// <summary>
/// Judges a rewrite by <see cref="ReportLabeler"/>'s labels of the original and the rewrite, on presence (positive or
/// uncertain = present, negative or not mentioned = absent).
/// <list type="bullet">
/// <item>When the rewrite states what it meant (<see cref="ReportRewrite.IntendedLabelChanges"/>, the rule-based
/// rewriter): the rewrite's presence must equal the original's with exactly the intended changes applied, for all 14
/// observations, and each intended edit must read back (<see cref="ReportFindingsReader"/>) as its
/// <see cref="FindingEdit.To"/> ("resolved" reads as absent).</item>
/// <item>Otherwise (an LLM) the operation's contract: <see cref="RewriteOperation.PartialOpposite"/> needs at least one
/// finding whose presence flipped or whose side or severity reads differently; <see cref="RewriteOperation.ChangeInSymptoms"/>
/// needs no finding that was absent to become present (the same patient) and at least one present finding changed:
/// resolved, read with another severity, size or side, or mentioned with a change word (increased, decreased, worse,
/// improved, progressed, resolving, enlarging, smaller, larger, grown).</item>
/// </list>
/// No Finding is derived from the others and is compared only in the first case.
/// </summary>
public static partial class RewriteCheck
{
    [GeneratedRegex(@"\b(increas\w*|decreas\w*|wors\w*|improv\w*|progress\w*|regress\w*|resol\w*|enlarg\w*|smaller|larger|grow\w*|grown|shrunk|reduced|reduction)\b", RegexOptions.CultureInvariant)]
    private static partial Regex ChangeWord();

    /// <summary>Judges one rewrite.</summary>
    public static RewriteVerdict Judge(ReportRewrite rewrite, ReportFindingsReader reader)
    {
        ArgumentNullException.ThrowIfNull(rewrite);
        ArgumentNullException.ThrowIfNull(reader);
        var labeler = reader.Labeler;
        if (string.IsNullOrWhiteSpace(rewrite.Rewritten))
            return new RewriteVerdict(false, "the rewrite is empty", []);
        var before = ReportFindingsReader.Presence(labeler.Label(rewrite.Original));
        var after = ReportFindingsReader.Presence(labeler.Label(rewrite.Rewritten));
        var observed = Observations.All.Where(o => before[(int)o] != after[(int)o]).Select(o => new LabelChange(o, before[(int)o], after[(int)o])).ToList();

        if (rewrite.IntendedLabelChanges is { } intended)
        {
            var expected = (bool[])before.Clone();
            foreach (var c in intended) expected[(int)c.Observation] = c.After;
            var wrong = Observations.All.Where(o => expected[(int)o] != after[(int)o]).ToList();
            if (wrong.Count > 0)
                return new RewriteVerdict(false, "labels did not change as intended: "
                    + string.Join("; ", wrong.Select(o => $"{o.Name()} expected {(expected[(int)o] ? "present" : "absent")}, labeler reads {(after[(int)o] ? "present" : "absent")}")), observed);
            if (rewrite.IntendedEdits is { } edits)
            {
                var read = reader.Read(rewrite.Rewritten);
                foreach (var e in edits)
                {
                    string want = e.To == "resolved" ? "absent" : e.To;
                    string? got = RuleBasedReportRewriter.Describe(read, e.Observation);
                    if (got is not null && got != want)
                        return new RewriteVerdict(false, $"{e.Observation.Name()}: the rewrite reads as '{got}', the edit meant '{want}'", observed);
                }
            }
            return new RewriteVerdict(true, null, observed);
        }

        var findings = observed.Where(c => c.Observation != Observation.NoFinding).ToList();
        var was = reader.Read(rewrite.Original);
        var now = reader.Read(rewrite.Rewritten);
        bool attributeChanged = Observations.All.Any(o => before[(int)o] && after[(int)o]
            && RuleBasedReportRewriter.Describe(was, o) is string a && RuleBasedReportRewriter.Describe(now, o) is string b && a != b);
        switch (rewrite.Operation)
        {
            case RewriteOperation.PartialOpposite:
                return findings.Count > 0 || attributeChanged
                    ? new RewriteVerdict(true, null, observed)
                    : new RewriteVerdict(false, "partial opposite: no finding's presence, side or severity changed", observed);
            case RewriteOperation.ChangeInSymptoms:
                var appeared = findings.Where(c => !c.Before && c.After).ToList();
                if (appeared.Count > 0)
                    return new RewriteVerdict(false, "change in symptoms: new findings appeared (" + string.Join(", ", appeared.Select(c => c.Observation.Name())) + ")", observed);
                bool resolved = findings.Any(c => c.Before && !c.After);
                bool worded = labeler.LabelMentions(rewrite.Rewritten).Any(m => before[(int)m.Observation] && m.Observation != Observation.NoFinding
                    && m.Mention is Mention.Positive or Mention.Uncertain && ChangeWord().IsMatch(m.Sentence));
                return resolved || attributeChanged || worded
                    ? new RewriteVerdict(true, null, observed)
                    : new RewriteVerdict(false, "change in symptoms: no present finding changed, resolved or was said to change", observed);
            default:
                throw new ArgumentOutOfRangeException(nameof(rewrite), rewrite.Operation, "unknown rewrite operation");
        }
    }
}
