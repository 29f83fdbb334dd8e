using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Tests.Training;

[Collection(ProcessStateCollection.Name)]
public class TrainerTests
{
    private sealed record TinyConfig(int Hidden);

    private static (Sequential Model, OptimizerHelper Opt) Build(int seed)
    {
        manual_seed(seed);
        var model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Dropout(0.1), nn.Linear(16, 1));
        return (model, new ScalarSafe.AdamW(model.parameters(), lr: 1e-2));
    }

    private static Tensor Loss(Sequential model, TrainStepContext ctx)
    {
        var x = randn(16, 8, generator: ctx.Generator);
        var y = x.sum(1, keepdim: true).sin();
        return nn.functional.mse_loss(model.forward(x), y);
    }

    private static TrainerOptions Options => new() { TotalSteps = 20, WarmupSteps = 3, CheckpointEvery = 5, GradAccumulation = 2, EmaDecay = 0.9, Seed = 42 };

    [Fact]
    public void A_killed_run_resumes_with_the_same_losses_as_an_uninterrupted_one()
    {
        var dirA = TestPaths.NewTempDir();
        var (mA, oA) = Build(1);
        var historyA = new Trainer(new Dictionary<string, nn.Module> { ["model"] = mA }, oA, Options, dirA, new TinyConfig(16)).Run(ctx => Loss(mA, ctx));
        Assert.Equal(20, historyA.Steps);
        Assert.True(historyA.Loss.Skip(15).Average() < historyA.Loss.Take(5).Average(), "the tiny model did not learn");

        // Kill at step 13 (after the step-10 checkpoint), leaving a half-written checkpoint folder behind too.
        var dirB = TestPaths.NewTempDir();
        var (mB, oB) = Build(1);
        var killed = new Trainer(new Dictionary<string, nn.Module> { ["model"] = mB }, oB, Options, dirB);
        Assert.Throws<OperationCanceledException>(() => killed.Run(ctx => ctx.Step == 13 ? throw new OperationCanceledException("killed") : Loss(mB, ctx)));
        Directory.CreateDirectory(Path.Combine(dirB, "checkpoints", ".tmp-step-000015-deadbeef"));
        Assert.EndsWith("step-000010", Trainer.LatestCheckpoint(dirB));

        // A fresh process: different initial weights, which the checkpoint must overwrite.
        var (mC, oC) = Build(99);
        var historyC = new Trainer(new Dictionary<string, nn.Module> { ["model"] = mC }, oC, Options, dirB).Run(ctx => Loss(mC, ctx));
        Assert.Equal(historyA.Loss, historyC.Loss);
        Assert.Equal(historyA.LrFactor, historyC.LrFactor);
        foreach (var ((n, a), (_, c)) in mA.named_parameters().Zip(mC.named_parameters()))
            Assert.True(a.eq(c).all().item<bool>(), $"parameter {n} differs after resume");
        Assert.True(File.Exists(Path.Combine(dirA, "checkpoints", "step-000020", "config.json")));
        Assert.Equal(2, Directory.GetDirectories(Path.Combine(dirB, "checkpoints"), "step-*").Length);
        Assert.Empty(Directory.GetDirectories(Path.Combine(dirB, "checkpoints"), ".tmp-*"));
        Directory.Delete(dirA, true);
        Directory.Delete(dirB, true);
    }

    [Fact]
    public void Learning_rate_warms_up_then_decays_on_every_group()
    {
        Assert.Equal(0.25, Schedules.WarmupCosine(0, 4, 100), 9);
        Assert.Equal(1.0, Schedules.WarmupCosine(4, 4, 100), 9);
        Assert.Equal(0.1, Schedules.WarmupCosine(100, 4, 100, 0.1), 9);
        Assert.Equal(0.55, Schedules.WarmupCosine(52, 4, 100, 0.1), 9);   // halfway through the decay
        Assert.Equal(0.996, Schedules.Cosine(0.996, 1.0, 0, 100), 9);
        Assert.Equal(1.0, Schedules.Cosine(0.996, 1.0, 100, 100), 9);
    }

    [Fact]
    public void Ema_decay_warms_up_so_the_average_forgets_the_random_start()
    {
        Assert.Equal(0.1, TrainerOptions.WarmedUpEmaDecay(0.999, 0), 12);
        Assert.Equal(0.5, TrainerOptions.WarmedUpEmaDecay(0.999, 8), 12);
        Assert.Equal(0.999, TrainerOptions.WarmedUpEmaDecay(0.999, 100_000), 12);
        // Weight left on the starting point after n updates: the product of the decays. Without warm-up 0.999^1500 = 0.22.
        double kept = 1;
        for (int step = 0; step < 1500; step++) kept *= TrainerOptions.WarmedUpEmaDecay(0.999, step);
        Assert.True(kept < 1e-3, $"the EMA still holds {kept:P2} of the initial weights after 1,500 steps");

        var (m, o) = Build(3);
        var start = m.parameters().Select(p => p.detach().clone()).ToList();
        var trainer = new Trainer(new Dictionary<string, nn.Module> { ["model"] = m }, o, Options with { TotalSteps = 20, EmaDecay = 0.999, GradAccumulation = 1 });
        trainer.Run(ctx => Loss(m, ctx));
        // With warm-up the EMA moved most of the way from the start towards the trained weights (fixed 0.999 would move 2%).
        double moved = 0, total = 0;
        var ema = trainer.Emas["model"].State;
        foreach (var ((name, p), s0) in m.named_parameters().Zip(start))
        {
            total += (p - s0).norm().item<float>();
            moved += (ema[name] - s0).norm().item<float>();
        }
        Assert.True(moved > 0.3 * total, $"EMA moved {moved:F4} of {total:F4}");
    }

    [Fact]
    public void Ema_covers_every_trained_module_and_no_frozen_one_and_resumes_exactly()
    {
        // Two trained modules and a frozen one, as in an LDM with a frozen part.
        static (Dictionary<string, nn.Module> Modules, OptimizerHelper Opt) BuildThree(int seed)
        {
            manual_seed(seed);
            var a = nn.Linear(8, 16);
            var b = nn.Linear(16, 1);
            var frozen = nn.Linear(8, 8);
            foreach (var p in frozen.parameters()) p.requires_grad = false;
            var opt = new ScalarSafe.AdamW([new AdamW.ParamGroup(a.parameters(), 1e-2, 0.9, 0.999, 1e-8, 0.01), new AdamW.ParamGroup(b.parameters(), 3e-3, 0.9, 0.999, 1e-8, 0.01)]);
            return (new Dictionary<string, nn.Module> { ["a"] = a, ["frozen"] = frozen, ["b"] = b }, opt);
        }
        static Tensor ThreeLoss(Dictionary<string, nn.Module> m, TrainStepContext ctx)
        {
            var x = randn(16, 8, generator: ctx.Generator);
            var h = ((nn.Module<Tensor, Tensor>)m["frozen"]).call(x);
            var y = ((nn.Module<Tensor, Tensor>)m["b"]).call(nn.functional.gelu(((nn.Module<Tensor, Tensor>)m["a"]).call(h)));
            return nn.functional.mse_loss(y, x.sum(1, keepdim: true).sin());
        }
        var options = Options with { EmaDecay = 0.99 };
        var dirA = TestPaths.NewTempDir();
        var (mA, oA) = BuildThree(5);
        var frozenStart = mA["frozen"].parameters().Select(p => p.detach().clone()).ToList();
        var trainerA = new Trainer(mA, oA, options, dirA);
        var historyA = trainerA.Run(ctx => ThreeLoss(mA, ctx));
        Assert.Equal(["a", "b"], trainerA.Emas.Keys.Order());
        var last = Trainer.LatestCheckpoint(dirA)!;
        Assert.True(File.Exists(Path.Combine(last, Trainer.EmaFileName("a"))));
        Assert.True(File.Exists(Path.Combine(last, Trainer.EmaFileName("b"))));
        Assert.False(File.Exists(Path.Combine(last, Trainer.EmaFileName("frozen"))));
        foreach (var (p, p0) in mA["frozen"].parameters().Zip(frozenStart)) Assert.True(p.eq(p0).all().item<bool>(), "a frozen module changed");
        // Each average differs from its module's raw weights (it is an average) and ApplyEma copies it in.
        Assert.False(trainerA.Emas["b"].State["weight"].eq(((Linear)mA["b"]).weight!).all().item<bool>());

        var dirB = TestPaths.NewTempDir();
        var (mB, oB) = BuildThree(5);
        Assert.Throws<OperationCanceledException>(() => new Trainer(mB, oB, options, dirB).Run(ctx => ctx.Step == 12 ? throw new OperationCanceledException("killed") : ThreeLoss(mB, ctx)));
        var (mC, oC) = BuildThree(77);          // other initial weights, overwritten by the checkpoint (the frozen one too)
        var trainerC = new Trainer(mC, oC, options, dirB);
        var historyC = trainerC.Run(ctx => ThreeLoss(mC, ctx));
        Assert.Equal(historyA.Loss, historyC.Loss);
        foreach (var name in new[] { "a", "b" })
            foreach (var (key, t) in trainerA.Emas[name].State)
                Assert.True(t.eq(trainerC.Emas[name].State[key]).all().item<bool>(), $"EMA {name}.{key} differs after resume");
        trainerA.ApplyEma();
        Assert.True(trainerA.Emas["b"].State["weight"].eq(((Linear)mA["b"]).weight!).all().item<bool>());
        TestPaths.DeleteQuietly(dirA);
        TestPaths.DeleteQuietly(dirB);
    }

    [Fact]
    public void Non_finite_loss_stops_with_the_step_named()
    {
        var (m, o) = Build(2);
        var trainer = new Trainer(new Dictionary<string, nn.Module> { ["model"] = m }, o, Options with { TotalSteps = 5 });
        var ex = Assert.Throws<RoentGen.Platform.RunStateException>(() => trainer.Run(ctx => ctx.Step == 3 ? tensor(float.NaN) : Loss(m, ctx)));
        Assert.Contains("step 3", ex.Message);
    }

    [Fact]
    public void Ema_tracks_the_weights_and_teacher_update_follows_the_student()
    {
        using var scope = NewDisposeScope();
        var student = nn.Linear(2, 2);
        var teacher = nn.Linear(2, 2);
        using (no_grad()) { student.weight!.fill_(1); teacher.weight!.fill_(0); }
        Ema.UpdateModule(teacher, student, 0.75);
        Assert.True(teacher.weight!.eq(0.25f).all().item<bool>());
        using var ema = new Ema(student);
        using (no_grad()) student.weight!.fill_(3);
        ema.Update(student, 0.5);
        Assert.True(ema.State["weight"].eq(2f).all().item<bool>());
    }
}
