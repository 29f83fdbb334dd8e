using System.Globalization;
using RoentGen.Interactive;
using RoentGen.PairAug;

namespace RoentGen.Experiments;

/// <summary>
/// The HTML report of <see cref="PairAugStudy.Run"/> (DIR/report.html): the paper's claim and this study's verdicts,
/// the results table (each arm's metrics over the seeds with intervals), the paired tests against real-only, the
/// rewrite and pruning counts, and the two t-SNE views (real vs synthetic images, real vs rewritten reports).
/// </summary>
public static class PairAugStudyReport
{
    /// <summary>File name of the report inside the study folder.</summary>
    public const string ReportFile = "report.html";

    /// <summary>Builds the report.</summary>
    public static HtmlReport Build(PairAugStudyResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var c = result.Config;
        var report = new HtmlReport("RoentGen: PairAug on phantoms (InterAug, IntraAug, pruning, CLIP-style pretraining)");
        var inv = CultureInfo.InvariantCulture;
        report.Paragraph(string.Concat(
            string.Create(inv, $"{c.Clip.Phantoms} real phantom pairs; {c.InterRewrites} reports rewritten for InterAug (partial opposite) and {c.IntraRewrites} for IntraAug "),
            string.Create(inv, $"(change in symptoms) by the offline rule-based rewriter; images drawn by the text-to-CXR generator (InterAug: {c.Inter.Steps} DDIM steps, guidance {c.Inter.GuidanceScale}; "),
            string.Create(inv, $"IntraAug: prompt-to-prompt {c.Intra.Edit.Kind}, {c.Intra.Edit.Steps} steps, cross {c.Intra.Edit.CrossReplaceSteps}, self {c.Intra.Edit.SelfReplaceSteps}; "),
            string.Create(inv, $"{c.RealEdits} edits of the real image by DDIM inversion and null-text optimisation). The CLIP-style model of every arm trains {c.Clip.Steps} steps of "),
            string.Create(inv, $"{c.Clip.BatchSize} pairs with seeds {string.Join(", ", result.Seeds)}; it is judged zero-shot (CheXzero prompts, AUC per finding with 1,000-resample "),
            string.Create(inv, $"stratified bootstrap intervals) and by linear probes at 1/10/100 % of the labels of {c.EvalImages} held-out phantoms. Intervals in the tables are 95 % "),
            "Student-t intervals over the seeds; tests are paired one-sided t-tests of each augmented arm against real-only, Holm-adjusted across metrics."));
        report.Heading("The claim and this study");
        report.Paragraph(result.Claim);
        foreach (var v in result.Verdicts) report.Paragraph(v);
        report.Heading("Results per arm (mean over seeds [95 % interval])");
        report.Add(result.ResultsTable());
        report.Heading("Augmented arms against real-only");
        report.Add(result.TestsTable());
        report.Heading("Rewrites and pruning");
        report.Add(result.CountsTable());
        if (result.RealTb is not null) report.Paragraph($"Real TB-vs-normal zero-shot ('tuberculosis' vs 'no tuberculosis'): {result.RealTb}. Its AUC per arm is the metric real_tb_zero_shot_auc.");
        else report.Paragraph("Real TB-vs-normal zero-shot: skipped (no real sample).");
        report.Heading("t-SNE views in the VLP's embedding space");
        report.Chart(result.Tsne.ImageFigure());
        report.Chart(result.Tsne.ReportFigure());
        report.Paragraph(string.Create(CultureInfo.InvariantCulture,
            $"Written in {result.Seconds:F0} s by this call; stages run now: {string.Join(", ", result.StageSeconds.Select(kv => $"{kv.Key} {kv.Value:F0} s"))} (stages finished by earlier calls are not counted)."));
        return report;
    }

    /// <summary>Writes the report into <paramref name="outDir"/> and returns its path.</summary>
    public static string Save(PairAugStudyResult result, string outDir)
    {
        var path = Path.Combine(outDir, ReportFile);
        Build(result).Save(path);
        return path;
    }
}
