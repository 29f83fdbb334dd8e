using RoentGen.Data;
using RoentGen.Evaluation;
using RoentGen.Evaluation.Probes;
using RoentGen.Evaluation.Statistics;
using RoentGen.Methods;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.PairAug;

/// <summary>A vision-language model seen from outside: images and texts into one embedding space.</summary>
public interface IClipEmbedder
{
    /// <summary>The image side the model expects (images are resized to it).</summary>
    int ImageSize { get; }
    /// <summary>(N, 1, S, S) images in [-1, 1] to (N, P) embeddings (not normalised), under no_grad.</summary>
    Tensor EmbedImages(Tensor images);
    /// <summary>N texts to (N, P) embeddings (not normalised), under no_grad.</summary>
    Tensor EmbedTexts(IReadOnlyList<string> texts);
}

/// <summary>
/// A trained <see cref="ClipTraining"/> as an <see cref="IClipEmbedder"/> (its <see cref="ClipTraining.Model"/> through a
/// <see cref="ClipModelEmbedder"/>).
/// </summary>
public sealed class ClipTrainingEmbedder(ClipTraining clip, int batchSize = 32) : IClipEmbedder
{
    private readonly ClipModelEmbedder _inner = new((clip ?? throw new ArgumentNullException(nameof(clip))).Model, batchSize);

    /// <summary>The wrapped run.</summary>
    public ClipTraining Clip { get; } = clip;

    /// <inheritdoc />
    public int ImageSize => _inner.ImageSize;

    /// <inheritdoc />
    public Tensor EmbedImages(Tensor images) => _inner.EmbedImages(images);

    /// <inheritdoc />
    public Tensor EmbedTexts(IReadOnlyList<string> texts) => _inner.EmbedTexts(texts);
}

/// <summary>
/// A <see cref="ClipModel"/> as an <see cref="IClipEmbedder"/>: the ViT and the image projection (images resized to the
/// tower's side), the text tower (through the model's tokenizer and token length) and the text projection. Its modules
/// are put in eval mode for each call and returned to the mode they were in.
/// </summary>
public sealed class ClipModelEmbedder(ClipModel model, int batchSize = 32) : IClipEmbedder
{
    /// <summary>The wrapped model.</summary>
    public ClipModel Model { get; } = model ?? throw new ArgumentNullException(nameof(model));

    /// <inheritdoc />
    public int ImageSize => Model.ImageSize;

    /// <inheritdoc />
    public Tensor EmbedImages(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 1)
            throw new ArgumentException($"CLIP image embedding needs grayscale images (N, 1, H, W), got ({string.Join(", ", images.shape)})", nameof(images));
        return Batched(images.shape[0], (start, count) =>
        {
            var x = images.narrow(0, start, count);
            if (x.shape[2] != ImageSize || x.shape[3] != ImageSize)
                x = nn.functional.interpolate(x, size: [ImageSize, ImageSize], mode: InterpolationMode.Bilinear, align_corners: false);
            return Model.Heads.ProjectImage(Model.Backbone.call(x));                                  // (n, P)
        });
    }

    /// <inheritdoc />
    public Tensor EmbedTexts(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return Batched(texts.Count, (start, count) =>
        {
            var ids = Model.Tokenizer.EncodeBatch(texts.Skip((int)start).Take((int)count).ToList(), Model.Config.MaxTokens).Ids;
            return Model.Heads.ProjectText(Model.TextEncoder.Encode(ids).Pooled);                      // (n, P)
        });
    }

    private Tensor Batched(long n, Func<long, long, Tensor> embed)
    {
        if (n == 0) throw new ArgumentException("nothing to embed");
        var modules = Model.Modules.Values.ToArray();
        var wasTraining = modules.Select(m => m.training).ToArray();
        foreach (var m in modules) m.eval();
        try
        {
            using var _ = no_grad();
            var parts = new List<Tensor>();
            for (long s = 0; s < n; s += batchSize)
            {
                using var scope = NewDisposeScope();
                parts.Add(embed(s, Math.Min(batchSize, n - s)).detach().clone().MoveToOuterDisposeScope());
            }
            var all = cat(parts, 0);
            foreach (var p in parts) p.Dispose();
            return all;
        }
        finally
        {
            for (int i = 0; i < modules.Length; i++) modules[i].train(wasTraining[i]);
        }
    }
}

