using RoentGen.Platform;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Platform;

/// <summary>oneDNN turned off on AMD processors, and the convolution gradients that is for.</summary>
public class OneDnnTests
{
    [Fact]
    public void Amd_processors_are_told_apart_by_their_vendor()
    {
        Assert.True(OneDnn.IsAmd("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"));
        Assert.False(OneDnn.IsAmd("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"));
        Assert.False(OneDnn.IsAmd(""));
        // this process: off on an AMD processor (unless ROENTGEN_ONEDNN says otherwise), as libtorch has it elsewhere
        if (File.Exists("/proc/cpuinfo") && OneDnn.IsAmd(File.ReadAllText("/proc/cpuinfo")) && Environment.GetEnvironmentVariable(OneDnn.Variable) is null)
            Assert.False(OneDnn.Enabled);
    }

    [Fact]
    public void A_small_convolution_gives_the_same_finite_input_gradient_every_time()
    {
        // On an AMD EPYC with oneDNN on, this gradient differed in 186 of 200 identical calls and was not finite in 6
        // (float32); with oneDNN off it is repeatable, as on every other machine seen.
        using var scope = NewDisposeScope();
        using var generator = new Generator(seed: 7);
        var weight = randn([8, 8, 3, 3], generator: generator) * 0.2;
        var input = randn([2, 8, 16, 16], generator: generator);
        float[]? first = null;
        for (int i = 0; i < 40; i++)
        {
            var x = input.detach().clone().requires_grad_(true);
            var y = nn.functional.conv2d(x, weight, padding: [1, 1]);
            (y * arange(y.numel()).reshape(y.shape).cos()).sum().backward();
            var g = x.grad!.data<float>().ToArray();
            Assert.All(g, v => Assert.True(float.IsFinite(v)));
            if (first is null) first = g;
            else Assert.True(first.SequenceEqual(g), $"call {i}: the input gradient differs from the first call's (oneDNN: {OneDnn.Note ?? "as libtorch has it"})");
        }
    }
}
