using System.Globalization;
using RoentGen.Data;
using RoentGen.Visualization;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>Settings of a <see cref="Memorization"/> audit.</summary>
public sealed record MemorizationOptions
{
    /// <summary>An image whose nearest training image has at least this SSIM counts as a near-duplicate.</summary>
    public double SsimThreshold { get; init; } = 0.9;
    /// <summary>An image whose nearest training image has at least this feature cosine counts as a near-duplicate.</summary>
    public double CosineThreshold { get; init; } = 0.98;
    /// <summary>How many of the closest (generated, training) pairs to keep, closest first by SSIM.</summary>
    public int ClosestPairs { get; init; } = 8;
    /// <summary>Pixels held per block of the pairwise SSIM (queries x references x H x W); bounds memory, not results.</summary>
    public long BlockElements { get; init; } = 1L << 24;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A threshold outside [-1, 1], no pair to keep, or a block under one image.</exception>
    public void Validate()
    {
        if (!(SsimThreshold >= -1 && SsimThreshold <= 1)) throw new ArgumentException($"MemorizationOptions.SsimThreshold must lie in [-1, 1], got {SsimThreshold}");
        if (!(CosineThreshold >= -1 && CosineThreshold <= 1)) throw new ArgumentException($"MemorizationOptions.CosineThreshold must lie in [-1, 1], got {CosineThreshold}");
        if (ClosestPairs < 1) throw new ArgumentException($"MemorizationOptions.ClosestPairs must be at least 1, got {ClosestPairs}");
        if (BlockElements < 1) throw new ArgumentException($"MemorizationOptions.BlockElements must be positive, got {BlockElements}");
    }
}

/// <summary>One image's nearest training image, by feature cosine and by SSIM (they may be different images).</summary>
/// <param name="Index">The image (row of the audited set).</param>
/// <param name="ByCosine">Training image with the highest feature cosine.</param>
/// <param name="Cosine">That cosine.</param>
/// <param name="BySsim">Training image with the highest SSIM.</param>
/// <param name="Ssim">That SSIM.</param>
/// <param name="CosineAtSsimNearest">Feature cosine between the image and <paramref name="BySsim"/>.</param>
public sealed record NearestMatch(int Index, int ByCosine, double Cosine, int BySsim, double Ssim, double CosineAtSsimNearest);

/// <summary>How often a set of images has a near-duplicate in the training set.</summary>
/// <param name="Images">Images audited.</param>
/// <param name="BySsim">Images whose nearest training image has SSIM at or above the threshold.</param>
/// <param name="ByCosine">Images whose nearest training image has feature cosine at or above the threshold.</param>
/// <param name="SsimRate">BySsim / Images (NaN with no image).</param>
/// <param name="CosineRate">ByCosine / Images (NaN with no image).</param>
/// <param name="MeanNearestSsim">Mean SSIM to the nearest training image.</param>
/// <param name="MeanNearestCosine">Mean feature cosine to the nearest training image.</param>
public sealed record NearDuplicateRate(int Images, int BySsim, int ByCosine, double SsimRate, double CosineRate, double MeanNearestSsim, double MeanNearestCosine)
{
    /// <summary>The rate of a list of nearest matches at the thresholds of <paramref name="options"/>.</summary>
    public static NearDuplicateRate Of(IReadOnlyList<NearestMatch> matches, MemorizationOptions options)
    {
        ArgumentNullException.ThrowIfNull(matches);
        ArgumentNullException.ThrowIfNull(options);
        int n = matches.Count;
        int s = matches.Count(m => m.Ssim >= options.SsimThreshold), c = matches.Count(m => m.Cosine >= options.CosineThreshold);
        return new NearDuplicateRate(n, s, c, n == 0 ? double.NaN : (double)s / n, n == 0 ? double.NaN : (double)c / n,
            n == 0 ? double.NaN : matches.Average(m => m.Ssim), n == 0 ? double.NaN : matches.Average(m => m.Cosine));
    }
}

/// <summary>A generated image next to its SSIM-nearest training image.</summary>
/// <param name="Generated">The generated image.</param>
/// <param name="Training">Its SSIM-nearest training image.</param>
/// <param name="Ssim">Their SSIM.</param>
/// <param name="Cosine">Their feature cosine.</param>
public sealed record MemorizationPair(int Generated, int Training, double Ssim, double Cosine);

