using System.Text.Json;
using RoentGen.Platform;
using RoentGen.Visualization;
using RoentGen.Training;
using RoentGen.Methods;

namespace RoentGen.Reporting;

/// <summary>
/// What a finished DINO (or baseline) run writes beside its checkpoints: metrics.json and the loss chart as plotly
/// figure JSON (<see cref="FigureFileName"/>). The core library draws nothing itself: <c>roentgen train</c> renders that
/// figure to <see cref="ChartFileName"/>, an offline HTML page, through RoentGen.Interactive's <c>FigureHtml</c>.
/// </summary>
public static class RunReport
{
    /// <summary>Name of the metrics file.</summary>
    public const string MetricsFileName = "metrics.json";
    /// <summary>Name of the loss chart's figure JSON file (<see cref="Figure.ToJson"/>), written by <see cref="Save"/>.</summary>
    public const string FigureFileName = "loss.plotly.json";
    /// <summary>Name of the loss chart's HTML page, written from <see cref="FigureFileName"/> by the CLI's train verbs (not by <see cref="Save"/>).</summary>
    public const string ChartFileName = "loss.html";

    /// <summary>The curves drawn in the chart besides the total (those present in the history).</summary>
    public static IReadOnlyList<string> ChartedMetrics => DinoCharts.LossTerms;

    /// <summary>
    /// Writes <c>metrics.json</c> (per-step loss and metrics, their last values, throughput of this session) and
    /// <c>loss.plotly.json</c> (the figure of the total loss and each enabled loss per step, <see cref="DinoCharts.Losses"/>; compact JSON)
    /// into <paramref name="outputDir"/>, each atomically.
    /// </summary>
    /// <param name="history">The run's history (all steps, including those before a resume).</param>
    /// <param name="outputDir">The run folder.</param>
    /// <param name="stepsThisSession">Steps trained by this process (after a resume, fewer than the history).</param>
    /// <param name="seconds">Wall time of this process's training.</param>
    /// <param name="title">Title of the loss chart.</param>
    /// <returns>The loss figure written (to render it, e.g. as <see cref="ChartFileName"/>).</returns>
    public static Figure Save(TrainingHistory history, string outputDir, int stepsThisSession, double seconds, string title = "DINOv2 losses")
    {
        Directory.CreateDirectory(outputDir);
        var last = history.Metrics.Where(kv => kv.Value.Count > 0).ToDictionary(kv => kv.Key, kv => kv.Value[^1]);
        if (history.Steps > 0) last["loss"] = history.Loss[^1];
        var doc = new
        {
            steps = history.Steps,
            steps_this_session = stepsThisSession,
            seconds_this_session = seconds,
            steps_per_second = seconds > 0 ? stepsThisSession / seconds : 0,
            final = last,
            loss = history.Loss,
            lr_factor = history.LrFactor,
            metrics = history.Metrics,
        };
        AtomicFile.WriteAllText(Path.Combine(outputDir, MetricsFileName), JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));

        var figure = DinoCharts.Losses(history, title);
        AtomicFile.WriteAllText(Path.Combine(outputDir, FigureFileName), figure.ToJson());
        return figure;
    }
}
