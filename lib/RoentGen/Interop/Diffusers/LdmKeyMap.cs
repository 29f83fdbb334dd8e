using System.Globalization;
using RoentGen.Diffusion;
using static TorchSharp.torch;
using TextConfig = RoentGen.Text.ClipTextConfig;

namespace RoentGen.Interop.Diffusers;

/// <summary>Which text encoder a single-file checkpoint holds under <c>cond_stage_model.</c>.</summary>
public enum LdmTextEncoderKind
{
    /// <summary>OpenAI CLIP ViT-L/14 as a transformers CLIPTextModel (SD 1.x): <c>cond_stage_model.transformer.text_model.*</c>.</summary>
    Clip,
    /// <summary>OpenCLIP ViT-H/14's text tower (SD 2.x): <c>cond_stage_model.model.*</c>, attention as one fused in_proj.</summary>
    OpenClip,
}

/// <summary>How a tensor changes on its way from the LDM layout to the diffusers layout.</summary>
public enum LdmTensorTransform
{
    /// <summary>Taken as it is.</summary>
    None,
    /// <summary>A 1x1 convolution weight (O, I, 1, 1) read as a Linear weight (O, I) (the LDM VAE's attention; a Linear weight is kept).</summary>
    ConvToLinear,
    /// <summary>One third of OpenCLIP's fused in_proj (rows [part·D, (part+1)·D)): part 0 query, 1 key, 2 value.</summary>
    QkvPart,
}

/// <summary>Where one LDM tensor (or part of it) goes.</summary>
/// <param name="Component">"unet", "vae" or "text_encoder".</param>
/// <param name="Key">The diffusers / transformers state-dict key in that component.</param>
/// <param name="Transform">How the tensor is reshaped or split.</param>
/// <param name="Part">For <see cref="LdmTensorTransform.QkvPart"/>: 0 query, 1 key, 2 value.</param>
public sealed record LdmKeyTarget(string Component, string Key, LdmTensorTransform Transform = LdmTensorTransform.None, int Part = 0);

/// <summary>What the map decided for one LDM key: its targets, or why it is skipped; null from <see cref="LdmKeyMap.Map"/> means unmapped.</summary>
/// <param name="Targets">Where the tensor goes (empty when skipped).</param>
/// <param name="SkipReason">Why a known key that holds no weight of the pipeline is skipped, or null.</param>
public sealed record LdmKeyDecision(IReadOnlyList<LdmKeyTarget> Targets, string? SkipReason = null);

/// <summary>A whole LDM state dict in diffusers' names.</summary>
/// <param name="Components">"unet", "vae", "text_encoder" → diffusers-named tensors (views of the source tensors: dispose both).</param>
/// <param name="Origin">component/key → the LDM key it came from.</param>
/// <param name="Unmapped">LDM keys the map does not know.</param>
/// <param name="Skipped">Known keys skipped, with the reason.</param>
/// <param name="Conflicts">diffusers keys that two LDM keys map to.</param>
public sealed record LdmConversion(IReadOnlyDictionary<string, Dictionary<string, Tensor>> Components, IReadOnlyDictionary<string, string> Origin,
    IReadOnlyList<string> Unmapped, IReadOnlyList<(string Key, string Reason)> Skipped, IReadOnlyList<string> Conflicts);

