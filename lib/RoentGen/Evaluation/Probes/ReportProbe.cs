using RoentGen.Data;
using RoentGen.Data.Reports;
using RoentGen.Nn;
using RoentGen.Text;
using RoentGen.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Evaluation.Probes;

/// <summary>Size and training of the report-generation probe's decoder.</summary>
public sealed record ReportProbeOptions
{
    /// <summary>Decoder layers.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Decoder width.</summary>
    public int Width { get; init; } = 128;
    /// <summary>Attention heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>BPE vocabulary size (the tokenizer is trained on the training reports).</summary>
    public int VocabSize { get; init; } = 1024;
    /// <summary>Longest token sequence, start and end tokens included (longer reports are truncated).</summary>
    public int MaxTokens { get; init; } = 96;
    /// <summary>Optimisation steps (AdamW, teacher forcing).</summary>
    public int Steps { get; init; } = 400;
    /// <summary>Reports per step.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Peak learning rate (linear warm-up over the first 5% of steps, then cosine decay).</summary>
    public double LearningRate { get; init; } = 2e-3;
    /// <summary>Seed of initialisation and batch order.</summary>
    public int Seed { get; init; }

    /// <summary>A quick setting that trains in well under a minute on 2 CPU cores.</summary>
    public static ReportProbeOptions Quick { get; } = new() { Layers = 1, Width = 64, Heads = 2, VocabSize = 700, MaxTokens = 64, Steps = 120 };
}

/// <summary>F1 of one observation's positive class over a set of reports.</summary>
/// <param name="Observation">The observation's CheXpert name.</param>
/// <param name="F1">2TP / (2TP + FP + FN); NaN when neither truth nor prediction has a positive.</param>
/// <param name="TruthPositives">Reference reports positive for it.</param>
/// <param name="PredictedPositives">Generated reports positive for it.</param>
public sealed record FindingF1(string Observation, double F1, int TruthPositives, int PredictedPositives);

/// <summary>The report probe's test result.</summary>
/// <param name="PerFinding">F1 per observation (all 14).</param>
/// <param name="MacroF1">Mean F1 over the observations positive in the truth or in the generated reports.</param>
/// <param name="FinalLoss">Teacher-forced cross-entropy of the last training steps.</param>
/// <param name="Examples">A few (reference, generated) test report pairs.</param>
public sealed record ReportProbeResult(IReadOnlyList<FindingF1> PerFinding, double MacroF1, double FinalLoss, IReadOnlyList<(string Reference, string Generated)> Examples);

