using RoentGen.Nn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

#pragma warning disable IDE1006 // snake_case fields keep diffusers' UNet2DConditionModel state-dict keys

/// <summary>
/// Shape of a text-conditioned UNet. Defaults are the CPU quick preset. Stable Diffusion 1.x is BlockOutChannels
/// [320, 640, 1280, 1280], LayersPerBlock 2, HeadsPerLevel [8, 8, 8, 8] (head widths 40 to 160), context 768, 1x1-conv
/// projections; SD 2.x(-base) has head width 64 everywhere (heads = channels/64), context 1024 and linear projections
/// (<see cref="UseLinearProjection"/>). The project's own models leave <see cref="HeadsPerLevel"/> null and give a
/// head width (<see cref="AttentionHeadDim"/>) instead.
/// </summary>
public sealed record UNetConfig : IModelConfig
{
    /// <summary>Latent channels in.</summary>
    public int InChannels { get; init; } = 4;
    /// <summary>Channels out (same as in for ε/v prediction).</summary>
    public int OutChannels { get; init; } = 4;
    /// <summary>Channels of each resolution level, from the top.</summary>
    public int[] BlockOutChannels { get; init; } = [64, 128, 128];
    /// <summary>Whether each level has cross-attention transformers (SD: all but the lowest).</summary>
    public bool[] CrossAttentionLevels { get; init; } = [true, true, false];
    /// <summary>ResNet blocks per level on the way down (one more on the way up).</summary>
    public int LayersPerBlock { get; init; } = 1;
    /// <summary>Width per attention head.</summary>
    public int AttentionHeadDim { get; init; } = 32;
    /// <summary>Width of the text encoder's tokens.</summary>
    public int CrossAttentionDim { get; init; } = 256;
    /// <summary>GroupNorm groups.</summary>
    public int NormGroups { get; init; } = 32;
    /// <summary>Cross-attention in the mid block.</summary>
    public bool MidBlockAttention { get; init; } = true;
    /// <summary>
    /// Attention heads per level (diffusers' num_attention_heads, which its configs spell attention_head_dim), or null
    /// for channels / <see cref="AttentionHeadDim"/> at every level. The mid block uses the last level's.
    /// </summary>
    public int[]? HeadsPerLevel { get; init; }
    /// <summary>Transformer blocks inside each attention layer, per level (null: one everywhere, as SD 1.x and 2.x). The mid block uses the last level's.</summary>
    public int[]? TransformerLayersPerLevel { get; init; }
    /// <summary>proj_in / proj_out of each spatial transformer are Linear layers on the tokens (SD 2.x) rather than 1x1 convolutions (SD 1.x, the default).</summary>
    public bool UseLinearProjection { get; init; }
    /// <summary>Attention computed in float32 when the model runs in half precision (diffusers' upcast_attention; SD 2.1 at 768 px).</summary>
    public bool UpcastAttention { get; init; }
    /// <summary>Epsilon of the ResNets' and the output's GroupNorms (diffusers' norm_eps).</summary>
    public double NormEps { get; init; } = 1e-5;

    /// <summary>Attention heads at a level: <see cref="HeadsPerLevel"/>, else channels / <see cref="AttentionHeadDim"/>.</summary>
    public int Heads(int level) => HeadsPerLevel is { } h ? h[level] : BlockOutChannels[level] / AttentionHeadDim;

    /// <summary>Transformer blocks per attention layer at a level (1 unless <see cref="TransformerLayersPerLevel"/> says otherwise).</summary>
    public int TransformerDepth(int level) => TransformerLayersPerLevel is { } d ? d[level] : 1;

    /// <summary>
    /// An estimate of the parameter count (ResNet blocks, attention transformers and resampling per level, from their
    /// widths; within a small factor of the exact count), in double precision so that no field overflows it.
    /// </summary>
    public double ParameterEstimate()
    {
        {
            double total = 0, ctx = CrossAttentionDim, temb = 4.0 * (BlockOutChannels.Length > 0 ? BlockOutChannels[0] : 0);
            for (int i = 0; i < BlockOutChannels.Length; i++)
            {
                double c = BlockOutChannels[i];
                double resnet = 27 * c * c + temb * c;           // two 3x3 convs (one wider on the way up) and the time projection
                double attention = 16 * c * c + 2 * c * ctx;     // self- and cross-attention, feed-forward, projections
                int blocks = 2 * LayersPerBlock + 1;
                double depth = TransformerLayersPerLevel is { } d && i < d.Length ? d[i] : 1;
                total += blocks * resnet + (i < CrossAttentionLevels.Length && CrossAttentionLevels[i] ? blocks * depth * attention : 0) + 18 * c * c;
            }
            double last = BlockOutChannels.Length > 0 ? BlockOutChannels[^1] : 0;
            return total + 2 * 27 * last * last + 16 * last * last + 2 * last * ctx + temb * temb * 2;
        }
    }

