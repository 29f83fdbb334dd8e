using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Data.Datasets;

/// <summary>The value range of image tensors.</summary>
public enum PixelRange
{
    /// <summary>[0, 1] (black 0, white 1).</summary>
    ZeroToOne,
    /// <summary>[-1, 1] (black -1, white 1), as diffusion models and VAEs expect.</summary>
    MinusOneToOne,
}

/// <summary>What an uncertain (-1) label becomes in the label matrix (CheXpert paper, Irvin et al. 2019).</summary>
public enum UncertainPolicy
{
    /// <summary>U-Zeros: uncertain counts as negative.</summary>
    Zeros,
    /// <summary>U-Ones: uncertain counts as positive.</summary>
    Ones,
    /// <summary>U-Ignore: value 0 and weight 0 (leave it out of the loss).</summary>
    Ignore,
}

/// <summary>What a not-mentioned (blank) label becomes.</summary>
public enum NotMentionedPolicy
{
    /// <summary>Negative (the usual choice).</summary>
    Zeros,
    /// <summary>Value 0 and weight 0 (leave it out of the loss).</summary>
    Ignore,
}

/// <summary>How records become tensors.</summary>
public sealed record BatchOptions
{
    /// <summary>Square image side S (default 256).</summary>
    public int Size { get; init; } = 256;
    /// <summary>Image value range (default [0, 1]).</summary>
    public PixelRange Range { get; init; } = PixelRange.ZeroToOne;
    /// <summary>Uncertain labels (default U-Zeros).</summary>
    public UncertainPolicy Uncertain { get; init; } = UncertainPolicy.Zeros;
    /// <summary>Not-mentioned labels (default negative).</summary>
    public NotMentionedPolicy NotMentioned { get; init; } = NotMentionedPolicy.Zeros;
    /// <summary>Masks to stack, in channel order (default none). A record without one gets zeros and MaskPresent 0.</summary>
    public IReadOnlyList<string> MaskNames { get; init; } = [];
    /// <summary>
    /// Augmentation applied to each record's image, masks and report after resizing to Size (null: none). A
    /// transform that changes the size is followed by a resize back to Size. Mask channels are looked up by
    /// name after the transform, so a <see cref="LateralityFlip"/> puts a flipped "left_lung" in the "right_lung" channel.
    /// </summary>
    public ICxrTransform? Augment { get; init; }
    /// <summary>
    /// Seed of the augmentation: each record gets a <see cref="Random"/> seeded from (AugmentSeed, record id), so a
    /// batch is reproducible whatever the batch order or thread; change it every epoch for fresh draws.
    /// </summary>
    public int AugmentSeed { get; init; }
}

/// <summary>
/// A batch as tensors: Images (B,1,S,S) float32 in <see cref="BatchOptions.Range"/>; Labels (B,14) float32 0/1
/// in <see cref="Observations.All"/> order; LabelWeights (B,14) 1 where the label counts, 0 where ignored;
/// Masks (B,K,S,S) 0/1 and MaskPresent (B,K) when mask names were asked for. Dispose it (or let a dispose
/// scope that was open when it was made do so).
/// </summary>
public sealed class CxrBatch : IDisposable
{
    internal CxrBatch(IReadOnlyList<CxrRecord> records, IReadOnlyList<string> reports, Tensor images, Tensor labels, Tensor weights, Tensor? masks, Tensor? maskPresent, IReadOnlyList<string> maskNames)
    {
        Records = records; Reports = reports; Images = images; Labels = labels; LabelWeights = weights; Masks = masks; MaskPresent = maskPresent; MaskNames = maskNames;
    }

    /// <summary>Each record's report text (<see cref="CxrReport.Text"/>) after augmentation, so a flip's side swap is kept.</summary>
    public IReadOnlyList<string> Reports { get; }

    /// <summary>The records, in batch order.</summary>
    public IReadOnlyList<CxrRecord> Records { get; }
    /// <summary>(B, 1, S, S) images.</summary>
    public Tensor Images { get; }
    /// <summary>(B, 14) targets.</summary>
    public Tensor Labels { get; }
    /// <summary>(B, 14) loss weights (0 = ignore).</summary>
    public Tensor LabelWeights { get; }
    /// <summary>(B, K, S, S) masks, or null when no mask names were asked for.</summary>
    public Tensor? Masks { get; }
    /// <summary>(B, K) 1 where the record has that mask.</summary>
    public Tensor? MaskPresent { get; }
    /// <summary>Mask channel names.</summary>
    public IReadOnlyList<string> MaskNames { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Images.Dispose(); Labels.Dispose(); LabelWeights.Dispose(); Masks?.Dispose(); MaskPresent?.Dispose();
    }
}

