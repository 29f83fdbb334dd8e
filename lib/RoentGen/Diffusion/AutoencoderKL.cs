using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

#pragma warning disable IDE1006 // snake_case fields keep diffusers' AutoencoderKL state-dict keys

/// <summary>
/// Shape of the KL autoencoder. Defaults: a CPU-sized grayscale VAE that maps 64x64 to 4x16x16.
/// Stable Diffusion's is 3 channels, BlockOutChannels [128, 256, 512, 512], LayersPerBlock 2 (8x down).
/// </summary>
public sealed record VaeConfig : IModelConfig
{
    /// <summary>Image channels in (1 for CXRs).</summary>
    public int InChannels { get; init; } = 1;
    /// <summary>Image channels out.</summary>
    public int OutChannels { get; init; } = 1;
    /// <summary>Latent channels.</summary>
    public int LatentChannels { get; init; } = 4;
    /// <summary>Channels per level; the image shrinks 2x between levels.</summary>
    public int[] BlockOutChannels { get; init; } = [32, 64, 64];
    /// <summary>ResNet blocks per level in the encoder (one more in the decoder).</summary>
    public int LayersPerBlock { get; init; } = 1;
    /// <summary>GroupNorm groups.</summary>
    public int NormGroups { get; init; } = 16;
    /// <summary>
    /// Multiplier that gives the latents unit variance for the diffusion model: measured on the data after
    /// training (<see cref="AutoencoderKL.MeasureScalingFactor"/>), never assumed (SD's 0.18215 was measured on its data).
    /// </summary>
    public double ScalingFactor { get; init; } = 1.0;

    /// <summary>Side reduction from image to latent.</summary>
    public int DownsampleFactor => 1 << (BlockOutChannels.Length - 1);

    /// <summary>
    /// An estimate of the parameter count (two 3x3 convolutions per ResNet block, encoder and decoder, plus the mid
    /// blocks' attention), in double precision so that no field overflows it.
    /// </summary>
    public double ParameterEstimate()
    {
        {
            double total = 0;
            foreach (double c in BlockOutChannels ?? []) total += (2 * LayersPerBlock + 1) * 18 * c * c + 9 * c * c;
            double last = BlockOutChannels is { Length: > 0 } ? BlockOutChannels[^1] : 0;
            return total + 2 * (2 * 18 * last * last + 4 * last * last);
        }
    }

    /// <summary>
    /// Checks every field that sizes a tensor (positive and bounded, NormGroups dividing every level's channels) and the
    /// estimated parameter count (<see cref="ModelSize.MaxParameters"/>), before anything is allocated.
    /// </summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and what was expected.</exception>
    public void Validate()
    {
        if (BlockOutChannels is null || BlockOutChannels.Length == 0) throw new ArgumentException("BlockOutChannels is empty");
        ModelSize.InRange("BlockOutChannels.Length", BlockOutChannels.Length, 1, 8);
        ModelSize.InRange(nameof(InChannels), InChannels, 1, 64);
        ModelSize.InRange(nameof(OutChannels), OutChannels, 1, 64);
        ModelSize.InRange(nameof(LatentChannels), LatentChannels, 1, 1024);
        ModelSize.InRange(nameof(NormGroups), NormGroups, 1, ModelSize.MaxWidth);
        ModelSize.InRange(nameof(LayersPerBlock), LayersPerBlock, 1, 64);
        ModelSize.InRange(nameof(ScalingFactor), ScalingFactor, 1e-6, 1e6);
        for (int i = 0; i < BlockOutChannels.Length; i++)
        {
            int c = BlockOutChannels[i];
            ModelSize.InRange($"BlockOutChannels[{i}]", c, 1, ModelSize.MaxWidth);
            if (c % NormGroups != 0) throw new ArgumentException($"{c} channels are not divisible by {NormGroups} norm groups (BlockOutChannels[{i}] must be a multiple of NormGroups)");
        }
        ModelSize.CheckParameters("VAE", ParameterEstimate());
    }
}

/// <summary>A diagonal Gaussian over latents, from concatenated (mean, log-variance) channels.</summary>
public sealed class DiagonalGaussian
{
    /// <summary>Splits moments (B, 2L, h, w) into mean and clamped log-variance.</summary>
    public DiagonalGaussian(Tensor moments)
    {
        var parts = moments.chunk(2, 1);
        Mean = parts[0];
        LogVar = parts[1].clamp(-30, 20);
    }
    /// <summary>(B, L, h, w).</summary>
    public Tensor Mean { get; }
    /// <summary>(B, L, h, w), clamped to [−30, 20].</summary>
    public Tensor LogVar { get; }
    /// <summary>A reparameterised sample mean + σ·z.</summary>
    public Tensor Sample(Generator? generator = null) =>
        Mean + (0.5 * LogVar).exp() * randn(Mean.shape, dtype: Mean.dtype, device: Mean.device, generator: generator);
    /// <summary>KL(q ‖ N(0, I)) per sample, summed over latent elements: (B).</summary>
    public Tensor Kl() => 0.5 * (Mean.pow(2) + LogVar.exp() - 1 - LogVar).sum([1, 2, 3]);
}