/// <summary>How zero-shot classification is asked and judged.</summary>
public sealed record ZeroShotOptions
{
    /// <summary>The positive prompt; "{finding}" is replaced by the finding's phrase (CheXzero: "{finding}").</summary>
    public string PositiveTemplate { get; init; } = "{finding}";
    /// <summary>The negative prompt (CheXzero: "no {finding}").</summary>
    public string NegativeTemplate { get; init; } = "no {finding}";
    /// <summary>The findings scored (default: the 13 CheXpert observations other than No Finding).</summary>
    public IReadOnlyList<Observation> Findings { get; init; } = Observations.All.Where(o => o != Observation.NoFinding).ToArray();
    /// <summary>Phrases of findings that replace the default (the CheXpert name in lower case, e.g. "pleural effusion").</summary>
    public IReadOnlyDictionary<Observation, string>? Phrases { get; init; }
    /// <summary>
    /// Multiply the cosine similarities by the model's learned logit scale before the softmax. CheXzero does not (its
    /// softmax is over the raw cosine similarities), so the default is false; the AUC is the same either way (the
    /// probability is monotone in the similarity difference), only the probabilities differ.
    /// </summary>
    public bool UseLogitScale { get; init; }
    /// <summary>Bootstrap resamples of each AUC interval.</summary>
    public int Resamples { get; init; } = 1000;
    /// <summary>Interval level.</summary>
    public double Level { get; init; } = 0.95;
    /// <summary>Seed of the bootstrap.</summary>
    public int Seed { get; init; }

    /// <summary>The phrase of a finding.</summary>
    public string PhraseOf(Observation o) => Phrases is not null && Phrases.TryGetValue(o, out var p) ? p : o.Name().ToLowerInvariant();

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">A template lacks "{finding}", the two are equal, no finding, or bad bootstrap settings.</exception>
    public void Validate()
    {
        foreach (var (t, name) in new[] { (PositiveTemplate, nameof(PositiveTemplate)), (NegativeTemplate, nameof(NegativeTemplate)) })
            if (t is null || !t.Contains("{finding}", StringComparison.Ordinal)) throw new ArgumentException($"{name} must contain '{{finding}}', got '{t}'");
        if (PositiveTemplate == NegativeTemplate) throw new ArgumentException($"PositiveTemplate and NegativeTemplate are the same ('{PositiveTemplate}'); zero-shot needs two different prompts");
        if (Findings.Count == 0) throw new ArgumentException("Findings is empty; name at least one observation to score");
        if (Resamples < 1) throw new ArgumentException($"Resamples must be at least 1, got {Resamples}");
        Summary.CheckLevel(Level);
    }
}

/// <summary>The zero-shot result of one finding.</summary>
/// <param name="Finding">The observation.</param>
/// <param name="PositivePrompt">Its positive prompt.</param>
/// <param name="NegativePrompt">Its negative prompt.</param>
/// <param name="Auc">ROC AUC of the positive probability with its bootstrap interval (all NaN when the labels lack a class).</param>
/// <param name="Positives">Images labelled positive.</param>
/// <param name="Count">Images scored.</param>
public sealed record FindingZeroShot(Observation Finding, string PositivePrompt, string NegativePrompt, BootstrapInterval Auc, int Positives, int Count);

/// <summary>Zero-shot AUCs of every finding.</summary>
/// <param name="PerFinding">One entry per finding, in the order asked.</param>
/// <param name="MacroAuc">Mean AUC over findings with both classes (NaN when none).</param>
/// <param name="IntervalMethod">How the intervals were made.</param>
public sealed record ZeroShotResult(IReadOnlyList<FindingZeroShot> PerFinding, double MacroAuc, string IntervalMethod);

/// <summary>The linear probe trained on a fraction of the training labels.</summary>
/// <param name="Fraction">The fraction asked (0.01, 0.1, 1).</param>
/// <param name="TrainCount">Training images used.</param>
/// <param name="TrainIndices">Which rows of the training split were used (nested across fractions).</param>
/// <param name="Result">The probe's validation choice and test AUCs.</param>
public sealed record LabelFractionProbe(double Fraction, int TrainCount, IReadOnlyList<int> TrainIndices, ClassificationProbeResult Result);