/// <summary>Turns records into <see cref="CxrBatch"/>es.</summary>
public static class CxrBatching
{
    /// <summary>The label row and weight row of one record under the options' policies.</summary>
    public static (float[] Values, float[] Weights) LabelRow(CxrLabels labels, BatchOptions options)
    {
        var v = new float[14];
        var w = new float[14];
        for (int i = 0; i < 14; i++)
        {
            (v[i], w[i]) = labels[(Observation)i] switch
            {
                Mention.Positive => (1f, 1f),
                Mention.Negative => (0f, 1f),
                Mention.Uncertain => options.Uncertain switch
                {
                    UncertainPolicy.Ones => (1f, 1f),
                    UncertainPolicy.Ignore => (0f, 0f),
                    _ => (0f, 1f),
                },
                _ => options.NotMentioned == NotMentionedPolicy.Ignore ? (0f, 0f) : (0f, 1f),
            };
        }
        return (v, w);
    }

    /// <summary>Loads and stacks the given records of a dataset (images resized to S x S, through its cache).</summary>
    public static CxrBatch Collate(CxrDataset dataset, IReadOnlyList<CxrRecord> records, BatchOptions? options = null)
    {
        options ??= new BatchOptions();
        int b = records.Count, s = options.Size, k = options.MaskNames.Count, plane = s * s;
        var img = new float[b * plane];
        var lab = new float[b * 14];
        var wts = new float[b * 14];
        var msk = k > 0 ? new float[b * k * plane] : null;
        var present = k > 0 ? new float[b * k] : null;
        var reports = new string[b];
        Parallel.For(0, b, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, i =>
        {
            var r = records[i];
            GrayImage im;
            Func<string, GrayImage?> mask;
            if (options.Augment is null)
            {
                im = dataset.LoadImage(r, s);
                reports[i] = r.Report.Text;
                mask = name => r.Masks.ContainsKey(name) ? dataset.LoadMask(r, name, s) : null;
            }
            else
            {
                var rng = new Random((int)(PatientSplit.Uniform(r.Dataset + "/" + r.Id, options.AugmentSeed) * int.MaxValue));
                var t = options.Augment.Apply(CxrSample.FromRecord(dataset, r, s), rng);
                im = t.Image.Width == s && t.Image.Height == s ? t.Image : ImageResize.ToSquare(t.Image, s, dataset.SquareMode);
                reports[i] = t.Report.Text;
                mask = name => !t.Masks.TryGetValue(name, out var m) ? null
                    : m.Width == s && m.Height == s ? m : ImageResize.ToSquare(m, s, dataset.SquareMode, isMask: true);
            }
            for (int p = 0; p < plane; p++)
                img[i * plane + p] = options.Range == PixelRange.MinusOneToOne ? im.Pixels[p] * 2f - 1f : im.Pixels[p];
            var (v, w) = LabelRow(r.Labels, options);
            Array.Copy(v, 0, lab, i * 14, 14);
            Array.Copy(w, 0, wts, i * 14, 14);
            for (int c = 0; c < k; c++)
            {
                if (mask(options.MaskNames[c]) is not GrayImage m) continue;
                Array.Copy(m.Pixels, 0, msk!, (i * k + c) * plane, plane);
                present![i * k + c] = 1f;
            }
        });
        dataset.Cache?.Flush();
        return new CxrBatch(records, reports,
            tensor(img, new long[] { b, 1, s, s }),
            tensor(lab, new long[] { b, 14 }),
            tensor(wts, new long[] { b, 14 }),
            msk is null ? null : tensor(msk, new long[] { b, k, s, s }),
            present is null ? null : tensor(present, new long[] { b, k }),
            options.MaskNames.ToList());
    }

    /// <summary>
    /// Batches over a dataset, in order or shuffled by a seed (a fixed permutation per seed). The caller
    /// disposes each batch. The last batch may be smaller unless <paramref name="dropLast"/>.
    /// </summary>
    public static IEnumerable<CxrBatch> Batches(this CxrDataset dataset, int batchSize, BatchOptions? options = null, int? shuffleSeed = null, bool dropLast = false)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be positive");
        var order = Enumerable.Range(0, dataset.Count).ToArray();
        if (shuffleSeed is int seed) new Random(seed).Shuffle(order);
        for (int start = 0; start < order.Length; start += batchSize)
        {
            int n = Math.Min(batchSize, order.Length - start);
            if (n < batchSize && dropLast) yield break;
            var recs = new CxrRecord[n];
            for (int i = 0; i < n; i++) recs[i] = dataset[order[start + i]];
            yield return Collate(dataset, recs, options);
        }
    }
}
