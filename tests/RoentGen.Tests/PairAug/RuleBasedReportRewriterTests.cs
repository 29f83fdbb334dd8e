using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.PairAug;
using Xunit;
using Xunit.Abstractions;

namespace RoentGen.Tests.PairAug;

public class RuleBasedReportRewriterTests(ITestOutputHelper output)
{
    private static readonly ReportFindingsReader Reader = new();

    private static IReadOnlyList<RewriteRequest> PhantomRequests(int n, RewriteOperation op, long seed = 3)
    {
        var g = new PhantomGenerator(new PhantomOptions { Seed = 77 });
        return Enumerable.Range(0, n).Select(i => new RewriteRequest($"p{i}", g.GenerateReport(i).Report.Text, op, seed + i)).ToList();
    }

    [Fact]
    public void The_reader_recovers_the_writers_findings_of_plain_reports()
    {
        var g = new PhantomGenerator(new PhantomOptions { Seed = 5 });
        int exact = 0, n = 300;
        for (int i = 0; i < n; i++)
        {
            var (truth, _) = g.GenerateReport(i);
            var plain = ReportWriter.Write(truth, (ulong)i, hedgeProbability: 0);
            var read = Reader.Read(plain.Text);
            Assert.Equal(ReportFindingsReader.PresentObservations(truth).OrderBy(o => o), ReportFindingsReader.PresentObservations(read).OrderBy(o => o));
            bool same = Observations.All.All(o => RuleBasedReportRewriter.Describe(truth, o) == RuleBasedReportRewriter.Describe(read, o));
            if (same) exact++;
            else output.WriteLine($"{i}: {plain.Text}");
        }
        // Presence is exact; attributes (sides, sizes, lobes, millimetres) are read back for nearly every report.
        Assert.True(exact >= n * 0.95, $"attributes read back exactly for only {exact} of {n} reports");
    }

    [Fact]
    public void Rewrites_are_deterministic_by_seed()
    {
        var rewriter = new RuleBasedReportRewriter();
        foreach (var op in new[] { RewriteOperation.PartialOpposite, RewriteOperation.ChangeInSymptoms })
        {
            var requests = PhantomRequests(40, op);
            var a = requests.Select(rewriter.Rewrite).ToList();
            var b = requests.Select(rewriter.Rewrite).ToList();
            Assert.Equal(a.Select(r => r?.Rewritten), b.Select(r => r?.Rewritten));
            Assert.Equal(a.Select(r => r is null ? "" : string.Join(";", r.IntendedEdits!)), b.Select(r => r is null ? "" : string.Join(";", r.IntendedEdits!)));
            var other = requests.Select(r => rewriter.Rewrite(r with { Seed = r.Seed + 1000 })).ToList();
            Assert.NotEqual(a.Select(r => r?.Rewritten), other.Select(r => r?.Rewritten));
        }
    }

    [Fact]
    public async Task Partial_opposite_changes_labels_exactly_as_intended()
    {
        var result = await RewriteBatch.RunAsync(new RuleBasedReportRewriter(), PhantomRequests(300, RewriteOperation.PartialOpposite), Reader);
        output.WriteLine($"kept {result.Kept.Count}, dropped {result.Dropped.Count}, not applicable {result.NotApplicable.Count}");
        foreach (var d in result.Dropped.Take(5)) output.WriteLine($"{d.Verdict.Reason}\n  {d.Rewrite.Original}\n  {d.Rewrite.Rewritten}");
        Assert.Empty(result.NotApplicable);                       // every report has something to flip
        Assert.True(result.Kept.Count >= 285, $"only {result.Kept.Count} of 300 partial-opposite rewrites kept");
        Assert.Equal(300, result.Requested);
        var kinds = new HashSet<FindingEditKind>();
        foreach (var k in result.Kept)
        {
            var edits = k.Rewrite.IntendedEdits!;
            Assert.InRange(edits.Count, 1, 2);
            Assert.Equal(edits.Count, edits.Select(e => e.Observation).Distinct().Count());   // one edit per finding
            Assert.All(edits, e => Assert.Contains(e.Kind, new[] { FindingEditKind.Presence, FindingEditKind.Laterality, FindingEditKind.Severity }));
            kinds.UnionWith(edits.Select(e => e.Kind));
            // What the labeler sees is exactly the intended presence change.
            Assert.Equal(k.Rewrite.IntendedLabelChanges!.OrderBy(c => c.Observation), k.Verdict.Observed.OrderBy(c => c.Observation));
            foreach (var e in edits.Where(e => e.Kind == FindingEditKind.Presence))
                Assert.Contains(k.Verdict.Observed, c => c.Observation == e.Observation && c.After == (e.To != "absent"));
        }
        Assert.Equal(3, kinds.Count);                             // presence, side and severity flips all occur
    }

