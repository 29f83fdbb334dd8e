using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Evaluation.Probes;
using RoentGen.Interop;
using RoentGen.Training;
using RoentGen.Vision;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation.Probes;

public class ProbeCommandTests
{
    [Fact]
    public void Probe_verb_on_phantoms_with_a_random_encoder_writes_json()
    {
        var root = new RootCommand { ProbeCommand.Build() };
        var file = Path.Combine(TestPaths.NewTempDir("probe-cli"), "r.json");
        int rc = root.Parse(["probe", "--encoder", "random", "--data", "phantoms", "--target", "sex,age", "--n", "24", "--size", "32", "--json", file]).Invoke();
        Assert.Equal(0, rc);
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        var metrics = doc.RootElement.GetProperty("metrics").EnumerateArray().Select(m => m.GetProperty("probe").GetString() + "/" + m.GetProperty("metric").GetString()).ToList();
        Assert.Contains("sex/auc", metrics);
        Assert.Contains("age/mae_years", metrics);
        Assert.DoesNotContain(metrics, m => m.StartsWith("segmentation"));
    }

    [Fact]
    public void Probe_verb_rejects_bad_arguments_and_missing_encoders_with_named_errors()
    {
        var root = new RootCommand { ProbeCommand.Build() };
        Assert.Equal(2, root.Parse(["probe", "--encoder", "random", "--data", "phantoms", "--target", "lungs"]).Invoke());
        Assert.Equal(2, root.Parse(["probe", "--encoder", Path.Combine(TestPaths.NewTempDir("none"), "missing"), "--data", "phantoms", "--target", "sex", "--n", "12"]).Invoke());
    }

    [Fact]
    public void Encoder_loads_from_a_checkpoint_or_a_trainer_backbone_and_names_what_is_missing()
    {
        var config = new VitConfig { ImageSize = 32, PatchSize = 8, HiddenSize = 24, Layers = 1, Heads = 2 };
        var vit = new VisionTransformer(config);
        var x = randn(2, 1, 32, 32);
        using var _ = no_grad();
        var expected = vit.Forward(x).Cls;

        var ckpt = TestPaths.NewTempDir("enc-ckpt");
        Checkpoint.Save(ckpt, vit, config);
        var a = VitEncoder.Load(ckpt);
        Assert.True(a.Encode(x).Cls.allclose(expected, rtol: 1e-5, atol: 1e-6));
        Assert.Equal(16, a.Encode(x).Patches.shape[1]);

        // A Trainer checkpoint: backbone.safetensors beside an experiment config holding the ViT config.
        var trainer = TestPaths.NewTempDir("enc-trainer");
        SafeTensors.Save(Path.Combine(trainer, "backbone.safetensors"), vit.state_dict());
        File.WriteAllText(Path.Combine(trainer, "config.json"),
            JsonSerializer.Serialize(new { Name = "ssl", Vit = config, Steps = 10 }, SafeTensors.ConfigJsonOptions));
        var b = VitEncoder.Load(trainer);
        Assert.True(b.Encode(x).Cls.allclose(expected, rtol: 1e-5, atol: 1e-6));

        var empty = TestPaths.NewTempDir("enc-empty");
        var e = Assert.Throws<FileNotFoundException>(() => VitEncoder.Load(empty));
        Assert.Contains("backbone.safetensors", e.Message);
        File.WriteAllText(Path.Combine(trainer, "config.json"), "{\"Name\": \"ssl\"}");
        Assert.Throws<InvalidDataException>(() => VitEncoder.Load(trainer));
    }
}
