using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Training;
using RoentGen.Vision;
using TorchSharp;
using static TorchSharp.torch;
using RoentGen.Methods;

namespace RoentGen.Tests.Methods;

[Collection(ProcessStateCollection.Name)]
public class DinoTrainingTests
{
    /// <summary>A DINO run small enough for a test: 32 px globals, 16 px locals, a 2-layer ViT of width 32.</summary>
    internal static DinoConfig Tiny => DinoConfig.Quick with
    {
        Vit = new VitConfig { ImageSize = 32, PatchSize = 8, HiddenSize = 32, Layers = 2, Heads = 2 },
        Prototypes = 64, HeadHidden = 64, HeadBottleneck = 16,
        Crops = DinoConfig.Quick.Crops with { GlobalSize = 32, LocalSize = 16, LocalCrops = 2 },
        SourceSize = 64, BatchSize = 6, Steps = 20, WarmupSteps = 3, TeacherTemperatureWarmupSteps = 10,
        MaskProbability = 0.5, CheckpointEvery = 5, LearningRate = 2e-3, Seed = 11, SinkhornKnopp = false,
    };

    private static IReadOnlyList<GrayImage> Images(int n, int seed = 3) =>
        new PhantomGenerator(new PhantomOptions { Size = 64, Seed = seed }).Generate(0, n).Select(c => c.Image).ToList();

    [Fact]
    public void A_step_gives_finite_losses_and_skips_each_loss_whose_weight_is_zero()
    {
        var images = Images(6);
        foreach (var (dino, ibot, koleo) in new[] { (1.0, 1.0, 0.1), (0.0, 1.0, 0.1), (1.0, 0.0, 0.1), (1.0, 1.0, 0.0) })
        {
            using var training = new DinoTraining(Tiny with { DinoWeight = dino, IBotWeight = ibot, KoLeoWeight = koleo, MaskProbability = 1.0 });
            using var scope = NewDisposeScope();
            var r = training.Step(images, 0, new Random(1));
            Assert.True(float.IsFinite(r.Total.item<float>()), $"total loss {r.Total.item<float>()}");
            Assert.Equal(dino > 0, r.Metrics.ContainsKey("dino"));
            Assert.Equal(ibot > 0, r.Metrics.ContainsKey("ibot"));
            Assert.Equal(koleo > 0, r.Metrics.ContainsKey("koleo"));
            foreach (var (k, v) in r.Metrics) Assert.True(double.IsFinite(v), $"metric {k} = {v}");
            double expected = dino * r.Metrics.GetValueOrDefault("dino") + ibot * r.Metrics.GetValueOrDefault("ibot") + koleo * r.Metrics.GetValueOrDefault("koleo");
            Assert.Equal(expected, r.Total.item<float>(), 3);
            if (dino > 0) Assert.InRange(r.Metrics["dino"], 0.1, 2 * Math.Log(64));
            if (ibot > 0) Assert.True(r.Metrics["ibot"] > 0.1, "iBOT loss should be active with every crop masked");
            r.Total.backward();
            Assert.All(training.Teacher.parameters(), p => Assert.True(p.grad is null, "a teacher parameter received a gradient"));
            Assert.Contains(training.StudentBackbone.parameters(), p => p.grad is not null && p.grad.abs().sum().item<float>() > 0);
        }
        Assert.Throws<ArgumentException>(() => new DinoTraining(Tiny with { DinoWeight = 0, IBotWeight = 0, KoLeoWeight = 0 }));
    }

    [Fact]
    public void The_teacher_moves_only_by_ema_of_the_student()
    {
        using var training = new DinoTraining(Tiny);
        var before = training.Teacher.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        foreach (var (n, p) in training.Student.named_parameters())
            Assert.True(p.eq(before[n]).all().item<bool>(), $"teacher does not start as a copy of the student at {n}");
        Assert.All(training.Teacher.parameters(), p => Assert.False(p.requires_grad));

        using (var scope = NewDisposeScope())
        {
            training.Optimizer.zero_grad();
            var r = training.Step(Images(6), 0, new Random(2));
            r.Total.backward();
            training.Optimizer.step();
        }
        // The optimizer moved the student only.
        foreach (var (n, p) in training.Teacher.named_parameters())
            Assert.True(p.eq(before[n]).all().item<bool>(), $"teacher parameter {n} changed before the EMA update");
        double m = training.MomentumAt(0);
        Assert.Equal(0.992, m, 9);
        training.UpdateTeacher(0);
        var student = training.Student.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        int moved = 0;
        foreach (var (n, t) in training.Teacher.named_parameters())
        {
            var expected = before[n] * m + student[n].detach() * (1 - m);
            Assert.True(t.allclose(expected, rtol: 1e-5, atol: 1e-7), $"teacher {n} is not m·old + (1−m)·student");
            if (!t.eq(student[n]).all().item<bool>()) moved++;
        }
        Assert.True(moved > 0, "after a step the teacher should differ from the student");
        Assert.Equal(1.0, training.MomentumAt(Tiny.Steps), 9);
    }

