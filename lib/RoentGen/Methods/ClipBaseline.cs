using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Interop;
using RoentGen.Text;
using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using RoentGen.Vision;

namespace RoentGen.Methods;

#pragma warning disable IDE1006 // snake_case parameter fields keep CLIP-style state-dict keys

/// <summary>
/// A language-supervised (CLIP-style, Radford et al. 2021) baseline run: the ViT and a small
/// <see cref="ClipTextModel"/> trained with the symmetric InfoNCE loss on (image, report) pairs of phantoms or other reported records, with linear
/// projection heads and a learnable temperature. Round-trips through JSON.
/// </summary>
public sealed record ClipConfig : EncoderTrainingBudget
{
    /// <summary>The image tower (its ImageSize is the training crop side).</summary>
    public VitConfig Vit { get; init; } = new();
    /// <summary>The text tower (VocabSize, EndTokenId and MaxPositions are set from the tokenizer and <see cref="MaxTokens"/>).</summary>
    public ClipTextConfig Text { get; init; } = new() { HiddenSize = 128, Layers = 2, Heads = 4, IntermediateSize = 512 };
    /// <summary>BPE vocabulary size (trained on the pool's reports).</summary>
    public int TokenizerVocab { get; init; } = 1024;
    /// <summary>Reports used to train the tokenizer (the first ones of the pool).</summary>
    public int TokenizerReports { get; init; } = 2000;
    /// <summary>Token sequence length (longer reports are truncated).</summary>
    public int MaxTokens { get; init; } = 64;
    /// <summary>Width of the shared embedding space.</summary>
    public int ProjectionDim { get; init; } = 128;
    /// <summary>Initial softmax temperature (CLIP: 0.07); the logit scale 1/T is learned.</summary>
    public double InitialTemperature { get; init; } = 0.07;
    /// <summary>Largest logit scale (CLIP clips at 100).</summary>
    public double MaxLogitScale { get; init; } = 100;

    /// <summary>Names of the presets.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "quick"];

    /// <summary>
    /// The language-supervised counterpart of a DINO run: the same ViT (trained at the global crop size), source size,
    /// steps, batch, seed, learning-rate schedule and clip, on <paramref name="phantoms"/> phantoms of world
    /// <paramref name="worldSeed"/>; a 2-layer text tower of width 128 (width 32, 1 layer, for a DINO ViT narrower than 64).
    /// </summary>
    public static ClipConfig Matching(DinoConfig dino, int phantoms, long worldSeed)
    {
        bool tiny = dino.Vit.HiddenSize < 64;
        return new ClipConfig(MatchingDino(dino, phantoms, worldSeed))
        {
            Vit = dino.Vit with { ImageSize = dino.Crops.GlobalSize },
            Text = tiny ? new ClipTextConfig { HiddenSize = 32, Layers = 1, Heads = 2, IntermediateSize = 64 } : new ClipTextConfig { HiddenSize = 128, Layers = 2, Heads = 4, IntermediateSize = 512 },
            TokenizerVocab = tiny ? 600 : 1024, ProjectionDim = tiny ? 32 : 128,
        };
    }

    /// <summary>A config with the default budget.</summary>
    public ClipConfig() { }

    private ClipConfig(EncoderTrainingBudget budget) : base(budget) { }

