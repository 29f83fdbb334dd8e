using System.Globalization;
using System.Net;
using RoentGen.Interactive;

namespace RoentGen.Experiments;

/// <summary>
/// The HTML report of <see cref="AugmentationStudy.Run"/> (DIR/report.html): the findings in words, the claims table
/// (the paper's figures next to the measured changes with intervals), the arms with intervals, the per-finding charts,
/// the generator's adherence and diversity, and the memorization audit with its closest pairs.
/// </summary>
public static class AugmentationStudyReport
{
    /// <summary>File name of the report inside the output folder.</summary>
    public const string ReportFile = "report.html";

    /// <summary>Builds the report; <paramref name="outDir"/> (the study folder) supplies the images of the closest pairs.</summary>
    public static HtmlReport Build(AugmentationStudyResult result, string? outDir = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        var c = result.Config;
        var g = result.Generator;
        var report = new HtmlReport("RoentGen's downstream claim: synthetic chest X-rays as training data");
        report.Paragraph(
            I($"One small CNN for the 14 CheXpert observations, the same shape and {c.Training.Steps} training steps for every arm, trained on (1) N real phantoms of world {g.World}, ")
            + I($"(2) those plus one synthetic image per training report, (3) {c.SyntheticMultiple} synthetic images per training report and no real one; ")
            + I($"thresholds from {c.ValidationImages} validation phantoms of the training world, tested on {c.TestImages} phantoms of world {g.TestWorld}; seeds {string.Join(", ", c.Seeds)}. ")
            + I($"Generator: {g.Dir} ({g.ImageSize} px, {g.GeneratorSteps} denoiser steps on {g.GeneratorTrainImages} phantoms of world {g.World}, prompts {g.PromptSource}). ")
            + "Intervals are 95 % Student-t intervals over the seeds; p-values are one-sided paired t-tests (paired by seed) that the arm beats real-only.");
        report.Heading("What this study found");
        report.Raw("<ul>" + string.Concat(result.Narrative().Select(l => $"<li>{WebUtility.HtmlEncode(l)}</li>")) + "</ul>");
        report.Heading("Claims: the paper against this study");
        report.Paragraph("Chambon et al. 2022 (RoentGen) report that a classifier trained on a fixed real training set augmented with synthetic images improved by 5 %, and one trained on a larger purely synthetic set by 3 %. Here: the relative change of macro AUC against real-only.");
        report.Add(result.ClaimTable());
        report.Chart(result.ChangeFigure());
        report.Heading("The arms");
        report.Add(result.ArmTable());
        report.Add(result.ChangeTable());
        foreach (var n in c.Sizes)
        {
            report.Heading($"Per finding, N = {n}", 3);
            report.Chart(result.PerFindingFigure(n));
            report.Add(result.PerFindingTable(n));
        }
        report.Heading("The generator on these reports: adherence and diversity");
        report.Add(result.QualityTable());
        report.Heading("Memorization audit");
        report.Paragraph(
            I($"Each synthetic image's nearest image in the generator's training set (the {result.Memorization.TrainingImages} phantoms it trained on, the real images whose reports prompted the synthetic ones among them) by SSIM and by the judge's feature cosine; ")
            + "held-out real images of the test world searched the same way give the rate two different real images reach by chance.");
        report.Add(result.MemorizationTable());
        if (outDir is not null && result.Memorization.ClosestPairs.Count > 0)
        {
            try { report.Add(result.MemorizationGrid(outDir)); }
            catch (FileNotFoundException e) { report.Paragraph($"Closest pairs not shown: {e.Message}"); }
        }
        report.Paragraph(string.Create(CultureInfo.InvariantCulture, $"Written in {result.Seconds:F0} s (runs finished by earlier calls are not counted)."));
        return report;
    }

    private static string I(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>Writes the report into <paramref name="outDir"/> and returns its path.</summary>
    public static string Save(AugmentationStudyResult result, string outDir)
    {
        var path = Path.Combine(outDir, ReportFile);
        Build(result, outDir).Save(path);
        return path;
    }
}