/// <summary>
/// What a memorization audit found: each generated image's nearest training image, the near-duplicate rate of the
/// generated images next to the same rate for held-out real images (the real-vs-real baseline: how close two different
/// real images of this world come by chance), and the closest pairs.
/// </summary>
/// <param name="Options">Thresholds used.</param>
/// <param name="TrainingImages">Size of the training set searched.</param>
/// <param name="Generated">Nearest training image of each generated image.</param>
/// <param name="HeldOutReal">Nearest training image of each held-out real image (empty when none was given).</param>
/// <param name="GeneratedRate">Near-duplicate rate of the generated images.</param>
/// <param name="RealRate">Near-duplicate rate of the held-out real images (NaN rates when none was given).</param>
/// <param name="ClosestPairs">The closest (generated, training) pairs by SSIM, closest first.</param>
public sealed record MemorizationAudit(MemorizationOptions Options, int TrainingImages, IReadOnlyList<NearestMatch> Generated,
    IReadOnlyList<NearestMatch> HeldOutReal, NearDuplicateRate GeneratedRate, NearDuplicateRate RealRate, IReadOnlyList<MemorizationPair> ClosestPairs);

/// <summary>
/// A memorization audit of generated images against the images the generator was trained on (after Carlini et al.
/// 2023, "Extracting training data from diffusion models", and Somepalli et al. 2023, "Diffusion art or digital
/// forgery?", which search each generated image's nearest training image and flag near-copies): for every generated
/// image the nearest training image by the cosine of feature vectors (e.g. the judge's penultimate layer) and by SSIM
/// (Wang et al. 2004, as <see cref="Ssim.Compute"/>), the share above a threshold, and the same for held-out real
/// images as the baseline a generator that does not copy should match.
/// </summary>
public static class Memorization
{
    /// <summary>
    /// SSIM of every query image against every reference image, with <see cref="Ssim.Compute"/>'s window (11, σ 1.5)
    /// and constants. Images (N, 1, H, W) in [low, high] are mapped to [0, 1]. The reference images' local means and
    /// variances are computed once and the Gaussian window is applied as two 1-D passes (band-matrix products), so a
    /// query costs one blurred product per reference instead of five 2-D blurs.
    /// </summary>
    /// <param name="queries">(Q, 1, H, W).</param>
    /// <param name="references">(R, 1, H, W), same H and W.</param>
    /// <param name="low">Value that maps to 0 (−1 for the models' images).</param>
    /// <param name="high">Value that maps to 1.</param>
    /// <param name="blockElements">Pixels held per block (queries x references x H x W).</param>
    /// <param name="progress">Called after each block with (queries done, queries in all); null: silent.</param>
    /// <returns>(Q, R) float32: SSIM of query q and reference r.</returns>
    /// <exception cref="ArgumentException">Shapes that are not (N, 1, H, W) or differ in size, or images smaller than the window.</exception>
    public static Tensor PairwiseSsim(Tensor queries, Tensor references, float low = -1f, float high = 1f, long blockElements = 1L << 24,
        Action<long, long>? progress = null)
    {
        CheckImages(queries, nameof(queries));
        CheckImages(references, nameof(references));
        if (queries.shape[2] != references.shape[2] || queries.shape[3] != references.shape[3])
            throw new ArgumentException($"queries are {queries.shape[2]}x{queries.shape[3]} but references {references.shape[2]}x{references.shape[3]}; SSIM compares images of one size");
        const int window = 11;
        if (queries.shape[2] < window || queries.shape[3] < window)
            throw new ArgumentException($"images of {queries.shape[2]}x{queries.shape[3]} are smaller than SSIM's {window}-pixel window");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;                        // (0.01 L)², (0.03 L)² with L = 1
        var x = ((queries.to(ScalarType.Float32) - low) / (high - low)).contiguous();          // (Q, 1, H, W) in [0, 1]
        var y = ((references.to(ScalarType.Float32) - low) / (high - low)).contiguous();       // (R, 1, H, W)
        var coords = arange(window, dtype: ScalarType.Float64) - (window - 1) / 2.0;
        var g = (-(coords * coords) / (2 * 1.5 * 1.5)).exp();
        g = (g / g.sum()).to(ScalarType.Float32);
        long q = x.shape[0], r = y.shape[0], h = x.shape[2], w = x.shape[3], ho = h - window + 1, wo = w - window + 1;
        // The valid 11x11 Gaussian (as Ssim) as two band matrices, blur(X) = Bh · X · Bw: a batched matrix product is about
        // ten times faster on CPU than two single-channel convolutions over thousands of small images, with the same sums.
        var bh = zeros(ho, h);
        var bw = zeros(w, wo);
        for (int i = 0; i < ho; i++) bh[i].narrow(0, i, window).copy_(g);
        for (int j = 0; j < wo; j++) bw.select(1, j).narrow(0, j, window).copy_(g);
        Tensor Blur(Tensor t) => matmul(bh, matmul(t.reshape(-1, h, w), bw));                  // (N, h', w')

        var my = Blur(y);                                                 // (R, h', w')
        var my2 = my * my;
        var syy = Blur(y * y) - my2;
        var mx = Blur(x);                                                 // (Q, h', w')
        var sxx = Blur(x * x) - mx * mx;
        var myb = my.unsqueeze(0);                                        // (1, R, h', w')
        var my2b = my2.unsqueeze(0);
        var syyb = syy.unsqueeze(0);
        var yb = y.squeeze(1).unsqueeze(0);                               // (1, R, H, W)
        long perQuery = Math.Max(1, r * h * w);
        long chunk = Math.Max(1, blockElements / perQuery);
        var rows = new List<Tensor>();
        for (long i = 0; i < q; i += chunk)
        {
            using var inner = NewDisposeScope();
            long n = Math.Min(chunk, q - i);
            // In place where possible: a block is a few large tensors, not twenty (fewer allocations, fewer page faults).
            var sxy2 = Blur(x.narrow(0, i, n) * yb).reshape(n, r, ho, wo);   // E[xy] per pair
            var mxi = mx.narrow(0, i, n).unsqueeze(1);                    // (n, 1, h', w')
            var num = mxi * myb;                                          // μx μy
            sxy2.sub_(num).mul_(2).add_(c2);                              // 2 σxy + C2
            num.mul_(2).add_(c1).mul_(sxy2);                              // (2 μx μy + C1)(2 σxy + C2)
            var den = mxi * mxi + my2b;
            den.add_(c1).mul_((sxx.narrow(0, i, n).unsqueeze(1) + syyb).add_(c2));   // (μx² + μy² + C1)(σx² + σy² + C2)
            rows.Add(num.div_(den).mean([2, 3]).MoveToOuterDisposeScope());          // (n, R)
            progress?.Invoke(i + n, q);
        }
        return cat(rows, 0).MoveToOuterDisposeScope();                    // (Q, R)
    }

