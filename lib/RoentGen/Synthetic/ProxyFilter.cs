using RoentGen.Data;
using RoentGen.Evaluation;
using RoentGen.Vision.Segmentation;
using static TorchSharp.torch;

namespace RoentGen.Synthetic;

/// <summary>One synthetic training image: the image, what it was conditioned on, and the labels and masks it teaches.</summary>
/// <param name="Id">Unique id (also the file name in the study's cache and the image id of expert ratings).</param>
/// <param name="Source">How it was made, e.g. "text-single", "text-report", "mask".</param>
/// <param name="Image">Intensities in [0, 1].</param>
/// <param name="Labels">The condition's CheXpert labels (what a classifier learns from it).</param>
/// <param name="Masks">The condition's masks by name (what a segmenter learns from it), or null for a text-conditioned image.</param>
/// <param name="Prompt">The text condition.</param>
public sealed record SyntheticImage(string Id, string Source, GrayImage Image, CxrLabels Labels, IReadOnlyDictionary<string, GrayImage>? Masks, string Prompt);

/// <summary>Settings of <see cref="ProxyFilter"/>.</summary>
public sealed record ProxyFilterOptions
{
    /// <summary>
    /// Observations the classifier check looks at (default: the findings the phantom world draws). A Positive label needs
    /// a probability at or above the observation's validation threshold, a Negative or unmentioned one a probability
    /// below it; Uncertain labels are not checked.
    /// </summary>
    public IReadOnlyList<Observation> Findings { get; init; } =
    [
        Observation.Cardiomegaly, Observation.LungLesion, Observation.Edema, Observation.Consolidation, Observation.Atelectasis,
        Observation.Pneumothorax, Observation.PleuralEffusion, Observation.Fracture, Observation.SupportDevices,
    ];

    /// <summary>The lowest mean Dice (over the segmenter's structures the condition has masks of) that passes.</summary>
    public double MinDice { get; init; } = 0.5;
}

/// <summary>What the filter said about one image.</summary>
/// <param name="Id">The image.</param>
/// <param name="Keep">Kept for training.</param>
/// <param name="ClassifierAgrees">Whether the classifier's predictions agree with the labels (null: not checked).</param>
/// <param name="Disagreements">The observations it disagreed on, e.g. "Pneumothorax: 0.12 &lt; 0.40".</param>
/// <param name="Dice">Mean Dice of the segmenter's masks to the condition's (null: not checked, e.g. no masks).</param>
/// <param name="ExpertRejected">True when an expert's rating rejected it.</param>
public sealed record ProxyVerdict(string Id, bool Keep, bool? ClassifierAgrees, IReadOnlyList<string> Disagreements, double? Dice, bool ExpertRejected);

/// <summary>
/// Proxy-model filtering of a synthetic set (Prakash et al. 2024): a classifier and a segmenter trained on the real
/// training set score each synthetic image, and an image is kept only when their predictions agree with its condition:
/// every checked observation on the right side of its validation threshold, and the segmenter's masks within
/// <see cref="ProxyFilterOptions.MinDice"/> of the condition's masks. Expert ratings (accept/reject per image id) can
/// veto images on top. Either proxy may be absent (its check is skipped).
/// </summary>
public sealed class ProxyFilter
{
    private readonly IFindingScorer? _classifier;
    private readonly IReadOnlyList<double>? _thresholds;
    private readonly Segmenter? _segmenter;
    private readonly IReadOnlySet<string>? _expertRejected;

    /// <summary>A filter from proxies trained on real data.</summary>
    /// <param name="classifier">The finding classifier (images in [−1, 1] → 14 probabilities), or null.</param>
    /// <param name="thresholds">Its 14 per-observation thresholds chosen on validation (<see cref="FindingScore.Threshold"/>); needed with a classifier.</param>
    /// <param name="segmenter">The segmenter, or null.</param>
    /// <param name="options">Settings (null: defaults).</param>
    /// <param name="expertRejected">Image ids an expert rejected (e.g. from <c>roentgen feedback export</c>), or null.</param>
    /// <exception cref="ArgumentException">A classifier without 14 thresholds.</exception>
    public ProxyFilter(IFindingScorer? classifier, IReadOnlyList<double>? thresholds, Segmenter? segmenter, ProxyFilterOptions? options = null,
        IReadOnlySet<string>? expertRejected = null)
    {
        if (classifier is not null && (thresholds is null || thresholds.Count != ProxyFindingClassifier.Outputs))
            throw new ArgumentException($"the classifier check needs {ProxyFindingClassifier.Outputs} validation thresholds, got {thresholds?.Count.ToString() ?? "none"}", nameof(thresholds));
        _classifier = classifier;
        _thresholds = thresholds;
        _segmenter = segmenter;
        _expertRejected = expertRejected;
        Options = options ?? new ProxyFilterOptions();
    }

