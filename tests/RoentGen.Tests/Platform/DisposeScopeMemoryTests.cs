using System.Diagnostics;
using RoentGen.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Platform;

// Process RSS is shared with every test running at the same time, so this one runs alone.
[Collection(ProcessStateCollection.Name)]
public class DisposeScopeMemoryTests
{
    // 200 small conv training steps, each inside a dispose scope: resident memory must stay flat.
    // Without the scope each step leaks its activations and gradients' intermediates (about 3 MB here),
    // so 180 steps would add roughly 500 MB.
    [Fact]
    public void Rss_stays_flat_over_200_training_steps_inside_dispose_scopes()
    {
        torch.manual_seed(0);
        var model = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding: 1), Layers.GroupNorm(4, 16), nn.SiLU(),
            nn.Conv2d(16, 16, 3, padding: 1), Layers.GroupNorm(4, 16), nn.SiLU(),
            nn.Conv2d(16, 1, 3, padding: 1));
        var opt = optim.AdamW(model.parameters(), lr: 1e-3);
        long rssAfterWarmup = 0;
        float firstLoss = 0, lastLoss = 0;
        for (int step = 0; step < 200; step++)
        {
            using (var scope = torch.NewDisposeScope())
            {
                var x = torch.randn(16, 1, 32, 32);
                var target = x.flip(3);
                var loss = nn.functional.mse_loss(model.forward(x), target);
                opt.zero_grad();
                loss.backward();
                opt.step();
                float l = loss.item<float>();
                if (step == 0) firstLoss = l;
                lastLoss = l;
            }
            if (step == 19) rssAfterWarmup = Rss();
        }
        long growthMb = (Rss() - rssAfterWarmup) / (1024 * 1024);
        Assert.True(float.IsFinite(lastLoss) && lastLoss < firstLoss, $"training did not progress: {firstLoss} -> {lastLoss}");
        Assert.True(growthMb < 64, $"RSS grew by {growthMb} MB between step 20 and step 200");
    }

    private static long Rss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.WorkingSet64;
    }
}
