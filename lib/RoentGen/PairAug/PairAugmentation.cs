using System.Text.Json;
using System.Text.Json.Serialization;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Reports;
using RoentGen.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.PairAug;

/// <summary>One generated image-report pair, as a line of <c>pairs.jsonl</c>.</summary>
/// <param name="Id">The pair's id (the rewrite's id and the branch, e.g. "p17-inter").</param>
/// <param name="Image">The image's path relative to the folder of pairs.jsonl.</param>
/// <param name="Report">The rewritten report the image was drawn for.</param>
/// <param name="SourceId">The id of the original report (and image).</param>
/// <param name="Scores">The pruning scores by name ("inter" for InterAug; "image", "change", "text" for IntraAug).</param>
/// <param name="Kept">Whether pruning kept the pair.</param>
public sealed record AugmentedPair(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("image")] string Image,
    [property: JsonPropertyName("report")] string Report,
    [property: JsonPropertyName("source_id")] string SourceId,
    [property: JsonPropertyName("scores")] IReadOnlyDictionary<string, double> Scores,
    [property: JsonPropertyName("kept")] bool Kept);

/// <summary>What an augmentation branch made: its pairs and the counts at each stage.</summary>
/// <param name="Pairs">Every generated pair, kept or not.</param>
/// <param name="Counts">Counts by stage name, in order (e.g. "rewrites", "generated", "kept", "pruned").</param>
/// <param name="PairsFile">The pairs.jsonl written.</param>
public sealed record AugmentationResult(IReadOnlyList<AugmentedPair> Pairs, IReadOnlyList<KeyValuePair<string, int>> Counts, string PairsFile)
{
    /// <summary>Pairs kept by pruning.</summary>
    public int Kept => Pairs.Count(p => p.Kept);
}

/// <summary>Options of <see cref="PairAugmentation.InterAug"/>.</summary>
public sealed record InterAugOptions
{
    /// <summary>Denoising steps (PairAug: 50).</summary>
    public int Steps { get; init; } = 50;
    /// <summary>Guidance scale (PairAug: 4).</summary>
    public double GuidanceScale { get; init; } = 4;
    /// <summary>The sampler.</summary>
    public SchedulerKind Scheduler { get; init; } = SchedulerKind.Ddim;
    /// <summary>Seed: rewrite i draws its image from seed + i.</summary>
    public long Seed { get; init; }
    /// <summary>Images per sampling batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Threshold on the scaled score (<see cref="PairPruning.InterAugThreshold"/>).</summary>
    public double Threshold { get; init; } = PairPruning.InterAugThreshold;
    /// <summary>The logit scale that multiplies the cosine (<see cref="PairPruning.InterAugScore"/>): the CLIP model's learned one for PairAug's rule.</summary>
    public double LogitScale { get; init; } = 1;

    /// <summary>Checks the options: 1 to 10,000 steps, guidance in [0, <see cref="SampleRequest.MaxGuidanceScale"/>], a batch of 1 to 4,096, a finite threshold and a positive finite logit scale.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it and the range.</exception>
    public void Validate()
    {
        Nn.ModelSize.InRange(nameof(Steps), Steps, 1, 10_000);
        Nn.ModelSize.InRange(nameof(GuidanceScale), GuidanceScale, 0, SampleRequest.MaxGuidanceScale);
        Nn.ModelSize.InRange(nameof(BatchSize), BatchSize, 1, 4096);
        if (!double.IsFinite(Threshold)) throw new ArgumentException($"{nameof(Threshold)} is {Threshold}; expected a finite number (PairAug: {PairPruning.InterAugThreshold})");
        if (!(double.IsFinite(LogitScale) && LogitScale > 0)) throw new ArgumentException($"{nameof(LogitScale)} is {LogitScale}; expected a positive finite number (the CLIP model's logit scale, or 1 for the bare cosine)");
    }
}

