using RoentGen.Diffusion;
using RoentGen.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

[Collection(ProcessStateCollection.Name)]
public class DiffusionBenchmarkTests
{
    [Fact]
    public void Flop_counter_counts_convolutions_and_linear_layers_exactly()
    {
        var conv = nn.Conv2d(3, 8, 3, padding: 1);
        var linear = nn.Linear(8, 4);
        var model = nn.Sequential(conv, nn.Flatten(2), nn.AdaptiveAvgPool1d(1), nn.Flatten(1), linear);
        using var counter = new FlopCounter(model);
        using (no_grad()) model.call(randn(2, 3, 10, 10));
        long convFlops = 2L * (2 * 8 * 10 * 10) * (3 * 3 * 3);   // 2 per multiply-add, per output element
        long linearFlops = 2L * (2 * 4) * 8;
        Assert.Equal(convFlops + linearFlops, counter.Flops);
        counter.Dispose();
        using (no_grad()) model.call(randn(2, 3, 10, 10));
        Assert.Equal(convFlops + linearFlops, counter.Flops);   // hooks removed
    }

    [Fact]
    public void Benchmark_of_the_tiny_models_reports_speed_flops_and_memory()
    {
        var r = DiffusionBenchmark.Run(LdmExperimentConfig.Tiny,
            new DiffusionBenchOptions { WarmupSteps = 1, TimedSteps = 1, SampleImages = 2, SampleBatch = 2, SampleSteps = 2, MatmulPeakGflops = 100 });
        Assert.True(r.LdmTrainImagesPerSecond > 0 && r.VaeTrainImagesPerSecond > 0 && r.SampleImagesPerSecond > 0);
        Assert.True(r.LdmGflopPerStep > 0.001, $"LDM {r.LdmGflopPerStep} GFLOP/step");
        Assert.True(r.VaeGflopPerStep > 0.001, $"VAE {r.VaeGflopPerStep} GFLOP/step");
        Assert.Equal(r.LdmGflopPerStep * r.LdmStepsPerSecond, r.LdmGflops, 6);
        Assert.True(r.WeightsMb > 0);
        Assert.Equal(6, r.ToFigures("tiny").Count);
    }
}