/// <summary>
/// Report generation from frozen features: a small transformer decoder cross-attends to the projected CLS and
/// patch tokens, is trained with teacher forcing on BPE-tokenized training reports and decodes greedily. The
/// generated and reference reports are labelled by the <see cref="ReportLabeler"/> and compared per observation.
/// </summary>
public static class ReportProbe
{
    /// <summary>Trains on the training reports and scores generated test reports.</summary>
    /// <exception cref="ArgumentException">Fewer than 2 training reports or no test report.</exception>
    public static ReportProbeResult Train(EncodedFeatures train, IReadOnlyList<string?> trainReports, EncodedFeatures test, IReadOnlyList<string?> testReports,
        ReportProbeOptions? options = null)
    {
        options ??= new ReportProbeOptions();
        var trIdx = Enumerable.Range(0, trainReports.Count).Where(i => !string.IsNullOrWhiteSpace(trainReports[i])).ToArray();
        var teIdx = Enumerable.Range(0, testReports.Count).Where(i => !string.IsNullOrWhiteSpace(testReports[i])).ToArray();
        if (trIdx.Length < 2) throw new ArgumentException($"report probe: {trIdx.Length} training images have a report; need at least 2");
        if (teIdx.Length < 1) throw new ArgumentException("report probe: no test image has a report");
        var tokenizer = BpeTokenizer.Train(trIdx.Select(i => trainReports[i]!), options.VocabSize);
        manual_seed(options.Seed);
        using var scope = NewDisposeScope();
        var memTr = Memory(train, trIdx); var memTe = Memory(test, teIdx);
        var mean = memTr.mean([0, 1], keepdim: true); var std = memTr.std([0, 1], keepdim: true).clamp_min(1e-6);
        memTr = (memTr - mean) / std; memTe = (memTe - mean) / std;
        var batch = tokenizer.EncodeBatch(trIdx.Select(i => trainReports[i]!).ToList(), options.MaxTokens);
        var decoder = new ReportDecoder(tokenizer.VocabSize, (int)memTr.shape[2], options);
        var opt = new ScalarSafe.AdamW(decoder.parameters(), lr: options.LearningRate, weight_decay: 0.01);
        var rng = new Random(options.Seed);
        double recent = double.NaN; var last = new Queue<double>();
        decoder.train();
        for (int step = 0; step < options.Steps; step++)
        {
            using var stepScope = NewDisposeScope();
            double warm = Math.Max(1, options.Steps / 20);
            double lrNow = options.LearningRate * (step < warm ? (step + 1) / warm : 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, options.Steps - warm))));
            foreach (var g in opt.ParamGroups) g.LearningRate = lrNow;
            var idx = tensor(Enumerable.Range(0, Math.Min(options.BatchSize, trIdx.Length)).Select(_ => (long)rng.Next(trIdx.Length)).ToArray());
            var ids = batch.Ids.index_select(0, idx);                    // (B, T)
            var mask = batch.AttentionMask.index_select(0, idx);
            var logits = decoder.call(ids.narrow(1, 0, ids.shape[1] - 1), memTr.index_select(0, idx)); // (B, T-1, V)
            var targets = ids.narrow(1, 1, ids.shape[1] - 1);
            var valid = mask.narrow(1, 1, mask.shape[1] - 1).to_type(ScalarType.Float32);
            var ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[2]), targets.reshape(-1), reduction: nn.Reduction.None);
            var loss = (ce * valid.reshape(-1)).sum() / valid.sum();
            opt.zero_grad();
            loss.backward();
            nn.utils.clip_grad_norm_(decoder.parameters(), 1.0);
            opt.step();
            last.Enqueue(loss.item<float>()); if (last.Count > 10) last.Dequeue();
            recent = last.Average();
        }
        decoder.eval();
        var generated = Greedy(decoder, memTe, tokenizer, options.MaxTokens);
        var labeler = new ReportLabeler();
        var truth = teIdx.Select(i => labeler.Label(testReports[i]!)).ToList();
        var predicted = generated.Select(labeler.Label).ToList();
        var (per, macro) = LabelF1(truth, predicted);
        decoder.Dispose();
        var examples = teIdx.Take(3).Select((i, k) => (testReports[i]!, generated[k])).ToList();
        return new ReportProbeResult(per, macro, recent, examples);
    }

    /// <summary>
    /// F1 of the positive class per observation between reference and generated labels, and their macro mean over
    /// the observations positive in either (an observation nobody calls positive has no F1 and is left out).
    /// </summary>
    /// <exception cref="ArgumentException">The lists differ in length.</exception>
    public static (IReadOnlyList<FindingF1> PerFinding, double MacroF1) LabelF1(IReadOnlyList<CxrLabels> truth, IReadOnlyList<CxrLabels> predicted)
    {
        if (truth.Count != predicted.Count) throw new ArgumentException($"label F1: {truth.Count} reference label sets but {predicted.Count} generated ones");
        var per = new List<FindingF1>();
        foreach (var o in Observations.All)
        {
            int tp = 0, fp = 0, fn = 0;
            for (int i = 0; i < truth.Count; i++)
            {
                bool t = truth[i].Has(o), p = predicted[i].Has(o);
                if (t && p) tp++; else if (p) fp++; else if (t) fn++;
            }
            per.Add(new FindingF1(o.Name(), ProbeMetrics.F1(tp, fp, fn), tp + fn, tp + fp));
        }
        return (per, ProbeMetrics.MeanFinite(per.Select(f => f.F1)));
    }

    // [CLS; patches] of the chosen rows: (n, 1 + P, D).
    private static Tensor Memory(EncodedFeatures f, int[] rows)
    {
        var idx = tensor(rows.Select(i => (long)i).ToArray());
        return cat([f.Cls.index_select(0, idx).unsqueeze(1), f.Patches.index_select(0, idx)], 1).to_type(ScalarType.Float32);
    }

    private static List<string> Greedy(ReportDecoder decoder, Tensor memory, BpeTokenizer tokenizer, int maxTokens)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long b = memory.shape[0];
        var ids = full(b, 1, tokenizer.StartId, dtype: ScalarType.Int64);
        var done = zeros(b, dtype: ScalarType.Bool);
        for (int t = 1; t < maxTokens; t++)
        {
            var logits = decoder.call(ids, memory);                 // (B, t, V)
            var next = logits.select(1, t - 1).argmax(-1);               // (B)
            next = where(done, full_like(next, tokenizer.EndId), next);
            ids = cat([ids, next.unsqueeze(1)], 1);
            done = done.logical_or(next.eq(tokenizer.EndId));
            if (done.all().item<bool>()) break;
        }
        var rows = new List<string>();
        var data = ids.data<long>().ToArray();
        long len = ids.shape[1];
        for (long i = 0; i < b; i++)
        {
            var seq = new List<int>();
            for (long j = 1; j < len; j++)
            {
                int id = (int)data[i * len + j];
                if (id == tokenizer.EndId) break;
                seq.Add(id);
            }
            rows.Add(tokenizer.Decode(seq));
        }
        return rows;
    }
}

