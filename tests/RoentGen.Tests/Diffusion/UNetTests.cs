using RoentGen.Diffusion;
using RoentGen.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

public class UNetTests
{
    private static readonly UNetConfig Tiny = new()
    {
        BlockOutChannels = [32, 64], CrossAttentionLevels = [true, false], NormGroups = 8,
        AttentionHeadDim = 16, CrossAttentionDim = 24, LayersPerBlock = 1,
    };

    [Fact]
    public void Parameter_names_follow_diffusers_UNet2DConditionModel()
    {
        using var unet = new UNet2DConditionModel(Tiny);
        var p = unet.named_parameters().ToDictionary(x => x.name, x => x.parameter.shape);
        Assert.Equal([32L, 4, 3, 3], p["conv_in.weight"]);
        Assert.Equal([128L, 32], p["time_embedding.linear_1.weight"]);
        Assert.Equal([128L, 128], p["time_embedding.linear_2.weight"]);
        Assert.Equal([32L, 128], p["down_blocks.0.resnets.0.time_emb_proj.weight"]);
        Assert.Equal([32L, 24], p["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"]);
        Assert.Equal([32L, 32], p["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"]);
        Assert.False(p.ContainsKey("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias"));
        Assert.Equal([32L], p["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.bias"]);
        Assert.Equal([256L, 32], p["down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight"]);
        Assert.Equal([32L, 128], p["down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.weight"]);
        Assert.Equal([32L, 32, 1, 1], p["down_blocks.0.attentions.0.proj_in.weight"]);
        Assert.Equal([32L, 32, 3, 3], p["down_blocks.0.downsamplers.0.conv.weight"]);
        Assert.Equal([64L, 32, 1, 1], p["down_blocks.1.resnets.0.conv_shortcut.weight"]);
        Assert.Contains("mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight", p.Keys);
        Assert.Contains("mid_block.resnets.1.conv2.weight", p.Keys);
        // Up path: LayersPerBlock + 1 resnets per level over concatenated skips.
        Assert.Equal([64L, 128, 3, 3], p["up_blocks.0.resnets.0.conv1.weight"]);
        Assert.Equal([64L, 64 + 32, 3, 3], p["up_blocks.0.resnets.1.conv1.weight"]);
        Assert.Equal([64L, 64, 3, 3], p["up_blocks.0.upsamplers.0.conv.weight"]);
        Assert.Equal([32L, 64 + 32, 3, 3], p["up_blocks.1.resnets.0.conv1.weight"]);
        Assert.Contains("up_blocks.1.attentions.1.transformer_blocks.0.norm3.weight", p.Keys);
        Assert.False(p.ContainsKey("up_blocks.1.upsamplers.0.conv.weight"));
        Assert.Equal([32L], p["conv_norm_out.weight"]);
        Assert.Equal([4L, 32, 3, 3], p["conv_out.weight"]);
    }

    [Fact]
    public void Forward_keeps_the_latent_shape_and_listens_to_the_text()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        using var unet = new UNet2DConditionModel(Tiny);
        var x = randn(2, 4, 8, 8);
        var t = tensor(new long[] { 10, 900 });
        var ctxA = randn(2, 5, 24);
        var ctxB = randn(2, 5, 24);
        var outA = unet.forward(x, t, ctxA);
        Assert.Equal(x.shape, outA.shape);
        Assert.False(outA.allclose(unet.forward(x, t, ctxB)), "changing the text tokens did not change the prediction");
        Assert.False(outA.allclose(unet.forward(x, tensor(new long[] { 500, 500 }), ctxA)), "changing the timestep did not change the prediction");
        Assert.Throws<ArgumentException>(() => unet.forward(randn(1, 4, 7, 8), t, ctxA));
        Assert.Throws<ArgumentException>(() => unet.forward(x, t, randn(2, 5, 23)));
    }

    private sealed class CapturingProcessor : IAttentionProcessor
    {
        public readonly List<(string Name, long[] Shape)> Calls = new();
        public Tensor Attend(Tensor q, Tensor k, Tensor v, AttentionCall call)
        {
            var probs = ScaledDotProductProcessor.Probabilities(q, k);
            Calls.Add((call.Name, probs.shape));
            return matmul(probs, v);
        }
    }

    [Fact]
    public void Attention_processors_are_swappable_and_see_module_paths()
    {
        using var scope = NewDisposeScope();
        using var unet = new UNet2DConditionModel(Tiny);
        var x = randn(1, 4, 8, 8);
        var t = tensor(new long[] { 100 });
        var ctx = randn(1, 5, 24);
        var reference = unet.forward(x, t, ctx);
        var capture = new CapturingProcessor();
        unet.SetAttentionProcessor(a => a.IsCrossAttention ? capture : ScaledDotProductProcessor.Instance);
        var captured = unet.forward(x, t, ctx);
        Assert.True(captured.allclose(reference, rtol: 1e-4, atol: 1e-5), "explicit attention differs from the fused one");
        Assert.Contains(capture.Calls, c => c.Name == "down_blocks.0.attentions.0.transformer_blocks.0.attn2" && c.Shape.SequenceEqual(new long[] { 1, 2, 64, 5 }));
        Assert.Contains(capture.Calls, c => c.Name == "mid_block.attentions.0.transformer_blocks.0.attn2" && c.Shape.SequenceEqual(new long[] { 1, 4, 16, 5 }));
        Assert.Equal(1 + 1 + 2, capture.Calls.Count);   // down level 0, mid, up level 0 (two resnets)
    }

    [Fact]
    public void A_few_steps_of_training_reduce_the_denoising_loss()
    {
        manual_seed(3);
        using var unet = new UNet2DConditionModel(Tiny);
        var schedule = new NoiseSchedule(new NoiseScheduleConfig());
        var opt = optim.AdamW(unet.parameters(), lr: 2e-3);
        var data = randn(8, 4, 8, 8) * 0.1 + linspace(-1, 1, 8).view(1, 1, 1, 8);   // a learnable structure
        var ctx = zeros(8, 3, 24);
        double first = 0, last = 0;
        for (int step = 0; step < 30; step++)
        {
            using var s = NewDisposeScope();
            var noise = randn_like(data);
            var ts = randint(0, 1000, [8], dtype: ScalarType.Int64);
            var loss = nn.functional.mse_loss(unet.forward(schedule.AddNoise(data, noise, ts), ts, ctx), schedule.Target(data, noise, ts));
            opt.zero_grad();
            loss.backward();
            opt.step();
            if (step < 5) first += loss.item<float>() / 5;
            if (step >= 25) last += loss.item<float>() / 5;
        }
        Assert.True(last < first * 0.8, $"loss went from {first} to {last}");
    }
}