    /// <summary>A preset by name: the counterpart (<see cref="Matching"/>) of the DINO preset of that name.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static ClipConfig FromPreset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Matching(DinoConfig.Tiny, 48, 1),
        "quick" => Matching(DinoConfig.Quick, 4000, 1),
        _ => throw new ArgumentException($"unknown CLIP preset '{name}'; known presets: {string.Join(", ", PresetNames)}"),
    };

    /// <summary>Checks the run is consistent.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public void Validate()
    {
        Vit.Validate();
        try { Text.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"Text: {e.Message}", e); }
        if (Text.HiddenSize % Text.Heads != 0) throw new ArgumentException($"Text.HiddenSize {Text.HiddenSize} is not divisible by Text.Heads {Text.Heads}");
        ValidateBudget();
        if (SourceSize < 64 || SourceSize > 512) throw new ArgumentException($"SourceSize must be 64 to 512 pixels, got {SourceSize}");
        if (!(CropScaleMin > 0 && CropScaleMin <= CropScaleMax && CropScaleMax <= 1)) throw new ArgumentException($"crop scale range must satisfy 0 < min <= max <= 1, got [{CropScaleMin}, {CropScaleMax}]");
        if (TokenizerVocab < 514) throw new ArgumentException($"TokenizerVocab must be at least 514 (512 byte tokens and the 2 special tokens), got {TokenizerVocab}");
        if (TokenizerReports < 1) throw new ArgumentException($"TokenizerReports must be at least 1, got {TokenizerReports}");
        if (MaxTokens < 4) throw new ArgumentException($"MaxTokens must be at least 4, got {MaxTokens}");
        if (ProjectionDim < 1) throw new ArgumentException($"ProjectionDim must be at least 1, got {ProjectionDim}");
        if (!(InitialTemperature > 0) || MaxLogitScale < 1 / InitialTemperature) throw new ArgumentException($"need InitialTemperature > 0 and MaxLogitScale >= 1/InitialTemperature, got {InitialTemperature} and {MaxLogitScale}");
        if (LearningRate <= 0 || WeightDecay < 0) throw new ArgumentException($"LearningRate must be > 0 and WeightDecay >= 0, got {LearningRate} and {WeightDecay}");
        if (Steps < 1) throw new ArgumentException($"Steps must be at least 1, got {Steps}");
        if (BatchSize < 2) throw new ArgumentException($"contrastive training needs BatchSize >= 2 (negatives), got {BatchSize}");
    }

    /// <summary>The config as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, SafeTensors.ConfigJsonOptions);

    /// <summary>Reads a config file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a ClipConfig.</exception>
    public static ClipConfig Load(string path) => RunFolder.ReadConfig<ClipConfig>(path, "CLIP");
}

/// <summary>The symmetric InfoNCE loss of CLIP (Radford et al. 2021).</summary>
public static class ClipLoss
{
    /// <summary>
    /// ½ [CE(image → text) + CE(text → image)] over the logits s · cos(image_i, text_j) of a batch of B pairs.
    /// Pair i is the positive of row i; when <paramref name="textGroups"/> is given, pairs with the same group (the
    /// same report text) are all positives, with equal target weight, so identical reports are not pushed apart.
    /// With every logit equal (every image embedding alike and every text embedding alike, or a scale of 0) the loss is ln B; with orthonormal pairs it is
    /// ln(1 + (B − 1)·e^(−s)).
    /// </summary>
    /// <param name="image">(B, P) image embeddings (normalised here).</param>
    /// <param name="text">(B, P) text embeddings (normalised here).</param>
    /// <param name="logitScale">s = 1 / temperature: a scalar tensor (learnable) or a constant.</param>
    /// <param name="textGroups">Optional group id per pair (equal ids = same text).</param>
    /// <exception cref="ArgumentException">Shapes disagree, fewer than two pairs, or groups of the wrong length.</exception>
    public static Tensor Symmetric(Tensor image, Tensor text, Tensor logitScale, IReadOnlyList<int>? textGroups = null)
    {
        if (image.dim() != 2 || text.dim() != 2 || image.shape[0] != text.shape[0] || image.shape[1] != text.shape[1])
            throw new ArgumentException($"CLIP loss needs image and text embeddings of one shape (B, P), got ({string.Join(", ", image.shape)}) and ({string.Join(", ", text.shape)})");
        long b = image.shape[0];
        if (b < 2) throw new ArgumentException($"CLIP loss needs at least two pairs, got {b}");
        if (textGroups is not null && textGroups.Count != b) throw new ArgumentException($"textGroups has {textGroups.Count} entries for {b} pairs");
        using var scope = NewDisposeScope();
        var logits = nn.functional.normalize(image, dim: -1).mm(nn.functional.normalize(text, dim: -1).t()) * logitScale; // (B, B)
        Tensor targets;
        if (textGroups is null) targets = eye(b, dtype: logits.dtype);
        else
        {
            var g = tensor(textGroups.Select(v => (long)v).ToArray());
            var same = g.unsqueeze(1).eq(g.unsqueeze(0)).to(logits.dtype);                          // symmetric
            targets = same / same.sum(1, keepdim: true);
        }
        var imageToText = -(targets * logits.log_softmax(1)).sum(1, keepdim: false).mean();
        var textToImage = -(targets.t() * logits.t().log_softmax(1)).sum(1, keepdim: false).mean();
        return ((imageToText + textToImage) / 2).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="Symmetric(Tensor, Tensor, Tensor, IReadOnlyList{int}?)"/> with a constant logit scale.</summary>
    public static Tensor Symmetric(Tensor image, Tensor text, double logitScale, IReadOnlyList<int>? textGroups = null)
    {
        using var s = tensor((float)logitScale);
        return Symmetric(image, text, s, textGroups);
    }

    /// <summary>
    /// In-batch image → text top-1 retrieval accuracy: the fraction of images whose most similar text (dot product of
    /// the embeddings as given) is their own or one with the same group (the same report).
    /// </summary>
    /// <param name="image">(B, P) image embeddings.</param>
    /// <param name="text">(B, P) text embeddings.</param>
    /// <param name="textGroups">Group id per pair (see <see cref="Groups"/>).</param>
    public static double RetrievalTop1(Tensor image, Tensor text, IReadOnlyList<int> textGroups)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(textGroups);
        if (image.shape[0] != textGroups.Count || text.shape[0] != textGroups.Count)
            throw new ArgumentException($"need one group per pair: {image.shape[0]} images, {text.shape[0]} texts, {textGroups.Count} groups");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var best = image.mm(text.t()).argmax(1).data<long>().ToArray();
        return best.Select((j, i) => textGroups[(int)j] == textGroups[i] ? 1.0 : 0.0).Average();
    }

