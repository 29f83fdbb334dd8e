namespace RoentGen.Interop.Diffusers;

/// <summary>
/// Parameter counts of the diffusers / transformers modules a config describes, computed from the config alone by
/// walking the modules' layers as those libraries build them (no weights read). For checking a folder's weights
/// against its configs and for sizing memory before loading.
/// </summary>
public static class ParameterCounts
{
    /// <summary>
    /// UNet2DConditionModel: conv_in, the timestep MLP (width 4·C₀), per down level ResNets (+ cross-attention
    /// transformers) (+ a stride-2 conv), the middle ResNet–transformer–ResNet, per up level one ResNet more than down
    /// (with skip channels) (+ transformers) (+ an upsampling conv), GroupNorm and conv_out.
    /// </summary>
    /// <exception cref="InvalidDataException">The config has values this count does not model (its report's unsupported list).</exception>
    public static long UNet(UNet2DConditionConfig c)
    {
        RequireSupported(c.Report);
        int levels = c.Levels;
        var ch = c.BlockOutChannels;
        long temb = 4L * ch[0];
        long n = Conv(c.InChannels, ch[0], 3);
        n += Linear(ch[0], temb) + Linear(temb, temb);                                   // time_embedding.linear_1/2

        int output = ch[0];
        for (int i = 0; i < levels; i++)
        {
            int input = output;
            output = ch[i];
            for (int j = 0; j < c.LayersPerBlock; j++)
            {
                n += ResNet(j == 0 ? input : output, output, temb);
                if (c.DownHasAttention(i)) n += Transformer(output, c.TransformerLayersPerBlock[i], c.CrossAttentionDim);
            }
            if (i < levels - 1) n += Conv(output, output, 3);                           // downsamplers.0.conv
        }

        if (c.MidBlockType is not null)
        {
            int m = ch[^1];
            n += 2 * ResNet(m, m, temb) + Transformer(m, c.TransformerLayersPerBlock[^1], c.CrossAttentionDim);
        }

        var rev = ch.Reverse().ToArray();
        var revDepth = c.TransformerLayersPerBlock.Reverse().ToArray();
        output = rev[0];
        for (int i = 0; i < levels; i++)
        {
            int prev = output;
            output = rev[i];
            int input = rev[Math.Min(i + 1, levels - 1)];
            int layers = c.LayersPerBlock + 1;
            for (int j = 0; j < layers; j++)
            {
                int skip = j == layers - 1 ? input : output;
                int resIn = j == 0 ? prev : output;
                n += ResNet(resIn + skip, output, temb);
                if (c.UpHasAttention(i)) n += Transformer(output, revDepth[i], c.CrossAttentionDim);
            }
            if (i < levels - 1) n += Conv(output, output, 3);                           // upsamplers.0.conv
        }

        n += Norm(ch[0]) + Conv(ch[0], c.OutChannels, 3);                               // conv_norm_out, conv_out
        return n;
    }

    /// <summary>
    /// AutoencoderKL: encoder (conv_in, ResNets and stride-2 convs, a middle ResNet–attention–ResNet, GroupNorm,
    /// conv_out to 2·latent channels), quant_conv and post_quant_conv (1x1), decoder (conv_in, the middle block, one more
    /// ResNet per level than the encoder and upsampling convs, GroupNorm, conv_out).
    /// </summary>
    /// <exception cref="InvalidDataException">The config has values this count does not model.</exception>
    public static long Vae(AutoencoderKLConfig c)
    {
        RequireSupported(c.Report);
        var ch = c.BlockOutChannels;
        int levels = ch.Count;
        int top = ch[^1];
        long mid = 2 * ResNet(top, top, 0) + Norm(top) + 4 * Linear(top, top);         // resnets, attentions.0 (group_norm, q, k, v, out)

        long enc = Conv(c.InChannels, ch[0], 3);
        int output = ch[0];
        for (int i = 0; i < levels; i++)
        {
            int input = output;
            output = ch[i];
            for (int j = 0; j < c.LayersPerBlock; j++) enc += ResNet(j == 0 ? input : output, output, 0);
            if (i < levels - 1) enc += Conv(output, output, 3);
        }
        enc += mid + Norm(top) + Conv(top, 2 * c.LatentChannels, 3);

        long quant = Conv(2 * c.LatentChannels, 2 * c.LatentChannels, 1) + Conv(c.LatentChannels, c.LatentChannels, 1);

        long dec = Conv(c.LatentChannels, top, 3) + mid;
        var rev = ch.Reverse().ToArray();
        output = rev[0];
        for (int i = 0; i < levels; i++)
        {
            int prev = output;
            output = rev[i];
            for (int j = 0; j < c.LayersPerBlock + 1; j++) dec += ResNet(j == 0 ? prev : output, output, 0);
            if (i < levels - 1) dec += Conv(output, output, 3);
        }
        dec += Norm(ch[0]) + Conv(ch[0], c.OutChannels, 3);
        return enc + quant + dec;
    }

    /// <summary>
    /// transformers' CLIPTextModel: token and position embeddings, per layer two LayerNorms, q/k/v/out projections
    /// and the two-layer MLP, and the final LayerNorm (no text projection: that belongs to CLIPTextModelWithProjection).
    /// </summary>
    /// <exception cref="InvalidDataException">The config has values this count does not model.</exception>
    public static long ClipText(ClipTextConfig c)
    {
        RequireSupported(c.Report);
        long d = c.HiddenSize;
        long layer = 2 * (2 * d) + 4 * Linear(d, d) + Linear(d, c.IntermediateSize) + Linear(c.IntermediateSize, d);
        return (long)c.VocabSize * d + (long)c.MaxPositionEmbeddings * d + c.NumHiddenLayers * layer + 2 * d;
    }

    private static void RequireSupported(ConfigReport report)
    {
        if (report.Unsupported.Count > 0)
            throw new InvalidDataException($"{report.File}: cannot count parameters of a config with unsupported values: {string.Join("; ", report.Unsupported)}");
    }

    private static long Linear(long inF, long outF, bool bias = true) => inF * outF + (bias ? outF : 0);

    private static long Conv(long inC, long outC, int k) => inC * outC * k * k + outC;

    private static long Norm(long c) => 2 * c;

    // ResnetBlock2D: norm1, conv1, time_emb_proj (when the block takes a timestep embedding), norm2, conv2, and a 1x1 conv_shortcut when widths differ.
    private static long ResNet(long inC, long outC, long temb) =>
        Norm(inC) + Conv(inC, outC, 3) + (temb > 0 ? Linear(temb, outC) : 0) + Norm(outC) + Conv(outC, outC, 3) + (inC != outC ? Conv(inC, outC, 1) : 0);

    // Transformer2DModel over width C: GroupNorm, proj_in, `depth` BasicTransformerBlocks (self-attention with bias-free
    // q/k/v, cross-attention with k/v from the text width, GEGLU feed-forward of inner width 4C, three LayerNorms), proj_out.
    // proj_in/proj_out hold C·C + C parameters whether they are Linear (SD 2.x) or 1x1 convolutions (SD 1.x).
    private static long Transformer(long c, int depth, long crossDim)
    {
        long attn1 = 3 * Linear(c, c, bias: false) + Linear(c, c);
        long attn2 = Linear(c, c, bias: false) + 2 * Linear(crossDim, c, bias: false) + Linear(c, c);
        long ff = Linear(c, 8 * c) + Linear(4 * c, c);
        long block = 3 * (2 * c) + attn1 + attn2 + ff;
        return Norm(c) + 2 * Linear(c, c) + depth * block;
    }
}
