using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Analysis;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Evaluation.Statistics;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Visualization;
using static TorchSharp.torch;

namespace RoentGen.Evaluation.Probes;

/// <summary>
/// Settings of <see cref="RealDataCheck"/>. Which rows the k-NN check compares:
/// <list type="bullet">
/// <item>Positives: rows whose source labels (the <c>labels</c> column) contain <see cref="PositiveLabel"/>
/// (case-insensitive).</item>
/// <item>Negatives: rows whose source labels are empty or only <see cref="NormalLabels"/>, taken by default from the
/// positives' own datasets only. In the shared real sample the TB rows come from Shenzhen and Montgomery, whose
/// normals are labelled "normal"; the sample also holds normal rows of NIH ChestX-ray14 ("No Finding") and of the
/// Kermany pediatric set ("normal", children). Mixing those in would let the k-NN separate hospitals, scanners and
/// ages instead of tuberculosis from normal, so they are left out unless <see cref="NegativesFromAllDatasets"/> is set.</item>
/// <item>Rows with any other finding are neither, and take no part.</item>
/// </list>
/// </summary>
public sealed record RealDataCheckOptions
{
    /// <summary>Source label of the positive class.</summary>
    public string PositiveLabel { get; init; } = "tuberculosis";
    /// <summary>Source labels that mean "no finding" (case-insensitive); a row with no label at all counts too.</summary>
    public IReadOnlyList<string> NormalLabels { get; init; } = ["normal", "No Finding"];
    /// <summary>Take negatives from every dataset of the CSV, not only from the positives' datasets (see the type's remarks).</summary>
    public bool NegativesFromAllDatasets { get; init; }
    /// <summary>Neighbours of the leave-one-out k-NN (capped at the rows available to each query).</summary>
    public int K { get; init; } = 5;
    /// <summary>Vote temperature: a neighbour votes with weight exp(cosine similarity / T), as in DINO's k-NN evaluation.</summary>
    public double Temperature { get; init; } = 0.07;
    /// <summary>Cross-validation folds of the segmentation check (capped at the number of patients with a mask).</summary>
    public int Folds { get; init; } = 4;
    /// <summary>Passes of the segmentation head over each fold's training images.</summary>
    public int SegmentationEpochs { get; init; } = 60;
    /// <summary>Adam learning rate of the segmentation head.</summary>
    public double SegmentationLearningRate { get; init; } = 1e-2;
    /// <summary>Seed of the fold assignment and of the segmentation heads.</summary>
    public int Seed { get; init; }
    /// <summary>Images per encoder forward pass.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Accept image and mask paths outside the CSV's folder (<see cref="LoadOptions.AllowOutsideRoot"/>).</summary>
    public bool AllowOutsideRoot { get; init; }

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A field is out of range (the message names it).</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(PositiveLabel)) throw new ArgumentException("PositiveLabel must name a source label, e.g. 'tuberculosis'");
        if (K < 1) throw new ArgumentException($"K must be at least 1, got {K}");
        if (!(Temperature > 0)) throw new ArgumentException($"Temperature must be positive, got {Temperature}");
        if (Folds < 2) throw new ArgumentException($"Folds must be at least 2, got {Folds}");
        if (SegmentationEpochs < 1) throw new ArgumentException($"SegmentationEpochs must be at least 1, got {SegmentationEpochs}");
        if (!(SegmentationLearningRate > 0)) throw new ArgumentException($"SegmentationLearningRate must be positive, got {SegmentationLearningRate}");
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1, got {BatchSize}");
    }

    /// <summary>Indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, SafeTensors.ConfigJsonOptions);
}

/// <summary>
/// The rows of a generic-layout labels.csv that a <see cref="RealDataCheck"/> uses (k-NN positives and negatives, and
/// rows with a mask), read once; their images and masks are loaded once per encoder input size and cached.
/// </summary>
public sealed class RealDataSample : IDisposable
{
    private readonly Dictionary<int, (Tensor Images, Dictionary<string, ProbeMask> Masks)> _bySize = new();

    private RealDataSample(CxrDataset dataset, string csvPath, RealDataCheckOptions options)
    {
        Dataset = dataset;
        CsvPath = csvPath;
        Options = options;
        bool Has(CxrRecord r, string label) => r.SourceLabels.Any(l => string.Equals(l, label, StringComparison.OrdinalIgnoreCase));
        var positives = Enumerable.Range(0, dataset.Count).Where(i => Has(dataset[i], options.PositiveLabel)).ToList();
        PositiveDatasets = positives.Select(i => dataset[i].Dataset).Distinct(StringComparer.Ordinal).OrderBy(d => d, StringComparer.Ordinal).ToList();
        var negatives = Enumerable.Range(0, dataset.Count).Where(i =>
        {
            var r = dataset[i];
            if (Has(r, options.PositiveLabel)) return false;
            if (!r.SourceLabels.All(l => options.NormalLabels.Any(n => string.Equals(l, n, StringComparison.OrdinalIgnoreCase)))) return false;
            return options.NegativesFromAllDatasets || PositiveDatasets.Contains(r.Dataset, StringComparer.Ordinal);
        }).ToList();
        KnnRows = positives.Concat(negatives).ToArray();
        Positive = KnnRows.Select(i => Has(dataset[i], options.PositiveLabel)).ToArray();
        MaskNames = dataset.SelectMany(r => r.Masks.Keys).Distinct(StringComparer.Ordinal).OrderBy(k => k, StringComparer.Ordinal).ToList();
        MaskRows = Enumerable.Range(0, dataset.Count).Where(i => dataset[i].Masks.Count > 0).ToArray();
        UsedRows = KnnRows.Concat(MaskRows).Distinct().Order().ToArray();
    }

