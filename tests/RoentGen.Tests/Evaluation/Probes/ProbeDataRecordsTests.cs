using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation.Probes;
using RoentGen.Interactive;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation.Probes;

[Collection(ProcessStateCollection.Name)]
public class ProbeDataRecordsTests
{
    // A digest of everything a probe reads: ids per part, image and label sums, mask sums and presence, sex, age, a hash
    // of the reports and the first report. The hashes below are SHA-256 of the digests of the same calls, computed with
    // this same digest in a scratch test. They were first those of main at 0eb3c78 (before probes were built from
    // records); the phantom world's redraw (feat/world: anatomy, field of view, exposure) changed every pixel, so they
    // were recomputed then on the redrawn world (the reports, labels, ids, sex and age parts of the digest are unchanged).
    private static string Digest(ProbeData d)
    {
        var sb = new StringBuilder();
        sb.Append(d.Name).Append('\n');
        foreach (var (name, s) in d.Parts)
        {
            sb.Append(name).Append(": ").Append(string.Join(",", s.Ids)).Append('\n');
            sb.Append(" images ").Append(s.Images.to(ScalarType.Float64).sum().item<double>().ToString("R", CultureInfo.InvariantCulture));
            sb.Append(" labels ").Append(s.Labels.Cast<float>().Sum().ToString("R", CultureInfo.InvariantCulture));
            foreach (var (k, m) in s.Masks.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                sb.Append($" {k}={m.Masks.sum().item<float>().ToString("R", CultureInfo.InvariantCulture)}/{m.Present.Count(p => p)}");
            sb.Append(" sex ").Append(string.Join("", s.Sex.Select(x => x ?? "?")));
            sb.Append(" age ").Append(string.Join(",", s.Age.Select(x => x?.ToString(CultureInfo.InvariantCulture) ?? "?")));
            sb.Append(" reports ").Append(Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\u001f", s.Reports.Select(r => r ?? "<null>")))))[..16]);
            sb.Append(" rep0 ").Append(s.Reports.FirstOrDefault()?.Replace("\n", "\\n") ?? "null");
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static string Hash(string s) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(s)));

    private static void AssertHash(string expected, string actual) => Assert.True(expected == actual, $"digest {actual}, expected {expected}");

    [Fact]
    public void Phantom_probe_data_from_records_equals_what_the_generator_path_gave()
    {
        using var scope = NewDisposeScope();
        AssertHash("2FA46708C352001A7B8DED09E7613EF08677126F4A662696A6D396A90D029DCE", Hash(Digest(ProbeData.FromPhantoms(30, size: 64, seed: 5))));
        AssertHash("8AC84D790873BDFD20595BB46D46D0B679629E3D0775297CC2DA6190003B7ACF", Hash(Digest(ProbeData.FromPhantoms(12, size: 32, seed: 3))));
    }

    [SkippableFact]
    public void Csv_probe_data_from_records_equals_what_the_csv_path_gave()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real-CXR sample is not beside this checkout");
        using var scope = NewDisposeScope();
        Assert.Equal("934F2FF38BFE6631BAE995FD119E5FFE990BE2B06CDEBDDA758D02BE82106C82", Hash(Digest(ProbeData.FromCsv(TestPaths.RealSample!, size: 64))));
    }

    [Fact]
    public void Records_of_a_written_folder_give_the_phantom_probe_data_up_to_png_rounding()
    {
        var dir = TestPaths.NewTempDir("probe-records");
        try
        {
            PhantomDataset.WriteFolder(dir, new PhantomOptions { Size = 64, Seed = 5 }, 12, sink: ProgressSinks.None());
            using var scope = NewDisposeScope();
            var fromFolder = ProbeData.FromRecords(GenericCsvLoader.Load(dir), 64, seed: 5, maskNames: ProbeData.PhantomStructures, missingMaskIsEmpty: true);
            var fromPhantoms = ProbeData.FromPhantoms(12, 64, seed: 5);
            foreach (var ((_, a), (_, b)) in fromFolder.Parts.Zip(fromPhantoms.Parts))
            {
                Assert.Equal(b.Ids.Select(id => $"images/{id}.png"), a.Ids);
                Assert.Equal(b.PatientIds, a.PatientIds);
                Assert.Equal(b.Labels, a.Labels);
                Assert.Equal(b.Reports, a.Reports);
                Assert.True(a.Images.allclose(b.Images, rtol: 0, atol: 1.01 / 255), "images differ by more than PNG rounding");
                foreach (var s in ProbeData.PhantomStructures)
                {
                    Assert.True(a.Masks[s].Masks.eq(b.Masks[s].Masks).all().item<bool>(), s);
                    Assert.Equal(b.Masks[s].Present, a.Masks[s].Present);
                }
            }
            // Without the phantom rule, a record that lacks a finding mask has no target for it.
            var plain = ProbeData.FromRecords(GenericCsvLoader.Load(dir), 64, seed: 5);
            Assert.Contains("mask", plain.Train.Masks.Keys);
            Assert.True(plain.Parts.Sum(p => p.Split.Masks["pleural_effusion"].Present.Count(v => v)) < 12);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_exact_patient_split_fills_every_part_keeps_patients_whole_and_record_order()
    {
        var records = PhantomRecords.Create(new PhantomOptions { Size = 64, Seed = 2 }, 20, masks: false);
        // Two images per patient: ids stay unique, patients pair up.
        var paired = records.Derive("paired", records.Select((r, i) => r with { PatientId = $"p{i / 2}" }));
        var s = paired.SplitByPatientExactly(seed: 3);
        Assert.Equal((6, 2, 2), (s.Train.Select(r => r.PatientId).Distinct().Count(), s.Validation.Select(r => r.PatientId).Distinct().Count(), s.Test.Select(r => r.PatientId).Distinct().Count()));
        Assert.Empty(s.Train.Select(r => r.PatientId).Intersect(s.Test.Select(r => r.PatientId)));
        Assert.Empty(s.Train.Select(r => r.PatientId).Intersect(s.Validation.Select(r => r.PatientId)));
        Assert.Equal(20, s.Train.Count + s.Validation.Count + s.Test.Count);
        Assert.All(new[] { s.Train, s.Validation, s.Test }, part =>
            Assert.Equal(part.Select(r => r.Id).OrderBy(id => id, StringComparer.Ordinal), part.Select(r => r.Id)));
        Assert.Equal(s.Train.Select(r => r.Id), paired.SplitByPatientExactly(seed: 3).Train.Select(r => r.Id));
        var e = Assert.Throws<ArgumentException>(() => paired.Derive("two", paired.Take(4)).SplitByPatientExactly());
        Assert.Contains("at least 3 patients", e.Message);
        Assert.Throws<ArgumentException>(() => ProbeData.FromRecords(paired.Derive("five", paired.Take(5))));
    }
}
