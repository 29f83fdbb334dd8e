using System.Globalization;
using RoentGen.Interactive;

namespace RoentGen.Experiments;

/// <summary>
/// The HTML report of <see cref="SyntheticDataStudy.Run"/> (DIR/report.html): the paper's headline results beside ours,
/// every arm against real-only with its interval and corrected p-values, the arms' means, the proxy filter's kept
/// fractions, example synthetic images per source and what the filter kept and rejected, and the real-sample result.
/// </summary>
public static class SyntheticDataStudyReport
{
    /// <summary>File name of the report inside the output folder.</summary>
    public const string ReportFile = "report.html";

    /// <summary>Builds the report; <paramref name="outDir"/> is the study folder (for the example images).</summary>
    public static HtmlReport Build(SyntheticDataStudyResult result, string outDir)
    {
        ArgumentNullException.ThrowIfNull(result);
        var c = result.Config;
        var report = new HtmlReport("Synthetic training data for chest X-ray classification and segmentation");
        report.Paragraph(
            I($"After Prakash et al. 2024. Real phantom training sets of {string.Join(", ", c.Sizes)} images, seeds {string.Join(", ", result.Seeds)}; ")
            + I($"{c.SyntheticPerReal:0.##} synthetic image(s) per real image per source. Text-conditioned images: {result.TextGenerator}. ")
            + I($"Mask-conditioned images: {result.MaskGenerator}. Test: {c.TestImages} phantoms of a held-out world; F1 at thresholds chosen on ")
            + I($"{c.ValidationImages} validation phantoms. Differences are arm minus real-only, paired by seed, with 95 % Student-t intervals and ")
            + "one-sided paired t-tests, Bonferroni and Holm over every comparison.");
        if (result.Skipped.Count > 0) report.Paragraph("Not run: " + string.Join("; ", result.Skipped));
        report.Heading("The paper's headline results and ours");
        report.Add(result.HeadlineTable());
        report.Heading("Every arm against real only");
        report.Add(result.DifferenceTable());
        report.Heading("Arm means");
        report.Add(result.ArmTable());
        report.Heading("F1 per finding (largest real set)");
        report.Add(result.FindingTable());
        report.Heading("Proxy filter");
        report.Paragraph(string.Create(CultureInfo.InvariantCulture,
            $"The real-only classifier and segmenter of each cell score its synthetic images: kept when every finding's probability is on the side of its validation threshold that the labels say, and the segmenter's masks reach a mean Dice of {c.FilterMinDice:0.00} to the condition's."));
        report.Add(result.FilterTable());
        if (result.Cells.Count > 0)
        {
            int size = result.Cells.Min(x => x.Size);
            long seed = result.Seeds[0];
            report.Heading("Example synthetic images");
            foreach (var source in new[] { "text-single", "text-report", "mask" })
                if (SyntheticDataStudy.Examples(outDir, size, seed, source) is { } grid) report.Add(grid);
            if (SyntheticDataStudy.FilterExamples(outDir, size, seed) is { } kept) report.Add(kept);
        }
        report.Heading("Real sample: lung segmentation");
        if (result.RealSample is { } r)
            report.Paragraph(
                I($"{r.Train} real images trained on, {r.Images - r.Train} tested, {r.Seeds.Count} random splits; adding {r.Synthetic} synthetic images ({r.Generator}) changed the test lung Dice by ")
                + I($"{r.Difference:+0.000;-0.000} (95 % CI {r.Lower:0.000} to {r.Upper:0.000}, one-sided p {r.P:0.0000}); real only {r.RealOnly.Average():0.000}, with synthetic {r.WithSynthetic.Average():0.000}. {result.RealSampleNote}."));
        else report.Paragraph(result.RealSampleNote);
        report.Paragraph(string.Create(CultureInfo.InvariantCulture, $"{result.CellsComputed} cells trained by the last call in {result.Seconds:0} s (cells read back are not counted)."));
        return report;
    }

    private static string I(FormattableString text) => FormattableString.Invariant(text);

    /// <summary>Writes the report into <paramref name="outDir"/> and returns its path.</summary>
    public static string Save(SyntheticDataStudyResult result, string outDir)
    {
        var path = Path.Combine(outDir, ReportFile);
        Build(result, outDir).Save(path);
        return path;
    }
}
