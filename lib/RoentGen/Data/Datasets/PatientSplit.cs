using System.Security.Cryptography;
using System.Text;

namespace RoentGen.Data.Datasets;

/// <summary>The three parts of a split.</summary>
public enum SplitPart
{
    /// <summary>Training.</summary>
    Train,
    /// <summary>Validation (model selection).</summary>
    Validation,
    /// <summary>Held-out test.</summary>
    Test,
}

/// <summary>Fractions of patients per part; they must be non-negative and sum to 1.</summary>
/// <param name="Train">Training fraction (default 0.8).</param>
/// <param name="Validation">Validation fraction (default 0.1).</param>
/// <param name="Test">Test fraction (default 0.1).</param>
public sealed record SplitFractions(double Train = 0.8, double Validation = 0.1, double Test = 0.1)
{
    /// <summary>Throws unless the fractions are valid.</summary>
    public void Validate()
    {
        if (Train < 0 || Validation < 0 || Test < 0 || Math.Abs(Train + Validation + Test - 1) > 1e-9)
            throw new ArgumentException($"split fractions must be >= 0 and sum to 1; got train {Train}, validation {Validation}, test {Test}");
    }
}

/// <summary>Train, validation and test datasets.</summary>
/// <param name="Train">Training records.</param>
/// <param name="Validation">Validation records.</param>
/// <param name="Test">Test records.</param>
public sealed record DatasetSplits(CxrDataset Train, CxrDataset Validation, CxrDataset Test);

/// <summary>
/// Patient-level splits: each patient's part is decided by a hash of (seed, dataset/patient), so every image
/// of a patient lands in the same part, the result does not depend on record order or on the other patients,
/// and the same seed gives the same split on every machine. Part sizes follow the fractions in expectation
/// (per patient, not per image).
/// </summary>
public static class PatientSplit
{
    /// <summary>The part of a split key (see <see cref="CxrRecord.SplitKey"/>).</summary>
    public static SplitPart Assign(string splitKey, int seed, SplitFractions fractions)
    {
        fractions.Validate();
        double u = Uniform(splitKey, seed);
        return u < fractions.Train ? SplitPart.Train
            : u < fractions.Train + fractions.Validation ? SplitPart.Validation
            : SplitPart.Test;
    }

    /// <summary>A number in [0, 1) fixed by the key and seed (SHA-256 based).</summary>
    public static double Uniform(string key, int seed)
    {
        var bytes = Encoding.UTF8.GetBytes($"{seed}\u001f{key}");
        Span<byte> h = stackalloc byte[32];
        SHA256.HashData(bytes, h);
        ulong x = BitConverter.ToUInt64(h[..8]);
        return (x >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>Splits a dataset by patient.</summary>
    public static DatasetSplits SplitByPatient(this CxrDataset dataset, int seed = 0, SplitFractions? fractions = null)
    {
        fractions ??= new SplitFractions();
        fractions.Validate();
        var parts = dataset.ToLookup(r => Assign(r.SplitKey, seed, fractions));
        return new DatasetSplits(
            dataset.Derive(dataset.Name + "/train", parts[SplitPart.Train]),
            dataset.Derive(dataset.Name + "/validation", parts[SplitPart.Validation]),
            dataset.Derive(dataset.Name + "/test", parts[SplitPart.Test]));
    }

    /// <summary>
    /// Splits a dataset by patient with exact part sizes, for small sets that must fill every part (probes): patients
    /// are ordered by <see cref="Uniform"/>(dataset/patient, seed) and cut at the fractions, every part getting at least
    /// one patient (with too few patients for the fractions, validation takes what train and test leave). Each part
    /// keeps the dataset's record order.
    /// </summary>
    /// <param name="dataset">The records.</param>
    /// <param name="seed">Seed of the patient order.</param>
    /// <param name="fractions">Patient fractions (default 0.6 / 0.2 / 0.2).</param>
    /// <exception cref="ArgumentException">Fewer than 3 patients, or invalid fractions.</exception>
    public static DatasetSplits SplitByPatientExactly(this CxrDataset dataset, int seed = 0, SplitFractions? fractions = null)
    {
        var f = fractions ?? new SplitFractions(0.6, 0.2, 0.2);
        f.Validate();
        var keys = dataset.Select(r => r.SplitKey).ToList();
        var patients = keys.Distinct(StringComparer.Ordinal).OrderBy(k => Uniform(k, seed)).ThenBy(k => k, StringComparer.Ordinal).ToList();
        int p = patients.Count;
        if (p < 3) throw new ArgumentException($"{dataset.Name}: a patient-level train/validation/test split needs at least 3 patients (one per part), got {p}");
        int nVal = Math.Max(1, (int)Math.Round(p * f.Validation)), nTest = Math.Max(1, (int)Math.Round(p * f.Test));
        int nTrain = p - nVal - nTest;
        if (nTrain < 1) { nTrain = 1; nVal = Math.Max(1, p - 2); nTest = p - nTrain - nVal; }
        var part = new Dictionary<string, SplitPart>(StringComparer.Ordinal);
        for (int i = 0; i < p; i++) part[patients[i]] = i < nTrain ? SplitPart.Train : i < nTrain + nVal ? SplitPart.Validation : SplitPart.Test;
        CxrDataset Pick(SplitPart k, string suffix) => dataset.Derive(dataset.Name + suffix, Enumerable.Range(0, keys.Count).Where(i => part[keys[i]] == k).Select(i => dataset[i]));
        return new DatasetSplits(Pick(SplitPart.Train, "/train"), Pick(SplitPart.Validation, "/validation"), Pick(SplitPart.Test, "/test"));
    }
}