    /// <summary>
    /// Cosine similarity of every query feature vector with every reference feature vector: (Q, F) and (R, F) → (Q, R).
    /// </summary>
    /// <exception cref="ArgumentException">Not two matrices of one width.</exception>
    public static Tensor PairwiseCosine(Tensor queryFeatures, Tensor referenceFeatures)
    {
        if (queryFeatures.dim() != 2 || referenceFeatures.dim() != 2 || queryFeatures.shape[1] != referenceFeatures.shape[1])
            throw new ArgumentException($"features must be (Q, F) and (R, F) of one width F, got [{string.Join(", ", queryFeatures.shape)}] and [{string.Join(", ", referenceFeatures.shape)}]");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var a = nn.functional.normalize(queryFeatures.to(ScalarType.Float32), dim: 1);
        var b = nn.functional.normalize(referenceFeatures.to(ScalarType.Float32), dim: 1);
        return a.matmul(b.t()).MoveToOuterDisposeScope();                 // (Q, R)
    }

    /// <summary>Each query's nearest reference by feature cosine and by SSIM.</summary>
    /// <param name="queries">(Q, 1, H, W) images in [−1, 1].</param>
    /// <param name="references">(R, 1, H, W) images in [−1, 1].</param>
    /// <param name="features">Images → (N, F) feature vectors (e.g. <see cref="ProxyFindingClassifier.Features"/>).</param>
    /// <param name="options">Block size (null: defaults).</param>
    /// <param name="progress">Called as the SSIM search goes with (queries done, queries in all); null: silent.</param>
    public static IReadOnlyList<NearestMatch> Nearest(Tensor queries, Tensor references, Func<Tensor, Tensor> features, MemorizationOptions? options = null,
        Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        options ??= new MemorizationOptions();
        if (queries.shape[0] == 0) return [];
        if (references.shape[0] == 0) throw new ArgumentException("no reference (training) images to search");
        using var scope = NewDisposeScope();
        var ssim = PairwiseSsim(queries, references, blockElements: options.BlockElements, progress: progress);  // (Q, R)
        var cosine = PairwiseCosine(Batched(features, queries), Batched(features, references));               // (Q, R)
        var (bestSsim, bySsim) = ssim.max(1);
        var (bestCos, byCos) = cosine.max(1);
        var cosAtSsim = cosine.gather(1, bySsim.unsqueeze(1)).squeeze(1);
        var s = bestSsim.data<float>().ToArray();
        var si = bySsim.data<long>().ToArray();
        var c = bestCos.data<float>().ToArray();
        var ci = byCos.data<long>().ToArray();
        var cs = cosAtSsim.contiguous().data<float>().ToArray();
        return Enumerable.Range(0, s.Length).Select(i => new NearestMatch(i, (int)ci[i], c[i], (int)si[i], s[i], cs[i])).ToList();
    }

