using System.Text.Json;
using System.Text.Json.Nodes;
using RoentGen.Interop;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Interop.Diffusers;

/// <summary>
/// Writes diffusers Stable Diffusion folders at tiny widths for the loader's tests. The state-dict keys and shapes come
/// from this file's own walk of diffusers' UNet2DConditionModel / AutoencoderKL and transformers' CLIPTextModel (as
/// their modules name their parameters), not from the library's models, so a key or shape the library gets wrong fails
/// the load instead of being written the same wrong way.
/// </summary>
internal static class SdFixture
{
    public static readonly string[] Corpus =
    [
        "small left pleural effusion", "no acute cardiopulmonary process", "right upper lobe pneumonia",
        "cardiomegaly with mild edema", "left lower lobe atelectasis", "no pneumothorax", "a chest x-ray",
    ];

    /// <summary>An SD 1.x layout: 1x1-conv projections, 2 heads at every level, quick-GELU, epsilon, PNDM with leading spacing and offset 1.</summary>
    public static SdLayout Sd1 => new(
        Unet: new JsonObject
        {
            ["_class_name"] = "UNet2DConditionModel", ["_diffusers_version"] = "0.12.0.dev0", ["act_fn"] = "silu",
            ["attention_head_dim"] = 2, ["block_out_channels"] = new JsonArray(16, 32, 32), ["center_input_sample"] = false,
            ["cross_attention_dim"] = 32, ["down_block_types"] = new JsonArray("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            ["downsample_padding"] = 1, ["flip_sin_to_cos"] = true, ["freq_shift"] = 0, ["in_channels"] = 4, ["layers_per_block"] = 2,
            ["mid_block_scale_factor"] = 1, ["mid_block_type"] = "UNetMidBlock2DCrossAttn", ["norm_eps"] = 1e-5, ["norm_num_groups"] = 8,
            ["out_channels"] = 4, ["sample_size"] = 8, ["up_block_types"] = new JsonArray("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            ["upcast_attention"] = false, ["use_linear_projection"] = false,
        },
        Vae: Vae(),
        Text: new JsonObject
        {
            ["architectures"] = new JsonArray("CLIPTextModel"), ["attention_dropout"] = 0.0, ["bos_token_id"] = 0, ["dropout"] = 0.0,
            ["eos_token_id"] = 2, ["hidden_act"] = "quick_gelu", ["hidden_size"] = 32, ["initializer_factor"] = 1.0, ["initializer_range"] = 0.02,
            ["intermediate_size"] = 64, ["layer_norm_eps"] = 1e-5, ["max_position_embeddings"] = 16, ["model_type"] = "clip_text_model",
            ["num_attention_heads"] = 2, ["num_hidden_layers"] = 2, ["pad_token_id"] = 1, ["projection_dim"] = 32, ["torch_dtype"] = "float32",
            ["transformers_version"] = "4.22.0.dev0", ["vocab_size"] = 0,   // set to the tokenizer's size by Write
        },
        Scheduler: new JsonObject
        {
            ["_class_name"] = "PNDMScheduler", ["_diffusers_version"] = "0.7.0.dev0", ["beta_end"] = 0.012, ["beta_schedule"] = "scaled_linear",
            ["beta_start"] = 0.00085, ["num_train_timesteps"] = 1000, ["set_alpha_to_one"] = false, ["skip_prk_steps"] = true,
            ["steps_offset"] = 1, ["trained_betas"] = null, ["clip_sample"] = false,
        },
        PadToken: BpeTokenizer.EndToken, OldVaeAttentionNames: true, PositionIds: true);

    /// <summary>An SD 2.x layout: linear projections, head width 8 (heads = channels/8), two transformer blocks deeper down, GELU, v-prediction, linear betas, DDIM.</summary>
    public static SdLayout Sd2 => new(
        Unet: new JsonObject
        {
            ["_class_name"] = "UNet2DConditionModel", ["_diffusers_version"] = "0.10.0.dev0", ["act_fn"] = "silu",
            ["attention_head_dim"] = new JsonArray(2, 4, 4), ["block_out_channels"] = new JsonArray(16, 32, 32), ["center_input_sample"] = false,
            ["cross_attention_dim"] = 48, ["down_block_types"] = new JsonArray("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            ["downsample_padding"] = 1, ["flip_sin_to_cos"] = true, ["freq_shift"] = 0, ["in_channels"] = 4, ["layers_per_block"] = 1,
            ["mid_block_scale_factor"] = 1, ["norm_eps"] = 1e-5, ["norm_num_groups"] = 8, ["out_channels"] = 4, ["sample_size"] = 8,
            ["transformer_layers_per_block"] = new JsonArray(1, 2, 2),
            ["up_block_types"] = new JsonArray("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), ["use_linear_projection"] = true,
            ["upcast_attention"] = true,
        },
        Vae: Vae(),
        Text: new JsonObject
        {
            ["architectures"] = new JsonArray("CLIPTextModel"), ["attention_dropout"] = 0.0, ["bos_token_id"] = 0, ["dropout"] = 0.0,
            ["eos_token_id"] = 2, ["hidden_act"] = "gelu", ["hidden_size"] = 48, ["initializer_factor"] = 1.0, ["initializer_range"] = 0.02,
            ["intermediate_size"] = 96, ["layer_norm_eps"] = 1e-5, ["max_position_embeddings"] = 16, ["model_type"] = "clip_text_model",
            ["num_attention_heads"] = 4, ["num_hidden_layers"] = 2, ["pad_token_id"] = 1, ["projection_dim"] = 32, ["torch_dtype"] = "float32",
            ["transformers_version"] = "4.25.0.dev0", ["vocab_size"] = 0,
        },
        Scheduler: new JsonObject
        {
            ["_class_name"] = "DDIMScheduler", ["_diffusers_version"] = "0.10.0.dev0", ["beta_end"] = 0.012, ["beta_schedule"] = "linear",
            ["beta_start"] = 0.00085, ["clip_sample"] = false, ["num_train_timesteps"] = 1000, ["prediction_type"] = "v_prediction",
            ["set_alpha_to_one"] = false, ["steps_offset"] = 1, ["trained_betas"] = null,
        },
        PadToken: "!", OldVaeAttentionNames: false, PositionIds: false);

    private static JsonObject Vae() => new()
    {
        ["_class_name"] = "AutoencoderKL", ["_diffusers_version"] = "0.10.0.dev0", ["act_fn"] = "silu",
        ["block_out_channels"] = new JsonArray(8, 16, 16),
        ["down_block_types"] = new JsonArray("DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"),
        ["in_channels"] = 3, ["latent_channels"] = 4, ["layers_per_block"] = 1, ["norm_num_groups"] = 4, ["out_channels"] = 3,
        ["sample_size"] = 32, ["up_block_types"] = new JsonArray("UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"),
    };

    /// <summary>Writes the layout into <paramref name="dir"/>: configs, a trained tiny tokenizer and seeded random weights.</summary>
    public static void Write(string dir, SdLayout layout, long seed = 1)
    {
        var tokenizer = BpeTokenizer.Train(Corpus, 300);
        tokenizer.Save(Path.Combine(dir, "tokenizer"));
        WriteJson(Path.Combine(dir, "tokenizer", "tokenizer_config.json"), new JsonObject
        {
            ["bos_token"] = BpeTokenizer.StartToken, ["eos_token"] = BpeTokenizer.EndToken, ["pad_token"] = layout.PadToken,
            ["unk_token"] = BpeTokenizer.EndToken, ["model_max_length"] = 16, ["tokenizer_class"] = "CLIPTokenizer", ["do_lower_case"] = true,
        });
        var text = (JsonObject)layout.Text.DeepClone();
        text["vocab_size"] = tokenizer.VocabSize;
        WriteJson(Path.Combine(dir, "model_index.json"), new JsonObject
        {
            ["_class_name"] = "StableDiffusionPipeline", ["_diffusers_version"] = "0.10.0",
            ["feature_extractor"] = new JsonArray("transformers", "CLIPImageProcessor"), ["safety_checker"] = new JsonArray(null, null),
            ["scheduler"] = new JsonArray("diffusers", layout.Scheduler["_class_name"]!.GetValue<string>()),
            ["text_encoder"] = new JsonArray("transformers", "CLIPTextModel"), ["tokenizer"] = new JsonArray("transformers", "CLIPTokenizer"),
            ["unet"] = new JsonArray("diffusers", "UNet2DConditionModel"), ["vae"] = new JsonArray("diffusers", "AutoencoderKL"),
        });
        WriteJson(Path.Combine(dir, "unet", "config.json"), layout.Unet);
        WriteJson(Path.Combine(dir, "vae", "config.json"), layout.Vae);
        WriteJson(Path.Combine(dir, "text_encoder", "config.json"), text);
        WriteJson(Path.Combine(dir, "scheduler", "scheduler_config.json"), layout.Scheduler);

        using var scope = NewDisposeScope();
        SafeTensors.Save(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors"), Random(UNetKeys(layout.Unet), seed));
        var vae = Random(VaeKeys(layout.Vae, layout.OldVaeAttentionNames), seed + 1);
        SafeTensors.Save(Path.Combine(dir, "vae", "diffusion_pytorch_model.safetensors"), vae);
        var clip = Random(ClipKeys(text), seed + 2);
        if (layout.PositionIds) clip["text_model.embeddings.position_ids"] = arange(16L, dtype: ScalarType.Int64).unsqueeze(0);
        SafeTensors.Save(Path.Combine(dir, "text_encoder", "model.safetensors"), clip, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Seeded weights for keys: norm scales near 1, everything else small, so that a few sampling steps stay finite.</summary>
    public static Dictionary<string, Tensor> Random(IEnumerable<(string Key, long[] Shape)> keys, long seed)
    {
        using var g = new Generator((ulong)seed);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, shape) in keys)
        {
            var t = randn(shape, generator: g);
            bool norm = key.Contains("norm") && key.EndsWith(".weight", StringComparison.Ordinal) && shape.Length == 1;
            result[key] = norm ? 1 + 0.1 * t : (key.Contains("embedding") ? 0.5 * t : 0.15 * t);
        }
        return result;
    }

    /// <summary>diffusers UNet2DConditionModel parameter keys and shapes for a unet config.</summary>
    public static List<(string, long[])> UNetKeys(JsonObject c)
    {
        var keys = new List<(string, long[])>();
        var ch = Ints(c["block_out_channels"]!);
        int n = ch.Length, layers = c["layers_per_block"]!.GetValue<int>(), cross = c["cross_attention_dim"]!.GetValue<int>();
        var heads = PerLevel(c["attention_head_dim"], n);
        var depth = c["transformer_layers_per_block"] is { } d ? PerLevel(d, n) : Enumerable.Repeat(1, n).ToArray();
        bool linear = c["use_linear_projection"]?.GetValue<bool>() ?? false;
        var down = c["down_block_types"]!.AsArray().Select(x => x!.GetValue<string>()).ToArray();
        var up = c["up_block_types"]!.AsArray().Select(x => x!.GetValue<string>()).ToArray();
        int temb = 4 * ch[0];
        Conv(keys, "conv_in", c["in_channels"]!.GetValue<int>(), ch[0], 3);
        Lin(keys, "time_embedding.linear_1", ch[0], temb);
        Lin(keys, "time_embedding.linear_2", temb, temb);
        int output = ch[0];
        for (int i = 0; i < n; i++)
        {
            int input = output;
            output = ch[i];
            for (int j = 0; j < layers; j++)
            {
                ResNet(keys, $"down_blocks.{i}.resnets.{j}", j == 0 ? input : output, output, temb);
                if (down[i] == "CrossAttnDownBlock2D") Transformer(keys, $"down_blocks.{i}.attentions.{j}", output, depth[i], cross, linear);
            }
            if (i < n - 1) Conv(keys, $"down_blocks.{i}.downsamplers.0.conv", output, output, 3);
        }
        ResNet(keys, "mid_block.resnets.0", ch[^1], ch[^1], temb);
        Transformer(keys, "mid_block.attentions.0", ch[^1], depth[^1], cross, linear);
        ResNet(keys, "mid_block.resnets.1", ch[^1], ch[^1], temb);
        var rev = ch.Reverse().ToArray();
        var revDepth = depth.Reverse().ToArray();
        output = rev[0];
        for (int i = 0; i < n; i++)
        {
            int prev = output;
            output = rev[i];
            int input = rev[Math.Min(i + 1, n - 1)];
            for (int j = 0; j < layers + 1; j++)
            {
                int skip = j == layers ? input : output;
                ResNet(keys, $"up_blocks.{i}.resnets.{j}", (j == 0 ? prev : output) + skip, output, temb);
                if (up[i] == "CrossAttnUpBlock2D") Transformer(keys, $"up_blocks.{i}.attentions.{j}", output, revDepth[i], cross, linear);
            }
            if (i < n - 1) Conv(keys, $"up_blocks.{i}.upsamplers.0.conv", output, output, 3);
        }
        Norm(keys, "conv_norm_out", ch[0]);
        Conv(keys, "conv_out", ch[0], c["out_channels"]!.GetValue<int>(), 3);
        _ = heads;   // heads do not size any tensor: inner width = heads × (channels / heads)
        return keys;
    }

    /// <summary>diffusers AutoencoderKL parameter keys and shapes; <paramref name="oldNames"/> uses the pre-0.14 mid-block attention names.</summary>
    public static List<(string, long[])> VaeKeys(JsonObject c, bool oldNames = false)
    {
        var keys = new List<(string, long[])>();
        var ch = Ints(c["block_out_channels"]!);
        int n = ch.Length, layers = c["layers_per_block"]!.GetValue<int>(), latent = c["latent_channels"]!.GetValue<int>();
        int top = ch[^1];
        void Mid(string p)
        {
            ResNet(keys, $"{p}.mid_block.resnets.0", top, top, 0);
            Norm(keys, $"{p}.mid_block.attentions.0.group_norm", top);
            foreach (var (now, old) in new[] { ("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn") })
                Lin(keys, $"{p}.mid_block.attentions.0.{(oldNames ? old : now)}", top, top);
            ResNet(keys, $"{p}.mid_block.resnets.1", top, top, 0);
        }
        Conv(keys, "encoder.conv_in", c["in_channels"]!.GetValue<int>(), ch[0], 3);
        int output = ch[0];
        for (int i = 0; i < n; i++)
        {
            int input = output;
            output = ch[i];
            for (int j = 0; j < layers; j++) ResNet(keys, $"encoder.down_blocks.{i}.resnets.{j}", j == 0 ? input : output, output, 0);
            if (i < n - 1) Conv(keys, $"encoder.down_blocks.{i}.downsamplers.0.conv", output, output, 3);
        }
        Mid("encoder");
        Norm(keys, "encoder.conv_norm_out", top);
        Conv(keys, "encoder.conv_out", top, 2 * latent, 3);
        Conv(keys, "quant_conv", 2 * latent, 2 * latent, 1);
        Conv(keys, "post_quant_conv", latent, latent, 1);
        Conv(keys, "decoder.conv_in", latent, top, 3);
        Mid("decoder");
        var rev = ch.Reverse().ToArray();
        output = rev[0];
        for (int i = 0; i < n; i++)
        {
            int prev = output;
            output = rev[i];
            for (int j = 0; j < layers + 1; j++) ResNet(keys, $"decoder.up_blocks.{i}.resnets.{j}", j == 0 ? prev : output, output, 0);
            if (i < n - 1) Conv(keys, $"decoder.up_blocks.{i}.upsamplers.0.conv", output, output, 3);
        }
        Norm(keys, "decoder.conv_norm_out", ch[0]);
        Conv(keys, "decoder.conv_out", ch[0], c["out_channels"]!.GetValue<int>(), 3);
        return keys;
    }

    /// <summary>transformers CLIPTextModel parameter keys and shapes.</summary>
    public static List<(string, long[])> ClipKeys(JsonObject c)
    {
        var keys = new List<(string, long[])>();
        int d = c["hidden_size"]!.GetValue<int>(), m = c["intermediate_size"]!.GetValue<int>();
        keys.Add(("text_model.embeddings.token_embedding.weight", [c["vocab_size"]!.GetValue<int>(), d]));
        keys.Add(("text_model.embeddings.position_embedding.weight", [c["max_position_embeddings"]!.GetValue<int>(), d]));
        for (int i = 0; i < c["num_hidden_layers"]!.GetValue<int>(); i++)
        {
            var p = $"text_model.encoder.layers.{i}";
            foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" }) Lin(keys, $"{p}.self_attn.{proj}", d, d);
            Norm(keys, $"{p}.layer_norm1", d);
            Lin(keys, $"{p}.mlp.fc1", d, m);
            Lin(keys, $"{p}.mlp.fc2", m, d);
            Norm(keys, $"{p}.layer_norm2", d);
        }
        Norm(keys, "text_model.final_layer_norm", d);
        return keys;
    }

    private static void Transformer(List<(string, long[])> keys, string p, int c, int depth, int cross, bool linear)
    {
        Norm(keys, $"{p}.norm", c);
        if (linear) Lin(keys, $"{p}.proj_in", c, c); else Conv(keys, $"{p}.proj_in", c, c, 1);
        for (int k = 0; k < depth; k++)
        {
            var b = $"{p}.transformer_blocks.{k}";
            Norm(keys, $"{b}.norm1", c);
            Norm(keys, $"{b}.norm2", c);
            Norm(keys, $"{b}.norm3", c);
            foreach (var (attn, kv) in new[] { ("attn1", c), ("attn2", cross) })
            {
                Lin(keys, $"{b}.{attn}.to_q", c, c, bias: false);
                Lin(keys, $"{b}.{attn}.to_k", kv, c, bias: false);
                Lin(keys, $"{b}.{attn}.to_v", kv, c, bias: false);
                Lin(keys, $"{b}.{attn}.to_out.0", c, c);
            }
            Lin(keys, $"{b}.ff.net.0.proj", c, 8 * c);
            Lin(keys, $"{b}.ff.net.2", 4 * c, c);
        }
        if (linear) Lin(keys, $"{p}.proj_out", c, c); else Conv(keys, $"{p}.proj_out", c, c, 1);
    }

    private static void ResNet(List<(string, long[])> keys, string p, int inC, int outC, int temb)
    {
        Norm(keys, $"{p}.norm1", inC);
        Conv(keys, $"{p}.conv1", inC, outC, 3);
        if (temb > 0) Lin(keys, $"{p}.time_emb_proj", temb, outC);
        Norm(keys, $"{p}.norm2", outC);
        Conv(keys, $"{p}.conv2", outC, outC, 3);
        if (inC != outC) Conv(keys, $"{p}.conv_shortcut", inC, outC, 1);
    }

    private static void Conv(List<(string, long[])> keys, string p, int inC, int outC, int k)
    {
        keys.Add(($"{p}.weight", [outC, inC, k, k]));
        keys.Add(($"{p}.bias", [outC]));
    }

    private static void Lin(List<(string, long[])> keys, string p, int inF, int outF, bool bias = true)
    {
        keys.Add(($"{p}.weight", [outF, inF]));
        if (bias) keys.Add(($"{p}.bias", [outF]));
    }

    private static void Norm(List<(string, long[])> keys, string p, int c)
    {
        keys.Add(($"{p}.weight", [c]));
        keys.Add(($"{p}.bias", [c]));
    }

    private static int[] Ints(JsonNode node) => node.AsArray().Select(x => x!.GetValue<int>()).ToArray();

    private static int[] PerLevel(JsonNode? node, int n) =>
        node is JsonArray a ? a.Select(x => x!.GetValue<int>()).ToArray() : Enumerable.Repeat(node!.GetValue<int>(), n).ToArray();

    public static void WriteJson(string path, JsonNode json)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public static JsonObject ReadJson(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();
}

/// <summary>A tiny SD folder's configs and quirks.</summary>
internal sealed record SdLayout(JsonObject Unet, JsonObject Vae, JsonObject Text, JsonObject Scheduler, string PadToken, bool OldVaeAttentionNames, bool PositionIds);
