using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Analysis;
using RoentGen.Data;
using RoentGen.Platform;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>Statistics of one image (intensities in [0, 1]).</summary>
/// <param name="BodyFraction">Share of the image inside the body mask (<see cref="ImageStatistics.BodyMask"/>).</param>
/// <param name="BodyMean">Mean intensity inside the body.</param>
/// <param name="BodyStd">Standard deviation of the intensity inside the body.</param>
/// <param name="NpsSlope">Slope of the log-log fit of the radially averaged power spectrum (<see cref="ImageStatistics.NpsSlope"/>).</param>
/// <param name="EdgeDensity">Share of pixels whose Sobel magnitude exceeds the threshold (<see cref="ImageStatistics.EdgeDensity"/>).</param>
public sealed record ImageStats(double BodyFraction, double BodyMean, double BodyStd, double NpsSlope, double EdgeDensity);

/// <summary>Statistics of a set of images: per-image values summarised, and the pooled body intensities.</summary>
/// <param name="Name">The set's name.</param>
/// <param name="Images">Per image.</param>
/// <param name="BodyIntensities">Body-pixel intensities of every image, pooled (a deterministic subsample of at most 200,000), sorted.</param>
public sealed record ImageSetStats(string Name, IReadOnlyList<ImageStats> Images, IReadOnlyList<double> BodyIntensities)
{
    /// <summary>Mean and sample standard deviation of one per-image statistic.</summary>
    public (double Mean, double Sd) Summary(Func<ImageStats, double> f)
    {
        var v = Images.Select(f).Where(double.IsFinite).ToList();
        if (v.Count == 0) return (double.NaN, double.NaN);
        double m = v.Average();
        return (m, v.Count < 2 ? double.NaN : Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Count - 1)));
    }

    /// <summary>The pooled body-intensity histogram: <paramref name="bins"/> equal bins over [0, 1], normalised to sum 1.</summary>
    public double[] Histogram(int bins = 64)
    {
        var h = new double[bins];
        foreach (var v in BodyIntensities) h[Math.Clamp((int)(v * bins), 0, bins - 1)]++;
        double n = Math.Max(1, BodyIntensities.Count);
        for (int i = 0; i < bins; i++) h[i] /= n;
        return h;
    }
}

/// <summary>Two sets compared: each one's statistics and the distances between them.</summary>
/// <param name="Set">The set examined (e.g. phantoms).</param>
/// <param name="Reference">The reference set (e.g. real radiographs), or null.</param>
/// <param name="HistogramW1">Wasserstein-1 distance between the pooled body intensities (intensity units), or NaN without a reference.</param>
/// <param name="HistogramJs">Jensen–Shannon divergence (natural log, in [0, ln 2]) between the 64-bin body histograms, or NaN.</param>
public sealed record ImageStatsComparison(ImageSetStats Set, ImageSetStats? Reference, double HistogramW1, double HistogramJs)
{
    private static readonly (string Name, Func<ImageStats, double> F)[] Fields =
    [
        ("body_fraction", s => s.BodyFraction), ("body_mean", s => s.BodyMean), ("body_std", s => s.BodyStd),
        ("nps_slope", s => s.NpsSlope), ("edge_density", s => s.EdgeDensity),
    ];

    /// <summary>One row per statistic: mean and sd of the set ("set mean", "set sd") and of the reference, then the W1 and JS distance rows.</summary>
    public DataFrame ToDataFrame()
    {
        var sets = Reference is null ? new[] { Set } : new[] { Set, Reference };
        var names = Fields.Select(f => f.Name).Concat(Reference is null ? [] : new[] { "histogram_w1", "histogram_js" }).ToList();
        var cols = new List<DataFrameColumn> { new StringDataFrameColumn("statistic", names) };
        foreach (var s in sets)
        {
            var mean = Fields.Select(f => (double?)s.Summary(f.F).Mean).ToList();
            var sd = Fields.Select(f => (double?)s.Summary(f.F).Sd).ToList();
            if (Reference is not null) { mean.Add(s == Set ? HistogramW1 : null); mean.Add(s == Set ? HistogramJs : null); sd.Add(null); sd.Add(null); }
            string label = s == Set ? "set" : "reference";
            cols.Add(new DoubleDataFrameColumn($"{label} mean", mean));
            cols.Add(new DoubleDataFrameColumn($"{label} sd", sd));
        }
        return new DataFrame(cols);
    }

