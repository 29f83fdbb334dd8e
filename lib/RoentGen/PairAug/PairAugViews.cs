using Microsoft.Data.Analysis;
using RoentGen.Diffusion;
using RoentGen.Visualization;
using static TorchSharp.torch;

namespace RoentGen.PairAug;

/// <summary>An IntraAug edit shown: the source and edited images from one latent, and each word's averaged cross-attention map.</summary>
/// <param name="Source">The source report (prompt 0).</param>
/// <param name="Edited">The rewritten report (prompt 1).</param>
/// <param name="Images">Source and edited image side by side.</param>
/// <param name="SourceWordMaps">The source prompt's words and where they were attended (brighter = more).</param>
/// <param name="EditWordMaps">The edited prompt's words and their maps.</param>
/// <param name="CrossAttentionLayers">Cross-attention layers the controller handled (every one of the UNet's).</param>
public sealed record IntraAugEditView(string Source, string Edited, ImageGrid Images, ImageGrid SourceWordMaps, ImageGrid EditWordMaps, int CrossAttentionLayers);

/// <summary>What notebook 09 shows of PairAug: rewrites side by side and one IntraAug edit with its per-word attention maps.</summary>
public static class PairAugViews
{
    /// <summary>
    /// Each report next to its two offline rewrites (partial opposite for InterAug, change in symptoms for IntraAug), with
    /// the check's verdict (kept, or why dropped, or "not applicable").
    /// </summary>
    public static DataFrame Rewrites(IReadOnlyList<string> reports, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var rewriter = new RuleBasedReportRewriter();
        var reader = new ReportFindingsReader();
        string Do(string report, RewriteOperation op, int i)
        {
            var r = rewriter.RewriteAsync(new RewriteRequest($"r{i}", report, op, seed + i)).GetAwaiter().GetResult();
            if (r is null) return "(not applicable)";
            var verdict = RewriteCheck.Judge(r, reader);
            return verdict.Kept ? r.Rewritten : $"{r.Rewritten} (dropped: {verdict.Reason})";
        }
        return new DataFrame(
            new StringDataFrameColumn("original", reports),
            new StringDataFrameColumn("partial opposite (InterAug)", reports.Select((r, i) => Do(r, RewriteOperation.PartialOpposite, i))),
            new StringDataFrameColumn("change in symptoms (IntraAug)", reports.Select((r, i) => Do(r, RewriteOperation.ChangeInSymptoms, i))));
    }

    /// <summary>
    /// Edits <paramref name="rewrite"/>'s original into its rewrite with prompt-to-prompt (<paramref name="options"/>, maps
    /// recorded) and returns both images and, for up to <paramref name="maxWords"/> words of each prompt, the word's
    /// cross-attention map averaged over its tokens, heads, layers and steps, min-max scaled and drawn at the image size.
    /// </summary>
    public static IntraAugEditView Edit(TextToImagePipeline pipeline, ReportRewrite rewrite, PromptToPromptOptions options, int maxWords = 8)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(rewrite);
        using var scope = NewDisposeScope();
        var result = new PromptToPromptEditor(pipeline).Edit(rewrite.Original, [rewrite.Rewritten], options with { RecordMaps = true });
        var maps = result.Controller.AverageMaps ?? throw new InvalidOperationException("the controller recorded no attention maps");   // (P, L, h, w)
        int size = (int)result.Images.shape[2];
        ImageGrid Words(int p)
        {
            var prompt = result.Controller.Prompts[p];
            var words = prompt.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => w.Trim('.', ',', ';', ':')).Where(w => w.Length > 0)
                .Distinct(StringComparer.OrdinalIgnoreCase).Take(maxWords).ToList();
            var shown = new List<(string Word, Tensor Map)>();
            foreach (var w in words)
            {
                var tokens = TokenAlignment.TokensOfWord(pipeline.Tokenizer, prompt, w, pipeline.MaxTokens);
                if (tokens.Count == 0) continue;
                var m = maps[p].index_select(0, tensor(tokens.Select(t => (long)t).ToArray())).mean([0]);            // (h, w)
                m = (m - m.min()) / (m.max() - m.min() + 1e-8f);
                shown.Add((w, nn.functional.interpolate(m.reshape(1, 1, m.shape[0], m.shape[1]), [size, size], mode: InterpolationMode.Nearest)));
            }
            if (shown.Count == 0) return ImageGrid.FromTensor(zeros(1, 1, size, size), 1, 0, 1, ["(no word found)"]);
            return ImageGrid.FromTensor(cat(shown.Select(s => s.Map).ToList(), 0), Math.Min(shown.Count, 8), 0, 1, shown.Select(s => s.Word), $"prompt {p}: {prompt}");
        }
        var images = ImageGrid.FromTensor(result.Images, 2, captions: ["source: " + Short(rewrite.Original), "edit: " + Short(rewrite.Rewritten)]);
        return new IntraAugEditView(rewrite.Original, rewrite.Rewritten, images, Words(0), Words(1), result.Controller.CrossAttentionLayers.Count);
    }

    private static string Short(string s) => s.Length > 60 ? s[..60] + "..." : s;
}