/// <summary>
/// The explicit map between Stable Diffusion's original single-file checkpoint layout (CompVis latent-diffusion /
/// stablediffusion: <c>model.diffusion_model.*</c> the UNet of openaimodel.py, <c>first_stage_model.*</c> the KL
/// autoencoder, <c>cond_stage_model.*</c> the text encoder) and the diffusers / transformers names of this library's
/// <see cref="UNet2DConditionModel"/>, <see cref="AutoencoderKL"/> and <see cref="RoentGen.Text.ClipTextModel"/>.
/// </summary>
/// <remarks>
/// <para><b>UNet</b> (L = layers per block, n levels; openaimodel.py numbers its blocks in one flat list):
/// <c>time_embed.0/2</c> → <c>time_embedding.linear_1/2</c>; <c>input_blocks.0.0</c> → <c>conv_in</c>;
/// <c>input_blocks.{1 + i(L+1) + j}.0</c> → <c>down_blocks.{i}.resnets.{j}</c> and <c>.1</c> → <c>down_blocks.{i}.attentions.{j}</c>;
/// <c>input_blocks.{(i+1)(L+1)}.0.op</c> → <c>down_blocks.{i}.downsamplers.0.conv</c>; <c>middle_block.0/1/2</c> →
/// <c>mid_block.resnets.0</c>, <c>mid_block.attentions.0</c>, <c>mid_block.resnets.1</c>; <c>output_blocks.{i(L+1) + j}.0</c> →
/// <c>up_blocks.{i}.resnets.{j}</c>, <c>.1</c> → <c>up_blocks.{i}.attentions.{j}</c> (levels with attention), and the last
/// block of a level holds the upsampler, <c>output_blocks.{i(L+1)+L}.{1 or 2}.conv</c> → <c>up_blocks.{i}.upsamplers.0.conv</c>
/// (2 where that level has attention); <c>out.0/2</c> → <c>conv_norm_out</c>, <c>conv_out</c>. Inside a ResBlock:
/// <c>in_layers.0</c> → norm1, <c>in_layers.2</c> → conv1, <c>emb_layers.1</c> → time_emb_proj, <c>out_layers.0</c> → norm2,
/// <c>out_layers.3</c> → conv2, <c>skip_connection</c> → conv_shortcut. The spatial transformers' inner names (norm,
/// proj_in, transformer_blocks.k.attn1/attn2.to_q…, ff.net.0.proj, ff.net.2, proj_out) are the same in both layouts.</para>
/// <para><b>VAE</b>: <c>encoder.down.{i}.block.{j}</c> → <c>encoder.down_blocks.{i}.resnets.{j}</c>,
/// <c>encoder.down.{i}.downsample.conv</c> → <c>…downsamplers.0.conv</c>; the decoder's <c>up</c> list is numbered from the
/// deepest level: <c>decoder.up.{n−1−i}.block.{j}</c> → <c>decoder.up_blocks.{i}.resnets.{j}</c>, <c>.upsample.conv</c> →
/// <c>…upsamplers.0.conv</c>; <c>mid.block_1/2</c> → <c>mid_block.resnets.0/1</c>; <c>mid.attn_1.norm/q/k/v/proj_out</c> →
/// <c>mid_block.attentions.0.group_norm/to_q/to_k/to_v/to_out.0</c> (1x1 convolutions there, Linear here);
/// <c>norm_out</c> → <c>conv_norm_out</c>; <c>nin_shortcut</c> → <c>conv_shortcut</c>; quant_conv, post_quant_conv, conv_in,
/// conv_out keep their names.</para>
/// <para><b>Text encoder</b>, SD 1.x: <c>cond_stage_model.transformer.text_model.*</c> → <c>text_model.*</c> (older files
/// without <c>text_model.</c> get it prepended). SD 2.x (OpenCLIP): <c>token_embedding</c>, <c>positional_embedding</c>,
/// <c>ln_final</c> → <c>text_model.embeddings.token_embedding</c>, <c>…position_embedding</c>, <c>text_model.final_layer_norm</c>;
/// <c>transformer.resblocks.{k}.ln_1/ln_2/attn.out_proj/mlp.c_fc/mlp.c_proj</c> → <c>text_model.encoder.layers.{k}.layer_norm1/
/// layer_norm2/self_attn.out_proj/mlp.fc1/mlp.fc2</c>, and the fused <c>attn.in_proj_weight/bias</c> (3D rows) split in
/// thirds into q_proj, k_proj, v_proj. Layers at and beyond the text config's layer count are skipped: SD 2.x conditions on
/// the penultimate layer, so its text encoder has 23 of OpenCLIP's 24.</para>
/// <para><b>Skipped</b>, each with its reason: the training schedule's buffers (betas, alphas_cumprod, … recomputed from the
/// scheduler config), <c>model_ema.*</c> (an EMA copy of the UNet beside the weights used; diffusers' default likewise reads
/// the non-EMA weights), CLIP's int64 position_ids, OpenCLIP's text_projection, logit_scale and attn_mask. Every other key
/// that does not fit this map is unmapped, and the loader refuses the file listing it.</para>
/// </remarks>
public sealed class LdmKeyMap
{
    /// <summary>Prefix of the UNet's keys.</summary>
    public const string UNetPrefix = "model.diffusion_model.";
    /// <summary>Prefix of the VAE's keys.</summary>
    public const string VaePrefix = "first_stage_model.";
    /// <summary>Prefix of SD 1.x's CLIP text encoder keys.</summary>
    public const string ClipPrefix = "cond_stage_model.transformer.";
    /// <summary>Prefix of SD 2.x's OpenCLIP text encoder keys.</summary>
    public const string OpenClipPrefix = "cond_stage_model.model.";

