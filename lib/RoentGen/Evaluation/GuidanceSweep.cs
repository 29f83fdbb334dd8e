using Microsoft.Data.Analysis;
using RoentGen.Data;
using RoentGen.Evaluation.Statistics;
using RoentGen.Visualization;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>One guidance scale of a <see cref="GuidanceSweep"/>: fidelity to the prompt and diversity of its samples.</summary>
/// <param name="Scale">Guidance scale w.</param>
/// <param name="Images">Samples (one per seed).</param>
/// <param name="MeanProbability">Mean judge probability of the prompted finding (fidelity).</param>
/// <param name="ProbabilityLow">Lower end of the bootstrap interval of that mean.</param>
/// <param name="ProbabilityHigh">Upper end.</param>
/// <param name="MsSsim">Mean pairwise MS-SSIM between the samples (1 = identical: lower is more diverse).</param>
public sealed record GuidanceSweepRow(double Scale, int Images, double MeanProbability, double ProbabilityLow, double ProbabilityHigh, double MsSsim);

/// <summary>
/// Classifier-free guidance trades diversity for fidelity (Ho and Salimans 2022, Table 1 on ImageNet 64x64: as w grows
/// the Inception Score rises while FID, past its best at a small w, gets worse). This measures both sides on one prompt: the judge's probability of the prompted finding
/// (fidelity) and the mean pairwise MS-SSIM of the samples drawn from the same seeds (higher = less diverse).
/// </summary>
public static class GuidanceSweep
{
    /// <summary>Scores one batch of samples per guidance scale.</summary>
    /// <param name="scales">The guidance scales, one per entry of <paramref name="samplesPerScale"/>.</param>
    /// <param name="samplesPerScale">Samples (K, 1, H, W) in [−1, 1] of one prompt at each scale, the same seeds in each.</param>
    /// <param name="judge">The finding classifier.</param>
    /// <param name="finding">The finding the prompt names.</param>
    /// <param name="level">Confidence level of the bootstrap interval.</param>
    /// <exception cref="ArgumentException">The counts differ or a scale has fewer than two samples.</exception>
    public static IReadOnlyList<GuidanceSweepRow> Measure(IReadOnlyList<double> scales, IReadOnlyList<Tensor> samplesPerScale, IFindingScorer judge,
        Observation finding, double level = 0.95)
    {
        if (scales.Count != samplesPerScale.Count)
            throw new ArgumentException($"{scales.Count} scales but {samplesPerScale.Count} sample batches; give one batch per scale");
        var rows = new List<GuidanceSweepRow>();
        for (int i = 0; i < scales.Count; i++)
        {
            var images = samplesPerScale[i];
            if (images.dim() != 4 || images.shape[0] < 2)
                throw new ArgumentException($"scale {scales[i]}: need (K >= 2, 1, H, W) samples to measure diversity, got shape [{string.Join(", ", images.shape)}]");
            double[] p;
            using (no_grad()) p = judge.Predict(images).select(1, (int)finding).to(ScalarType.Float64).data<double>().ToArray();
            var ci = Bootstrap.Percentile(p, Bootstrap.Mean, level: level);
            rows.Add(new GuidanceSweepRow(scales[i], p.Length, p.Average(), ci.Lower, ci.Upper, Diversity.MsSsim([images])));
        }
        return rows;
    }

    /// <summary>The rows as a table: w, images, mean p(finding) with its interval, MS-SSIM.</summary>
    public static DataFrame ToDataFrame(IReadOnlyList<GuidanceSweepRow> rows) => new(
        new DoubleDataFrameColumn("guidance w", rows.Select(r => r.Scale)),
        new Int32DataFrameColumn("images", rows.Select(r => r.Images)),
        new DoubleDataFrameColumn("mean p(finding)", rows.Select(r => r.MeanProbability)),
        new DoubleDataFrameColumn("p low", rows.Select(r => r.ProbabilityLow)),
        new DoubleDataFrameColumn("p high", rows.Select(r => r.ProbabilityHigh)),
        new DoubleDataFrameColumn("MS-SSIM between samples (higher = less diverse)", rows.Select(r => r.MsSsim)));

    /// <summary>Fidelity and MS-SSIM against w, on one chart (both in [0, 1]).</summary>
    public static Figure Chart(IReadOnlyList<GuidanceSweepRow> rows, string title = "guidance: fidelity against diversity")
    {
        var x = rows.Select(r => r.Scale).ToArray();
        return new Figure(title,
            [
                new ScatterTrace { Name = "mean p(finding) (fidelity)", X = x, Y = rows.Select(r => r.MeanProbability).ToArray(), Mode = ScatterMode.LinesMarkers },
                new ScatterTrace { Name = "MS-SSIM between samples (1 - diversity)", X = x, Y = rows.Select(r => r.MsSsim).ToArray(), Mode = ScatterMode.LinesMarkers },
            ],
            new FigureLayout { XAxis = new FigureAxis { Title = "guidance scale w" }, YAxis = new FigureAxis { Title = "value", Range = new AxisRange(0, 1) } });
    }
}
