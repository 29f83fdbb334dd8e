using RoentGen.Data.Phantoms;
using RoentGen.Methods;
using RoentGen.PairAug;
using RoentGen.Training;
using Xunit;
using static TorchSharp.torch;

namespace RoentGen.Tests.Methods;

/// <summary>The CLIP-style model as one unit: save, load, identical embeddings, clear errors for wrong folders.</summary>
[Collection(ProcessStateCollection.Name)]
public class ClipModelTests
{
    private static (ClipConfig Config, TrainingRecords Pool) Tiny()
    {
        var cfg = ClipConfig.Matching(DinoConfig.Tiny with { Steps = 2, BatchSize = 4 }, 8, 3) with { TokenizerReports = 8 };
        return (cfg, TrainingRecords.Phantoms(new PhantomOptions { Size = cfg.SourceSize, Seed = cfg.WorldSeed }, cfg.Phantoms));
    }

    [Fact]
    public void A_saved_model_loads_with_identical_embeddings_of_images_and_texts_and_its_temperature()
    {
        var (cfg, pool) = Tiny();
        using var clip = new ClipTraining(cfg, ClipTraining.TrainTokenizer(cfg, pool));
        clip.Train(clip.CreateTrainer(), pool);
        var dir = TestPaths.NewTempDir("clip-unit");
        clip.Model.Save(dir);
        Assert.True(ClipModel.Exists(dir));
        using var loaded = ClipModel.Load(dir);
        Assert.Equal(cfg.ToJson(), loaded.Config.ToJson());
        Assert.Equal(clip.Tokenizer.VocabSize, loaded.Tokenizer.VocabSize);
        using var images = rand(3, 1, cfg.Vit.ImageSize, cfg.Vit.ImageSize) * 2 - 1;
        string[] texts = ["small left pleural effusion", "no acute cardiopulmonary process", "cardiomegaly"];
        using var a = new ClipModelEmbedder(clip.Model).EmbedImages(images);
        using var b = new ClipModelEmbedder(loaded).EmbedImages(images);
        Assert.True(a.eq(b).all().item<bool>(), "image embeddings differ after save/load");
        using var ta = new ClipTrainingEmbedder(clip).EmbedTexts(texts);
        using var tb = new ClipModelEmbedder(loaded).EmbedTexts(texts);
        Assert.True(ta.eq(tb).all().item<bool>(), "text embeddings differ after save/load");
        using (no_grad()) Assert.Equal(clip.Heads.LogitScale().item<float>(), loaded.Heads.LogitScale().item<float>());
    }

    [Fact]
    public void A_clip_run_folder_holds_the_unit_and_loads_from_the_run_folder_itself()
    {
        var (cfg, pool) = Tiny();
        var dir = TestPaths.NewTempDir("clip-run-unit");
        EncoderRuns.Clip(cfg, pool, dir);
        Assert.True(ClipModel.Exists(Path.Combine(dir, ClipModel.RunModelFolder)));
        Assert.Equal(Path.Combine(dir, ClipModel.RunModelFolder), ClipModel.Resolve(dir));
        using var model = ClipModel.Load(dir);
        Assert.Equal(cfg.Seed, model.Config.Seed);
        // A finished run missing its unit (saved before the unit existed) writes it again on the next call without training.
        Directory.Delete(Path.Combine(dir, ClipModel.RunModelFolder), recursive: true);
        var again = EncoderRuns.Clip(cfg, pool, dir);
        Assert.True(ClipModel.Exists(dir));
        Assert.Equal(cfg.Steps, again.Steps);
    }

    [Fact]
    public void A_wrong_folder_gives_an_error_that_names_what_is_missing_or_wrong()
    {
        var missing = Path.Combine(TestPaths.NewTempDir("clip-none"), "nothing");
        var e1 = Assert.Throws<DirectoryNotFoundException>(() => ClipModel.Load(missing));
        Assert.Contains("does not exist", e1.Message);

        var empty = TestPaths.NewTempDir("clip-empty");
        File.WriteAllText(Path.Combine(empty, "config.json"), "{}");
        var e2 = Assert.Throws<FileNotFoundException>(() => ClipModel.Load(empty));
        Assert.Contains("is not a CLIP model folder", e2.Message);
        Assert.Contains("model.safetensors", e2.Message);
        Assert.Contains("tokenizer", e2.Message);
        Assert.False(ClipModel.Exists(empty));

        // Another model's weights in the right file names: refused by kind, not loaded half-way.
        var (cfg, pool) = Tiny();
        using var clip = new ClipTraining(cfg, ClipTraining.TrainTokenizer(cfg, pool));
        var other = TestPaths.NewTempDir("clip-other");
        clip.Model.Save(other);
        Checkpoint.Save(other, clip.Backbone, clip.Backbone.Config);      // overwrites model.safetensors and config.json with a ViT checkpoint
        var e3 = Assert.Throws<InvalidDataException>(() => ClipModel.Load(other));
        Assert.Contains("not a CLIP model's weights", e3.Message);
    }
}
