using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Reports;
using RoentGen.Platform;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Text;

/// <summary>
/// What a text-encoder pretraining run did: steps, the loss at its start and end (means over the first and last 10 % of
/// steps), and the balanced accuracy its head reached at the end on (up to 4,096 of) the training prompts, averaged over
/// the target columns that have both classes: the findings, and the sides. Training-set figures: they say the encoder
/// can represent the targets, not that it generalises.
/// </summary>
public sealed record TextPretrainingResult(int Steps, int Prompts, int Targets, double FirstLoss, double LastLoss,
    double FindingBalancedAccuracy, double SideBalancedAccuracy);

/// <summary>
/// Pretrains a text encoder on report text before diffusion training, so that the denoiser's cross-attention meets
/// token states that already say which findings a prompt names, and on which side, from its first step. The targets are
/// read from the prompts themselves by <see cref="ReportLabeler"/> (no image is used): for each observation but No
/// Finding, whether the prompt names it as positive or uncertain, and whether the sentence that names it names the
/// patient's left or right side (<see cref="Laterality.SidesNamed"/>). A linear head on the mean of the encoder's token
/// states predicts them (binary cross-entropy); the head is thrown away afterwards. The mean is over every position
/// the denoiser attends to, padding included, so each position is pushed to carry the prompt's findings.
/// </summary>
public static class TextEncoderPretraining
{
    /// <summary>The observations with targets: every one but No Finding, in CheXpert order.</summary>
    public static IReadOnlyList<Observation> Findings { get; } = Observations.All.Where(o => o != Observation.NoFinding).ToList();

    /// <summary>Targets per prompt: present, named left, named right for each of <see cref="Findings"/> (3 x 13 = 39 columns).</summary>
    public static int TargetCount => 3 * Findings.Count;

