using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Analysis;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Platform;
using static TorchSharp.torch;

namespace RoentGen.Vision.Segmentation;

/// <summary>Dice of one image and one structure, with the two trivial predictions' Dice beside it.</summary>
/// <param name="File">The image file (or the record id of an in-memory image).</param>
/// <param name="Structure">The structure.</param>
/// <param name="Dice">The model's Dice (NaN when mask and prediction are both empty).</param>
/// <param name="AllForegroundDice">Dice of predicting the whole image: 2|G| / (S² + |G|).</param>
/// <param name="MaskFraction">Share of the image inside the mask.</param>
public sealed record ImageDice(string File, string Structure, double Dice, double AllForegroundDice, double MaskFraction);

/// <summary>Dice of one structure over the images that have its mask.</summary>
/// <param name="Structure">The structure.</param>
/// <param name="Images">Images with its mask.</param>
/// <param name="MeanDice">Mean of the per-image Dice (finite ones).</param>
/// <param name="MedianDice">Median of the per-image Dice.</param>
/// <param name="MinDice">Lowest per-image Dice.</param>
/// <param name="PooledDice">2 Σ|P∩G| / (Σ|P| + Σ|G|) over all its images.</param>
/// <param name="AllForegroundDice">Mean per-image Dice of predicting every pixel as the structure.</param>
/// <param name="AllBackgroundDice">Mean per-image Dice of predicting nothing (0 for every non-empty mask).</param>
public sealed record StructureEvaluation(string Structure, int Images, double MeanDice, double MedianDice, double MinDice, double PooledDice,
    double AllForegroundDice, double AllBackgroundDice);

