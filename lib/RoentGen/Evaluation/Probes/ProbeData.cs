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
/// One part (train, validation or test) of a probe data set: images, the 14 CheXpert observations as binary
/// positives, sex, age, masks and reports. Missing values are null.
/// </summary>
public sealed class ProbeSplit
{
    /// <summary>Creates a split; all per-image arrays must have the length of <paramref name="ids"/>.</summary>
    /// <exception cref="ArgumentException">Lengths or shapes disagree (the message names which).</exception>
    public ProbeSplit(IReadOnlyList<string> ids, IReadOnlyList<string> patientIds, Tensor images, float[,] labels,
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
}

/// <summary>
/// What the probes evaluate on: images with every target, split by patient into train / validation / test.
/// Build it from phantoms (<see cref="FromPhantoms"/>) or from a generic labels.csv (<see cref="FromCsv"/>).
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
    /// <paramref name="count"/> phantom cases (one per patient) at <paramref name="size"/>, split 60/20/20 by patient.
    /// Masks: lungs, heart, pleural_effusion (empty where the case has no effusion).
    /// </summary>
    public static ProbeData FromPhantoms(int count, int size = 64, long seed = 0, SplitFractions? fractions = null)
    {
        if (count < 6) throw new ArgumentOutOfRangeException(nameof(count), count, "need at least 6 phantom cases to fill train, validation and test");
        var cases = new PhantomGenerator(new PhantomOptions { Size = Math.Max(64, size), Seed = seed }).Generate(0, count);
        var parts = SplitIndices(cases.Select(c => "phantom/" + c.PatientId).ToList(), (int)(seed & 0x7FFFFFFF), fractions);
        ProbeSplit Make(int[] idx)
        {
            var sel = idx.Select(i => cases[i]).ToList();
            var images = ImageTensors.Stack(sel.Select(c => Resize(c.Image, size, false)));
            var masks = new Dictionary<string, ProbeMask>();
            foreach (var s in PhantomStructures)
                masks[s] = new ProbeMask(StackMasks(sel.Select(c => c.Masks.TryGetValue(s, out var m) ? Resize(m, size, true) : null).ToList(), size),
                    sel.Select(_ => true).ToArray());
            return new ProbeSplit(sel.Select(c => c.Id).ToList(), sel.Select(c => c.PatientId).ToList(), images, LabelMatrix(sel.Select(c => c.Labels).ToList()),
                sel.Select(c => (string?)c.Sex).ToList(), sel.Select(c => (double?)c.Age).ToList(), masks, sel.Select(c => (string?)c.Report).ToList());
        }
        return new ProbeData($"phantoms(n={count}, size={size}, seed={seed})", size, Make(parts.Train), Make(parts.Validation), Make(parts.Test));
    }

    /// <summary>
    /// A generic-layout dataset (labels.csv or its folder; see <see cref="GenericCsvLoader"/>) resized to
    /// <paramref name="size"/>, split 60/20/20 by patient on the fly. Sex, age, masks and reports are used where present.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than 6 records, or fewer than 3 patients.</exception>
    public static ProbeData FromCsv(string labelsCsv, int size = 64, int seed = 0, int? limit = null, SplitFractions? fractions = null)
    {
        var ds = GenericCsvLoader.Load(GenericCsvLoader.FindCsv(labelsCsv), new LoadOptions { Limit = limit });
        if (ds.Count < 6) throw new ArgumentException($"{labelsCsv}: {ds.Count} records; probes need at least 6 to fill train, validation and test");
        var parts = SplitIndices(ds.Select(r => r.SplitKey).ToList(), seed, fractions);
        var maskNames = ds.SelectMany(r => r.Masks.Keys).Distinct(StringComparer.Ordinal).OrderBy(k => k, StringComparer.Ordinal).ToList();
        ProbeSplit Make(int[] idx)
        {
            var sel = idx.Select(i => ds[i]).ToList();
            var images = ImageTensors.Stack(sel.Select(r => ds.LoadImage(r, size)));
            var masks = new Dictionary<string, ProbeMask>();
            foreach (var name in maskNames)
                masks[name] = new ProbeMask(StackMasks(sel.Select(r => r.Masks.ContainsKey(name) ? ds.LoadMask(r, name, size) : null).ToList(), size),
                    sel.Select(r => r.Masks.ContainsKey(name)).ToArray());
            return new ProbeSplit(sel.Select(r => r.Id).ToList(), sel.Select(r => r.PatientId).ToList(), images, LabelMatrix(sel.Select(r => r.Labels).ToList()),
                sel.Select(r => r.Sex).ToList(), sel.Select(r => r.Age).ToList(), masks,
                sel.Select(r => r.Report.IsEmpty ? null : r.Report.Full ?? r.Report.Text).ToList(), sel.Select(r => r.SourceLabels).ToList());
        }
        return new ProbeData($"{ds.Name}(n={ds.Count}, size={size})", size, Make(parts.Train), Make(parts.Validation), Make(parts.Test));
    }

    /// <summary>
    /// Patient-level split with exact part sizes: patients are ordered by a seeded hash of their key and cut at
    /// the fractions (each part gets at least one patient), so tiny data sets still fill every part.
    /// </summary>
    internal static (int[] Train, int[] Validation, int[] Test) SplitIndices(IReadOnlyList<string> patientKeys, int seed, SplitFractions? fractions)
    {
        var f = fractions ?? new SplitFractions(0.6, 0.2, 0.2);
        f.Validate();
        var patients = patientKeys.Distinct(StringComparer.Ordinal).OrderBy(k => PatientSplit.Uniform(k, seed)).ThenBy(k => k, StringComparer.Ordinal).ToList();
        int p = patients.Count;
        if (p < 3) throw new ArgumentException($"probes need at least 3 patients (one per split), got {p}");
        int nVal = Math.Max(1, (int)Math.Round(p * f.Validation)), nTest = Math.Max(1, (int)Math.Round(p * f.Test));
        int nTrain = p - nVal - nTest;
        if (nTrain < 1) { nTrain = 1; nVal = Math.Max(1, p - 2); nTest = p - nTrain - nVal; }
        var part = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < p; i++) part[patients[i]] = i < nTrain ? 0 : i < nTrain + nVal ? 1 : 2;
        int[] Pick(int k) => Enumerable.Range(0, patientKeys.Count).Where(i => part[patientKeys[i]] == k).ToArray();
        return (Pick(0), Pick(1), Pick(2));
    }

    private static float[,] LabelMatrix(IReadOnlyList<CxrLabels> labels)
    {
        var m = new float[labels.Count, Observations.All.Count];
        for (int i = 0; i < labels.Count; i++)
            foreach (var o in Observations.All) m[i, (int)o] = labels[i].Has(o) ? 1f : 0f;
        return m;
    }

    private static GrayImage Resize(GrayImage image, int size, bool isMask) =>
        image.Width == size && image.Height == size ? image : ImageResize.ToSquare(image, size, SquareMode.Pad, isMask);

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
