using System.Text.Json;
using Microsoft.Data.Analysis;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>Settings of <see cref="GenerationEvaluation.Run(Tensor, Tensor, IReadOnlyList{AdherencePrompt}, Func{Tensor, Tensor}, IFindingScorer, GenerationEvaluationOptions?)"/>.</summary>
public sealed record GenerationEvaluationOptions
{
    /// <summary>KID subsets.</summary>
    public int KidSubsets { get; init; } = 50;
    /// <summary>KID subset size; null: min(1000, real count, generated count).</summary>
    public int? KidSubsetSize { get; init; }
    /// <summary>Seed of the KID subsets and of the real-image groups drawn for the diversity baseline.</summary>
    public int Seed { get; init; }
    /// <summary>Findings reported for prompt adherence (null: every finding some prompt names).</summary>
    public IReadOnlyList<Data.Observation>? AdherenceFindings { get; init; }
}

/// <summary>The headline numbers of a text-to-CXR generator, as RoentGen reports them.</summary>
/// <param name="Fid">Fréchet distance between real and generated classifier features (lower is closer).</param>
/// <param name="Kid">Kernel Inception Distance on the same features (mean ± std over subsets).</param>
/// <param name="MsSsimGenerated">Mean pairwise MS-SSIM among images generated from the same prompt (lower is more diverse).</param>
/// <param name="MsSsimReal">The same figure for random groups of real images of the same sizes: the diversity to aim for.</param>
/// <param name="Adherence">Prompt adherence (null when no prompt names a finding, or every prompt names the same ones).</param>
/// <param name="RealImages">Real images.</param>
/// <param name="GeneratedImages">Generated images.</param>
/// <param name="PromptGroups">Distinct prompts with two or more generated images (the MS-SSIM groups).</param>
public sealed record GenerationEvaluationResult(double Fid, KidResult Kid, double MsSsimGenerated, double MsSsimReal,
    PromptAdherenceResult? Adherence, int RealImages, int GeneratedImages, int PromptGroups)
{
    /// <summary>The fewest images per side (real, generated) from which FID and KID are reported without a warning.</summary>
    public const int MinImagesPerSide = 10;

    /// <summary>
    /// What makes the numbers unreliable, in words (e.g. FID from fewer than <see cref="MinImagesPerSide"/> images on a
    /// side, whose covariance estimates are meaningless); empty when nothing does. Written into <see cref="ToJson"/>.
    /// </summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>One row per number: metric (fid, kid_mean, kid_std, ms_ssim_generated, ms_ssim_real, adherence_mean_auc, adherence_auc/FINDING...) and value.</summary>
    public DataFrame ToDataFrame()
    {
        var rows = new List<(string, double)>
        {
            ("fid", Fid), ("kid_mean", Kid.Mean), ("kid_std", Kid.Std),
            ("ms_ssim_generated", MsSsimGenerated), ("ms_ssim_real", MsSsimReal),
            ("real_images", RealImages), ("generated_images", GeneratedImages), ("prompt_groups", PromptGroups),
        };
        if (Adherence is not null)
        {
            rows.Add(("adherence_mean_auc", Adherence.MeanAuc));
            rows.AddRange(Adherence.Findings.Select(f => ($"adherence_auc/{Data.Observations.Name(f.Finding)}", f.Auc)));
        }
        return new DataFrame(new StringDataFrameColumn("metric", rows.Select(r => r.Item1)), new DoubleDataFrameColumn("value", rows.Select(r => r.Item2)));
    }

    /// <summary>The result as indented JSON (snake_case names; NaN written as the string "NaN").</summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        fid = Fid,
        kid = Kid,
        ms_ssim_generated = MsSsimGenerated,
        ms_ssim_real = MsSsimReal,
        real_images = RealImages,
        generated_images = GeneratedImages,
        prompt_groups = PromptGroups,
        warnings = Warnings,
        adherence = Adherence is null ? null : new { mean_auc = Adherence.MeanAuc, images = Adherence.Images, findings = Adherence.Findings, prompts = Adherence.Prompts },
    }, EvaluationJson.Options);
}

/// <summary>
/// One call that evaluates generated chest X-rays against real held-out ones: FID (Heusel et al. 2017) and KID
/// (Bińkowski et al. 2018) on the proxy classifier's penultimate features (the Inception network's role), MS-SSIM
/// diversity within each prompt's samples next to the same figure for real images, and prompt adherence. It takes
/// tensors and delegates only, so any generator's output can be scored.
/// </summary>
public static class GenerationEvaluation
{
    /// <summary>Evaluates with a <see cref="ProxyFindingClassifier"/> as both feature extractor and finding scorer; the prompts' findings are read by <see cref="AdherencePrompt.FromText"/>.</summary>
    /// <param name="real">Real held-out images (N_r, 1, H, W) in [−1, 1].</param>
    /// <param name="generated">Generated images (N_g, 1, H, W) in [−1, 1], one per prompt.</param>
    /// <param name="prompts">The prompt of each generated image; equal texts form the diversity groups.</param>
    /// <param name="classifier">The proxy classifier.</param>
    /// <param name="options">Settings (null: defaults).</param>
    public static GenerationEvaluationResult Run(Tensor real, Tensor generated, IReadOnlyList<string> prompts, ProxyFindingClassifier classifier,
        GenerationEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(classifier);
        return Run(real, generated, prompts.Select(AdherencePrompt.FromText).ToList(), classifier.Features, classifier, options);
    }