/// <summary>
/// Zero-shot classification as CheXzero does it (Tiu et al., Nature Biomedical Engineering 2022): for each finding,
/// embed a positive prompt ("{finding}") and a negative prompt ("no {finding}"), and score each image by the softmax
/// over its two cosine similarities, p = exp(s₊) / (exp(s₊) + exp(s₋)); the AUC of p against the labels is reported per
/// finding with a bootstrap interval. And linear probing at 1 %, 10 % and 100 % of the training labels on the image
/// tower's features (<see cref="LinearProbe"/>), the label-efficiency protocol of CheXzero and ConVIRT.
/// </summary>
public static class ZeroShot
{
    /// <summary>The label fractions of the linear-probe protocol.</summary>
    public static IReadOnlyList<double> DefaultFractions { get; } = [0.01, 0.1, 1.0];

    /// <summary>Name of the interval method used by <see cref="StratifiedAucInterval"/>.</summary>
    public const string IntervalMethod = "stratified percentile bootstrap (positives and negatives resampled separately, type-7 quantiles)";

    /// <summary>
    /// The positive-prompt probability of each image: softmax over (scale · cos(image, positive), scale · cos(image, negative)).
    /// </summary>
    /// <param name="images">(N, P) image embeddings.</param>
    /// <param name="positive">(P) or (1, P) positive-prompt embedding.</param>
    /// <param name="negative">(P) or (1, P) negative-prompt embedding.</param>
    /// <param name="scale">Multiplier of the similarities (1 for CheXzero).</param>
    public static double[] Probabilities(Tensor images, Tensor positive, Tensor negative, double scale = 1)
    {
        if (images.dim() != 2) throw new ArgumentException($"zero-shot needs (N, P) image embeddings, got ({string.Join(", ", images.shape)})", nameof(images));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var img = nn.functional.normalize(images.to_type(ScalarType.Float64), dim: -1);
        var txt = nn.functional.normalize(stack([positive.reshape(-1), negative.reshape(-1)]).to_type(ScalarType.Float64), dim: -1);   // (2, P)
        if (txt.shape[1] != img.shape[1]) throw new ArgumentException($"prompt embeddings have width {txt.shape[1]} but image embeddings {img.shape[1]}");
        var p = (img.mm(txt.t()) * scale).softmax(1).select(1, 0);                                               // (N)
        return p.data<double>().ToArray();
    }

    /// <summary>Zero-shot AUCs of a trained CLIP run (see <see cref="Evaluate(IClipEmbedder, Tensor, float[,], ZeroShotOptions?, double)"/>).</summary>
    /// <param name="clip">The trained run.</param>
    /// <param name="images">(N, 1, S, S) images in [-1, 1].</param>
    /// <param name="labels">(N, 14) 0/1 labels in <see cref="Observations.All"/> order (e.g. <see cref="ProbeSplit.Labels"/>).</param>
    /// <param name="options">Prompts, findings and bootstrap.</param>
    public static ZeroShotResult Evaluate(ClipTraining clip, Tensor images, float[,] labels, ZeroShotOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(clip);
        return Evaluate(clip.Model, images, labels, options);
    }

    /// <summary>Zero-shot AUCs of a CLIP model (see <see cref="Evaluate(IClipEmbedder, Tensor, float[,], ZeroShotOptions?, double)"/>).</summary>
    /// <param name="model">The model (e.g. <see cref="ClipModel.Load"/>).</param>
    /// <param name="images">(N, 1, S, S) images in [-1, 1].</param>
    /// <param name="labels">(N, 14) 0/1 labels in <see cref="Observations.All"/> order.</param>
    /// <param name="options">Prompts, findings and bootstrap.</param>
    public static ZeroShotResult Evaluate(ClipModel model, Tensor images, float[,] labels, ZeroShotOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new ZeroShotOptions();
        double scale = 1;
        if (options.UseLogitScale) using (no_grad()) scale = model.Heads.LogitScale().item<float>();
        return Evaluate(new ClipModelEmbedder(model), images, labels, options, scale);
    }

