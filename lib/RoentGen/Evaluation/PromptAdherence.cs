using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Analysis;
using RoentGen.Data;
using RoentGen.Data.Reports;
using RoentGen.Visualization;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>A prompt and the observations it names as present (empty for a normal study).</summary>
/// <param name="Text">The prompt given to the generator.</param>
/// <param name="Findings">Observations the prompt asks to be present.</param>
public sealed record AdherencePrompt(string Text, IReadOnlyList<Observation> Findings)
{
    /// <summary>
    /// A prompt whose named findings are read by <see cref="ReportLabeler"/>: every observation it mentions as positive
    /// or uncertain ("possible nodule") counts as named; No Finding is never counted.
    /// </summary>
    public static AdherencePrompt FromText(string text)
    {
        var labels = Labeler.Label(text);
        var named = Observations.All.Where(o => o != Observation.NoFinding && labels[o] is Mention.Positive or Mention.Uncertain).ToArray();
        return new AdherencePrompt(text, named);
    }

    private static readonly ReportLabeler Labeler = new();
}

/// <summary>Something that turns prompts into images: one (1, H, W) image per prompt, stacked as (N, 1, H, W) in [−1, 1].</summary>
public interface IPromptImageGenerator
{
    /// <summary>Generates one image per prompt, in order.</summary>
    Tensor Generate(IReadOnlyList<string> prompts);
}

/// <summary>How well images follow one finding of their prompts.</summary>
/// <param name="Finding">The observation.</param>
/// <param name="Auc">ROC AUC of the classifier's probability for the finding: images whose prompt names it against images whose prompt does not (0.5 = ignored, 1 = always followed; NaN without both kinds).</param>
/// <param name="ImagesNamed">Images whose prompt names the finding.</param>
/// <param name="ImagesNotNamed">Images whose prompt does not.</param>
/// <param name="MeanProbabilityNamed">Mean classifier probability over the images whose prompt names it.</param>
/// <param name="MeanProbabilityNotNamed">Mean classifier probability over the others.</param>
public sealed record FindingAdherence(
    [property: JsonConverter(typeof(JsonStringEnumConverter<Observation>))] Observation Finding,
    double Auc, int ImagesNamed, int ImagesNotNamed, double MeanProbabilityNamed, double MeanProbabilityNotNamed);

/// <summary>
/// How well the images of one prompt show what it names: for each finding the prompt names (among the evaluated ones),
/// the ROC AUC of the judge's probability for it on this prompt's images against the images of every prompt that does
/// not name it, averaged over the prompt's findings. The per-finding AUC pools all prompts that name a finding; this
/// row says which wordings the generator follows and which it ignores (0.5: the prompt draws its finding no more
/// than prompts without it do). With a few images per prompt it is noisy; read it as a ranking.
/// </summary>
/// <param name="Prompt">The prompt's text.</param>
/// <param name="Findings">The evaluated findings it names.</param>
/// <param name="Images">Its images.</param>
/// <param name="Auc">Mean over <paramref name="Findings"/> of the AUC described above.</param>
/// <param name="MeanProbability">Mean judge probability of its findings over its images.</param>
public sealed record PromptFollowing(string Prompt, IReadOnlyList<string> Findings, int Images, double Auc, double MeanProbability);

/// <summary>Prompt adherence of a generator: per-finding AUCs and their mean.</summary>
/// <param name="Findings">One row per evaluated finding.</param>
/// <param name="Images">Images scored.</param>
public sealed record PromptAdherenceResult(IReadOnlyList<FindingAdherence> Findings, int Images)
{
    /// <summary>
    /// One row per prompt that names an evaluated finding, in prompt order (<see cref="PromptFollowing"/>); null for
    /// results built from per-finding figures alone (e.g. read from files written before the rows existed).
    /// </summary>
    public IReadOnlyList<PromptFollowing>? Prompts { get; init; }

    /// <summary>The <paramref name="count"/> prompts with the lowest <see cref="PromptFollowing.Auc"/> (empty without <see cref="Prompts"/>).</summary>
    public IReadOnlyList<PromptFollowing> LeastFollowed(int count) =>
        (Prompts ?? []).Where(p => double.IsFinite(p.Auc)).OrderBy(p => p.Auc).ThenBy(p => p.Prompt, StringComparer.Ordinal).Take(Math.Max(0, count)).ToList();

