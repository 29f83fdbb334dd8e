using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Analysis;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation.Statistics;
using RoentGen.Platform;
using RoentGen.Synthetic;
using RoentGen.Vision.Segmentation;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>How well one structure of the generated images follows its conditioning masks.</summary>
/// <param name="Structure">The mask name (e.g. "lungs").</param>
/// <param name="Images">Images scored (those whose condition has the mask, or whose segmentation finds it).</param>
/// <param name="MeanDice">Mean Dice between the conditioning mask and the segmenter's mask of the generated image.</param>
/// <param name="Lower">Lower end of the 95 % Student-t interval of the mean (<see cref="Summary"/>; NaN under two images).</param>
/// <param name="Upper">Upper end of that interval.</param>
public sealed record StructureAdherence(string Structure, int Images, double MeanDice, double Lower, double Upper);

/// <summary>Mask adherence of one generator on a set of conditions.</summary>
/// <param name="Generator">Its name (e.g. "controlnet", "text-only").</param>
/// <param name="Structures">One entry per structure the segmenter predicts, in its order.</param>
/// <param name="Images">Images generated.</param>
public sealed record MaskAdherenceResult(string Generator, IReadOnlyList<StructureAdherence> Structures, int Images)
{
    /// <summary>The entry of a structure.</summary>
    /// <exception cref="KeyNotFoundException">It was not scored; the message lists those that were.</exception>
    public StructureAdherence this[string structure] => Structures.FirstOrDefault(s => s.Structure == structure)
        ?? throw new KeyNotFoundException($"structure '{structure}' was not scored; scored: {string.Join(", ", Structures.Select(s => s.Structure))}");
}

/// <summary>
/// Mask adherence (Prakash et al. 2024): generate one image per condition, segment it with a segmenter trained on
/// phantoms (<see cref="Segmenter"/>), and score each structure by the hard Dice 2|P∩G| / (|P| + |G|) between the
/// conditioning mask G and the segmented mask P (<see cref="SegmentationLoss.Dice"/>; an image where both are empty is
/// left out). A generator that follows the masks scores higher than the text-only baseline, whose anatomy follows
/// only the prompt.
/// </summary>
public static class MaskAdherence
{
    /// <summary>Generates from <paramref name="conditions"/> (seed as <see cref="IMaskConditionedGenerator.Generate"/>) and scores the images.</summary>
    public static MaskAdherenceResult Evaluate(string name, IMaskConditionedGenerator generator, IReadOnlyList<MaskCondition> conditions, Segmenter segmenter,
        long seed, Action<int, int>? progress = null) =>
        Score(name, generator.Generate(conditions, seed, progress), conditions, segmenter);

    /// <summary>Scores images (one per condition, intensities in [0, 1], any size: resized to the segmenter's) against the conditions' masks.</summary>
    /// <exception cref="ArgumentException">The counts differ.</exception>
    public static MaskAdherenceResult Score(string name, IReadOnlyList<GrayImage> images, IReadOnlyList<MaskCondition> conditions, Segmenter segmenter)
    {
        if (images.Count != conditions.Count) throw new ArgumentException($"{images.Count} images for {conditions.Count} conditions; expected one per condition");
        int size = segmenter.Config.Size;
        var structures = segmenter.Structures;
        var dice = structures.Select(_ => new List<double>()).ToArray();
        if (images.Count > 0)
        {
            using var scope = NewDisposeScope();
            var x = ImageTensors.Stack(images.Select(i => i.Width == size && i.Height == size ? i : ImageResize.Resize(i, size, size)), 0f, 1f);   // (B, 1, S, S)
            var predicted = segmenter.Predict(x).contiguous().data<float>().ToArray();                                                            // (B, C, S, S)
            int plane = size * size;
            for (int b = 0; b < images.Count; b++)
                for (int c = 0; c < structures.Count; c++)
                {
                    var truth = conditions[b].Masks.TryGetValue(structures[c], out var m)
                        ? (m.Width == size && m.Height == size ? m.Pixels : ImageResize.Resize(m, size, size).Pixels)
                        : new float[plane];
                    double d = SegmentationLoss.Dice(predicted.AsSpan((b * structures.Count + c) * plane, plane), truth);
                    if (double.IsFinite(d)) dice[c].Add(d);
                }
        }
        return new MaskAdherenceResult(name, structures.Select((s, c) =>
        {
            var summary = Summary.OfFinite(dice[c]);
            return new StructureAdherence(s, summary.N, summary.Mean, summary.Lower, summary.Upper);
        }).ToList(), images.Count);
    }

    /// <summary>The name of the <see cref="OnPhantoms"/> row.</summary>
    public const string PhantomsName = "phantoms";

    /// <summary>
    /// The segmenter's Dice on the phantoms' own images against their own masks: the ceiling a generator's adherence is
    /// read against. A structure the segmenter finds poorly on true images (a small nodule at 64 px) cannot score well on
    /// generated ones either, so a low generator Dice means little until it is set beside this row.
    /// </summary>
    public static MaskAdherenceResult OnPhantoms(IReadOnlyList<PhantomCase> cases, Segmenter segmenter) =>
        Score(PhantomsName, cases.Select(c => c.Image).ToList(), cases.Select(MaskCondition.FromCase).ToList(), segmenter);

    /// <summary>One row per generator and structure: generator, structure, images, mean Dice and its 95 % interval.</summary>
    public static DataFrame Table(IEnumerable<MaskAdherenceResult> results)
    {
        var rows = results.SelectMany(r => r.Structures.Select(s => (r.Generator, s))).ToList();
        return new DataFrame(
            new StringDataFrameColumn("generator", rows.Select(r => r.Generator)),
            new StringDataFrameColumn("structure", rows.Select(r => r.s.Structure)),
            new Int32DataFrameColumn("images", rows.Select(r => r.s.Images)),
            new DoubleDataFrameColumn("mean Dice", rows.Select(r => r.s.MeanDice)),
            new DoubleDataFrameColumn("CI low", rows.Select(r => r.s.Lower)),
            new DoubleDataFrameColumn("CI high", rows.Select(r => r.s.Upper)));
    }

    /// <summary>
    /// JSON: <c>generators</c>, an object keyed by generator name, each with images and <c>structures</c> keyed by
    /// structure (images, mean_dice, ci_low, ci_high: the 95 % interval); NaN is written as null.
    /// </summary>
    public static string ToJson(IEnumerable<MaskAdherenceResult> results, IReadOnlyDictionary<string, string>? about = null)
    {
        static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
        var generators = new JsonObject();
        foreach (var r in results)
        {
            var structures = new JsonObject();
            foreach (var s in r.Structures)
                structures[s.Structure] = new JsonObject { ["images"] = s.Images, ["mean_dice"] = Num(s.MeanDice), ["ci_low"] = Num(s.Lower), ["ci_high"] = Num(s.Upper) };
            generators[r.Generator] = new JsonObject { ["images"] = r.Images, ["structures"] = structures };
        }
        var root = new JsonObject();
        if (about is not null) foreach (var (k, v) in about) root[k] = v;
        root["generators"] = generators;
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Writes <see cref="ToJson"/> atomically.</summary>
    public static void Save(string path, IEnumerable<MaskAdherenceResult> results, IReadOnlyDictionary<string, string>? about = null) =>
        AtomicFile.WriteAllText(path, ToJson(results, about));
}