    /// <summary>JSON: per set (name, images, mean and sd of each statistic, the 64-bin histogram, per-image values) and the distances.</summary>
    public string ToJson()
    {
        static JsonNode? N(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 6)) : null;
        JsonObject SetJson(ImageSetStats s)
        {
            var summary = new JsonObject();
            foreach (var (name, f) in Fields)
            {
                var (m, sd) = s.Summary(f);
                summary[name] = new JsonObject { ["mean"] = N(m), ["sd"] = N(sd) };
            }
            return new JsonObject
            {
                ["name"] = s.Name, ["images"] = s.Images.Count, ["summary"] = summary,
                ["histogram_64"] = new JsonArray(s.Histogram().Select(v => N(v)).ToArray()),
                ["per_image"] = new JsonArray(s.Images.Select(i => (JsonNode)new JsonObject
                {
                    ["body_fraction"] = N(i.BodyFraction), ["body_mean"] = N(i.BodyMean), ["body_std"] = N(i.BodyStd),
                    ["nps_slope"] = N(i.NpsSlope), ["edge_density"] = N(i.EdgeDensity),
                }).ToArray()),
            };
        }
        var root = new JsonObject
        {
            ["set"] = SetJson(Set),
            ["reference"] = Reference is null ? null : SetJson(Reference),
            ["histogram_w1"] = N(HistogramW1),
            ["histogram_js"] = N(HistogramJs),
            ["definitions"] = new JsonObject
            {
                ["body"] = "largest 4-connected component above the image's Otsu threshold, holes filled",
                ["nps_slope"] = "least-squares slope of log power vs log radial frequency, Hann-windowed mean-removed image, radii 2..S/2-1",
                ["edge_density"] = "share of interior pixels with Sobel magnitude (kernel / 4) above 0.1 x the image's intensity range",
            },
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Writes <see cref="ToJson"/> atomically.</summary>
    public void Save(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(path, ToJson());
    }
}

/// <summary>
/// Image statistics that compare a synthetic world with real radiographs: the intensity histogram inside the body,
/// the noise power spectrum's slope, and edge density. Definitions:
/// <list type="bullet">
/// <item><b>Body</b>: pixels above the image's Otsu (1979) threshold, the largest 4-connected component of them, with
/// its holes filled (background regions not connected to the image border join it, so the dark lungs inside the thorax
/// count as body). On a radiograph this is the patient's silhouette; the direct-exposure air around it is left out.</item>
/// <item><b>Histogram distance</b>: Wasserstein-1 between the two sets' pooled body intensities, ∫₀¹ |Q₁(u) − Q₂(u)| du
/// with Q the empirical quantile functions (in intensity units: a set shifted by d is at distance d), and Jensen–Shannon
/// divergence between their 64-bin histograms.</item>
/// <item><b>NPS slope</b>: the whole image with its mean removed, multiplied by a 2D Hann window, |FFT|² averaged over
/// rings of integer radius r (cycles per image), and the least-squares slope of log power against log r over
/// r = 2 … S/2 − 1. White noise gives 0, noise with power ∝ 1/f² gives −2; radiographs, dominated by large smooth
/// structures, are steep; a world of flat shapes with added white noise is flatter.</item>
/// <item><b>Edge density</b>: 3x3 Sobel gradients divided by 4 (a step of height h has magnitude h), and the share of
/// interior pixels whose magnitude exceeds 0.1 × the image's intensity range (0 for a flat image).</item>
/// </list>
/// </summary>
public static class ImageStatistics
{
    /// <summary>Pooled body intensities kept per set at most.</summary>
    public const int MaxPooledValues = 200_000;

    /// <summary>Statistics of one image.</summary>
    public static ImageStats Of(GrayImage image)
    {
        var body = BodyMask(image);
        int n = body.Count(b => b);
        double mean = 0, sq = 0;
        for (int i = 0; i < body.Length; i++) if (body[i]) mean += image.Pixels[i];
        mean = n == 0 ? double.NaN : mean / n;
        for (int i = 0; i < body.Length; i++) if (body[i]) sq += (image.Pixels[i] - mean) * (image.Pixels[i] - mean);
        return new ImageStats((double)n / body.Length, mean, n < 2 ? double.NaN : Math.Sqrt(sq / (n - 1)), NpsSlope(image), EdgeDensity(image));
    }

