using RoentGen.Diffusion;
using RoentGen.Interop;
using RoentGen.Interop.Diffusers;
using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Interop.Diffusers;

/// <summary>
/// Blocks of a loaded SD folder recomputed by hand from the file's weights (diffusers' and transformers' forward math):
/// cross-attention, a whole linear-projection spatial transformer, the CLIP MLP's two activations; and a model trained
/// here exports through the writer and reloads to the same images.
/// </summary>
[Collection(ProcessStateCollection.Name)]
public class DiffusersForwardTests
{
    private static (TextToImagePipeline Pipe, Dictionary<string, Tensor> Unet, Dictionary<string, Tensor> Text, string Dir) Load(SdLayout layout)
    {
        var dir = TestPaths.NewTempDir("sd-forward");
        SdFixture.Write(dir, layout);
        var pipe = DiffusersPipelineLoader.Load(dir);
        var unet = SafeTensors.Load(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors")).Tensors;
        var text = SafeTensors.Load(Path.Combine(dir, "text_encoder", "model.safetensors")).Tensors;
        return (pipe, unet, text, dir);
    }

    private static T Module<T>(nn.Module model, string path) where T : nn.Module =>
        (T)model.named_modules().Single(m => m.name == path).module;

    // softmax(q kᵀ/√d) v per head, then the output projection: diffusers' Attention with the default processor.
    private static Tensor Attention(Dictionary<string, Tensor> w, string p, Tensor x, Tensor context, int heads)
    {
        Tensor Heads(Tensor t) => t.view(t.shape[0], t.shape[1], heads, -1).transpose(1, 2);
        var q = Heads(x.matmul(w[$"{p}.to_q.weight"].t()));
        var k = Heads(context.matmul(w[$"{p}.to_k.weight"].t()));
        var v = Heads(context.matmul(w[$"{p}.to_v.weight"].t()));
        var probs = (q.matmul(k.transpose(-1, -2)) / Math.Sqrt(q.shape[^1])).softmax(-1);
        var merged = probs.matmul(v).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1);
        return merged.matmul(w[$"{p}.to_out.0.weight"].t()) + w[$"{p}.to_out.0.bias"];
    }

    private static Tensor LayerNorm(Dictionary<string, Tensor> w, string p, Tensor x) =>
        nn.functional.layer_norm(x, [x.shape[^1]], w[$"{p}.weight"], w[$"{p}.bias"], 1e-5);

    private static Tensor Linear(Dictionary<string, Tensor> w, string p, Tensor x) => x.matmul(w[$"{p}.weight"].t()) + w[$"{p}.bias"];

