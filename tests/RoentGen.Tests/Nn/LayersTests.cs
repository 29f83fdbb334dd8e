using RoentGen.Nn;
using TorchSharp;

namespace RoentGen.Tests.Nn;

public class LayersTests
{
    [Fact]
    public void Fresh_GroupNorm_has_weight_one_and_bias_zero()
    {
        for (int trial = 0; trial < 5; trial++)
        {
            using var norm = Layers.GroupNorm(4, 32);
            Assert.Equal(32, norm.weight!.shape[0]);
            Assert.True(norm.weight!.eq(1).all().item<bool>(), "GroupNorm weight is not all ones");
            Assert.True(norm.bias!.eq(0).all().item<bool>(), "GroupNorm bias is not all zeros");
        }
    }

    [Fact]
    public void GroupNorm_normalises_each_group()
    {
        using var scope = torch.NewDisposeScope();
        using var norm = Layers.GroupNorm(2, 4);
        var x = torch.randn(3, 4, 5, 5) * 7 + 3;
        var y = norm.forward(x).reshape(3, 2, -1);
        Assert.True(y.mean([2]).abs().max().item<float>() < 1e-4);
        Assert.True((y.var([2], unbiased: false) - 1).abs().max().item<float>() < 1e-2);
    }

    [Fact]
    public void GroupNorm_refuses_groups_that_do_not_divide_channels()
    {
        var ex = Assert.Throws<ArgumentException>(() => Layers.GroupNorm(3, 32));
        Assert.Contains("3 groups", ex.Message);
    }
}
