using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using static TorchSharp.torch;

namespace RoentGen.Evaluation.Probes;

/// <summary>A segmentation target of one split: masks of every image and which images have one.</summary>
/// <param name="Masks">(N, S, S) float 0/1; all zero where <paramref name="Present"/> is false.</param>
/// <param name="Present">Whether image i has this mask in its source (an absent finding mask of a phantom counts as present and empty).</param>
public sealed record ProbeMask(Tensor Masks, bool[] Present);

/// <summary>
/// One part (train, validation or test) of a probe data set as tensors and arrays, the probes' batch form: images, the
/// 14 CheXpert observations as binary positives, sex, age, masks and reports. Missing values are null. Made from records
/// only (<see cref="FromRecords"/>).
/// </summary>
public sealed class ProbeSplit
{
    // All per-image arrays must have the length of ids.
    private ProbeSplit(IReadOnlyList<string> ids, IReadOnlyList<string> patientIds, Tensor images, float[,] labels,
        IReadOnlyList<string?> sex, IReadOnlyList<double?> age, IReadOnlyDictionary<string, ProbeMask> masks,
        IReadOnlyList<string?> reports, IReadOnlyList<IReadOnlyList<string>>? sourceLabels = null)
    {
        int n = ids.Count;
        void Check(long len, string what) { if (len != n) throw new ArgumentException($"probe split: {what} has {len} entries but there are {n} images"); }
        Check(patientIds.Count, "patientIds"); Check(images.shape[0], "images"); Check(labels.GetLength(0), "labels");
        Check(sex.Count, "sex"); Check(age.Count, "age"); Check(reports.Count, "reports");
        if (labels.GetLength(1) != Observations.All.Count) throw new ArgumentException($"probe split: labels must have {Observations.All.Count} columns, got {labels.GetLength(1)}");
        foreach (var (k, m) in masks) { Check(m.Masks.shape[0], $"mask '{k}'"); Check(m.Present.Length, $"mask '{k}' presence"); }
        Ids = ids; PatientIds = patientIds; Images = images; Labels = labels; Sex = sex; Age = age; Masks = masks; Reports = reports;
        SourceLabels = sourceLabels ?? ids.Select(_ => (IReadOnlyList<string>)Array.Empty<string>()).ToList();
    }

    /// <summary>Image ids.</summary>
    public IReadOnlyList<string> Ids { get; }
    /// <summary>Patient ids (no patient is in two splits).</summary>
    public IReadOnlyList<string> PatientIds { get; }
    /// <summary>(N, 1, S, S) float32 in [-1, 1].</summary>
    public Tensor Images { get; }
    /// <summary>(N, 14): 1 where the observation is Positive, else 0 (in <see cref="Observations.All"/> order).</summary>
    public float[,] Labels { get; }
    /// <summary>"M", "F" or null (unknown).</summary>
    public IReadOnlyList<string?> Sex { get; }
    /// <summary>Age in years or null.</summary>
    public IReadOnlyList<double?> Age { get; }
    /// <summary>Segmentation targets by structure name.</summary>
    public IReadOnlyDictionary<string, ProbeMask> Masks { get; }
    /// <summary>Report text or null.</summary>
    public IReadOnlyList<string?> Reports { get; }
    /// <summary>The source's own label names per image (e.g. "tuberculosis").</summary>
    public IReadOnlyList<IReadOnlyList<string>> SourceLabels { get; }
    /// <summary>Number of images.</summary>
    public int Count => Ids.Count;

    /// <summary>(N, 14) labels as a tensor.</summary>
    public Tensor LabelTensor() => tensor(Labels);

