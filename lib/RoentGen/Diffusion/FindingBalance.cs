using RoentGen.Data;
using RoentGen.Data.Reports;

namespace RoentGen.Diffusion;

/// <summary>
/// Class-balanced drawing of training images by the findings their prompts name (<see cref="LdmExperimentConfig.BalanceFindings"/>).
/// Each image's classes are the observations <see cref="ReportLabeler"/> reads as positive or uncertain in its prompt
/// (No Finding aside); an image naming none is of the "normal" class. With class frequency p_c (share of images of class
/// c), image i gets weight max over its classes of p_c^(−power): its rarest finding decides. Power 0 is uniform; power 1
/// draws each class about equally often (exactly so when every image has one class). Deterministic: the weights depend
/// only on the prompts, the draws only on the given random source.
/// </summary>
public sealed class FindingBalance
{
    private readonly double[] cumulative;

    private FindingBalance(double[] weights, IReadOnlyDictionary<string, double> classShare)
    {
        Weights = weights;
        ClassShare = classShare;
        cumulative = new double[weights.Length];
        double sum = 0;
        for (int i = 0; i < weights.Length; i++) cumulative[i] = sum += weights[i];
        for (int i = 0; i < weights.Length; i++) cumulative[i] /= sum;
        cumulative[^1] = 1;
    }

    /// <summary>The drawing probability of each image (sums to 1).</summary>
    public IReadOnlyList<double> Weights { get; }

    /// <summary>Each class's share of the images ("normal" for images that name nothing), for reporting.</summary>
    public IReadOnlyDictionary<string, double> ClassShare { get; }

    /// <summary>The name of the class of images whose prompts name no finding.</summary>
    public const string NormalClass = "normal";

    /// <summary>Weights for <paramref name="prompts"/> at <paramref name="power"/>.</summary>
    /// <exception cref="ArgumentException">No prompts, or the power is not in [0, 4].</exception>
    public static FindingBalance FromPrompts(IReadOnlyList<string> prompts, double power)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count == 0) throw new ArgumentException("no prompts to balance", nameof(prompts));
        if (!(power >= 0 && power <= 4)) throw new ArgumentException($"BalanceFindings power must be in [0, 4], got {power}", nameof(power));
        var labeler = new ReportLabeler();
        var classes = new string[prompts.Count][];
        System.Threading.Tasks.Parallel.For(0, prompts.Count, i =>
        {
            var labels = labeler.Label(prompts[i] ?? "");
            var named = Observations.All.Where(o => o != Observation.NoFinding && labels[o] is Mention.Positive or Mention.Uncertain)
                                        .Select(o => o.Name()).ToArray();
            classes[i] = named.Length == 0 ? [NormalClass] : named;
        });
        var counts = new Dictionary<string, int>();
        foreach (var c in classes.SelectMany(c => c)) counts[c] = counts.GetValueOrDefault(c) + 1;
        var share = counts.ToDictionary(kv => kv.Key, kv => kv.Value / (double)prompts.Count);
        var weights = classes.Select(cs => cs.Max(c => Math.Pow(share[c], -power))).ToArray();
        double total = weights.Sum();
        for (int i = 0; i < weights.Length; i++) weights[i] /= total;
        return new FindingBalance(weights, share);
    }

    /// <summary>One image index drawn with <see cref="Weights"/> from one uniform number of <paramref name="random"/>.</summary>
    public int Draw(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        double u = random.NextDouble();
        int i = Array.BinarySearch(cumulative, u);
        if (i < 0) i = ~i;   // the first image whose cumulative weight reaches u (every weight is positive)
        return Math.Min(i, cumulative.Length - 1);
    }
}