    /// <summary>One row per prompt (<see cref="Prompts"/>): prompt, findings, images, auc, mean_p; empty without them.</summary>
    public DataFrame ToPromptDataFrame()
    {
        var rows = Prompts ?? [];
        return new DataFrame(
            new StringDataFrameColumn("prompt", rows.Select(r => r.Prompt)),
            new StringDataFrameColumn("findings", rows.Select(r => string.Join(", ", r.Findings))),
            new Int32DataFrameColumn("images", rows.Select(r => r.Images)),
            new DoubleDataFrameColumn("auc", rows.Select(r => r.Auc)),
            new DoubleDataFrameColumn("mean_p", rows.Select(r => r.MeanProbability)));
    }

    /// <summary>Mean AUC over the findings whose AUC is defined (NaN when none is).</summary>
    public double MeanAuc
    {
        get
        {
            var defined = Findings.Where(f => double.IsFinite(f.Auc)).ToList();
            return defined.Count == 0 ? double.NaN : defined.Average(f => f.Auc);
        }
    }

    /// <summary>One row per finding: finding, auc, images_named, images_not_named, mean_p_named, mean_p_not_named.</summary>
    public DataFrame ToDataFrame() => new(
        new StringDataFrameColumn("finding", Findings.Select(f => f.Finding.Name())),
        new DoubleDataFrameColumn("auc", Findings.Select(f => f.Auc)),
        new Int32DataFrameColumn("images_named", Findings.Select(f => f.ImagesNamed)),
        new Int32DataFrameColumn("images_not_named", Findings.Select(f => f.ImagesNotNamed)),
        new DoubleDataFrameColumn("mean_p_named", Findings.Select(f => f.MeanProbabilityNamed)),
        new DoubleDataFrameColumn("mean_p_not_named", Findings.Select(f => f.MeanProbabilityNotNamed)));

    /// <summary>
    /// <see cref="ToDataFrame"/> with each AUC's Hanley-McNeil standard error and its normal-approximation interval at
    /// <paramref name="level"/> (clipped to [0, 1]): auc_se, auc_low, auc_high. An interval that holds 0.5 does not show
    /// adherence at this number of images; one wholly below 0.5 means the generator draws the finding more often when the
    /// prompt does not name it.
    /// </summary>
    public DataFrame ToDataFrameWithIntervals(double level = 0.95)
    {
        if (!(level > 0 && level < 1)) throw new ArgumentOutOfRangeException(nameof(level), level, "level must be in (0, 1)");
        double z = MathNet.Numerics.Distributions.Normal.InvCDF(0, 1, 0.5 + level / 2);
        var se = Findings.Select(f => Statistics.HanleyMcNeil.StandardError(f.Auc, f.ImagesNamed, f.ImagesNotNamed)).ToList();
        var df = ToDataFrame();
        df.Columns.Add(new DoubleDataFrameColumn("auc_se", se));
        df.Columns.Add(new DoubleDataFrameColumn("auc_low", Findings.Select((f, i) => Math.Max(0, f.Auc - z * se[i]))));
        df.Columns.Add(new DoubleDataFrameColumn("auc_high", Findings.Select((f, i) => Math.Min(1, f.Auc + z * se[i]))));
        return df;
    }

    /// <summary>A bar chart of the per-finding AUCs, with the mean in the title (chance is 0.5).</summary>
    public Figure ToChart()
    {
        var names = Findings.Select(f => f.Finding.Name()).ToArray();
        var aucs = Findings.Select(f => double.IsFinite(f.Auc) ? f.Auc : 0).ToArray();
        var title = FormattableString.Invariant($"Prompt adherence: mean AUC {MeanAuc:F3} over {Findings.Count(f => double.IsFinite(f.Auc))} findings ({Images} images)");
        return new Figure(title, [new BarTrace { Name = "AUC", Categories = names, Values = aucs }],
            new FigureLayout { YAxis = new FigureAxis { Title = "AUC (0.5 = chance)", Range = new AxisRange(0, 1) } });
    }

    /// <summary>The result as indented JSON (NaN written as the string "NaN"), with mean_auc.</summary>
    public string ToJson() => JsonSerializer.Serialize(new { mean_auc = MeanAuc, images = Images, findings = Findings, prompts = Prompts }, EvaluationJson.Options);
}

