using RoentGen.Diffusion;
using RoentGen.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

[Collection(ProcessStateCollection.Name)]
public class DiffusionBenchmarkTests
{
    [Fact]
    public void Flop_counter_counts_convolutions_and_linear_layers_exactly()
    {
        var conv = nn.Conv2d(3, 8, 3, padding: 1);
        var linear = nn.Linear(8, 4);
        var model = nn.Sequential(conv, nn.Flatten(2), nn.AdaptiveAvgPool1d(1), nn.Flatten(1), linear);
        using var counter = new FlopCounter(model);
        using (no_grad()) model.call(randn(2, 3, 10, 10));
        long convFlops = 2L * (2 * 8 * 10 * 10) * (3 * 3 * 3);   // 2 per multiply-add, per output element
        long linearFlops = 2L * (2 * 4) * 8;
        Assert.Equal(convFlops + linearFlops, counter.Flops);
        counter.Dispose();
        using (no_grad()) model.call(randn(2, 3, 10, 10));
        Assert.Equal(convFlops + linearFlops, counter.Flops);   // hooks removed
    }

    [Fact]
    public void Benchmark_of_the_tiny_models_reports_speed_flops_and_memory()
    {
        var r = DiffusionBenchmark.Run(LdmExperimentConfig.Tiny,
            new DiffusionBenchOptions { WarmupSteps = 1, TimedSteps = 1, SampleImages = 2, SampleBatch = 2, SampleSteps = 2, MatmulPeakGflops = 100, Bf16MatmulPeakGflops = 100 });
        Assert.True(r.LdmTrainImagesPerSecond > 0 && r.VaeTrainImagesPerSecond > 0 && r.SampleImagesPerSecond > 0);
        Assert.True(r.LdmGflopPerStep > 0.001, $"LDM {r.LdmGflopPerStep} GFLOP/step");
        Assert.True(r.VaeGflopPerStep > 0.001, $"VAE {r.VaeGflopPerStep} GFLOP/step");
        Assert.Equal(8, r.ToFigures("tiny").Count);
        Assert.True(r.WeightsMb > 0);

        // The per-step figure is three forward passes of the counted work at the training batch and shapes (checked by
        // hand in the test below): models of the same shapes, built here, count the same.
        var cfg = LdmExperimentConfig.Tiny;
        var text = new RoentGen.Text.ClipTextModel(cfg.Text with { MaxPositions = cfg.MaxTokens });
        var unet = new UNet2DConditionModel(cfg.Unet with { InChannels = cfg.Vae.LatentChannels, OutChannels = cfg.Vae.LatentChannels, CrossAttentionDim = cfg.Text.HiddenSize });
        var (u, t) = DiffusionBenchmark.ForwardFlops(unet, text, randn(cfg.LdmBatch, cfg.Vae.LatentChannels, cfg.LatentSize, cfg.LatentSize),
            randint(0, 1000, [cfg.LdmBatch], dtype: ScalarType.Int64), randint(0, 10, [cfg.LdmBatch, cfg.MaxTokens], dtype: ScalarType.Int64));
        Assert.Equal(3 * (u + t) / 1e9, r.LdmGflopPerStep, 9);
        Assert.Equal(r.LdmGflopPerStep * r.LdmStepsPerSecond, r.LdmGflops, 6);
    }

    [Fact]
    public void Text_encoder_forward_flops_match_a_hand_count_with_its_attention_products()
    {
        // One layer, width d, MLP width m, batch b of T tokens. Per token: q, k, v and out projections 4 * 2*d*d, the MLP
        // 2*d*m twice; per sequence: QKᵀ and AV, 2*T*T*d each (heads x head width = d; causal masking still computes both).
        const int b = 2, T = 5, d = 16, m = 24;
        var textCfg = new RoentGen.Text.ClipTextConfig { VocabSize = 50, MaxPositions = T, HiddenSize = d, Layers = 1, Heads = 2, IntermediateSize = m, EndTokenId = 49 };
        var text = new RoentGen.Text.ClipTextModel(textCfg);
        var unet = new UNet2DConditionModel(LdmExperimentConfig.Tiny.Unet with { InChannels = 4, OutChannels = 4, CrossAttentionDim = d });
        var ids = randint(0, 50, [b, T], dtype: ScalarType.Int64);
        var latents = randn(b, 4, 8, 8);
        var t = tensor(new long[] { 3, 700 });
        long expectedText = b * T * (4L * 2 * d * d + 2L * 2 * d * m) + b * 2L * 2 * T * T * d;

        using (no_grad())
        {
            var before = unet.call(latents, t, text.call(ids));
            var (unetFlops, textFlops) = DiffusionBenchmark.ForwardFlops(unet, text, latents, t, ids);
            Assert.Equal(expectedText, textFlops);

            // The UNet's count: its convolutions and linear layers, plus QKᵀ and AV of every attention module, whose
            // token counts are read here from the module inputs seen by a recording processor.
            long attention = 0;
            unet.SetAttentionProcessor(_ => new RecordingProcessor(q => k => attention += 2L * 2 * q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.shape[3]));
            using (var convAndLinear = new FlopCounter(unet))
            {
                unet.call(latents, t, text.call(ids));
                Assert.True(attention > 0, "the tiny UNet has attention");
                Assert.Equal(convAndLinear.Flops + attention, unetFlops);
            }
            unet.SetAttentionProcessor(_ => ScaledDotProductProcessor.Instance);
            // The models are left as they were: the same output as before counting.
            Assert.True(allclose(before, unet.call(latents, t, text.call(ids))), "counting changed the model's output");
        }
    }

    private sealed class RecordingProcessor(Func<Tensor, Action<Tensor>> record) : IAttentionProcessor
    {
        public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call)
        {
            record(query)(key);
            return ScaledDotProductProcessor.Instance.Attend(query, key, value, call);
        }
    }
}
