using System.Text.Json;
using RoentGen.Platform;
using RoentGen.Visualization;
using RoentGen.Training;

namespace RoentGen.Vision;

/// <summary>What a finished DINO run writes beside its checkpoints: metrics.json and an offline loss chart.</summary>
public static class DinoRunReport
{
    /// <summary>Name of the metrics file.</summary>
    public const string MetricsFileName = "metrics.json";
    /// <summary>Name of the chart file.</summary>
    public const string ChartFileName = "loss.html";

    /// <summary>The curves drawn in the chart besides the total (those present in the history).</summary>
    public static IReadOnlyList<string> ChartedMetrics => DinoCharts.LossTerms;

    /// <summary>
    /// Writes <c>metrics.json</c> (per-step loss and metrics, their last values, throughput of this session) and
    /// <c>loss.html</c> (total loss and each enabled loss per step) into <paramref name="outputDir"/>.
    /// </summary>
    /// <param name="history">The run's history (all steps, including those before a resume).</param>
    /// <param name="outputDir">The run folder.</param>
    /// <param name="stepsThisSession">Steps trained by this process (after a resume, fewer than the history).</param>
    /// <param name="seconds">Wall time of this process's training.</param>
    /// <param name="title">Title of the loss chart.</param>
    public static void Save(TrainingHistory history, string outputDir, int stepsThisSession, double seconds, string title = "DINOv2 losses")
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

        Charts.SaveHtml(DinoCharts.Losses(history, title), Path.Combine(outputDir, ChartFileName));
    }
}
