using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

#pragma warning disable IDE1006 // snake_case fields keep diffusers' ControlNetModel state-dict keys

/// <summary>
/// Shape of a <see cref="ControlNetModel"/>: the UNet whose encoder it copies, how many conditioning channels it reads at
/// image resolution, and the width of its conditioning network.
/// </summary>
public sealed record ControlNetConfig : IModelConfig
{
    /// <summary>The UNet it conditions (its encoder is copied; InChannels are the latent channels).</summary>
    public UNetConfig Unet { get; init; } = new();
    /// <summary>Conditioning channels (masks) at image resolution.</summary>
    public int ConditioningChannels { get; init; } = 2;
    /// <summary>Image side over latent side (the VAE's downsampling factor, a power of two).</summary>
    public int DownsampleFactor { get; init; } = 4;
    /// <summary>Channels of the conditioning network's convolutions.</summary>
    public int ConditioningWidth { get; init; } = 16;

    /// <summary>Checks every size (the UNet's too) before anything is allocated.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public void Validate()
    {
        Unet.Validate();
        ModelSize.InRange(nameof(ConditioningChannels), ConditioningChannels, 1, 256);
        ModelSize.InRange(nameof(ConditioningWidth), ConditioningWidth, 1, ModelSize.MaxWidth);
        ModelSize.InRange(nameof(DownsampleFactor), DownsampleFactor, 1, 64);
        if ((DownsampleFactor & (DownsampleFactor - 1)) != 0)
            throw new ArgumentException($"DownsampleFactor must be a power of two (image side / latent side), got {DownsampleFactor}");
    }

    /// <summary>About the UNet's encoder half plus the conditioning network.</summary>
    public double ParameterEstimate() => Unet.ParameterEstimate() / 2 + 9.0 * ConditioningWidth * ConditioningWidth * 2 * Math.Log2(Math.Max(DownsampleFactor, 1));
}

