using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.GeneralDomain;
using RoentGen.Data.Phantoms;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>Which part of a report becomes the training prompt.</summary>
public enum PromptSource
{
    /// <summary>The impression followed by the whole findings section (cut at the token limit).</summary>
    ImpressionAndFindings,
    /// <summary>The impression only, as RoentGen (Chambon et al. 2022) conditioned on MIMIC-CXR impressions.</summary>
    Impression,
    /// <summary>
    /// The impression followed by the findings sentences that mention something as present or possible (read by the
    /// report labeler): the negated boilerplate ("No pneumothorax.") that names every finding in nearly every report is
    /// left out, so a finding's words in a prompt mean the finding is there.
    /// </summary>
    ImpressionAndPositiveFindings,
}

/// <summary>The training data of an experiment: images and the report text used as prompts.</summary>
/// <param name="Images">(N, 1, S, S) in [−1, 1].</param>
/// <param name="Prompts">One prompt per image.</param>
public sealed record LdmTrainingData(Tensor Images, IReadOnlyList<string> Prompts)
{
    /// <summary>What the data is, in words (pinned with a run's config, so a run folder refuses other data).</summary>
    public string Source { get; init; } = "unnamed";

    /// <summary>
    /// Per image, the union of its finding masks (<see cref="FindingMaskNames"/>), (N, 1, S, S) in {0, 1}; null
    /// when not loaded or when no record has one. Read only when <see cref="LdmExperimentConfig.FindingLossWeight"/> is set.
    /// </summary>
    public Tensor? FindingMasks { get; init; }