    /// <summary>Statistics of a set of images, named <paramref name="name"/>.</summary>
    public static ImageSetStats OfSet(string name, IEnumerable<GrayImage> images)
    {
        var stats = new List<ImageStats>();
        var values = new List<double>();
        var all = images.ToList();
        long totalBody = 0;
        var masks = new List<bool[]>();
        foreach (var img in all)
        {
            stats.Add(Of(img));
            var m = BodyMask(img);
            masks.Add(m);
            totalBody += m.Count(b => b);
        }
        long stride = Math.Max(1, (totalBody + MaxPooledValues - 1) / MaxPooledValues);
        long k = 0;
        for (int j = 0; j < all.Count; j++)
            for (int i = 0; i < masks[j].Length; i++)
                if (masks[j][i] && k++ % stride == 0) values.Add(all[j].Pixels[i]);
        values.Sort();
        return new ImageSetStats(name, stats, values);
    }

    /// <summary>Compares a set with a reference set (or describes it alone).</summary>
    public static ImageStatsComparison Compare(ImageSetStats set, ImageSetStats? reference) =>
        reference is null ? new(set, null, double.NaN, double.NaN)
            : new(set, reference, Wasserstein1(set.BodyIntensities, reference.BodyIntensities), JensenShannon(set.Histogram(), reference.Histogram()));

    /// <summary>The body mask (see the type's remarks), row-major.</summary>
    public static bool[] BodyMask(GrayImage image)
    {
        int w = image.Width, h = image.Height;
        var px = image.Pixels;
        float t = OtsuThreshold(px);
        var above = new bool[px.Length];
        for (int i = 0; i < px.Length; i++) above[i] = px[i] > t;
        // Largest 4-connected component of the above-threshold pixels.
        var label = new int[px.Length];
        int best = 0, bestSize = 0, next = 0;
        var stack = new Stack<int>();
        for (int s = 0; s < px.Length; s++)
        {
            if (!above[s] || label[s] != 0) continue;
            int id = ++next, size = 0;
            label[s] = id; stack.Push(s);
            while (stack.Count > 0)
            {
                int p = stack.Pop(); size++;
                int x = p % w, y = p / w;
                foreach (var q in new[] { x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1 })
                    if (q >= 0 && above[q] && label[q] == 0) { label[q] = id; stack.Push(q); }
            }
            if (size > bestSize) { bestSize = size; best = id; }
        }
        var body = new bool[px.Length];
        if (best == 0) return body;
        for (int i = 0; i < px.Length; i++) body[i] = label[i] == best;
        // Fill holes: pixels outside the component that the image border cannot reach.
        var outside = new bool[px.Length];
        for (int x = 0; x < w; x++) { Seed(x); Seed((h - 1) * w + x); }
        for (int y = 0; y < h; y++) { Seed(y * w); Seed(y * w + w - 1); }
        while (stack.Count > 0)
        {
            int p = stack.Pop();
            int x = p % w, y = p / w;
            if (x > 0) Seed(p - 1);
            if (x < w - 1) Seed(p + 1);
            if (y > 0) Seed(p - w);
            if (y < h - 1) Seed(p + w);
        }
        for (int i = 0; i < px.Length; i++) body[i] = !outside[i];
        return body;

        void Seed(int p)
        {
            if (body[p] || outside[p]) return;
            outside[p] = true; stack.Push(p);
        }
    }

    /// <summary>Otsu's threshold over 256 bins of [0, 1]: the level that maximises the between-class variance.</summary>
    public static float OtsuThreshold(float[] pixels)
    {
        var hist = new double[256];
        foreach (var v in pixels) hist[Math.Clamp((int)(v * 255 + 0.5f), 0, 255)]++;
        double total = pixels.Length, sumAll = 0;
        for (int i = 0; i < 256; i++) sumAll += i * hist[i];
        double wB = 0, sumB = 0, bestVar = -1; int best = 0;
        for (int i = 0; i < 256; i++)
        {
            wB += hist[i];
            if (wB == 0) continue;
            double wF = total - wB;
            if (wF == 0) break;
            sumB += i * hist[i];
            double mB = sumB / wB, mF = (sumAll - sumB) / wF;
            double between = wB * wF * (mB - mF) * (mB - mF);
            if (between > bestVar) { bestVar = between; best = i; }
        }
        return (best + 0.5f) / 255f;
    }

