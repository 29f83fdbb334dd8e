using System.Globalization;
using System.Text.RegularExpressions;
using RoentGen.Data;
using RoentGen.Data.Phantoms;

namespace RoentGen.Synthetic;

/// <summary>
/// An ORACLE, not a learned generator: it "generates" the image of a mask condition by redrawing the phantom case the
/// condition was made from with the phantom renderer, its findings changed to the condition's truth (a moved or resized
/// lesion or consolidation centred on the condition mask's centroid, a flipped finding on the other side; see
/// <see cref="PhantomGenerator.GenerateEdited"/>). It knows the world the case came from, so its images are exactly as
/// realistic as the real phantoms and agree with the condition as well as the renderer can draw it: the upper bound a
/// mask-conditioned generator could reach on phantoms. Elastic deformations are not redrawn (the finding keeps its own
/// shape), and the seed is unused (the case's own noise is drawn). Label every result made with it as an oracle.
/// </summary>
public sealed class PhantomOracleGenerator : IMaskConditionedGenerator
{
    private static readonly Regex CaseId = new(@"^phantom_(\d+)", RegexOptions.CultureInvariant);
    private readonly PhantomGenerator _world;

    /// <summary>An oracle for conditions made from cases of the world <paramref name="world"/> (its seed and size).</summary>
    public PhantomOracleGenerator(PhantomOptions world)
    {
        ArgumentNullException.ThrowIfNull(world);
        _world = new PhantomGenerator(world);
    }

    /// <summary>What the results are called wherever they are shown.</summary>
    public const string Label = "phantom oracle (upper bound, not a learned generator)";

    /// <inheritdoc />
    public int ImageSize => _world.Options.Size;

    /// <inheritdoc />
    public IReadOnlyList<string> MaskChannels { get; } =
        ["lungs", "heart", "pleural_effusion", "pneumothorax", "consolidation", "edema", "nodule", "mass", "atelectasis", "fracture", "support_devices"];

    /// <summary>The phantom case index a condition id starts with ("phantom_000042+flip(nodule)" → 42).</summary>
    /// <exception cref="ArgumentException">The id does not start with phantom_NNNNNN.</exception>
    public static int CaseIndex(string conditionId)
    {
        var m = CaseId.Match(conditionId ?? "");
        if (!m.Success) throw new ArgumentException($"condition '{conditionId}' was not made from a phantom case; the phantom oracle needs an id starting with phantom_NNNNNN", nameof(conditionId));
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public IReadOnlyList<GrayImage> Generate(IReadOnlyList<MaskCondition> conditions, long seed, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        var result = new GrayImage[conditions.Count];
        int done = 0;
        Parallel.For(0, conditions.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var c = conditions[i];
            var lesion = Centre(c, "nodule") ?? Centre(c, "mass");
            var phantom = _world.GenerateEdited(CaseIndex(c.Id), c.Truth, lesion, Centre(c, "consolidation"));
            result[i] = phantom.Image;
            int k = Interlocked.Increment(ref done);
            progress?.Invoke(k, conditions.Count);
        });
        return result;
    }

    // The centroid of a finding mask in pixels of the world's size.
    private (double X, double Y)? Centre(MaskCondition c, string name)
    {
        if (!c.Masks.TryGetValue(name, out var mask) || MaskTransforms.Centroid(mask) is not (double x, double y)) return null;
        double sx = ImageSize / (double)mask.Width, sy = ImageSize / (double)mask.Height;
        return ((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5);
    }
}