    /// <summary>
    /// Checks every field that sizes a tensor (positive and bounded; NormGroups and AttentionHeadDim dividing every
    /// level's channels) and the estimated parameter count (<see cref="ModelSize.MaxParameters"/>), before anything is allocated.
    /// </summary>
    /// <exception cref="ArgumentException">A field does not fit the others; the message names it and what was expected.</exception>
    public void Validate()
    {
        if (BlockOutChannels is null || CrossAttentionLevels is null) throw new ArgumentException("BlockOutChannels and CrossAttentionLevels must be arrays");
        if (BlockOutChannels.Length == 0 || BlockOutChannels.Length != CrossAttentionLevels.Length)
            throw new ArgumentException($"BlockOutChannels ({BlockOutChannels.Length}) and CrossAttentionLevels ({CrossAttentionLevels.Length}) must have the same non-zero length");
        ModelSize.InRange("BlockOutChannels.Length", BlockOutChannels.Length, 1, 8);
        ModelSize.InRange(nameof(InChannels), InChannels, 1, 1024);
        ModelSize.InRange(nameof(OutChannels), OutChannels, 1, 1024);
        ModelSize.InRange(nameof(CrossAttentionDim), CrossAttentionDim, 1, ModelSize.MaxWidth);
        ModelSize.InRange(nameof(NormGroups), NormGroups, 1, ModelSize.MaxWidth);
        ModelSize.InRange(nameof(AttentionHeadDim), AttentionHeadDim, 1, ModelSize.MaxWidth);
        ModelSize.InRange(nameof(LayersPerBlock), LayersPerBlock, 1, 64);
        ModelSize.InRange(nameof(NormEps), NormEps, double.Epsilon, 1);
        if (HeadsPerLevel is { } heads && heads.Length != BlockOutChannels.Length)
            throw new ArgumentException($"HeadsPerLevel has {heads.Length} entries; expected one per level ({BlockOutChannels.Length})");
        if (TransformerLayersPerLevel is { } depth && depth.Length != BlockOutChannels.Length)
            throw new ArgumentException($"TransformerLayersPerLevel has {depth.Length} entries; expected one per level ({BlockOutChannels.Length})");
        for (int i = 0; i < BlockOutChannels.Length; i++)
        {
            int c = BlockOutChannels[i];
            ModelSize.InRange($"BlockOutChannels[{i}]", c, 1, ModelSize.MaxWidth);
            if (c % NormGroups != 0) throw new ArgumentException($"{c} channels are not divisible by {NormGroups} norm groups (BlockOutChannels[{i}] must be a multiple of NormGroups)");
            if (HeadsPerLevel is { } h)
            {
                ModelSize.InRange($"HeadsPerLevel[{i}]", h[i], 1, c);
                if (c % h[i] != 0) throw new ArgumentException($"{c} channels are not divisible into {h[i]} heads (BlockOutChannels[{i}] must be a multiple of HeadsPerLevel[{i}])");
            }
            else if (c % AttentionHeadDim != 0) throw new ArgumentException($"{c} channels are not divisible by head width {AttentionHeadDim} (BlockOutChannels[{i}] must be a multiple of AttentionHeadDim)");
            if (TransformerLayersPerLevel is { } d) ModelSize.InRange($"TransformerLayersPerLevel[{i}]", d[i], 1, 64);
        }
        ModelSize.CheckParameters("UNet", ParameterEstimate());
    }
}