    /// <summary>
    /// The records as a split: images and masks square at <paramref name="size"/> (<see cref="CxrDataset.LoadImage"/>,
    /// <see cref="CxrDataset.LoadMask"/>), labels as binary positives, sex, age, reports (<see cref="CxrReport.FullText"/>,
    /// null when empty) and source labels, in record order.
    /// </summary>
    /// <param name="records">The records of this part.</param>
    /// <param name="size">Image and mask side.</param>
    /// <param name="maskNames">Segmentation targets.</param>
    /// <param name="missingMaskIsEmpty">True when a record without a mask of a name has an empty one (phantoms); false marks it absent.</param>
    /// <exception cref="DatasetFormatException">An image or mask could not be loaded.</exception>
    public static ProbeSplit FromRecords(CxrDataset records, int size, IReadOnlyList<string> maskNames, bool missingMaskIsEmpty = false)
    {
        var images = ImageTensors.Stack(records.Select(r => records.LoadImage(r, size)));
        var masks = new Dictionary<string, ProbeMask>();
        foreach (var m in maskNames)
            masks[m] = new ProbeMask(ProbeData.StackMasks(records.Select(r => r.Masks.ContainsKey(m) ? records.LoadMask(r, m, size) : null).ToList(), size),
                records.Select(r => missingMaskIsEmpty || r.Masks.ContainsKey(m)).ToArray());
        return new ProbeSplit(records.Select(r => r.Id).ToList(), records.Select(r => r.PatientId).ToList(), images, LabelMatrix(records.Select(r => r.Labels).ToList()),
            records.Select(r => r.Sex).ToList(), records.Select(r => r.Age).ToList(), masks,
            records.Select(r => r.Report.IsEmpty ? null : r.Report.FullText).ToList(), records.Select(r => r.SourceLabels).ToList());
    }

    private static float[,] LabelMatrix(IReadOnlyList<CxrLabels> labels)
    {
        var m = new float[labels.Count, Observations.All.Count];
        for (int i = 0; i < labels.Count; i++)
            foreach (var o in Observations.All) m[i, (int)o] = labels[i].Has(o) ? 1f : 0f;
        return m;
    }
}

/// <summary>
/// What the probes evaluate on: images with every target, split by patient into train / validation / test. Built from
/// records (<see cref="FromRecords"/>: phantoms, a labels.csv folder or any loader's <see cref="CxrDataset"/>), split once
/// by <see cref="PatientSplit.SplitByPatientExactly"/>; <see cref="FromPhantoms"/> and <see cref="FromCsv"/> are
/// shorthands for the two usual sources.
/// </summary>
/// <param name="Name">Where the data came from.</param>
/// <param name="ImageSize">Image (and mask) side.</param>
/// <param name="Train">Training part.</param>
/// <param name="Validation">Model-selection part.</param>
/// <param name="Test">Reporting part.</param>
public sealed record ProbeData(string Name, int ImageSize, ProbeSplit Train, ProbeSplit Validation, ProbeSplit Test)
{
    /// <summary>Phantom structures used as segmentation targets.</summary>
    public static IReadOnlyList<string> PhantomStructures { get; } = ["lungs", "heart", "pleural_effusion"];

    /// <summary>The three parts in order.</summary>
    public IEnumerable<(string Name, ProbeSplit Split)> Parts => [("train", Train), ("validation", Validation), ("test", Test)];

    /// <summary>
    /// <paramref name="count"/> phantom records (one per patient; <see cref="PhantomRecords"/>) at <paramref name="size"/>,
    /// split 60/20/20 by patient. Masks: lungs, heart, pleural_effusion (empty where the case has no effusion).
    /// </summary>
    public static ProbeData FromPhantoms(int count, int size = 64, long seed = 0, SplitFractions? fractions = null)
    {
        if (count < 6) throw new ArgumentOutOfRangeException(nameof(count), count, "need at least 6 phantom cases to fill train, validation and test");
        var records = PhantomRecords.Create(new PhantomOptions { Size = Math.Max(64, size), Seed = seed }, count).Prefetch();
        return FromRecords(records, size, (int)(seed & 0x7FFFFFFF), fractions, PhantomStructures, missingMaskIsEmpty: true,
            name: $"phantoms(n={count}, size={size}, seed={seed})");
    }