    /// <summary>Reads a labels.csv (or a folder holding one) in the generic layout; images are loaded later, per size.</summary>
    /// <exception cref="FileNotFoundException">No such file or folder, or a folder without labels.csv (the message names the path).</exception>
    /// <exception cref="DatasetFormatException">A malformed row.</exception>
    /// <exception cref="InvalidDataException">The CSV has no rows.</exception>
    public static RealDataSample Load(string path, RealDataCheckOptions? options = null)
    {
        options ??= new RealDataCheckOptions();
        options.Validate();
        var csv = GenericCsvLoader.FindCsv(path);
        var ds = GenericCsvLoader.Load(csv, new LoadOptions { AllowOutsideRoot = options.AllowOutsideRoot });
        if (ds.Count == 0) throw new InvalidDataException($"{csv}: no rows; expected images in the generic layout (file, dataset, labels, mask, ...)");
        return new RealDataSample(ds, csv, options);
    }

    /// <summary>The whole dataset.</summary>
    public CxrDataset Dataset { get; }
    /// <summary>The options the rows were selected with (positive label, normal labels, which datasets).</summary>
    public RealDataCheckOptions Options { get; }
    /// <summary>The labels.csv read.</summary>
    public string CsvPath { get; }
    /// <summary>"name (N images, path)".</summary>
    public string Name => $"{Dataset.Name} ({Dataset.Count} images, {CsvPath})";
    /// <summary>Datasets the positive rows come from (where negatives are taken by default).</summary>
    public IReadOnlyList<string> PositiveDatasets { get; }
    /// <summary>Dataset row indices of the k-NN check: positives first, then negatives.</summary>
    public IReadOnlyList<int> KnnRows { get; }
    /// <summary>Whether each of <see cref="KnnRows"/> is positive.</summary>
    public IReadOnlyList<bool> Positive { get; }
    /// <summary>Mask names present in the CSV ("mask" for the <c>mask</c> column).</summary>
    public IReadOnlyList<string> MaskNames { get; }
    /// <summary>Dataset row indices of rows with at least one mask.</summary>
    public IReadOnlyList<int> MaskRows { get; }
    /// <summary>Every row either check uses, ascending: the rows whose images are loaded.</summary>
    public IReadOnlyList<int> UsedRows { get; }

    /// <summary>
    /// The used rows' images (<see cref="UsedRows"/> order, (N, 1, S, S) in [-1, 1]) and masks ((N, S, S) per name),
    /// loaded at side <paramref name="size"/> on first use and kept for the sample's lifetime.
    /// </summary>
    public (Tensor Images, IReadOnlyDictionary<string, ProbeMask> Masks) At(int size)
    {
        if (_bySize.TryGetValue(size, out var hit)) return (hit.Images, hit.Masks);
        if (UsedRows.Count == 0) throw new RoentGen.Platform.RunStateException($"{CsvPath}: no row is used by the check (no positives, negatives or masks)");
        var rows = UsedRows.Select(i => Dataset[i]).ToList();
        // Cached across dispose scopes: the caller's per-encoder scope must not free them.
        var images = ImageTensors.Stack(rows.Select(r => Dataset.LoadImage(r, size))).DetachFromDisposeScope();
        var masks = new Dictionary<string, ProbeMask>(StringComparer.Ordinal);
        foreach (var name in MaskNames)
            masks[name] = new ProbeMask(ProbeData.StackMasks(rows.Select(r => r.Masks.ContainsKey(name) ? Dataset.LoadMask(r, name, size) : null).ToList(), size).DetachFromDisposeScope(),
                rows.Select(r => r.Masks.ContainsKey(name)).ToArray());
        _bySize[size] = (images, masks);
        return (images, masks);
    }

    /// <summary>Frees the cached tensors.</summary>
    public void Dispose()
    {
        foreach (var (images, masks) in _bySize.Values)
        {
            images.Dispose();
            foreach (var m in masks.Values) m.Masks.Dispose();
        }
        _bySize.Clear();
    }
}

/// <summary>The leave-one-out k-NN check of one encoder.</summary>
/// <param name="PositiveLabel">The positive class (e.g. "tuberculosis").</param>
/// <param name="Positives">Positive rows.</param>
/// <param name="Negatives">Negative rows.</param>
/// <param name="K">Neighbours asked for.</param>
/// <param name="Auc">ROC AUC of the leave-one-out scores over every scored row.</param>
/// <param name="AucStandardError">Hanley–McNeil (1982) standard error of <paramref name="Auc"/>: how far it may move by chance at these counts.</param>
/// <param name="Unscored">Rows left out of the AUC because every other row belongs to the same patient.</param>
/// <param name="Datasets">Datasets the compared rows come from.</param>
public sealed record KnnCheckResult(string PositiveLabel, int Positives, int Negatives, int K, double Auc, double AucStandardError, int Unscored,
    IReadOnlyList<string> Datasets);