    /// <summary>
    /// Zero-shot AUCs: each finding's two prompts are embedded, every image gets its positive probability
    /// (<see cref="Probabilities"/>), and the AUC against the finding's labels gets a <see cref="StratifiedAucInterval"/>.
    /// </summary>
    /// <param name="model">The embedder.</param>
    /// <param name="images">(N, 1, S, S) images in [-1, 1].</param>
    /// <param name="labels">(N, 14) 0/1 labels in <see cref="Observations.All"/> order.</param>
    /// <param name="options">Prompts, findings and bootstrap.</param>
    /// <param name="scale">Similarity multiplier (1 for CheXzero).</param>
    /// <exception cref="ArgumentException">Labels do not match the images, or the options are invalid.</exception>
    public static ZeroShotResult Evaluate(IClipEmbedder model, Tensor images, float[,] labels, ZeroShotOptions? options = null, double scale = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(labels);
        options ??= new ZeroShotOptions();
        options.Validate();
        if (labels.GetLength(0) != images.shape[0] || labels.GetLength(1) != Observations.All.Count)
            throw new ArgumentException($"zero-shot labels are {labels.GetLength(0)}x{labels.GetLength(1)}, expected {images.shape[0]}x{Observations.All.Count} (one row per image, one column per CheXpert observation)");
        using var scope = NewDisposeScope();
        var imageEmb = model.EmbedImages(images);                                                                // (N, P)
        var prompts = options.Findings.SelectMany(f => new[] { Prompt(options.PositiveTemplate, options.PhraseOf(f)), Prompt(options.NegativeTemplate, options.PhraseOf(f)) }).ToList();
        var textEmb = model.EmbedTexts(prompts);                                                                 // (2F, P)
        var per = new List<FindingZeroShot>();
        for (int i = 0; i < options.Findings.Count; i++)
        {
            var f = options.Findings[i];
            var p = Probabilities(imageEmb, textEmb[2 * i], textEmb[2 * i + 1], scale);
            var y = LinearProbe.Column(labels, (int)f);
            per.Add(new FindingZeroShot(f, prompts[2 * i], prompts[2 * i + 1], StratifiedAucInterval(p, y, options.Resamples, options.Seed, options.Level), y.Count(v => v), y.Length));
        }
        var finite = per.Select(r => r.Auc.Estimate).Where(double.IsFinite).ToList();
        return new ZeroShotResult(per, finite.Count > 0 ? finite.Average() : double.NaN, IntervalMethod);
    }

    /// <summary>
    /// The AUC with a stratified percentile bootstrap interval: each resample draws n₊ positives from the positives and
    /// n₋ negatives from the negatives (with replacement), so every resample has both classes and the class balance of
    /// the data; the interval is the (1 − level)/2 and 1 − (1 − level)/2 quantiles (<see cref="Bootstrap.Quantile"/>) of
    /// the resampled AUCs. All NaN when a class is missing. Resamples come from <c>new Random(seed)</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, fewer than one resample, or a level outside (0, 1).</exception>
    public static BootstrapInterval StratifiedAucInterval(IReadOnlyList<double> scores, IReadOnlyList<bool> labels, int resamples = 1000, int seed = 0, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(labels);
        if (scores.Count != labels.Count) throw new ArgumentException($"AUC interval needs one label per score, got {scores.Count} scores and {labels.Count} labels");
        if (resamples < 1) throw new ArgumentException($"the number of bootstrap resamples must be at least 1, got {resamples}", nameof(resamples));
        Summary.CheckLevel(level);
        double estimate = Auc.Compute(scores, labels);
        if (double.IsNaN(estimate)) return new BootstrapInterval(double.NaN, double.NaN, double.NaN, level, resamples, seed);
        var pos = Enumerable.Range(0, scores.Count).Where(i => labels[i]).Select(i => scores[i]).ToArray();
        var neg = Enumerable.Range(0, scores.Count).Where(i => !labels[i]).Select(i => scores[i]).ToArray();
        var random = new Random(seed);
        var stats = new double[resamples];
        var s = new double[pos.Length + neg.Length];
        var y = new bool[s.Length];
        for (int i = 0; i < pos.Length; i++) y[i] = true;
        for (int b = 0; b < resamples; b++)
        {
            for (int i = 0; i < pos.Length; i++) s[i] = pos[random.Next(pos.Length)];
            for (int i = 0; i < neg.Length; i++) s[pos.Length + i] = neg[random.Next(neg.Length)];
            stats[b] = Auc.Compute(s, y);
        }
        Array.Sort(stats);
        double alpha = (1 - level) / 2;
        return new BootstrapInterval(estimate, Bootstrap.Quantile(stats, alpha), Bootstrap.Quantile(stats, 1 - alpha), level, resamples, seed);
    }

