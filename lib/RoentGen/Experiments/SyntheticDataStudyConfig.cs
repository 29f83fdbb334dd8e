using System.Text.Json;
using System.Text.Json.Serialization;
using RoentGen.Evaluation;
using RoentGen.Vision.Segmentation;

namespace RoentGen.Experiments;

/// <summary>
/// One arm of the synthetic-data study: the real training set plus which synthetic images, filtered or not.
/// </summary>
/// <param name="Name">Short name, e.g. "real", "text-single", "mask+filter".</param>
/// <param name="TextSingle">Adds images generated from single-disease prompts.</param>
/// <param name="TextReport">Adds images generated from full reports.</param>
/// <param name="Mask">Adds images generated from transformed masks.</param>
/// <param name="Filtered">Keeps only the synthetic images the proxy filter (and expert ratings) pass.</param>
public sealed record SyntheticArm(string Name, bool TextSingle, bool TextReport, bool Mask, bool Filtered)
{
    /// <summary>The real-only baseline every other arm is compared with.</summary>
    public static SyntheticArm Real { get; } = new("real", false, false, false, false);

    /// <summary>Whether the arm adds any synthetic image.</summary>
    public bool Synthetic => TextSingle || TextReport || Mask;

    /// <summary>Whether the arm needs the text-to-image generator.</summary>
    public bool NeedsText => TextSingle || TextReport;

    /// <summary>Whether the arm's synthetic images carry masks (only then does it train a segmenter beyond the real-only one).</summary>
    public bool Segments => !Synthetic || Mask;

    /// <summary>
    /// The nine arms: real only; real + text-conditioned (single-disease prompts; full reports); real + mask-conditioned;
    /// real + both (single-disease text and mask images together); each synthetic arm with and without proxy filtering.
    /// </summary>
    public static IReadOnlyList<SyntheticArm> All { get; } = BuildAll();

    private static List<SyntheticArm> BuildAll()
    {
        var bases = new[]
        {
            new SyntheticArm("text-single", true, false, false, false),
            new SyntheticArm("text-report", false, true, false, false),
            new SyntheticArm("mask", false, false, true, false),
            new SyntheticArm("text+mask", true, false, true, false),
        };
        var all = new List<SyntheticArm> { Real };
        foreach (var b in bases) { all.Add(b); all.Add(b with { Name = b.Name + "+filter", Filtered = true }); }
        return all;
    }
}

