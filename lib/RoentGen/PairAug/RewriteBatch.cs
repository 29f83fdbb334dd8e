namespace RoentGen.PairAug;

/// <summary>A rewrite with its verdict.</summary>
/// <param name="Rewrite">The rewrite.</param>
/// <param name="Verdict">Kept or dropped, and why.</param>
public sealed record JudgedRewrite(ReportRewrite Rewrite, RewriteVerdict Verdict);

/// <summary>What a batch of rewrites gave.</summary>
/// <param name="Kept">Rewrites whose labels changed as the operation says.</param>
/// <param name="Dropped">Rewrites whose labels did not (with the reason).</param>
/// <param name="NotApplicable">Ids of reports the operation does not apply to (no rewrite was made).</param>
/// <param name="FromCache">Rewrites (kept or dropped) that came from the disk cache.</param>
public sealed record RewriteBatchResult(IReadOnlyList<JudgedRewrite> Kept, IReadOnlyList<JudgedRewrite> Dropped, IReadOnlyList<string> NotApplicable, int FromCache)
{
    /// <summary>Reports asked for.</summary>
    public int Requested => Kept.Count + Dropped.Count + NotApplicable.Count;
}

/// <summary>Runs a rewriter over many reports and keeps the rewrites whose labels changed as the operation says (<see cref="RewriteCheck"/>).</summary>
public static class RewriteBatch
{
    /// <summary>
    /// Rewrites every request in order, judging each. A rewriter error (an LLM endpoint that gave up, a malformed reply)
    /// ends the batch with that error; with a caching rewriter, a rerun continues where it stopped.
    /// </summary>
    /// <param name="rewriter">The rewriter.</param>
    /// <param name="requests">The reports.</param>
    /// <param name="reader">The findings reader (and its labeler) that judges; a new one when null.</param>
    /// <param name="progress">Called after each report with (done, total).</param>
    /// <param name="cancellationToken">Stops between (or inside) requests.</param>
    public static async Task<RewriteBatchResult> RunAsync(IReportRewriter rewriter, IReadOnlyList<RewriteRequest> requests,
        ReportFindingsReader? reader = null, Action<int, int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rewriter);
        ArgumentNullException.ThrowIfNull(requests);
        reader ??= new ReportFindingsReader();
        var kept = new List<JudgedRewrite>();
        var dropped = new List<JudgedRewrite>();
        var na = new List<string>();
        int cached = 0;
        for (int i = 0; i < requests.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rw = await rewriter.RewriteAsync(requests[i], cancellationToken).ConfigureAwait(false);
            if (rw is null) na.Add(requests[i].Id);
            else
            {
                if (rw.FromCache) cached++;
                var verdict = RewriteCheck.Judge(rw, reader);
                (verdict.Kept ? kept : dropped).Add(new JudgedRewrite(rw, verdict));
            }
            progress?.Invoke(i + 1, requests.Count);
        }
        return new RewriteBatchResult(kept, dropped, na, cached);
    }
}