    /// <summary>Group ids of texts: equal strings share an id (first-seen order).</summary>
    public static int[] Groups(IReadOnlyList<string> texts)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        return texts.Select(t => ids.TryGetValue(t, out var id) ? id : ids[t] = ids.Count).ToArray();
    }
}

/// <summary>CLIP's heads: linear projections of each tower into the shared space and the learnable log logit scale.</summary>
public sealed class ClipHeads : nn.Module
{
    private readonly Linear visual_projection, text_projection;
    private readonly Parameter logit_scale;
    private readonly double _maxLogScale;

    /// <summary>Creates the heads with logit scale 1 / <paramref name="initialTemperature"/>.</summary>
    public ClipHeads(int imageDim, int textDim, int projectionDim, double initialTemperature, double maxLogitScale) : base(nameof(ClipHeads))
    {
        visual_projection = nn.Linear(imageDim, projectionDim, hasBias: false);
        text_projection = nn.Linear(textDim, projectionDim, hasBias: false);
        logit_scale = nn.Parameter(tensor((float)Math.Log(1 / initialTemperature)));
        _maxLogScale = Math.Log(maxLogitScale);
        RegisterComponents();
    }

    /// <summary>(B, D_image) → (B, P).</summary>
    public Tensor ProjectImage(Tensor cls) => visual_projection.call(cls);
    /// <summary>(B, D_text) → (B, P).</summary>
    public Tensor ProjectText(Tensor pooled) => text_projection.call(pooled);
    /// <summary>exp(logit_scale), clipped at the configured maximum (scalar tensor with gradient).</summary>
    public Tensor LogitScale() => logit_scale.clamp_max(_maxLogScale).exp();
}

/// <summary>
/// The language-supervised baseline: the ViT ("backbone"), a <see cref="ClipTextModel"/> ("text_encoder") and
/// <see cref="ClipHeads"/> ("heads"), trained with <see cref="ClipLoss.Symmetric(Tensor, Tensor, Tensor, IReadOnlyList{int}?)"/>
/// on (image, report) pairs through the shared <see cref="Trainer"/>. The image goes through the same light random
/// resized crop as the supervised baseline.
/// </summary>
public sealed class ClipTraining : IDisposable
{
    private readonly RandomResizedCrop _crop;