/// <summary>
/// The synthetic-data study (after Prakash et al. 2024): phantom worlds, real-set sizes, seeds, the synthetic budget, the
/// downstream classifier (<see cref="ProxyFindingClassifier"/>'s architecture) and segmenter (<see cref="SegmentationConfig"/>),
/// the proxy filter and the real-sample lung experiment.
/// </summary>
public sealed record SyntheticDataStudyConfig
{
    /// <summary>Seed of the training world (real sets, validation); the test world is <see cref="RoentGen.Data.Phantoms.WorldSeeds.HeldOut"/> of it.</summary>
    public long WorldSeed { get; init; }
    /// <summary>Side in pixels of every image the classifier and segmenter see (phantoms are drawn at max(64, this) and resized).</summary>
    public int ImageSize { get; init; } = 64;
    /// <summary>Real training-set sizes.</summary>
    public IReadOnlyList<int> Sizes { get; init; } = [100, 300, 1000];
    /// <summary>Seeds per arm (0 … Seeds − 1 unless given explicitly); the same seed gives every arm the same real set and initial weights.</summary>
    public int Seeds { get; init; } = 5;
    /// <summary>Synthetic images per real image in each synthetic source.</summary>
    public double SyntheticPerReal { get; init; } = 1.0;
    /// <summary>Validation phantoms (training world, cases from <see cref="ValidationStart"/>): thresholds of F1 and of the filter.</summary>
    public int ValidationImages { get; init; } = 300;
    /// <summary>First validation case index of the training world (beyond every real set).</summary>
    public int ValidationStart { get; init; } = 1_000_000;
    /// <summary>Test phantoms from the held-out world.</summary>
    public int TestImages { get; init; } = 500;
    /// <summary>Classifier shape (its InputSize is <see cref="ImageSize"/>).</summary>
    public ProxyClassifierConfig Classifier { get; init; } = new() { InputSize = 64 };
    /// <summary>Classifier optimizer steps (the same in every arm).</summary>
    public int ClassifierSteps { get; init; } = 400;
    /// <summary>Classifier images per step.</summary>
    public int ClassifierBatchSize { get; init; } = 32;
    /// <summary>Segmenter config (its Size is <see cref="ImageSize"/>; Data and TrainImages are only recorded).</summary>
    public SegmentationConfig Segmentation { get; init; } = new()
    {
        Size = 64, Widths = [8, 16, 32], Groups = 4, Steps = 300, BatchSize = 16, WarmupSteps = 20, CheckpointEvery = 100,
        Structures = ["lungs", "heart", "pleural_effusion", "consolidation", "nodule"],
    };
    /// <summary>The proxy filter's lowest mean Dice to the condition masks.</summary>
    public double FilterMinDice { get; init; } = 0.5;
    /// <summary>Denoising steps of the text-to-image generator.</summary>
    public int SamplingSteps { get; init; } = 20;
    /// <summary>Classifier-free guidance of the text-to-image generator.</summary>
    public double GuidanceScale { get; init; } = 4.0;
    /// <summary>Seeds (random train/test splits) of the real-sample lung experiment (0: skip it).</summary>
    public int RealSampleSeeds { get; init; } = 5;
    /// <summary>Real images with lung masks the real-sample segmenter trains on (the rest are its test set).</summary>
    public int RealSampleTrain { get; init; } = 8;
    /// <summary>Synthetic (mask-conditioned) images added in the real-sample experiment.</summary>
    public int RealSampleSynthetic { get; init; } = 32;
    /// <summary>Steps of the real-sample lung segmenter.</summary>
    public int RealSampleSteps { get; init; } = 200;

    /// <summary>The preset names.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick"];

