using System.Diagnostics;
using RoentGen.Platform;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>Median, fastest and slowest of timed runs, in milliseconds.</summary>
/// <param name="MedianMs">Median (the mean of the middle two for an even count, as the peer script reports).</param>
/// <param name="MinMs">Fastest run.</param>
/// <param name="MaxMs">Slowest run.</param>
/// <param name="Runs">Timed runs.</param>
public sealed record StepTimes(double MedianMs, double MinMs, double MaxMs, int Runs)
{
    /// <summary>The summary of some timings.</summary>
    /// <exception cref="ArgumentException">No timings.</exception>
    public static StepTimes Of(IReadOnlyList<double> ms)
    {
        if (ms.Count == 0) throw new ArgumentException("no timings", nameof(ms));
        var s = ms.OrderBy(v => v).ToArray();
        int n = s.Length;
        double median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        return new StepTimes(median, s[0], s[^1], n);
    }
}

/// <summary>What <see cref="PeerUnetBenchmark.Run"/> measured.</summary>
/// <param name="Parameters">Parameters of the UNet.</param>
/// <param name="Fp32">float32 training steps.</param>
/// <param name="Bf16">Mixed-precision (bfloat16 compute, float32 master weights) training steps.</param>
/// <param name="Fp32Loss">Loss of the last float32 step.</param>
/// <param name="Bf16Loss">Loss of the last bfloat16 step.</param>
/// <param name="Threads">Intra-op threads.</param>
public sealed record PeerUnetResult(long Parameters, StepTimes Fp32, StepTimes Bf16, double Fp32Loss, double Bf16Loss, int Threads);

/// <summary>
/// The training step of the peer benchmark's UNet (<c>shared/bench/peer-unet/bench.py</c>, class UNet: the LDM/SD layout
/// with model channels 64, multipliers (1, 2, 2), 2 ResNet blocks per level, GroupNorm(32), linear-projection spatial
/// transformers with head width 32 and context width 256 on levels 1 and 2 and in the middle) built from this library's
/// <see cref="UNet2DConditionModel"/>, timed as the script times it: batch 32, latents 4x16x16, context 32x256, MSE to
/// the noise, AdamW at 1e-4; 3 warm-up steps then 10 timed, in float32 and in mixed bfloat16.
/// </summary>
public static class PeerUnetBenchmark
{
    /// <summary>The peer's architecture as a UNet config.</summary>
    public static UNetConfig Config => new()
    {
        InChannels = 4, OutChannels = 4, BlockOutChannels = [64, 128, 128], CrossAttentionLevels = [false, true, true], LayersPerBlock = 2,
        AttentionHeadDim = 32, CrossAttentionDim = 256, NormGroups = 32, MidBlockAttention = true, UseLinearProjection = true,
    };

    /// <summary>Batch size of the peer's step.</summary>
    public const int Batch = 32;
    /// <summary>Context tokens per sample.</summary>
    public const int ContextTokens = 32;

    /// <summary>Times float32 and mixed-precision training steps of the peer UNet.</summary>
    /// <param name="warmup">Untimed steps before each timed loop (the script's 3).</param>
    /// <param name="timed">Timed steps (the script's 10).</param>
    /// <param name="batch">Batch size (the script's 32; smaller for tests).</param>
    /// <param name="log">Progress lines.</param>
    public static PeerUnetResult Run(int warmup = 3, int timed = 10, int batch = Batch, Action<string>? log = null)
    {
        if (warmup < 0 || timed < 1 || batch < 1) throw new ArgumentException($"warm-up {warmup} must be >= 0, timed steps {timed} and batch {batch} >= 1");
        log ??= _ => { };
        manual_seed(0);
        var cfg = Config;
        var unet = new UNet2DConditionModel(cfg);
        long parameters = unet.parameters().Sum(p => p.numel());
        var x0 = randn(batch, 4, 16, 16);
        var noise = randn(batch, 4, 16, 16);
        var t = randint(0, 1000, [batch], dtype: ScalarType.Int64);
        var ctx = randn(batch, ContextTokens, cfg.CrossAttentionDim);
        var xt = x0 * 0.7 + noise * 0.7;

        var fp32 = Time(unet, null, xt, t, ctx, noise, warmup, timed);
        log($"peer UNet fp32: median {fp32.Times.MedianMs:F0} ms/step");
        var shadow = new BFloat16Shadow<UNet2DConditionModel>(unet, () => new UNet2DConditionModel(cfg));
        var bf16 = Time(unet, shadow, xt, t, ctx, noise, warmup, timed);
        log($"peer UNet bf16: median {bf16.Times.MedianMs:F0} ms/step");
        return new PeerUnetResult(parameters, fp32.Times, bf16.Times, fp32.Loss, bf16.Loss, get_num_threads());
    }

    // AdamW steps, zero_grad, forward (on the bf16 copy when given), loss in float32, backward, optimizer step, as the script.
    private static (StepTimes Times, double Loss) Time(UNet2DConditionModel unet, BFloat16Shadow<UNet2DConditionModel>? shadow,
        Tensor xt, Tensor t, Tensor ctx, Tensor noise, int warmup, int timed)
    {
        using var opt = new ScalarSafe.AdamW(unet.parameters(), lr: 1e-4);
        unet.train();
        shadow?.PullWeights();
        var compute = shadow?.Compute ?? unet;
        double last = double.NaN;
        void Step()
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            var output = compute.call(xt, t, ctx);
            var loss = nn.functional.mse_loss(output.to(ScalarType.Float32), noise);
            loss.backward();
            shadow?.PushGradients();
            opt.step();
            shadow?.PullWeights();
            last = loss.item<float>();
        }
        for (int i = 0; i < warmup; i++) Step();
        var ms = new List<double>();
        for (int i = 0; i < timed; i++)
        {
            var sw = Stopwatch.StartNew();
            Step();
            ms.Add(sw.Elapsed.TotalMilliseconds);
        }
        return (StepTimes.Of(ms), last);
    }
}
