namespace RoentGen.PairAug;

/// <summary>The three IntraAug scores of one edited pair (PairAug's hybrid pruning), all cosines in the CLIP space.</summary>
/// <param name="ImageSimilarity">cos(img_syn, img_real): the edit stays the same patient.</param>
/// <param name="ChangeAlignment">cos(img_syn − img_real, txt_new − txt_orig) of the L2-normalised embeddings: the image changed as the report did.</param>
/// <param name="TextAlignment">cos(img_syn, txt_new): the edited image matches its report.</param>
public sealed record IntraScores(double ImageSimilarity, double ChangeAlignment, double TextAlignment);

/// <summary>Hybrid pruning's outcome, with the count left after each stage.</summary>
/// <param name="Kept">Per pair, whether it passed all three rules.</param>
/// <param name="ImageThreshold">mean(ImageSimilarity) − margin.</param>
/// <param name="ChangeThreshold">mean(ChangeAlignment) − margin.</param>
/// <param name="TextThreshold">mean(TextAlignment) − margin.</param>
/// <param name="Total">Pairs scored.</param>
/// <param name="AfterImage">Pairs above the image threshold.</param>
/// <param name="AfterChange">Pairs above the image and change thresholds.</param>
/// <param name="AfterText">Pairs above all three (the kept count).</param>
public sealed record HybridPruningResult(bool[] Kept, double ImageThreshold, double ChangeThreshold, double TextThreshold,
    int Total, int AfterImage, int AfterChange, int AfterText)
{
    /// <summary>Pairs pruned.</summary>
    public int Pruned => Total - AfterText;
}

/// <summary>
/// PairAug's pruning rules (Xie et al., CVPR 2024, and its released filter scripts). InterAug: a pair is kept when its
/// scaled image-text score exceeds 0.3, where the score is the CLIP model's logit, i.e. its logit scale (1/temperature)
/// times cos(image, report), as MedCLIP's <c>logits</c> output that PairAug thresholds. IntraAug: a pair is kept when each of
/// its three <see cref="IntraScores"/> is strictly above that score's mean over all scored pairs minus 0.003.
/// </summary>
public static class PairPruning
{
    /// <summary>PairAug's InterAug threshold on the scaled score.</summary>
    public const double InterAugThreshold = 0.3;
    /// <summary>PairAug's IntraAug margin below each score's mean.</summary>
    public const double IntraAugMargin = 0.003;

    /// <summary>The InterAug score: <paramref name="logitScale"/> × <paramref name="cosine"/> (the CLIP logit of the pair; scale 1 gives the bare cosine).</summary>
    public static double InterAugScore(double cosine, double logitScale) => logitScale * cosine;

    /// <summary>Per pair, whether its scaled score is strictly above <paramref name="threshold"/>.</summary>
    public static bool[] KeepInter(IReadOnlyList<double> scaledScores, double threshold = InterAugThreshold) =>
        scaledScores.Select(s => s > threshold).ToArray();

    /// <summary>Hybrid pruning of IntraAug pairs: thresholds are the means over <paramref name="scores"/> minus <paramref name="margin"/>; each rule is strict (>).</summary>
    /// <exception cref="ArgumentException">No scores, or a score is not finite.</exception>
    public static HybridPruningResult KeepIntra(IReadOnlyList<IntraScores> scores, double margin = IntraAugMargin)
    {
        if (scores.Count == 0) throw new ArgumentException("hybrid pruning needs at least one scored pair", nameof(scores));
        if (scores.Any(s => !double.IsFinite(s.ImageSimilarity) || !double.IsFinite(s.ChangeAlignment) || !double.IsFinite(s.TextAlignment)))
            throw new ArgumentException("hybrid pruning: a score is NaN or infinite (an image or report embedding of zero length?)", nameof(scores));
        double image = scores.Average(s => s.ImageSimilarity) - margin;
        double change = scores.Average(s => s.ChangeAlignment) - margin;
        double text = scores.Average(s => s.TextAlignment) - margin;
        var kept = new bool[scores.Count];
        int a = 0, b = 0, c = 0;
        for (int i = 0; i < scores.Count; i++)
        {
            var s = scores[i];
            if (!(s.ImageSimilarity > image)) continue;
            a++;
            if (!(s.ChangeAlignment > change)) continue;
            b++;
            if (!(s.TextAlignment > text)) continue;
            c++;
            kept[i] = true;
        }
        return new HybridPruningResult(kept, image, change, text, scores.Count, a, b, c);
    }
}