    [Fact]
    public async Task Change_in_symptoms_progresses_or_regresses_present_findings_only()
    {
        var result = await RewriteBatch.RunAsync(new RuleBasedReportRewriter(), PhantomRequests(300, RewriteOperation.ChangeInSymptoms), Reader);
        output.WriteLine($"kept {result.Kept.Count}, dropped {result.Dropped.Count}, not applicable {result.NotApplicable.Count}");
        foreach (var d in result.Dropped.Take(5)) output.WriteLine($"{d.Verdict.Reason}\n  {d.Rewrite.Original}\n  {d.Rewrite.Rewritten}");
        Assert.NotEmpty(result.NotApplicable);                    // normal reports have nothing to change
        Assert.True(result.Kept.Count >= 0.95 * (300 - result.NotApplicable.Count), $"only {result.Kept.Count} kept of {300 - result.NotApplicable.Count}");
        var kinds = new HashSet<FindingEditKind>();
        foreach (var k in result.Kept)
        {
            var edit = Assert.Single(k.Rewrite.IntendedEdits!);
            Assert.Contains(edit.Kind, new[] { FindingEditKind.Progression, FindingEditKind.Regression });
            Assert.NotEqual("absent", edit.From);
            kinds.Add(edit.Kind);
            Assert.DoesNotContain(k.Verdict.Observed, c => !c.Before && c.After && c.Observation != Observation.NoFinding);   // nothing new
            Assert.Equal(k.Rewrite.IntendedLabelChanges!.OrderBy(c => c.Observation), k.Verdict.Observed.OrderBy(c => c.Observation));
            Assert.Contains("Interval", k.Rewrite.Rewritten, StringComparison.Ordinal);
        }
        Assert.Equal(2, kinds.Count);
        // The same rewrites pass the LLM contract too (it knows nothing of the intent).
        foreach (var k in result.Kept)
            Assert.True(RewriteCheck.Judge(k.Rewrite with { IntendedEdits = null, IntendedLabelChanges = null }, Reader).Kept);
    }

    [Fact]
    public void A_resolved_effusion_is_intended_as_absent_and_read_as_absent()
    {
        const string report = "FINDINGS: Small left pleural effusion. Heart size is normal.\nIMPRESSION: Small left pleural effusion.";
        var rewriter = new RuleBasedReportRewriter();
        // The only present finding is a small effusion: the one step down is resolution, the one step up moderate.
        var seen = new HashSet<string>();
        for (long seed = 0; seed < 20; seed++)
        {
            var rw = rewriter.Rewrite(new RewriteRequest("x", report, RewriteOperation.ChangeInSymptoms, seed))!;
            var edit = Assert.Single(rw.IntendedEdits!);
            Assert.Equal(Observation.PleuralEffusion, edit.Observation);
            Assert.Equal("small left pleural effusion", edit.From);
            seen.Add(edit.To);
            var verdict = RewriteCheck.Judge(rw, Reader);
            Assert.True(verdict.Kept, verdict.Reason);
            if (edit.To == "resolved")
            {
                Assert.Contains(new LabelChange(Observation.PleuralEffusion, true, false), rw.IntendedLabelChanges!);
                Assert.Contains(new LabelChange(Observation.NoFinding, false, true), rw.IntendedLabelChanges!);
                Assert.Contains("Interval resolution of the left pleural effusion.", rw.Rewritten, StringComparison.Ordinal);
            }
            else Assert.Equal("moderate left pleural effusion", edit.To);
        }
        Assert.Equal(["moderate left pleural effusion", "resolved"], seen.Order());
    }