    /// <summary>Top-level buffers of LatentDiffusion's training schedule (recomputed here from the scheduler config).</summary>
    public static readonly IReadOnlyList<string> ScheduleBuffers =
    [
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "logvar",
    ];

    private static readonly (string Ldm, string Diffusers)[] ResBlockParts =
    [
        ("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("emb_layers.1", "time_emb_proj"),
        ("out_layers.0", "norm2"), ("out_layers.3", "conv2"), ("skip_connection", "conv_shortcut"),
    ];

    private static readonly (string Ldm, string Diffusers)[] VaeAttentionParts =
        [("norm", "group_norm"), ("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("proj_out", "to_out.0")];

    private static readonly (string Ldm, string Diffusers)[] OpenClipLayerParts =
        [("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("attn.out_proj", "self_attn.out_proj"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")];

    private readonly int _levels, _layers, _vaeLevels, _textLayers;
    private readonly bool[] _attention;

    /// <summary>A map for the models these configs describe (levels, layers per block, attention levels, text layers).</summary>
    public LdmKeyMap(UNetConfig unet, VaeConfig vae, TextConfig text)
    {
        _levels = unet.BlockOutChannels.Length;
        _layers = unet.LayersPerBlock;
        _attention = unet.CrossAttentionLevels.ToArray();
        _vaeLevels = vae.BlockOutChannels.Length;
        _textLayers = text.Layers;
    }

    /// <summary>The text encoder a checkpoint's keys hold, or null when it holds neither prefix.</summary>
    public static LdmTextEncoderKind? DetectTextEncoder(IEnumerable<string> keys)
    {
        foreach (var k in keys)
        {
            if (k.StartsWith(OpenClipPrefix, StringComparison.Ordinal)) return LdmTextEncoderKind.OpenClip;
            if (k.StartsWith(ClipPrefix, StringComparison.Ordinal)) return LdmTextEncoderKind.Clip;
        }
        return null;
    }

    /// <summary>Where an LDM key goes, why it is skipped, or null when the map does not know it.</summary>
    public LdmKeyDecision? Map(string ldmKey)
    {
        if (ScheduleBuffers.Contains(ldmKey)) return Skip("a buffer of the training schedule, recomputed from the scheduler config");
        if (ldmKey.StartsWith("model_ema.", StringComparison.Ordinal))
            return Skip("the EMA copy of the UNet; the weights under model.diffusion_model.* are loaded (as diffusers' extract_ema=False)");
        if (ldmKey.StartsWith(UNetPrefix, StringComparison.Ordinal))
            return One("unet", UNetKey(ldmKey[UNetPrefix.Length..]));
        if (ldmKey.StartsWith(VaePrefix, StringComparison.Ordinal))
        {
            var rest = ldmKey[VaePrefix.Length..];
            var key = VaeKey(rest);
            return key is null ? null : new LdmKeyDecision([new LdmKeyTarget("vae", key, IsVaeAttentionWeight(key) ? LdmTensorTransform.ConvToLinear : LdmTensorTransform.None)]);
        }
        if (ldmKey.StartsWith(ClipPrefix, StringComparison.Ordinal))
        {
            var rest = ldmKey[ClipPrefix.Length..];
            if (!rest.StartsWith("text_model.", StringComparison.Ordinal)) rest = "text_model." + rest;
            if (rest == "text_model.embeddings.position_ids") return Skip("CLIP's int64 position ids 0 … L−1 (the positions are always those here)");
            return One("text_encoder", rest);
        }
        if (ldmKey.StartsWith(OpenClipPrefix, StringComparison.Ordinal)) return OpenClip(ldmKey[OpenClipPrefix.Length..]);
        return null;
    }

    /// <summary>
    /// The LDM key of a diffusers key of <paramref name="component"/> (the inverse of <see cref="Map"/>); for OpenCLIP's
    /// q_proj / k_proj / v_proj the fused in_proj key they are thirds of.
    /// </summary>
    /// <exception cref="ArgumentException">The key is not one this map produces.</exception>
    public string LdmKey(string component, string key, LdmTextEncoderKind text)
    {
        string? ldm = component switch
        {
            "unet" => UNetLdm(key) is { } u ? UNetPrefix + u : null,
            "vae" => VaeLdm(key) is { } v ? VaePrefix + v : null,
            "text_encoder" => text == LdmTextEncoderKind.Clip ? ClipPrefix + key : OpenClipLdm(key) is { } o ? OpenClipPrefix + o : null,
            _ => throw new ArgumentException($"unknown component '{component}' (expected unet, vae or text_encoder)", nameof(component)),
        };
        return ldm ?? throw new ArgumentException($"{component} key '{key}' has no place in the LDM layout", nameof(key));
    }

    /// <summary>
    /// Renames a whole LDM state dict to diffusers' names, per component. Tensors are views (aliases, reshapes or row
    /// slices) of the source's: dispose both.
    /// </summary>
    public LdmConversion Convert(IReadOnlyDictionary<string, Tensor> ldm)
    {
        var components = new Dictionary<string, Dictionary<string, Tensor>>
        {
            ["unet"] = new(StringComparer.Ordinal), ["vae"] = new(StringComparer.Ordinal), ["text_encoder"] = new(StringComparer.Ordinal),
        };
        var origin = new Dictionary<string, string>(StringComparer.Ordinal);
        var unmapped = new List<string>();
        var skipped = new List<(string, string)>();
        var conflicts = new List<string>();
        foreach (var (key, t) in ldm)
        {
            var decision = Map(key);
            if (decision is null) { unmapped.Add(key); continue; }
            if (decision.SkipReason is { } why) { skipped.Add((key, why)); continue; }
            foreach (var target in decision.Targets)
            {
                var id = $"{target.Component}/{target.Key}";
                if (origin.TryGetValue(id, out var first)) { conflicts.Add($"{target.Component} '{target.Key}' comes from both '{first}' and '{key}'"); continue; }
                origin[id] = key;
                components[target.Component][target.Key] = Apply(t, target);
            }
        }
        return new LdmConversion(components, origin, unmapped, skipped, conflicts);
    }

    /// <summary>
    /// A pipeline's three components' state dicts in the LDM layout (the inverse of <see cref="Convert"/>): OpenCLIP's
    /// q/k/v projections fused into in_proj, the VAE attention's Linear weights as 1x1 convolutions. New tensors, on the CPU.
    /// </summary>
    /// <exception cref="ArgumentException">A key has no place in the LDM layout, or an OpenCLIP layer lacks one of q/k/v.</exception>
    public Dictionary<string, Tensor> ToLdm(IReadOnlyDictionary<string, Tensor> unet, IReadOnlyDictionary<string, Tensor> vae,
        IReadOnlyDictionary<string, Tensor> textEncoder, LdmTextEncoderKind text)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, t) in unet) result[LdmKey("unet", key, text)] = t.detach().clone();
        foreach (var (key, t) in vae)
        {
            var value = t.detach().clone();
            if (IsVaeAttentionWeight(key) && value.dim() == 2)
                value = value.reshape(value.shape[0], value.shape[1], 1, 1);
            result[LdmKey("vae", key, text)] = value;
        }
        var fused = new Dictionary<string, Tensor?[]>(StringComparer.Ordinal);
        foreach (var (key, t) in textEncoder)
        {
            var ldmKey = LdmKey("text_encoder", key, text);
            if (text == LdmTextEncoderKind.OpenClip && Map(ldmKey) is { Targets.Count: 3 } d)
            {
                var parts = fused.TryGetValue(ldmKey, out var p) ? p : fused[ldmKey] = new Tensor?[3];
                parts[d.Targets.Single(x => x.Key == key).Part] = t.detach();
            }
            else result[ldmKey] = t.detach().clone();
        }
        foreach (var (key, parts) in fused)
        {
            if (parts.Any(p => p is null)) throw new ArgumentException($"'{key}' needs q_proj, k_proj and v_proj; one of them is missing");
            result[key] = cat(parts.Select(p => p!).ToArray(), 0);
        }
        return result;
    }

