using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using static TorchSharp.torch;

namespace RoentGen.Vision.Segmentation;

/// <summary>Images and masks of one set, stacked: what training and evaluation read.</summary>
/// <param name="Records">The records, in tensor order.</param>
/// <param name="Images">(N, 1, S, S) intensities in [0, 1].</param>
/// <param name="Masks">(N, C, S, S) masks in {0, 1} (zeros where absent).</param>
/// <param name="Present">(N, C) 1 where the record has that structure's mask.</param>
public sealed record SegmentationSet(IReadOnlyList<CxrRecord> Records, Tensor Images, Tensor Masks, Tensor Present) : IDisposable
{
    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        Images.Dispose(); Masks.Dispose(); Present.Dispose();
    }
}

/// <summary>
/// Where a segmenter's images and masks come from: the built-in phantom world or a labels.csv in the generic layout.
/// Masks are found by structure name. The generic layout's single <c>mask</c> column (named "mask") is read as the
/// <c>lungs</c> structure: the shared real sample's masks are Shenzhen/Montgomery lung masks (both lungs in one mask);
/// a <c>masks</c> column with <c>lungs=...|heart=...</c> pairs names its structures itself.
/// </summary>
public static class SegmentationData
{
    /// <summary>The <c>--data</c> value of the built-in world.</summary>
    public const string Phantoms = "phantoms";

    /// <summary>The generic layout's single mask column name, read as <see cref="LungsStructure"/>.</summary>
    public const string SingleMaskName = "mask";

    /// <summary>The lung structure's name.</summary>
    public const string LungsStructure = "lungs";

    /// <summary>The record's mask name holding <paramref name="structure"/>, or null when it has none.</summary>
    public static string? MaskName(CxrRecord record, string structure)
    {
        if (record.Masks.ContainsKey(structure)) return structure;
        if (structure == LungsStructure && record.Masks.ContainsKey(SingleMaskName)) return SingleMaskName;
        return null;
    }

    /// <summary>Phantom cases <paramref name="start"/> … start + count − 1 of the world of seed <paramref name="seed"/> at side <paramref name="size"/>.</summary>
    public static CxrDataset PhantomRecords(int size, long seed, int count, int start = 0) =>
        RoentGen.Data.Phantoms.PhantomRecords.Create(new PhantomOptions { Size = Math.Clamp(size, 64, 512), Seed = seed }, count, start).Prefetch();

    /// <summary>Reads a labels.csv (or its folder) in the generic layout.</summary>
    /// <exception cref="FileNotFoundException">No such file or folder.</exception>
    /// <exception cref="DatasetFormatException">A malformed row.</exception>
    public static CxrDataset LabelsCsv(string path, bool allowOutsideRoot) =>
        GenericCsvLoader.Load(GenericCsvLoader.FindCsv(path), new LoadOptions { AllowOutsideRoot = allowOutsideRoot });

    /// <summary>
    /// Stacks the records that have a mask of at least one of <paramref name="structures"/> (at most <paramref name="limit"/>,
    /// first ones first), at side <paramref name="size"/>; returns them and how many records had none.
    /// </summary>
    /// <exception cref="InvalidDataException">No record has a mask of any of the structures (the message names the data and what masks it has).</exception>
    public static (SegmentationSet Set, int WithoutMask) Load(CxrDataset data, IReadOnlyList<string> structures, int size, int limit = int.MaxValue)
    {
        var with = data.Where(r => structures.Any(s => MaskName(r, s) is not null)).Take(limit).ToList();
        int without = data.Count(r => structures.All(s => MaskName(r, s) is null));
        if (with.Count == 0)
        {
            var names = data.SelectMany(r => r.Masks.Keys).Distinct(StringComparer.Ordinal).ToList();
            throw new InvalidDataException($"{data.Name}{(data.Root.Length > 0 ? $" ({data.Root})" : "")}: none of its {data.Count} records has a mask of {string.Join(", ", structures)}; "
                + (names.Count == 0 ? "it has no mask column (expected a 'mask' column of lung masks, or 'masks' with name=path pairs)" : $"its masks are: {string.Join(", ", names)}"));
        }
        using var scope = NewDisposeScope();
        var images = ImageTensors.Stack(with.Select(r => data.LoadImage(r, size)), 0f, 1f);       // (N, 1, S, S)
        var maskStacks = new List<Tensor>();
        var present = new float[with.Count * structures.Count];
        for (int c = 0; c < structures.Count; c++)
        {
            var perRecord = new List<GrayImage>();
            for (int i = 0; i < with.Count; i++)
            {
                var name = MaskName(with[i], structures[c]);
                present[i * structures.Count + c] = name is null ? 0f : 1f;
                perRecord.Add(name is null ? new GrayImage(size, size) : data.LoadMask(with[i], name, size));
            }
            maskStacks.Add(ImageTensors.Stack(perRecord, 0f, 1f).ge(0.5).to_type(ScalarType.Float32));   // (N, 1, S, S)
        }
        var masks = cat(maskStacks, 1);                                                              // (N, C, S, S)
        var set = new SegmentationSet(with, images.MoveToOuterDisposeScope(), masks.MoveToOuterDisposeScope(),
            tensor(present, [with.Count, structures.Count]).MoveToOuterDisposeScope());
        return (set, without);
    }
}