/// <summary>Test Dice of one cross-validation fold.</summary>
/// <param name="Fold">1-based fold number.</param>
/// <param name="TrainImages">Images the head trained on.</param>
/// <param name="TestImages">Held-out images.</param>
/// <param name="Dice">Dice per structure, pooled over the fold's test images (NaN when undefined).</param>
/// <param name="MeanDice">Mean over the structures with a finite Dice.</param>
public sealed record FoldDice(int Fold, int TrainImages, int TestImages, IReadOnlyDictionary<string, double> Dice, double MeanDice);

/// <summary>The cross-validated segmentation check of one encoder.</summary>
/// <param name="Images">Images with a mask.</param>
/// <param name="Patients">Patients among them (folds never split a patient).</param>
/// <param name="Structures">Mask names segmented.</param>
/// <param name="Folds">Per-fold results.</param>
public sealed record SegmentationCheckResult(int Images, int Patients, IReadOnlyList<string> Structures, IReadOnlyList<FoldDice> Folds)
{
    /// <summary>Mean of the folds' mean Dice.</summary>
    public double MeanDice => ProbeMetrics.MeanFinite(Folds.Select(f => f.MeanDice));

    /// <summary>Sample standard deviation of the folds' mean Dice (NaN with fewer than two finite folds).</summary>
    public double DiceStandardDeviation
    {
        get
        {
            var v = Folds.Select(f => f.MeanDice).Where(double.IsFinite).ToList();
            if (v.Count < 2) return double.NaN;
            double m = v.Average();
            return Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Count - 1));
        }
    }

    /// <summary>Mean over folds of one structure's Dice.</summary>
    public double StructureDice(string structure) => ProbeMetrics.MeanFinite(Folds.Select(f => f.Dice.TryGetValue(structure, out var d) ? d : double.NaN));
}

/// <summary>What the real-data check measured for one encoder.</summary>
/// <param name="Encoder">Encoder name (a table column).</param>
/// <param name="Knn">The k-NN check, or null when it could not run (see <paramref name="NotAvailable"/>).</param>
/// <param name="Segmentation">The segmentation check, or null when it could not run.</param>
/// <param name="NotAvailable">Checks that could not run ("knn", "segmentation"), with the reason.</param>
/// <param name="Seconds">Wall time for this encoder (encoding included, image loading excluded when cached).</param>
public sealed record RealDataEncoderResult(string Encoder, KnnCheckResult? Knn, SegmentationCheckResult? Segmentation,
    IReadOnlyDictionary<string, string> NotAvailable, double Seconds)
{
    /// <summary>
    /// Every number as (probe, metric, value): knn/auc:LABEL, knn/auc_se:LABEL, knn/positives, knn/negatives;
    /// segmentation/mean_dice, segmentation/dice_sd (across folds), segmentation/dice:STRUCTURE, segmentation/foldI_dice,
    /// segmentation/images.
    /// </summary>
    public IReadOnlyList<ProbeMetric> Metrics
    {
        get
        {
            var m = new List<ProbeMetric>();
            if (Knn is not null)
            {
                m.Add(new("knn", "auc:" + Knn.PositiveLabel, Knn.Auc));
                m.Add(new("knn", "auc_se:" + Knn.PositiveLabel, Knn.AucStandardError));
                m.Add(new("knn", "positives", Knn.Positives));
                m.Add(new("knn", "negatives", Knn.Negatives));
            }
            if (Segmentation is not null)
            {
                m.Add(new("segmentation", "mean_dice", Segmentation.MeanDice));
                m.Add(new("segmentation", "dice_sd", Segmentation.DiceStandardDeviation));
                if (Segmentation.Structures.Count > 1)
                    foreach (var s in Segmentation.Structures) m.Add(new("segmentation", "dice:" + s, Segmentation.StructureDice(s)));
                foreach (var f in Segmentation.Folds) m.Add(new("segmentation", $"fold{f.Fold}_dice", f.MeanDice));
                m.Add(new("segmentation", "images", Segmentation.Images));
            }
            return m;
        }
    }

    /// <summary>The value of a metric key ("knn/auc:tuberculosis"), NaN when absent.</summary>
    public double this[string key] => Metrics.FirstOrDefault(x => x.Key == key)?.Value ?? double.NaN;

    /// <summary>Whether a metric is a score that a difference to random init makes sense for (AUC and Dice values; not counts or spreads).</summary>
    public static bool IsScore(ProbeMetric metric) =>
        metric.Metric.StartsWith("auc:", StringComparison.Ordinal) || metric.Metric.StartsWith("dice:", StringComparison.Ordinal)
        || metric.Metric.EndsWith("_dice", StringComparison.Ordinal);
}

/// <summary>
/// The real-data check of several encoders on one labels.csv: per-encoder results, a table with each encoder's
/// difference to random init, JSON and a chart.
/// </summary>
public sealed class RealDataCheckResult
{
    /// <summary>Name of the encoder that differences are taken to.</summary>
    public const string Baseline = "random";

    /// <summary>Creates a result.</summary>
    public RealDataCheckResult(string data, RealDataCheckOptions options, IReadOnlyList<RealDataEncoderResult> encoders)
    {
        Data = data; Options = options; Encoders = encoders;
    }

