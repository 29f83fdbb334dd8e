using System.Globalization;
using System.Text.Json;
using RoentGen.Data;
using RoentGen.Diffusion;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>The judge's held-out AUC of one prompted finding on the originals and on their reconstructions.</summary>
/// <param name="Finding">The finding.</param>
/// <param name="OriginalAuc">AUC on the original images.</param>
/// <param name="ReconstructionAuc">AUC on the autoencoder's reconstructions of the same images.</param>
/// <param name="Positives">Images labelled positive.</param>
/// <param name="Negatives">Images labelled negative.</param>
public sealed record FindingFidelity(Observation Finding, double OriginalAuc, double ReconstructionAuc, int Positives, int Negatives)
{
    /// <summary>What the reconstruction loses: original AUC minus reconstruction AUC (negative when it gains).</summary>
    public double Gap => OriginalAuc - ReconstructionAuc;
}

/// <summary>
/// How faithfully an autoencoder reproduces chest X-rays, as a latent diffusion model's ceiling: per-image PSNR and
/// SSIM of reconstructions against originals, the Fréchet distance between the judge's penultimate features of the two
/// sets (the judge-feature FID), and, per prompted finding, the judge's AUC on reconstructions next to its AUC on the
/// originals. A finding whose AUC drops on reconstructions is one the autoencoder blurs away, and no generator working
/// in its latent space can draw it more clearly than that.
/// </summary>
public sealed record ReconstructionFidelity
{
    /// <summary>The largest AUC loss per finding that counts as faithful (issue #14: within 0.03 of the originals).</summary>
    public const double TargetGap = 0.03;

    /// <summary>Images compared.</summary>
    public required int Images { get; init; }
    /// <summary>Mean per-image PSNR in dB, images taken in [0, 1] (+∞ when every reconstruction is exact).</summary>
    public required double Psnr { get; init; }
    /// <summary>Mean per-image SSIM (11x11 Gaussian window, images in [0, 1]).</summary>
    public required double Ssim { get; init; }
    /// <summary>Squared Fréchet distance between the judge's features of the reconstructions and of the originals.</summary>
    public required double FeatureFid { get; init; }
    /// <summary>One entry per prompted finding (<see cref="PromptAdherence.DefaultFindings"/> order).</summary>
    public required IReadOnlyList<FindingFidelity> Findings { get; init; }

    /// <summary>The largest finite AUC gap over the findings (NaN if none is finite).</summary>
    public double MaxGap => Findings.Select(f => f.Gap).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
    /// <summary>True when every finding's gap is finite and at most <see cref="TargetGap"/>.</summary>
    public bool MeetsTarget => Findings.All(f => double.IsFinite(f.Gap) && f.Gap <= TargetGap);

    /// <summary>
    /// Mean per-image peak signal-to-noise ratio, 10·log10(range² / MSE), of (N, C, H, W) images <paramref name="x"/>
    /// against <paramref name="y"/>; +∞ when the images are identical.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes differ or are not (N, C, H, W).</exception>
    public static double MeanPsnr(Tensor x, Tensor y, double dataRange = 1.0)
    {
        if (!x.shape.SequenceEqual(y.shape) || x.dim() != 4)
            throw new ArgumentException($"PSNR needs two (N, C, H, W) sets of one shape, got [{string.Join(", ", x.shape)}] and [{string.Join(", ", y.shape)}]");
        using var scope = NewDisposeScope();
        var mse = (x.to(ScalarType.Float64) - y.to(ScalarType.Float64)).pow(2).mean([1, 2, 3]);   // (N)
        var psnr = 10.0 * (dataRange * dataRange / mse).log10();                                   // (N), +inf where mse = 0
        return psnr.mean().item<double>();
    }

    /// <summary>
    /// Reconstructs <paramref name="images"/> (N, 1, H, W) in [−1, 1] through <paramref name="vae"/> (posterior mean,
    /// clamped to [−1, 1]), in batches and without gradients.
    /// </summary>
    public static Tensor Reconstruct(AutoencoderKL vae, Tensor images, int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(vae);
        if (images.dim() != 4) throw new ArgumentException($"images must be (N, C, H, W), got shape [{string.Join(", ", images.shape)}]", nameof(images));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        bool wasTraining = vae.training;
        vae.eval();
        try
        {
            var parts = new List<Tensor>();
            for (long i = 0; i < images.shape[0]; i += batchSize)
            {
                using var step = NewDisposeScope();
                var x = images.narrow(0, i, Math.Min(batchSize, images.shape[0] - i)).to(ScalarType.Float32);
                parts.Add(vae.Decode(vae.Encode(x).Mean).clamp(-1, 1).MoveToOuterDisposeScope());
            }
            return cat(parts, 0).MoveToOuterDisposeScope();   // (N, 1, H, W)
        }
        finally
        {
            if (wasTraining) vae.train();
        }
    }

