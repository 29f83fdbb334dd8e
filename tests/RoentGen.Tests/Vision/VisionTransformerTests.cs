using RoentGen.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Vision;

public class VisionTransformerTests
{
    private static readonly VitConfig Tiny = new() { ImageSize = 32, PatchSize = 8, HiddenSize = 32, Layers = 2, Heads = 2 };

    [Fact]
    public void Parameter_names_follow_Hugging_Face_Dinov2Model()
    {
        using var vit = new VisionTransformer(Tiny with { Channels = 3 });
        var names = vit.named_parameters().Select(p => p.name).ToHashSet();
        string[] expected =
        [
            "embeddings.cls_token", "embeddings.mask_token", "embeddings.position_embeddings",
            "embeddings.patch_embeddings.projection.weight", "embeddings.patch_embeddings.projection.bias",
            "encoder.layer.0.norm1.weight", "encoder.layer.0.norm1.bias",
            "encoder.layer.0.attention.attention.query.weight", "encoder.layer.0.attention.attention.query.bias",
            "encoder.layer.0.attention.attention.key.weight", "encoder.layer.0.attention.attention.value.bias",
            "encoder.layer.0.attention.output.dense.weight", "encoder.layer.0.attention.output.dense.bias",
            "encoder.layer.0.layer_scale1.lambda1", "encoder.layer.0.norm2.weight",
            "encoder.layer.0.mlp.fc1.weight", "encoder.layer.0.mlp.fc2.bias", "encoder.layer.1.layer_scale2.lambda1",
            "layernorm.weight", "layernorm.bias",
        ];
        foreach (var e in expected) Assert.Contains(e, names);
        Assert.Equal(5 + 2 * 18 + 2, names.Count); // 18 tensors per layer
        var shapes = vit.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal([1L, 1 + 16, 32], shapes["embeddings.position_embeddings"]);
        Assert.Equal([1L, 32], shapes["embeddings.mask_token"]);
        Assert.Equal([32L, 3, 8, 8], shapes["embeddings.patch_embeddings.projection.weight"]);
    }

    [Fact]
    public void Forward_shapes_with_registers_and_other_input_sizes()
    {
        using var scope = NewDisposeScope();
        using var vit = new VisionTransformer(Tiny with { RegisterTokens = 2 });
        Assert.Contains("embeddings.register_tokens", vit.named_parameters().Select(p => p.name));
        var out32 = vit.Forward(randn(3, 1, 32, 32));
        Assert.Equal([3L, 32], out32.Cls.shape);
        Assert.Equal([3L, 16, 32], out32.Patches.shape);
        Assert.Equal([3L, 1 + 2 + 16, 32], out32.LastHiddenState.shape);
        // Position embeddings are interpolated for a 48x40 input (6x5 patches).
        var out48 = vit.Forward(randn(2, 1, 48, 40));
        Assert.Equal([2L, 30, 32], out48.Patches.shape);
        Assert.Throws<ArgumentException>(() => vit.Forward(randn(1, 1, 30, 32)));
    }

    [Fact]
    public void Masked_patches_are_replaced_by_the_mask_token()
    {
        using var scope = NewDisposeScope();
        using var vit = new VisionTransformer(Tiny);
        vit.eval();
        var x = randn(1, 1, 32, 32);
        var mask = zeros(1, 16, dtype: ScalarType.Bool);
        mask[0, 3] = tensor(true);
        var plain = vit.Forward(x).Patches;
        var masked = vit.Forward(x, mask).Patches;
        Assert.False(plain.allclose(masked), "masking a patch did not change the output");
        // Changing the pixels of the masked patch no longer changes the output.
        var x2 = x.clone();
        x2[0, 0, 0..8, 24..32] = randn(8, 8);
        Assert.True(vit.Forward(x2, mask).Patches.allclose(masked, rtol: 1e-4, atol: 1e-5));
        Assert.False(vit.Forward(x2).Patches.allclose(plain, rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void Last_attention_rows_are_distributions()
    {
        using var scope = NewDisposeScope();
        using var vit = new VisionTransformer(Tiny);
        var att = vit.LastAttention(randn(2, 1, 32, 32));
        Assert.Equal([2L, 2, 17, 17], att.shape);
        Assert.True((att.sum(-1) - 1).abs().max().item<float>() < 1e-4);
    }
}
