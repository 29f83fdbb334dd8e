using System.Diagnostics;
using System.Text;
using RoentGen.Diffusion;
using RoentGen.Evaluation.Probes;
using RoentGen.Interop;
using RoentGen.Nn;
using RoentGen.Text;
using RoentGen.Training;
using RoentGen.Vision;
using static TorchSharp.torch;

namespace RoentGen.Tests.Nn;

// Issue #12, root cause 2 and 3: configs that size tensors are checked before anything is allocated.
public class ModelSizeTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("model-size");
    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly VitConfig Small = new() { ImageSize = 16, PatchSize = 8, HiddenSize = 16, Layers = 1, Heads = 2 };

    // A checkpoint folder of a small ViT whose config.json is then replaced by the given text.
    private string FolderWithConfig(string configJson)
    {
        var folder = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        using (var vit = new VisionTransformer(Small)) Checkpoint.Save(folder, vit, Small);
        File.WriteAllText(Path.Combine(folder, Checkpoint.ConfigFileName), configJson);
        return folder;
    }

    [Theory]
    [InlineData("{\"HiddenSize\":20000,\"PatchSize\":8,\"Heads\":4}", "above the limit of 1073741824")]
    [InlineData("{\"HiddenSize\":16,\"PatchSize\":8,\"Heads\":2,\"Layers\":2000000000}", "Layers is 2000000000; expected 1 to 1024")]
    [InlineData("{\"HiddenSize\":16,\"PatchSize\":0,\"Heads\":2}", "PatchSize is 0; expected 1 to 64")]
    [InlineData("{\"HiddenSize\":16,\"PatchSize\":8,\"Heads\":0}", "Heads is 0; expected 1 to 16")]
    [InlineData("{\"HiddenSize\":16,\"PatchSize\":8,\"Heads\":2,\"MlpRatio\":0}", "MlpRatio is 0; expected a finite number")]
    [InlineData("{\"HiddenSize\":16,\"PatchSize\":8,\"Heads\":2,\"MlpRatio\":-4}", "MlpRatio is -4")]
    [InlineData("{\"HiddenSize\":16,\"PatchSize\":8,\"Heads\":3}", "HiddenSize 16 is not divisible by Heads 3")]
    [InlineData("{\"HiddenSize\":16,\"PatchSize\":8,\"Heads\":2,\"ImageSize\":4096}", "describes a model of")]
    public void A_tiny_vit_config_with_a_huge_or_absurd_field_is_refused_in_milliseconds(string json, string expected)
    {
        var folder = FolderWithConfig(json);
        if (json.Contains("20000")) Assert.True(json.Length <= 85, $"{json.Length} bytes");
        var watch = Stopwatch.StartNew();
        long before = GC.GetTotalAllocatedBytes();
        var e = Assert.Throws<InvalidDataException>(() => VitEncoder.Load(folder));
        Assert.True(watch.ElapsedMilliseconds < 2000, $"{watch.ElapsedMilliseconds} ms");
        Assert.True(GC.GetTotalAllocatedBytes() - before < 64 << 20, "allocated while refusing");
        Assert.Contains(Path.Combine(folder, "config.json"), e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Parameter_counts_are_exact_for_transformers_and_close_for_the_convolutional_models()
    {
        foreach (var c in new[] { Small, Small with { RegisterTokens = 4, MlpRatio = 2.5, Channels = 3 }, new VitConfig() })
        {
            using var vit = new VisionTransformer(c);
            Assert.Equal(vit.parameters().Sum(p => p.numel()), (long)c.ParameterCount());
        }
        foreach (var t in new[] { new ClipTextConfig(), LdmExperimentConfig.Tiny.Text })
        {
            using var text = new ClipTextModel(t);
            Assert.Equal(text.parameters().Sum(p => p.numel()), (long)t.ParameterCount());
        }
        foreach (var cfg in new[] { LdmExperimentConfig.Tiny, LdmExperimentConfig.Quick })
        {
            using var unet = new UNet2DConditionModel(cfg.Unet);
            double ratio = cfg.Unet.ParameterEstimate() / unet.parameters().Sum(p => p.numel());
            Assert.InRange(ratio, 0.5, 2.0);
            using var vae = new AutoencoderKL(cfg.Vae);
            ratio = cfg.Vae.ParameterEstimate() / vae.parameters().Sum(p => p.numel());
            Assert.InRange(ratio, 0.5, 2.0);
        }
    }

    [Fact]
    public void Unet_vae_and_text_fields_are_checked_with_their_names()
    {
        var tiny = LdmExperimentConfig.Tiny;
        Assert.Contains("NormGroups is 0; expected 1 to", Assert.Throws<ArgumentException>(() => (tiny.Unet with { NormGroups = 0 }).Validate()).Message);
        Assert.Contains("NormGroups is -8", Assert.Throws<ArgumentException>(() => (tiny.Vae with { NormGroups = -8 }).Validate()).Message);
        Assert.Contains("12 channels are not divisible by 8 norm groups", Assert.Throws<ArgumentException>(() => (tiny.Vae with { BlockOutChannels = [8, 12], NormGroups = 8 }).Validate()).Message);
        Assert.Contains("AttentionHeadDim is 0", Assert.Throws<ArgumentException>(() => (tiny.Unet with { AttentionHeadDim = 0 }).Validate()).Message);
        Assert.Contains("LayersPerBlock is 100000", Assert.Throws<ArgumentException>(() => (tiny.Unet with { LayersPerBlock = 100000 }).Validate()).Message);
        Assert.Contains("the UNet config describes", Assert.Throws<ArgumentException>(() => (tiny.Unet with { BlockOutChannels = [32768, 32768], NormGroups = 8, AttentionHeadDim = 16 }).Validate()).Message);
        Assert.Contains("Heads is 0", Assert.Throws<ArgumentException>(() => new ClipTextModel(tiny.Text with { Heads = 0 })).Message);
        Assert.Contains("VocabSize is 2000000000", Assert.Throws<ArgumentException>(() => (tiny.Text with { VocabSize = 2_000_000_000 }).Validate()).Message);
        Assert.Contains("MaxPositions is -1", Assert.Throws<ArgumentException>(() => (tiny.Text with { MaxPositions = -1 }).Validate()).Message);
        Assert.Contains("Unet: NormGroups is 0", Assert.Throws<ArgumentException>(() => (tiny with { Unet = tiny.Unet with { NormGroups = 0 } }).Validate()).Message);
        Assert.Contains("LdmSteps is -1", Assert.Throws<ArgumentException>(() => (tiny with { LdmSteps = -1 }).Validate()).Message);
        Assert.Contains("LdmBatch is 0", Assert.Throws<ArgumentException>(() => (tiny with { LdmBatch = 0 }).Validate()).Message);
        Assert.Contains("ImageSize 33 is not a multiple of Vae.DownsampleFactor 2", Assert.Throws<ArgumentException>(() => (tiny with { ImageSize = 33 }).Validate()).Message);
        tiny.Validate();
        LdmExperimentConfig.Quick.Validate();
    }

    [Fact]
    public void Truncated_or_out_of_range_experiment_json_is_invalid_data_naming_the_file()
    {
        var path = Path.Combine(_dir, "experiment.json");
        var json = System.Text.Json.JsonSerializer.Serialize(LdmExperimentConfig.Tiny, SafeTensors.ConfigJsonOptions);
        File.WriteAllText(path, json[..(json.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => LdmExperimentConfig.Load(path));
        Assert.Contains($"{path}: not a valid LdmExperimentConfig", e.Message);
        File.WriteAllText(path, System.Text.Json.JsonSerializer.Serialize(LdmExperimentConfig.Tiny with { VaeBatch = 0 }, SafeTensors.ConfigJsonOptions));
        e = Assert.Throws<InvalidDataException>(() => LdmExperimentConfig.Load(path));
        Assert.Contains($"{path}: VaeBatch is 0; expected 1 to 65536", e.Message);
        File.WriteAllText(path, json);
        Assert.Equal(LdmExperimentConfig.Tiny.LdmSteps, LdmExperimentConfig.Load(path).LdmSteps);
    }

    [Fact]
    public void Checkpoint_config_describing_a_far_bigger_model_than_its_weights_is_refused_before_building()
    {
        var folder = Path.Combine(_dir, "vae");
        var vae = LdmExperimentConfig.Tiny.Vae;
        using (var m = new AutoencoderKL(vae)) Checkpoint.Save(folder, m, vae);
        Assert.Equal(vae.BlockOutChannels, Checkpoint.ReadConfig<VaeConfig>(folder).BlockOutChannels);
        File.WriteAllText(Path.Combine(folder, Checkpoint.ConfigFileName), "{\"BlockOutChannels\":[1024,1024],\"NormGroups\":4}");
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.ReadConfig<VaeConfig>(folder));
        Assert.Contains("config.json: the config describes a model of", e.Message);
        Assert.Contains("model.safetensors hold", e.Message);
        File.WriteAllText(Path.Combine(folder, Checkpoint.ConfigFileName), "{\"BlockOutChannels\":[8,16],\"NormGroups\":0}");
        e = Assert.Throws<InvalidDataException>(() => Checkpoint.ReadConfig<VaeConfig>(folder));
        Assert.Contains("config.json: not a usable VaeConfig: NormGroups is 0", e.Message);
        File.WriteAllText(Path.Combine(folder, Checkpoint.ConfigFileName), "{\"BlockOutChannels\":[8,16],\"Norm");
        e = Assert.Throws<InvalidDataException>(() => Checkpoint.ReadConfig<VaeConfig>(folder));
        Assert.Contains("config.json: not a valid VaeConfig", e.Message);
    }

    [Fact]
    public void Safetensors_shape_whose_nonzero_dimensions_overflow_is_refused_even_beside_a_zero()
    {
        var header = Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[0,4611686018427387904,4611686018427387904],\"data_offsets\":[0,0]}}");
        var bytes = new byte[8 + header.Length];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)header.Length);
        header.CopyTo(bytes, 8);
        var path = Path.Combine(_dir, "zero.safetensors");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains("zero.safetensors: invalid safetensors file, tensor 'w': shape [0, 4611686018427387904, 4611686018427387904]", e.Message);
        Assert.Contains("overflows a 64-bit element count", e.Message);
        // A plain empty tensor still loads.
        header = Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}");
        bytes = new byte[8 + header.Length];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        using var f = SafeTensors.Load(path);
        Assert.Equal([0L, 3L], f.Tensors["w"].shape);
    }

    [Fact]
    public void Nan_or_infinite_weights_are_refused_on_load_naming_the_tensor()
    {
        var folder = Path.Combine(_dir, "nan");
        using var vit = new VisionTransformer(Small);
        using (no_grad())
        {
            vit.state_dict()["encoder.layer.0.mlp.fc1.weight"][0, 0] = float.NaN;
            vit.state_dict()["layernorm.bias"][1] = float.PositiveInfinity;
        }
        Checkpoint.Save(folder, vit, Small);
        using var fresh = new VisionTransformer(Small);
        var before = fresh.state_dict()["layernorm.bias"].clone();
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(folder, fresh));
        Assert.Contains("model.safetensors: tensor 'encoder.layer.0.mlp.fc1.weight'", e.Message);
        Assert.Contains("1 non-finite values (1 NaN, 0 infinite)", e.Message);
        Assert.True(fresh.state_dict()["layernorm.bias"].equal(before).all().item<bool>(), "weights were copied before the refusal");
        var e2 = Assert.Throws<InvalidDataException>(() => VitEncoder.Load(folder));
        Assert.Contains("non-finite", e2.Message);
    }

    [Fact]
    public void A_saved_ldm_whose_index_is_cut_short_or_out_of_range_is_refused_naming_the_index()
    {
        var dir = Path.Combine(_dir, "ldm");
        var cfg = LdmExperimentConfig.Tiny;
        var vaeDir = Path.Combine(_dir, "vae-part");
        using (var vae = new AutoencoderKL(cfg.Vae)) Checkpoint.Save(vaeDir, vae, cfg.Vae);
        LatentDiffusionModel.Build(cfg, ["small left pleural effusion", "no pneumothorax", "cardiomegaly"], vaeDir).Save(dir);
        var index = Path.Combine(dir, "model_index.json");
        var json = File.ReadAllText(index);
        Assert.Contains("\"LatentSize\": 16", json);
        File.WriteAllText(index, json.Replace("\"LatentSize\": 16", "\"LatentSize\": 1000000000"));
        var e = Assert.Throws<InvalidDataException>(() => LatentDiffusionModel.Load(dir));
        Assert.Contains($"{index}: LatentSize is 1000000000; expected 1 to 1024", e.Message);
        File.WriteAllText(index, json[..(json.Length / 2)]);
        e = Assert.Throws<InvalidDataException>(() => LatentDiffusionModel.Load(dir));
        Assert.Contains($"{index}: not a valid model index", e.Message);
        File.WriteAllText(index, json);
        Assert.Equal(16, LatentDiffusionModel.Load(dir).LatentSize);
    }
}
