using System.Text.Json;
using RoentGen.Diffusion;
using RoentGen.Evaluation.Probes;
using RoentGen.Interop;
using RoentGen.Methods;

namespace RoentGen.PairAug;

/// <summary>
/// The budget of <see cref="PairAugStudy.Run"/>: the text-to-CXR generator (trained on phantoms unless a generator folder
/// is given), the CLIP-style model of every arm (also the scorer that prunes), how many reports each branch rewrites,
/// the augmentation settings, and the evaluation. Round-trips through JSON (pinned in the study folder's config.json).
/// </summary>
public sealed record PairAugStudyConfig
{
    /// <summary>The generator trained on phantoms when no generator folder is given.</summary>
    public LdmExperimentConfig Generator { get; init; } = QuickGenerator;
    /// <summary>The VLP of every arm: towers, steps, batch, the real pool (Phantoms of world WorldSeed). Its Seed is replaced by each study seed.</summary>
    public ClipConfig Clip { get; init; } = QuickClip;
    /// <summary>Reports of the real pool rewritten for InterAug (partial opposite), the first ones of the pool.</summary>
    public int InterRewrites { get; init; } = 240;
    /// <summary>Reports of the real pool rewritten for IntraAug (change in symptoms).</summary>
    public int IntraRewrites { get; init; } = 60;
    /// <summary>IntraAug sources edited from their real (phantom) image by DDIM inversion and null-text optimisation; the others from the original's generation.</summary>
    public int RealEdits { get; init; } = 3;
    /// <summary>Seed of the rewrites (report i gets seed + i).</summary>
    public long RewriteSeed { get; init; }
    /// <summary>InterAug's sampling and threshold (PairAug: 50 steps, guidance 4, threshold 0.3 on the scaled score).</summary>
    public InterAugOptions Inter { get; init; } = new() { Steps = 50, Seed = 100_000 };
    /// <summary>IntraAug's edit and pruning (PairAug: refine, cross 0.5, self 0.2, guidance 4, 75 steps; margin 0.003).</summary>
    public IntraAugOptions Intra { get; init; } = new();
    /// <summary>Seed of IntraAug's shared starting latents (edit i uses seed + i).</summary>
    public long IntraSeed { get; init; } = 200_000;
    /// <summary>Held-out phantoms of the evaluation (split 60/20/20: probes train on the first part; zero-shot and probes are tested on the last).</summary>
    public int EvalImages { get; init; } = 600;
    /// <summary>World seed of the held-out phantoms (not the training world).</summary>
    public long EvalSeed { get; init; } = 7_000_001;
    /// <summary>Zero-shot prompts and bootstrap, probe fractions and grid.</summary>
    public VlpEvaluationOptions Evaluation { get; init; } = new();
    /// <summary>Points of each group in the t-SNE views (real vs synthetic images, real vs rewritten reports).</summary>
    public int TsnePoints { get; init; } = 150;
    /// <summary>Seeds run when none are given (PairAug's comparison needs at least 3 for a paired test with a spread).</summary>
    public int DefaultSeeds { get; init; } = 3;

    /// <summary>The generator of the quick preset: the quickstart's architecture at 64 px with a smaller budget (and the plain loss its results were measured with).</summary>
    public static LdmExperimentConfig QuickGenerator => LdmExperimentConfig.Quick with { TrainImages = 1000, VaeSteps = 200, LdmSteps = 400, LdmBatch = 16, TextPretrainSteps = 0, TextPretrainPhrases = 0, FindingLossWeight = null };

    /// <summary>The VLP of the quick preset: the quick DINO preset's ViT (64 px) and a 2-layer text tower, 300 steps of 32 pairs from 1,000 phantoms.</summary>
    public static ClipConfig QuickClip => ClipConfig.Matching(DinoConfig.Quick with { Steps = 300, BatchSize = 32, CheckpointEvery = 100 }, 1000, 1) with { TokenizerReports = 1000 };

    /// <summary>The quick preset (CPU minutes per seed).</summary>
    public static PairAugStudyConfig Quick { get; } = new();

    /// <summary>The tiny preset (tests: seconds).</summary>
    public static PairAugStudyConfig Tiny { get; } = new()
    {
        Generator = LdmExperimentConfig.Tiny,
        Clip = ClipConfig.Matching(DinoConfig.Tiny with { Steps = 3, BatchSize = 4 }, 16, 1) with { TokenizerReports = 16 },
        InterRewrites = 6, IntraRewrites = 6, RealEdits = 1,
        Inter = new InterAugOptions { Steps = 2, Seed = 100_000, BatchSize = 6 },
        Intra = new IntraAugOptions
        {
            Edit = new IntraAugOptions().Edit with { Steps = 2 },
            NullText = new Diffusion.NullTextOptions { InnerIterations = 1 },
        },
        EvalImages = 20,
        Evaluation = new VlpEvaluationOptions { Probe = LinearProbeOptions.Quick with { Steps = 10, LearningRates = [3e-2], WeightDecays = [0] }, ZeroShot = new ZeroShotOptions { Resamples = 1000 } },
        TsnePoints = 8,
        DefaultSeeds = 2,
    };

    /// <summary>Names of the presets.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick"];

    /// <summary>A preset by name.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static PairAugStudyConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Tiny,
        "quick" => Quick,
        _ => throw new ArgumentException($"unknown PairAug study preset '{name}'; known presets: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>The study seeds 0 … <see cref="DefaultSeeds"/> − 1.</summary>
    public IReadOnlyList<long> Seeds() => Enumerable.Range(0, DefaultSeeds).Select(i => (long)i).ToArray();

    /// <summary>Checks the budget.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public void Validate()
    {
        try { Clip.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"Clip: {e.Message}", e); }
        try { Generator.ValidateParts(); }
        catch (ArgumentException e) { throw new ArgumentException($"Generator: {e.Message}", e); }
        if (InterRewrites < 1 || InterRewrites > Clip.Phantoms) throw new ArgumentException($"InterRewrites must be 1 to Clip.Phantoms ({Clip.Phantoms}), got {InterRewrites}");
        if (IntraRewrites < 1 || IntraRewrites > Clip.Phantoms) throw new ArgumentException($"IntraRewrites must be 1 to Clip.Phantoms ({Clip.Phantoms}), got {IntraRewrites}");
        if (RealEdits < 0 || RealEdits > IntraRewrites) throw new ArgumentException($"RealEdits must be 0 to IntraRewrites ({IntraRewrites}), got {RealEdits}");
        if (Clip.TokenizerReports > Clip.Phantoms)
            throw new ArgumentException($"Clip.TokenizerReports ({Clip.TokenizerReports}) must not exceed Clip.Phantoms ({Clip.Phantoms}): every arm then learns the same tokenizer from the real reports");
        if (EvalImages < 6) throw new ArgumentException($"EvalImages must be at least 6 (train, validation and test), got {EvalImages}");
        if (TsnePoints < 4) throw new ArgumentException($"TsnePoints must be at least 4, got {TsnePoints}");
        if (DefaultSeeds < 1) throw new ArgumentException($"DefaultSeeds must be at least 1, got {DefaultSeeds}");
        Intra.Edit.Validate();
        Intra.NullText.Validate();
        try { Inter.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"Inter: {e.Message}", e); }
        try { Evaluation.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"Evaluation: {e.Message}", e); }
    }

    /// <summary>The config as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, SafeTensors.ConfigJsonOptions);

    /// <summary>Reads a config file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a PairAug study config.</exception>
    public static PairAugStudyConfig Load(string path) => Training.RunFolder.ReadConfig<PairAugStudyConfig>(path, "PairAug study");
}