    private static Tensor Apply(Tensor t, LdmKeyTarget target) => target.Transform switch
    {
        LdmTensorTransform.ConvToLinear when t.dim() == 4 && t.shape[2] == 1 && t.shape[3] == 1 => t.reshape(t.shape[0], t.shape[1]),
        LdmTensorTransform.QkvPart when t.dim() >= 1 && t.shape[0] % 3 == 0 => t.narrow(0, target.Part * (t.shape[0] / 3), t.shape[0] / 3),
        LdmTensorTransform.QkvPart => t.alias(),   // not divisible in thirds: left whole, so the shape check names it
        _ => t.alias(),
    };

    private static bool IsVaeAttentionWeight(string key) =>
        key.Contains(".mid_block.attentions.0.to_", StringComparison.Ordinal) && key.EndsWith(".weight", StringComparison.Ordinal);

    private static LdmKeyDecision Skip(string reason) => new([], reason);

    private static LdmKeyDecision? One(string component, string? key) => key is null ? null : new LdmKeyDecision([new LdmKeyTarget(component, key)]);

    private static int? Index(string s) =>
        s.Length is > 0 and < 6 && s.All(char.IsAsciiDigit) && (s == "0" || s[0] != '0') ? int.Parse(s, CultureInfo.InvariantCulture) : null;