/// <summary>
/// The KL-regularised autoencoder of latent diffusion (Rombach et al. 2022) with diffusers' AutoencoderKL
/// parameter names: encoder.*, quant_conv, post_quant_conv, decoder.*.
/// </summary>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    private readonly VaeEncoder encoder;
    private readonly VaeDecoder decoder;
    private readonly Conv2d quant_conv, post_quant_conv;

    /// <summary>The configuration (including the measured scaling factor).</summary>
    public VaeConfig Config { get; private set; }

    /// <summary>Builds a randomly initialised autoencoder.</summary>
    public AutoencoderKL(VaeConfig config) : base(nameof(AutoencoderKL))
    {
        config.Validate();
        Config = config;
        encoder = new VaeEncoder(config);
        decoder = new VaeDecoder(config);
        quant_conv = nn.Conv2d(2 * config.LatentChannels, 2 * config.LatentChannels, 1);
        post_quant_conv = nn.Conv2d(config.LatentChannels, config.LatentChannels, 1);
        RegisterComponents();
        MultiHeadAttention.AssignPaths(this);   // processors see "encoder.mid_block.attentions.0", ...
    }

    /// <summary>Images (B, C, H, W) in [−1, 1] → the latent distribution.</summary>
    public DiagonalGaussian Encode(Tensor images)
    {
        int f = Config.DownsampleFactor;
        if (images.dim() != 4 || images.shape[1] != Config.InChannels || images.shape[2] % f != 0 || images.shape[3] % f != 0)
            throw new ArgumentException($"expected images (B, {Config.InChannels}, H, W) with H, W divisible by {f}, got ({string.Join(", ", images.shape)})");
        return new DiagonalGaussian(quant_conv.call(encoder.call(images)));
    }

    /// <summary>Unscaled latents (B, L, h, w) → images.</summary>
    public Tensor Decode(Tensor latents)
    {
        using var scope = NewDisposeScope();
        return decoder.call(post_quant_conv.call(latents)).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction through the posterior mean (inference) or a sample (training).</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var posterior = Encode(images);
        var z = training ? posterior.Sample() : posterior.Mean;
        return Decode(z).MoveToOuterDisposeScope();
    }

    /// <summary>Latents for the diffusion model: posterior mean times the scaling factor.</summary>
    public Tensor EncodeScaled(Tensor images)
    {
        using var scope = NewDisposeScope();
        return (Encode(images).Mean * Config.ScalingFactor).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="EncodeScaled"/> of a whole training set, <paramref name="chunk"/> images at a time so memory stays
    /// bounded, in eval mode and without gradients (the latents a diffusion run trains on).
    /// </summary>
    public Tensor EncodeScaledInChunks(Tensor images, int chunk = 64)
    {
        if (chunk < 1) throw new ArgumentOutOfRangeException(nameof(chunk), chunk, "chunk must be at least 1");
        using var _ = no_grad();
        eval();
        var parts = new List<Tensor>();
        for (long i = 0; i < images.shape[0]; i += chunk)
            parts.Add(EncodeScaled(images.narrow(0, i, Math.Min(chunk, images.shape[0] - i))));
        var all = cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return all;
    }

    /// <summary>Images from diffusion-model latents (divides by the scaling factor).</summary>
    public Tensor DecodeScaled(Tensor latents) => Decode(latents / Config.ScalingFactor);

    /// <summary>
    /// Measures 1/std of the posterior-mean latents of <paramref name="images"/> and stores it in
    /// <see cref="Config"/> (Rombach et al. 2022, appendix: "we rescale the latents to unit standard deviation").
    /// </summary>
    public double MeasureScalingFactor(Tensor images, int batchSize = 32)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        bool wasTraining = training;
        eval();
        var parts = new List<Tensor>();
        for (long i = 0; i < images.shape[0]; i += batchSize)
            parts.Add(Encode(images.narrow(0, i, Math.Min(batchSize, images.shape[0] - i))).Mean.flatten());
        double std = cat(parts, 0).std().item<float>();
        if (wasTraining) train();
        if (!(std > 0) || double.IsNaN(std)) throw new InvalidOperationException($"latent standard deviation is {std}: cannot scale");
        Config = Config with { ScalingFactor = 1.0 / std };
        return Config.ScalingFactor;
    }
}

