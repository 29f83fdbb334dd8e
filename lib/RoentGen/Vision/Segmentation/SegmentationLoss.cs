using static TorchSharp.torch;

namespace RoentGen.Vision.Segmentation;

/// <summary>
/// The training loss of a multi-label segmenter and the Dice scores it is judged by.
/// </summary>
public static class SegmentationLoss
{
    /// <summary>
    /// Soft Dice loss per structure, averaged over structures: 1 − (2 Σ p·t + ε) / (Σ p + Σ t + ε), sums over the batch and
    /// the pixels of each channel, p = sigmoid(logit), with ε = <paramref name="smooth"/> so an empty structure in an
    /// empty prediction costs nothing. <paramref name="present"/> (B, C) marks which (image, structure) pairs have a mask;
    /// others are left out (null: all present).
    /// </summary>
    /// <param name="logits">(B, C, H, W) logits.</param>
    /// <param name="target">(B, C, H, W) masks in {0, 1}.</param>
    /// <param name="present">(B, C) 1 where the mask exists, or null.</param>
    /// <param name="smooth">ε.</param>
    public static Tensor SoftDice(Tensor logits, Tensor target, Tensor? present = null, double smooth = 1.0)
    {
        CheckShapes(logits, target);
        using var scope = NewDisposeScope();
        var p = logits.sigmoid();
        var t = target;
        if (present is not null)
        {
            var w = present.view(present.shape[0], present.shape[1], 1, 1);
            p = p * w; t = t * w;
        }
        var inter = (p * t).sum([0, 2, 3]);                 // (C)
        var denom = p.sum([0, 2, 3]) + t.sum([0, 2, 3]);    // (C)
        return (1 - (2 * inter + smooth) / (denom + smooth)).mean().MoveToOuterDisposeScope();
    }

    /// <summary>Binary cross-entropy with logits averaged over the present (image, structure) pairs' pixels.</summary>
    public static Tensor Bce(Tensor logits, Tensor target, Tensor? present = null)
    {
        CheckShapes(logits, target);
        using var scope = NewDisposeScope();
        var bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction: nn.Reduction.None);
        if (present is null) return bce.mean().MoveToOuterDisposeScope();
        var w = present.view(present.shape[0], present.shape[1], 1, 1).expand_as(bce);
        return ((bce * w).sum() / w.sum().clamp_min(1)).MoveToOuterDisposeScope();
    }

    /// <summary>BCE + <paramref name="diceWeight"/> × soft Dice, the usual pair for masks that fill a small part of the image.</summary>
    public static Tensor DiceBce(Tensor logits, Tensor target, Tensor? present = null, double diceWeight = 1.0)
    {
        using var scope = NewDisposeScope();
        return (Bce(logits, target, present) + diceWeight * SoftDice(logits, target, present)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Hard Dice of one binary prediction against one binary mask: 2|P∩G| / (|P| + |G|); NaN when both are empty
    /// (nothing to find and nothing found: undefined, left out of averages).
    /// </summary>
    public static double Dice(ReadOnlySpan<float> prediction, ReadOnlySpan<float> truth)
    {
        if (prediction.Length != truth.Length) throw new ArgumentException($"Dice: prediction has {prediction.Length} pixels, mask {truth.Length}");
        double inter = 0, p = 0, g = 0;
        for (int i = 0; i < prediction.Length; i++)
        {
            bool a = prediction[i] >= 0.5f, b = truth[i] >= 0.5f;
            if (a) p++;
            if (b) g++;
            if (a && b) inter++;
        }
        return p + g == 0 ? double.NaN : 2 * inter / (p + g);
    }

    private static void CheckShapes(Tensor logits, Tensor target)
    {
        if (logits.dim() != 4 || !logits.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"segmentation loss: logits [{string.Join(", ", logits.shape)}] and masks [{string.Join(", ", target.shape)}] must both be (B, C, H, W)");
    }
}
