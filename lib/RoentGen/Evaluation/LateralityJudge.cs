using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Analysis;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Training;
using static TorchSharp.torch;

namespace RoentGen.Evaluation;

/// <summary>How often generated images put one finding on the side their prompts name.</summary>
/// <param name="Finding">The finding.</param>
/// <param name="Images">Images whose prompt names this finding on one side only.</param>
/// <param name="Correct">Of those, images where the judge puts the finding on the named side rather than the other.</param>
/// <param name="Seen">Images where the finding judge also sees the finding (probability at least 0.5), so the side is a side of something drawn.</param>
/// <param name="SeenCorrect">Of <paramref name="Seen"/>, those on the named side.</param>
/// <param name="JudgeAccuracy">The side judge's own accuracy on real held-out phantoms with this finding on one side (its ceiling); NaN when not measured.</param>
public sealed record FindingLaterality(
    [property: JsonConverter(typeof(JsonStringEnumConverter<Observation>))] Observation Finding,
    int Images, int Correct, int Seen, int SeenCorrect, double JudgeAccuracy)
{
    /// <summary>Correct / Images (NaN without images).</summary>
    public double Accuracy => Images == 0 ? double.NaN : (double)Correct / Images;
    /// <summary>SeenCorrect / Seen (NaN when the finding judge saw none).</summary>
    public double SeenAccuracy => Seen == 0 ? double.NaN : (double)SeenCorrect / Seen;
}

/// <summary>Laterality of a generator: per finding, how often the side drawn is the side asked for.</summary>
/// <param name="Findings">One row per lateralised finding some prompt names with a side.</param>
public sealed record LateralityResult(IReadOnlyList<FindingLaterality> Findings)
{
    /// <summary>Images scored (prompts naming one lateralised finding on one side).</summary>
    public int Images => Findings.Sum(f => f.Images);
    /// <summary>Fraction of all scored images on the named side: the issue's laterality figure (target at least 0.9).</summary>
    public double Accuracy => Images == 0 ? double.NaN : (double)Findings.Sum(f => f.Correct) / Images;
    /// <summary>The same over the images where the finding judge sees the finding.</summary>
    public double SeenAccuracy
    {
        get { int n = Findings.Sum(f => f.Seen); return n == 0 ? double.NaN : (double)Findings.Sum(f => f.SeenCorrect) / n; }
    }

    /// <summary>
    /// A side judge this accurate on real phantoms with a finding on one side reads that finding's side reliably
    /// (<see cref="ReliableAccuracy"/>).
    /// </summary>
    public const double ReliableJudgeAccuracy = 0.9;

    /// <summary>
    /// The fraction on the named side over the findings whose side the side judge itself reads reliably
    /// (<see cref="FindingLaterality.JudgeAccuracy"/> at least <see cref="ReliableJudgeAccuracy"/>): where the judge is
    /// near chance on real phantoms (at 64 px, lesion about 0.72 and fracture 0.61) a wrong call says little about the
    /// generator. Reported beside <see cref="Accuracy"/>, not instead of it; NaN when no finding qualifies (or the judge's
    /// accuracy was not measured).
    /// </summary>
    public double ReliableAccuracy
    {
        get { int n = ReliableImages; return n == 0 ? double.NaN : (double)Reliable.Sum(f => f.Correct) / n; }
    }

    /// <summary>Images behind <see cref="ReliableAccuracy"/>.</summary>
    public int ReliableImages => Reliable.Sum(f => f.Images);

    private IEnumerable<FindingLaterality> Reliable => Findings.Where(f => f.JudgeAccuracy >= ReliableJudgeAccuracy);

    /// <summary>One row per finding: finding, images, accuracy, seen, seen_accuracy, judge_accuracy.</summary>
    public DataFrame ToDataFrame() => new(
        new StringDataFrameColumn("finding", Findings.Select(f => f.Finding.Name())),
        new Int32DataFrameColumn("images", Findings.Select(f => f.Images)),
        new DoubleDataFrameColumn("accuracy", Findings.Select(f => f.Accuracy)),
        new Int32DataFrameColumn("seen", Findings.Select(f => f.Seen)),
        new DoubleDataFrameColumn("seen_accuracy", Findings.Select(f => f.SeenAccuracy)),
        new DoubleDataFrameColumn("judge_accuracy", Findings.Select(f => f.JudgeAccuracy)));

