using RoentGen.Diffusion;
using RoentGen.Interop.Diffusers;
using RoentGen.Nn;
using RoentGen.Tests.Interop.Diffusers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Tests.Nn;

/// <summary>
/// LoRA adapters on a tiny SD 1.x UNet written in diffusers' key names (<see cref="SdFixture"/>): zero-initialised B leaves
/// the model unchanged, a trained adapter adds (alpha / r) B A x, merging gives the same forward, a training step moves
/// only the adapters.
/// </summary>
[Collection(ProcessStateCollection.Name)]
public class LoraTests
{
    internal static TextToImagePipeline Sd1(string tag = "lora-sd1")
    {
        var dir = TestPaths.NewTempDir(tag);
        SdFixture.Write(dir, SdFixture.Sd1);
        return DiffusersPipelineLoader.Load(dir);
    }

    internal static (Tensor Latents, Tensor T, Tensor Context) Inputs(TextToImagePipeline pipe, long seed = 5)
    {
        using var g = new Generator((ulong)seed);
        var latents = randn([2, 4, 8, 8], generator: g);
        var t = tensor(new long[] { 10, 700 });
        var context = randn([2, 16, pipe.Unet.Config.CrossAttentionDim], generator: g);
        return (latents, t, context);
    }

    internal static Tensor Forward(TextToImagePipeline pipe, (Tensor Latents, Tensor T, Tensor Context) x)
    {
        using var _ = no_grad();
        return pipe.Unet.call(x.Latents, x.T, x.Context);
    }

    internal static void Randomise(LoraAdapter adapter, long seed)
    {
        using var g = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var layer in adapter.Layers.Values)
        {
            layer.Down.copy_(randn(layer.Down.shape, generator: g) * 0.3);
            layer.Up.copy_(randn(layer.Up.shape, generator: g) * 0.3);
        }
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void Zero_initialised_adapters_leave_the_unet_unchanged_and_freeze_it()
    {
        using var scope = NewDisposeScope();
        var pipe = Sd1();
        var x = Inputs(pipe);
        var before = Forward(pipe, x);
        using var lora = LoraAdapter.Attach(pipe.Unet, new LoraConfig { Rank = 2 });
        // Fixture: 2 transformers per cross-attention level on the way down, 3 on the way up, 1 in the middle, each with
        // attn1 and attn2 and their 4 projections.
        int transformers = 2 * 2 + 2 * 3 + 1;
        Assert.Equal(transformers * 8, lora.Layers.Count);
        Assert.Contains("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", lora.Layers.Keys);
        Assert.Contains("mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0", lora.Layers.Keys);
        Assert.DoesNotContain(lora.Layers.Keys, k => k.EndsWith("proj_in", StringComparison.Ordinal) || k.Contains(".ff.", StringComparison.Ordinal));
        Assert.All(lora.Layers.Values, l => Assert.Equal(0f, l.Up.abs().max().item<float>()));
        Assert.True(Same(before, Forward(pipe, x)), "a LoRA with B = 0 changed the UNet's output");
        Assert.All(pipe.Unet.parameters(), p => Assert.False(p.requires_grad));
        Assert.All(lora.parameters(), p => Assert.True(p.requires_grad));
        Assert.Equal(lora.Layers.Count * 2, lora.parameters().Count());
    }