/// <summary>Options of <see cref="PairAugmentation.IntraAug"/>.</summary>
public sealed record IntraAugOptions
{
    /// <summary>The prompt-to-prompt edit (PairAug: refine, cross 0.5, self 0.2, guidance 4, 75 steps).</summary>
    public PromptToPromptOptions Edit { get; init; } = new() { Kind = PromptEditKind.Refine, CrossReplaceSteps = 0.5, SelfReplaceSteps = 0.2, GuidanceScale = 4, Steps = 75 };
    /// <summary>Null-text inversion of real images (its steps and guidance are taken from <see cref="Edit"/>).</summary>
    public NullTextOptions NullText { get; init; } = new();
    /// <summary>Margin below each score's mean (<see cref="PairPruning.IntraAugMargin"/>).</summary>
    public double Margin { get; init; } = PairPruning.IntraAugMargin;
}

/// <summary>
/// PairAug's two branches as folders of pairs: PNG images under <c>images/</c> and one <see cref="AugmentedPair"/> per line
/// in <c>pairs.jsonl</c> (read back as records by <see cref="ReadPairs"/> and <see cref="ToDataset"/>).
/// </summary>
public static class PairAugmentation
{
    /// <summary>The pairs file's name.</summary>
    public const string PairsFileName = "pairs.jsonl";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>
    /// InterAug: each rewritten report (PartialOpposite) is drawn by the pipeline, scored by the CLIP model
    /// (<see cref="PairPruning.InterAugScore"/>) and kept above the threshold.
    /// </summary>
    public static AugmentationResult InterAug(TextToImagePipeline pipeline, IClipEmbedder clip, IReadOnlyList<ReportRewrite> rewrites, InterAugOptions options, string outDir)
    {
        if (rewrites.Count == 0) throw new ArgumentException("InterAug needs at least one rewritten report", nameof(rewrites));
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        using var scope = NewDisposeScope();
        var reports = rewrites.Select(r => r.Rewritten).ToList();
        var images = pipeline.Sample(new SampleRequest
        {
            Prompts = reports, Steps = options.Steps, GuidanceScale = options.GuidanceScale, Scheduler = options.Scheduler,
            Seed = options.Seed, BatchSize = options.BatchSize,
        });                                                                             // (N, 1, H, W)
        var cos = Cosines(clip.EmbedImages(images), clip.EmbedTexts(reports));         // (N)
        var scores = cos.Select(c => PairPruning.InterAugScore(c, options.LogitScale)).ToList();
        var kept = PairPruning.KeepInter(scores, options.Threshold);
        Directory.CreateDirectory(Path.Combine(outDir, "images"));
        var pairs = new List<AugmentedPair>();
        for (int i = 0; i < rewrites.Count; i++)
        {
            string id = $"{rewrites[i].Id}-inter";
            string rel = WriteImage(outDir, id, images[i]);
            pairs.Add(new AugmentedPair(id, rel, reports[i], rewrites[i].Id, new Dictionary<string, double> { ["inter"] = scores[i] }, kept[i]));
        }
        int k = kept.Count(x => x);
        return Finish(outDir, pairs, [new("rewrites", rewrites.Count), new("generated", pairs.Count), new("kept", k), new("pruned", pairs.Count - k)]);
    }