    /// <summary>Splits "a.b.rest" into its first <paramref name="count"/> parts and the rest (null when there are fewer).</summary>
    private static (string[] Head, string Tail)? Split(string key, int count)
    {
        var parts = key.Split('.', count + 1);
        return parts.Length == count + 1 ? (parts[..count], parts[count]) : null;
    }

    // ---- UNet ----

    private string? UNetKey(string rest)
    {
        if (Split(rest, 2) is { } two)
        {
            var (h, tail) = two;
            switch (h[0])
            {
                case "time_embed" when h[1] is "0" or "2": return $"time_embedding.linear_{(h[1] == "0" ? 1 : 2)}.{tail}";
                case "out" when h[1] is "0" or "2": return $"{(h[1] == "0" ? "conv_norm_out" : "conv_out")}.{tail}";
                case "middle_block":
                    return h[1] switch
                    {
                        "0" => ResBlock("mid_block.resnets.0", tail),
                        "1" => $"mid_block.attentions.0.{tail}",
                        "2" => ResBlock("mid_block.resnets.1", tail),
                        _ => null,
                    };
            }
        }
        if (Split(rest, 3) is not { } three || Index(three.Head[1]) is not int k || Index(three.Head[2]) is not int m) return null;
        var t3 = three.Tail;
        int per = _layers + 1;
        if (three.Head[0] == "input_blocks")
        {
            if (k == 0) return m == 0 ? $"conv_in.{t3}" : null;
            int level = (k - 1) / per, j = (k - 1) % per;
            if (level >= _levels) return null;
            if (j < _layers)
                return m switch
                {
                    0 => ResBlock($"down_blocks.{level}.resnets.{j}", t3),
                    1 when _attention[level] => $"down_blocks.{level}.attentions.{j}.{t3}",
                    _ => null,
                };
            return level < _levels - 1 && m == 0 && t3.StartsWith("op.", StringComparison.Ordinal) ? $"down_blocks.{level}.downsamplers.0.conv.{t3[3..]}" : null;
        }
        if (three.Head[0] == "output_blocks")
        {
            int i = k / per, j = k % per;
            if (i >= _levels) return null;
            bool attention = _attention[_levels - 1 - i];
            if (m == 0) return ResBlock($"up_blocks.{i}.resnets.{j}", t3);
            if (m == 1 && attention) return $"up_blocks.{i}.attentions.{j}.{t3}";
            if (j == _layers && i < _levels - 1 && m == (attention ? 2 : 1) && t3.StartsWith("conv.", StringComparison.Ordinal))
                return $"up_blocks.{i}.upsamplers.0.conv.{t3[5..]}";
        }
        return null;
    }

