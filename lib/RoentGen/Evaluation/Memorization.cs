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
    /// <summary>Pixels held per block of the pairwise SSIM (queries x references x H x W; the audit's searches hold at most <see cref="Memorization.SearchBlockElements"/>); bounds memory, not results.</summary>
    public long BlockElements { get; init; } = 1L << 24;
    /// <summary>
    /// Null (the default): SSIM against every training image. A number K: SSIM only against each image's K training
    /// images of highest pixel correlation (Pearson's r over the whole image), a search that grows with K rather than
    /// with the training set; it can only find a nearest SSIM at or below the full search's. Measured in s18 on 1,000 of
    /// the study generator's images against its 16,000 training phantoms (64 px), against the full search (343 s): K = 256
    /// found the same nearest image for 789, 85 of the 90 near-duplicates (SSIM ≥ 0.9), SSIM 0.0037 low on average;
    /// K = 1,024: 910, 88 of 90, 0.0011 low; K = 4,096: 981, 89 of 90, 0.0002 low. Left out of the JSON when null, as
    /// audits written before it.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public int? SsimCandidates { get; init; }

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A threshold outside [-1, 1], no pair to keep, or a block under one image.</exception>
    public void Validate()
    {
        if (!(SsimThreshold >= -1 && SsimThreshold <= 1)) throw new ArgumentException($"MemorizationOptions.SsimThreshold must lie in [-1, 1], got {SsimThreshold}");
        if (!(CosineThreshold >= -1 && CosineThreshold <= 1)) throw new ArgumentException($"MemorizationOptions.CosineThreshold must lie in [-1, 1], got {CosineThreshold}");
        if (ClosestPairs < 1) throw new ArgumentException($"MemorizationOptions.ClosestPairs must be at least 1, got {ClosestPairs}");
        if (BlockElements < 1) throw new ArgumentException($"MemorizationOptions.BlockElements must be positive, got {BlockElements}");
        if (SsimCandidates is < 1) throw new ArgumentException($"MemorizationOptions.SsimCandidates must be at least 1 (or null: every training image), got {SsimCandidates}");
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
    /// <param name="blockElements">Pixels held per block (queries x references x H x W; a block holds at least one query against one reference).</param>
    /// <param name="progress">Called as queries finish with (queries done, queries in all); null: silent.</param>
    /// <returns>(Q, R) float32: SSIM of query q and reference r.</returns>
    /// <exception cref="ArgumentException">Shapes that are not (N, 1, H, W) or differ in size, or images smaller than the window.</exception>
    public static Tensor PairwiseSsim(Tensor queries, Tensor references, float low = -1f, float high = 1f, long blockElements = 1L << 24,
        Action<long, long>? progress = null)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var k = new SsimKernel(queries, references, low, high);
        long q = k.X.shape[0], r = k.Y.shape[0];
        var yb = k.Y.squeeze(1).unsqueeze(0);                             // (1, R, H, W)
        var myb = k.My.unsqueeze(0);                                      // (1, R, h', w')
        var my2b = k.My2.unsqueeze(0);
        var syyb = k.Syy.unsqueeze(0);
        return InBlocks(q, r, k.H * k.W, blockElements, progress,
            (i, n, j, m) => k.Block(i, n, yb.narrow(1, j, m), myb.narrow(1, j, m), my2b.narrow(1, j, m), syyb.narrow(1, j, m)))
            .MoveToOuterDisposeScope();                                   // (Q, R)
    }

    /// <summary>
    /// SSIM of each query image against its own candidate reference images only (as <see cref="PairwiseSsim"/> for the
    /// pairs it computes).
    /// </summary>
    /// <param name="queries">(Q, 1, H, W).</param>
    /// <param name="references">(R, 1, H, W), same H and W.</param>
    /// <param name="candidates">(Q, K) int64 reference indices per query.</param>
    /// <param name="low">Value that maps to 0.</param>
    /// <param name="high">Value that maps to 1.</param>
    /// <param name="blockElements">Pixels held per block (queries x K x H x W; a block holds at least one query against one candidate).</param>
    /// <param name="progress">Called as queries finish with (queries done, queries in all); null: silent.</param>
    /// <returns>(Q, K) float32: SSIM of query q and reference candidates[q, j].</returns>
    /// <exception cref="ArgumentException">Shapes that do not fit, or a candidate index outside the references.</exception>
    public static Tensor CandidateSsim(Tensor queries, Tensor references, Tensor candidates, float low = -1f, float high = 1f, long blockElements = 1L << 24,
        Action<long, long>? progress = null)
    {
        if (candidates.dim() != 2 || candidates.shape[0] != queries.shape[0])
            throw new ArgumentException($"candidates must be (Q, K) with Q = {queries.shape[0]} queries, got [{string.Join(", ", candidates.shape)}]", nameof(candidates));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var k = new SsimKernel(queries, references, low, high);
        var idx = candidates.to(ScalarType.Int64);
        if (idx.numel() > 0 && (idx.min().item<long>() < 0 || idx.max().item<long>() >= k.Y.shape[0]))
            throw new ArgumentException($"a candidate index lies outside the {k.Y.shape[0]} references", nameof(candidates));
        var y = k.Y.squeeze(1);                                           // (R, H, W)
        return InBlocks(k.X.shape[0], idx.shape[1], k.H * k.W, blockElements, progress, (i, n, j, m) =>
        {
            var flat = idx.narrow(0, i, n).narrow(1, j, m).reshape(-1);       // (n·m)
            Tensor Pick(Tensor t) => t.index_select(0, flat).reshape(n, m, t.shape[1], t.shape[2]);
            return k.Block(i, n, Pick(y), Pick(k.My), Pick(k.My2), Pick(k.Syy));   // (n, m)
        }).MoveToOuterDisposeScope();                                     // (Q, K)
    }

    /// <summary>
    /// The (rows, cols) result of <paramref name="block"/>(i, n, j, m), which gives rows i..i+n−1 against columns
    /// j..j+m−1, in blocks of at most <paramref name="blockElements"/> pixels: several rows with all their columns when
    /// they fit, else one row with a slice of its columns. Written into one tensor made up front: small results kept
    /// between the blocks' large temporaries would split the freed heap, and every block would then take fresh memory.
    /// </summary>
    private static Tensor InBlocks(long rows, long cols, long pixels, long blockElements, Action<long, long>? progress, Func<long, long, long, long, Tensor> block)
    {
        long slice = Math.Clamp(blockElements / pixels, 1, Math.Max(1, cols));
        long chunk = Math.Max(1, blockElements / (slice * pixels));
        var result = empty(rows, cols);
        for (long i = 0; i < rows; i += chunk)
        {
            long n = Math.Min(chunk, rows - i);
            for (long j = 0; j < cols; j += slice)
            {
                using var inner = NewDisposeScope();
                long m = Math.Min(slice, cols - j);
                result.narrow(0, i, n).narrow(1, j, m).copy_(block(i, n, j, m));
            }
            progress?.Invoke(i + n, rows);
        }
        return result;
    }

    /// <summary>
    /// Each query's <paramref name="count"/> references of highest pixel correlation (Pearson's r of the whole images),
    /// best first: the candidates of <see cref="CandidateSsim"/>.
    /// </summary>
    /// <returns>(Q, min(count, R)) int64 reference indices.</returns>
    public static Tensor TopCorrelated(Tensor queries, Tensor references, int count, long blockElements = 1L << 24)
    {
        CheckImages(queries, nameof(queries));
        CheckImages(references, nameof(references));
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "at least one candidate per query");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor Centred(Tensor t)
        {
            var f = t.to(ScalarType.Float32).flatten(1);
            return nn.functional.normalize(f - f.mean([1], keepdim: true), dim: 1);
        }
        var a = Centred(queries);
        var b = Centred(references).t().contiguous();                     // (P, R)
        int k = (int)Math.Min(count, references.shape[0]);
        long q = a.shape[0], chunk = Math.Max(1, blockElements / Math.Max(1, references.shape[0]));
        var result = empty(q, k, dtype: ScalarType.Int64);
        for (long i = 0; i < q; i += chunk)
        {
            using var inner = NewDisposeScope();
            long n = Math.Min(chunk, q - i);
            result.narrow(0, i, n).copy_(a.narrow(0, i, n).matmul(b).topk(k, dim: 1).indexes);   // (n, R) → (n, K)
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// What SSIM needs of two image sets, computed once: both mapped to [0, 1], the valid 11x11 Gaussian (σ 1.5, as
    /// <see cref="Ssim"/>) as two band matrices (blur(X) = Bh · X · Bw: a batched matrix product is about ten times faster
    /// on CPU than two single-channel convolutions over thousands of small images, with the same sums), and each image's
    /// local mean and variance; <see cref="Block"/> then costs one blurred product per pair.
    /// </summary>
    private sealed class SsimKernel
    {
        private const int Window = 11;
        private const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;          // (0.01 L)², (0.03 L)² with L = 1
        private readonly Tensor _bh, _bw, _mx, _sxx;
        public Tensor X { get; }                                          // (Q, 1, H, W) in [0, 1]
        public Tensor Y { get; }                                          // (R, 1, H, W) in [0, 1]
        public Tensor My { get; }                                         // (R, h', w')
        public Tensor My2 { get; }                                        // (R, h', w'): μy²
        public Tensor Syy { get; }                                        // (R, h', w')
        public long H { get; }
        public long W { get; }
        private readonly long _ho, _wo;

        public SsimKernel(Tensor queries, Tensor references, float low, float high)
        {
            CheckImages(queries, nameof(queries));
            CheckImages(references, nameof(references));
            if (queries.shape[2] != references.shape[2] || queries.shape[3] != references.shape[3])
                throw new ArgumentException($"queries are {queries.shape[2]}x{queries.shape[3]} but references {references.shape[2]}x{references.shape[3]}; SSIM compares images of one size");
            if (queries.shape[2] < Window || queries.shape[3] < Window)
                throw new ArgumentException($"images of {queries.shape[2]}x{queries.shape[3]} are smaller than SSIM's {Window}-pixel window");
            X = ((queries.to(ScalarType.Float32) - low) / (high - low)).contiguous();
            Y = ((references.to(ScalarType.Float32) - low) / (high - low)).contiguous();
            var coords = arange(Window, dtype: ScalarType.Float64) - (Window - 1) / 2.0;
            var g = (-(coords * coords) / (2 * 1.5 * 1.5)).exp();
            g = (g / g.sum()).to(ScalarType.Float32);
            H = X.shape[2]; W = X.shape[3]; _ho = H - Window + 1; _wo = W - Window + 1;
            _bh = zeros(_ho, H);
            _bw = zeros(W, _wo);
            for (int i = 0; i < _ho; i++) _bh[i].narrow(0, i, Window).copy_(g);
            for (int j = 0; j < _wo; j++) _bw.select(1, j).narrow(0, j, Window).copy_(g);
            My = Blur(Y);
            My2 = My * My;
            Syy = Blur(Y * Y) - My2;
            _mx = Blur(X);
            _sxx = Blur(X * X) - _mx * _mx;
        }

        private Tensor Blur(Tensor t) => matmul(_bh, matmul(t.reshape(-1, H, W), _bw));     // (N, h', w')

        /// <summary>
        /// SSIM of queries i..i+n−1 against references given per query or broadcast: <paramref name="y"/> (n or 1, K, H, W)
        /// with their local means <paramref name="my"/>, squared means <paramref name="my2"/> and variances
        /// <paramref name="syy"/> (n or 1, K, h', w'); → (n, K).
        /// </summary>
        public Tensor Block(long i, long n, Tensor y, Tensor my, Tensor my2, Tensor syy)
        {
            long k = y.shape[1];
            // In place where possible: a block is a few large tensors, not twenty (fewer allocations, fewer page faults).
            var sxy2 = Blur(X.narrow(0, i, n) * y).reshape(n, k, _ho, _wo);   // E[xy] per pair
            var mxi = _mx.narrow(0, i, n).unsqueeze(1);                   // (n, 1, h', w')
            var num = mxi * my;                                           // μx μy
            sxy2.sub_(num).mul_(2).add_(C2);                              // 2 σxy + C2
            num.mul_(2).add_(C1).mul_(sxy2);                              // (2 μx μy + C1)(2 σxy + C2)
            var den = mxi * mxi + my2;
            den.add_(C1).mul_((_sxx.narrow(0, i, n).unsqueeze(1) + syy).add_(C2));   // (μx² + μy² + C1)(σx² + σy² + C2)
            return num.div_(den).mean([2, 3]);                            // (n, K)
        }
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
        Tensor bestSsim, bySsim;
        if (options.SsimCandidates is int count && count < references.shape[0])
        {
            var candidates = TopCorrelated(queries, references, count, options.BlockElements);               // (Q, K)
            var (best, at) = CandidateSsim(queries, references, candidates, blockElements: Math.Min(options.BlockElements, SearchBlockElements), progress: progress).max(1);
            (bestSsim, bySsim) = (best, candidates.gather(1, at.unsqueeze(1)).squeeze(1));
        }
        else
            (bestSsim, bySsim) = PairwiseSsim(queries, references, blockElements: Math.Min(options.BlockElements, SearchBlockElements), progress: progress).max(1);   // over (Q, R)
        var cosine = PairwiseCosine(Batched(features, queries), Batched(features, references));               // (Q, R)
        var (bestCos, byCos) = cosine.max(1);
        var cosAtSsim = cosine.gather(1, bySsim.unsqueeze(1)).squeeze(1);
        var s = bestSsim.data<float>().ToArray();
        var si = bySsim.data<long>().ToArray();
        var c = bestCos.data<float>().ToArray();
        var ci = byCos.data<long>().ToArray();
        var cs = cosAtSsim.contiguous().data<float>().ToArray();
        return Enumerable.Range(0, s.Length).Select(i => new NearestMatch(i, (int)ci[i], c[i], (int)si[i], s[i], cs[i])).ToList();
    }

    /// <summary>
    /// Largest block of the audit's SSIM searches (queries x references x H x W), whatever
    /// <see cref="MemorizationOptions.BlockElements"/> allows: 2^20 elements, 256 images of 64 px. Measured with the
    /// library's heap thresholds (<see cref="Platform.Memory.KeepFreedHeap()"/>): 2,000 queries against their 256
    /// candidates each among 16,000 references took 35 s in blocks of 2^24 elements, resident memory growing to 9 GB
    /// (the blocks did not reuse the freed heap), and 15 s at a flat 3.2 GB in blocks of 2^20; the full search grew by
    /// about 180 MB a query in blocks of one query against all 16,000 references.
    /// </summary>
    public const long SearchBlockElements = 1L << 20;

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
