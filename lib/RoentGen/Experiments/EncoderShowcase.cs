using RoentGen.Data;
using RoentGen.Evaluation.Probes;
using RoentGen.Visualization;
using static TorchSharp.torch;

namespace RoentGen.Experiments;

/// <summary>What one frozen encoder's probes produce, beyond their scores: predicted masks and one generated report.</summary>
/// <param name="Encoder">The encoder's name.</param>
/// <param name="Segmentation">The segmentation probe's result, with the kept predictions.</param>
/// <param name="Masks">Test images with the predicted masks over them (one row per image: one cell per structure).</param>
/// <param name="ReferenceReport">A test image's report.</param>
/// <param name="GeneratedReport">The report decoder's text for that image.</param>
public sealed record EncoderShowcase(string Encoder, SegmentationProbeResult Segmentation, ImageGrid Masks, string ReferenceReport, string GeneratedReport);

/// <summary>
/// The probes of notebook 05 opened up: the 0/1 labels a linear probe is fitted to, and for each encoder the masks its
/// segmentation head predicts and a report its decoder writes from the frozen tokens.
/// </summary>
public static class EncoderShowcases
{
    /// <summary>Whether each image of a split shows <paramref name="finding"/> (the labels' column, in <see cref="Observations.All"/> order).</summary>
    public static bool[] Has(ProbeSplit split, Observation finding)
    {
        int j = Observations.All.ToList().IndexOf(finding);
        if (j < 0 || j >= split.Labels.GetLength(1))
            throw new ArgumentException($"the split's labels have {split.Labels.GetLength(1)} columns; no column for {finding}");
        return Enumerable.Range(0, split.Count).Select(i => split.Labels[i, j] > 0.5f).ToArray();
    }

    /// <summary>
    /// Trains the segmentation probe and the report probe on <paramref name="encoder"/>'s frozen features of the training
    /// split (with <paramref name="options"/>' settings), and returns the first <paramref name="images"/> test images'
    /// predicted masks and the first test report beside the decoder's.
    /// </summary>
    public static EncoderShowcase Run(IImageEncoder encoder, ProbeData data, ProbeSuiteOptions options, int images = 3)
    {
        if (images < 1) throw new ArgumentOutOfRangeException(nameof(images), images, "show at least one image");
        var train = EncodedFeatures.Extract(encoder, data.Train.Images, options.BatchSize);
        var test = EncodedFeatures.Extract(encoder, data.Test.Images, options.BatchSize);
        var seg = SegmentationProbe.Train(train, data.Train.Masks, test, data.Test.Masks, options.Segmentation with { KeepPredictions = images });
        var grid = new ImageGrid(columns: seg.PerStructure.Count, title: $"{encoder.Name}: predicted masks (test images)");
        if (seg.Predictions is { } pred)
        {
            for (int i = 0; i < pred.shape[0]; i++)
            {
                var image = ImageTensors.FromTensor(data.Test.Images[i]);
                for (int c = 0; c < seg.PerStructure.Count; c++)
                {
                    var name = seg.PerStructure[c].Structure;
                    var mask = ImageTensors.FromTensor(pred[i, c].unsqueeze(0), 0f, 1f);
                    grid.AddWithMask(image, mask, $"{name} (Dice {seg.PerStructure[c].Dice:F2} overall)", DataTour.MaskColor(name));
                }
            }
        }
        var report = ReportProbe.Train(train, data.Train.Reports, test, data.Test.Reports, options.Report);
        var (reference, generated) = report.Examples.Count > 0 ? report.Examples[0] : ("", "(no report to show)");
        return new EncoderShowcase(encoder.Name, seg, grid, reference, generated);
    }
}
