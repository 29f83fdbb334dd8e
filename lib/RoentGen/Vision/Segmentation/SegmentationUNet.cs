using System.Diagnostics.CodeAnalysis;
using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Vision.Segmentation;

/// <summary>
/// Shape of a <see cref="SegmentationUNet"/>: the widths of its levels (the first is the full-resolution width; each
/// further level halves the resolution), the GroupNorm groups and the number of output structures.
/// </summary>
public sealed record UNetConfig : IModelConfig
{
    /// <summary>Input channels (1 for a radiograph).</summary>
    public int InChannels { get; init; } = 1;
    /// <summary>Channels of each level, full resolution first; levels − 1 downsamplings by 2.</summary>
    public IReadOnlyList<int> Widths { get; init; } = [16, 32, 64, 128];
    /// <summary>GroupNorm groups; must divide every width.</summary>
    public int Groups { get; init; } = 8;
    /// <summary>Output channels: one sigmoid logit per structure.</summary>
    public int OutChannels { get; init; } = 1;

    /// <summary>The input side must be divisible by this (2^(levels − 1)).</summary>
    public int SizeMultiple => 1 << (Widths.Count - 1);

    /// <inheritdoc />
    public void Validate()
    {
        if (InChannels < 1) throw new ArgumentException($"UNetConfig.InChannels must be at least 1, got {InChannels}");
        if (OutChannels < 1) throw new ArgumentException($"UNetConfig.OutChannels must be at least 1, got {OutChannels}");
        if (Widths is null || Widths.Count < 2 || Widths.Count > 7)
            throw new ArgumentException($"UNetConfig.Widths must list 2 to 7 level widths, got {Widths?.Count ?? 0}");
        if (Groups < 1) throw new ArgumentException($"UNetConfig.Groups must be at least 1, got {Groups}");
        foreach (var w in Widths)
            if (w < 1 || w > 4096 || w % Groups != 0)
                throw new ArgumentException($"UNetConfig.Widths: {w} is not a width in 1..4096 divisible by Groups {Groups}");
    }

    /// <inheritdoc />
    public double ParameterEstimate()
    {
        // Two 3x3 convs + 2 GroupNorms per block; encoder blocks (in -> w_i), decoder blocks (w_i + w_{i+1} -> w_i), 1x1 head.
        double Block(double cin, double cout) => 9 * cin * cout + cout + 9 * cout * cout + cout + 4 * cout;
        double p = 0;
        for (int i = 0; i < Widths.Count; i++) p += Block(i == 0 ? InChannels : Widths[i - 1], Widths[i]);
        for (int i = 0; i < Widths.Count - 1; i++) p += Block(Widths[i] + Widths[i + 1], Widths[i]);
        return p + Widths[0] * OutChannels + OutChannels;
    }
}

/// <summary>
/// Two 3x3 convolutions, each followed by GroupNorm and SiLU: the unit every U-Net level is made of.
/// </summary>
[SuppressMessage("Style", "IDE1006:Naming Styles", Justification = "snake_case fields are the state-dict keys")]
public sealed class ConvBlock : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1, conv2;
    private readonly GroupNorm norm1, norm2;

    /// <summary>Creates the block.</summary>
    public ConvBlock(long inChannels, long outChannels, long groups) : base(nameof(ConvBlock))
    {
        conv1 = nn.Conv2d(inChannels, outChannels, 3, padding: 1);
        norm1 = Layers.GroupNorm(groups, outChannels);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1);
        norm2 = Layers.GroupNorm(groups, outChannels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.silu(norm1.call(conv1.call(x)));
        return nn.functional.silu(norm2.call(conv2.call(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A small 2D U-Net (Ronneberger et al. 2015, "U-Net: Convolutional Networks for Biomedical Image Segmentation"):
/// an encoder of <see cref="ConvBlock"/>s with 2x2 max-pooling between levels, a decoder that upsamples bilinearly by 2,
/// concatenates the encoder's features of the same level (the skip connection) and applies a block, and a 1x1 head
/// giving one logit per structure (multi-label: each channel is its own sigmoid, so structures may overlap).
/// GroupNorm instead of BatchNorm, so that small batches and evaluation behave alike.
/// </summary>
[SuppressMessage("Style", "IDE1006:Naming Styles", Justification = "snake_case fields are the state-dict keys")]
public sealed class SegmentationUNet : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ConvBlock> down;
    private readonly ModuleList<ConvBlock> up;
    private readonly Conv2d head;

    /// <summary>Builds the network from a validated config.</summary>
    /// <exception cref="ArgumentException">The config is out of range.</exception>
    public SegmentationUNet(UNetConfig config) : base(nameof(SegmentationUNet))
    {
        config.Validate();
        Config = config;
        var w = config.Widths;
        down = new ModuleList<ConvBlock>();
        for (int i = 0; i < w.Count; i++) down.Add(new ConvBlock(i == 0 ? config.InChannels : w[i - 1], w[i], config.Groups));
        up = new ModuleList<ConvBlock>();
        // up[i] joins level i+1 (upsampled) with level i's skip.
        for (int i = 0; i < w.Count - 1; i++) up.Add(new ConvBlock(w[i] + w[i + 1], w[i], config.Groups));
        head = nn.Conv2d(w[0], config.OutChannels, 1);
        RegisterComponents();
    }

    /// <summary>The shape it was built with.</summary>
    public UNetConfig Config { get; }

    /// <summary>(B, InChannels, S, S) images to (B, OutChannels, S, S) logits; S must be divisible by <see cref="UNetConfig.SizeMultiple"/>.</summary>
    /// <exception cref="ArgumentException">The input shape does not fit.</exception>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != Config.InChannels || x.shape[2] % Config.SizeMultiple != 0 || x.shape[3] % Config.SizeMultiple != 0)
            throw new ArgumentException($"U-Net input must be (B, {Config.InChannels}, H, W) with H and W divisible by {Config.SizeMultiple}, got [{string.Join(", ", x.shape)}]");
        using var scope = NewDisposeScope();
        var skips = new List<Tensor>();
        var h = x;
        for (int i = 0; i < down.Count; i++)
        {
            if (i > 0) h = nn.functional.max_pool2d(h, 2);   // (B, w_{i-1}, S/2^i, S/2^i)
            h = down[i].call(h);                             // (B, w_i, S/2^i, S/2^i)
            skips.Add(h);
        }
        for (int i = up.Count - 1; i >= 0; i--)
        {
            var skip = skips[i];
            h = nn.functional.interpolate(h, size: [skip.shape[2], skip.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
            h = up[i].call(cat([h, skip], 1));               // (B, w_i, S/2^i, S/2^i)
        }
        return head.call(h).MoveToOuterDisposeScope();       // (B, OutChannels, S, S)
    }
}