    [Fact]
    public void Cross_attention_of_a_loaded_block_is_softmax_qk_v_per_head()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (pipe, w, _, dir) = Load(SdFixture.Sd2);
        const string path = "down_blocks.0.attentions.0.transformer_blocks.0.attn2";
        var attn = Module<RoentGen.Diffusion.Attention>(pipe.Unet, path);
        Assert.Equal(2, attn.Heads);                                       // 16 channels / head width 8
        using var g = new Generator(7);
        var x = randn([2, 5, 16], generator: g);
        var context = randn([2, 3, 48], generator: g);
        var expected = Attention(w, path, x, context, heads: 2);
        var actual = attn.call(x, context);
        Assert.True(actual.allclose(expected, rtol: 1e-4, atol: 1e-5), $"differs by {(actual - expected).abs().max().item<float>()}");
        Directory.Delete(dir, true);
    }

    [Fact]
    public void A_linear_projection_spatial_transformer_matches_its_hand_computation()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (pipe, w, _, dir) = Load(SdFixture.Sd2);
        const string p = "down_blocks.1.attentions.0";                       // 32 channels, 4 heads of 8, two blocks
        var block = Module<Transformer2DModel>(pipe.Unet, p);
        using var g = new Generator(9);
        var x = randn([1, 32, 4, 4], generator: g);
        var context = randn([1, 3, 48], generator: g);

        // diffusers' Transformer2DModel with use_linear_projection: GroupNorm(ε 1e-6), to tokens, proj_in, blocks, proj_out, back, residual.
        var h = nn.functional.group_norm(x, 8, w[$"{p}.norm.weight"], w[$"{p}.norm.bias"], 1e-6);
        var t = h.view(1, 32, 16).transpose(1, 2);
        t = Linear(w, $"{p}.proj_in", t);
        for (int k = 0; k < 2; k++)
        {
            var b = $"{p}.transformer_blocks.{k}";
            t = t + Attention(w, $"{b}.attn1", LayerNorm(w, $"{b}.norm1", t), LayerNorm(w, $"{b}.norm1", t), heads: 4);
            t = t + Attention(w, $"{b}.attn2", LayerNorm(w, $"{b}.norm2", t), context, heads: 4);
            var proj = Linear(w, $"{b}.ff.net.0.proj", LayerNorm(w, $"{b}.norm3", t)).chunk(2, -1);
            t = t + Linear(w, $"{b}.ff.net.2", proj[0] * nn.functional.gelu(proj[1]));   // GEGLU: value · gelu(gate)
        }
        t = Linear(w, $"{p}.proj_out", t);
        var expected = t.transpose(1, 2).reshape(1, 32, 4, 4) + x;
        var actual = block.call(x, context);
        Assert.True(actual.allclose(expected, rtol: 1e-4, atol: 1e-4), $"differs by {(actual - expected).abs().max().item<float>()}");
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Conv_and_linear_projections_with_the_same_weights_give_the_same_transformer()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(5);
        var conv = new Transformer2DModel(16, 2, 8, 4);
        var linear = new Transformer2DModel(16, 2, 8, 4, linearProjection: true);
        var sd = conv.state_dict().ToDictionary(kv => kv.Key,
            kv => kv.Key.StartsWith("proj_") && kv.Key.EndsWith(".weight") ? kv.Value.squeeze(-1).squeeze(-1) : kv.Value);
        StateDict.Load(linear, sd);
        var x = randn(2, 16, 3, 5);
        var context = randn(2, 4, 8);
        Assert.True(conv.call(x, context).allclose(linear.call(x, context), rtol: 1e-4, atol: 1e-5));
    }

    private sealed class DtypeRecorder : RoentGen.Nn.IAttentionProcessor
    {
        public List<ScalarType> Seen { get; } = [];
        public Tensor Attend(Tensor query, Tensor key, Tensor value, RoentGen.Nn.AttentionCall call)
        {
            Seen.Add(query.dtype);
            return RoentGen.Nn.ScaledDotProductProcessor.Instance.Attend(query, key, value, call);
        }
    }

    [Fact]
    public void Upcast_attention_runs_the_attention_of_a_half_precision_unet_in_float32()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(3);
        var config = new UNetConfig { BlockOutChannels = [16, 32], CrossAttentionLevels = [true, false], NormGroups = 8, AttentionHeadDim = 8, CrossAttentionDim = 8 };
        foreach (var upcast in new[] { false, true })
        {
            var unet = new UNet2DConditionModel(config with { UpcastAttention = upcast });
            unet.to(ScalarType.BFloat16);
            var recorder = new DtypeRecorder();
            unet.SetAttentionProcessor(_ => recorder);
            var y = unet.call(randn(1, 4, 4, 4).to(ScalarType.BFloat16), tensor(10L), randn(1, 3, 8).to(ScalarType.BFloat16));
            Assert.Equal(ScalarType.BFloat16, y.dtype);
            Assert.NotEmpty(recorder.Seen);
            Assert.All(recorder.Seen, d => Assert.Equal(upcast ? ScalarType.Float32 : ScalarType.BFloat16, d));
        }
    }

    [Theory]
    [InlineData("quick_gelu")]
    [InlineData("gelu")]
    public void Clip_text_encoder_matches_its_hand_computation(string act)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (pipe, _, w, dir) = Load(act == "gelu" ? SdFixture.Sd2 : SdFixture.Sd1);
        Assert.Equal(act, pipe.TextEncoder.Config.HiddenAct);
        var ids = pipe.Tokenizer.EncodeBatch(["small left pleural effusion"], 16).Ids;
        int d = pipe.TextEncoder.Config.HiddenSize, heads = pipe.TextEncoder.Config.Heads;
        // transformers' CLIPTextTransformer: token + position embeddings, pre-LN causal self-attention and MLP per layer, final LN.
        var x = w["text_model.embeddings.token_embedding.weight"].index_select(0, ids[0]).unsqueeze(0)
                + w["text_model.embeddings.position_embedding.weight"].narrow(0, 0, ids.shape[1]).unsqueeze(0);
        long n = ids.shape[1];
        var causal = zeros(n, n).masked_fill(ones(n, n, dtype: ScalarType.Bool).triu(1), double.NegativeInfinity);
        for (int i = 0; i < pipe.TextEncoder.Config.Layers; i++)
        {
            var p = $"text_model.encoder.layers.{i}";
            var h = LayerNorm(w, $"{p}.layer_norm1", x);
            Tensor Heads(Tensor t) => t.view(1, n, heads, -1).transpose(1, 2);
            var q = Heads(Linear(w, $"{p}.self_attn.q_proj", h)) * Math.Pow(d / heads, -0.5);
            var k = Heads(Linear(w, $"{p}.self_attn.k_proj", h));
            var v = Heads(Linear(w, $"{p}.self_attn.v_proj", h));
            var a = (q.matmul(k.transpose(-1, -2)) + causal).softmax(-1).matmul(v).transpose(1, 2).reshape(1, n, d);
            x = x + Linear(w, $"{p}.self_attn.out_proj", a);
            var m = Linear(w, $"{p}.mlp.fc1", LayerNorm(w, $"{p}.layer_norm2", x));
            m = act == "gelu" ? nn.functional.gelu(m) : m * (1.702 * m).sigmoid();
            x = x + Linear(w, $"{p}.mlp.fc2", m);
        }
        var expected = LayerNorm(w, "text_model.final_layer_norm", x);
        var actual = pipe.TextEncoder.call(ids);
        Assert.True(actual.allclose(expected, rtol: 1e-4, atol: 1e-4), $"differs by {(actual - expected).abs().max().item<float>()}");
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Ddim_without_alpha_one_ends_at_alpha_bar_zero_and_spacings_follow_diffusers()
    {
        var sd = new NoiseSchedule(new NoiseScheduleConfig { SetAlphaToOne = false, Spacing = TimestepSpacing.Leading, StepsOffset = 1 });
        Assert.Equal(sd.AlphasCumprod[0], sd.FinalAlphaBar);
        Assert.Equal(1.0, new NoiseSchedule(new NoiseScheduleConfig()).FinalAlphaBar);
        var ddim = NoiseScheduler.Create(SchedulerKind.Ddim, sd);
        ddim.SetTimesteps(4);
        Assert.Equal([751, 501, 251, 1], ddim.Timesteps);                    // leading: k·250 + 1
        var trailing = NoiseScheduler.Create(SchedulerKind.Ddim, new NoiseSchedule(new NoiseScheduleConfig { Spacing = TimestepSpacing.Trailing }));
        trailing.SetTimesteps(4);
        Assert.Equal([999, 749, 499, 249], trailing.Timesteps);
        var linspace = NoiseScheduler.Create(SchedulerKind.Ddim, new NoiseSchedule(new NoiseScheduleConfig()));
        linspace.SetTimesteps(4);
        Assert.Equal([999, 666, 333, 0], linspace.Timesteps);
        // The last DDIM step lands on √ᾱ₀ x̂₀ + √(1−ᾱ₀) ε̂ rather than on x̂₀.
        using var scope = NewDisposeScope();
        var sample = full(1, 1, 2, 2, 0.5f);
        var eps = full(1, 1, 2, 2, 0.1f);
        int t = ddim.Timesteps[3];
        double ab = sd.AlphaBar(t), ab0 = sd.AlphasCumprod[0];
        double x0 = (0.5 - Math.Sqrt(1 - ab) * 0.1) / Math.Sqrt(ab);
        var last = ddim.Step(eps, 3, sample);
        Assert.Equal(Math.Sqrt(ab0) * x0 + Math.Sqrt(1 - ab0) * 0.1, last[0, 0, 0, 0].item<float>(), 5);
        Assert.Throws<ArgumentException>(() => ddim.SetTimesteps(1000));   // 999·1 + 1 runs past T−1
    }

    /// <summary>A tiny model trained here a few steps exports as a diffusers folder and reloads to the same images.</summary>
    [Fact]
    public void A_model_trained_here_exports_and_reloads_to_identical_samples()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("ldm-export");
        var cfg = LdmExperimentConfig.Tiny with { TrainImages = 8, VaeSteps = 2, LdmSteps = 2, VaeBatch = 4, LdmBatch = 4 };
        var data = LdmTrainingData.FromPhantoms(cfg.TrainImages, cfg.ImageSize, cfg.DataSeed);
        LatentDiffusionRuns.TrainVae(cfg, data, dir);
        LatentDiffusionRuns.TrainLdm(cfg, data, dir);
        var pipe = LatentDiffusionRuns.LoadPipeline(dir);
        var request = new SampleRequest { Prompts = ["small left pleural effusion", "no acute cardiopulmonary process"], Steps = 2, Seed = 4, GuidanceScale = 2 };
        var before = pipe.Sample(request);

        var export = Path.Combine(dir, "diffusers");
        DiffusersPipelineWriter.Save(pipe, export);
        var summary = DiffusersFolder.Inspect(export);
        Assert.Empty(summary.Unknown);
        Assert.Empty(summary.Unsupported);
        Assert.Equal(["feature_extractor", "requires_safety_checker", "safety_checker"], SdFixture.ReadJson(Path.Combine(export, "model_index.json"))
            .Select(kv => kv.Key).Where(k => !k.StartsWith('_') && !DiffusersFolder.ReadComponents.Contains(k)).Order());
        var reloaded = DiffusersPipelineLoader.Load(export);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(pipe.Vae.Config), System.Text.Json.JsonSerializer.Serialize(reloaded.Vae.Config));
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(pipe.Unet.Config with { HeadsPerLevel = null, AttentionHeadDim = 0 }),
                     System.Text.Json.JsonSerializer.Serialize(reloaded.Unet.Config with { HeadsPerLevel = null, AttentionHeadDim = 0 }));
        Assert.Equal(Enumerable.Range(0, 2).Select(pipe.Unet.Config.Heads), Enumerable.Range(0, 2).Select(reloaded.Unet.Config.Heads));
        Assert.Equal(pipe.Schedule.Config, reloaded.Schedule.Config);
        Assert.Equal((pipe.LatentSize, pipe.MaxTokens), (reloaded.LatentSize, reloaded.MaxTokens));
        var ids = pipe.Tokenizer.EncodeBatch(request.Prompts, pipe.MaxTokens).Ids;
        Assert.True(ids.eq(reloaded.Tokenizer.EncodeBatch(request.Prompts, reloaded.MaxTokens).Ids).all().item<bool>(), "the exported tokenizer encodes differently");
        var after = reloaded.Sample(request);
        Assert.True(before.shape.SequenceEqual(after.shape) && before.eq(after).all().item<bool>(), $"differs by {(before - after).abs().max().item<float>()}");
        Directory.Delete(dir, true);
    }
}