/// <summary>
/// Prompt adherence as RoentGen measures it (Chambon et al. 2022): generate images for prompts that name a finding and
/// for prompts that do not, score every image with a finding classifier, and report for each finding the ROC AUC of its
/// probability separating the two groups. An AUC near 1 means the generator draws what is asked; 0.5 means the prompt
/// makes no difference.
/// </summary>
public static class PromptAdherence
{
    /// <summary>The findings of the default prompt set, in CheXpert order.</summary>
    public static IReadOnlyList<Observation> DefaultFindings { get; } =
    [
        Observation.Cardiomegaly, Observation.LungLesion, Observation.Edema, Observation.Consolidation, Observation.Atelectasis,
        Observation.Pneumothorax, Observation.PleuralEffusion, Observation.Fracture, Observation.SupportDevices,
    ];

    /// <summary>
    /// Radiology-style prompts: three or four per default finding (with side, size and location variants where the finding
    /// has them, phrased as the phantom reports phrase them), and four normal studies that name nothing.
    /// </summary>
    public static IReadOnlyList<AdherencePrompt> DefaultPrompts { get; } = BuildDefaultPrompts();

    private static IReadOnlyList<AdherencePrompt> BuildDefaultPrompts()
    {
        var byFinding = new (Observation Finding, string[] Prompts)[]
        {
            (Observation.Cardiomegaly, ["Mild cardiomegaly.", "Moderate cardiomegaly.", "Severe cardiomegaly.", "The heart is moderately enlarged."]),
            (Observation.PleuralEffusion, ["Small left pleural effusion.", "Moderate right pleural effusion.", "Large left pleural effusion.", "Small bilateral pleural effusions."]),
            (Observation.Pneumothorax, ["Small right apical pneumothorax.", "Moderate left pneumothorax.", "Large right pneumothorax."]),
            (Observation.Consolidation, ["Right lower lobe consolidation.", "Left lower lobe consolidation.", "Right upper lobe consolidation.", "Airspace opacity in the right middle lobe, consistent with consolidation."]),
            (Observation.Edema, ["Mild pulmonary edema.", "Moderate pulmonary edema.", "Severe pulmonary edema with bilateral perihilar haziness."]),
            (Observation.LungLesion, ["There is a 12 mm nodule in the right upper lobe.", "Left lower lobe pulmonary nodule.", "There is a 4 cm mass in the right upper lobe."]),
            (Observation.Atelectasis, ["Left basilar atelectasis.", "Right basilar atelectasis.", "Plate-like atelectasis at the right lung base."]),
            (Observation.SupportDevices, ["Endotracheal tube terminates 4 cm above the carina.", "Right internal jugular central venous catheter terminates in the superior vena cava.", "Left chest wall pacemaker with a single lead in the right ventricle."]),
            (Observation.Fracture, ["Acute fracture of the left 6th rib.", "Right 7th rib fracture.", "Fracture of the left posterior 8th rib."]),
        };
        var prompts = new List<AdherencePrompt>();
        foreach (var (finding, texts) in byFinding)
            prompts.AddRange(texts.Select(t => new AdherencePrompt(t, [finding])));
        foreach (var normal in new[]
                 {
                     "No acute cardiopulmonary process.", "Normal chest radiograph.",
                     "The lungs are clear. Heart size is normal. No pleural effusion or pneumothorax.", "No acute cardiopulmonary abnormality.",
                 })
            prompts.Add(new AdherencePrompt(normal, []));
        return prompts;
    }