    /// <summary>The settings.</summary>
    public ProxyFilterOptions Options { get; }

    /// <summary>One verdict per image, in order.</summary>
    public IReadOnlyList<ProxyVerdict> Judge(IReadOnlyList<SyntheticImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) return [];
        var probabilities = _classifier is null ? null : ClassifierScores(images);
        var dice = _segmenter is null ? null : SegmenterDice(images);
        var verdicts = new ProxyVerdict[images.Count];
        for (int i = 0; i < images.Count; i++)
        {
            bool? agrees = null;
            var disagreements = new List<string>();
            if (probabilities is not null)
            {
                foreach (var o in Options.Findings)
                {
                    var mention = images[i].Labels[o];
                    if (mention == Mention.Uncertain) continue;
                    double p = probabilities[i * ProxyFindingClassifier.Outputs + (int)o], t = _thresholds![(int)o];
                    bool positive = mention == Mention.Positive;
                    if (positive && p < t) disagreements.Add(FormattableString.Invariant($"{o.Name()}: {p:0.00} < {t:0.00}"));
                    if (!positive && p >= t) disagreements.Add(FormattableString.Invariant($"{o.Name()}: {p:0.00} >= {t:0.00} (absent)"));
                }
                agrees = disagreements.Count == 0;
            }
            double? d = dice?[i] is double v && double.IsFinite(v) ? v : null;
            bool expert = _expertRejected?.Contains(images[i].Id) == true;
            bool keep = agrees != false && (d is null || d >= Options.MinDice) && !expert;
            verdicts[i] = new ProxyVerdict(images[i].Id, keep, agrees, disagreements, d, expert);
        }
        return verdicts;
    }

    private float[] ClassifierScores(IReadOnlyList<SyntheticImage> images)
    {
        using var scope = NewDisposeScope();
        var x = ImageTensors.Stack(images.Select(s => s.Image), -1f, 1f);             // (N, 1, S, S) in [-1, 1]
        return _classifier!.Predict(x).contiguous().data<float>().ToArray();            // (N × 14)
    }

    // Mean Dice over the segmenter's structures that the image's condition has a mask of; NaN for an image without masks.
    private double[] SegmenterDice(IReadOnlyList<SyntheticImage> images)
    {
        var seg = _segmenter!;
        int size = seg.Config.Size;
        var result = Enumerable.Repeat(double.NaN, images.Count).ToArray();
        var withMasks = Enumerable.Range(0, images.Count).Where(i => images[i].Masks is { Count: > 0 }).ToList();
        if (withMasks.Count == 0) return result;
        using var scope = NewDisposeScope();
        var x = ImageTensors.Stack(withMasks.Select(i => Resized(images[i].Image, size)), 0f, 1f); // (M, 1, S, S)
        var predicted = seg.Predict(x).contiguous().data<float>().ToArray();             // (M × C × S × S)
        int c = seg.Structures.Count, pixels = size * size;
        for (int k = 0; k < withMasks.Count; k++)
        {
            var masks = images[withMasks[k]].Masks!;
            var scores = new List<double>();
            for (int ch = 0; ch < c; ch++)
            {
                if (!masks.TryGetValue(seg.Structures[ch], out var m)) continue;
                var truth = Resized(m, size).Pixels.Select(v => v >= 0.5f ? 1f : 0f).ToArray();
                double dice = SegmentationLoss.Dice(predicted.AsSpan((k * c + ch) * pixels, pixels), truth);
                if (double.IsFinite(dice)) scores.Add(dice);
            }
            if (scores.Count > 0) result[withMasks[k]] = scores.Average();
        }
        return result;
    }

    private static GrayImage Resized(GrayImage image, int size) =>
        image.Width == size && image.Height == size ? image : RoentGen.Data.Datasets.ImageResize.Resize(image, size, size);
}
