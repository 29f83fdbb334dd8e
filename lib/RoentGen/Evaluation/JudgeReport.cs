using System.Globalization;
using System.Text.Json;
using RoentGen.Data;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>
/// How well a judge (the proxy finding classifier) sees the findings that prompt adherence asks for: its held-out ROC AUC
/// on each of <see cref="PromptAdherence.DefaultFindings"/> (always all of them, NaN where the held-out set lacks
/// positives or negatives), with the other observations listed apart. A judge that cannot tell a finding from its
/// absence on real (phantom) images cannot tell whether a generator drew it either.
/// </summary>
public sealed record JudgeReport
{
    /// <summary>The held-out AUC each prompted finding should reach (issue #14: a judge that sees every finding).</summary>
    public const double TargetAuc = 0.85;

    /// <summary>The judge's input side in pixels.</summary>
    public required int InputSize { get; init; }
    /// <summary>Held-out images scored.</summary>
    public required int Images { get; init; }
    /// <summary>World seed of the held-out phantoms (null when the images are not phantoms of one world).</summary>
    public long? WorldSeed { get; init; }
    /// <summary>Seconds its training took, when known (for the record: what the judge costs).</summary>
    public double? TrainSeconds { get; init; }
    /// <summary>One entry per prompted finding, in <see cref="PromptAdherence.DefaultFindings"/> order.</summary>
    public required IReadOnlyList<FindingAuc> Findings { get; init; }
    /// <summary>The remaining observations (not prompted), in CheXpert order.</summary>
    public required IReadOnlyList<FindingAuc> Others { get; init; }

    /// <summary>Mean AUC over the prompted findings with a finite AUC (NaN if none).</summary>
    public double MeanAuc => Findings.Where(f => double.IsFinite(f.Auc)).Select(f => f.Auc).DefaultIfEmpty(double.NaN).Average();
    /// <summary>Lowest AUC over the prompted findings with a finite AUC (NaN if none).</summary>
    public double MinAuc => Findings.Where(f => double.IsFinite(f.Auc)).Select(f => f.Auc).DefaultIfEmpty(double.NaN).Min();
    /// <summary>True when every prompted finding has a finite AUC of at least <see cref="TargetAuc"/>.</summary>
    public bool MeetsTarget => Findings.All(f => double.IsFinite(f.Auc) && f.Auc >= TargetAuc);

    /// <summary>Splits per-observation AUCs (as <see cref="ProxyFindingClassifier.Evaluate"/> gives, any order) into the prompted findings and the others.</summary>
    /// <exception cref="ArgumentException">A prompted finding is missing from <paramref name="aucs"/>.</exception>
    public static JudgeReport FromAucs(IReadOnlyList<FindingAuc> aucs, int inputSize, int images, long? worldSeed = null)
    {
        ArgumentNullException.ThrowIfNull(aucs);
        var byFinding = aucs.ToDictionary(a => a.Finding);
        var prompted = PromptAdherence.DefaultFindings.Select(f => byFinding.TryGetValue(f, out var a) ? a
            : throw new ArgumentException($"the judge's AUCs lack the prompted finding {f}", nameof(aucs))).ToList();
        var others = aucs.Where(a => !PromptAdherence.DefaultFindings.Contains(a.Finding)).OrderBy(a => a.Finding).ToList();
        return new JudgeReport { InputSize = inputSize, Images = images, WorldSeed = worldSeed, Findings = prompted, Others = others };
    }

    /// <summary>Scores <paramref name="images"/> (N, 1, H, W) in [−1, 1] with targets (N, 14) as from <see cref="ProxyFindingClassifier.LabelTensor"/>.</summary>
    public static JudgeReport Measure(ProxyFindingClassifier judge, Tensor images, Tensor labels, long? worldSeed = null)
    {
        ArgumentNullException.ThrowIfNull(judge);
        return FromAucs(judge.Evaluate(images, labels), judge.Config.InputSize, checked((int)images.shape[0]), worldSeed);
    }

    /// <summary>
    /// JSON with input_size, images, world_seed, train_seconds, target_auc, mean_auc, min_auc, meets_target, findings (finding, auc,
    /// positives, negatives) and other_observations; NaN written as the string "NaN".
    /// </summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        input_size = InputSize, images = Images, world_seed = WorldSeed, train_seconds = TrainSeconds, target_auc = TargetAuc, mean_auc = MeanAuc, min_auc = MinAuc,
        meets_target = MeetsTarget, findings = Findings.Select(Row), other_observations = Others.Select(Row),
    }, EvaluationJson.Options);

    private static object Row(FindingAuc a) => new { finding = a.Finding.ToString(), auc = a.Auc, positives = a.Positives, negatives = a.Negatives };

    /// <summary>A text table: one line per prompted finding, then the mean and minimum.</summary>
    public string Summary()
    {
        var lines = new List<string> { string.Create(CultureInfo.InvariantCulture, $"judge at {InputSize} px, {Images} held-out images: AUC per prompted finding (target {TargetAuc:F2})") };
        foreach (var f in Findings)
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"  {f.Finding.Name(),-20} {f.Auc,6:F3}  ({f.Positives} positive, {f.Negatives} negative){(f.Auc >= TargetAuc ? "" : "  below target")}"));
        lines.Add(string.Create(CultureInfo.InvariantCulture, $"  mean {MeanAuc:F3}, min {MinAuc:F3}: {(MeetsTarget ? "meets" : "misses")} the target"));
        return string.Join(Environment.NewLine, lines);
    }
}