    /// <summary>
    /// The masks of a record that show its findings: every mask but the anatomy's, and the heart's when the record is
    /// labelled with cardiomegaly or an enlarged cardiomediastinum (positive or uncertain), where the heart's outline is the finding.
    /// </summary>
    public static IEnumerable<string> FindingMaskNames(CxrRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        bool heartFinding = record.Labels[Observation.Cardiomegaly] is Mention.Positive or Mention.Uncertain
            || record.Labels[Observation.EnlargedCardiomediastinum] is Mention.Positive or Mention.Uncertain;
        return record.Masks.Keys.Where(k => !AnatomyMasks.Contains(k) || (heartFinding && string.Equals(k, "heart", StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>
    /// <paramref name="cfg"/> as this data can train it: unchanged, or, when it asks for the finding-weighted loss and the
    /// data has no finding masks (a labels.csv folder without finding mask columns, the general-domain scenes), with
    /// <see cref="LdmExperimentConfig.FindingLossWeight"/> off, said through <paramref name="log"/>. The saved
    /// experiment.json then records the loss the run really used.
    /// </summary>
    public LdmExperimentConfig Fit(LdmExperimentConfig cfg, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        if (cfg.FindingLossWeight is not double w || FindingMasks is not null) return cfg;
        log?.Invoke($"the training data ({Source}) has no finding masks: the finding-weighted loss (FindingLossWeight {w}) is off for this run");
        return cfg with { FindingLossWeight = null };
    }

    /// <summary>Masks of normal anatomy, not of findings: left out of <see cref="FindingMasks"/> (the heart's unless it is enlarged, <see cref="FindingMaskNames"/>).</summary>
    /// <remarks>A labels.csv's single <c>mask</c> column is a lung mask (data/README.md), so "mask" is anatomy too.</remarks>
    public static readonly IReadOnlySet<string> AnatomyMasks = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "lungs", "heart", "left_lung", "right_lung", "mask" };

    /// <summary>The word that names the built-in phantom world in <see cref="From"/> (and <c>--data</c>).</summary>
    public const string Phantoms = "phantoms";

    /// <summary>
    /// The data an experiment trains on: <see cref="Phantoms"/> (the config's phantoms, <see cref="FromPhantoms(LdmExperimentConfig)"/>)
    /// or a labels.csv, or a folder holding one (every record, <see cref="FromRecords"/> at the config's image size and prompt source).
    /// </summary>
    /// <exception cref="FileNotFoundException">Neither "phantoms" nor a labels.csv or a folder holding one.</exception>
    /// <param name="source"><see cref="Phantoms"/>, a labels.csv, or a folder holding one.</param>
    /// <param name="cfg">The experiment.</param>
    /// <param name="options">How the labels.csv is read (e.g. <see cref="LoadOptions.AllowOutsideRoot"/>); null: defaults.</param>
    /// <exception cref="DatasetFormatException">The CSV or an image is malformed, or a path leads outside the dataset's folder.</exception>
    public static LdmTrainingData From(string source, LdmExperimentConfig cfg, LoadOptions? options = null) =>
        string.Equals(source, Phantoms, StringComparison.OrdinalIgnoreCase) ? FromPhantoms(cfg)
        : string.Equals(source, Scenes, StringComparison.OrdinalIgnoreCase) ? FromScenes(cfg.TrainImages, cfg.ImageSize, cfg.DataSeed)
        : FromRecords(GenericCsvLoader.Load(source, options), cfg.ImageSize, cfg.Prompt, findingMasks: cfg.FindingLossWeight is not null);

    /// <summary>The word that names the built-in general-domain world (captioned scenes of shapes) in <see cref="From"/> and <c>--data</c>.</summary>
    public const string Scenes = "scenes";

    /// <summary>
    /// General-domain scenes with their captions as prompts (<see cref="SceneRecords"/>): the data a "foundation model" is
    /// pretrained on before it is adapted to chest X-rays, at the same size and channel count.
    /// </summary>
    public static LdmTrainingData FromScenes(int count, int size, long seed, int start = 0)
    {
        var records = SceneRecords.Create(new SceneOptions { Size = Math.Max(size, 32), Seed = seed }, count, start).Prefetch();
        return FromRecords(records, size, PromptSource.ImpressionAndFindings) with { Source = $"{Scenes}: {count} from index {start} of world {seed}, {size} px" };
    }

    /// <summary>The training phantoms of an experiment (its image count, size, world seed and prompt source).</summary>
    public static LdmTrainingData FromPhantoms(LdmExperimentConfig cfg) =>
        FromPhantoms(cfg.TrainImages, cfg.ImageSize, cfg.DataSeed, 0, cfg.Prompt, cfg.ReportStyle, findingMasks: cfg.FindingLossWeight is not null);

    /// <summary>
    /// Phantoms with their reports as prompts (see <see cref="PromptSource"/>); the tokenizer's length limit keeps the
    /// start of a long prompt. <paramref name="style"/> words the reports (<see cref="Data.Reports.ReportStyle"/>); the
    /// data's <see cref="Source"/> names it only when it is not the default, so runs of template reports keep their pins.
    /// <paramref name="findingMasks"/> also keeps each image's <see cref="FindingMasks"/> (for the finding-weighted loss).
    /// </summary>
    public static LdmTrainingData FromPhantoms(int count, int size, long seed, int start = 0, PromptSource source = PromptSource.ImpressionAndFindings,
        Data.Reports.ReportStyle style = Data.Reports.ReportStyle.Templates, bool findingMasks = false)
    {
        // Phantom records (one source for every trainer), drawn at 64 px or more; smaller training sizes (tests) are
        // area-downsampled by the dataset's loader.
        var records = PhantomRecords.Create(new PhantomOptions { Size = Math.Max(size, 64), Seed = seed, ReportStyle = style }, count, start, masks: findingMasks).Prefetch();
        string wording = style == Data.Reports.ReportStyle.Templates ? "" : $", reports {style}";
        return FromRecords(records, size, source, findingMasks) with { Source = $"{Phantoms}: {count} from index {start} of world {seed}, {size} px, prompts {source}{wording}" };
    }

    /// <summary>
    /// Every record of a dataset (any loader, e.g. <see cref="GenericCsvLoader.Load"/> of a labels.csv folder) as training
    /// data: each image through <see cref="CxrDataset.LoadImage"/> at size x size, stacked in [−1, 1]; each prompt from the
    /// record's report sections as <see cref="PromptOf(CxrReport, PromptSource)"/> makes it (a report without sections gives its full text; no
    /// report, the empty prompt, which trains the unconditional model). <paramref name="findingMasks"/> also loads each
    /// record's <see cref="FindingMasks"/> (a record without finding masks gets an empty one; none at all: null).
    /// </summary>
    /// <exception cref="ArgumentException">The dataset is empty or the size is not positive.</exception>
    /// <exception cref="DatasetFormatException">An image or mask cannot be loaded; the message names its file and row.</exception>
    public static LdmTrainingData FromRecords(CxrDataset records, int size, PromptSource source = PromptSource.ImpressionAndFindings, bool findingMasks = false)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (size < 1) throw new ArgumentException($"image size must be positive, got {size}", nameof(size));
        if (records.Count == 0) throw new ArgumentException($"dataset '{records.Name}' ({records.Root}) has no records to train on", nameof(records));
        var images = ImageTensors.Stack(records.Select(r => records.LoadImage(r, size)), -1f, 1f);
        var prompts = records.Select(r => PromptOf(r.Report, source)).ToList();
        Tensor? masks = findingMasks && records.Any(r => FindingMaskNames(r).Any())
            ? ImageTensors.Stack(records.Select(r => FindingUnion(records, r, size)), 0f, 1f)
            : null;
        return new LdmTrainingData(images, prompts) { Source = $"{records.Name} ({records.Root}): {records.Count} records, {size} px, prompts {source}", FindingMasks = masks };
    }

    private static GrayImage FindingUnion(CxrDataset records, CxrRecord record, int size)
    {
        var union = new GrayImage(size, size);
        foreach (var name in FindingMaskNames(record))
        {
            var m = records.LoadMask(record, name, size).Pixels;
            for (int i = 0; i < m.Length; i++) if (m[i] > 0.5f) union.Pixels[i] = 1f;
        }
        return union;
    }

    /// <summary>The training prompt of one report.</summary>
    public static string PromptOf(string impression, string findings, PromptSource source) => source switch
    {
        PromptSource.ImpressionAndFindings => $"{impression} {findings}",
        PromptSource.Impression => impression,
        PromptSource.ImpressionAndPositiveFindings => string.Join(" ", new[] { impression }.Concat(PositiveSentences(findings))),
        _ => throw new ArgumentOutOfRangeException(nameof(source), source, "unknown prompt source"),
    };

    /// <summary>The training prompt of a dataset record's report (its full text when it has no sections).</summary>
    public static string PromptOf(CxrReport report, PromptSource source)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.Findings is null && report.Impression is null) return (report.Full ?? "").Trim();
        return PromptOf(report.Impression?.Trim() ?? "", report.Findings?.Trim() ?? "", source).Trim();
    }

    private static readonly Data.Reports.ReportLabeler SentenceLabeler = new();

    private static IEnumerable<string> PositiveSentences(string text) =>
        System.Text.RegularExpressions.Regex.Split(text.Trim(), @"(?<=\.)\s+")
            .Where(s => s.Length > 0 && Observations.All.Any(o => o != Observation.NoFinding && SentenceLabeler.Label(s)[o] is Mention.Positive or Mention.Uncertain));
}