/// <summary>Sinusoidal timestep features (flip_sin_to_cos, no shift, as Stable Diffusion).</summary>
public static class TimestepFeatures
{
    /// <summary>(B) timesteps → (B, dim) features [cos, sin] over geometric frequencies.</summary>
    public static Tensor Sinusoidal(Tensor timesteps, int dim, double maxPeriod = 10000)
    {
        using var scope = NewDisposeScope();
        int half = dim / 2;
        var exponent = arange(half, dtype: ScalarType.Float32) * (-Math.Log(maxPeriod) / half);
        var args = timesteps.to(ScalarType.Float32).unsqueeze(1) * exponent.exp().unsqueeze(0);   // (B, half)
        return cat([args.cos(), args.sin()], 1).MoveToOuterDisposeScope();
    }
}

/// <summary>ResNet block with an optional timestep embedding (diffusers' ResnetBlock2D names).</summary>
public sealed class ResnetBlock2D : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly GroupNorm norm1, norm2;
    private readonly Conv2d conv1, conv2;
    private readonly Linear? time_emb_proj;
    private readonly Conv2d? conv_shortcut;
    private readonly Dropout dropout;

    /// <summary>Creates the block; <paramref name="tembChannels"/> null for the VAE (no time).</summary>
    public ResnetBlock2D(int inChannels, int outChannels, int? tembChannels, int groups, double eps = 1e-5, double dropoutRate = 0)
        : base(nameof(ResnetBlock2D))
    {
        norm1 = Layers.GroupNorm(groups, inChannels, eps);
        conv1 = nn.Conv2d(inChannels, outChannels, 3, padding: 1);
        time_emb_proj = tembChannels is int t ? nn.Linear(t, outChannels) : null;
        norm2 = Layers.GroupNorm(groups, outChannels, eps);
        dropout = nn.Dropout(dropoutRate);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1);
        conv_shortcut = inChannels != outChannels ? nn.Conv2d(inChannels, outChannels, 1) : null;
        RegisterComponents();
    }

    /// <summary>(B, C, H, W), (B, T) timestep embedding or null.</summary>
    public override Tensor forward(Tensor x, Tensor? temb)
    {
        using var scope = NewDisposeScope();
        var h = conv1.call(nn.functional.silu(norm1.call(x)));
        if (time_emb_proj is not null && temb is not null)
            h = h + time_emb_proj.call(nn.functional.silu(temb)).unsqueeze(-1).unsqueeze(-1);
        h = conv2.call(dropout.call(nn.functional.silu(norm2.call(h))));
        var skip = conv_shortcut is null ? x : conv_shortcut.call(x);
        return (skip + h).MoveToOuterDisposeScope();
    }
}

/// <summary>Stride-2 convolution (padding 1 in the UNet; asymmetric (0,1,0,1) padding in the VAE, as diffusers).</summary>
public sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly bool _asymmetric;
    /// <summary>Creates the block.</summary>
    public Downsample2D(int channels, bool asymmetricPadding = false) : base(nameof(Downsample2D))
    {
        _asymmetric = asymmetricPadding;
        conv = nn.Conv2d(channels, channels, 3, stride: 2, padding: asymmetricPadding ? 0 : 1);
        RegisterComponents();
    }
    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (_asymmetric) x = nn.functional.pad(x, [0, 1, 0, 1]);
        return conv.call(x).MoveToOuterDisposeScope();
    }
}

/// <summary>Nearest-neighbour ×2 upsampling followed by a 3x3 convolution.</summary>
public sealed class Upsample2D : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    /// <summary>Creates the block.</summary>
    public Upsample2D(int channels) : base(nameof(Upsample2D))
    {
        conv = nn.Conv2d(channels, channels, 3, padding: 1);
        RegisterComponents();
    }
    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var up = nn.functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
        return conv.call(up).MoveToOuterDisposeScope();
    }
}

/// <summary>One resolution level on the way down: ResNet blocks (each optionally followed by a transformer), then a downsampler.</summary>
public sealed class UNetDownBlock : nn.Module
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel>? attentions;
    private readonly ModuleList<Downsample2D>? downsamplers;

    internal UNetDownBlock(int inCh, int outCh, int temb, UNetConfig c, int level, bool attention, bool downsample) : base(nameof(UNetDownBlock))
    {
        resnets = new ModuleList<ResnetBlock2D>();
        for (int i = 0; i < c.LayersPerBlock; i++) resnets.Add(new ResnetBlock2D(i == 0 ? inCh : outCh, outCh, temb, c.NormGroups, c.NormEps));
        if (attention)
        {
            attentions = new ModuleList<Transformer2DModel>();
            for (int i = 0; i < c.LayersPerBlock; i++) attentions.Add(Transformer2DModel.ForLevel(c, level, outCh));
        }
        if (downsample) downsamplers = new ModuleList<Downsample2D>(new Downsample2D(outCh));
        RegisterComponents();
    }

    internal Tensor Forward(Tensor x, Tensor temb, Tensor context, List<Tensor> skips)
    {
        for (int i = 0; i < resnets.Count; i++)
        {
            x = resnets[i].call(x, temb);
            if (attentions is not null) x = attentions[i].call(x, context);
            skips.Add(x);
        }
        if (downsamplers is not null)
        {
            x = downsamplers[0].call(x);
            skips.Add(x);
        }
        return x;
    }
}

