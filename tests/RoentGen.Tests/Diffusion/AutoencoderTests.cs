using RoentGen.Diffusion;
using RoentGen.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

public class AutoencoderTests
{
    private static readonly VaeConfig Tiny = new() { BlockOutChannels = [16, 32], NormGroups = 8, LatentChannels = 4 };

    [Fact]
    public void Parameter_names_follow_diffusers_AutoencoderKL()
    {
        using var vae = new AutoencoderKL(Tiny);
        var p = vae.named_parameters().ToDictionary(x => x.name, x => x.parameter.shape);
        Assert.Equal([16L, 1, 3, 3], p["encoder.conv_in.weight"]);
        Assert.Equal([16L, 16, 3, 3], p["encoder.down_blocks.0.downsamplers.0.conv.weight"]);
        Assert.Equal([32L, 16, 1, 1], p["encoder.down_blocks.1.resnets.0.conv_shortcut.weight"]);
        Assert.False(p.ContainsKey("encoder.down_blocks.1.downsamplers.0.conv.weight"));
        Assert.Equal([32L, 32], p["encoder.mid_block.attentions.0.to_q.weight"]);
        Assert.Equal([32L], p["encoder.mid_block.attentions.0.to_q.bias"]);
        Assert.Equal([32L], p["encoder.mid_block.attentions.0.group_norm.weight"]);
        Assert.Equal([8L, 32, 3, 3], p["encoder.conv_out.weight"]);
        Assert.Equal([8L, 8, 1, 1], p["quant_conv.weight"]);
        Assert.Equal([4L, 4, 1, 1], p["post_quant_conv.weight"]);
        Assert.Equal([32L, 4, 3, 3], p["decoder.conv_in.weight"]);
        Assert.Contains("decoder.up_blocks.0.resnets.1.conv2.weight", p.Keys);   // LayersPerBlock + 1
        Assert.Equal([32L, 32, 3, 3], p["decoder.up_blocks.0.upsamplers.0.conv.weight"]);
        Assert.Equal([16L, 32, 3, 3], p["decoder.up_blocks.1.resnets.0.conv1.weight"]);
        Assert.Equal([1L, 16, 3, 3], p["decoder.conv_out.weight"]);
    }

    [Fact]
    public void Shapes_training_and_the_measured_scaling_factor()
    {
        manual_seed(0);
        using var vae = new AutoencoderKL(Tiny with { BlockOutChannels = [8, 16], NormGroups = 4 });
        // Smooth random images in [-1, 1].
        var images = nn.functional.avg_pool2d(randn(8, 1, 24, 24), 5, stride: 1, padding: 2).mul(2).tanh();
        var posterior = vae.Encode(images);
        Assert.Equal([8L, 4, 12, 12], posterior.Mean.shape);
        Assert.Equal(images.shape, vae.Decode(posterior.Mean).shape);
        Assert.Throws<ArgumentException>(() => vae.Encode(randn(1, 1, 31, 32)));

        var opt = optim.Adam(vae.parameters(), lr: 2e-3);
        var cfg = new VaeLossConfig();
        double first = 0, last = 0;
        for (int step = 0; step < 30; step++)
        {
            using var s = NewDisposeScope();
            var post = vae.Encode(images);
            var terms = VaeLoss.Compute(images, vae.Decode(post.Sample()), post, cfg);
            opt.zero_grad();
            terms.Total.backward();
            opt.step();
            if (step == 0) first = terms.L1;
            last = terms.L1;
        }
        Assert.True(last < first * 0.6, $"L1 went from {first} to {last}");

        // The factor is 1 / std of the posterior means (Rombach et al. 2022), whatever the batching; computed here
        // from the encoder directly, not through the scaled path.
        double factor = vae.MeasureScalingFactor(images, batchSize: 3);
        Assert.Equal(factor, vae.Config.ScalingFactor);
        using var _ = no_grad();
        vae.eval();
        double std = vae.Encode(images).Mean.std().item<float>();
        Assert.Equal(1 / std, factor, 1e-4 * factor);
        var scaled = vae.EncodeScaled(images);
        Assert.InRange(scaled.std().item<float>(), 0.99, 1.01);
        // Held-out images of the same kind, never measured: the scaled latents are the posterior means times the
        // factor, and their spread is near 1 only because the factor generalises, not by construction.
        manual_seed(1);
        var heldOut = nn.functional.avg_pool2d(randn(8, 1, 24, 24), 5, stride: 1, padding: 2).mul(2).tanh();
        var heldOutMean = vae.Encode(heldOut).Mean;
        var heldOutScaled = vae.EncodeScaled(heldOut);
        Assert.True(heldOutScaled.allclose(heldOutMean * factor, rtol: 1e-4, atol: 1e-5), "EncodeScaled is not the posterior mean times the factor");
        Assert.InRange(heldOutScaled.std().item<float>(), 0.75, 1.33);
        Assert.False(heldOutMean.std().item<float>() is > 0.9f and < 1.1f, "the unscaled latents already have unit spread: the test cannot tell the factor from 1");
        Assert.True(vae.DecodeScaled(heldOutScaled).allclose(vae.Decode(heldOutMean), atol: 1e-4));
        Assert.True(vae.DecodeScaled(scaled).allclose(vae.Decode(vae.Encode(images).Mean), atol: 1e-4));
    }

    [Fact]
    public void Ssim_is_one_for_identical_images_and_falls_with_noise()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        var x = rand(2, 1, 64, 64);
        Assert.True((Ssim.Compute(x, x) - 1).abs().max().item<float>() < 1e-4);
        Assert.True((Ssim.MultiScale(x, x) - 1).abs().max().item<float>() < 1e-4);
        var slightly = (x + 0.05 * randn_like(x)).clamp(0, 1);
        var very = (x + 0.5 * randn_like(x)).clamp(0, 1);
        float a = Ssim.Compute(x, slightly).mean().item<float>(), b = Ssim.Compute(x, very).mean().item<float>();
        Assert.True(a > b && a < 1, $"SSIM {a} vs {b}");
        Assert.True(Ssim.MultiScale(x, slightly).mean().item<float>() > Ssim.MultiScale(x, very).mean().item<float>());
        // A constant shift changes luminance only: SSIM stays high.
        Assert.True(Ssim.Compute(x * 0.5, x * 0.5 + 0.05).mean().item<float>() > 0.9);
    }
}
