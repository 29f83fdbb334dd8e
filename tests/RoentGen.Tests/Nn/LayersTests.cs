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

public class InitTests
{
    [Fact]
    public void Truncated_normal_has_the_right_spread_and_bounds()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var t = TorchSharp.torch.empty(200, 200);
        RoentGen.Nn.Init.TruncatedNormal(t, 0.02);
        double std = t.std().item<float>();
        Assert.InRange(std, 0.016, 0.02);
        Assert.True(t.abs().max().item<float>() <= 0.04f + 1e-7f);
        Assert.True(t.unique().output.shape[0] > 1000, "values are not spread out");
    }
}