/// <summary>One resolution level on the way up: ResNet blocks over concatenated skips (each optionally with a transformer), then an upsampler.</summary>
public sealed class UNetUpBlock : nn.Module
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel>? attentions;
    private readonly ModuleList<Upsample2D>? upsamplers;

    internal UNetUpBlock(int prevOut, int outCh, int[] skipChannels, int temb, UNetConfig c, int level, bool attention, bool upsample) : base(nameof(UNetUpBlock))
    {
        resnets = new ModuleList<ResnetBlock2D>();
        for (int i = 0; i < skipChannels.Length; i++)
            resnets.Add(new ResnetBlock2D((i == 0 ? prevOut : outCh) + skipChannels[i], outCh, temb, c.NormGroups, c.NormEps));
        if (attention)
        {
            attentions = new ModuleList<Transformer2DModel>();
            for (int i = 0; i < skipChannels.Length; i++) attentions.Add(Transformer2DModel.ForLevel(c, level, outCh));
        }
        if (upsample) upsamplers = new ModuleList<Upsample2D>(new Upsample2D(outCh));
        RegisterComponents();
    }

    internal Tensor Forward(Tensor x, Tensor temb, Tensor context, List<Tensor> skips)
    {
        for (int i = 0; i < resnets.Count; i++)
        {
            var skip = skips[^1];
            skips.RemoveAt(skips.Count - 1);
            x = resnets[i].call(cat([x, skip], 1), temb);
            if (attentions is not null) x = attentions[i].call(x, context);
        }
        if (upsamplers is not null) x = upsamplers[0].call(x);
        return x;
    }
}

/// <summary>The bottleneck: ResNet, cross-attention transformer, ResNet.</summary>
public sealed class UNetMidBlock : nn.Module
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel>? attentions;

    internal UNetMidBlock(int ch, int temb, UNetConfig c) : base(nameof(UNetMidBlock))
    {
        resnets = new ModuleList<ResnetBlock2D>(new ResnetBlock2D(ch, ch, temb, c.NormGroups, c.NormEps), new ResnetBlock2D(ch, ch, temb, c.NormGroups, c.NormEps));
        if (c.MidBlockAttention)
            attentions = new ModuleList<Transformer2DModel>(Transformer2DModel.ForLevel(c, c.BlockOutChannels.Length - 1, ch));
        RegisterComponents();
    }

    internal Tensor Forward(Tensor x, Tensor temb, Tensor context)
    {
        x = resnets[0].call(x, temb);
        if (attentions is not null) x = attentions[0].call(x, context);
        return resnets[1].call(x, temb);
    }
}

/// <summary>
/// Residuals a ControlNet adds inside a <see cref="UNet2DConditionModel"/> (see <see cref="UNet2DConditionModel.Forward"/>).
/// </summary>
/// <param name="Down">One per skip connection, each of that skip's shape (B, C_i, h_i, w_i).</param>
/// <param name="Mid">One of the mid block output's shape.</param>
public sealed record UNetResiduals(IReadOnlyList<Tensor> Down, Tensor Mid);