    [Fact]
    public async Task Rewrites_whose_labels_did_not_change_as_intended_are_dropped_and_counted()
    {
        // Pleural thickening has no phantom finding: the rewrite loses it, so its labels change in a way no edit meant.
        const string thickening = "FINDINGS: Left apical pleural thickening. Small right pleural effusion.\nIMPRESSION: Small right pleural effusion.";
        const string normal = "FINDINGS: The lungs are clear. Heart size is normal.\nIMPRESSION: No acute cardiopulmonary process.";
        var requests = new List<RewriteRequest>
        {
            new("thickening", thickening, RewriteOperation.ChangeInSymptoms, 1),
            new("normal", normal, RewriteOperation.ChangeInSymptoms, 1),
            new("effusion", "FINDINGS: Moderate right pleural effusion.\nIMPRESSION: Moderate right pleural effusion.", RewriteOperation.ChangeInSymptoms, 1),
        };
        var result = await RewriteBatch.RunAsync(new RuleBasedReportRewriter(), requests, Reader);
        Assert.Equal(["effusion"], result.Kept.Select(k => k.Rewrite.Id));
        var dropped = Assert.Single(result.Dropped);
        Assert.Equal("thickening", dropped.Rewrite.Id);
        Assert.Contains("Pleural Other", dropped.Verdict.Reason, StringComparison.Ordinal);
        Assert.Equal(["normal"], result.NotApplicable);
        Assert.Equal(3, result.Requested);

        // A rewrite that claims one change but makes another is dropped too.
        var kept = result.Kept[0].Rewrite;
        var lying = kept with { IntendedLabelChanges = [new LabelChange(Observation.Pneumothorax, false, true)] };
        var verdict = RewriteCheck.Judge(lying, Reader);
        Assert.False(verdict.Kept);
        Assert.Contains("Pneumothorax expected present", verdict.Reason, StringComparison.Ordinal);
        // And one whose text does not say the intended attribute.
        var wrongSide = kept with { IntendedEdits = [new FindingEdit(Observation.PleuralEffusion, FindingEditKind.Laterality, "moderate right pleural effusion", "moderate left pleural effusion")] };
        Assert.False(RewriteCheck.Judge(wrongSide, Reader).Kept);
    }

    [Fact]
    public void Llm_contract_for_partial_opposite_needs_some_change()
    {
        const string report = "FINDINGS: Small left pleural effusion. No pneumothorax.\nIMPRESSION: Small left pleural effusion.";
        ReportRewrite R(string text) => new("x", RewriteOperation.PartialOpposite, report, text, "llm:test", null, null);
        Assert.False(RewriteCheck.Judge(R(report), Reader).Kept);
        Assert.True(RewriteCheck.Judge(R("FINDINGS: Small right pleural effusion. No pneumothorax.\nIMPRESSION: Small right pleural effusion."), Reader).Kept);   // side
        Assert.True(RewriteCheck.Judge(R("FINDINGS: No pleural effusion. Small left pneumothorax.\nIMPRESSION: Left pneumothorax."), Reader).Kept);            // presence
        Assert.False(RewriteCheck.Judge(R(" "), Reader).Kept);
    }

    [Fact]
    public void Operation_names_parse_both_ways()
    {
        foreach (var op in Enum.GetValues<RewriteOperation>()) Assert.Equal(op, RewriteOperations.Parse(op.CliName()));
        Assert.Throws<ArgumentException>(() => RewriteOperations.Parse("opposite"));
    }
}