    /// <summary>Builds the towers, heads and AdamW optimizer, seeded by the config.</summary>
    /// <param name="config">The run.</param>
    /// <param name="tokenizer">The tokenizer (e.g. <see cref="TrainTokenizer"/>); it fixes the text tower's vocabulary.</param>
    /// <exception cref="ArgumentException">The config is inconsistent.</exception>
    public ClipTraining(ClipConfig config, BpeTokenizer tokenizer)
    {
        Model = new ClipModel(config, tokenizer);      // validates, seeds and builds the towers and heads
        Config = config;
        Tokenizer = tokenizer;
        _crop = new RandomResizedCrop(config.Vit.ImageSize, config.CropScaleMin, config.CropScaleMax);
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var m in new nn.Module[] { Backbone, TextEncoder, Heads })
            foreach (var (name, p) in m.named_parameters())
                (DinoTraining.IsNoDecay(name, p) || name.Contains("embedding", StringComparison.Ordinal) ? noDecay : decay).Add(p);
        Optimizer = new ScalarSafe.AdamW(new[]
        {
            new AdamW.ParamGroup(decay, config.LearningRate, 0.9, 0.98, 1e-6, config.WeightDecay),
            new AdamW.ParamGroup(noDecay, config.LearningRate, 0.9, 0.98, 1e-6, 0.0),
        });
    }

    /// <summary>The run's config.</summary>
    public ClipConfig Config { get; }
    /// <summary>The tokenizer.</summary>
    public BpeTokenizer Tokenizer { get; }
    /// <summary>The model being trained, as one unit (<see cref="ClipModel.Save"/> writes it).</summary>
    public ClipModel Model { get; }
    /// <summary>The image tower (the encoder that is kept and probed).</summary>
    public VisionTransformer Backbone => Model.Backbone;
    /// <summary>The text tower.</summary>
    public ClipTextModel TextEncoder => Model.TextEncoder;
    /// <summary>Projections and temperature.</summary>
    public ClipHeads Heads => Model.Heads;
    /// <summary>AdamW over everything.</summary>
    public OptimizerHelper Optimizer { get; }

    /// <summary>What the trainer checkpoints: "backbone", "text_encoder" and "heads".</summary>
    public IReadOnlyDictionary<string, nn.Module> Modules => Model.Modules;

    /// <summary>A BPE tokenizer trained on the reports (<see cref="CxrReport.FullText"/>) of the first <see cref="ClipConfig.TokenizerReports"/> records.</summary>
    /// <exception cref="InvalidOperationException">A stream of records (the tokenizer needs a fixed set).</exception>
    public static BpeTokenizer TrainTokenizer(ClipConfig config, TrainingRecords records) =>
        BpeTokenizer.Train(records.Reports(config.TokenizerReports), config.TokenizerVocab);

    /// <summary>
    /// The tokenizer of a run folder (DIR/tokenizer/vocab.json + merges.txt) when there is one, else one trained on the
    /// records' reports and saved there, so that a resumed run keeps its vocabulary.
    /// </summary>
    public static BpeTokenizer LoadOrTrainTokenizer(ClipConfig config, TrainingRecords records, string? outputDir)
    {
        if (outputDir is not null)
        {
            var dir = Path.Combine(outputDir, "tokenizer");
            string vocab = Path.Combine(dir, "vocab.json"), merges = Path.Combine(dir, "merges.txt");
            if (File.Exists(vocab) && File.Exists(merges)) return BpeTokenizer.Load(vocab, merges);
            var trained = TrainTokenizer(config, records);
            trained.Save(dir);
            return trained;
        }
        return TrainTokenizer(config, records);
    }

    /// <summary>The records of <paramref name="records"/> that have a report (all of them for phantoms).</summary>
    /// <exception cref="ArgumentException">None has a report; the message names the dataset and its folder.</exception>
    public static CxrDataset WithReports(CxrDataset records)
    {
        var kept = records.Where(r => !r.Report.IsEmpty);
        if (kept.Count > 0) return kept.Count == records.Count ? records : kept;
        throw new ArgumentException($"{records.Name}{(records.Root.Length > 0 ? $" ({records.Root})" : "")}: none of its {records.Count} records has a report; "
            + "the CLIP baseline trains on (image, report) pairs (a labels.csv needs a 'report' column, or 'findings' and 'impression')");
    }

    /// <summary>Embeddings of a batch in the shared space: images (B, 1, S, S) in [-1, 1] and their reports.</summary>
    public (Tensor Image, Tensor Text) Embed(Tensor pixels, IReadOnlyList<string> reports)
    {
        using var scope = NewDisposeScope();
        var image = Model.EmbedImages(pixels);
        var text = Model.EmbedTexts(reports);
        return (image.MoveToOuterDisposeScope(), text.MoveToOuterDisposeScope());
    }

    /// <summary>Crops each image (random resized crop, light) and stacks them as (B, 1, S, S) in [-1, 1].</summary>
    public Tensor Augment(IReadOnlyList<GrayImage> images, Random rng) =>
        ImageTensors.Stack(images.Select(img => _crop.Apply(CxrSample.Of(img), rng).Image));

    /// <summary>
    /// The loss of a batch (augmented with <paramref name="rng"/>) against its records' reports
    /// (<see cref="CxrReport.FullText"/>): symmetric InfoNCE with identical reports treated as shared positives. Also
    /// returns the in-batch image → report top-1 accuracy (a matching report counts).
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than two examples, or a record without a report (the message names it).</exception>
    public (Tensor Loss, double Accuracy) Loss(TrainingBatch batch, Random rng)
    {
        if (batch.Count < 2) throw new ArgumentException($"the CLIP loss needs at least two examples, got {batch.Count}", nameof(batch));
        if (batch.Records.FirstOrDefault(r => r.Report.IsEmpty) is CxrRecord bare)
            throw new ArgumentException($"{bare.Origin}: record '{bare.Id}' of {bare.Dataset} has no report; CLIP trains on (image, report) pairs (see ClipTraining.WithReports)", nameof(batch));
        using var scope = NewDisposeScope();
        var reports = batch.ReportTexts();
        var groups = ClipLoss.Groups(reports);
        var (img, txt) = Embed(Augment(batch.Images, rng), reports);
        var loss = ClipLoss.Symmetric(img, txt, Heads.LogitScale(), groups);
        double accuracy = ClipLoss.RetrievalTop1(img, txt, groups);
        return (loss.MoveToOuterDisposeScope(), accuracy);
    }

    /// <summary>A trainer over <see cref="Modules"/> with this run's schedule, checkpointing under <paramref name="outputDir"/>.</summary>
    public Trainer CreateTrainer(string? outputDir = null) =>
        new(Modules, Optimizer, new TrainerOptions
        {
            TotalSteps = Config.Steps, WarmupSteps = Math.Min(Config.WarmupSteps, Math.Max(0, Config.Steps - 1)), MinLrFraction = Config.MinLrFraction,
            GradClipNorm = Config.GradClipNorm, CheckpointEvery = Config.CheckpointEvery, Seed = Config.Seed, Title = "clip",
        }, outputDir, Config);

    /// <summary>
    /// Trains to <see cref="EncoderTrainingBudget.Steps"/> (resuming from the trainer's latest checkpoint) on (image, report)
    /// pairs drawn from <paramref name="records"/>. Reports "infonce", "temperature" and "retrieval_top1" (in-batch).
    /// </summary>
    public TrainingHistory Train(Trainer trainer, TrainingRecords records, CancellationToken cancellation = default) =>
        trainer.Run(ctx =>
        {
            var batch = records.Batch(ctx.Step, Config.BatchSize, ctx.Random);
            var (loss, accuracy) = Loss(batch, ctx.Random);
            trainer.Report("infonce", loss.item<float>());
            using (no_grad()) trainer.Report("temperature", 1.0 / Heads.LogitScale().item<float>());
            trainer.Report("retrieval_top1", accuracy);
            return loss;
        }, cancellation);

    /// <inheritdoc />
    public void Dispose()
    {
        Optimizer.Dispose();
        Model.Dispose();
    }
}