    /// <summary>Linear probes of a CLIP run's image tower (its ViT's CLS features) at label fractions (see <see cref="LinearProbeAtFractions(IImageEncoder, ProbeData, IReadOnlyList{double}?, LinearProbeOptions?, int)"/>).</summary>
    public static IReadOnlyList<LabelFractionProbe> LinearProbeAtFractions(ClipTraining clip, ProbeData data, IReadOnlyList<double>? fractions = null,
        LinearProbeOptions? options = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(clip);
        return LinearProbeAtFractions(clip.Model, data, fractions, options, seed);
    }

    /// <summary>Linear probes of a CLIP model's image tower (its ViT's CLS features) at label fractions (see <see cref="LinearProbeAtFractions(IImageEncoder, ProbeData, IReadOnlyList{double}?, LinearProbeOptions?, int)"/>).</summary>
    public static IReadOnlyList<LabelFractionProbe> LinearProbeAtFractions(ClipModel model, ProbeData data, IReadOnlyList<double>? fractions = null,
        LinearProbeOptions? options = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        bool wasTraining = model.Backbone.training;
        try { return LinearProbeAtFractions(new VitEncoder(model.Backbone, "clip"), data, fractions, options, seed); }
        finally { model.Backbone.train(wasTraining); }
    }

    /// <summary>
    /// Multi-label linear probes (<see cref="LinearProbe.TrainMultiLabel"/>, the 14 observations) on frozen features, each
    /// trained on a fraction of the training split: the first ⌈f·N⌉ rows (at least 1) of one seeded permutation, so smaller
    /// fractions are subsets of larger ones; validation and test are always whole. Features are extracted once.
    /// </summary>
    /// <param name="encoder">The frozen image encoder.</param>
    /// <param name="data">Train, validation and test splits.</param>
    /// <param name="fractions">Fractions in (0, 1] (default 0.01, 0.1, 1).</param>
    /// <param name="options">The probe's grid.</param>
    /// <param name="seed">Seed of the permutation.</param>
    /// <exception cref="ArgumentException">A fraction outside (0, 1].</exception>
    public static IReadOnlyList<LabelFractionProbe> LinearProbeAtFractions(IImageEncoder encoder, ProbeData data, IReadOnlyList<double>? fractions = null,
        LinearProbeOptions? options = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(data);
        fractions ??= DefaultFractions;
        foreach (var f in fractions)
            if (!(f > 0 && f <= 1)) throw new ArgumentException($"label fractions must lie in (0, 1], got {f}", nameof(fractions));
        using var scope = NewDisposeScope();
        var train = EncodedFeatures.Extract(encoder, data.Train.Images).Cls;
        var val = EncodedFeatures.Extract(encoder, data.Validation.Images).Cls;
        var test = EncodedFeatures.Extract(encoder, data.Test.Images).Cls;
        int n = data.Train.Count;
        var order = Enumerable.Range(0, n).ToArray();
        new Random(seed).Shuffle(order);
        var results = new List<LabelFractionProbe>();
        foreach (var f in fractions)
        {
            int k = TrainCount(f, n);
            var rows = order.Take(k).Order().ToArray();
            var y = new float[k, Observations.All.Count];
            for (int i = 0; i < k; i++)
                for (int j = 0; j < Observations.All.Count; j++) y[i, j] = data.Train.Labels[rows[i], j];
            using var idx = tensor(rows.Select(r => (long)r).ToArray());
            var result = LinearProbe.TrainMultiLabel(train.index_select(0, idx), y, val, data.Validation.Labels, test, data.Test.Labels, Observations.Names, options);
            results.Add(new LabelFractionProbe(f, k, rows, result));
        }
        return results;
    }

    /// <summary>Training rows used at fraction f of n: ⌈f·n⌉, at least 1 (a float tolerance keeps 0.1 · 30 at 3).</summary>
    public static int TrainCount(double fraction, int n) => Math.Clamp((int)Math.Ceiling(fraction * n - 1e-9), 1, n);

    private static string Prompt(string template, string phrase) => template.Replace("{finding}", phrase, StringComparison.Ordinal);
}