// Parameter fields use snake_case names so state-dict keys read like PyTorch's.
#pragma warning disable IDE1006

// A pre-LayerNorm transformer decoder: causal self-attention, cross-attention to the image memory, MLP.
internal sealed class ReportDecoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding tok_emb;
    private readonly Parameter pos_emb;
    private readonly Linear mem_proj;
    private readonly LayerNorm mem_norm;
    private readonly ModuleList<DecoderBlock> blocks;
    private readonly LayerNorm ln_f;
    private readonly Linear lm_head;

    public ReportDecoder(int vocab, int memoryDim, ReportProbeOptions o) : base("report_decoder")
    {
        if (o.Width % o.Heads != 0) throw new ArgumentException($"report decoder Width {o.Width} is not divisible by Heads {o.Heads}");
        tok_emb = nn.Embedding(vocab, o.Width);
        pos_emb = nn.Parameter(randn(1, o.MaxTokens, o.Width) * 0.02);
        mem_proj = nn.Linear(memoryDim, o.Width);
        mem_norm = Layers.LayerNorm(o.Width, 1e-5);
        blocks = new ModuleList<DecoderBlock>(Enumerable.Range(0, o.Layers).Select(_ => new DecoderBlock(o.Width, o.Heads)).ToArray());
        ln_f = Layers.LayerNorm(o.Width, 1e-5);
        lm_head = nn.Linear(o.Width, vocab);
        RegisterComponents();
    }

    // tokens (B, T) int64, memory (B, M, Dm) → logits (B, T, V)
    public override Tensor forward(Tensor tokens, Tensor memory)
    {
        using var scope = NewDisposeScope();
        long t = tokens.shape[1];
        if (t > pos_emb.shape[1]) throw new ArgumentException($"report decoder: {t} tokens exceed MaxTokens {pos_emb.shape[1]}");
        var x = tok_emb.call(tokens) + pos_emb.narrow(1, 0, t);  // (B, T, W)
        var m = mem_norm.call(mem_proj.call(memory));          // (B, M, W)
        foreach (var blk in blocks) x = blk.call(x, m);
        return lm_head.call(ln_f.call(x)).MoveToOuterDisposeScope();
    }
}

internal sealed class DecoderBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly LayerNorm ln1, ln2, ln3;
    private readonly Linear self_qkv, self_out, cross_q, cross_kv, cross_out, fc1, fc2;
    private readonly int _heads;

    public DecoderBlock(int width, int heads) : base("block")
    {
        _heads = heads;
        ln1 = Layers.LayerNorm(width, 1e-5); ln2 = Layers.LayerNorm(width, 1e-5); ln3 = Layers.LayerNorm(width, 1e-5);
        self_qkv = nn.Linear(width, 3 * width); self_out = nn.Linear(width, width);
        cross_q = nn.Linear(width, width); cross_kv = nn.Linear(width, 2 * width); cross_out = nn.Linear(width, width);
        fc1 = nn.Linear(width, 4 * width); fc2 = nn.Linear(4 * width, width);
        RegisterComponents();
    }

    private Tensor Heads(Tensor y) => MultiHeadAttention.SplitHeads(y, _heads);   // (B, heads, T, d)

    // The library's one attention math (RoentGen.Nn), over this block's fused projections; (B, heads, T, d) → (B, T, W).
    private Tensor Attend(Tensor q, Tensor k, Tensor v, bool causal, string name) =>
        MultiHeadAttention.MergeHeads(ScaledDotProductProcessor.Instance.Attend(Heads(q), Heads(k), Heads(v), new AttentionCall(name, !causal, _heads, IsCausal: causal)));

    // x (B, T, W), memory (B, M, W)
    public override Tensor forward(Tensor x, Tensor memory)
    {
        using var scope = NewDisposeScope();
        var qkv = self_qkv.call(ln1.call(x)).chunk(3, -1);
        x = x + self_out.call(Attend(qkv[0], qkv[1], qkv[2], causal: true, "self"));
        var kv = cross_kv.call(memory).chunk(2, -1);
        x = x + cross_out.call(Attend(cross_q.call(ln2.call(x)), kv[0], kv[1], causal: false, "cross"));
        x = x + fc2.call(nn.functional.gelu(fc1.call(ln3.call(x))));
        return x.MoveToOuterDisposeScope();
    }
}
