using System.Text.Json;
using System.Text.Json.Serialization;

namespace RoentGen.Data.Datasets;

/// <summary>Counts of one observation's mentions.</summary>
/// <param name="Observation">CheXpert name.</param>
/// <param name="Positive">Records marked 1.</param>
/// <param name="Negative">Records marked 0.</param>
/// <param name="Uncertain">Records marked -1.</param>
/// <param name="NotMentioned">Records left blank.</param>
public sealed record ObservationCounts(string Observation, int Positive, int Negative, int Uncertain, int NotMentioned);

/// <summary>Age distribution.</summary>
/// <param name="Known">Records with an age.</param>
/// <param name="Missing">Records without one.</param>
/// <param name="Min">Youngest, or null.</param>
/// <param name="Max">Oldest, or null.</param>
/// <param name="Mean">Mean, or null.</param>
/// <param name="Median">Median, or null.</param>
/// <param name="ByDecade">Counts by decade ("0-9", "10-19", ...).</param>
public sealed record AgeSummary(int Known, int Missing, double? Min, double? Max, double? Mean, double? Median, IReadOnlyDictionary<string, int> ByDecade);

/// <summary>What a dataset holds: sizes, label counts, demographics, views, masks and missing files.</summary>
/// <param name="Source">The file inspected (or the dataset name).</param>
/// <param name="Records">Records loaded.</param>
/// <param name="Patients">Distinct (dataset, patient) pairs.</param>
/// <param name="Datasets">Records per source dataset.</param>
/// <param name="Observations">Per-observation counts, in CheXpert order.</param>
/// <param name="Sex">Records per sex ("M", "F", "unknown").</param>
/// <param name="Age">Age distribution.</param>
/// <param name="Views">Records per view as written ("unknown" when blank).</param>
/// <param name="Masks">Records per mask name.</param>
/// <param name="RecordsWithMasks">Records with at least one mask.</param>
/// <param name="RecordsWithReport">Records with report text.</param>
/// <param name="SourceLabels">Records per source label.</param>
/// <param name="MissingImages">Records whose image file does not exist.</param>
/// <param name="MissingImageExamples">Up to 10 of those paths.</param>
/// <param name="MissingMasks">Mask files that do not exist.</param>
/// <param name="Skipped">Rows the loader skipped as bad.</param>
/// <param name="SkippedExamples">Up to 10 skip reasons.</param>
public sealed record DatasetSummary(
    string Source, int Records, int Patients, IReadOnlyDictionary<string, int> Datasets, IReadOnlyList<ObservationCounts> Observations,
    IReadOnlyDictionary<string, int> Sex, AgeSummary Age, IReadOnlyDictionary<string, int> Views, IReadOnlyDictionary<string, int> Masks,
    int RecordsWithMasks, int RecordsWithReport, IReadOnlyDictionary<string, int> SourceLabels, int MissingImages,
    IReadOnlyList<string> MissingImageExamples, int MissingMasks, int Skipped, IReadOnlyList<string> SkippedExamples)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>The summary as indented JSON (camelCase keys).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a summary back from <see cref="ToJson"/>.</summary>
    public static DatasetSummary FromJson(string json) =>
        JsonSerializer.Deserialize<DatasetSummary>(json, Json) ?? throw new JsonException("null summary");
}

/// <summary>Builds <see cref="DatasetSummary"/>s.</summary>
public static class DatasetInspection
{
    /// <summary>
    /// Loads a generic labels.csv (or a folder holding one) without stopping at bad rows or missing files,
    /// and summarises it: bad rows are counted as skipped, missing images and masks are counted. A row whose image or
    /// mask lies outside the CSV's folder is a skipped row (its reason says so), never a present image, unless
    /// <paramref name="allowOutsideRoot"/>.
    /// </summary>
    public static DatasetSummary InspectCsv(string path, bool allowOutsideRoot = false)
    {
        var csv = GenericCsvLoader.FindCsv(path);
        var ds = GenericCsvLoader.Load(csv, new LoadOptions { SkipBadRows = true, CheckFilesExist = false, AllowOutsideRoot = allowOutsideRoot });
        return Summarize(ds, csv);
    }

    /// <summary>Summarises a loaded dataset (checks which image and mask files exist).</summary>
    public static DatasetSummary Summarize(CxrDataset ds, string? source = null)
    {
        static SortedDictionary<string, int> Count(IEnumerable<string> keys)
        {
            var d = new SortedDictionary<string, int>(StringComparer.Ordinal);
            foreach (var k in keys) d[k] = d.TryGetValue(k, out var n) ? n + 1 : 1;
            return d;
        }
        var counts = new int[14, 4]; // [observation, (int)Mention]
        for (int i = 0; i < ds.Count; i++)
        {
            var l = ds[i].Labels;
            for (int o = 0; o < 14; o++) counts[o, (int)l[(Observation)o]]++;
        }
        var obs = Observations.All.Select(o => new ObservationCounts(o.Name(),
            counts[(int)o, (int)Mention.Positive], counts[(int)o, (int)Mention.Negative],
            counts[(int)o, (int)Mention.Uncertain], counts[(int)o, (int)Mention.NotMentioned])).ToList();
        var ages = ds.Where(r => r.Age is not null).Select(r => r.Age!.Value).Order().ToList();
        var age = new AgeSummary(ages.Count, ds.Count - ages.Count,
            ages.Count > 0 ? ages[0] : null, ages.Count > 0 ? ages[^1] : null, ages.Count > 0 ? ages.Average() : null,
            ages.Count == 0 ? null : ages.Count % 2 == 1 ? ages[ages.Count / 2] : (ages[ages.Count / 2 - 1] + ages[ages.Count / 2]) / 2,
            Count(ages.Select(a => { int d = (int)(a / 10) * 10; return $"{d}-{d + 9}"; })));
        var missing = ds.Where(r => !r.Image.Exists()).Select(r => r.Image.Description).ToList();
        return new DatasetSummary(
            source ?? ds.Name,
            ds.Count,
            ds.Select(r => r.SplitKey).Distinct().Count(),
            Count(ds.Select(r => r.Dataset)),
            obs,
            Count(ds.Select(r => r.Sex ?? "unknown")),
            age,
            Count(ds.Select(r => r.View ?? "unknown")),
            Count(ds.SelectMany(r => r.Masks.Keys)),
            ds.Count(r => r.Masks.Count > 0),
            ds.Count(r => !r.Report.IsEmpty),
            Count(ds.SelectMany(r => r.SourceLabels.Distinct())),
            missing.Count,
            missing.Take(10).ToList(),
            ds.Sum(r => r.Masks.Values.Count(m => !m.Exists())),
            ds.SkippedCount,
            ds.Skipped.Take(10).Select(s => s.ToString()).ToList());
    }
}