    /// <summary>
    /// Generates <paramref name="imagesPerPrompt"/> images for every prompt (in batches of <paramref name="batchSize"/>
    /// prompts), scores them and returns the per-finding AUCs.
    /// </summary>
    /// <param name="generator">Turns prompts into images.</param>
    /// <param name="scorer">The finding classifier (usually a <see cref="ProxyFindingClassifier"/>).</param>
    /// <param name="prompts">Prompts with their named findings (null: <see cref="DefaultPrompts"/>).</param>
    /// <param name="imagesPerPrompt">Images generated per prompt.</param>
    /// <param name="batchSize">Prompts per generator call.</param>
    /// <param name="findings">Findings to report (null: every finding some prompt names, in CheXpert order).</param>
    public static PromptAdherenceResult Evaluate(IPromptImageGenerator generator, IFindingScorer scorer, IReadOnlyList<AdherencePrompt>? prompts = null,
        int imagesPerPrompt = 4, int batchSize = 16, IReadOnlyList<Observation>? findings = null)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentNullException.ThrowIfNull(scorer);
        if (imagesPerPrompt < 1) throw new ArgumentOutOfRangeException(nameof(imagesPerPrompt), imagesPerPrompt, "generate at least one image per prompt");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be at least 1");
        var set = prompts ?? DefaultPrompts;
        var expanded = set.SelectMany(p => Enumerable.Repeat(p, imagesPerPrompt)).ToList();
        var probabilities = new List<float[]>();
        for (int i = 0; i < expanded.Count; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = expanded.Skip(i).Take(batchSize).Select(p => p.Text).ToList();
            var images = generator.Generate(batch);
            if (images.dim() != 4 || images.shape[0] != batch.Count)
                throw new InvalidOperationException($"the generator returned shape [{string.Join(", ", images.shape)}] for {batch.Count} prompts; expected ({batch.Count}, 1, H, W)");
            probabilities.AddRange(Rows(scorer.Predict(images), batch.Count));
        }
        return FromProbabilities(probabilities, expanded, findings);
    }

    /// <summary>Like <see cref="Evaluate(IPromptImageGenerator, IFindingScorer, IReadOnlyList{AdherencePrompt}?, int, int, IReadOnlyList{Observation}?)"/> with a delegate as the generator.</summary>
    public static PromptAdherenceResult Evaluate(Func<IReadOnlyList<string>, Tensor> generator, IFindingScorer scorer, IReadOnlyList<AdherencePrompt>? prompts = null,
        int imagesPerPrompt = 4, int batchSize = 16, IReadOnlyList<Observation>? findings = null) =>
        Evaluate(new DelegateGenerator(generator), scorer, prompts, imagesPerPrompt, batchSize, findings);

    /// <summary>Scores images that were already generated, one prompt per image.</summary>
    /// <param name="images">(N, 1, H, W) images in [−1, 1].</param>
    /// <param name="prompts">The prompt of each image (N).</param>
    /// <param name="scorer">The finding classifier.</param>
    /// <param name="findings">Findings to report (null: every finding some prompt names).</param>
    /// <exception cref="ArgumentException">The counts differ.</exception>
    public static PromptAdherenceResult Score(Tensor images, IReadOnlyList<AdherencePrompt> prompts, IFindingScorer scorer, IReadOnlyList<Observation>? findings = null)
    {
        if (images.dim() != 4 || images.shape[0] != prompts.Count)
            throw new ArgumentException($"need one prompt per image: images have shape [{string.Join(", ", images.shape)}], prompts {prompts.Count}");
        using var scope = NewDisposeScope();
        return FromProbabilities(Rows(scorer.Predict(images), prompts.Count), prompts, findings);
    }

    /// <summary>
    /// The judge's ceiling for this adherence measure: the same AUCs computed on <em>real</em> images that show exactly
    /// what the prompts name. For every prompt, <paramref name="imagesPerPrompt"/> real images are taken (in order, each
    /// once) whose positive findings, among the findings the prompt set names, are exactly the prompt's (none for a
    /// normal prompt), and they are scored as if that prompt had generated them. A generator can exceed it only by
    /// drawing findings more clearly than the real images do; where the judge confuses one finding with another (an
    /// effusion's score rising on atelectasis), the ceiling of both falls below 1 even when its held-out AUC against all
    /// other images is high.
    /// </summary>
    /// <param name="images">Real images (N, 1, H, W) in [−1, 1], usually held-out phantoms.</param>
    /// <param name="labels">Their labels (N, 14) in <see cref="Observations.All"/> order; above 0.5 counts as positive.</param>
    /// <param name="prompts">The prompt set (e.g. <see cref="DefaultPrompts"/>).</param>
    /// <param name="scorer">The finding classifier.</param>
    /// <param name="imagesPerPrompt">Real images wanted per prompt; fewer are used for a prompt when the pool runs out.</param>
    /// <returns>The adherence of the real images, and the prompts that got fewer than <paramref name="imagesPerPrompt"/> images.</returns>
    /// <exception cref="ArgumentException">Images and labels disagree in count, or the labels are not (N, 14).</exception>
    /// <exception cref="InvalidOperationException">No real image shows exactly what any prompt names.</exception>
    public static (PromptAdherenceResult Ceiling, IReadOnlyList<string> ShortPrompts) JudgeCeiling(Tensor images, Tensor labels,
        IReadOnlyList<AdherencePrompt> prompts, IFindingScorer scorer, int imagesPerPrompt)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        if (images.dim() != 4 || images.shape[0] != labels.shape[0])
            throw new ArgumentException($"need (N, 1, H, W) images with (N, 14) labels; got images [{string.Join(", ", images.shape)}] and labels [{string.Join(", ", labels.shape)}]");
        var (matches, shortPrompts) = MatchingImages(labels, prompts, imagesPerPrompt);
        if (matches.Count == 0) throw new InvalidOperationException($"none of the {labels.shape[0]} real images shows exactly what any prompt names: use more real images");
        var named = Observations.All.Where(o => prompts.Any(p => p.Findings.Contains(o))).ToList();
        using var scope = NewDisposeScope();
        using var chosen = images.index_select(0, tensor(matches.Select(m => m.Image).ToArray()));
        return (Score(chosen, matches.Select(m => prompts[m.Prompt]).ToList(), scorer, named), shortPrompts);
    }

    /// <summary>
    /// The real images <see cref="JudgeCeiling"/> scores: for every prompt in order, up to <paramref name="imagesPerPrompt"/>
    /// images (in order, each used once) whose positive findings, among the findings the prompt set names, are exactly the
    /// prompt's. The same pairs give a FID against real images of the prompts' own finding mix
    /// (<see cref="Diffusion.DiffusionEvaluationResult.MatchedFid"/>).
    /// </summary>
    /// <param name="labels">Labels (N, 14) in <see cref="Observations.All"/> order; above 0.5 counts as positive.</param>
    /// <param name="prompts">The prompt set.</param>
    /// <param name="imagesPerPrompt">Images wanted per prompt.</param>
    /// <returns>(prompt index, image index) pairs in prompt order, and the prompts that got fewer than wanted.</returns>
    /// <exception cref="ArgumentException">The labels are not (N, 14).</exception>
    public static (IReadOnlyList<(int Prompt, long Image)> Matches, IReadOnlyList<string> ShortPrompts) MatchingImages(Tensor labels,
        IReadOnlyList<AdherencePrompt> prompts, int imagesPerPrompt)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (imagesPerPrompt < 1) throw new ArgumentOutOfRangeException(nameof(imagesPerPrompt), imagesPerPrompt, "use at least one image per prompt");
        if (labels.dim() != 2 || labels.shape[1] != 14)
            throw new ArgumentException($"need (N, 14) labels; got [{string.Join(", ", labels.shape)}]", nameof(labels));
        var named = Observations.All.Where(o => prompts.Any(p => p.Findings.Contains(o))).ToList();
        var flat = labels.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        string Key(IEnumerable<Observation> set) => string.Join(",", set.Distinct().OrderBy(o => o));
        var pools = Enumerable.Range(0, (int)labels.shape[0])
            .GroupBy(i => Key(named.Where(o => flat[i * 14 + (int)o] > 0.5f)))
            .ToDictionary(g => g.Key, g => new Queue<int>(g));
        var matches = new List<(int Prompt, long Image)>();
        var shortPrompts = new List<string>();
        for (int k = 0; k < prompts.Count; k++)
        {
            int got = 0;
            if (pools.TryGetValue(Key(prompts[k].Findings), out var pool))
                for (; got < imagesPerPrompt && pool.Count > 0; got++) matches.Add((k, pool.Dequeue()));
            if (got < imagesPerPrompt) shortPrompts.Add(prompts[k].Text);
        }
        return (matches, shortPrompts);
    }

    private static PromptAdherenceResult FromProbabilities(IReadOnlyList<float[]> probabilities, IReadOnlyList<AdherencePrompt> prompts, IReadOnlyList<Observation>? findings)
    {
        var which = findings ?? Observations.All.Where(o => prompts.Any(p => p.Findings.Contains(o))).ToList();
        var rows = new List<FindingAdherence>();
        foreach (var f in which)
        {
            var scores = probabilities.Select(p => (double)p[(int)f]).ToArray();
            var named = prompts.Select(p => p.Findings.Contains(f)).ToArray();
            int nNamed = named.Count(v => v);
            double Mean(bool want) => named.Count(v => v == want) == 0 ? double.NaN : scores.Where((_, i) => named[i] == want).Average();
            rows.Add(new FindingAdherence(f, Auc.Compute(scores, named), nNamed, named.Length - nNamed, Mean(true), Mean(false)));
        }
        return new PromptAdherenceResult(rows, prompts.Count) { Prompts = PerPrompt(probabilities, prompts, which) };
    }

    // Images are grouped by prompt text (an expanded prompt list repeats each prompt once per image), in first-seen order.
    private static List<PromptFollowing> PerPrompt(IReadOnlyList<float[]> probabilities, IReadOnlyList<AdherencePrompt> prompts, IReadOnlyList<Observation> which)
    {
        var result = new List<PromptFollowing>();
        foreach (var group in Enumerable.Range(0, prompts.Count).GroupBy(i => prompts[i].Text))
        {
            var own = group.ToList();
            var findings = which.Where(f => prompts[own[0]].Findings.Contains(f)).ToList();
            if (findings.Count == 0) continue;
            var aucs = new List<double>();
            double sum = 0;
            foreach (var f in findings)
            {
                var others = Enumerable.Range(0, prompts.Count).Where(i => !prompts[i].Findings.Contains(f)).ToList();
                var scores = own.Concat(others).Select(i => (double)probabilities[i][(int)f]).ToArray();
                var positive = own.Select(_ => true).Concat(others.Select(_ => false)).ToArray();
                aucs.Add(Auc.Compute(scores, positive));
                sum += own.Sum(i => probabilities[i][(int)f]);
            }
            var defined = aucs.Where(double.IsFinite).ToList();
            result.Add(new PromptFollowing(group.Key, findings.Select(f => f.Name()).ToList(), own.Count,
                defined.Count == 0 ? double.NaN : defined.Average(), sum / (own.Count * findings.Count)));
        }
        return result;
    }

    private static List<float[]> Rows(Tensor probabilities, int expected)
    {
        if (probabilities.dim() != 2 || probabilities.shape[0] != expected || probabilities.shape[1] != 14)
            throw new InvalidOperationException($"the finding scorer returned shape [{string.Join(", ", probabilities.shape)}]; expected ({expected}, 14)");
        var flat = probabilities.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        return Enumerable.Range(0, expected).Select(i => flat.AsSpan(i * 14, 14).ToArray()).ToList();
    }

    private sealed class DelegateGenerator(Func<IReadOnlyList<string>, Tensor> generate) : IPromptImageGenerator
    {
        public Tensor Generate(IReadOnlyList<string> prompts) => generate(prompts);
    }
}

/// <summary>JSON settings shared by the evaluation results.</summary>
internal static class EvaluationJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };
}

/// <summary>Image measurements that check what a prompt asked for beyond the judge's findings.</summary>
public static class PromptChecks
{
    /// <summary>
    /// Per image of a batch (B, 1, H, W): the mean brightness of the lower third's image-right half minus its image-left
    /// half. A left or right effusion (dense, bright at the base) should move it the prompt's way; note that the patient's
    /// left is the image's right on a frontal radiograph.
    /// </summary>
    public static float[] LowerZoneAsymmetry(TorchSharp.torch.Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dim() != 4) throw new ArgumentException($"expected images (B, C, H, W), got shape [{string.Join(", ", images.shape)}]", nameof(images));
        using var scope = NewDisposeScope();
        long h = images.shape[2], w = images.shape[3];
        var lower = images.narrow(2, h * 2 / 3, h / 3);                     // (B, C, H/3, W)
        var right = lower.narrow(3, w / 2, w / 2).mean([1, 2, 3]);           // (B,)
        var left = lower.narrow(3, 0, w / 2).mean([1, 2, 3]);                // (B,)
        return (right - left).to(TorchSharp.torch.ScalarType.Float32).data<float>().ToArray();
    }
}