    /// <summary>
    /// The target rows of <paramref name="prompts"/>: (N, <see cref="TargetCount"/>) in {0, 1}, column f for finding f
    /// named (positive or uncertain), column F + f for its sentence naming the left side only, 2F + f the right only.
    /// </summary>
    public static float[] Targets(IReadOnlyList<string> prompts)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        int f = Findings.Count;
        var rows = new float[prompts.Count * 3 * f];
        var column = Findings.Select((o, i) => (o, i)).ToDictionary(x => x.o, x => x.i);
        var labeler = new ReportLabeler();
        System.Threading.Tasks.Parallel.For(0, prompts.Count, n =>
        {
            foreach (var m in labeler.LabelMentions(prompts[n] ?? ""))
            {
                if (m.Mention is not (Mention.Positive or Mention.Uncertain) || !column.TryGetValue(m.Observation, out int c)) continue;
                int row = n * 3 * f;
                rows[row + c] = 1;
                var sides = Laterality.SidesNamed(m.Sentence);
                if (sides == PatientSides.Left) rows[row + f + c] = 1;
                else if (sides == PatientSides.Right) rows[row + 2 * f + c] = 1;
            }
        });
        return rows;
    }

    /// <summary>
    /// Trains <paramref name="encoder"/> for <paramref name="steps"/> AdamW steps of <paramref name="batch"/> prompts drawn
    /// uniformly (seeded) from <paramref name="ids"/> (N, L) with <paramref name="targets"/> (from <see cref="Targets"/>).
    /// Float32; deterministic for a seed. Reports progress as "text encoder pretraining".
    /// </summary>
    /// <exception cref="ArgumentException">The targets do not have <see cref="TargetCount"/> columns per prompt, or steps, batch or lr are out of range.</exception>
    public static TextPretrainingResult Run(ClipTextModel encoder, Tensor ids, float[] targets, int steps, int batch = 64, double lr = 1e-3, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(targets);
        if (ids.dim() != 2) throw new ArgumentException($"token ids must be (N, L), got {ids.dim()} dimensions", nameof(ids));
        long n = ids.shape[0];
        if (n == 0) throw new ArgumentException("no prompts to pretrain on", nameof(ids));
        if (targets.Length != n * TargetCount)
            throw new ArgumentException($"need {TargetCount} targets for each of the {n} prompts ({n * TargetCount}), got {targets.Length}", nameof(targets));
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "pretrain for at least one step");
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be at least 1");
        if (!(lr > 0 && lr < 10)) throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be in (0, 10)");
        if (ids.shape[1] > encoder.Config.MaxPositions)
            throw new ArgumentException($"prompts of {ids.shape[1]} tokens exceed the encoder's MaxPositions {encoder.Config.MaxPositions}", nameof(ids));

        using var generator = new Generator((ulong)seed);
        var random = new Random(unchecked((int)seed) ^ 0x5EED);
        using var head = nn.Linear(encoder.Config.HiddenSize, TargetCount);
        using (no_grad())
        {
            head.weight!.normal_(0, 0.02, generator: generator);
            head.bias!.zero_();
        }
        var y = tensor(targets, [n, TargetCount]);
        bool wasTraining = encoder.training;
        encoder.train();
        var parameters = encoder.parameters().Concat(head.parameters()).ToList();
        using var opt = new ScalarSafe.AdamW(parameters, lr, 0.9, 0.999, 1e-8, 0.01);
        var losses = new List<double>(steps);
        using var progress = ProgressReporter.Start("text encoder pretraining", steps, "steps");
        try
        {
            for (int step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                var idx = tensor(Enumerable.Range(0, batch).Select(_ => (long)random.Next((int)n)).ToArray());
                var states = encoder.call(ids.index_select(0, idx));                  // (B, L, D)
                var logits = head.call(states.mean([1]));                              // (B, T)
                var loss = nn.functional.binary_cross_entropy_with_logits(logits, y.index_select(0, idx));
                opt.zero_grad();
                loss.backward();
                opt.step();
                double l = loss.item<float>();
                if (!double.IsFinite(l)) throw new InvalidOperationException($"text encoder pretraining diverged at step {step + 1} (loss {l})");
                losses.Add(l);
                progress.Advance();
                progress.SetMetric("loss", l);
            }
        }
        finally
        {
            encoder.train(wasTraining);
        }
        double findingAcc, sideAcc;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            long m = Math.Min(n, 4096);
            var chunks = new List<Tensor>();
            for (long i = 0; i < m; i += 256)   // in chunks, each freed before the next: one call on 4,096 prompts peaks at gigabytes
            {
                using var chunkScope = NewDisposeScope();
                chunks.Add(head.call(encoder.call(ids.narrow(0, i, Math.Min(256, m - i))).mean([1])).gt(0).MoveToOuterDisposeScope());
            }
            var predicted = cat(chunks, 0);                                              // (m, T)
            var truth = y.narrow(0, 0, m).gt(0.5f);
            var perColumn = BalancedAccuracy(predicted, truth);
            int f = Findings.Count;
            findingAcc = Mean(perColumn.Take(f));
            sideAcc = Mean(perColumn.Skip(f));
        }
        y.Dispose();
        Memory.TrimNativeHeap();   // its freed activations, kept by the heap for the next step, are not needed by the denoiser
        int tail = Math.Max(1, steps / 10);
        return new TextPretrainingResult(steps, (int)n, TargetCount, losses.Take(tail).Average(), losses.Skip(steps - tail).Average(), findingAcc, sideAcc);
    }

    /// <summary>(TPR + TNR) / 2 per column of boolean (N, T) predictions and truths; NaN where a column has one class only.</summary>
    internal static double[] BalancedAccuracy(Tensor predicted, Tensor truth)
    {
        var p = predicted.to(ScalarType.Float32);
        var t = truth.to(ScalarType.Float32);
        var pos = t.sum(dim: 0);
        var neg = (1 - t).sum(dim: 0);
        var tp = (p * t).sum(dim: 0);
        var tn = ((1 - p) * (1 - t)).sum(dim: 0);
        var ba = ((tp / pos.clamp_min(1)) + (tn / neg.clamp_min(1))) / 2;
        var valid = pos.gt(0).logical_and(neg.gt(0));
        var values = ba.data<float>().ToArray();
        var ok = valid.data<bool>().ToArray();
        return values.Select((v, i) => ok[i] ? (double)v : double.NaN).ToArray();
    }

    private static double Mean(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToList();
        return finite.Count == 0 ? double.NaN : finite.Average();
    }
}