    private static string? ResBlock(string prefix, string tail)
    {
        foreach (var (ldm, diffusers) in ResBlockParts)
            if (tail.StartsWith(ldm + ".", StringComparison.Ordinal) && !tail[(ldm.Length + 1)..].Contains('.'))
                return $"{prefix}.{diffusers}.{tail[(ldm.Length + 1)..]}";
        return null;
    }

    private static string? ResBlockLdm(string tail)
    {
        foreach (var (ldm, diffusers) in ResBlockParts)
            if (tail.StartsWith(diffusers + ".", StringComparison.Ordinal)) return $"{ldm}.{tail[(diffusers.Length + 1)..]}";
        return null;
    }

    private string? UNetLdm(string key)
    {
        if (key.StartsWith("conv_in.", StringComparison.Ordinal)) return "input_blocks.0.0." + key["conv_in.".Length..];
        if (key.StartsWith("time_embedding.linear_1.", StringComparison.Ordinal)) return "time_embed.0." + key["time_embedding.linear_1.".Length..];
        if (key.StartsWith("time_embedding.linear_2.", StringComparison.Ordinal)) return "time_embed.2." + key["time_embedding.linear_2.".Length..];
        if (key.StartsWith("conv_norm_out.", StringComparison.Ordinal)) return "out.0." + key["conv_norm_out.".Length..];
        if (key.StartsWith("conv_out.", StringComparison.Ordinal)) return "out.2." + key["conv_out.".Length..];
        int per = _layers + 1;
        if (Split(key, 3) is { Head: ["mid_block", var kind, var n], Tail: var mt })
        {
            return (kind, n) switch
            {
                ("resnets", "0") => ResBlockLdm(mt) is { } r0 ? $"middle_block.0.{r0}" : null,
                ("attentions", "0") => $"middle_block.1.{mt}",
                ("resnets", "1") => ResBlockLdm(mt) is { } r1 ? $"middle_block.2.{r1}" : null,
                _ => null,
            };
        }
        if (Split(key, 4) is not { } s || Index(s.Head[1]) is not int i || Index(s.Head[3]) is not int j) return null;
        var tail = s.Tail;
        switch (s.Head[0], s.Head[2])
        {
            case ("down_blocks", "resnets"): return ResBlockLdm(tail) is { } r ? $"input_blocks.{1 + i * per + j}.0.{r}" : null;
            case ("down_blocks", "attentions"): return $"input_blocks.{1 + i * per + j}.1.{tail}";
            case ("down_blocks", "downsamplers") when j == 0 && tail.StartsWith("conv.", StringComparison.Ordinal):
                return $"input_blocks.{(i + 1) * per}.0.op.{tail[5..]}";
            case ("up_blocks", "resnets"): return ResBlockLdm(tail) is { } u ? $"output_blocks.{i * per + j}.0.{u}" : null;
            case ("up_blocks", "attentions"): return $"output_blocks.{i * per + j}.1.{tail}";
            case ("up_blocks", "upsamplers") when j == 0 && tail.StartsWith("conv.", StringComparison.Ordinal) && i < _levels:
                return $"output_blocks.{i * per + _layers}.{(_attention[_levels - 1 - i] ? 2 : 1)}.{tail}";
        }
        return null;
    }

    // ---- VAE ----

