using System.Security.Cryptography;
using System.Text;
using RoentGen.Diffusion;
using RoentGen.Nn;
using RoentGen.Text;
using RoentGen.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Nn;

/// <summary>
/// The one attention as the ViT, the text encoder, the UNet and the VAE use it: processors see every layer with its
/// module path, and the checkpoints' state-dict keys are those the models had before they shared it.
/// </summary>
public class AttentionModelsTests
{
    private static readonly VitConfig TinyVit = new() { ImageSize = 16, PatchSize = 8, HiddenSize = 8, Layers = 2, Heads = 2, RegisterTokens = 1 };
    private static readonly ClipTextConfig TinyText = new() { VocabSize = 16, MaxPositions = 8, HiddenSize = 8, Layers = 2, Heads = 2, IntermediateSize = 16, EndTokenId = 15 };
    private static readonly UNetConfig TinyUnet = new() { BlockOutChannels = [8, 16], CrossAttentionLevels = [true, false], NormGroups = 4, AttentionHeadDim = 8, CrossAttentionDim = 8, LayersPerBlock = 1 };
    private static readonly VaeConfig TinyVae = new() { BlockOutChannels = [8, 8], NormGroups = 4 };

    /// <summary>Records each call and either passes it to the default processor or attends uniformly over the keys.</summary>
    private sealed class RecordingProcessor(bool uniform = false) : IAttentionProcessor
    {
        public readonly List<AttentionCall> Calls = [];
        public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call)
        {
            Calls.Add(call);
            return uniform
                ? value.mean([2], keepdim: true).expand(-1, -1, query.shape[2], -1)
                : ScaledDotProductProcessor.Instance.Attend(query, key, value, call);
        }
    }

    [Fact]
    public void A_processor_on_the_ViT_sees_each_layer_once_with_its_path_and_can_change_the_output()
    {
        using var scope = NewDisposeScope();
        using var vit = new VisionTransformer(TinyVit with { Layers = 3 });
        vit.eval();
        var pixels = randn(2, 1, 16, 16);
        var reference = vit.Forward(pixels).LastHiddenState;

        string[] paths = ["encoder.layer.0.attention", "encoder.layer.1.attention", "encoder.layer.2.attention"];
        Assert.Equal(paths, vit.AttentionModules.Select(a => a.Path));
        var recorder = new RecordingProcessor();
        vit.SetAttentionProcessor(_ => recorder);
        Assert.True(vit.Forward(pixels).LastHiddenState.equal(reference).all().item<bool>(), "a pass-through processor changed the output");
        Assert.Equal(paths, recorder.Calls.Select(c => c.Name));
        Assert.All(recorder.Calls, c => Assert.True(!c.IsCausal && !c.IsCrossAttention && c.Heads == 2 && c.Sampling is null && c.Mask is null));

        // The ambient sampling step reaches a ViT's processors as it reaches the UNet's.
        var step = new SamplingStep(Step: 1, TotalSteps: 4, Timestep: 500, BatchStart: 0, BatchCount: 1, Guided: true);
        using (step.Enter()) vit.Forward(pixels);
        Assert.All(recorder.Calls.Skip(3), c => Assert.Same(step, c.Sampling));
        Assert.Equal(6, recorder.Calls.Count);

        // Only the middle layer attends uniformly: the output changes.
        var uniform = new RecordingProcessor(uniform: true);
        vit.SetAttentionProcessor(a => a.Path == paths[1] ? uniform : ScaledDotProductProcessor.Instance);
        Assert.False(vit.Forward(pixels).LastHiddenState.allclose(reference), "a uniform-attention processor did not change the output");
        Assert.Equal([paths[1]], uniform.Calls.Select(c => c.Name));

        vit.SetAttentionProcessor(_ => ScaledDotProductProcessor.Instance);
        Assert.True(vit.Forward(pixels).LastHiddenState.equal(reference).all().item<bool>(), "restoring the default processor did not restore the output");
    }

    private sealed class CapturingProcessor : IAttentionProcessor
    {
        public readonly List<(string Name, Tensor Probabilities)> Captured = [];
        public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call)
        {
            var p = ScaledDotProductProcessor.Probabilities(query, key, call);
            Captured.Add((call.Name, p.detach().clone().DetachFromDisposeScope()));
            return matmul(p, value);
        }
    }

    /// <summary>softmax(QKᵀ/√d + mask)·V written out with the call's causal flag and mask.</summary>
    private sealed class ExplicitProcessor : IAttentionProcessor
    {
        public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call) =>
            matmul(ScaledDotProductProcessor.Probabilities(query, key, call), value);
    }

    [Fact]
    public void ViT_last_attention_is_what_a_processor_on_the_last_layer_sees()
    {
        using var scope = NewDisposeScope();
        using var vit = new VisionTransformer(TinyVit);
        vit.eval();
        var pixels = randn(2, 1, 16, 16);
        var last = vit.LastAttention(pixels);                              // (B, heads, T, T) through the weights path
        var capture = new CapturingProcessor();
        vit.SetAttentionProcessor(a => a.Path == "encoder.layer.1.attention" ? capture : ScaledDotProductProcessor.Instance);
        using (no_grad()) vit.Forward(pixels);
        var (name, probabilities) = Assert.Single(capture.Captured);
        using var captured = probabilities;
        Assert.Equal("encoder.layer.1.attention", name);
        Assert.Equal([2L, 2, 1 + 1 + 4, 1 + 1 + 4], last.shape);
        Assert.True(captured.allclose(last, rtol: 1e-5, atol: 1e-6), "LastAttention differs from the last layer's probabilities");
    }

    [Fact]
    public void A_processor_on_the_text_encoder_sees_each_causal_layer_once_with_its_path_and_can_change_the_output()
    {
        using var scope = NewDisposeScope();
        using var text = new ClipTextModel(TinyText);
        var ids = tensor(new long[] { 1, 4, 9, 15, 15, 3, 2, 15 }).view(2, 4);
        var reference = text.Encode(ids).LastHiddenState;

        string[] paths = ["text_model.encoder.layers.0.self_attn", "text_model.encoder.layers.1.self_attn"];
        Assert.Equal(paths, text.AttentionModules.Select(a => a.Path));
        var recorder = new RecordingProcessor();
        text.SetAttentionProcessor(_ => recorder);
        Assert.True(text.Encode(ids).LastHiddenState.equal(reference).all().item<bool>(), "a pass-through processor changed the output");
        Assert.Equal(paths, recorder.Calls.Select(c => c.Name));
        Assert.All(recorder.Calls, c => Assert.True(c.IsCausal && !c.IsCrossAttention && c.Heads == 2 && c.Sampling is null));

        var uniform = new RecordingProcessor(uniform: true);
        text.SetAttentionProcessor(_ => uniform);
        Assert.False(text.Encode(ids).LastHiddenState.allclose(reference), "a uniform-attention processor did not change the output");
        Assert.Equal(paths, uniform.Calls.Select(c => c.Name));
    }

    [Fact]
    public void Text_encoder_attention_is_causal_through_any_processor()
    {
        using var scope = NewDisposeScope();
        using var text = new ClipTextModel(TinyText);
        var ids = tensor(new long[] { 1, 4, 9, 15 }).view(1, 4);
        var changed = tensor(new long[] { 1, 4, 9, 7 }).view(1, 4);
        foreach (var processor in new IAttentionProcessor[] { ScaledDotProductProcessor.Instance, new ExplicitProcessor() })
        {
            text.SetAttentionProcessor(_ => processor);
            var a = text.Encode(ids).LastHiddenState;
            var b = text.Encode(changed).LastHiddenState;
            // Changing the last token leaves the earlier positions as they were.
            Assert.True(a.narrow(1, 0, 3).allclose(b.narrow(1, 0, 3), rtol: 1e-5, atol: 1e-6), $"{processor.GetType().Name}: earlier tokens saw a later one");
            Assert.False(a.narrow(1, 3, 1).allclose(b.narrow(1, 3, 1)));
        }
    }

    [Fact]
    public void VAE_attention_modules_know_their_paths()
    {
        using var vae = new AutoencoderKL(TinyVae);
        Assert.Equal(["encoder.mid_block.attentions.0", "decoder.mid_block.attentions.0"],
            vae.modules().OfType<MultiHeadAttention>().Select(a => a.Path));
    }

    private static string Sha256(IEnumerable<string> keys) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", keys))));

    [Fact]
    public void ViT_state_dict_keys_are_unchanged()
    {
        using var vit = new VisionTransformer(TinyVit);
        Assert.Equal(ExpectedVitKeys, vit.state_dict().Keys);
    }

    [Fact]
    public void Text_encoder_state_dict_keys_are_unchanged()
    {
        using var text = new ClipTextModel(TinyText);
        Assert.Equal(ExpectedTextKeys, text.state_dict().Keys);
    }

    [Fact]
    public void UNet_and_VAE_state_dict_keys_are_unchanged()
    {
        using var unet = new UNet2DConditionModel(TinyUnet);
        var keys = unet.state_dict().Keys.ToList();
        Assert.Equal(ExpectedUnetAttentionKeys, keys.Where(k => k.Contains(".attn1.") || k.Contains(".attn2.")));
        // The whole list (208 keys, in order) as it was before the attention was shared.
        Assert.Equal(208, keys.Count);
        Assert.Equal("0c7699acabd846a537fb5044bde388021297c6c0529746641069ac0866e422b2", Sha256(keys));

        using var vae = new AutoencoderKL(TinyVae);
        var vaeKeys = vae.state_dict().Keys.ToList();
        Assert.Equal(ExpectedVaeAttentionKeys, vaeKeys.Where(k => k.Contains(".attentions.")));
        Assert.Equal(120, vaeKeys.Count);
        Assert.Equal("f18c7472370e41698e86b8ccdc4c90754cded34a208acf8691662439a7019146", Sha256(vaeKeys));
    }

    // Keys of the tiny configurations above, listed from the models before the attention was shared.
    private static readonly string[] ExpectedVitKeys =
    [
        "embeddings.cls_token",
        "embeddings.mask_token",
        "embeddings.position_embeddings",
        "embeddings.register_tokens",
        "embeddings.patch_embeddings.projection.weight",
        "embeddings.patch_embeddings.projection.bias",
        "encoder.layer.0.norm1.weight",
        "encoder.layer.0.norm1.bias",
        "encoder.layer.0.norm2.weight",
        "encoder.layer.0.norm2.bias",
        "encoder.layer.0.attention.attention.query.weight",
        "encoder.layer.0.attention.attention.query.bias",
        "encoder.layer.0.attention.attention.key.weight",
        "encoder.layer.0.attention.attention.key.bias",
        "encoder.layer.0.attention.attention.value.weight",
        "encoder.layer.0.attention.attention.value.bias",
        "encoder.layer.0.attention.output.dense.weight",
        "encoder.layer.0.attention.output.dense.bias",
        "encoder.layer.0.layer_scale1.lambda1",
        "encoder.layer.0.layer_scale2.lambda1",
        "encoder.layer.0.mlp.fc1.weight",
        "encoder.layer.0.mlp.fc1.bias",
        "encoder.layer.0.mlp.fc2.weight",
        "encoder.layer.0.mlp.fc2.bias",
        "encoder.layer.1.norm1.weight",
        "encoder.layer.1.norm1.bias",
        "encoder.layer.1.norm2.weight",
        "encoder.layer.1.norm2.bias",
        "encoder.layer.1.attention.attention.query.weight",
        "encoder.layer.1.attention.attention.query.bias",
        "encoder.layer.1.attention.attention.key.weight",
        "encoder.layer.1.attention.attention.key.bias",
        "encoder.layer.1.attention.attention.value.weight",
        "encoder.layer.1.attention.attention.value.bias",
        "encoder.layer.1.attention.output.dense.weight",
        "encoder.layer.1.attention.output.dense.bias",
        "encoder.layer.1.layer_scale1.lambda1",
        "encoder.layer.1.layer_scale2.lambda1",
        "encoder.layer.1.mlp.fc1.weight",
        "encoder.layer.1.mlp.fc1.bias",
        "encoder.layer.1.mlp.fc2.weight",
        "encoder.layer.1.mlp.fc2.bias",
        "layernorm.weight",
        "layernorm.bias",
    ];

    private static readonly string[] ExpectedTextKeys =
    [
        "text_model.embeddings.token_embedding.weight",
        "text_model.embeddings.position_embedding.weight",
        "text_model.encoder.layers.0.self_attn.q_proj.weight",
        "text_model.encoder.layers.0.self_attn.q_proj.bias",
        "text_model.encoder.layers.0.self_attn.k_proj.weight",
        "text_model.encoder.layers.0.self_attn.k_proj.bias",
        "text_model.encoder.layers.0.self_attn.v_proj.weight",
        "text_model.encoder.layers.0.self_attn.v_proj.bias",
        "text_model.encoder.layers.0.self_attn.out_proj.weight",
        "text_model.encoder.layers.0.self_attn.out_proj.bias",
        "text_model.encoder.layers.0.layer_norm1.weight",
        "text_model.encoder.layers.0.layer_norm1.bias",
        "text_model.encoder.layers.0.layer_norm2.weight",
        "text_model.encoder.layers.0.layer_norm2.bias",
        "text_model.encoder.layers.0.mlp.fc1.weight",
        "text_model.encoder.layers.0.mlp.fc1.bias",
        "text_model.encoder.layers.0.mlp.fc2.weight",
        "text_model.encoder.layers.0.mlp.fc2.bias",
        "text_model.encoder.layers.1.self_attn.q_proj.weight",
        "text_model.encoder.layers.1.self_attn.q_proj.bias",
        "text_model.encoder.layers.1.self_attn.k_proj.weight",
        "text_model.encoder.layers.1.self_attn.k_proj.bias",
        "text_model.encoder.layers.1.self_attn.v_proj.weight",
        "text_model.encoder.layers.1.self_attn.v_proj.bias",
        "text_model.encoder.layers.1.self_attn.out_proj.weight",
        "text_model.encoder.layers.1.self_attn.out_proj.bias",
        "text_model.encoder.layers.1.layer_norm1.weight",
        "text_model.encoder.layers.1.layer_norm1.bias",
        "text_model.encoder.layers.1.layer_norm2.weight",
        "text_model.encoder.layers.1.layer_norm2.bias",
        "text_model.encoder.layers.1.mlp.fc1.weight",
        "text_model.encoder.layers.1.mlp.fc1.bias",
        "text_model.encoder.layers.1.mlp.fc2.weight",
        "text_model.encoder.layers.1.mlp.fc2.bias",
        "text_model.final_layer_norm.weight",
        "text_model.final_layer_norm.bias",
    ];

    private static readonly string[] ExpectedUnetAttentionKeys =
    [
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.bias",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0.bias",
        "mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight",
        "mid_block.attentions.0.transformer_blocks.0.attn1.to_k.weight",
        "mid_block.attentions.0.transformer_blocks.0.attn1.to_v.weight",
        "mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0.weight",
        "mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0.bias",
        "mid_block.attentions.0.transformer_blocks.0.attn2.to_q.weight",
        "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight",
        "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0.weight",
        "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0.bias",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.weight",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_v.weight",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.weight",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.bias",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q.weight",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v.weight",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0.weight",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0.bias",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_q.weight",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_k.weight",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_v.weight",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_out.0.weight",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_out.0.bias",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_q.weight",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_k.weight",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_v.weight",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_out.0.weight",
        "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_out.0.bias",
    ];

    private static readonly string[] ExpectedVaeAttentionKeys =
    [
        "encoder.mid_block.attentions.0.to_q.weight",
        "encoder.mid_block.attentions.0.to_q.bias",
        "encoder.mid_block.attentions.0.to_k.weight",
        "encoder.mid_block.attentions.0.to_k.bias",
        "encoder.mid_block.attentions.0.to_v.weight",
        "encoder.mid_block.attentions.0.to_v.bias",
        "encoder.mid_block.attentions.0.to_out.0.weight",
        "encoder.mid_block.attentions.0.to_out.0.bias",
        "encoder.mid_block.attentions.0.group_norm.weight",
        "encoder.mid_block.attentions.0.group_norm.bias",
        "decoder.mid_block.attentions.0.to_q.weight",
        "decoder.mid_block.attentions.0.to_q.bias",
        "decoder.mid_block.attentions.0.to_k.weight",
        "decoder.mid_block.attentions.0.to_k.bias",
        "decoder.mid_block.attentions.0.to_v.weight",
        "decoder.mid_block.attentions.0.to_v.bias",
        "decoder.mid_block.attentions.0.to_out.0.weight",
        "decoder.mid_block.attentions.0.to_out.0.bias",
        "decoder.mid_block.attentions.0.group_norm.weight",
        "decoder.mid_block.attentions.0.group_norm.bias",
    ];
}
