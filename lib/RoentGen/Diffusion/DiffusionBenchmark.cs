using System.Diagnostics;
using RoentGen.Data.Phantoms;
using RoentGen.Nn;
using RoentGen.Platform;
using RoentGen.Text;
using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>Settings of <see cref="DiffusionBenchmark.Run"/>.</summary>
public sealed record DiffusionBenchOptions
{
    /// <summary>Untimed steps before each timed loop (allocator and thread-pool warm-up).</summary>
    public int WarmupSteps { get; init; } = 2;
    /// <summary>Timed training steps per model (per round for the denoiser, see <see cref="Rounds"/>).</summary>
    public int TimedSteps { get; init; } = 8;
    /// <summary>
    /// Rounds of the denoiser's float32 and bfloat16 training steps, timed alternately (float32, bfloat16, float32, ...);
    /// the figures are the medians over rounds, so that a noisy stretch of the machine does not land on one precision.
    /// </summary>
    public int Rounds { get; init; } = 3;
    /// <summary>Images sampled in the sampling figure.</summary>
    public int SampleImages { get; init; } = 16;
    /// <summary>Images per sampling batch.</summary>
    public int SampleBatch { get; init; } = 8;
    /// <summary>Sampler steps.</summary>
    public int SampleSteps { get; init; } = 20;
    /// <summary>Classifier-free guidance scale of the sampling figure (guided sampling runs the UNet on 2x the batch).</summary>
    public double GuidanceScale { get; init; } = 4;
    /// <summary>The float32 matmul peak to compare with; null: measured in the same run.</summary>
    public double? MatmulPeakGflops { get; init; }
    /// <summary>The bfloat16 matmul peak to compare the mixed-precision training with; null: measured in the same run.</summary>
    public double? Bf16MatmulPeakGflops { get; init; }
}

/// <summary>What <see cref="DiffusionBenchmark.Run"/> measured, for one experiment config on this machine.</summary>
public sealed record DiffusionBenchResult
{
    /// <summary>Intra-op threads used.</summary>
    public int Threads { get; init; }
    /// <summary>float32 2048² matmul throughput (the peak the models are compared with).</summary>
    public double MatmulPeakGflops { get; init; }
    /// <summary>Autoencoder training throughput.</summary>
    public double VaeTrainImagesPerSecond { get; init; }
    /// <summary>Autoencoder training FLOPs per step (3x the counted forward).</summary>
    public double VaeGflopPerStep { get; init; }
    /// <summary>Achieved autoencoder training GFLOP/s.</summary>
    public double VaeGflops { get; init; }
    /// <summary>Denoiser (UNet + text encoder) training throughput.</summary>
    public double LdmTrainImagesPerSecond { get; init; }
    /// <summary>Denoiser training steps per second.</summary>
    public double LdmStepsPerSecond { get; init; }
    /// <summary>Denoiser training FLOPs per step (3x the counted forward of UNet and text encoder).</summary>
    public double LdmGflopPerStep { get; init; }
    /// <summary>Achieved denoiser training GFLOP/s.</summary>
    public double LdmGflops { get; init; }
    /// <summary><see cref="LdmGflops"/> / <see cref="MatmulPeakGflops"/>.</summary>
    public double LdmFractionOfPeak => LdmGflops / MatmulPeakGflops;
    /// <summary>bfloat16 2048² matmul throughput (the peak the mixed-precision training is compared with).</summary>
    public double Bf16MatmulPeakGflops { get; init; }
    /// <summary>Denoiser training throughput in mixed precision (bfloat16 compute on copies of the float32 weights).</summary>
    public double LdmBf16TrainImagesPerSecond { get; init; }
    /// <summary>Achieved denoiser training GFLOP/s in mixed precision (the same counted FLOPs per step).</summary>
    public double LdmBf16Gflops { get; init; }
    /// <summary><see cref="LdmBf16TrainImagesPerSecond"/> / <see cref="LdmTrainImagesPerSecond"/>.</summary>
    public double LdmBf16Speedup => LdmBf16TrainImagesPerSecond / LdmTrainImagesPerSecond;
    /// <summary><see cref="LdmBf16Gflops"/> / <see cref="Bf16MatmulPeakGflops"/>.</summary>
    public double LdmBf16FractionOfPeak => LdmBf16Gflops / Bf16MatmulPeakGflops;
    /// <summary>Guided text-to-image sampling throughput (decode included).</summary>
    public double SampleImagesPerSecond { get; init; }
    /// <summary>The same sampling with the UNet in bfloat16 (<see cref="TextToImagePipeline.Precision"/>).</summary>
    public double SampleBf16ImagesPerSecond { get; init; }
    /// <summary><see cref="SampleBf16ImagesPerSecond"/> / <see cref="SampleImagesPerSecond"/>.</summary>
    public double SamplingBf16Speedup => SampleBf16ImagesPerSecond / SampleImagesPerSecond;
    /// <summary>Bytes of the float32 weights of VAE, UNet and text encoder, in MiB.</summary>
    public double WeightsMb { get; init; }
    /// <summary>Resident memory one no-grad UNet call on a guided batch adds to the process, in MiB.</summary>
    public double OneUnetCallMb { get; init; }
    /// <summary>Weights plus the resident memory a whole no-grad sampling run adds to the process, in MiB.</summary>
    public double SamplingPeakMb { get; init; }
    /// <summary><see cref="SamplingPeakMb"/> / (<see cref="WeightsMb"/> + <see cref="OneUnetCallMb"/>); NaN when peak RSS cannot be reset here.</summary>
    public double SamplingMemoryRatio => SamplingPeakMb / (WeightsMb + OneUnetCallMb);
    /// <summary>Peak resident memory of the process at the end, in MiB.</summary>
    public double PeakRssMb { get; init; }