    /// <summary>
    /// "quick": sizes 100, 300, 1000, five seeds, 64 px (sized for an hour or more on 2 cores); "tiny": 16 real images, two
    /// seeds, 32 px and a handful of steps (seconds, for tests and notebooks).
    /// </summary>
    /// <exception cref="ArgumentException">An unknown preset (the message lists the known ones).</exception>
    public static SyntheticDataStudyConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "quick" => new SyntheticDataStudyConfig(),
        "tiny" => new SyntheticDataStudyConfig
        {
            ImageSize = 32, Sizes = [16], Seeds = 2, ValidationImages = 24, TestImages = 24,
            Classifier = new ProxyClassifierConfig { InputSize = 32, Channels = [8, 16], FeatureWidth = 16, NormGroups = 4 },
            ClassifierSteps = 6, ClassifierBatchSize = 8,
            Segmentation = new SegmentationConfig
            {
                Size = 32, Widths = [8, 16], Groups = 4, Steps = 6, BatchSize = 4, WarmupSteps = 1, CheckpointEvery = 0, Structures = ["lungs", "heart"],
            },
            SamplingSteps = 2, RealSampleSeeds = 2, RealSampleTrain = 8, RealSampleSynthetic = 4, RealSampleSteps = 6,
        },
        _ => throw new ArgumentException($"unknown synthetic-study preset '{name}'; expected one of: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>
    /// Cases of the training world set aside per seed: seed s trains on the cases from s · SeedStride, the first
    /// Size of them, so every size's set is a prefix of the larger ones and seeds never share a case. It depends on
    /// <see cref="ValidationStart"/> alone (not on <see cref="Sizes"/>), so a study extended with a larger size later
    /// still draws the same real sets for the cells it already holds.
    /// </summary>
    [JsonIgnore]
    public int SeedStride => ValidationStart / 1000;

    /// <summary>The first real training case of <paramref name="seed"/> (<see cref="SeedStride"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The seed is negative or its cases would run into the validation cases.</exception>
    public int RealCaseStart(long seed)
    {
        long last = (seed + 1) * (long)SeedStride;
        if (seed < 0 || last > ValidationStart)
            throw new ArgumentOutOfRangeException(nameof(seed), seed,
                $"study seeds must lie in 0 to {ValidationStart / SeedStride - 1} (each takes {SeedStride} cases of the training world before the validation cases at {ValidationStart})");
        return checked((int)(seed * SeedStride));
    }

    /// <summary>The classifier shape at <see cref="ImageSize"/>.</summary>
    [JsonIgnore]
    public ProxyClassifierConfig ClassifierAtSize => Classifier with { InputSize = ImageSize };

    /// <summary>The segmenter config at <see cref="ImageSize"/>.</summary>
    [JsonIgnore]
    public SegmentationConfig SegmentationAtSize => Segmentation with { Size = ImageSize, Data = "synthetic-study" };

    /// <summary>Throws when a setting is out of range (the message names it).</summary>
    public void Validate()
    {
        if (Sizes is null || Sizes.Count == 0 || Sizes.Any(s => s < 2)) throw new ArgumentException("SyntheticDataStudyConfig.Sizes must list real-set sizes of at least 2");
        if (Sizes.Distinct().Count() != Sizes.Count) throw new ArgumentException($"SyntheticDataStudyConfig.Sizes repeats a size: {string.Join(", ", Sizes)}");
        if (Seeds < 1) throw new ArgumentException($"SyntheticDataStudyConfig.Seeds must be at least 1, got {Seeds}");
        if (!(SyntheticPerReal > 0)) throw new ArgumentException($"SyntheticDataStudyConfig.SyntheticPerReal must be above 0, got {SyntheticPerReal}");
        if (ValidationImages < 2 || TestImages < 2) throw new ArgumentException($"SyntheticDataStudyConfig.ValidationImages and TestImages must be at least 2, got {ValidationImages} and {TestImages}");
        if (ValidationStart < (long)Sizes.Max() * 1000) throw new ArgumentException($"SyntheticDataStudyConfig.ValidationStart {ValidationStart} must lie beyond every real set (at least {Sizes.Max() * 1000L})");
        if (ClassifierSteps < 1 || ClassifierBatchSize < 1) throw new ArgumentException("SyntheticDataStudyConfig.ClassifierSteps and ClassifierBatchSize must be at least 1");
        if (!(FilterMinDice is >= 0 and <= 1)) throw new ArgumentException($"SyntheticDataStudyConfig.FilterMinDice must lie in [0, 1], got {FilterMinDice}");
        if (SamplingSteps < 1) throw new ArgumentException($"SyntheticDataStudyConfig.SamplingSteps must be at least 1, got {SamplingSteps}");
        if (RealSampleSeeds < 0 || RealSampleTrain < 1 || RealSampleSynthetic < 1 || RealSampleSteps < 1)
            throw new ArgumentException("SyntheticDataStudyConfig.RealSample* settings must be positive (RealSampleSeeds 0 skips the experiment)");
        ClassifierAtSize.Validate();
        SegmentationAtSize.Validate();
    }

    /// <summary>Reads a config JSON file (camelCase or PascalCase keys).</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a config (the message names the file).</exception>
    public static SyntheticDataStudyConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--config: no such file: {path}", path);
        try
        {
            return JsonSerializer.Deserialize<SyntheticDataStudyConfig>(File.ReadAllText(path), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })
                ?? throw new InvalidDataException($"{path}: empty synthetic-study config");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a synthetic-study config: {e.Message}", e); }
    }
}