/// <summary>
/// The text-conditioned denoising UNet of latent diffusion (Rombach et al. 2022), with diffusers'
/// UNet2DConditionModel parameter names (conv_in, time_embedding.linear_1/2, down_blocks.{i}.resnets/attentions/
/// downsamplers, mid_block, up_blocks, conv_norm_out, conv_out), so that its weights load by name.
/// </summary>
public sealed class UNet2DConditionModel : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly Conv2d conv_in, conv_out;
    private readonly TimestepEmbedding time_embedding;
    private readonly ModuleList<UNetDownBlock> down_blocks;
    private readonly UNetMidBlock mid_block;
    private readonly ModuleList<UNetUpBlock> up_blocks;
    private readonly GroupNorm conv_norm_out;

    /// <summary>The configuration.</summary>
    public UNetConfig Config { get; }

    /// <summary>Builds a randomly initialised UNet.</summary>
    public UNet2DConditionModel(UNetConfig config) : base(nameof(UNet2DConditionModel))
    {
        config.Validate();
        Config = config;
        var ch = config.BlockOutChannels;
        int temb = ch[0] * 4;
        conv_in = nn.Conv2d(config.InChannels, ch[0], 3, padding: 1);
        time_embedding = new TimestepEmbedding(ch[0], temb);

        down_blocks = BuildDownBlocks(config, temb);
        mid_block = new UNetMidBlock(ch[^1], temb, config);

        var skipChannels = SkipChannelsOf(config);
        int prev = ch[^1];
        up_blocks = new ModuleList<UNetUpBlock>();
        for (int i = 0; i < ch.Length; i++)
        {
            int level = ch.Length - 1 - i;
            var skips = new int[config.LayersPerBlock + 1];
            for (int j = 0; j < skips.Length; j++) { skips[j] = skipChannels[^1]; skipChannels.RemoveAt(skipChannels.Count - 1); }
            up_blocks.Add(new UNetUpBlock(prev, ch[level], skips, temb, config, level, config.CrossAttentionLevels[level], level != 0));
            prev = ch[level];
        }
        conv_norm_out = Layers.GroupNorm(config.NormGroups, ch[0], config.NormEps);
        conv_out = nn.Conv2d(ch[0], config.OutChannels, 3, padding: 1);
        RegisterComponents();
        foreach (var (name, module) in named_modules())
            if (module is Attention a) a.Path = name;
    }

    /// <summary>Every attention module with its path (e.g. "up_blocks.1.attentions.0.transformer_blocks.0.attn2").</summary>
    public IEnumerable<Attention> AttentionModules => modules().OfType<Attention>();

    /// <summary>Installs a processor on every attention module, chosen per module.</summary>
    public void SetAttentionProcessor(Func<Attention, IAttentionProcessor> choose)
    {
        foreach (var a in AttentionModules) a.Processor = choose(a);
    }

    /// <summary>
    /// Predicts ε (or v): latents (B, C, h, w) with h and w divisible by 2^(levels−1), timesteps (B) int64,
    /// text tokens (B, S, CrossAttentionDim). Inputs of another floating type are cast to the weights' type, and the
    /// prediction comes out in it.
    /// </summary>
    public override Tensor forward(Tensor latents, Tensor timesteps, Tensor context) => Forward(latents, timesteps, context, null);

    /// <summary>
    /// <see cref="forward"/> with residuals added inside the network (ControlNet, Zhang et al. 2023): each of
    /// <see cref="UNetResiduals.Down"/> is added to the matching skip connection (the conv_in output, then every ResNet or
    /// transformer output and every downsampler output of the down blocks, in order: <see cref="SkipChannels"/>), and
    /// <see cref="UNetResiduals.Mid"/> to the mid block's output. Null residuals compute exactly <see cref="forward"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The residuals do not match the skips in count or shape.</exception>
    public Tensor Forward(Tensor latents, Tensor timesteps, Tensor context, UNetResiduals? residuals)
    {
        using var scope = NewDisposeScope();
        int factor = 1 << (Config.BlockOutChannels.Length - 1);
        if (latents.shape[2] % factor != 0 || latents.shape[3] % factor != 0)
            throw new ArgumentException($"latent size {latents.shape[2]}x{latents.shape[3]} must be divisible by {factor}");
        if (context.shape[^1] != Config.CrossAttentionDim)
            throw new ArgumentException($"context width {context.shape[^1]} does not match CrossAttentionDim {Config.CrossAttentionDim}");
        if (timesteps.dim() == 0) timesteps = timesteps.expand(latents.shape[0]);
        var type = time_embedding.DType;                  // a bfloat16 copy (mixed precision) takes float32 inputs in its own type (not conv_in's: it may compute in float32, see BFloat16Kernels)
        if (latents.dtype != type) latents = latents.to(type);
        if (context.dtype != type) context = context.to(type);
        var temb = time_embedding.call(TimestepFeatures.Sinusoidal(timesteps, Config.BlockOutChannels[0]).to(latents.dtype));
        var skips = new List<Tensor>();
        var x = Encode(conv_in.call(latents), temb, context, down_blocks, mid_block, skips);
        if (residuals is not null)
        {
            if (residuals.Down.Count != skips.Count)
                throw new ArgumentException($"{residuals.Down.Count} down-block residuals given; this UNet has {skips.Count} skip connections", nameof(residuals));
            for (int i = 0; i < skips.Count; i++)
            {
                if (!residuals.Down[i].shape.SequenceEqual(skips[i].shape))
                    throw new ArgumentException($"down residual {i} has shape [{string.Join(", ", residuals.Down[i].shape)}]; the skip is [{string.Join(", ", skips[i].shape)}]", nameof(residuals));
                skips[i] = skips[i] + residuals.Down[i].to(skips[i].dtype);
            }
            if (!residuals.Mid.shape.SequenceEqual(x.shape))
                throw new ArgumentException($"mid residual has shape [{string.Join(", ", residuals.Mid.shape)}]; the mid block's output is [{string.Join(", ", x.shape)}]", nameof(residuals));
            x = x + residuals.Mid.to(x.dtype);
        }
        foreach (var up in up_blocks) x = up.Forward(x, temb, context, skips);
        x = conv_out.call(nn.functional.silu(conv_norm_out.call(x)));
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Channels of the skip connections in the order <see cref="Forward"/> collects them: conv_in's output, then each
    /// down block's ResNet (or transformer) outputs and its downsampler's output. A ControlNet gives one residual per entry.
    /// </summary>
    public IReadOnlyList<int> SkipChannels => SkipChannelsOf(Config);

    /// <summary><see cref="SkipChannels"/> of a UNet of shape <paramref name="c"/> (the UNet's up blocks and a ControlNet's zero convolutions are sized by it).</summary>
    internal static List<int> SkipChannelsOf(UNetConfig c)
    {
        var ch = c.BlockOutChannels;
        var list = new List<int> { ch[0] };
        for (int i = 0; i < ch.Length; i++)
        {
            for (int j = 0; j < c.LayersPerBlock; j++) list.Add(ch[i]);
            if (i < ch.Length - 1) list.Add(ch[i]);
        }
        return list;
    }

    /// <summary>The down blocks of a UNet of shape <paramref name="c"/> (the UNet's and a ControlNet's encoder copy are built alike, so weights copy by name).</summary>
    internal static ModuleList<UNetDownBlock> BuildDownBlocks(UNetConfig c, int tembChannels)
    {
        var ch = c.BlockOutChannels;
        var blocks = new ModuleList<UNetDownBlock>();
        int prev = ch[0];
        for (int i = 0; i < ch.Length; i++)
        {
            blocks.Add(new UNetDownBlock(prev, ch[i], tembChannels, c, i, c.CrossAttentionLevels[i], i != ch.Length - 1));
            prev = ch[i];
        }
        return blocks;
    }

    /// <summary>
    /// The encoder pass shared by the UNet and a ControlNet: <paramref name="x"/> is conv_in's output; it and every down
    /// block's skip output are appended to <paramref name="skips"/>; returns the mid block's output.
    /// </summary>
    internal static Tensor Encode(Tensor x, Tensor temb, Tensor context, ModuleList<UNetDownBlock> downBlocks, UNetMidBlock midBlock, List<Tensor> skips)
    {
        skips.Add(x);
        foreach (var down in downBlocks) x = down.Forward(x, temb, context, skips);
        return midBlock.Forward(x, temb, context);
    }

    /// <summary>MLP on the sinusoidal features: linear_1, SiLU, linear_2.</summary>
    internal sealed class TimestepEmbedding : nn.Module<Tensor, Tensor>
    {
        private readonly Linear linear_1, linear_2;
        public TimestepEmbedding(int inDim, int dim) : base("time_embedding")
        {
            linear_1 = nn.Linear(inDim, dim);
            linear_2 = nn.Linear(dim, dim);
            RegisterComponents();
        }

        /// <summary>The dtype the module computes in (its linear layers', which mixed precision never keeps in float32).</summary>
        public ScalarType DType => linear_1.weight!.dtype;
        public override Tensor forward(Tensor x) => linear_2.forward(nn.functional.silu(linear_1.forward(x)));
    }
}