    /// <summary>Measures <paramref name="vae"/> on held-out <paramref name="images"/> (N, 1, H, W) in [−1, 1] with targets (N, 14) as from <see cref="ProxyFindingClassifier.LabelTensor"/>.</summary>
    public static ReconstructionFidelity Measure(AutoencoderKL vae, ProxyFindingClassifier judge, Tensor images, Tensor labels)
    {
        using var scope = NewDisposeScope();
        return Compare(judge, images, Reconstruct(vae, images), labels);
    }

    /// <summary>Compares <paramref name="reconstructions"/> with their <paramref name="originals"/> (both (N, 1, H, W) in [−1, 1]) under <paramref name="judge"/>.</summary>
    /// <exception cref="ArgumentException">Shapes do not agree.</exception>
    public static ReconstructionFidelity Compare(ProxyFindingClassifier judge, Tensor originals, Tensor reconstructions, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(judge);
        if (!originals.shape.SequenceEqual(reconstructions.shape))
            throw new ArgumentException($"reconstructions [{string.Join(", ", reconstructions.shape)}] must have the originals' shape [{string.Join(", ", originals.shape)}]", nameof(reconstructions));
        using var scope = NewDisposeScope();
        var a = (originals.to(ScalarType.Float32) + 1) / 2;        // [0, 1]
        var b = (reconstructions.to(ScalarType.Float32) + 1) / 2;
        double psnr = MeanPsnr(b, a);
        double ssim = Evaluation.Ssim.Compute(b, a).mean().item<float>();
        double fid = FrechetDistance.Compute(judge.Features(reconstructions), judge.Features(originals));
        var before = judge.Evaluate(originals, labels).ToDictionary(f => f.Finding);
        var after = judge.Evaluate(reconstructions, labels).ToDictionary(f => f.Finding);
        var findings = PromptAdherence.DefaultFindings
            .Select(f => new FindingFidelity(f, before[f].Auc, after[f].Auc, before[f].Positives, before[f].Negatives)).ToList();
        return new ReconstructionFidelity { Images = checked((int)originals.shape[0]), Psnr = psnr, Ssim = ssim, FeatureFid = fid, Findings = findings };
    }

    /// <summary>
    /// JSON with images, psnr_db, ssim, judge_feature_fid, target_gap, max_gap, meets_target and findings (finding,
    /// original_auc, reconstruction_auc, gap, positives, negatives); NaN and ∞ written as strings.
    /// </summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        images = Images, psnr_db = Psnr, ssim = Ssim, judge_feature_fid = FeatureFid, target_gap = TargetGap, max_gap = MaxGap,
        meets_target = MeetsTarget,
        findings = Findings.Select(f => new
        {
            finding = f.Finding.ToString(), original_auc = f.OriginalAuc, reconstruction_auc = f.ReconstructionAuc, gap = f.Gap,
            positives = f.Positives, negatives = f.Negatives,
        }),
    }, EvaluationJson.Options);

    /// <summary>A text table: PSNR, SSIM and feature FID, then one line per prompted finding.</summary>
    public string Summary()
    {
        var lines = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"{Images} images: PSNR {Psnr:F2} dB, SSIM {Ssim:F4}, judge-feature FID {FeatureFid:F3}"),
            string.Create(CultureInfo.InvariantCulture, $"  {"finding",-20} {"original",8} {"recon",8} {"gap",7}"),
        };
        foreach (var f in Findings)
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"  {f.Finding.Name(),-20} {f.OriginalAuc,8:F3} {f.ReconstructionAuc,8:F3} {f.Gap,7:F3}{(f.Gap <= TargetGap ? "" : "  over target")}"));
        lines.Add(string.Create(CultureInfo.InvariantCulture, $"  max gap {MaxGap:F3}: {(MeetsTarget ? "meets" : "misses")} the target {TargetGap:F2}"));
        return string.Join(Environment.NewLine, lines);
    }
}