    private string? VaeKey(string rest)
    {
        if (rest.StartsWith("quant_conv.", StringComparison.Ordinal) || rest.StartsWith("post_quant_conv.", StringComparison.Ordinal)) return rest;
        if (Split(rest, 1) is not { Head: [var part], Tail: var inner } || part is not ("encoder" or "decoder")) return null;
        string? mapped = null;
        if (Split(inner, 1) is { Head: [var top], Tail: var t1 } && top is "conv_in" or "conv_out" && !t1.Contains('.')) mapped = inner;
        else if (inner.StartsWith("norm_out.", StringComparison.Ordinal)) mapped = "conv_norm_out." + inner["norm_out.".Length..];
        else if (Split(inner, 2) is { Head: ["mid", var mid], Tail: var mt })
        {
            mapped = mid switch
            {
                "block_1" => VaeResnet("mid_block.resnets.0", mt),
                "block_2" => VaeResnet("mid_block.resnets.1", mt),
                "attn_1" => VaeAttentionParts.Where(p => mt.StartsWith(p.Ldm + ".", StringComparison.Ordinal) && !mt[(p.Ldm.Length + 1)..].Contains('.'))
                    .Select(p => $"mid_block.attentions.0.{p.Diffusers}.{mt[(p.Ldm.Length + 1)..]}").FirstOrDefault(),
                _ => null,
            };
        }
        else if (Split(inner, 4) is { Head: [var list, var l, "block", var j], Tail: var bt } && Index(l) is int level && level < _vaeLevels && Index(j) is not null
                 && list == (part == "encoder" ? "down" : "up"))
            mapped = VaeResnet($"{VaeBlock(part, level)}.resnets.{j}", bt);
        else if (Split(inner, 3) is { Head: [var list2, var l2, var sampler], Tail: var st } && Index(l2) is int level2 && level2 < _vaeLevels
                 && st.StartsWith("conv.", StringComparison.Ordinal) && !st[5..].Contains('.')
                 && (part == "encoder" ? list2 == "down" && sampler == "downsample" && level2 < _vaeLevels - 1 : list2 == "up" && sampler == "upsample" && level2 > 0))
            mapped = $"{VaeBlock(part, level2)}.{(part == "encoder" ? "downsamplers" : "upsamplers")}.0.{st}";
        return mapped is null ? null : $"{part}.{mapped}";
    }

    /// <summary>The diffusers block of an LDM level: the encoder's down list runs from the top, the decoder's up list from the deepest level.</summary>
    private string VaeBlock(string part, int level) => part == "encoder" ? $"down_blocks.{level}" : $"up_blocks.{_vaeLevels - 1 - level}";

    private static string? VaeResnet(string prefix, string tail)
    {
        if (Split(tail, 1) is not { Head: [var module], Tail: var param } || param.Contains('.')) return null;
        return module switch
        {
            "norm1" or "conv1" or "norm2" or "conv2" => $"{prefix}.{module}.{param}",
            "nin_shortcut" => $"{prefix}.conv_shortcut.{param}",
            _ => null,
        };
    }

    private string? VaeLdm(string key)
    {
        if (key.StartsWith("quant_conv.", StringComparison.Ordinal) || key.StartsWith("post_quant_conv.", StringComparison.Ordinal)) return key;
        if (Split(key, 1) is not { Head: [var part], Tail: var inner } || part is not ("encoder" or "decoder")) return null;
        bool encoder = part == "encoder";
        string? mapped = null;
        if (inner.StartsWith("conv_in.", StringComparison.Ordinal) || inner.StartsWith("conv_out.", StringComparison.Ordinal)) mapped = inner;
        else if (inner.StartsWith("conv_norm_out.", StringComparison.Ordinal)) mapped = "norm_out." + inner["conv_norm_out.".Length..];
        else if (inner.StartsWith("mid_block.attentions.0.", StringComparison.Ordinal))
        {
            var a = inner["mid_block.attentions.0.".Length..];
            mapped = VaeAttentionParts.Where(p => a.StartsWith(p.Diffusers + ".", StringComparison.Ordinal))
                .Select(p => $"mid.attn_1.{p.Ldm}.{a[(p.Diffusers.Length + 1)..]}").FirstOrDefault();
        }
        else if (Split(inner, 3) is { Head: ["mid_block", "resnets", var n], Tail: var mt }) mapped = $"mid.block_{(n == "0" ? 1 : 2)}.{VaeResnetLdm(mt)}";
        else if (Split(inner, 4) is { } s && s.Head[0] == (encoder ? "down_blocks" : "up_blocks") && Index(s.Head[1]) is int i && Index(s.Head[3]) is int j)
        {
            int level = encoder ? i : _vaeLevels - 1 - i;
            string list = encoder ? "down" : "up";
            mapped = s.Head[2] switch
            {
                "resnets" => $"{list}.{level}.block.{j}.{VaeResnetLdm(s.Tail)}",
                "downsamplers" or "upsamplers" => $"{list}.{level}.{(encoder ? "downsample" : "upsample")}.{s.Tail}",
                _ => null,
            };
        }
        return mapped is null ? null : $"{part}.{mapped}";
    }

