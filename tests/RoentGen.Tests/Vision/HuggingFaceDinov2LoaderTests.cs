using RoentGen.Evaluation.Probes;
using RoentGen.Interop;
using RoentGen.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Vision;

/// <summary>
/// A Hugging Face Dinov2Model folder written by the test with transformers' own key names and shapes (the layout
/// of microsoft/rad-dino, at a tiny size), read back through the library's loader.
/// </summary>
public sealed class HuggingFaceDinov2LoaderTests : IDisposable
{
    // Tiny Dinov2 config: hidden 32, 2 layers, 2 heads, patch 8, image 32 (16 patches), mlp ratio 4, 3 channels.
    private const int D = 32, Layers = 2, Heads = 2, Patch = 8, Image = 32, Channels = 3, Mlp = 4 * D, Tokens = 1 + (Image / Patch) * (Image / Patch);
    private const double Eps = 1e-6;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"roentgen-hf-dinov2-{Guid.NewGuid():N}");

    public HuggingFaceDinov2LoaderTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Every tensor of transformers' Dinov2Model for the tiny config: key → shape, written out by hand.</summary>
    private static Dictionary<string, long[]> HfShapes()
    {
        var s = new Dictionary<string, long[]>
        {
            ["embeddings.cls_token"] = [1, 1, D],
            ["embeddings.mask_token"] = [1, D],
            ["embeddings.position_embeddings"] = [1, Tokens, D],
            ["embeddings.patch_embeddings.projection.weight"] = [D, Channels, Patch, Patch],
            ["embeddings.patch_embeddings.projection.bias"] = [D],
            ["layernorm.weight"] = [D],
            ["layernorm.bias"] = [D],
        };
        for (int i = 0; i < Layers; i++)
        {
            string l = $"encoder.layer.{i}.";
            s[l + "norm1.weight"] = [D];
            s[l + "norm1.bias"] = [D];
            foreach (var qkv in new[] { "query", "key", "value" })
            {
                s[l + $"attention.attention.{qkv}.weight"] = [D, D];
                s[l + $"attention.attention.{qkv}.bias"] = [D];
            }
            s[l + "attention.output.dense.weight"] = [D, D];
            s[l + "attention.output.dense.bias"] = [D];
            s[l + "layer_scale1.lambda1"] = [D];
            s[l + "norm2.weight"] = [D];
            s[l + "norm2.bias"] = [D];
            s[l + "mlp.fc1.weight"] = [Mlp, D];
            s[l + "mlp.fc1.bias"] = [Mlp];
            s[l + "mlp.fc2.weight"] = [D, Mlp];
            s[l + "mlp.fc2.bias"] = [D];
            s[l + "layer_scale2.lambda1"] = [D];
        }
        return s;
    }

    private static Dictionary<string, Tensor> FixtureTensors(long seed = 5)
    {
        var g = new Generator((ulong)seed);
        // Norm weights near 1 and layer scales well away from 0, so every tensor visibly affects the output.
        return HfShapes().ToDictionary(kv => kv.Key, kv =>
            kv.Key.Contains("norm") && kv.Key.EndsWith(".weight") ? 1 + 0.1f * randn(kv.Value, generator: g)
            : kv.Key.EndsWith("lambda1") ? 0.5f + 0.1f * randn(kv.Value, generator: g)
            : 0.2f * randn(kv.Value, generator: g));
    }

    private const string ConfigJson = """
    {
      "architectures": ["Dinov2Model"],
      "model_type": "dinov2",
      "hidden_size": 32,
      "num_hidden_layers": 2,
      "num_attention_heads": 2,
      "patch_size": 8,
      "image_size": 32,
      "num_channels": 3,
      "mlp_ratio": 4,
      "layerscale_value": 1.0,
      "layer_norm_eps": 1e-06,
      "hidden_act": "gelu",
      "qkv_bias": true,
      "use_swiglu_ffn": false,
      "drop_path_rate": 0.0,
      "torch_dtype": "float32"
    }
    """;

    private void WriteFolder(IReadOnlyDictionary<string, Tensor> tensors, string config = ConfigJson)
    {
        File.WriteAllText(Path.Combine(_dir, "config.json"), config);
        SafeTensors.Save(Path.Combine(_dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    [Fact]
    public void Config_json_maps_to_the_vit_config()
    {
        WriteFolder(FixtureTensors());
        var c = HuggingFaceDinov2.ReadConfig(Path.Combine(_dir, "config.json"));
        Assert.Equal(new VitConfig { HiddenSize = D, Layers = Layers, Heads = Heads, PatchSize = Patch, ImageSize = Image, Channels = Channels, MlpRatio = 4, LayerScaleInit = 1.0, LayerNormEps = 1e-6 }, c);

        File.WriteAllText(Path.Combine(_dir, "config.json"), ConfigJson.Replace("\"dinov2\"", "\"vit\""));
        Assert.Contains("model_type \"vit\"", Assert.Throws<InvalidDataException>(() => HuggingFaceDinov2.ReadConfig(Path.Combine(_dir, "config.json"))).Message);
        File.WriteAllText(Path.Combine(_dir, "config.json"), ConfigJson.Replace("\"use_swiglu_ffn\": false", "\"use_swiglu_ffn\": true"));
        Assert.Contains("use_swiglu_ffn", Assert.Throws<InvalidDataException>(() => HuggingFaceDinov2.ReadConfig(Path.Combine(_dir, "config.json"))).Message);
        File.WriteAllText(Path.Combine(_dir, "config.json"), ConfigJson.Replace("\"hidden_size\": 32,", ""));
        Assert.Contains("hidden_size", Assert.Throws<InvalidDataException>(() => HuggingFaceDinov2.ReadConfig(Path.Combine(_dir, "config.json"))).Message);
    }

    [Fact]
    public void Every_tensor_of_the_fixture_is_loaded_under_its_hugging_face_name()
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureTensors();
        WriteFolder(fixture);
        var hf = HuggingFaceDinov2.Load(_dir);
        using var model = hf.Model;
        Assert.Empty(hf.IgnoredKeys);
        Assert.Null(hf.Normalization);
        var loaded = model.state_dict();
        Assert.Equal(fixture.Keys.OrderBy(k => k, StringComparer.Ordinal), loaded.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (k, t) in fixture)
        {
            Assert.Equal(t.shape, loaded[k].shape);
            Assert.True(t.eq(loaded[k]).all().item<bool>(), $"{k} differs from the fixture after loading");
        }
    }

    [Fact]
    public void Forward_matches_the_dinov2_equations_computed_from_the_fixture()
    {
        using var scope = NewDisposeScope();
        var w = FixtureTensors();
        WriteFolder(w);
        using var model = HuggingFaceDinov2.Load(_dir).Model;
        model.eval();
        var pixels = randn(2, Channels, Image, Image, generator: new Generator(9));

        // Dinov2Model by hand: patchify, CLS, positions; per layer x += ls1·attn(norm1 x); x += ls2·mlp(norm2 x); final LayerNorm.
        using var _ = no_grad();
        var x = nn.functional.conv2d(pixels, w["embeddings.patch_embeddings.projection.weight"], w["embeddings.patch_embeddings.projection.bias"], strides: [Patch, Patch]);
        x = x.flatten(2).transpose(1, 2);                                             // (B, N, D)
        x = cat([w["embeddings.cls_token"].expand(2, -1, -1), x], 1) + w["embeddings.position_embeddings"];
        for (int i = 0; i < Layers; i++)
        {
            Tensor P(string n) => w[$"encoder.layer.{i}.{n}"];
            var h = nn.functional.layer_norm(x, [D], P("norm1.weight"), P("norm1.bias"), Eps);
            Tensor Heads_(Tensor y) => y.view(2, Tokens, Heads, D / Heads).transpose(1, 2);   // (B, heads, T, d)
            var q = Heads_(nn.functional.linear(h, P("attention.attention.query.weight"), P("attention.attention.query.bias")));
            var k = Heads_(nn.functional.linear(h, P("attention.attention.key.weight"), P("attention.attention.key.bias")));
            var v = Heads_(nn.functional.linear(h, P("attention.attention.value.weight"), P("attention.attention.value.bias")));
            var a = matmul(q, k.transpose(-2, -1)).div(Math.Sqrt(D / Heads)).softmax(-1);
            var o = matmul(a, v).transpose(1, 2).reshape(2, Tokens, D);
            x = x + P("layer_scale1.lambda1") * nn.functional.linear(o, P("attention.output.dense.weight"), P("attention.output.dense.bias"));
            h = nn.functional.layer_norm(x, [D], P("norm2.weight"), P("norm2.bias"), Eps);
            h = nn.functional.linear(nn.functional.gelu(nn.functional.linear(h, P("mlp.fc1.weight"), P("mlp.fc1.bias"))), P("mlp.fc2.weight"), P("mlp.fc2.bias"));
            x = x + P("layer_scale2.lambda1") * h;
        }
        var expected = nn.functional.layer_norm(x, [D], w["layernorm.weight"], w["layernorm.bias"], Eps);

        var output = model.Forward(pixels);
        Assert.Equal([2L, Tokens, D], output.LastHiddenState.shape);
        Assert.Equal([2L, D], output.Cls.shape);
        Assert.Equal([2L, Tokens - 1, D], output.Patches.shape);
        float err = (output.LastHiddenState - expected).abs().max().item<float>();
        Assert.True(err < 1e-4f, $"last_hidden_state differs from the hand-computed Dinov2 forward by {err}");
        Assert.True(output.Cls.eq(model.Forward(pixels).Cls).all().item<bool>(), "forward is not deterministic in eval mode");
    }

    [Fact]
    public void Grayscale_images_are_repeated_to_three_channels_and_normalised_by_the_preprocessor_config()
    {
        using var scope = NewDisposeScope();
        WriteFolder(FixtureTensors());
        File.WriteAllText(Path.Combine(_dir, "preprocessor_config.json"),
            """{ "do_normalize": true, "image_mean": [0.5307, 0.5307, 0.5307], "image_std": [0.2583, 0.2583, 0.2583], "crop_size": { "height": 32, "width": 32 } }""");
        var encoder = VitEncoder.Load(_dir);   // the generic loader recognises a Hugging Face folder
        Assert.NotNull(encoder.Normalization);
        Assert.Equal(D, encoder.FeatureDim);
        Assert.Equal(Image, encoder.InputSize);
        var gray = rand(3, 1, Image, Image, generator: new Generator(4)) * 2 - 1;          // [-1, 1]
        var (cls, patches, gh, gw) = encoder.Encode(gray);
        Assert.Equal([3L, D], cls.shape);
        Assert.Equal([3L, 16, D], patches.shape);
        Assert.Equal((4, 4), (gh, gw));
        var rgb = ((gray + 1) / 2 - 0.5307f).div(0.2583f).expand(-1, 3, -1, -1);
        using (no_grad())
            Assert.True(encoder.Model.Forward(rgb).Cls.allclose(cls, rtol: 1e-5, atol: 1e-6), "Encode is not forward(repeat(normalise(gray)))");
        Assert.Throws<ArgumentException>(() => encoder.Model.Forward(gray));   // a 1-channel tensor is refused, not silently accepted
    }

    [Fact]
    public void Missing_unexpected_and_wrongly_shaped_keys_are_named()
    {
        using var scope = NewDisposeScope();
        var missing = FixtureTensors();
        missing.Remove("encoder.layer.1.layer_scale2.lambda1");
        WriteFolder(missing);
        var e = Assert.Throws<InvalidDataException>(() => HuggingFaceDinov2.Load(_dir));
        Assert.Contains("missing", e.Message);
        Assert.Contains("encoder.layer.1.layer_scale2.lambda1", e.Message);

        var unexpected = FixtureTensors();
        unexpected["encoder.layer.0.mlp.weights_in.weight"] = zeros(2 * Mlp, D);   // a SwiGLU key
        WriteFolder(unexpected);
        e = Assert.Throws<InvalidDataException>(() => HuggingFaceDinov2.Load(_dir));
        Assert.Contains("unexpected", e.Message);
        Assert.Contains("encoder.layer.0.mlp.weights_in.weight", e.Message);

        var shaped = FixtureTensors();
        shaped["embeddings.position_embeddings"] = zeros(1, 1 + 36, D);            // made for image_size 48
        WriteFolder(shaped);
        e = Assert.Throws<InvalidDataException>(() => HuggingFaceDinov2.Load(_dir));
        Assert.Contains("embeddings.position_embeddings: expected [1, 17, 32], found [1, 37, 32]", e.Message);

        File.Delete(Path.Combine(_dir, "model.safetensors"));
        File.WriteAllBytes(Path.Combine(_dir, "pytorch_model.bin"), [0]);
        Assert.Contains("pytorch_model.bin", Assert.Throws<FileNotFoundException>(() => HuggingFaceDinov2.Load(_dir)).Message);
    }

    [Fact]
    public void A_task_model_checkpoint_loads_its_dinov2_backbone_and_reports_the_head()
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureTensors();
        var task = fixture.ToDictionary(kv => "dinov2." + kv.Key, kv => kv.Value);
        task["classifier.weight"] = zeros(5, 2 * D);
        task["classifier.bias"] = zeros(5);
        WriteFolder(task);
        var hf = HuggingFaceDinov2.Load(_dir);
        using var model = hf.Model;
        Assert.Equal(["classifier.weight", "classifier.bias"], hf.IgnoredKeys.OrderByDescending(k => k));
        Assert.True(model.state_dict()["layernorm.bias"].eq(fixture["layernorm.bias"]).all().item<bool>());
    }

    [Theory]
    [InlineData("../outside.safetensors", "leads outside the folder")]
    [InlineData("/etc/passwd", "is an absolute path")]
    [InlineData("link.safetensors", "symbolic link that leads outside")]
    public void Shard_names_in_an_index_stay_inside_the_model_folder(string shard, string expected)
    {
        var fixture = FixtureTensors();
        File.WriteAllText(Path.Combine(_dir, "config.json"), ConfigJson);
        var outside = Path.Combine(Path.GetDirectoryName(_dir)!, $"outside-{Guid.NewGuid():N}.safetensors");
        SafeTensors.Save(outside, fixture);
        try
        {
            File.CreateSymbolicLink(Path.Combine(_dir, "link.safetensors"), outside);
            var keys = string.Join(",", fixture.Keys.Select(k => $"\"{k}\": \"{shard}\""));
            File.WriteAllText(Path.Combine(_dir, HuggingFaceDinov2.ShardIndexFileName), $"{{\"weight_map\": {{{keys}}}}}");
            var e = Assert.Throws<InvalidDataException>(() => HuggingFaceDinov2.Load(_dir));
            Assert.Contains($"{HuggingFaceDinov2.ShardIndexFileName}: weight_map entry '", e.Message);
            Assert.Contains(expected, e.Message);
            // The same shard named plainly, inside the folder, loads.
            SafeTensors.Save(Path.Combine(_dir, "inside.safetensors"), fixture);
            keys = string.Join(",", fixture.Keys.Select(k => $"\"{k}\": \"inside.safetensors\""));
            File.WriteAllText(Path.Combine(_dir, HuggingFaceDinov2.ShardIndexFileName), $"{{\"weight_map\": {{{keys}}}}}");
            using var model = HuggingFaceDinov2.Load(_dir).Model;
        }
        finally { File.Delete(outside); }
    }
}