    /// <summary>
    /// IntraAug: each rewrite (ChangeInSymptoms) edits its original by prompt-to-prompt from one shared latent (seed + i):
    /// the original's generation is img_real unless <paramref name="realImages"/> has the source id, in which case that
    /// image (1, 1, H, W) is inverted with null-text optimisation and edited. Pairs are pruned by
    /// <see cref="PairPruning.KeepIntra"/>; the original images are written too (<c>images/ID-source.png</c>).
    /// </summary>
    public static AugmentationResult IntraAug(TextToImagePipeline pipeline, IClipEmbedder clip, IReadOnlyList<ReportRewrite> rewrites, IntraAugOptions options,
        string outDir, long seed = 0, IReadOnlyDictionary<string, Tensor>? realImages = null)
    {
        if (rewrites.Count == 0) throw new ArgumentException("IntraAug needs at least one rewritten report", nameof(rewrites));
        Directory.CreateDirectory(Path.Combine(outDir, "images"));
        var editor = new PromptToPromptEditor(pipeline);
        var synthetic = new List<Tensor>();
        var reals = new List<Tensor>();
        int inverted = 0;
        using var scope = NewDisposeScope();
        for (int i = 0; i < rewrites.Count; i++)
        {
            var r = rewrites[i];
            var edit = options.Edit with { Seed = seed + i };
            if (realImages is not null && realImages.TryGetValue(r.Id, out var real))
            {
                var inv = NullTextInversion.Run(pipeline, real, r.Original, options.NullText with { Steps = edit.Steps, GuidanceScale = edit.GuidanceScale });
                var images = editor.Edit(r.Original, [r.Rewritten], edit, inv.StartLatent, inv.NullEmbeddings).Images;
                reals.Add(real.to(ScalarType.Float32));
                synthetic.Add(images.narrow(0, 1, 1));
                inverted++;
            }
            else
            {
                var images = editor.Edit(r.Original, [r.Rewritten], edit).Images;     // (2, 1, H, W)
                reals.Add(images.narrow(0, 0, 1));
                synthetic.Add(images.narrow(0, 1, 1));
            }
        }
        var syn = cat(synthetic, 0);
        var realBatch = cat(reals.Select(x => x.shape[2] == syn.shape[2] ? x : nn.functional.interpolate(x, [syn.shape[2], syn.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false)).ToList(), 0);
        var imgSyn = clip.EmbedImages(syn);
        var imgReal = clip.EmbedImages(realBatch);
        var txtNew = clip.EmbedTexts(rewrites.Select(r => r.Rewritten).ToList());
        var txtOrig = clip.EmbedTexts(rewrites.Select(r => r.Original).ToList());
        var s1 = Cosines(imgSyn, imgReal);
        var s2 = ChangeAlignments(imgSyn, imgReal, txtNew, txtOrig);
        var s3 = Cosines(imgSyn, txtNew);
        var scores = Enumerable.Range(0, rewrites.Count).Select(i => new IntraScores(s1[i], s2[i], s3[i])).ToList();
        var pruning = PairPruning.KeepIntra(scores, options.Margin);
        var pairs = new List<AugmentedPair>();
        for (int i = 0; i < rewrites.Count; i++)
        {
            string id = $"{rewrites[i].Id}-intra";
            WriteImage(outDir, $"{id}-source", realBatch[i]);
            string rel = WriteImage(outDir, id, syn[i]);
            pairs.Add(new AugmentedPair(id, rel, rewrites[i].Rewritten, rewrites[i].Id,
                new Dictionary<string, double> { ["image"] = s1[i], ["change"] = s2[i], ["text"] = s3[i] }, pruning.Kept[i]));
        }
        return Finish(outDir, pairs,
        [
            new("rewrites", rewrites.Count), new("inverted", inverted), new("generated", pairs.Count), new("after_image", pruning.AfterImage),
            new("after_change", pruning.AfterChange), new("kept", pruning.AfterText), new("pruned", pruning.Pruned),
        ]);
    }

    /// <summary>
    /// Prunes the pairs of a pairs.jsonl again from their written scores (no model needed): InterAug pairs (an "inter"
    /// score) by <see cref="PairPruning.KeepInter"/> at <paramref name="threshold"/>, IntraAug pairs ("image", "change",
    /// "text") together by <see cref="PairPruning.KeepIntra"/> at <paramref name="margin"/>; the file is rewritten with
    /// the new kept flags. Counts: "pairs", "inter_kept", "intra_after_image", "intra_after_change", "intra_kept", "kept", "pruned".
    /// </summary>
    /// <exception cref="InvalidDataException">A pair has neither score set; the message names it.</exception>
    public static AugmentationResult Prune(string pairsFile, double threshold = PairPruning.InterAugThreshold, double margin = PairPruning.IntraAugMargin)
    {
        var pairs = ReadPairs(pairsFile).ToList();
        var inter = new List<int>();
        var intra = new List<int>();
        for (int i = 0; i < pairs.Count; i++)
        {
            var sc = pairs[i].Scores ?? new Dictionary<string, double>();
            if (sc.ContainsKey("inter")) inter.Add(i);
            else if (sc.ContainsKey("image") && sc.ContainsKey("change") && sc.ContainsKey("text")) intra.Add(i);
            else throw new InvalidDataException($"{pairsFile}: pair '{pairs[i].Id}' has neither an 'inter' score nor the 'image', 'change' and 'text' scores");
        }
        var interKept = PairPruning.KeepInter(inter.Select(i => pairs[i].Scores["inter"]).ToList(), threshold);
        for (int k = 0; k < inter.Count; k++) pairs[inter[k]] = pairs[inter[k]] with { Kept = interKept[k] };
        HybridPruningResult? hybrid = null;
        if (intra.Count > 0)
        {
            hybrid = PairPruning.KeepIntra(intra.Select(i => new IntraScores(pairs[i].Scores["image"], pairs[i].Scores["change"], pairs[i].Scores["text"])).ToList(), margin);
            for (int k = 0; k < intra.Count; k++) pairs[intra[k]] = pairs[intra[k]] with { Kept = hybrid.Kept[k] };
        }
        int kept = pairs.Count(p => p.Kept);
        return Finish(Path.GetDirectoryName(Path.GetFullPath(pairsFile))!, pairs,
        [
            new("pairs", pairs.Count), new("inter_kept", interKept.Count(x => x)), new("intra_after_image", hybrid?.AfterImage ?? 0),
            new("intra_after_change", hybrid?.AfterChange ?? 0), new("intra_kept", hybrid?.AfterText ?? 0), new("kept", kept), new("pruned", pairs.Count - kept),
        ], Path.GetFileName(pairsFile));
    }

    /// <summary>Reads a pairs.jsonl (every line one <see cref="AugmentedPair"/>).</summary>
    /// <exception cref="InvalidDataException">A line is not a pair; the message names the file and line.</exception>
    public static IReadOnlyList<AugmentedPair> ReadPairs(string pairsFile)
    {
        var pairs = new List<AugmentedPair>();
        int n = 0;
        foreach (var line in File.ReadLines(pairsFile))
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            AugmentedPair? p;
            try { p = JsonSerializer.Deserialize<AugmentedPair>(line, Json); }
            catch (JsonException e) { throw new InvalidDataException($"{pairsFile}:{n}: not a pair ({e.Message}); expected a JSON object with id, image, report, source_id, scores, kept", e); }
            if (p is null || p.Id is null || p.Image is null || p.Report is null)
                throw new InvalidDataException($"{pairsFile}:{n}: a pair needs id, image and report");
            pairs.Add(p);
        }
        return pairs;
    }