    /// <summary>The figures in <c>roentgen bench</c> form.</summary>
    public IReadOnlyList<BenchFigure> ToFigures(string model) =>
    [
        new("LDM training", LdmTrainImagesPerSecond, "images/s", $"{model}: UNet + text encoder, AdamW, {LdmStepsPerSecond:F2} steps/s, {Threads} threads"),
        new("LDM training FLOPs", LdmGflopPerStep, "GFLOP/step", "3x the counted forward (convolutions, linear layers, attention products)"),
        new("LDM training achieved", LdmGflops, "GFLOP/s", $"{LdmFractionOfPeak:P0} of the float32 matmul peak {MatmulPeakGflops:F0} GFLOP/s measured in this run"),
        new("VAE training", VaeTrainImagesPerSecond, "images/s", $"{model}: {VaeGflopPerStep:F1} GFLOP/step, {VaeGflops:F1} GFLOP/s ({VaeGflops / MatmulPeakGflops:P0} of peak)"),
        new("LDM training bf16", LdmBf16TrainImagesPerSecond, "images/s", $"mixed precision (bfloat16 compute, float32 master weights): {LdmBf16Speedup:F2}x float32; {LdmBf16Gflops:F0} GFLOP/s, {LdmBf16FractionOfPeak:P0} of the bfloat16 matmul peak {Bf16MatmulPeakGflops:F0} GFLOP/s measured in this run"),
        new("sampling", SampleImagesPerSecond, "images/s", "DPM-Solver++ 2M, classifier-free guidance, decode included"),
        new("sampling bf16", SampleBf16ImagesPerSecond, "images/s", $"the same with the UNet in bfloat16: {SamplingBf16Speedup:F2}x float32"),
        new("sampling peak memory", SamplingPeakMb, "MiB", $"weights + what sampling adds; {SamplingMemoryRatio:F2}x the weights ({WeightsMb:F1} MiB) plus one UNet call ({OneUnetCallMb:F1} MiB)"),
    ];
}