internal sealed class VaeMidBlock : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Attention> attentions;
    public VaeMidBlock(int ch, int groups) : base("mid_block")
    {
        resnets = new ModuleList<ResnetBlock2D>(new ResnetBlock2D(ch, ch, null, groups, 1e-6), new ResnetBlock2D(ch, ch, null, groups, 1e-6));
        attentions = new ModuleList<Attention>(new Attention(ch, null, 1, ch, qkvBias: true, groupNormGroups: groups));
        RegisterComponents();
    }
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = resnets[0].call(x, null);
        x = attentions[0].call(x, null);
        return resnets[1].call(x, null).MoveToOuterDisposeScope();
    }
}

internal sealed class VaeDownBlock : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;
    public VaeDownBlock(int inCh, int outCh, int layers, int groups, bool downsample) : base("down_block")
    {
        resnets = new ModuleList<ResnetBlock2D>();
        for (int i = 0; i < layers; i++) resnets.Add(new ResnetBlock2D(i == 0 ? inCh : outCh, outCh, null, groups, 1e-6));
        if (downsample) downsamplers = new ModuleList<Downsample2D>(new Downsample2D(outCh, asymmetricPadding: true));
        RegisterComponents();
    }
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        foreach (var r in resnets) x = r.call(x, null);
        if (downsamplers is not null) x = downsamplers[0].call(x);
        return x.MoveToOuterDisposeScope();
    }
}

internal sealed class VaeUpBlock : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;
    public VaeUpBlock(int inCh, int outCh, int layers, int groups, bool upsample) : base("up_block")
    {
        resnets = new ModuleList<ResnetBlock2D>();
        for (int i = 0; i < layers; i++) resnets.Add(new ResnetBlock2D(i == 0 ? inCh : outCh, outCh, null, groups, 1e-6));
        if (upsample) upsamplers = new ModuleList<Upsample2D>(new Upsample2D(outCh));
        RegisterComponents();
    }
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        foreach (var r in resnets) x = r.call(x, null);
        if (upsamplers is not null) x = upsamplers[0].call(x);
        return x.MoveToOuterDisposeScope();
    }
}

internal sealed class VaeEncoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in, conv_out;
    private readonly ModuleList<VaeDownBlock> down_blocks;
    private readonly VaeMidBlock mid_block;
    private readonly GroupNorm conv_norm_out;
    public VaeEncoder(VaeConfig c) : base("encoder")
    {
        var ch = c.BlockOutChannels;
        conv_in = nn.Conv2d(c.InChannels, ch[0], 3, padding: 1);
        down_blocks = new ModuleList<VaeDownBlock>();
        for (int i = 0; i < ch.Length; i++)
            down_blocks.Add(new VaeDownBlock(i == 0 ? ch[0] : ch[i - 1], ch[i], c.LayersPerBlock, c.NormGroups, i < ch.Length - 1));
        mid_block = new VaeMidBlock(ch[^1], c.NormGroups);
        conv_norm_out = Layers.GroupNorm(c.NormGroups, ch[^1], 1e-6);
        conv_out = nn.Conv2d(ch[^1], 2 * c.LatentChannels, 3, padding: 1);
        RegisterComponents();
    }
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = conv_in.call(x);
        foreach (var d in down_blocks) x = d.call(x);
        x = mid_block.call(x);
        return conv_out.call(nn.functional.silu(conv_norm_out.call(x))).MoveToOuterDisposeScope();
    }
}

internal sealed class VaeDecoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in, conv_out;
    private readonly VaeMidBlock mid_block;
    private readonly ModuleList<VaeUpBlock> up_blocks;
    private readonly GroupNorm conv_norm_out;
    public VaeDecoder(VaeConfig c) : base("decoder")
    {
        var rev = c.BlockOutChannels.Reverse().ToArray();
        conv_in = nn.Conv2d(c.LatentChannels, rev[0], 3, padding: 1);
        mid_block = new VaeMidBlock(rev[0], c.NormGroups);
        up_blocks = new ModuleList<VaeUpBlock>();
        for (int i = 0; i < rev.Length; i++)
            up_blocks.Add(new VaeUpBlock(i == 0 ? rev[0] : rev[i - 1], rev[i], c.LayersPerBlock + 1, c.NormGroups, i < rev.Length - 1));
        conv_norm_out = Layers.GroupNorm(c.NormGroups, rev[^1], 1e-6);
        conv_out = nn.Conv2d(rev[^1], c.OutChannels, 3, padding: 1);
        RegisterComponents();
    }
    public override Tensor forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        var x = conv_in.call(z);
        x = mid_block.call(x);
        foreach (var u in up_blocks) x = u.call(x);
        return conv_out.call(nn.functional.silu(conv_norm_out.call(x))).MoveToOuterDisposeScope();
    }
}