    /// <summary>The result as indented JSON (NaN as the string "NaN").</summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        laterality_accuracy = Accuracy, laterality_seen_accuracy = SeenAccuracy, images = Images,
        laterality_reliable_accuracy = ReliableAccuracy, reliable_images = ReliableImages, reliable_judge_accuracy = ReliableJudgeAccuracy,
        findings = Findings.Select(f => new { finding = f.Finding, f.Images, f.Correct, accuracy = f.Accuracy, f.Seen, seen_accuracy = f.SeenAccuracy, judge_accuracy = f.JudgeAccuracy }),
    }, EvaluationJson.Options);
}

/// <summary>
/// A side-aware check of generated chest X-rays: a hemithorax judge. The image is cut at the midline; the patient's right
/// half (the image's left) is read as it is and the patient's left half mirrored, so both look like a right hemithorax.
/// The proxy classifier's network (<see cref="ProxyFindingClassifier"/>, one output per lateralised finding) reads one
/// half with the other beside it as a second channel, so it can compare the two sides pixel by pixel, and says whether
/// the first holds each finding. It is trained on phantoms whose sides come from their ground-truth masks, only on the
/// findings an image shows (the other findings are left out of the loss), so it learns which half a finding is in, not
/// whether it is there: that is the finding judge's question. A generated image prompted with "left pleural effusion" is
/// on the right side when the left half's effusion output beats the right half's.
/// <para>Why halves: the whole-image network pools its features over the image, which keeps what it sees but not where;
/// trained on whole images with a right and a left output it stayed at chance (loss 0.65 after 160 steps). Why the other
/// half as a second channel: read alone, a half could not place a pneumothorax (held-out accuracy 0.52, chance), whose
/// signs (a darker rim without lung markings) show mostly against the other side.</para>
/// </summary>
public sealed class LateralityJudge
{
    /// <summary>The findings whose side is judged, in output order (<see cref="Predict"/> gives 2i: right, 2i + 1: left).</summary>
    public static IReadOnlyList<Observation> Findings { get; } =
    [
        Observation.PleuralEffusion, Observation.Pneumothorax, Observation.Consolidation,
        Observation.LungLesion, Observation.Atelectasis, Observation.Fracture,
    ];

    /// <summary>A side holds a finding when at least this fraction of the finding's mask lies in its half of the image.</summary>
    public const double SideFraction = 0.25;

    private static readonly string[][] MaskNames =
        [["pleural_effusion"], ["pneumothorax"], ["consolidation"], ["nodule", "mass"], ["atelectasis"], ["fracture"]];

    /// <summary>The hemithorax network (one output per finding of <see cref="Findings"/>).</summary>
    public ProxyFindingClassifier Network { get; }