    /// <summary>Evaluates with any feature extractor and finding scorer.</summary>
    /// <param name="real">Real held-out images (N_r, 1, H, W) in [−1, 1].</param>
    /// <param name="generated">Generated images (N_g, 1, H, W) in [−1, 1], one per prompt.</param>
    /// <param name="prompts">The prompt of each generated image with the findings it names; equal texts form the diversity groups.</param>
    /// <param name="features">Images → (N, F) features for FID and KID.</param>
    /// <param name="scorer">Images → (N, 14) finding probabilities for prompt adherence.</param>
    /// <param name="options">Settings (null: defaults).</param>
    /// <exception cref="ArgumentException">Shapes or counts do not agree, or fewer than two images on a side.</exception>
    public static GenerationEvaluationResult Run(Tensor real, Tensor generated, IReadOnlyList<AdherencePrompt> prompts,
        Func<Tensor, Tensor> features, IFindingScorer scorer, GenerationEvaluationOptions? options = null)
    {
        var o = options ?? new GenerationEvaluationOptions();
        CheckImages(real, nameof(real));
        CheckImages(generated, nameof(generated));
        if (!real.shape[1..].SequenceEqual(generated.shape[1..]))
            throw new ArgumentException($"real images are [{string.Join(", ", real.shape[1..])}] but generated ones are [{string.Join(", ", generated.shape[1..])}]; resize one set to the other first");
        if (prompts.Count != generated.shape[0])
            throw new ArgumentException($"need one prompt per generated image: {generated.shape[0]} images, {prompts.Count} prompts");
        int nReal = (int)real.shape[0], nGen = (int)generated.shape[0];

        using var scope = NewDisposeScope();
        var fReal = features(real);
        var fGen = features(generated);
        double fid = FrechetDistance.Compute(fReal, fGen);
        int subset = o.KidSubsetSize ?? Math.Min(1000, Math.Min(nReal, nGen));
        var kid = KernelInceptionDistance.Compute(fReal, fGen, o.KidSubsets, subset, o.Seed);

        // Diversity: generated images grouped by prompt; real images drawn into random groups of the same sizes.
        var groups = Enumerable.Range(0, nGen).GroupBy(i => prompts[i].Text).Select(g => g.ToArray()).Where(g => g.Length >= 2).ToList();
        double msGen = double.NaN, msReal = double.NaN;
        if (groups.Count > 0)
        {
            msGen = Diversity.MsSsim(groups.Select(g => generated.index_select(0, tensor(g.Select(i => (long)i).ToArray()))).ToList());
            var rng = new Random(o.Seed);
            var realGroups = new List<Tensor>();
            foreach (var g in groups)
            {
                int k = Math.Min(g.Length, nReal);
                if (k < 2) continue;
                var idx = Enumerable.Range(0, nReal).OrderBy(_ => rng.Next()).Take(k).Select(i => (long)i).ToArray();
                realGroups.Add(real.index_select(0, tensor(idx)));
            }
            if (realGroups.Count > 0) msReal = Diversity.MsSsim(realGroups);
        }

        PromptAdherenceResult? adherence = null;
        bool someNamed = prompts.Any(p => p.Findings.Count > 0);
        bool varied = prompts.Select(p => string.Join(",", p.Findings.OrderBy(f => f))).Distinct().Count() > 1;
        if (someNamed && varied) adherence = PromptAdherence.Score(generated, prompts, scorer, o.AdherenceFindings);

        var warnings = new List<string>();
        if (nReal < GenerationEvaluationResult.MinImagesPerSide || nGen < GenerationEvaluationResult.MinImagesPerSide)
            warnings.Add($"FID and KID from {nReal} real and {nGen} generated images: fewer than {GenerationEvaluationResult.MinImagesPerSide} on a side, so they are not meaningful estimates (use hundreds of images)");
        if (adherence is null) warnings.Add("no prompt adherence: no prompt names a finding, or every prompt names the same ones");
        return new GenerationEvaluationResult(fid, kid, msGen, msReal, adherence, nReal, nGen, groups.Count) { Warnings = warnings };
    }

    private static void CheckImages(Tensor images, string name)
    {
        if (images.dim() != 4 || images.shape[1] != 1 || images.shape[0] < 2)
            throw new ArgumentException($"{name} must be at least two (N, 1, H, W) images in [-1, 1], got shape [{string.Join(", ", images.shape)}]", name);
    }
}