    /// <summary>The NPS slope (see the type's remarks); NaN for images under 16 pixels a side or a flat image.</summary>
    public static double NpsSlope(GrayImage image)
    {
        int w = image.Width, h = image.Height;
        if (w < 16 || h < 16) return double.NaN;
        double[] power;
        using (var scope = NewDisposeScope())
        {
            var x = tensor(image.Pixels, [h, w]).to_type(ScalarType.Float64);
            x = x - x.mean();
            var win = outer(hann_window(h, periodic: false, dtype: ScalarType.Float64), hann_window(w, periodic: false, dtype: ScalarType.Float64));
            var f = fft.fft2(x * win);
            power = (f.real.square() + f.imag.square()).contiguous().data<double>().ToArray();   // (H, W) row-major
        }
        int rMax = Math.Min(w, h) / 2;
        var sum = new double[rMax + 1];
        var count = new int[rMax + 1];
        for (int v = 0; v < h; v++)
            for (int u = 0; u < w; u++)
            {
                int fu = u <= w / 2 ? u : u - w, fv = v <= h / 2 ? v : v - h;
                int r = (int)Math.Round(Math.Sqrt(fu * fu + fv * fv));
                if (r > rMax) continue;
                sum[r] += power[v * w + u]; count[r]++;
            }
        var xs = new List<double>(); var ys = new List<double>();
        for (int r = 2; r <= rMax - 1; r++)
        {
            double p = sum[r] / count[r];
            if (p > 0) { xs.Add(Math.Log(r)); ys.Add(Math.Log(p)); }
        }
        if (xs.Count < 3) return double.NaN;
        double mx = xs.Average(), my = ys.Average(), sxy = 0, sxx = 0;
        for (int i = 0; i < xs.Count; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) * (xs[i] - mx); }
        return sxy / sxx;
    }

    /// <summary>Edge density (see the type's remarks): 0 for a flat image.</summary>
    public static double EdgeDensity(GrayImage image, double relativeThreshold = 0.1)
    {
        int w = image.Width, h = image.Height;
        var p = image.Pixels;
        if (w < 3 || h < 3) return double.NaN;
        float min = p.Min(), max = p.Max();
        double range = max - min;
        if (range <= 0) return 0;
        double t = relativeThreshold * range;
        int edges = 0, total = 0;
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++)
            {
                float P(int dx, int dy) => p[(y + dy) * w + x + dx];
                double gx = (P(1, -1) + 2 * P(1, 0) + P(1, 1) - P(-1, -1) - 2 * P(-1, 0) - P(-1, 1)) / 4;
                double gy = (P(-1, 1) + 2 * P(0, 1) + P(1, 1) - P(-1, -1) - 2 * P(0, -1) - P(1, -1)) / 4;
                if (Math.Sqrt(gx * gx + gy * gy) > t) edges++;
                total++;
            }
        return (double)edges / total;
    }

    /// <summary>
    /// Wasserstein-1 distance between two empirical distributions given as sorted samples: ∫₀¹ |Q_a(u) − Q_b(u)| du, exact
    /// for the step quantile functions (the integral is summed over the merged breakpoints i/n and j/m).
    /// </summary>
    /// <exception cref="ArgumentException">A sample is empty.</exception>
    public static double Wasserstein1(IReadOnlyList<double> sortedA, IReadOnlyList<double> sortedB)
    {
        if (sortedA.Count == 0 || sortedB.Count == 0) throw new ArgumentException("Wasserstein-1 needs two non-empty samples");
        int n = sortedA.Count, m = sortedB.Count, i = 0, j = 0;
        double u = 0, total = 0;
        while (i < n && j < m)
        {
            double nextA = (double)(i + 1) / n, nextB = (double)(j + 1) / m;
            double next = Math.Min(nextA, nextB);
            total += (next - u) * Math.Abs(sortedA[i] - sortedB[j]);
            u = next;
            if (nextA <= next) i++;
            if (nextB <= next) j++;
        }
        return total;
    }

    /// <summary>Jensen–Shannon divergence (natural log) between two normalised histograms of the same bins.</summary>
    public static double JensenShannon(IReadOnlyList<double> p, IReadOnlyList<double> q)
    {
        if (p.Count != q.Count) throw new ArgumentException($"Jensen-Shannon: histograms of {p.Count} and {q.Count} bins");
        double js = 0;
        for (int i = 0; i < p.Count; i++)
        {
            double mid = 0.5 * (p[i] + q[i]);
            if (p[i] > 0) js += 0.5 * p[i] * Math.Log(p[i] / mid);
            if (q[i] > 0) js += 0.5 * q[i] * Math.Log(q[i] / mid);
        }
        return js;
    }

    /// <summary>"0.123" in the invariant culture, "n/a" for NaN.</summary>
    public static string Format(double v) => double.IsFinite(v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "n/a";
}