/// <summary>
/// The conditioning network of a ControlNet (diffusers' ControlNetConditioningEmbedding): masks at image resolution
/// (B, M, H, W) to features at latent resolution (B, C0, H/f, W/f): a 3x3 convolution, then per halving a 3x3
/// convolution and a stride-2 one (SiLU between), then a zero-initialised 3x3 convolution to the UNet's first width.
/// </summary>
public sealed class ControlNetConditioningEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in, conv_out;
    private readonly ModuleList<Conv2d> blocks;

    /// <summary>Creates the network; <paramref name="halvings"/> stride-2 steps (log2 of the VAE's factor).</summary>
    public ControlNetConditioningEmbedding(int inChannels, int width, int outChannels, int halvings) : base(nameof(ControlNetConditioningEmbedding))
    {
        conv_in = nn.Conv2d(inChannels, width, 3, padding: 1);
        blocks = new ModuleList<Conv2d>();
        for (int i = 0; i < halvings; i++)
        {
            blocks.Add(nn.Conv2d(width, width, 3, padding: 1));
            blocks.Add(nn.Conv2d(width, width, 3, stride: 2, padding: 1));
        }
        conv_out = nn.Conv2d(width, outChannels, 3, padding: 1);
        RegisterComponents();
        ControlNetModel.ZeroInit(conv_out);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor masks)
    {
        using var scope = NewDisposeScope();
        var x = nn.functional.silu(conv_in.call(masks));
        foreach (var conv in blocks) x = nn.functional.silu(conv.call(x));
        return conv_out.call(x).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// ControlNet (Zhang, Rao and Agrawala 2023, "Adding Conditional Control to Text-to-Image Diffusion Models"): a
/// trainable copy F(·; Θc) of a frozen UNet's encoder (conv_in, time embedding, down blocks, mid block, initialised from
/// the UNet), fed the noisy latents plus the conditioning network's features of the masks, whose every skip output and
/// mid-block output passes through a zero-initialised 1x1 convolution Z and is added, times a conditioning scale, to the
/// frozen UNet's matching skip and mid output: y_c = F(x; Θ) + Z(F(x + Z(c; Θz1); Θc); Θz2). At initialisation every Z is
/// zero, so the conditioned UNet computes exactly the UNet. Parameter names follow diffusers' ControlNetModel
/// (controlnet_cond_embedding, controlnet_down_blocks, controlnet_mid_block).
/// </summary>
public sealed class ControlNetModel : nn.Module
{
    private readonly Conv2d conv_in;
    private readonly UNet2DConditionModel.TimestepEmbedding time_embedding;
    private readonly ModuleList<UNetDownBlock> down_blocks;
    private readonly UNetMidBlock mid_block;
    private readonly ControlNetConditioningEmbedding controlnet_cond_embedding;
    private readonly ModuleList<Conv2d> controlnet_down_blocks;
    private readonly Conv2d controlnet_mid_block;

    /// <summary>The configuration.</summary>
    public ControlNetConfig Config { get; }

    /// <summary>Builds a ControlNet with random encoder weights and zero convolutions (use <see cref="FromUnet"/> to copy a UNet's encoder).</summary>
    public ControlNetModel(ControlNetConfig config) : base(nameof(ControlNetModel))
    {
        config.Validate();
        Config = config;
        var c = config.Unet;
        var ch = c.BlockOutChannels;
        int temb = ch[0] * 4;
        conv_in = nn.Conv2d(c.InChannels, ch[0], 3, padding: 1);
        time_embedding = new UNet2DConditionModel.TimestepEmbedding(ch[0], temb);
        down_blocks = UNet2DConditionModel.BuildDownBlocks(c, temb);
        controlnet_down_blocks = new ModuleList<Conv2d>(UNet2DConditionModel.SkipChannelsOf(c).Select(k => nn.Conv2d(k, k, 1)).ToArray());
        mid_block = new UNetMidBlock(ch[^1], temb, c);
        controlnet_mid_block = nn.Conv2d(ch[^1], ch[^1], 1);
        controlnet_cond_embedding = new ControlNetConditioningEmbedding(config.ConditioningChannels, config.ConditioningWidth, ch[0],
            (int)Math.Round(Math.Log2(config.DownsampleFactor)));
        RegisterComponents();
        foreach (var z in controlnet_down_blocks) ZeroInit(z);
        ZeroInit(controlnet_mid_block);
        foreach (var (name, module) in named_modules())
            if (module is Attention a) a.Path = name;
    }

    /// <summary>
    /// A ControlNet whose encoder is a copy of <paramref name="unet"/>'s (every conv_in, time_embedding, down_blocks and
    /// mid_block weight copied by name) and whose zero convolutions and conditioning output are zero.
    /// </summary>
    public static ControlNetModel FromUnet(UNet2DConditionModel unet, int conditioningChannels, int downsampleFactor, int conditioningWidth = 16)
    {
        var net = new ControlNetModel(new ControlNetConfig
        {
            Unet = unet.Config, ConditioningChannels = conditioningChannels, DownsampleFactor = downsampleFactor, ConditioningWidth = conditioningWidth,
        });
        var source = unet.state_dict();
        using var _ = no_grad();
        foreach (var (key, target) in net.state_dict())
        {
            if (key.StartsWith("controlnet_", StringComparison.Ordinal)) continue;
            if (!source.TryGetValue(key, out var value))
                throw new InvalidDataException($"ControlNet parameter '{key}' has no counterpart in the UNet (its encoder should hold every one)");
            target.copy_(value);
        }
        return net;
    }

    /// <summary>Sets a convolution's weight and bias to zero.</summary>
    internal static void ZeroInit(Conv2d conv)
    {
        using var _ = no_grad();
        conv.weight!.zero_();
        conv.bias?.zero_();
    }

    /// <summary>
    /// The residuals for the UNet: noisy latents (B, C, h, w), timesteps (B), text tokens (B, S, D) and masks
    /// (B, M, H, W) at image resolution (H = h · DownsampleFactor), each residual multiplied by <paramref name="scale"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The masks have another channel count or size.</exception>
    public UNetResiduals Forward(Tensor latents, Tensor timesteps, Tensor context, Tensor masks, double scale = 1.0)
    {
        if (masks.dim() != 4 || masks.shape[1] != Config.ConditioningChannels
            || masks.shape[2] != latents.shape[2] * Config.DownsampleFactor || masks.shape[3] != latents.shape[3] * Config.DownsampleFactor)
            throw new ArgumentException(
                $"masks have shape [{string.Join(", ", masks.shape)}]; expected [{latents.shape[0]}, {Config.ConditioningChannels}, {latents.shape[2] * Config.DownsampleFactor}, {latents.shape[3] * Config.DownsampleFactor}] " +
                "(one channel per mask name, at image resolution)", nameof(masks));
        using var scope = NewDisposeScope();
        if (timesteps.dim() == 0) timesteps = timesteps.expand(latents.shape[0]);
        var type = time_embedding.DType;   // not conv_in's: a convolution may compute in float32 (BFloat16Kernels)
        if (latents.dtype != type) latents = latents.to(type);
        if (context.dtype != type) context = context.to(type);
        if (masks.dtype != type) masks = masks.to(type);
        var temb = time_embedding.call(TimestepFeatures.Sinusoidal(timesteps, Config.Unet.BlockOutChannels[0]).to(type));
        var skips = new List<Tensor>();
        var x = UNet2DConditionModel.Encode(conv_in.call(latents) + controlnet_cond_embedding.call(masks), temb, context, down_blocks, mid_block, skips);
        var down_res = skips.Select((s, i) => (controlnet_down_blocks[i].call(s) * scale).MoveToOuterDisposeScope()).ToList();
        var mid = (controlnet_mid_block.call(x) * scale).MoveToOuterDisposeScope();
        return new UNetResiduals(down_res, mid);
    }
}