    private static string VaeResnetLdm(string tail) => tail.StartsWith("conv_shortcut.", StringComparison.Ordinal) ? "nin_shortcut." + tail["conv_shortcut.".Length..] : tail;

    // ---- OpenCLIP text encoder ----

    private LdmKeyDecision? OpenClip(string rest)
    {
        switch (rest)
        {
            case "token_embedding.weight": return One("text_encoder", "text_model.embeddings.token_embedding.weight");
            case "positional_embedding": return One("text_encoder", "text_model.embeddings.position_embedding.weight");
            case "text_projection": return Skip("OpenCLIP's projection into the joint image-text space; the UNet conditions on the token states before it");
            case "logit_scale": return Skip("OpenCLIP's contrastive temperature, not used for conditioning");
            case "attn_mask": return Skip("OpenCLIP's causal mask buffer (built here from the causal flag)");
        }
        if (rest.StartsWith("ln_final.", StringComparison.Ordinal)) return One("text_encoder", "text_model.final_layer_norm." + rest["ln_final.".Length..]);
        if (Split(rest, 3) is not { Head: ["transformer", "resblocks", var n], Tail: var tail } || Index(n) is not int layer) return null;
        if (layer >= _textLayers)
            return Skip($"OpenCLIP layer {layer}, beyond the text encoder's {_textLayers} layers (SD 2.x conditions on the penultimate layer's output)");
        var p = $"text_model.encoder.layers.{layer}";
        if (tail is "attn.in_proj_weight" or "attn.in_proj_bias")
        {
            var param = tail.EndsWith("weight", StringComparison.Ordinal) ? "weight" : "bias";
            return new LdmKeyDecision(new[] { "q_proj", "k_proj", "v_proj" }.Select((proj, i) =>
                new LdmKeyTarget("text_encoder", $"{p}.self_attn.{proj}.{param}", LdmTensorTransform.QkvPart, i)).ToList());
        }
        foreach (var (ldm, diffusers) in OpenClipLayerParts)
            if (tail.StartsWith(ldm + ".", StringComparison.Ordinal) && !tail[(ldm.Length + 1)..].Contains('.'))
                return One("text_encoder", $"{p}.{diffusers}.{tail[(ldm.Length + 1)..]}");
        return null;
    }

    private static string? OpenClipLdm(string key)
    {
        switch (key)
        {
            case "text_model.embeddings.token_embedding.weight": return "token_embedding.weight";
            case "text_model.embeddings.position_embedding.weight": return "positional_embedding";
        }
        if (key.StartsWith("text_model.final_layer_norm.", StringComparison.Ordinal)) return "ln_final." + key["text_model.final_layer_norm.".Length..];
        if (Split(key, 4) is not { Head: ["text_model", "encoder", "layers", var n], Tail: var tail } || Index(n) is null) return null;
        var p = $"transformer.resblocks.{n}";
        foreach (var proj in new[] { "q_proj", "k_proj", "v_proj" })
            if (tail.StartsWith($"self_attn.{proj}.", StringComparison.Ordinal)) return $"{p}.attn.in_proj_{tail[(proj.Length + 11)..]}";
        foreach (var (ldm, diffusers) in OpenClipLayerParts)
            if (tail.StartsWith(diffusers + ".", StringComparison.Ordinal)) return $"{p}.{ldm}.{tail[(diffusers.Length + 1)..]}";
        return null;
    }
}
