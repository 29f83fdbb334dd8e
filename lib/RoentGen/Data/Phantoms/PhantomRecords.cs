using System.Collections;
using RoentGen.Data.Datasets;

namespace RoentGen.Data.Phantoms;

/// <summary>
/// Phantom cases as <see cref="CxrRecord"/>s, so that every trainer and probe reads phantoms exactly as it reads a
/// labels.csv folder or a MIMIC-CXR, CheXpert, NIH or IU X-ray loader's records.
/// <para>
/// Record i of <see cref="Create"/> is case start + i of the world: <see cref="CxrRecord.Id"/> "phantom_NNNNNN",
/// <see cref="CxrRecord.PatientId"/> "ppNNNNNN" (one case per patient), dataset "phantom", the report with its
/// FINDINGS and IMPRESSION sections and the full "FINDINGS: ...\nIMPRESSION: ..." text, the CheXpert labels of that
/// report, the positive observations' names as <see cref="CxrRecord.SourceLabels"/> (the labels column
/// <see cref="PhantomDataset.WriteFolder"/> writes), the masks by name, sex, age, view and the attributes of
/// <see cref="PhantomGenerator.AttributeKeys"/>. The image and masks are the generator's own pixels (in memory, at
/// <see cref="PhantomOptions.Size"/>).
/// </para>
/// </summary>
public static class PhantomRecords
{
    /// <summary>The <see cref="CxrRecord.Dataset"/> of every phantom record.</summary>
    public const string DatasetName = "phantom";

    /// <summary>
    /// <paramref name="count"/> phantom records (cases <paramref name="start"/> … start + count − 1 of the world of
    /// <paramref name="options"/>), generated lazily: a case is drawn the first time its record is asked for, at most
    /// once (thread-safe), and its image, masks and fields all come from that one drawing. A record never asked for is
    /// never drawn. Generated records are kept for the dataset's lifetime; pass <paramref name="masks"/> false when the
    /// consumer needs no masks (training pools of thousands of cases) so that only the image is kept.
    /// </summary>
    /// <param name="options">The phantom world (validated).</param>
    /// <param name="count">Number of records (0 or more).</param>
    /// <param name="start">Index of the first case (0 or more).</param>
    /// <param name="masks">Keep the masks (lungs, heart, one per drawn finding); false keeps none.</param>
    /// <returns>A dataset named "phantoms (world seed S, N px, cases A-B)".</returns>
    /// <exception cref="ArgumentOutOfRangeException">count or start is negative, start + count overflows, or an option is out of range.</exception>
    public static CxrDataset Create(PhantomOptions options, int count, int start = 0, bool masks = true)
    {
        var generator = new PhantomGenerator(options);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be 0 or more");
        if (start < 0) throw new ArgumentOutOfRangeException(nameof(start), start, "start must be 0 or more");
        if ((long)start + count > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(count), count, $"cases {start} + {count} run past the last case index {int.MaxValue}");
        string range = count == 0 ? "no cases" : $"cases {start}-{start + count - 1}";
        return CxrDataset.OnDemand($"phantoms (world seed {options.Seed}, {options.Size} px, {range})", "", new LazyRecords(generator, start, count, masks));
    }

    /// <summary>The record of a case already generated (its image and masks are shared, not copied).</summary>
    /// <param name="phantom">The case.</param>
    /// <param name="masks">Keep the masks; false gives a record without masks.</param>
    public static CxrRecord FromCase(PhantomCase phantom, bool masks = true)
    {
        ArgumentNullException.ThrowIfNull(phantom);
        var maskSources = new Dictionary<string, ImageSource>(StringComparer.Ordinal);
        if (masks)
            foreach (var (name, mask) in phantom.Masks) maskSources[name] = ImageSource.FromImage(mask, $"{phantom.Id} {name} mask");
        return new CxrRecord
        {
            Id = phantom.Id,
            PatientId = phantom.PatientId,
            Dataset = DatasetName,
            Image = ImageSource.FromImage(phantom.Image, phantom.Id),
            Report = new CxrReport(phantom.Findings, phantom.Impression, phantom.Report),
            Labels = phantom.Labels,
            SourceLabels = phantom.Labels.Positives.Select(o => o.Name()).ToArray(),
            Masks = maskSources,
            Sex = phantom.Sex,
            Age = phantom.Age,
            View = phantom.View,
            Attributes = phantom.Attributes,
        };
    }

    /// <summary>True when record <paramref name="index"/> of a dataset made by <see cref="Create"/> has been generated (for tests and diagnostics).</summary>
    /// <exception cref="ArgumentException">The dataset was not made by <see cref="Create"/>.</exception>
    internal static bool IsGenerated(CxrDataset dataset, int index) =>
        dataset.Source is LazyRecords lazy ? lazy.IsGenerated(index) : throw new ArgumentException($"{dataset.Name} is not a lazily generated phantom dataset");

    /// <summary>Records made on first use; each index is generated once (Lazy, ExecutionAndPublication).</summary>
    private sealed class LazyRecords : IReadOnlyList<CxrRecord>
    {
        private readonly Lazy<CxrRecord>[] _records;

        public LazyRecords(PhantomGenerator generator, int start, int count, bool masks)
        {
            _records = new Lazy<CxrRecord>[count];
            for (int i = 0; i < count; i++)
            {
                int index = start + i;
                _records[i] = new Lazy<CxrRecord>(() => FromCase(generator.Generate(index), masks), LazyThreadSafetyMode.ExecutionAndPublication);
            }
        }

        public int Count => _records.Length;

        public CxrRecord this[int index] =>
            (uint)index < (uint)_records.Length ? _records[index].Value
            : throw new ArgumentOutOfRangeException(nameof(index), index, $"the phantom dataset holds records 0 to {_records.Length - 1}");

        public bool IsGenerated(int index) => _records[index].IsValueCreated;

        public IEnumerator<CxrRecord> GetEnumerator()
        {
            for (int i = 0; i < _records.Length; i++) yield return _records[i].Value;
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