    [Fact]
    public void Weight_decay_follows_its_schedule_and_skips_biases_norms_and_tokens()
    {
        using var training = new DinoTraining(Tiny);
        Assert.True(DinoTraining.IsNoDecay("backbone.embeddings.cls_token", ones(1, 1, 4)));
        Assert.True(DinoTraining.IsNoDecay("backbone.encoder.layer.0.norm1.weight", ones(4)));
        Assert.False(DinoTraining.IsNoDecay("backbone.encoder.layer.0.mlp.fc1.weight", ones(4, 4)));
        Assert.True(training.DecayParameterCount > 0 && training.NoDecayParameterCount > 0, $"decay {training.DecayParameterCount}, no decay {training.NoDecayParameterCount}");
        var names = training.Student.named_parameters().Select(p => p.name).ToList();
        Assert.Equal(names.Count, training.DecayParameterCount + training.NoDecayParameterCount);
        Assert.Equal(training.StudentBackbone.parameters().Count() + 2 * 7, names.Count);   // each head: 3 linears (6) + prototypes
        Assert.Contains("backbone.embeddings.cls_token", names);
        Assert.Contains(names, n => n.StartsWith("dino_head.", StringComparison.Ordinal));
        Assert.Contains(names, n => n.StartsWith("ibot_head.", StringComparison.Ordinal));
        Assert.Equal(names, training.Teacher.named_parameters().Select(p => p.name));
        training.ApplyWeightDecay(0);
        Assert.Equal(0.04, training.CurrentWeightDecay, 9);
        training.ApplyWeightDecay(Tiny.Steps);
        Assert.Equal(0.2, training.CurrentWeightDecay, 9);
        Assert.Equal(0.04, training.TeacherTemperatureAt(0), 9);
        Assert.Equal(0.07, training.TeacherTemperatureAt(10), 9);
    }

    [Fact]
    public void Config_round_trips_through_json_and_presets_validate()
    {
        foreach (var name in DinoConfig.PresetNames)
        {
            var c = DinoConfig.FromPreset(name);
            c.Validate();
            Assert.Equal(c, DinoConfig.FromJson(c.ToJson()) with { Vit = c.Vit, Crops = c.Crops });
            Assert.Equal(c.Vit, DinoConfig.FromJson(c.ToJson()).Vit);
            Assert.Equal(c.Crops, DinoConfig.FromJson(c.ToJson()).Crops);
        }
        var custom = Tiny with { SinkhornKnopp = true, KoLeoWeight = 0 };
        Assert.Equal(custom.ToJson(), DinoConfig.FromJson(custom.ToJson()).ToJson());
        Assert.Contains("quick", Assert.Throws<ArgumentException>(() => DinoConfig.FromPreset("huge")).Message);
        Assert.Throws<InvalidDataException>(() => DinoConfig.FromJson("{ \"Steps\": \"many\" }"));
    }

    [Fact]
    public void Sinkhorn_knopp_mode_runs_and_keeps_centres_at_zero()
    {
        using var training = new DinoTraining(Tiny with { SinkhornKnopp = true, MaskProbability = 1.0 });
        using var scope = NewDisposeScope();
        var r = training.Step(Images(6), 0, new Random(4));
        Assert.True(float.IsFinite(r.Total.item<float>()));
        Assert.True(r.Metrics["ibot"] > 0);
        Assert.Equal(0f, training.LossState.DinoCenter.abs().sum().item<float>());
    }

    [Fact]
    public void A_short_run_on_phantoms_lowers_the_loss_without_collapse()
    {
        // Sinkhorn-Knopp targets (DINOv2) and LayerScale 1 make 20 steps enough to see learning at this size; with
        // centring, the 20-step run first drifts to uniform targets (DINO loss -> ln K) as in early DINO training.
        using var training = new DinoTraining(Tiny with { SinkhornKnopp = true, Vit = Tiny.Vit with { LayerScaleInit = 1.0 } });
        var history = training.Train(TrainingRecords.Phantoms(new PhantomOptions { Size = 64, Seed = 1 }, 24));
        Assert.Equal(20, history.Steps);
        double first = history.Loss.Take(4).Average(), last = history.Loss.Skip(16).Average();
        Assert.True(last < first, $"loss did not go down: first steps {first:F4}, last steps {last:F4}");
        // Collapse would send every image to one prototype: effective number ~1, one prototype used.
        Assert.True(history.Metrics["effective_prototypes"].Last() > 2, $"effective prototypes {history.Metrics["effective_prototypes"].Last():F2}");
        Assert.True(history.Metrics["prototypes_used"].Skip(16).Average() > 1.5, "the teacher's raw logits send every crop to the same prototype");
        Assert.True(history.Metrics["dino"].Skip(16).Average() < history.Metrics["dino"].Take(4).Average(), "the DINO loss did not go down");
        foreach (var key in new[] { "dino", "ibot", "koleo", "teacher_entropy", "momentum", "teacher_temp" })
            Assert.Equal(20, history.Metrics[key].Count);
        Assert.Equal(1.0, history.Metrics["momentum"].Last(), 2);
    }

