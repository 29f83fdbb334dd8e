using System.Globalization;
using System.Text;
using System.Text.Json;
using RoentGen.Data;
using RoentGen.Platform;

namespace RoentGen.PairAug;

/// <summary>Reads reports to rewrite from files and writes rewrites as JSON lines.</summary>
public static class RewriteFiles
{
    /// <summary>
    /// The reports of a file as requests of one operation, seeded <paramref name="seed"/> + row index (so each report
    /// has its own, reproducible, seed):
    /// <list type="bullet">
    /// <item>a <c>.csv</c> (e.g. the generic layout's labels.csv): the <c>report</c> column, or <c>findings</c> and
    /// <c>impression</c> joined as "FINDINGS: ...\nIMPRESSION: ..."; ids from <c>file</c>, <c>id</c> or <c>uid</c>, else "row-N"; rows
    /// without a report are skipped;</item>
    /// <item>any other file: plain text with reports separated by blank lines (a report may span lines, as
    /// "FINDINGS: ...\nIMPRESSION: ..." does); ids "report-N" from 1.</item>
    /// </list>
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="operation">The operation of every request.</param>
    /// <param name="seed">Base seed.</param>
    /// <param name="limit">The most reports read, or null for all.</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">A CSV without a report column, or a file without any report; the message names the file.</exception>
    public static IReadOnlyList<RewriteRequest> ReadRequests(string path, RewriteOperation operation, long seed = 0, int? limit = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"no such reports file: {path}; expected a .csv with a 'report' column or a text file of reports separated by blank lines", path);
        var reports = new List<(string Id, string Text)>();
        if (path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
        {
            var table = Csv.ReadFile(path);
            bool hasReport = table.HasColumn("report"), hasSections = table.HasColumn("findings") || table.HasColumn("impression");
            if (!hasReport && !hasSections)
                throw new InvalidDataException($"{path}: no 'report' column (nor 'findings' / 'impression'); columns are: {string.Join(", ", table.Header)}");
            for (int i = 0; i < table.Rows.Count; i++)
            {
                var row = table.Rows[i];
                string? text = hasReport && row.Get("report") is { Length: > 0 } r && !string.IsNullOrWhiteSpace(r) ? r : null;
                if (text is null && hasSections)
                {
                    string? f = row.Get("findings"), imp = row.Get("impression");
                    var parts = new List<string>();
                    if (!string.IsNullOrWhiteSpace(f)) parts.Add($"FINDINGS: {f.Trim()}");
                    if (!string.IsNullOrWhiteSpace(imp)) parts.Add($"IMPRESSION: {imp.Trim()}");
                    if (parts.Count > 0) text = string.Join("\n", parts);
                }
                if (text is null) continue;
                string id = new[] { "file", "id", "uid" }.Select(c => row.Get(c)).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v)) ?? $"row-{i + 1}";
                reports.Add((id, text.Trim()));
            }
        }
        else
        {
            var block = new StringBuilder();
            void Flush()
            {
                if (block.Length > 0) reports.Add(($"report-{reports.Count + 1}", block.ToString().Trim()));
                block.Clear();
            }
            foreach (var line in File.ReadLines(path))
            {
                if (string.IsNullOrWhiteSpace(line)) Flush();
                else block.Append(block.Length > 0 ? "\n" : "").Append(line.TrimEnd());
            }
            Flush();
        }
        if (reports.Count == 0) throw new InvalidDataException($"{path}: no report found (a .csv needs a non-empty 'report' column; a text file holds reports separated by blank lines)");
        if (limit is int l) reports = reports.Take(Math.Max(0, l)).ToList();
        return reports.Select((r, i) => new RewriteRequest(r.Id, r.Text, operation, seed + i)).ToList();
    }

    /// <summary>
    /// Writes the kept rewrites to <paramref name="path"/> and the dropped ones (with their reason) to
    /// <paramref name="droppedPath"/>, one JSON object a line, atomically.
    /// </summary>
    public static void WriteJsonl(RewriteBatchResult result, string path, string droppedPath)
    {
        ArgumentNullException.ThrowIfNull(result);
        AtomicFile.WriteAllText(path, string.Concat(result.Kept.Select(k => ToJson(k) + "\n")));
        AtomicFile.WriteAllText(droppedPath, string.Concat(result.Dropped.Select(k => ToJson(k) + "\n")));
    }

    /// <summary>
    /// Reads the rewrites of a JSON-lines file written by <see cref="WriteJsonl"/> (id, operation, source, original,
    /// rewrite); the intended edits are not read back (null).
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">A line is not a rewrite; the message names the file and line.</exception>
    public static IReadOnlyList<ReportRewrite> ReadRewrites(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no such rewrites file: {path}; expected the JSON lines written by 'roentgen pairaug rewrite --out'", path);
        var list = new List<ReportRewrite>();
        int n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var o = doc.RootElement;
                string Get(string key) => o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
                    : throw new InvalidDataException($"{path}:{n}: a rewrite needs a string '{key}'");
                list.Add(new ReportRewrite(Get("id"), RewriteOperations.Parse(Get("operation")), Get("original"), Get("rewrite"), Get("source"), null, null));
            }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{n}: not a JSON rewrite ({e.Message})", e); }
            catch (ArgumentException e) { throw new InvalidDataException($"{path}:{n}: {e.Message}", e); }
        }
        return list;
    }

    /// <summary>
    /// One rewrite as a JSON line: id, operation, source, kept, reason, original, rewrite, intended edits and label changes
    /// (null when unknown), observed label changes, from_cache.
    /// </summary>
    public static string ToJson(JudgedRewrite j)
    {
        ArgumentNullException.ThrowIfNull(j);
        var r = j.Rewrite;
        static object Change(LabelChange c) => new { observation = c.Observation.Name(), before = c.Before ? "present" : "absent", after = c.After ? "present" : "absent" };
        return JsonSerializer.Serialize(new
        {
            id = r.Id,
            operation = r.Operation.CliName(),
            source = r.Source,
            kept = j.Verdict.Kept,
            reason = j.Verdict.Reason,
            original = r.Original,
            rewrite = r.Rewritten,
            edits = r.IntendedEdits?.Select(e => new { observation = e.Observation.Name(), kind = e.Kind.ToString().ToLower(CultureInfo.InvariantCulture), from = e.From, to = e.To }),
            intended_label_changes = r.IntendedLabelChanges?.Select(Change),
            observed_label_changes = j.Verdict.Observed.Select(Change),
            from_cache = r.FromCache,
        });
    }
}
