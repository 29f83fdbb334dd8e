using System.Globalization;
using RoentGen.Interactive;

namespace RoentGen.Experiments;

/// <summary>
/// The HTML report of <see cref="DomainAdaptation.Run"/> (DIR/report.html): the claims table, the domain shift, the
/// variants' curves of adherence and FID against steps with their intervals, and the text-encoder probe.
/// </summary>
public static class DomainAdaptationReport
{
    /// <summary>File name of the report inside the output folder.</summary>
    public const string ReportFile = "report.html";

    /// <summary>Builds the report.</summary>
    public static HtmlReport Build(DomainAdaptationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var c = result.Config;
        var report = new HtmlReport("RoentGen: adapting a general-domain model to chest X-rays");
        report.Paragraph(
            $"A foundation model (VAE, text encoder, UNet) pretrained on {c.SceneImages} general-domain scenes for {c.FoundationSteps} denoiser steps, "
            + $"then adapted to {c.Cxr.TrainImages} phantom chest X-rays with their reports in four ways at one budget of {c.FineTuneSteps} steps, "
            + $"over seeds {string.Join(", ", result.Seeds)}. Adherence: the judge's AUC for each finding a prompt names (0.5 = ignored), "
            + $"on images generated from {c.ReportPrompts} held-out phantom reports (report adherence; the real images of those reports score "
            + string.Create(CultureInfo.InvariantCulture, $"{result.ReportAdherenceCeiling:F3}, the ceiling) and from {RoentGen.Evaluation.PromptAdherence.DefaultPrompts.Count} short prompts naming one finding each (short-prompt adherence); FID: the judge's ")
            + $"features against {c.HeldOutImages} held-out phantoms. Intervals are 95 % Student-t intervals over the seeds.");
        report.Heading("Claims: the paper against this study");
        report.Add(result.ClaimTable());
        report.Heading("The domain shift");
        report.Paragraph("The foundation model has never seen a chest X-ray or a radiology word; prompted with reports it draws scenes. Next to it, each variant at the full budget (means over the seeds).");
        report.Add(result.ShiftTable());
        report.Heading("Fine-tuning variants: curves against steps");
        report.Chart(result.CurveFigure("report_adherence"));
        report.Chart(result.CurveFigure("adherence"));
        report.Chart(result.CurveFigure("fid"));
        report.Chart(result.CurveFigure("pneumothorax_adherence"));
        report.Add(result.CurveTable());
        if (result.Runs.FirstOrDefault(r => r.TextEncoderUnchanged is not null) is { } a)
            report.Paragraph($"Variant (a) froze the text encoder: bit-identical to the foundation model's after training: {(result.Runs.Where(r => r.TextEncoderUnchanged is not null).All(r => r.TextEncoderUnchanged == true) ? "yes" : "NO")} (every seed).");
        report.Heading("What the text encoder learned");
        report.Paragraph("Pooled text-encoder embeddings of held-out reports, probed per finding (linear probe chosen on validation, and k-NN), before (foundation) and after fine-tuning; pneumothorax first.");
        report.Add(result.TextProbeTable());
        foreach (var reports in result.TextProbes.Select(p => p.Reports).Distinct())
            report.Chart(result.TextProbeFigure(reports));
        report.Paragraph(string.Create(CultureInfo.InvariantCulture, $"Written in {result.Seconds:F0} s (stages finished by earlier calls are not counted)."));
        return report;
    }

    /// <summary>Writes the report into <paramref name="outDir"/> and returns its path.</summary>
    public static string Save(DomainAdaptationResult result, string outDir)
    {
        var path = Path.Combine(outDir, ReportFile);
        Build(result).Save(path);
        return path;
    }
}