    [Fact]
    public void A_killed_run_resumes_with_identical_losses_and_teacher()
    {
        var config = Tiny with { Steps = 6, CheckpointEvery = 2, BatchSize = 4 };
        var source = TrainingRecords.FreshPhantoms(new PhantomOptions { Size = 64, Seed = 2 });
        var dirA = TestPaths.NewTempDir("dino-a");
        using var a = new DinoTraining(config);
        var historyA = a.Train(source, dirA);

        var dirB = TestPaths.NewTempDir("dino-b");
        using (var killed = new DinoTraining(config))
            Assert.Throws<OperationCanceledException>(() => killed.Train(Killing(new PhantomOptions { Size = 64, Seed = 2 }, 3), dirB));
        Assert.EndsWith("step-000002", Trainer.LatestCheckpoint(dirB));

        using var c = new DinoTraining(config);
        using (no_grad())   // a fresh process with other weights: the checkpoint must overwrite them all
            foreach (var p in c.Student.parameters().Concat(c.Teacher.parameters())) p.add_(0.5f);
        var historyC = c.Train(source, dirB);
        Assert.Equal(historyA.Loss, historyC.Loss);
        Assert.Equal(historyA.Metrics["dino"], historyC.Metrics["dino"]);
        foreach (var ((n, ta), (_, tc)) in a.Teacher.named_parameters().Zip(c.Teacher.named_parameters()))
            Assert.True(ta.eq(tc).all().item<bool>(), $"teacher {n} differs after resume");
        Assert.True(a.LossState.DinoCenter.abs().sum().item<float>() > 0, "the DINO centre never moved");
        Assert.True(a.LossState.DinoCenter.eq(c.LossState.DinoCenter).all().item<bool>(), "DINO centre differs after resume");
        Assert.True(File.Exists(Path.Combine(dirB, "checkpoints", "step-000006", "teacher.safetensors")));
        Directory.Delete(dirA, true);
        Directory.Delete(dirB, true);
    }

    // Fresh phantoms (as TrainingRecords.FreshPhantoms draws them) until step killAt, where the process "dies".
    private static TrainingRecords Killing(PhantomOptions options, int killAt) =>
        TrainingRecords.Stream("killed phantoms", options.Size, (step, batch) =>
            step == killAt ? throw new OperationCanceledException("killed") : PhantomRecords.Create(options, batch, step * batch, masks: false));

    [Fact]
    public void Prototype_layers_stay_frozen_for_the_configured_steps_and_learn_after()
    {
        using var training = new DinoTraining(Tiny with { Steps = 4, FreezePrototypesSteps = 2 });
        using var scope = NewDisposeScope();
        var before = training.Student.DinoHead.Prototypes.detach().clone();
        var beforeIBot = training.Student.IBotHead.Prototypes.detach().clone();
        var trainer = training.CreateTrainer();
        training.Train(trainer, TrainingRecords.Phantoms(new PhantomOptions { Size = 64, Seed = 2 }, 8));
        Assert.False(training.PrototypesLearnAt(1));
        Assert.True(training.PrototypesLearnAt(2));
        // Steps 2 and 3 moved them; a run frozen throughout would not have.
        Assert.False(training.Student.DinoHead.Prototypes.detach().allclose(before));
        Assert.False(training.Student.IBotHead.Prototypes.detach().allclose(beforeIBot));

        using var frozen = new DinoTraining(Tiny with { Steps = 3, FreezePrototypesSteps = 3 });
        var start = frozen.Student.DinoHead.Prototypes.detach().clone();
        var backboneStart = frozen.Student.Backbone.parameters().First().detach().clone();
        frozen.Train(frozen.CreateTrainer(), TrainingRecords.Phantoms(new PhantomOptions { Size = 64, Seed = 2 }, 8));
        Assert.True(frozen.Student.DinoHead.Prototypes.detach().eq(start).all().item<bool>(), "prototypes moved while frozen");
        Assert.False(frozen.Student.Backbone.parameters().First().detach().eq(backboneStart).all().item<bool>(), "the backbone should still learn");
        Assert.Throws<ArgumentException>(() => (Tiny with { FreezePrototypesSteps = -1 }).Validate());
    }
}
