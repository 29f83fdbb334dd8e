using RoentGen.Platform;

namespace RoentGen.Tests.Platform;

public class ModelFingerprintTests
{
    private static string MakeModel(string name)
    {
        var dir = TestPaths.NewTempDir(name);
        Directory.CreateDirectory(Path.Combine(dir, "unet"));
        Directory.CreateDirectory(Path.Combine(dir, "vae"));
        File.WriteAllBytes(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors"), Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray());
        File.WriteAllText(Path.Combine(dir, "unet", "config.json"), "{\"sample_size\": 8}");
        File.WriteAllBytes(Path.Combine(dir, "vae", "diffusion_pytorch_model.safetensors"), [1, 2, 3, 4]);
        File.WriteAllText(Path.Combine(dir, "model_index.json"), "{}");
        return dir;
    }

    [Fact]
    public void Same_content_gives_the_same_fingerprint_and_any_changed_weight_byte_another()
    {
        string a = MakeModel("fp-a"), b = MakeModel("fp-b");
        string fa = ModelFingerprint.Of(a);
        Assert.StartsWith("sha256:", fa);
        Assert.Equal(fa, ModelFingerprint.Of(b));                       // another path, the same model

        // Training state, records and curves beside the model do not change it.
        Directory.CreateDirectory(Path.Combine(b, "runs", "ldm"));
        File.WriteAllText(Path.Combine(b, "runs", "ldm", "state.bin"), "x");
        Directory.CreateDirectory(Path.Combine(b, "curve"));
        File.WriteAllText(Path.Combine(b, "curve", "step-000050.json"), "{}");
        File.WriteAllText(Path.Combine(b, "experiment.json"), "{\"seconds\": 3}");
        Assert.Equal(fa, ModelFingerprint.Of(b));

        // One byte of the UNet's weights, a config value, the index or a file moved to another component: all change it.
        var weights = Path.Combine(b, "unet", "diffusion_pytorch_model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[2500] ^= 1;
        File.WriteAllBytes(weights, bytes);
        Assert.NotEqual(fa, ModelFingerprint.Of(b));
        bytes[2500] ^= 1;
        File.WriteAllBytes(weights, bytes);
        Assert.Equal(fa, ModelFingerprint.Of(b));
        File.WriteAllText(Path.Combine(b, "unet", "config.json"), "{\"sample_size\": 9}");
        Assert.NotEqual(fa, ModelFingerprint.Of(b));
        File.WriteAllText(Path.Combine(b, "unet", "config.json"), "{\"sample_size\": 8}");
        File.WriteAllText(Path.Combine(b, "model_index.json"), "{ }");
        Assert.NotEqual(fa, ModelFingerprint.Of(b));
        File.WriteAllText(Path.Combine(b, "model_index.json"), "{}");
        File.Move(Path.Combine(b, "vae", "diffusion_pytorch_model.safetensors"), Path.Combine(b, "unet", "vae.safetensors"));
        Assert.NotEqual(fa, ModelFingerprint.Of(b));
        TestPaths.DeleteQuietly(a);
        TestPaths.DeleteQuietly(b);
    }

    [Fact]
    public void A_missing_or_empty_folder_is_named()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-model-{Guid.NewGuid():N}");
        Assert.Contains(missing, Assert.Throws<DirectoryNotFoundException>(() => ModelFingerprint.Of(missing)).Message);
        var empty = TestPaths.NewTempDir("fp-empty");
        Directory.CreateDirectory(Path.Combine(empty, "runs"));
        File.WriteAllText(Path.Combine(empty, "runs", "a.bin"), "x");
        Assert.Contains("no model files", Assert.Throws<InvalidDataException>(() => ModelFingerprint.Of(empty)).Message);
        TestPaths.DeleteQuietly(empty);
    }
}
