using RoentGen.Diffusion;
using RoentGen.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Nn;

/// <summary>Attention slicing computes the same attention as the whole computation, chunk by chunk of the queries.</summary>
[Collection(ProcessStateCollection.Name)]
public class SlicedAttentionTests
{
    private static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Theory]
    [InlineData(false, false, 37)]
    [InlineData(false, false, 11)]
    [InlineData(true, false, 37)]
    [InlineData(false, true, 37)]
    [InlineData(true, true, 37)]
    public void Chunks_of_queries_give_the_whole_attention(bool causal, bool masked, int keys)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(7);
        var q = randn([2, 3, 37, 8], generator: g);
        var k = randn([2, 3, keys, 8], generator: g);
        var v = randn([2, 3, keys, 5], generator: g);
        // A per-query additive mask (B, 1, Tq, Tk) that hides a few keys, and always leaves key 0 visible.
        var mask = masked ? zeros(2, 1, 37, keys).masked_fill(rand([2, 1, 37, keys], generator: g).lt(0.2), double.NegativeInfinity) : null;
        if (mask is not null) mask.narrow(-1, 0, 1).fill_(0);
        var call = new AttentionCall("test", !causal, 3, IsCausal: causal, Mask: mask);
        var whole = ScaledDotProductProcessor.Instance.Attend(q, k, v, call);
        foreach (int chunk in new[] { 1, 8, 36, 37, 100 })
        {
            var sliced = new SlicedAttentionProcessor(chunk).Attend(q, k, v, call);
            Assert.Equal(whole.shape, sliced.shape);
            Assert.True(MaxDiff(whole, sliced) < 1e-5, $"chunk {chunk}: max difference {MaxDiff(whole, sliced)}");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => new SlicedAttentionProcessor(0));
    }

    [Fact]
    public void A_unet_with_sliced_attention_predicts_what_it_predicts_whole()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(3);
        var unet = new UNet2DConditionModel(new UNetConfig { BlockOutChannels = [32, 64], CrossAttentionLevels = [true, true], AttentionHeadDim = 16, CrossAttentionDim = 24 });
        unet.eval();
        var x = randn(2, 4, 16, 16);
        var t = tensor(new long[] { 10, 500 });
        var ctx = randn(2, 7, 24);
        var whole = unet.call(x, t, ctx);
        unet.SetAttentionProcessor(_ => new SlicedAttentionProcessor(50));   // 256 tokens at the top level: 6 chunks
        var sliced = unet.call(x, t, ctx);
        Assert.True(MaxDiff(whole, sliced) < 1e-4 * Math.Max(1, whole.abs().max().item<float>()), $"max difference {MaxDiff(whole, sliced)}");
    }
}