/// <summary>
/// Speed and memory of an experiment's models on this machine, with random weights (speed does not depend on them):
/// training images/s of the autoencoder and of the denoiser, FLOPs per step and the fraction of the matmul peak they
/// reach, guided sampling images/s, and the peak memory of no-grad sampling against weights plus one UNet call.
/// </summary>
public static class DiffusionBenchmark
{
    /// <summary>Runs the benchmark for <paramref name="cfg"/>.</summary>
    public static DiffusionBenchResult Run(LdmExperimentConfig cfg, DiffusionBenchOptions? options = null, Action<string>? log = null)
    {
        var o = options ?? new DiffusionBenchOptions();
        if (o.TimedSteps < 1 || o.Rounds < 1 || o.SampleImages < 1 || o.SampleBatch < 1 || o.SampleSteps < 1)
            throw new ArgumentException($"TimedSteps ({o.TimedSteps}), Rounds ({o.Rounds}), SampleImages ({o.SampleImages}), SampleBatch ({o.SampleBatch}) and SampleSteps ({o.SampleSteps}) must be at least 1");
        log ??= _ => { };
        double peak = o.MatmulPeakGflops ?? Doctor.MeasureMatmulGflops(2048);
        double bf16Peak = o.Bf16MatmulPeakGflops ?? Doctor.MeasureMatmulGflops(2048, 5, ScalarType.BFloat16);
        log($"matmul peak: float32 {peak:F0} GFLOP/s, bfloat16 {bf16Peak:F0} GFLOP/s");

        manual_seed(cfg.Seed);
        var reports = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = cfg.DataSeed }).Generate(0, 200).Select(c => $"{c.Impression} {c.Findings}").ToList();
        var tokenizer = BpeTokenizer.Train(reports, cfg.TokenizerVocab);
        var textCfg = cfg.Text with { VocabSize = tokenizer.VocabSize, EndTokenId = tokenizer.EndId, MaxPositions = cfg.MaxTokens };
        var vae = new AutoencoderKL(cfg.Vae);
        var unet = new UNet2DConditionModel(cfg.Unet with { InChannels = cfg.Vae.LatentChannels, OutChannels = cfg.Vae.LatentChannels, CrossAttentionDim = textCfg.HiddenSize });
        var text = new ClipTextModel(textCfg);
        double weightsMb = new nn.Module[] { vae, unet, text }.Sum(m => m.parameters().Sum(p => p.numel() * p.element_size())) / 1048576.0;
        var pipeline = new TextToImagePipeline(vae, unet, text, tokenizer, new NoiseSchedule(cfg.Schedule), cfg.LatentSize, cfg.MaxTokens);
        int latentC = cfg.Vae.LatentChannels, side = cfg.LatentSize;
        var prompts = Enumerable.Range(0, o.SampleImages).Select(i => reports[i % reports.Count]).ToList();
        var request = new SampleRequest { Prompts = prompts, Steps = o.SampleSteps, GuidanceScale = o.GuidanceScale, BatchSize = o.SampleBatch, Seed = 1 };

        // Memory first, before training allocates optimizer state. Each figure is the resident memory a stretch of work
        // adds to the process (freed native memory trimmed first, peak reset): one guided UNet call, then a whole
        // sampling run, both after a short warm-up run so that one-off costs (kernel caches, thread pools) count in neither.
        using (NewDisposeScope()) pipeline.Sample(request with { Prompts = prompts.Take(o.SampleBatch).ToList(), Steps = 2 });
        double oneCall = MeasureAdded(() =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            unet.eval(); text.eval();
            var ctx = pipeline.EncodePrompts(Enumerable.Repeat(reports[0], 2 * o.SampleBatch).ToList());
            unet.call(randn(2 * o.SampleBatch, latentC, side, side), full(2 * o.SampleBatch, 500L, dtype: ScalarType.Int64), ctx);
        });
        double samplingExtra = MeasureAdded(() => { using (NewDisposeScope()) pipeline.Sample(request); });
        var sampleRounds = new List<double>();
        var sampleBf16Rounds = new List<double>();
        for (int round = 0; round < o.Rounds; round++)
        {
            pipeline.Precision = Precision.Float32;
            var sw = Stopwatch.StartNew();
            using (NewDisposeScope()) pipeline.Sample(request);
            sampleRounds.Add(sw.Elapsed.TotalSeconds);
            pipeline.Precision = Precision.BFloat16;
            if (round == 0)   // warm-up: builds the bf16 copy
                using (NewDisposeScope()) pipeline.Sample(request with { Prompts = prompts.Take(o.SampleBatch).ToList(), Steps = 2 });
            sw.Restart();
            using (NewDisposeScope()) pipeline.Sample(request);
            sampleBf16Rounds.Add(sw.Elapsed.TotalSeconds);
        }
        pipeline.Precision = Precision.Float32;
        double sampleSeconds = StepTimes.Of(sampleRounds).MedianMs, sampleBf16Seconds = StepTimes.Of(sampleBf16Rounds).MedianMs;   // seconds here
        log($"sampling: {o.SampleImages / sampleSeconds:F2} images/s, bf16 {o.SampleImages / sampleBf16Seconds:F2} images/s (medians of {o.Rounds} alternating rounds); adds {samplingExtra:F0} MiB (weights {weightsMb:F1} MiB, one UNet call adds {oneCall:F1} MiB)");

        // Denoiser training: UNet + text encoder, as LatentDiffusionRuns trains them.
        unet.train(); text.train();
        var ldmOpt = new ScalarSafe.AdamW([new AdamW.ParamGroup(unet.parameters(), cfg.UnetLr, 0.9, 0.999, 1e-8, 0.01), new AdamW.ParamGroup(text.parameters(), cfg.TextLr, 0.9, 0.999, 1e-8, 0.01)]);
        var ids = tokenizer.EncodeBatch(prompts.Take(1).ToList(), cfg.MaxTokens).Ids.expand(cfg.LdmBatch, -1).contiguous();
        var latents = randn(cfg.LdmBatch, latentC, side, side);
        long ldmFlops;
        using (NewDisposeScope())
        {
            var (unetFlops, textFlops) = ForwardFlops(unet, text, latents, randint(0, 1000, [cfg.LdmBatch], dtype: ScalarType.Int64), ids);
            ldmFlops = 3 * (unetFlops + textFlops);
        }
        void Fp32Step()
        {
            ldmOpt.zero_grad();
            var noise = randn_like(latents);
            var pred = unet.call(latents + noise, randint(0, 1000, [cfg.LdmBatch], dtype: ScalarType.Int64), text.call(ids));
            var loss = nn.functional.mse_loss(pred, noise);
            loss.backward();
            nn.utils.clip_grad_norm_(unet.parameters().Concat(text.parameters()), 1.0);
            ldmOpt.step();
        }

        // The same step in mixed precision, as LatentDiffusionRuns trains with Precision BFloat16: forward and backward on
        // bfloat16 copies, gradients added to the float32 weights, the optimizer on those, the copies refreshed.
        var unetCopy = new BFloat16Shadow<UNet2DConditionModel>(unet, () => new UNet2DConditionModel(unet.Config));
        var textCopy = new BFloat16Shadow<ClipTextModel>(text, () => new ClipTextModel(text.Config));
        void Bf16Step()
        {
            ldmOpt.zero_grad();
            var noise = randn_like(latents);
            var pred = unetCopy.Compute.call(latents + noise, randint(0, 1000, [cfg.LdmBatch], dtype: ScalarType.Int64), textCopy.Compute.call(ids));
            var loss = nn.functional.mse_loss(pred.to(ScalarType.Float32), noise);
            loss.backward();
            unetCopy.PushGradients(); textCopy.PushGradients();
            nn.utils.clip_grad_norm_(unet.parameters().Concat(text.parameters()), 1.0);
            ldmOpt.step();
            unetCopy.PullWeights(); textCopy.PullWeights();
        }

        var fp32Rounds = new List<double>();
        var bf16Rounds = new List<double>();
        for (int round = 0; round < o.Rounds; round++)
        {
            fp32Rounds.Add(TimeSteps(o, Fp32Step));
            unetCopy.PullWeights(); textCopy.PullWeights();
            bf16Rounds.Add(TimeSteps(o, Bf16Step));
        }
        double ldmSeconds = StepTimes.Of(fp32Rounds).MedianMs, ldmBf16Seconds = StepTimes.Of(bf16Rounds).MedianMs;   // seconds here
        double ldmSps = o.TimedSteps / ldmSeconds;
        log($"LDM training: {ldmSps * cfg.LdmBatch:F1} images/s, {ldmFlops / 1e9:F1} GFLOP/step, {ldmFlops * ldmSps / 1e9:F1} GFLOP/s (median of {fp32Rounds.Count} rounds)");
        double ldmBf16Sps = o.TimedSteps / ldmBf16Seconds;
        log($"LDM training bf16: {ldmBf16Sps * cfg.LdmBatch:F1} images/s, {ldmFlops * ldmBf16Sps / 1e9:F1} GFLOP/s");
        ldmOpt.Dispose();

        // Autoencoder training with its loss.
        vae.train();
        var vaeOpt = new ScalarSafe.AdamW(vae.parameters(), lr: cfg.VaeLr, weight_decay: 0);
        var images = rand(cfg.VaeBatch, 1, cfg.ImageSize, cfg.ImageSize) * 2 - 1;
        long vaeFlops;
        using (var counter = new FlopCounter(vae))
        using (no_grad())
        using (NewDisposeScope())
        {
            vae.Decode(vae.Encode(images).Mean);
            vaeFlops = 3 * counter.Flops;
        }
        double vaeSeconds = TimeSteps(o, () =>
        {
            vaeOpt.zero_grad();
            var posterior = vae.Encode(images);
            var terms = VaeLoss.Compute(images, vae.Decode(posterior.Sample()), posterior, cfg.VaeLoss);
            terms.Total.backward();
            vaeOpt.step();
        });
        double vaeSps = o.TimedSteps / vaeSeconds;
        log($"VAE training: {vaeSps * cfg.VaeBatch:F1} images/s, {vaeFlops / 1e9:F1} GFLOP/step");
        vaeOpt.Dispose();

        return new DiffusionBenchResult
        {
            Threads = get_num_threads(),
            MatmulPeakGflops = peak,
            Bf16MatmulPeakGflops = bf16Peak,
            LdmBf16TrainImagesPerSecond = ldmBf16Sps * cfg.LdmBatch,
            LdmBf16Gflops = ldmFlops * ldmBf16Sps / 1e9,
            SampleBf16ImagesPerSecond = o.SampleImages / sampleBf16Seconds,
            VaeTrainImagesPerSecond = vaeSps * cfg.VaeBatch,
            VaeGflopPerStep = vaeFlops / 1e9,
            VaeGflops = vaeFlops * vaeSps / 1e9,
            LdmTrainImagesPerSecond = ldmSps * cfg.LdmBatch,
            LdmStepsPerSecond = ldmSps,
            LdmGflopPerStep = ldmFlops / 1e9,
            LdmGflops = ldmFlops * ldmSps / 1e9,
            SampleImagesPerSecond = o.SampleImages / sampleSeconds,
            WeightsMb = weightsMb,
            OneUnetCallMb = oneCall,
            SamplingPeakMb = weightsMb + samplingExtra,
            PeakRssMb = Memory.PeakRssMb(),
        };
    }

    /// <summary>
    /// The FLOPs of one forward pass of the text encoder on <paramref name="ids"/> and of the UNet on its output:
    /// convolutions and linear layers through <see cref="FlopCounter"/>, and both attention products (QKᵀ and AV) of every
    /// attention module of both models. The models' attention processors are put back as they were.
    /// </summary>
    public static (long Unet, long Text) ForwardFlops(UNet2DConditionModel unet, ClipTextModel text, Tensor latents, Tensor timesteps, Tensor ids)
    {
        ArgumentNullException.ThrowIfNull(unet);
        ArgumentNullException.ThrowIfNull(text);
        var unetBefore = unet.modules().OfType<MultiHeadAttention>().ToDictionary(a => a, a => a.Processor);
        var textBefore = text.AttentionModules.ToDictionary(a => a, a => a.Processor);
        using var counter = new FlopCounter(unet);
        using var textCounter = new FlopCounter(text);
        try
        {
            unet.SetAttentionProcessor(_ => new CountingAttentionProcessor(counter));
            text.SetAttentionProcessor(_ => new CountingAttentionProcessor(textCounter));
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            unet.call(latents, timesteps, text.call(ids));
            return (counter.Flops, textCounter.Flops);
        }
        finally
        {
            foreach (var (a, p) in unetBefore) a.Processor = p;
            foreach (var (a, p) in textBefore) a.Processor = p;
        }
    }

    // Resident memory (MiB) the action adds above the process as it is now; NaN where the peak cannot be reset.
    private static double MeasureAdded(Action action)
    {
        Memory.TrimNativeHeap();
        double before = Memory.CurrentRssMb();
        bool reset = Memory.ResetPeakRss();
        action();
        return reset ? Math.Max(0, Memory.PeakRssMb() - before) : double.NaN;
    }

    private static double TimeSteps(DiffusionBenchOptions o, Action step)
    {
        for (int i = 0; i < o.WarmupSteps; i++)
            using (NewDisposeScope()) step();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < o.TimedSteps; i++)
            using (NewDisposeScope()) step();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Scaled-dot-product attention that adds its two matrix products (QKᵀ and AV) to a FLOP counter.</summary>
    private sealed class CountingAttentionProcessor(FlopCounter counter) : IAttentionProcessor
    {
        public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call)
        {
            // (B, heads, Tq, d) x (B, heads, d, Tk) and (B, heads, Tq, Tk) x (B, heads, Tk, d): 2 multiply-adds each.
            long b = query.shape[0], h = query.shape[1], tq = query.shape[2], d = query.shape[3], tk = key.shape[2];
            counter.Add(2 * 2 * b * h * tq * tk * d);
            return ScaledDotProductProcessor.Instance.Attend(query, key, value, call);
        }
    }
}