    /// <summary>
    /// A generic-layout dataset (labels.csv or its folder; see <see cref="GenericCsvLoader"/>) resized to
    /// <paramref name="size"/>, split 60/20/20 by patient on the fly. Sex, age, masks and reports are used where present.
    /// </summary>
    /// <param name="labelsCsv">The labels.csv or its folder.</param>
    /// <param name="size">Image side.</param>
    /// <param name="seed">Split seed.</param>
    /// <param name="limit">The most rows read, or null for all.</param>
    /// <param name="fractions">Split fractions (null: 60/20/20).</param>
    /// <param name="allowOutsideRoot">Accept image and mask paths outside the CSV's folder (<see cref="LoadOptions.AllowOutsideRoot"/>).</param>
    /// <exception cref="ArgumentException">Fewer than 6 records, or fewer than 3 patients.</exception>
    public static ProbeData FromCsv(string labelsCsv, int size = 64, int seed = 0, int? limit = null, SplitFractions? fractions = null, bool allowOutsideRoot = false)
    {
        var ds = GenericCsvLoader.Load(GenericCsvLoader.FindCsv(labelsCsv), new LoadOptions { Limit = limit, AllowOutsideRoot = allowOutsideRoot });
        if (ds.Count < 6) throw new ArgumentException($"{labelsCsv}: {ds.Count} records; probes need at least 6 to fill train, validation and test");
        return FromRecords(ds, size, seed, fractions, name: $"{ds.Name}(n={ds.Count}, size={size})");
    }

    /// <summary>
    /// Probe data from records, split once by patient with <see cref="PatientSplit.SplitByPatientExactly"/>, each part
    /// made by <see cref="ProbeSplit.FromRecords"/>.
    /// </summary>
    /// <param name="records">The records (at least 6, of at least 3 patients).</param>
    /// <param name="size">Image and mask side.</param>
    /// <param name="seed">Seed of the patient split.</param>
    /// <param name="fractions">Patient fractions (default 0.6 / 0.2 / 0.2).</param>
    /// <param name="maskNames">Segmentation targets (default: every mask name of the records, in ordinal order).</param>
    /// <param name="missingMaskIsEmpty">
    /// True when a record without a mask of that name has an empty one (phantoms, whose finding masks exist only where
    /// the finding is drawn); false (default) marks it absent in <see cref="ProbeMask.Present"/>.
    /// </param>
    /// <param name="name">Name of the data (default: the dataset's name, count and size).</param>
    /// <exception cref="ArgumentException">Fewer than 6 records, or fewer than 3 patients.</exception>
    /// <exception cref="DatasetFormatException">An image or mask could not be loaded.</exception>
    public static ProbeData FromRecords(CxrDataset records, int size = 64, int seed = 0, SplitFractions? fractions = null,
        IReadOnlyList<string>? maskNames = null, bool missingMaskIsEmpty = false, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count < 6) throw new ArgumentException($"{records.Name}: {records.Count} records; probes need at least 6 to fill train, validation and test");
        var parts = records.SplitByPatientExactly(seed, fractions);
        var masksToUse = maskNames ?? records.SelectMany(r => r.Masks.Keys).Distinct(StringComparer.Ordinal).OrderBy(k => k, StringComparer.Ordinal).ToList();
        ProbeSplit Make(CxrDataset part) => ProbeSplit.FromRecords(part, size, masksToUse, missingMaskIsEmpty);
        return new ProbeData(name ?? $"{records.Name}(n={records.Count}, size={size})", size, Make(parts.Train), Make(parts.Validation), Make(parts.Test));
    }

    internal static Tensor StackMasks(IReadOnlyList<GrayImage?> masks, int size)
    {
        var data = new float[(long)masks.Count * size * size];
        for (int i = 0; i < masks.Count; i++)
        {
            if (masks[i] is not GrayImage m) continue;
            for (int j = 0; j < size * size; j++) data[(long)i * size * size + j] = m.Pixels[j] >= 0.5f ? 1f : 0f;
        }
        return tensor(data, [masks.Count, size, size]); // (N, S, S)
    }
}