    /// <summary>Wraps a hemithorax network with one output per finding of <see cref="Findings"/> and two input channels.</summary>
    /// <exception cref="ArgumentException">The network has another number of outputs or inputs.</exception>
    public LateralityJudge(ProxyFindingClassifier network)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (network.OutputCount != Findings.Count)
            throw new ArgumentException($"a laterality judge needs {Findings.Count} outputs (one per lateralised finding), the network has {network.OutputCount}", nameof(network));
        if ((network.Config.InputChannels ?? 1) != 2)
            throw new ArgumentException($"a laterality judge reads 2 channels (a half and the other half beside it), the network reads {network.Config.InputChannels ?? 1}", nameof(network));
        Network = network;
    }

    /// <summary>
    /// The two hemithoraces of images (N, 1, H, W) as (2N, 2, H, W/2), each half in the orientation of a right hemithorax
    /// (the patient's left half mirrored): first the N patient's right halves, each with its left half as the second
    /// channel; then the N left halves, each with its right half as the second channel. An odd middle column is dropped.
    /// </summary>
    public static Tensor Halves(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 1)
            throw new ArgumentException($"expected (N, 1, H, W) images, got shape [{string.Join(", ", images.shape)}]", nameof(images));
        long w = images.shape[3], half = w / 2;
        using var scope = NewDisposeScope();
        var right = images.narrow(3, 0, half);
        var left = images.narrow(3, w - half, half).flip(3);
        return cat([cat([right, left], 1), cat([left, right], 1)], 0).MoveToOuterDisposeScope();
    }

    // (N, 2F) right/left pairs → (2N, F): the right halves' rows, then the left halves'.
    private static Tensor HalfTargets(Tensor targets)
    {
        using var scope = NewDisposeScope();
        var pairs = targets.view(targets.shape[0], Findings.Count, 2);
        return cat([pairs.select(2, 0), pairs.select(2, 1)], 0).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The sides a finding's mask occupies: image columns left of the centre are the patient's right. A side counts when
    /// it holds at least <see cref="SideFraction"/> of the mask; an empty mask has no side.
    /// </summary>
    public static PatientSides SidesOfMask(GrayImage mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        double imageLeft = 0, imageRight = 0;
        int half = mask.Width / 2;
        for (int y = 0; y < mask.Height; y++)
            for (int x = 0; x < mask.Width; x++)
            {
                float v = mask.Pixels[y * mask.Width + x];
                if (v <= 0.5f || (mask.Width % 2 == 1 && x == half)) continue;
                if (x < half) imageLeft++; else imageRight++;
            }
        double total = imageLeft + imageRight;
        if (total == 0) return PatientSides.None;
        var sides = PatientSides.None;
        if (imageLeft / total >= SideFraction) sides |= PatientSides.Right;
        if (imageRight / total >= SideFraction) sides |= PatientSides.Left;
        return sides;
    }

    /// <summary>
    /// Training targets (N, 2 × <see cref="Findings"/>) of phantom cases: for a finding the image shows, 1 on each side its
    /// mask occupies and 0 on the other; −1 (left out of the loss) for both outputs of a finding it does not show.
    /// </summary>
    public static Tensor Targets(IReadOnlyList<PhantomCase> cases)
    {
        ArgumentNullException.ThrowIfNull(cases);
        int k = 2 * Findings.Count;
        var data = new float[cases.Count * k];
        Array.Fill(data, -1f);
        for (int r = 0; r < cases.Count; r++)
            for (int f = 0; f < Findings.Count; f++)
            {
                var sides = PatientSides.None;
                foreach (var name in MaskNames[f])
                    if (cases[r].Masks.TryGetValue(name, out var m)) sides |= SidesOfMask(m);
                if (sides == PatientSides.None) continue;
                data[r * k + 2 * f] = sides.HasFlag(PatientSides.Right) ? 1 : 0;
                data[r * k + 2 * f + 1] = sides.HasFlag(PatientSides.Left) ? 1 : 0;
            }
        return tensor(data, [cases.Count, k]);
    }

    /// <summary>
    /// Images (N, 1, size, size) in [−1, 1] and <see cref="Targets"/> of the phantoms start..start+count of world
    /// <paramref name="seed"/> that show at least one lateralised finding (the others teach nothing here).
    /// </summary>
    public static (Tensor Images, Tensor Targets) PhantomData(int size, int start, int count, long seed)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "use at least one phantom");
        var generator = new PhantomGenerator(new PhantomOptions { Size = Math.Max(64, size), Seed = seed });
        using var scope = NewDisposeScope();
        var images = new List<Tensor>();
        var targets = new List<Tensor>();
        // In chunks, so that only the kept images' pixels outlive their chunk (a case's masks are several times its image).
        const int Chunk = 1000;
        for (int at = start; at < start + count; at += Chunk)
        {
            var kept = generator.Generate(at, Math.Min(Chunk, start + count - at)).Where(c => MaskNames.Any(names => names.Any(c.Masks.ContainsKey))).ToList();
            if (kept.Count == 0) continue;
            var chunk = ImageTensors.Stack(kept.Select(c => c.Image));
            images.Add(chunk.shape[2] == size ? chunk : nn.functional.interpolate(chunk, size: [size, size], mode: InterpolationMode.Area));
            targets.Add(Targets(kept));
        }
        if (images.Count == 0) throw new ArgumentException($"none of phantoms {start}..{start + count - 1} of world {seed} shows a lateralised finding", nameof(count));
        return (cat(images, 0).MoveToOuterDisposeScope(), cat(targets, 0).MoveToOuterDisposeScope());
    }

    /// <summary>Probabilities (N, 2 × <see cref="Findings"/>): each finding in the patient's right half, then in the left half.</summary>
    public Tensor Predict(Tensor images)
    {
        using var scope = NewDisposeScope();
        long n = images.shape[0];
        var p = Network.Predict(Halves(images));                        // (2N, F)
        return stack([p.narrow(0, 0, n), p.narrow(0, n, n)], 2)         // (N, F, 2)
            .reshape(n, 2 * Findings.Count).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="Accuracy"/> on phantoms 0..count−1 of world <paramref name="seed"/> at <paramref name="size"/> px (a world
    /// the judge did not train on: its ceiling, reported beside every <see cref="Score"/>).
    /// </summary>
    public IReadOnlyDictionary<Observation, double> HeldOutAccuracy(int size, int count, long seed)
    {
        using var scope = NewDisposeScope();
        var (images, targets) = PhantomData(size, 0, count, seed);
        return Accuracy(images, targets);
    }

    /// <summary>
    /// The judge's accuracy per finding on images with known targets (as from <see cref="PhantomData"/>): over the images
    /// with the finding on one side only, the fraction whose output for that side beats the other side's.
    /// </summary>
    public IReadOnlyDictionary<Observation, double> Accuracy(Tensor images, Tensor targets)
    {
        int k = 2 * Findings.Count;
        if (targets.dim() != 2 || targets.shape[0] != images.shape[0] || targets.shape[1] != k)
            throw new ArgumentException($"targets must be ({images.shape[0]}, {k}) to match the images, got shape [{string.Join(", ", targets.shape)}]", nameof(targets));
        using var scope = NewDisposeScope();
        var p = Predict(images).contiguous().data<float>().ToArray();
        var t = targets.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var result = new Dictionary<Observation, double>();
        for (int f = 0; f < Findings.Count; f++)
        {
            int n = 0, right = 0;
            for (int i = 0; i < images.shape[0]; i++)
            {
                float tr = t[i * k + 2 * f], tl = t[i * k + 2 * f + 1];
                if (tr < 0 || tr == tl) continue;                   // absent, or on both sides
                n++;
                bool saysRight = p[i * k + 2 * f] > p[i * k + 2 * f + 1];
                if (saysRight == (tr > 0.5f)) right++;
            }
            result[Findings[f]] = n == 0 ? double.NaN : (double)right / n;
        }
        return result;
    }

    /// <summary>
    /// Scores generated images against their prompts: each image whose prompt names exactly one finding of
    /// <see cref="Findings"/> and exactly one side (<see cref="Laterality.SidesNamed"/>) counts; it is correct when the
    /// judge's output for the named side beats the other side's.
    /// </summary>
    /// <param name="sideProbabilities">(N, 2 × <see cref="Findings"/>) from <see cref="Predict"/>.</param>
    /// <param name="prompts">The prompt of each image, with the findings it names.</param>
    /// <param name="findingProbabilities">(N, 14) from the finding judge, for the "seen" columns (null: none counted as seen).</param>
    /// <param name="judgeAccuracy">The side judge's own accuracy per finding on real images (null: NaN).</param>
    public static LateralityResult Score(Tensor sideProbabilities, IReadOnlyList<AdherencePrompt> prompts, Tensor? findingProbabilities = null,
        IReadOnlyDictionary<Observation, double>? judgeAccuracy = null)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        int k = 2 * Findings.Count;
        if (sideProbabilities.dim() != 2 || sideProbabilities.shape[0] != prompts.Count || sideProbabilities.shape[1] != k)
            throw new ArgumentException($"side probabilities must be ({prompts.Count}, {k}), one row per prompt, got shape [{string.Join(", ", sideProbabilities.shape)}]", nameof(sideProbabilities));
        if (findingProbabilities is not null && (findingProbabilities.dim() != 2 || findingProbabilities.shape[0] != prompts.Count || findingProbabilities.shape[1] != ProxyFindingClassifier.Outputs))
            throw new ArgumentException($"finding probabilities must be ({prompts.Count}, {ProxyFindingClassifier.Outputs}), got shape [{string.Join(", ", findingProbabilities.shape)}]", nameof(findingProbabilities));
        var p = sideProbabilities.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var q = findingProbabilities?.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var counts = new int[Findings.Count, 4];
        for (int i = 0; i < prompts.Count; i++)
        {
            var lateral = prompts[i].Findings.Where(Findings.Contains).ToList();
            var side = Laterality.SidesNamed(prompts[i].Text);
            if (lateral.Count != 1 || side is not (PatientSides.Left or PatientSides.Right)) continue;
            int f = IndexOf(lateral[0]);
            float right = p[i * k + 2 * f], left = p[i * k + 2 * f + 1];
            bool correct = side == PatientSides.Right ? right > left : left > right;
            bool seen = q is not null && q[i * ProxyFindingClassifier.Outputs + (int)lateral[0]] >= 0.5f;
            counts[f, 0]++;
            if (correct) counts[f, 1]++;
            if (seen) { counts[f, 2]++; if (correct) counts[f, 3]++; }
        }
        var rows = Enumerable.Range(0, Findings.Count).Where(f => counts[f, 0] > 0)
            .Select(f => new FindingLaterality(Findings[f], counts[f, 0], counts[f, 1], counts[f, 2], counts[f, 3],
                judgeAccuracy is not null && judgeAccuracy.TryGetValue(Findings[f], out var a) ? a : double.NaN))
            .ToList();
        return new LateralityResult(rows);
    }

    private static int IndexOf(Observation finding)
    {
        for (int i = 0; i < Findings.Count; i++) if (Findings[i] == finding) return i;
        return -1;
    }

    /// <summary>Saves the network to a checkpoint folder.</summary>
    public void Save(string folder) => Network.Save(folder);

    /// <summary>Loads a judge saved with <see cref="Save"/>.</summary>
    /// <exception cref="ArgumentException">The folder holds a network of another width.</exception>
    public static LateralityJudge Load(string folder) => new(ProxyFindingClassifier.Load(folder));

    /// <summary>
    /// The side judge saved in <paramref name="folder"/> as it is, whatever recipe trained it; only where none is saved,
    /// <see cref="LoadOrTrain"/> with these settings (see <see cref="ProxyFindingClassifier.LoadSavedOrTrain"/>).
    /// </summary>
    public static LateralityJudge LoadSavedOrTrain(string folder, int size, int count = 4000, int steps = 400, long seed = 1001) =>
        ProxyFindingClassifier.IsSaved(folder) ? Load(folder) : LoadOrTrain(folder, size, count, steps, seed);

    /// <summary>What a side-judge run pins.</summary>
    public sealed record Run(int Size, int Count, int Steps, long Seed, ProxyClassifierConfig Model);

    /// <summary>
    /// The side judge trained in <paramref name="folder"/> on the phantoms 0..count−1 of world <paramref name="seed"/>
    /// (those showing a lateralised finding) at <paramref name="size"/> px: loaded when that run finished there, else
    /// trained (or resumed) and saved there, under <see cref="RunFolder"/>'s rules in folder/run.
    /// </summary>
    /// <exception cref="RoentGen.Platform.RunStateException">The folder holds a side judge trained with another config.</exception>
    public static LateralityJudge LoadOrTrain(string folder, int size, int count = 4000, int steps = 400, long seed = 1001,
        ProxyClassifierConfig? config = null, IProgress<ProxyTrainingProgress>? progress = null)
    {
        var model = (config ?? new ProxyClassifierConfig()) with { InputSize = size, Outputs = Findings.Count, InputChannels = 2 };
        var run = RunFolder.Open(Path.Combine(folder, "run"), "laterality-judge", new Run(size, count, steps, seed, model));
        if (run.IsFinishedAt(steps) && ProxyFindingClassifier.IsSaved(folder)) return Load(folder);
        run.Start();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TorchSharp.torch.random.manual_seed(seed);
        var network = new ProxyFindingClassifier(model);
        using (var scope = NewDisposeScope())
        {
            var (images, targets) = PhantomData(size, 0, count, seed);
            // A shift of at most 2 px moves no finding across the midline.
            network.Train(Halves(images), HalfTargets(targets), new ProxyTrainingOptions { Title = "side judge", Steps = steps, Seed = seed, OutputDir = run.Path, CheckpointEvery = 200, MaxShift = 2 }, progress);
        }
        network.eval();
        network.Save(folder);
        run.Finish(steps, clock.Elapsed.TotalSeconds);
        return new LateralityJudge(network);
    }
}
