using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using RoentGen.Evaluation.Probes;
using RoentGen.Vision;
using static TorchSharp.torch;
using RoentGen.Methods;
using RoentGen.Experiments;

namespace RoentGen.Tests.Evaluation;

/// <summary>Protocol that notebooks and the quickstart used to spell out themselves, now in the library once.</summary>
public sealed class ProtocolTests
{
    [Fact]
    public void Short_dino_runs_keep_their_warmups_inside_the_run_and_long_runs_keep_the_recipes()
    {
        var recipe = DinoConfig.Quick;
        var shortRun = recipe.ForRun(steps: 30, batchSize: 4);
        Assert.Equal((30, 4), (shortRun.Steps, shortRun.BatchSize));
        Assert.Equal(Math.Min(recipe.WarmupSteps, 3), shortRun.WarmupSteps);
        Assert.Equal(Math.Min(recipe.TeacherTemperatureWarmupSteps, 10), shortRun.TeacherTemperatureWarmupSteps);
        var longRun = recipe.ForRun(steps: 1_000_000, batchSize: 16);
        Assert.Equal(recipe.WarmupSteps, longRun.WarmupSteps);
        Assert.Equal(recipe.TeacherTemperatureWarmupSteps, longRun.TeacherTemperatureWarmupSteps);
        Assert.Equal(1, recipe.ForRun(steps: 3, batchSize: 4).WarmupSteps);   // never zero
        shortRun.Validate();
    }

    [Fact]
    public void The_encoder_comparison_uses_the_same_short_run_rule()
    {
        var cfg = EncoderComparisonConfig.FromPreset("tiny");
        var run = cfg.DinoRun();
        Assert.Equal(cfg.Dino.ForRun(cfg.Steps, cfg.BatchSize) with { Seed = cfg.Seed }, run);
    }

    [Fact]
    public void The_judge_and_held_out_worlds_differ_from_the_training_world_and_from_each_other()
    {
        foreach (var seed in new long[] { 0, 7, 1_000 })
        {
            var worlds = new[] { seed, WorldSeeds.Judge(seed), WorldSeeds.HeldOut(seed) };
            Assert.Equal(3, worlds.Distinct().Count());
        }
        Assert.Equal(1007, WorldSeeds.Judge(7));
        Assert.Equal(2007, WorldSeeds.HeldOut(7));
    }

    [Fact]
    public void Lower_zone_asymmetry_is_positive_when_the_image_right_base_is_brighter()
    {
        using var images = zeros(2, 1, 12, 12);
        images[0, 0, TensorIndex.Slice(8, 12), TensorIndex.Slice(6, 12)] = tensor(1f);   // bright base, image right
        images[1, 0, TensorIndex.Slice(8, 12), TensorIndex.Slice(0, 6)] = tensor(1f);    // bright base, image left
        var asym = PromptChecks.LowerZoneAsymmetry(images);
        Assert.Equal(2, asym.Length);
        Assert.Equal(1f, asym[0], 4);
        Assert.Equal(-1f, asym[1], 4);
        Assert.Throws<ArgumentException>(() => PromptChecks.LowerZoneAsymmetry(zeros(12, 12)));
    }

    [Fact]
    public void Feature_maps_embed_the_cases_once_and_draw_them_by_finding_sex_and_age()
    {
        using var vit = new VisionTransformer(new VitConfig { ImageSize = 32, PatchSize = 8, HiddenSize = 32, Layers = 1, Heads = 2 });
        var cases = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 3 }).Generate(0, 12);
        var maps = TSneCharts.FeatureMaps(new VitEncoder(vit, "tiny"), cases);
        Assert.Equal((12, 32), (maps.Points, maps.Features));
        Assert.Equal(12, maps.Tsne.Embedding.GetLength(0));
        Assert.Equal("tiny: CLS features by finding", maps.ByFinding.Title);
        Assert.Equal("tiny: by sex", maps.BySex.Title);
        Assert.Contains("Viridis", maps.ByAge.ToJson());
        Assert.Equal(cases.Select(c => c.Sex).Distinct().Count(), maps.BySex.Traces.Count);
        Assert.StartsWith("tiny: t-SNE of 12 x 32 CLS features", maps.Summary);
        Assert.Throws<ArgumentException>(() => TSneCharts.FeatureMaps(new VitEncoder(vit, "tiny"), cases.Take(3).ToList()));
    }
}