    /// <summary>File in a CLIP run folder that names the data the run trains on (<see cref="PinTrainingData"/>).</summary>
    public const string TrainingDataFile = "training-data.json";

    /// <summary>
    /// Records in <paramref name="runDir"/>/<see cref="TrainingDataFile"/> what a CLIP run trains on: the real pairs
    /// (<paramref name="realPairs"/>, a description) and each augmented pairs.jsonl by its folder and file name, kept
    /// and total pair counts and SHA-256; a later call on the same folder (a resume, or "nothing to do") must name the
    /// same data. Checked before training, so a run never mixes steps on two data sets, and a finished model says what it
    /// saw.
    /// </summary>
    /// <exception cref="FileNotFoundException">A pairs file does not exist.</exception>
    /// <exception cref="Platform.RunStateException">The folder's run was started on other data; the message names both.</exception>
    public static void PinTrainingData(string runDir, string realPairs, IReadOnlyList<string> pairsFiles)
    {
        ArgumentNullException.ThrowIfNull(pairsFiles);
        var augmented = pairsFiles.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).Select(f =>
        {
            if (!File.Exists(f)) throw new FileNotFoundException($"{f}: no such pairs file (a pairs.jsonl of pairaug inter or intra)", f);
            var pairs = ReadPairs(f);
            var sha = Platform.ShardFile.Describe(Path.GetDirectoryName(f)!, Path.GetFileName(f)).Sha256;
            return $"{Path.GetFileName(Path.GetDirectoryName(f))}/{Path.GetFileName(f)}: {pairs.Count(p => p.Kept)} kept of {pairs.Count}, sha256 {sha[..16]}";
        }).Order(StringComparer.Ordinal).ToList();
        Directory.CreateDirectory(runDir);
        Training.StudyPins.CheckAndRecord(Path.Combine(runDir, TrainingDataFile),
            new Dictionary<string, string?> { ["real pairs"] = realPairs, ["augmented pairs"] = augmented.Count == 0 ? "none" : string.Join("; ", augmented) },
            "a CLIP run resumes only on the data it started with: use another --out to train on other pairs");
    }

    /// <summary>
    /// The pairs of a pairs.jsonl as records a CLIP run trains on: the image file, the report (as the full text) and its
    /// labels from <see cref="ReportLabeler"/>; only kept pairs unless <paramref name="keptOnly"/> is false.
    /// </summary>
    public static CxrDataset ToDataset(string pairsFile, bool keptOnly = true, string name = "pairaug")
    {
        var root = Path.GetDirectoryName(Path.GetFullPath(pairsFile))!;
        var labeler = new ReportLabeler();
        var records = ReadPairs(pairsFile).Where(p => p.Kept || !keptOnly).Select(p => new CxrRecord
        {
            Id = p.Id, PatientId = p.SourceId, Dataset = name,
            Image = ImageSource.FromFile(Path.Combine(root, p.Image)),
            Report = new CxrReport(null, null, p.Report),
            Labels = labeler.Label(p.Report),
        });
        return new CxrDataset(name, root, records);
    }

    /// <summary>
    /// IntraAug's change score per row: cos(img_syn − img_real, txt_new − txt_orig) of the L2-normalised (N, P) embeddings,
    /// as PairAug's released filter takes the differences of MedCLIP's normalised image and text embeddings. Normalising
    /// first makes the score depend only on the embeddings' directions; without it, a longer embedding of one image or
    /// report would dominate its difference.
    /// </summary>
    public static double[] ChangeAlignments(Tensor imageSynthetic, Tensor imageReal, Tensor textNew, Tensor textOriginal)
    {
        using var scope = NewDisposeScope();
        static Tensor Unit(Tensor x) => nn.functional.normalize(x.to(ScalarType.Float64), p: 2, dim: 1);
        return Cosines(Unit(imageSynthetic) - Unit(imageReal), Unit(textNew) - Unit(textOriginal));
    }

    /// <summary>Row-wise cosine similarity of two (N, P) embeddings.</summary>
    public static double[] Cosines(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return nn.functional.cosine_similarity(a.to(ScalarType.Float64), b.to(ScalarType.Float64), dim: 1).data<double>().ToArray();
    }

    private static string WriteImage(string outDir, string id, Tensor image)
    {
        string rel = Path.Combine("images", id + ".png");
        ImageIO.WritePng(Path.Combine(outDir, rel), ImageTensors.FromTensor(image.detach().cpu().clamp(-1, 1)));
        return rel.Replace('\\', '/');
    }

    internal static AugmentationResult Finish(string outDir, List<AugmentedPair> pairs, List<KeyValuePair<string, int>> counts, string fileName = PairsFileName)
    {
        string file = Path.Combine(outDir, fileName);
        string tmp = file + ".tmp";
        File.WriteAllLines(tmp, pairs.Select(p => JsonSerializer.Serialize(p, Json)));
        File.Move(tmp, file, overwrite: true);
        return new AugmentationResult(pairs, counts, file);
    }
}
