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
}