    /// <summary>The data checked.</summary>
    public string Data { get; }
    /// <summary>The settings.</summary>
    public RealDataCheckOptions Options { get; }
    /// <summary>Per-encoder results, in the order given.</summary>
    public IReadOnlyList<RealDataEncoderResult> Encoders { get; }

    /// <summary>The result of one encoder.</summary>
    /// <exception cref="KeyNotFoundException">No such encoder.</exception>
    public RealDataEncoderResult this[string encoder] => Encoders.FirstOrDefault(e => e.Encoder == encoder)
        ?? throw new KeyNotFoundException($"no encoder '{encoder}' in the real-data check; it has {string.Join(", ", Encoders.Select(e => e.Encoder))}");

    /// <summary>The random-init encoder's result, or null when none was checked.</summary>
    public RealDataEncoderResult? Random => Encoders.FirstOrDefault(e => e.Encoder == Baseline);

    /// <summary>
    /// Transfer over random init: for every other encoder and every score metric (<see cref="RealDataEncoderResult.IsScore"/>),
    /// the encoder's value minus the random encoder's. Empty when no encoder is named "random".
    /// </summary>
    public IReadOnlyList<(string Encoder, string Metric, double Difference)> Transfer()
    {
        if (Random is not { } random) return [];
        return Encoders.Where(e => e.Encoder != Baseline)
            .SelectMany(e => e.Metrics.Where(RealDataEncoderResult.IsScore).Select(m => (e.Encoder, m.Key, m.Value - random[m.Key])))
            .ToList();
    }

    /// <summary>
    /// One row per metric key (first-seen order), one column per encoder; with <paramref name="transfer"/>, then one
    /// "NAME − random" column per other encoder holding its difference to random init on score metrics (null on counts
    /// and spreads; no such columns when no encoder is named "random"). A check that could not run keeps a row
    /// ("knn/", "segmentation/") and a last "not available" column gives the reason per encoder; that column is left
    /// out when every check ran.
    /// </summary>
    public DataFrame ToDataFrame(bool transfer = true)
    {
        var keys = new List<string>();
        foreach (var e in Encoders)
            foreach (var m in e.Metrics)
                if (!keys.Contains(m.Key)) keys.Add(m.Key);
        foreach (var e in Encoders)
            foreach (var probe in e.NotAvailable.Keys)
                if (!keys.Any(k => k.StartsWith(probe + "/", StringComparison.Ordinal))) keys.Add(probe + "/");
        var cols = new List<DataFrameColumn> { new StringDataFrameColumn("metric", keys) };
        foreach (var e in Encoders) cols.Add(new DoubleDataFrameColumn(e.Encoder, keys.Select(k => Nullable(e[k]))));
        if (transfer) cols.AddRange(TransferColumns(keys));
        if (Encoders.Any(e => e.NotAvailable.Count > 0))
            cols.Add(new StringDataFrameColumn("not available", keys.Select(k =>
            {
                var probe = k[..k.IndexOf('/')];
                var why = Encoders.Where(e => e.NotAvailable.ContainsKey(probe)).Select(e => $"{e.Encoder}: {e.NotAvailable[probe]}").ToList();
                return why.Count == 0 ? null : string.Join("; ", why);
            })));
        return new DataFrame(cols);
    }

    /// <summary>
    /// Transfer over random init as a table: one row per score metric, one "NAME − random" column per other encoder.
    /// Only the metric column when no encoder is named "random".
    /// </summary>
    public DataFrame TransferTable()
    {
        var keys = new List<string>();
        foreach (var e in Encoders)
            foreach (var m in e.Metrics.Where(RealDataEncoderResult.IsScore))
                if (!keys.Contains(m.Key)) keys.Add(m.Key);
        return new DataFrame([new StringDataFrameColumn("metric", keys), .. TransferColumns(keys)]);
    }

    private IEnumerable<DataFrameColumn> TransferColumns(IReadOnlyList<string> keys)
    {
        if (Random is not { } random) yield break;
        var scores = Encoders.SelectMany(e => e.Metrics).Where(RealDataEncoderResult.IsScore).Select(m => m.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var e in Encoders.Where(e => e.Encoder != Baseline))
            yield return new DoubleDataFrameColumn($"{e.Encoder} − {Baseline}", keys.Select(k => scores.Contains(k) ? Nullable(e[k] - random[k]) : null));
    }

    private static double? Nullable(double v) => double.IsFinite(v) ? v : null;

    /// <summary>A few sentences: what was compared, each encoder's headline numbers and its difference to random init.</summary>
    public string Summary()
    {
        var lines = new List<string>();
        string label = Options.PositiveLabel;
        foreach (var e in Encoders)
        {
            var parts = new List<string>();
            if (e.Knn is { } k)
                parts.Add($"{label} vs normal k-NN AUC {Fmt(k.Auc)} ± {Fmt(k.AucStandardError)} ({k.Positives} vs {k.Negatives}, leave-one-out, k={k.K})");
            else if (e.NotAvailable.TryGetValue("knn", out var w)) parts.Add($"k-NN not available ({w})");
            if (e.Segmentation is { } s)
                parts.Add($"Dice {Fmt(s.MeanDice)} ± {Fmt(s.DiceStandardDeviation)} ({s.Images} masks, {s.Folds.Count}-fold)");
            else if (e.NotAvailable.TryGetValue("segmentation", out var w)) parts.Add($"segmentation not available ({w})");
            if (Random is { } r && e.Encoder != Baseline)
            {
                var diff = new List<string>();
                if (e.Knn is not null && r.Knn is not null) diff.Add($"AUC {Signed(e.Knn.Auc - r.Knn.Auc)}");
                if (e.Segmentation is not null && r.Segmentation is not null) diff.Add($"Dice {Signed(e.Segmentation.MeanDice - r.Segmentation.MeanDice)}");
                if (diff.Count > 0) parts.Add("vs random init: " + string.Join(", ", diff));
            }
            lines.Add($"{e.Encoder}: {string.Join("; ", parts)}.");
        }
        return string.Join(Environment.NewLine, lines);
    }

