using static TorchSharp.torch;

namespace RoentGen.Evaluation.Probes;

/// <summary>Training settings of a <see cref="SegmentationProbe"/>.</summary>
public sealed record SegmentationProbeOptions
{
    /// <summary>Structures to segment; null: every mask of the data with foreground in training.</summary>
    public IReadOnlyList<string>? Structures { get; init; }
    /// <summary>Passes over the training images.</summary>
    public int Epochs { get; init; } = 60;
    /// <summary>Adam learning rate.</summary>
    public double LearningRate { get; init; } = 1e-2;
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Weight of the soft Dice loss added to the binary cross-entropy.</summary>
    public double DiceWeight { get; init; } = 1.0;
    /// <summary>Seed of the head's initialisation and the batch order.</summary>
    public int Seed { get; init; }

    /// <summary>A quick setting for tests and smoke runs.</summary>
    public static SegmentationProbeOptions Quick { get; } = new() { Epochs = 25 };
    /// <summary>Keep the first this many test images' predicted masks in <see cref="SegmentationProbeResult.Predictions"/> (0: none).</summary>
    public int KeepPredictions { get; init; }
}

/// <summary>Test Dice of one structure.</summary>
/// <param name="Structure">Mask name.</param>
/// <param name="Dice">2|P∩G| / (|P| + |G|) summed over the test images that have the mask (NaN when both are empty).</param>
/// <param name="TestImages">Test images that have the mask.</param>
public sealed record StructureDice(string Structure, double Dice, int TestImages);

/// <summary>A segmentation probe's test result.</summary>
/// <param name="PerStructure">Dice per structure.</param>
/// <param name="MeanDice">Mean over the structures with a finite Dice.</param>
/// <param name="FinalLoss">Training loss of the last epoch.</param>
public sealed record SegmentationProbeResult(IReadOnlyList<StructureDice> PerStructure, double MeanDice, double FinalLoss)
{
    /// <summary>
    /// Predicted masks (K, C, S, S) of the first K test images (K = <see cref="SegmentationProbeOptions.KeepPredictions"/>),
    /// channels in <see cref="PerStructure"/> order, 1 where sigmoid ≥ 0.5; null when none were kept.
    /// </summary>
    public Tensor? Predictions { get; init; }
}