/// <summary>A segmenter's Dice on a labelled set: per structure, per image, and the trivial baselines.</summary>
/// <param name="Model">The model folder.</param>
/// <param name="Data">The data's name.</param>
/// <param name="Size">Side the images and masks were compared at (the model's size).</param>
/// <param name="Structures">Per structure (those of the model that the data have masks of).</param>
/// <param name="Images">Per image and structure.</param>
/// <param name="SkippedWithoutMask">Records without a mask of any evaluated structure (skipped).</param>
/// <param name="Seconds">Wall time.</param>
public sealed record SegmentationEvaluationResult(string Model, string Data, int Size, IReadOnlyList<StructureEvaluation> Structures,
    IReadOnlyList<ImageDice> Images, int SkippedWithoutMask, double Seconds)
{
    /// <summary>How the masks were predicted: "one pass" or the test-time zooms, and whether clean-up was applied.</summary>
    public string Prediction { get; init; } = "one pass";

    /// <summary>The result of one structure.</summary>
    /// <exception cref="KeyNotFoundException">Not evaluated (the message lists those that were).</exception>
    public StructureEvaluation this[string structure] => Structures.FirstOrDefault(s => s.Structure == structure)
        ?? throw new KeyNotFoundException($"structure '{structure}' was not evaluated; evaluated: {string.Join(", ", Structures.Select(s => s.Structure))}");

    /// <summary>One row per structure: images, mean/median/min/pooled Dice and the two baselines.</summary>
    public DataFrame ToDataFrame() => new(
        new StringDataFrameColumn("structure", Structures.Select(s => s.Structure)),
        new Int32DataFrameColumn("images", Structures.Select(s => s.Images)),
        new DoubleDataFrameColumn("mean Dice", Structures.Select(s => s.MeanDice)),
        new DoubleDataFrameColumn("median", Structures.Select(s => s.MedianDice)),
        new DoubleDataFrameColumn("min", Structures.Select(s => s.MinDice)),
        new DoubleDataFrameColumn("pooled", Structures.Select(s => s.PooledDice)),
        new DoubleDataFrameColumn("all-foreground", Structures.Select(s => s.AllForegroundDice)),
        new DoubleDataFrameColumn("all-background", Structures.Select(s => s.AllBackgroundDice)));

    /// <summary>
    /// JSON: model, data, size, skipped_without_mask, seconds, <c>structures</c> (an object keyed by structure name, e.g.
    /// "lungs", with images, mean_dice, median_dice, min_dice, pooled_dice and <c>baselines</c>: all_foreground,
    /// all_background) and <c>images</c> (file, structure, dice, all_foreground_dice, mask_fraction). NaN is written as null.
    /// </summary>
    public string ToJson()
    {
        static JsonNode? N(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 6)) : null;
        var structures = new JsonObject();
        foreach (var s in Structures)
            structures[s.Structure] = new JsonObject
            {
                ["images"] = s.Images, ["mean_dice"] = N(s.MeanDice), ["median_dice"] = N(s.MedianDice), ["min_dice"] = N(s.MinDice),
                ["pooled_dice"] = N(s.PooledDice),
                ["baselines"] = new JsonObject { ["all_foreground"] = N(s.AllForegroundDice), ["all_background"] = N(s.AllBackgroundDice) },
            };
        var root = new JsonObject
        {
            ["model"] = Model, ["data"] = Data, ["size"] = Size, ["prediction"] = Prediction, ["skipped_without_mask"] = SkippedWithoutMask, ["seconds"] = Math.Round(Seconds, 2),
            ["structures"] = structures,
            ["images"] = new JsonArray(Images.Select(i => (JsonNode)new JsonObject
            {
                ["file"] = i.File, ["structure"] = i.Structure, ["dice"] = N(i.Dice), ["all_foreground_dice"] = N(i.AllForegroundDice),
                ["mask_fraction"] = N(i.MaskFraction),
            }).ToArray()),
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Writes <see cref="ToJson"/> atomically (the folder is created).</summary>
    public void Save(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(path, ToJson());
    }

    /// <summary>One line per structure: "lungs: mean Dice 0.xxx (median, min) over N images; all-foreground 0.xxx".</summary>
    public string Summary() => string.Join(Environment.NewLine, Structures.Select(s =>
        string.Create(CultureInfo.InvariantCulture,
            $"{s.Structure}: mean Dice {s.MeanDice:0.000} (median {s.MedianDice:0.000}, min {s.MinDice:0.000}, pooled {s.PooledDice:0.000}) over {s.Images} images; "
            + $"all-foreground baseline {s.AllForegroundDice:0.000}, all-background {s.AllBackgroundDice:0.000}")));
}

/// <summary>Scores a <see cref="Segmenter"/> on labelled images (Dice per image at the model's size, sigmoid ≥ 0.5).</summary>
public static class SegmentationEvaluation
{
    /// <summary>
    /// A picture of the evaluation: for up to <paramref name="max"/> images with a mask of <paramref name="structure"/>,
    /// the reference mask (blue) beside the model's prediction (green), captioned with the image's Dice.
    /// </summary>
    /// <exception cref="ArgumentException">The model has no such structure.</exception>
    public static RoentGen.Visualization.ImageGrid Overlays(Segmenter model, CxrDataset data, string structure = "lungs", int max = 16, bool cleanup = false,
        TestTimeAugmentation? tta = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        int channel = model.Structures.ToList().IndexOf(structure);
        if (channel < 0) throw new ArgumentException($"the model segments {string.Join(", ", model.Structures)}, not '{structure}'", nameof(structure));
        var (set, _) = SegmentationData.Load(data, [structure], model.Config.Size);
        using var _set = set;
        using var scope = NewDisposeScope();
        var pred = model.Predict(set.Images, cleanup: cleanup, tta: tta);
        int size = model.Config.Size, pixels = size * size;
        var grid = new RoentGen.Visualization.ImageGrid(4, $"{structure}: reference (blue) and prediction (green)");
        var present = set.Present.select(1, 0).data<float>().ToArray();
        for (int i = 0, shown = 0; i < set.Records.Count && shown < max; i++)
        {
            if (present[i] < 0.5f) continue;
            var image = new GrayImage(size, size, set.Images[i, 0].contiguous().data<float>().ToArray());
            var truth = set.Masks[i, 0].contiguous().data<float>().ToArray();
            var guess = pred[i, channel].contiguous().data<float>().ToArray();
            string name = Path.GetFileNameWithoutExtension(set.Records[i].ImagePath ?? set.Records[i].Id);
            grid.AddWithMask(image, new GrayImage(size, size, truth), $"{name}: reference", RoentGen.Visualization.Rgb.Blue, 0.4f);
            grid.AddWithMask(image, new GrayImage(size, size, guess), $"Dice {SegmentationLoss.Dice(guess, truth):0.000}", RoentGen.Visualization.Rgb.Green, 0.4f);
            shown++;
        }
        return grid;
    }

    /// <summary>
    /// Evaluates every structure of the model that the data have masks of (the generic layout's <c>mask</c> column counts
    /// as lungs: <see cref="SegmentationData"/>); records with no such mask are skipped and counted.
    /// </summary>
    /// <exception cref="InvalidDataException">No record has a mask of the model's structures.</exception>
    /// <param name="model">The segmenter.</param>
    /// <param name="data">Labelled images.</param>
    /// <param name="modelName">How the result names the model.</param>
    /// <param name="cleanup">Score the predictions after <see cref="MaskCleanup"/> (largest components, holes filled).</param>
    /// <param name="tta">Test-time augmentation (null: one pass per image).</param>
    public static SegmentationEvaluationResult Evaluate(Segmenter model, CxrDataset data, string modelName, bool cleanup = false, TestTimeAugmentation? tta = null)
    {
        var watch = Stopwatch.StartNew();
        var structures = model.Structures.Where(s => data.Any(r => SegmentationData.MaskName(r, s) is not null)).ToList();
        if (structures.Count == 0) structures = model.Structures.ToList();   // Load names the problem.
        var (set, without) = SegmentationData.Load(data, structures, model.Config.Size);
        using var _ = set;
        using var scope = NewDisposeScope();
        var pred = model.Predict(set.Images, cleanup: cleanup, tta: tta);       // (N, C_model, S, S)
        int n = set.Records.Count, pixels = model.Config.Size * model.Config.Size;
        var images = new List<ImageDice>();
        var per = new List<StructureEvaluation>();
        for (int c = 0; c < structures.Count; c++)
        {
            int channel = model.Structures.ToList().IndexOf(structures[c]);
            var p = pred.select(1, channel).reshape(n, -1).contiguous().data<float>().ToArray();
            var g = set.Masks.select(1, c).reshape(n, -1).contiguous().data<float>().ToArray();
            var present = set.Present.select(1, c).data<float>().ToArray();
            double inter = 0, sumP = 0, sumG = 0;
            var rows = new List<ImageDice>();
            for (int i = 0; i < n; i++)
            {
                if (present[i] < 0.5f) continue;
                var pi = p.AsSpan(i * pixels, pixels);
                var gi = g.AsSpan(i * pixels, pixels);
                double gSum = 0, pSum = 0, iSum = 0;
                for (int k = 0; k < pixels; k++) { gSum += gi[k]; pSum += pi[k]; iSum += pi[k] * gi[k]; }
                inter += iSum; sumP += pSum; sumG += gSum;
                var r = set.Records[i];
                rows.Add(new ImageDice(r.ImagePath is { } f ? Path.GetRelativePath(data.Root.Length > 0 ? data.Root : Path.GetDirectoryName(f)!, f) : r.Id,
                    structures[c], SegmentationLoss.Dice(pi, gi), gSum == 0 ? double.NaN : 2 * gSum / (pixels + gSum), gSum / pixels));
            }
            images.AddRange(rows);
            var dice = rows.Select(r => r.Dice).Where(double.IsFinite).OrderBy(d => d).ToList();
            per.Add(new StructureEvaluation(structures[c], rows.Count,
                dice.Count == 0 ? double.NaN : dice.Average(), Median(dice), dice.Count == 0 ? double.NaN : dice[0],
                sumP + sumG == 0 ? double.NaN : 2 * inter / (sumP + sumG),
                Mean(rows.Select(r => r.AllForegroundDice)), rows.Any(r => r.MaskFraction > 0) ? 0 : double.NaN));
        }
        string prediction = (tta is null ? "one pass" : $"test-time zooms {string.Join(", ", tta.Zooms.Select(z => z.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)))}")
            + (cleanup ? ", clean-up" : "");
        return new SegmentationEvaluationResult(modelName, data.Name, model.Config.Size, per, images, without, watch.Elapsed.TotalSeconds) { Prediction = prediction };
    }

    private static double Mean(IEnumerable<double> v)
    {
        var f = v.Where(double.IsFinite).ToList();
        return f.Count == 0 ? double.NaN : f.Average();
    }

    private static double Median(List<double> sorted) =>
        sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : 0.5 * (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]);
}