    private static string Fmt(double v) => double.IsFinite(v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "n/a";
    private static string Signed(double v) => double.IsFinite(v) ? v.ToString("+0.000;-0.000;0.000", CultureInfo.InvariantCulture) : "n/a";

    /// <summary>
    /// JSON: data, options, per encoder (seconds, not_available, knn, segmentation with its folds, and the flat
    /// metrics), and the transfer over random init. NaN is written as null.
    /// </summary>
    public string ToJson()
    {
        static JsonNode? N(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
        JsonObject Encoder(RealDataEncoderResult e) => new()
        {
            ["encoder"] = e.Encoder,
            ["seconds"] = Math.Round(e.Seconds, 2),
            ["not_available"] = new JsonObject(e.NotAvailable.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
            ["knn"] = e.Knn is not { } k ? null : new JsonObject
            {
                ["positive_label"] = k.PositiveLabel, ["positives"] = k.Positives, ["negatives"] = k.Negatives, ["k"] = k.K,
                ["auc"] = N(k.Auc), ["auc_se"] = N(k.AucStandardError), ["unscored"] = k.Unscored,
                ["datasets"] = new JsonArray(k.Datasets.Select(d => (JsonNode)JsonValue.Create(d)!).ToArray()),
            },
            ["segmentation"] = e.Segmentation is not { } s ? null : new JsonObject
            {
                ["images"] = s.Images, ["patients"] = s.Patients,
                ["structures"] = new JsonArray(s.Structures.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray()),
                ["mean_dice"] = N(s.MeanDice), ["dice_sd"] = N(s.DiceStandardDeviation),
                ["folds"] = new JsonArray(s.Folds.Select(f => (JsonNode)new JsonObject
                {
                    ["fold"] = f.Fold, ["train_images"] = f.TrainImages, ["test_images"] = f.TestImages,
                    ["dice"] = new JsonObject(f.Dice.Select(kv => KeyValuePair.Create(kv.Key, N(kv.Value)))),
                    ["mean_dice"] = N(f.MeanDice),
                }).ToArray()),
            },
            ["metrics"] = new JsonArray(e.Metrics.Select(m => (JsonNode)new JsonObject { ["probe"] = m.Probe, ["metric"] = m.Metric, ["value"] = N(m.Value) }).ToArray()),
        };
        var root = new JsonObject
        {
            ["data"] = Data,
            ["options"] = JsonNode.Parse(Options.ToJson()),
            ["encoders"] = new JsonArray(Encoders.Select(e => (JsonNode)Encoder(e)).ToArray()),
            ["transfer_vs_random"] = new JsonArray(Transfer().Select(t => (JsonNode)new JsonObject
                { ["encoder"] = t.Encoder, ["metric"] = t.Metric, ["difference"] = N(t.Difference) }).ToArray()),
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

    /// <summary>Reads a file written by <see cref="Save"/>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a real-data check result (the message names the file and what is missing).</exception>
    public static RealDataCheckResult Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"real-data check file not found: {path}", path);
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        if (root?["options"] is not JsonObject opt || root["encoders"] is not JsonArray encoders || root["data"] is null)
            throw new InvalidDataException($"{path}: not a real-data check result (needs 'data', 'options' and 'encoders')");
        try
        {
            var options = JsonSerializer.Deserialize<RealDataCheckOptions>(opt.ToJsonString(), SafeTensors.ConfigJsonOptions)!;
            static double D(JsonNode? n) => n is null ? double.NaN : n.GetValue<double>();
            var list = encoders.Select(e =>
            {
                var na = (e!["not_available"] as JsonObject)?.ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<string>() ?? "") ?? new Dictionary<string, string>();
                KnnCheckResult? knn = e["knn"] is JsonObject k
                    ? new KnnCheckResult(k["positive_label"]!.GetValue<string>(), k["positives"]!.GetValue<int>(), k["negatives"]!.GetValue<int>(), k["k"]!.GetValue<int>(),
                        D(k["auc"]), D(k["auc_se"]), k["unscored"]!.GetValue<int>(), (k["datasets"] as JsonArray ?? new JsonArray()).Select(d => d!.GetValue<string>()).ToList())
                    : null;
                SegmentationCheckResult? seg = e["segmentation"] is JsonObject s
                    ? new SegmentationCheckResult(s["images"]!.GetValue<int>(), s["patients"]!.GetValue<int>(),
                        (s["structures"] as JsonArray ?? new JsonArray()).Select(x => x!.GetValue<string>()).ToList(),
                        (s["folds"] as JsonArray ?? new JsonArray()).Select(f => new FoldDice(f!["fold"]!.GetValue<int>(), f["train_images"]!.GetValue<int>(), f["test_images"]!.GetValue<int>(),
                            (f["dice"] as JsonObject ?? new JsonObject()).ToDictionary(kv => kv.Key, kv => D(kv.Value)), D(f["mean_dice"]))).ToList())
                    : null;
                return new RealDataEncoderResult(e["encoder"]!.GetValue<string>(), knn, seg, na, D(e["seconds"]));
            }).ToList();
            return new RealDataCheckResult(root["data"]!.GetValue<string>(), options, list);
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or JsonException)
        {
            throw new InvalidDataException($"{path}: a real-data check result with a missing or mistyped field: {e.Message}", e);
        }
    }

    /// <summary>Grouped bars of the headline scores (k-NN AUC, mean Dice), one colour per encoder.</summary>
    public Figure Chart(string? title = null)
    {
        string[] headline = ["knn/auc:" + Options.PositiveLabel, "segmentation/mean_dice"];
        title ??= $"real-data check: {Options.PositiveLabel} vs normal k-NN AUC and cross-validated Dice";
        return GroupedBars.Of(title, Encoders.Select(e => (e.Encoder, (IReadOnlyList<string>)headline, (Func<string, double>)(k => e[k]))), "score (AUC, Dice)");
    }
}

/// <summary>
/// Probes frozen encoders on a small real sample where a single train/test split would be too noisy to read:
/// <list type="number">
/// <item><b>k-NN, positive vs normal</b> (default tuberculosis; see <see cref="RealDataCheckOptions"/> for which rows
/// count): every compared row is scored leave-one-out by its k most cosine-similar other rows (L2-normalised CLS
/// features; rows of the same patient excluded), each voting with weight exp(similarity / T); the score is the weighted
/// share of positive votes, each vote divided by its class's count among the rows the query could see (see
/// <see cref="LeaveOneOutKnn"/> for why). One ROC AUC over all rows, with its Hanley–McNeil standard error.</item>
/// <item><b>Segmentation Dice</b>: K-fold cross-validation grouped by patient over the rows that have a mask; each fold
/// trains <see cref="SegmentationProbe"/>'s linear head on the patch tokens of the other folds. Mean and per-fold Dice.</item>
/// </list>
/// A check that cannot run (no positives, fewer than two rows of a class, no masks, masks of a single patient) is
/// recorded with its reason in <see cref="RealDataEncoderResult.NotAvailable"/>. An encoder named "random" is the
/// baseline that the others' transfer is measured against.
/// </summary>
public static class RealDataCheck
{
    /// <summary>Loads <paramref name="data"/> once and checks every encoder on it.</summary>
    /// <param name="encoders">Encoders to check (names must be unique); name one "random" to get differences to random init.</param>
    /// <param name="data">A labels.csv in the generic layout, or its folder.</param>
    /// <param name="options">Settings (default: <see cref="RealDataCheckOptions"/>).</param>
    /// <param name="log">Progress lines (default: none).</param>
    /// <exception cref="ArgumentException">No encoders, repeated names, or bad options.</exception>
    /// <exception cref="FileNotFoundException">No such file or folder (the message names the path).</exception>
    /// <exception cref="DatasetFormatException">A malformed row, or an image or mask that cannot be read.</exception>
    public static RealDataCheckResult Run(IReadOnlyList<IImageEncoder> encoders, string data, RealDataCheckOptions? options = null, Action<string>? log = null)
    {
        options ??= new RealDataCheckOptions();
        options.Validate();
        if (encoders.Count == 0) throw new ArgumentException("the real-data check needs at least one encoder");
        var dup = encoders.GroupBy(e => e.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"encoder name '{dup.Key}' is given {dup.Count()} times; each encoder needs its own name");
        log ??= _ => { };
        using var sample = RealDataSample.Load(data, options);
        log($"{sample.Name}: {sample.Positive.Count(p => p)} '{options.PositiveLabel}' rows vs {sample.Positive.Count(p => !p)} normal rows"
            + (sample.PositiveDatasets.Count > 0 ? $" (datasets {string.Join(", ", sample.PositiveDatasets)}{(options.NegativesFromAllDatasets ? " + negatives from all" : "")})" : "")
            + $"; {sample.MaskRows.Count} rows with a mask ({(sample.MaskNames.Count == 0 ? "none" : string.Join(", ", sample.MaskNames))})");
        var results = encoders.Select(e => Check(e, sample, options, log)).ToList();
        return new RealDataCheckResult(sample.Name, options, results);
    }

    /// <summary>Checks one encoder on a loaded sample (its images are loaded at the encoder's input size once per size).</summary>
    /// <param name="encoder">The encoder.</param>
    /// <param name="sample">The rows, selected by the options the sample was loaded with.</param>
    /// <param name="options">k, folds, epochs, seed; its row selection must be the sample's.</param>
    /// <param name="log">Progress lines (default: none).</param>
    /// <exception cref="ArgumentException">Bad options, or options that select rows differently from the sample's.</exception>
    public static RealDataEncoderResult Check(IImageEncoder encoder, RealDataSample sample, RealDataCheckOptions options, Action<string>? log = null)
    {
        options.Validate();
        var o = sample.Options;
        if (!string.Equals(o.PositiveLabel, options.PositiveLabel, StringComparison.OrdinalIgnoreCase) || o.NegativesFromAllDatasets != options.NegativesFromAllDatasets
            || !o.NormalLabels.SequenceEqual(options.NormalLabels, StringComparer.OrdinalIgnoreCase))
            throw new ArgumentException($"the sample's rows were selected for '{o.PositiveLabel}' (normals {string.Join("/", o.NormalLabels)}, all datasets: {o.NegativesFromAllDatasets}); "
                                        + $"load it with the options passed here ('{options.PositiveLabel}', normals {string.Join("/", options.NormalLabels)}, all datasets: {options.NegativesFromAllDatasets})");
        log ??= _ => { };
        var watch = Stopwatch.StartNew();
        var notAvailable = new Dictionary<string, string>(StringComparer.Ordinal);
        var knnWhy = KnnUnavailable(sample, options);
        var segWhy = SegmentationUnavailable(sample);
        if (knnWhy is not null) notAvailable["knn"] = knnWhy;
        if (segWhy is not null) notAvailable["segmentation"] = segWhy;
        if (knnWhy is not null && segWhy is not null)
        {
            log($"{encoder.Name}: nothing to check ({knnWhy}; {segWhy})");
            return new RealDataEncoderResult(encoder.Name, null, null, notAvailable, watch.Elapsed.TotalSeconds);
        }

        using var scope = NewDisposeScope();
        var (images, masks) = sample.At(encoder.InputSize);
        log($"{encoder.Name}: encoding {images.shape[0]} images at {encoder.InputSize} px");
        var features = EncodedFeatures.Extract(encoder, images, options.BatchSize);
        // Position of each dataset row in UsedRows (the rows of the feature tensors).
        var position = sample.UsedRows.Select((row, i) => (row, i)).ToDictionary(x => x.row, x => x.i);

        KnnCheckResult? knn = null;
        if (knnWhy is null)
        {
            knn = LeaveOneOutKnn(Rows(features.Cls, sample.KnnRows.Select(r => position[r])), sample.Positive,
                sample.KnnRows.Select(r => sample.Dataset[r].SplitKey).ToList(), options,
                sample.KnnRows.Select(r => sample.Dataset[r].Dataset).Distinct(StringComparer.Ordinal).OrderBy(d => d, StringComparer.Ordinal).ToList());
            if (knn.Positives - knn.Unscored < 1 || !double.IsFinite(knn.Auc))
            {
                notAvailable["knn"] = $"every row of one class has only same-patient neighbours ({knn.Unscored} rows unscored)";
                knn = null;
            }
            else log($"{encoder.Name}: {options.PositiveLabel} vs normal leave-one-out k-NN AUC {knn.Auc:0.000} ± {knn.AucStandardError:0.000} ({knn.Positives} vs {knn.Negatives})");
        }

        SegmentationCheckResult? seg = null;
        if (segWhy is null)
        {
            try
            {
                seg = CrossValidatedSegmentation(features, masks, sample, position, options, log, encoder.Name);
                log($"{encoder.Name}: {seg.Folds.Count}-fold Dice {seg.MeanDice:0.000} ± {seg.DiceStandardDeviation:0.000} ({seg.Images} images)");
            }
            catch (ArgumentException e)
            {
                notAvailable["segmentation"] = e.Message;
                log($"{encoder.Name}: segmentation not available: {e.Message}");
            }
        }
        return new RealDataEncoderResult(encoder.Name, knn, seg, notAvailable, watch.Elapsed.TotalSeconds);
    }

    private static string? KnnUnavailable(RealDataSample s, RealDataCheckOptions o)
    {
        int pos = s.Positive.Count(p => p), neg = s.Positive.Count - pos;
        if (pos == 0) return $"no row has the source label '{o.PositiveLabel}'";
        if (pos < 2 || neg < 2)
            return $"needs at least 2 '{o.PositiveLabel}' and 2 normal rows, found {pos} and {neg}"
                   + (o.NegativesFromAllDatasets ? "" : $" (normals taken from {string.Join(", ", s.PositiveDatasets)} only)");
        return null;
    }

    private static string? SegmentationUnavailable(RealDataSample s)
    {
        if (s.MaskRows.Count == 0) return "no row has a mask (mask or masks column)";
        int patients = s.MaskRows.Select(r => s.Dataset[r].SplitKey).Distinct(StringComparer.Ordinal).Count();
        if (patients < 2) return $"masks of {patients} patient only; cross-validation needs at least 2";
        return null;
    }

    private static Tensor Rows(Tensor x, IEnumerable<int> rows) => x.index_select(0, tensor(rows.Select(i => (long)i).ToArray()));

    /// <summary>
    /// Leave-one-out weighted k-NN on (M, D) features: for each row, the k most cosine-similar other rows of other
    /// patients vote with weight exp((s − s_max) / T) (the shift keeps exp finite and changes no ratio). Each vote is
    /// divided by the number of rows of its class that the query could see, and the score is the positive share of
    /// these balanced votes. Without that, leaving the query out (one row fewer of its own class) biases every score
    /// against the query's own class: with near-uniform weights (an uninformative encoder) and k near M, every
    /// positive would score below every negative (AUC 0 instead of 0.5).
    /// </summary>
    internal static KnnCheckResult LeaveOneOutKnn(Tensor features, IReadOnlyList<bool> positive, IReadOnlyList<string> patients,
        RealDataCheckOptions options, IReadOnlyList<string> datasets)
    {
        int m = positive.Count;
        if (features.shape[0] != m || patients.Count != m)
            throw new ArgumentException($"k-NN: {features.shape[0]} feature rows, {positive.Count} labels and {patients.Count} patient keys must agree");
        float[] sim;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var f = nn.functional.normalize(features.to_type(ScalarType.Float32), p: 2, dim: 1);
            sim = matmul(f, f.t()).contiguous().data<float>().ToArray();   // (M, M) row-major
        }
        var scores = new double[m];
        var scored = new bool[m];
        for (int i = 0; i < m; i++)
        {
            var pool = Enumerable.Range(0, m).Where(j => j != i && !string.Equals(patients[j], patients[i], StringComparison.Ordinal)).ToList();
            if (pool.Count == 0) continue;
            int poolPos = pool.Count(j => positive[j]), poolNeg = pool.Count - poolPos;
            var neighbours = pool.OrderByDescending(j => sim[(long)i * m + j]).ThenBy(j => j).Take(options.K).ToList();
            double top = sim[(long)i * m + neighbours[0]], wPos = 0, wNeg = 0;
            foreach (var j in neighbours)
            {
                double w = Math.Exp((sim[(long)i * m + j] - top) / options.Temperature);
                if (positive[j]) wPos += w; else wNeg += w;
            }
            // Divided once per class (not per vote), so that equal balanced shares come out exactly equal.
            double pos = poolPos == 0 ? 0 : wPos / poolPos, neg = poolNeg == 0 ? 0 : wNeg / poolNeg;
            scores[i] = pos / (pos + neg);
            scored[i] = true;
        }
        var idx = Enumerable.Range(0, m).Where(i => scored[i]).ToList();
        var y = idx.Select(i => positive[i]).ToList();
        double auc = ProbeMetrics.Auc(idx.Select(i => scores[i]).ToList(), y);
        int nPos = positive.Count(p => p);
        return new KnnCheckResult(options.PositiveLabel, nPos, m - nPos, options.K, auc,
            AucStandardError(auc, y.Count(v => v), y.Count(v => !v)), m - idx.Count, datasets);
    }

    /// <summary>Hanley and McNeil (1982) standard error of an AUC: see <see cref="HanleyMcNeil.StandardError"/>. NaN when the AUC is undefined.</summary>
    public static double AucStandardError(double auc, int positives, int negatives) => HanleyMcNeil.StandardError(auc, positives, negatives);

    // Patients (dataset/patient keys) of the masked rows, ordered by a seeded hash, dealt round-robin into folds.
    private static SegmentationCheckResult CrossValidatedSegmentation(EncodedFeatures features, IReadOnlyDictionary<string, ProbeMask> masks,
        RealDataSample sample, IReadOnlyDictionary<int, int> position, RealDataCheckOptions options, Action<string> log, string encoder)
    {
        var rows = sample.MaskRows;
        var keys = rows.Select(r => sample.Dataset[r].SplitKey).ToList();
        var patients = keys.Distinct(StringComparer.Ordinal).OrderBy(k => PatientSplit.Uniform(k, options.Seed)).ThenBy(k => k, StringComparer.Ordinal).ToList();
        int folds = Math.Min(options.Folds, patients.Count);
        var foldOf = patients.Select((p, i) => (p, i % folds)).ToDictionary(x => x.p, x => x.Item2, StringComparer.Ordinal);
        var structures = sample.MaskNames.ToList();
        var results = new List<FoldDice>();
        for (int fold = 0; fold < folds; fold++)
        {
            using var scope = NewDisposeScope();
            var test = Enumerable.Range(0, rows.Count).Where(i => foldOf[keys[i]] == fold).Select(i => position[rows[i]]).ToArray();
            var train = Enumerable.Range(0, rows.Count).Where(i => foldOf[keys[i]] != fold).Select(i => position[rows[i]]).ToArray();
            EncodedFeatures Sub(int[] r) => new(Rows(features.Cls, r), Rows(features.Patches, r), features.GridH, features.GridW);
            Dictionary<string, ProbeMask> SubMasks(int[] r) => structures.ToDictionary(s => s,
                s => new ProbeMask(Rows(masks[s].Masks, r), r.Select(i => masks[s].Present[i]).ToArray()), StringComparer.Ordinal);
            var r = SegmentationProbe.Train(Sub(train), SubMasks(train), Sub(test), SubMasks(test), new SegmentationProbeOptions
            {
                Epochs = options.SegmentationEpochs, LearningRate = options.SegmentationLearningRate, Seed = options.Seed + fold, BatchSize = 32,
            });
            var dice = r.PerStructure.ToDictionary(d => d.Structure, d => d.Dice, StringComparer.Ordinal);
            results.Add(new FoldDice(fold + 1, train.Length, test.Length, dice, r.MeanDice));
            log($"{encoder}: fold {fold + 1}/{folds}: {train.Length} train, {test.Length} test, Dice {r.MeanDice:0.000}");
        }
        return new SegmentationCheckResult(rows.Count, patients.Count, structures, results);
    }
}