/// <summary>
/// Segmentation from frozen patch tokens: a linear (1×1) head maps each token to one logit per structure; the logit
/// grid is upsampled bilinearly to the mask size and trained with binary cross-entropy plus soft Dice. Images that
/// lack a structure's mask do not contribute to it.
/// </summary>
public static class SegmentationProbe
{
    /// <summary>Trains on the training features and masks, reports Dice on the test ones (prediction: sigmoid ≥ 0.5).</summary>
    /// <exception cref="ArgumentException">No structure to segment, or shapes disagree (the message names which).</exception>
    public static SegmentationProbeResult Train(EncodedFeatures train, IReadOnlyDictionary<string, ProbeMask> trainMasks,
        EncodedFeatures test, IReadOnlyDictionary<string, ProbeMask> testMasks, SegmentationProbeOptions? options = null)
    {
        options ??= new SegmentationProbeOptions();
        if (options.Structures is not null)
            foreach (var s in options.Structures)
                if (!trainMasks.ContainsKey(s) || !testMasks.ContainsKey(s))
                    throw new ArgumentException($"segmentation probe: structure '{s}' has no {(trainMasks.ContainsKey(s) ? "test" : "training")} masks; the data have: {string.Join(", ", trainMasks.Keys)}");
        var names = (options.Structures ?? trainMasks.Where(kv => kv.Value.Present.Any(p => p) && kv.Value.Masks.sum().item<float>() > 0).Select(kv => kv.Key).ToList())
            .Where(testMasks.ContainsKey).ToList();
        if (names.Count == 0)
            throw new ArgumentException($"segmentation probe: no structure with masks in both train and test (train has: {(trainMasks.Count == 0 ? "none" : string.Join(", ", trainMasks.Keys))})");
        using var scope = NewDisposeScope();
        var (yTr, pTr) = Stack(trainMasks, names);     // (N, C, S, S), (N, C, 1, 1)
        var (yTe, pTe) = Stack(testMasks, names);
        long size = yTr.shape[2];
        var xTr = Grid(train); var xTe = Grid(test);   // (N, D, gh, gw)
        var mean = xTr.mean([0, 2, 3], keepdim: true); var std = xTr.std([0, 2, 3], keepdim: true).clamp_min(1e-6);
        xTr = (xTr - mean) / std; xTe = (xTe - mean) / std;
        manual_seed(options.Seed);
        var head = nn.Conv2d(xTr.shape[1], names.Count, 1);
        var opt = optim.Adam(head.parameters(), lr: options.LearningRate);
        long n = xTr.shape[0];
        var rng = new Random(options.Seed);
        double lastLoss = double.NaN;
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            var order = Enumerable.Range(0, (int)n).OrderBy(_ => rng.Next()).ToArray();
            double sum = 0; int batches = 0;
            for (int s = 0; s < n; s += options.BatchSize)
            {
                using var step = NewDisposeScope();
                var idx = tensor(order.Skip(s).Take(options.BatchSize).Select(i => (long)i).ToArray());
                var logits = Upsample(head.call(xTr.index_select(0, idx)), size); // (B, C, S, S)
                var loss = Loss(logits, yTr.index_select(0, idx), pTr.index_select(0, idx), options.DiceWeight);
                opt.zero_grad();
                loss.backward();
                opt.step();
                sum += loss.item<float>(); batches++;
            }
            lastLoss = sum / batches;
        }
        var per = new List<StructureDice>();
        Tensor? kept = null;
        using (no_grad())
        {
            var raw = Upsample(head.call(xTe), size).sigmoid().ge(0.5).to_type(ScalarType.Float32);   // (N, C, S, S)
            if (options.KeepPredictions > 0)
                kept = raw.narrow(0, 0, Math.Min(options.KeepPredictions, raw.shape[0])).clone().MoveToOuterDisposeScope();
            var pred = raw * pTe;
            var gt = yTe * pTe;
            for (int c = 0; c < names.Count; c++)
            {
                double inter = (pred.select(1, c) * gt.select(1, c)).sum().item<float>();
                double denom = pred.select(1, c).sum().item<float>() + gt.select(1, c).sum().item<float>();
                per.Add(new StructureDice(names[c], denom == 0 ? double.NaN : 2 * inter / denom, testMasks[names[c]].Present.Count(p => p)));
            }
        }
        head.Dispose();
        return new SegmentationProbeResult(per, ProbeMetrics.MeanFinite(per.Select(p => p.Dice)), lastLoss) { Predictions = kept };
    }

    // (N, P, D) tokens as a (N, D, gh, gw) map.
    private static Tensor Grid(EncodedFeatures f)
    {
        if (f.Patches.shape[1] != (long)f.GridH * f.GridW)
            throw new ArgumentException($"segmentation probe: {f.Patches.shape[1]} patch tokens do not form a {f.GridH}x{f.GridW} grid");
        return f.Patches.to_type(ScalarType.Float32).transpose(1, 2).reshape(f.Patches.shape[0], f.Patches.shape[2], f.GridH, f.GridW);
    }

    private static Tensor Upsample(Tensor logits, long size) =>
        nn.functional.interpolate(logits, size: [size, size], mode: InterpolationMode.Bilinear, align_corners: false);

    private static (Tensor Masks, Tensor Present) Stack(IReadOnlyDictionary<string, ProbeMask> masks, List<string> names)
    {
        var m = stack(names.Select(s => masks[s].Masks.to_type(ScalarType.Float32)).ToArray(), 1);               // (N, C, S, S)
        var p = stack(names.Select(s => tensor(masks[s].Present.Select(v => v ? 1f : 0f).ToArray())).ToArray(), 1); // (N, C)
        return (m, p.view(p.shape[0], p.shape[1], 1, 1));
    }

    // BCE over present (image, structure) pairs plus a soft Dice per structure over the batch.
    private static Tensor Loss(Tensor logits, Tensor target, Tensor present, double diceWeight)
    {
        var bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction: nn.Reduction.None);
        var weight = present.expand_as(bce);
        var bceMean = (bce * weight).sum() / weight.sum().clamp_min(1);
        var prob = logits.sigmoid() * present;
        var t = target * present;
        var inter = (prob * t).sum([0, 2, 3]);
        var denom = prob.sum([0, 2, 3]) + t.sum([0, 2, 3]);
        var dice = 1 - (2 * inter + 1) / (denom + 1);
        return bceMean + diceWeight * dice.mean();
    }
}