    [Fact]
    public void A_trained_adapter_adds_its_scaled_update_and_merging_gives_the_same_forward()
    {
        using var scope = NewDisposeScope();
        var pipe = Sd1();
        var x = Inputs(pipe);
        var before = Forward(pipe, x);
        var weights = pipe.Unet.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var lora = LoraAdapter.Attach(pipe.Unet, new LoraConfig { Rank = 2, Alpha = 3, IncludeProjections = true });
        Assert.Contains("down_blocks.1.attentions.1.proj_in", lora.Layers.Keys);            // SD 1.x: a 1x1 convolution
        Assert.True(lora.Layers["down_blocks.1.attentions.1.proj_in"].IsConvolution);
        Randomise(lora, 9);
        var adapted = Forward(pipe, x);
        Assert.False(Same(before, adapted), "a non-zero LoRA did not change the output");

        // One layer by hand: W x + (alpha / r) B A x.
        var layer = lora.Layers["up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v"];
        var baseLinear = (Linear)pipe.Unet.named_modules().Single(m => m.name == "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v").module;
        using (no_grad())
        {
            var c = x.Context;
            var expected = c.matmul(baseLinear.weight!.t()) + 1.5 * c.matmul(layer.Down.t()).matmul(layer.Up.t());
            Assert.True(baseLinear.call(c).allclose(expected, rtol: 1e-5, atol: 1e-6));
        }

        lora.Merge();
        Assert.True(lora.IsMerged);
        var merged = Forward(pipe, x);
        Assert.True(merged.allclose(adapted, rtol: 1e-4, atol: 1e-5), $"merged forward differs by {(merged - adapted).abs().max().item<float>()}");
        Assert.Throws<InvalidOperationException>(() => lora.Merge());
        lora.Unmerge();
        foreach (var (key, t) in pipe.Unet.state_dict())
            Assert.True(t.allclose(weights[key], rtol: 0, atol: 1e-6), $"{key} not restored by Unmerge");
        var unmerged = Forward(pipe, x);
        Assert.True(unmerged.allclose(adapted, rtol: 1e-4, atol: 1e-5), $"unmerged forward differs by {(unmerged - adapted).abs().max().item<float>()}");
        lora.Dispose();   // removes the hooks
        var detached = Forward(pipe, x);
        Assert.True(lora.IsDetached);
        Assert.True(detached.allclose(before, rtol: 1e-4, atol: 1e-4), $"after Unmerge and Dispose the output differs from the base by {(detached - before).abs().max().item<float>()} (the adapter adds {(adapted - before).abs().max().item<float>()})");
    }

    [Fact]
    public void A_training_step_changes_only_the_adapters()
    {
        using var scope = NewDisposeScope();
        var pipe = Sd1();
        var weights = pipe.Unet.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var text = pipe.TextEncoder.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var model = new LatentDiffusionModel(pipe.Vae, pipe.TextEncoder, pipe.Tokenizer, pipe.Unet, pipe.Schedule.Config, pipe.LatentSize, pipe.MaxTokens);
        foreach (var part in new[] { LdmPart.Vae, LdmPart.TextEncoder, LdmPart.Unet }) model.SetTrainable(part, false);
        manual_seed(1);
        using var lora = LoraAdapter.Attach(pipe.Unet, new LoraConfig { Rank = 4 });
        var opt = optim.AdamW(lora.parameters(), lr: 1e-2);
        var objective = new DenoisingObjective(pipe.Schedule.Config, 0, null);
        using var g = new Generator(3);
        var batch = new DenoisingBatch(randn([2, 4, 8, 8], generator: g), pipe.Tokenizer.EncodeBatch(["small left pleural effusion", "no pneumothorax"], pipe.MaxTokens).Ids);
        for (int step = 0; step < 2; step++)
        {
            opt.zero_grad();
            var loss = objective.Loss(model, batch, g);
            loss.backward();
            opt.step();
        }
        Assert.All(lora.Layers.Values, l => Assert.True(l.Up.abs().max().item<float>() > 0, "an adapter's B did not move"));
        foreach (var (key, t) in pipe.Unet.state_dict())
            Assert.True(Same(t, weights[key]), $"frozen UNet weight {key} changed");
        foreach (var (key, t) in pipe.TextEncoder.state_dict())
            Assert.True(Same(t, text[key]), $"frozen text-encoder weight {key} changed");
        Assert.All(pipe.Unet.parameters(), p => Assert.True(p.grad is null, "a frozen UNet weight got a gradient"));
    }

    [Fact]
    public void Bad_targets_and_configs_are_refused()
    {
        using var scope = NewDisposeScope();
        var pipe = Sd1();
        var e = Assert.Throws<ArgumentException>(() => LoraAdapter.Attach(pipe.Unet, [new LoraTarget("down_blocks.0.attentions.0.norm", 2, 2), new LoraTarget("nothing.here", 2, 2)]));
        Assert.Contains("down_blocks.0.attentions.0.norm", e.Message);
        Assert.Contains("nothing.here", e.Message);
        Assert.Throws<ArgumentException>(() => LoraAdapter.Attach(pipe.Unet, new LoraConfig { Rank = 0 }));
        Assert.Throws<ArgumentException>(() => LoraAdapter.Attach(pipe.Unet, new LoraConfig { Alpha = -1 }));
    }
}
