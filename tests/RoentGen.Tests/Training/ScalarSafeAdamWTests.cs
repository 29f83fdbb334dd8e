using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Tests.Training;

public class ScalarSafeAdamWTests
{
    private static Sequential Model(int seed)
    {
        manual_seed(seed);
        return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1));
    }

    // One training step on the squared output (a product: TorchSharp's square() is pow(2) with an implicit scalar).
    private static void Step(Sequential model, OptimizerHelper opt, Tensor x)
    {
        opt.zero_grad();
        using var y = model.forward(x);
        using var loss = y.mul(y).mean();
        loss.backward();
        opt.step();
    }

    [Fact]
    public void Updates_the_weights_exactly_as_torchsharp_adamw_over_groups_with_their_own_rates_and_decay()
    {
        using var x = randn(32, 8, generator: new Generator(3));
        var reference = Model(5);
        var safe = Model(5);
        static AdamW.ParamGroup[] Groups(Sequential m) =>
        [
            new AdamW.ParamGroup(m.parameters().Take(2), lr: 3e-2, weight_decay: 0.1),   // the first layer
            new AdamW.ParamGroup(m.parameters().Skip(2), lr: 1e-2, beta1: 0.8, beta2: 0.99, eps: 1e-6),
        ];
        var optRef = optim.AdamW(Groups(reference), lr: 1e-3, weight_decay: 0.01);
        var optSafe = new ScalarSafe.AdamW(Groups(safe), lr: 1e-3, weight_decay: 0.01);
        for (int i = 0; i < 25; i++) { Step(reference, optRef, x); Step(safe, optSafe, x); }
        var before = Model(5).parameters().ToList();
        foreach (var ((a, b), c) in reference.parameters().Zip(safe.parameters()).Zip(before))
        {
            Assert.True(a.eq(b).all().item<bool>(), "the weights differ from TorchSharp's AdamW");
            Assert.False(a.eq(c).all().item<bool>(), "the weights did not move");
        }
        // The state is TorchSharp's, so the checkpoints are too: a state saved by this optimizer loads into TorchSharp's.
        var file = Path.Combine(TestPaths.NewTempDir(), "opt.bin");
        optSafe.save_state_dict(file);
        optRef.load_state_dict(file);
        Step(reference, optRef, x); Step(safe, optSafe, x);
        Assert.All(reference.parameters().Zip(safe.parameters()), p => Assert.True(p.First.eq(p.Second).all().item<bool>()));
        TestPaths.DeleteQuietly(Path.GetDirectoryName(file)!);
    }

    // No test runs the optimizer under a thread that collects without pause: TorchSharp tensors passed to native calls
    // race the collector the same way, so such a test crashed the test host (s23); the race and its reproduction are in
    // ScalarSafe.AdamW's documentation.
}