    /// <summary>Images per call of the feature extractor: a whole audit set at once held gigabytes of activations.</summary>
    public const int FeatureBatch = 256;

    private static Tensor Batched(Func<Tensor, Tensor> features, Tensor images)
    {
        long n = images.shape[0];
        if (n <= FeatureBatch) return features(images);
        var parts = new List<Tensor>();
        for (long i = 0; i < n; i += FeatureBatch) parts.Add(features(images.narrow(0, i, Math.Min(FeatureBatch, n - i))));
        return cat(parts, 0);
    }

    /// <summary>
    /// Audits <paramref name="generated"/> images against the <paramref name="training"/> images: each one's nearest
    /// training image by feature cosine and by SSIM, the near-duplicate rates, the same for
    /// <paramref name="heldOutReal"/> images (the real-vs-real baseline), and the closest pairs.
    /// </summary>
    /// <param name="generated">(G, 1, H, W) generated images in [−1, 1].</param>
    /// <param name="training">(T, 1, H, W) training images in [−1, 1].</param>
    /// <param name="heldOutReal">(M, 1, H, W) real images not in the training set, or null.</param>
    /// <param name="features">Images → (N, F) feature vectors.</param>
    /// <param name="options">Thresholds (null: SSIM 0.9, cosine 0.98, 8 pairs).</param>
    /// <param name="progress">Called as the search goes with (images done, images in all: generated, then held-out); null: silent.</param>
    /// <exception cref="ArgumentException">Shapes that do not fit, or options out of range.</exception>
    public static MemorizationAudit Audit(Tensor generated, Tensor training, Tensor? heldOutReal, Func<Tensor, Tensor> features, MemorizationOptions? options = null,
        Action<long, long>? progress = null)
    {
        options ??= new MemorizationOptions();
        options.Validate();
        long g = generated.shape[0], total = g + (heldOutReal?.shape[0] ?? 0);
        var gen = Nearest(generated, training, features, options, progress is null ? null : (done, _) => progress(done, total));
        IReadOnlyList<NearestMatch> real = heldOutReal is null ? []
            : Nearest(heldOutReal, training, features, options, progress is null ? null : (done, _) => progress(g + done, total));
        var pairs = gen.OrderByDescending(m => m.Ssim).ThenBy(m => m.Index).Take(options.ClosestPairs)
            .Select(m => new MemorizationPair(m.Index, m.BySsim, m.Ssim, m.CosineAtSsimNearest)).ToList();
        return new MemorizationAudit(options, (int)training.shape[0], gen, real, NearDuplicateRate.Of(gen, options), NearDuplicateRate.Of(real, options), pairs);
    }

    /// <summary>
    /// The closest pairs side by side: each generated image followed by its SSIM-nearest training image, captioned with
    /// their indices, SSIM and cosine (two pairs per row).
    /// </summary>
    /// <param name="pairs">Pairs to show (e.g. <see cref="MemorizationAudit.ClosestPairs"/>).</param>
    /// <param name="generated">The generated images the pairs index.</param>
    /// <param name="training">The training images the pairs index.</param>
    /// <param name="title">Grid title.</param>
    /// <param name="generatedCaption">Caption of a pair's generated image (null: "gen I: SSIM s, cos c").</param>
    /// <param name="trainingCaption">Caption of a pair's training image (null: "train J").</param>
    public static ImageGrid PairGrid(IReadOnlyList<MemorizationPair> pairs, Tensor generated, Tensor training, string? title = "Closest generated / training pairs (by SSIM)",
        Func<MemorizationPair, string>? generatedCaption = null, Func<MemorizationPair, string>? trainingCaption = null)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var grid = new ImageGrid(4, title);
        foreach (var p in pairs)
        {
            using var scope = NewDisposeScope();
            grid.Add(ImageTensors.FromTensor(generated[p.Generated]),
                generatedCaption?.Invoke(p) ?? string.Create(CultureInfo.InvariantCulture, $"gen {p.Generated}: SSIM {p.Ssim:F3}, cos {p.Cosine:F3}"));
            grid.Add(ImageTensors.FromTensor(training[p.Training]), trainingCaption?.Invoke(p) ?? $"train {p.Training}");
        }
        return grid;
    }

    private static void CheckImages(Tensor t, string name)
    {
        if (t.dim() != 4 || t.shape[1] != 1)
            throw new ArgumentException($"{name} must be (N, 1, H, W) images, got shape [{string.Join(", ", t.shape)}]", name);
    }
}
