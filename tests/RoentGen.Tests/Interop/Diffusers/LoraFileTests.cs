using System.Text.Json.Nodes;
using RoentGen.Interop;
using RoentGen.Interop.Diffusers;
using RoentGen.Nn;
using RoentGen.Tests.Nn;
using static TorchSharp.torch;

namespace RoentGen.Tests.Interop.Diffusers;

/// <summary>
/// LoRA files in diffusers' PEFT layout, diffusers' older attention-processor layout and kohya's: saved adapters reload to
/// identical UNet outputs in each; files written key by key in each layout's exact names load onto the right layers with
/// the right scale; malformed files are refused with every problem named.
/// </summary>
[Collection(ProcessStateCollection.Name)]
public class LoraFileTests
{
    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public static TheoryData<LoraFileLayout> Layouts => new() { LoraFileLayout.Peft, LoraFileLayout.DiffusersOld, LoraFileLayout.Kohya };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Saved_adapters_reload_to_identical_outputs(LoraFileLayout layout)
    {
        using var scope = NewDisposeScope();
        var pipe = LoraTests.Sd1();
        var x = LoraTests.Inputs(pipe);
        using var lora = LoraAdapter.Attach(pipe.Unet, new LoraConfig { Rank = 2, Alpha = 4, IncludeProjections = true });
        LoraTests.Randomise(lora, 11);
        var adapted = LoraTests.Forward(pipe, x);
        var dir = TestPaths.NewTempDir("lora-file");
        var file = LoraFile.Save(lora, dir, layout);
        Assert.Equal(Path.Combine(dir, LoraFile.FileName), file);

        var (tensors, metadata) = SafeTensors.ReadHeader(file);
        var keys = tensors.Select(t => t.Name).ToHashSet();
        const string q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
        const string o = "up_blocks.2.attentions.2.transformer_blocks.0.attn2.to_out.0";
        const string p = "mid_block.attentions.0.proj_out";
        string[] expected = layout switch
        {
            LoraFileLayout.Peft => [$"unet.{q}.lora_A.weight", $"unet.{q}.lora_B.weight", $"unet.{o}.lora_A.weight", $"unet.{p}.lora_B.weight"],
            LoraFileLayout.DiffusersOld =>
            [
                "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight",
                "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.up.weight",
                "up_blocks.2.attentions.2.transformer_blocks.0.attn2.processor.to_out_lora.down.weight",
                $"{p}.lora.up.weight",
            ],
            _ =>
            [
                "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight",
                "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight",
                "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha",
                "lora_unet_up_blocks_2_attentions_2_transformer_blocks_0_attn2_to_out_0.lora_down.weight",
                "lora_unet_mid_block_attentions_0_proj_out.lora_up.weight",
            ],
        };
        foreach (var k in expected) Assert.Contains(k, keys);
        int perLayer = layout == LoraFileLayout.Kohya ? 3 : 2;
        Assert.Equal(lora.Layers.Count * perLayer, keys.Count);
        if (layout == LoraFileLayout.Peft)
        {
            var meta = JsonNode.Parse(metadata[LoraFile.MetadataKey])!.AsObject();
            Assert.Equal(2, meta["unet.r"]!.GetValue<int>());
            Assert.Equal(4.0, meta["unet.lora_alpha"]!.GetValue<double>());
            Assert.Equal(lora.Layers.Count, meta["unet.target_modules"]!.AsArray().Count);
        }

        var fresh = LoraTests.Sd1("lora-reload");
        Assert.False(Same(adapted, LoraTests.Forward(fresh, x)));
        using var loaded = LoraFile.Load(dir, fresh.Unet);
        Assert.Equal(lora.Layers.Keys, loaded.Layers.Keys);
        Assert.True(Same(adapted, LoraTests.Forward(fresh, x)), $"{layout}: the reloaded adapters give other outputs");
        // The old layout has no alpha: its scale is folded into the up weights (scale 1 after loading).
        Assert.All(loaded.Layers.Values, l => Assert.Equal(layout == LoraFileLayout.DiffusersOld ? 1.0 : 2.0, l.Scale));
    }

    [Fact]
    public void Layers_of_different_rank_and_alpha_fold_their_scale_into_B_in_the_peft_layout()
    {
        using var scope = NewDisposeScope();
        var pipe = LoraTests.Sd1();
        var x = LoraTests.Inputs(pipe);
        const string a = "mid_block.attentions.0.transformer_blocks.0.attn1.to_v", b = "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_q";
        using var lora = LoraAdapter.Attach(pipe.Unet, [new LoraTarget(a, 2, 4), new LoraTarget(b, 4, 2)]);   // scales 2 and 0.5
        LoraTests.Randomise(lora, 13);
        var adapted = LoraTests.Forward(pipe, x);
        var file = LoraFile.Save(lora, Path.Combine(TestPaths.NewTempDir("lora-mixed"), "mixed.safetensors"));
        Assert.False(SafeTensors.ReadHeader(file).Metadata.ContainsKey(LoraFile.MetadataKey));   // diffusers then takes alpha = r per layer
        var fresh = LoraTests.Sd1("lora-mixed-reload");
        using var loaded = LoraFile.Load(file, fresh.Unet);
        Assert.Equal((2, 1.0), (loaded.Layers[a].Rank, loaded.Layers[a].Scale));
        Assert.Equal((4, 1.0), (loaded.Layers[b].Rank, loaded.Layers[b].Scale));
        Assert.True(Same(adapted, LoraTests.Forward(fresh, x)), "folding the scales into B changed the outputs");
    }

    private static string WriteFile(Dictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, string name = LoraFile.FileName)
    {
        var file = Path.Combine(TestPaths.NewTempDir("lora-handmade"), name);
        SafeTensors.Save(file, tensors, metadata);
        return file;
    }

    [Fact]
    public void Files_written_key_by_key_in_each_layout_load_onto_the_named_layers()
    {
        using var scope = NewDisposeScope();
        var pipe = LoraTests.Sd1();
        // mid block: 32 channels, context 32; down level 0: 16 channels.
        var peft = WriteFile(new()
        {
            ["unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight"] = randn(3, 32),
            ["unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight"] = randn(32, 3),
            ["unet.down_blocks.0.attentions.1.proj_in.lora_A.weight"] = randn(2, 16, 1, 1),
            ["unet.down_blocks.0.attentions.1.proj_in.lora_B.weight"] = randn(16, 2, 1, 1),
        }, new Dictionary<string, string> { ["format"] = "pt", [LoraFile.MetadataKey] = "{\"unet.r\": 3, \"unet.lora_alpha\": 6, \"unet.alpha_pattern\": {\"proj_in\": 1}}" });
        using (var a = LoraFile.Load(peft, pipe.Unet))
        {
            Assert.Equal(["down_blocks.0.attentions.1.proj_in", "mid_block.attentions.0.transformer_blocks.0.attn2.to_k"], a.Layers.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(2.0, a.Layers["mid_block.attentions.0.transformer_blocks.0.attn2.to_k"].Scale);
            Assert.Equal(0.5, a.Layers["down_blocks.0.attentions.1.proj_in"].Scale);
        }

        var old = WriteFile(new()
        {
            ["down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight"] = randn(4, 32),
            ["down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight"] = randn(32, 4),
            ["unet.up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_v.lora.down.weight"] = randn(4, 32),   // the 0.21-0.24 spelling
            ["unet.up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_v.lora.up.weight"] = randn(32, 4),
        });
        using (var a = LoraFile.Load(old, pipe.Unet))
        {
            Assert.Equal(["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0", "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_v"],
                a.Layers.Keys.Order(StringComparer.Ordinal));
            Assert.All(a.Layers.Values, l => Assert.Equal(1.0, l.Scale));
        }

        var kohya = WriteFile(new()
        {
            ["lora_unet_up_blocks_2_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"] = randn(8, 16).to(ScalarType.Float16),
            ["lora_unet_up_blocks_2_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight"] = randn(16, 8).to(ScalarType.Float16),
            ["lora_unet_up_blocks_2_attentions_0_transformer_blocks_0_attn1_to_q.alpha"] = tensor(4f).to(ScalarType.Float16),
            ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k.lora_down.weight"] = randn(2, 16),
            ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k.lora_up.weight"] = randn(16, 2),
        });
        using (var a = LoraFile.Load(kohya, pipe.Unet))
        {
            Assert.Equal(0.5, a.Layers["up_blocks.2.attentions.0.transformer_blocks.0.attn1.to_q"].Scale);
            Assert.Equal(1.0, a.Layers["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k"].Scale);   // no alpha: alpha = r
            Assert.Equal(ScalarType.Float32, a.Layers["up_blocks.2.attentions.0.transformer_blocks.0.attn1.to_q"].Down.dtype);
        }
    }

    [Fact]
    public void Malformed_files_are_refused_with_every_problem_named()
    {
        using var scope = NewDisposeScope();
        var pipe = LoraTests.Sd1();
        const string q = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
        const string k = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k";
        const string v = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v";
        var unknown = WriteFile(new()
        {
            [$"{q}.lora_A.weight"] = randn(2, 16), [$"{q}.lora_B.weight"] = randn(16, 2),
            ["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_qq.lora_A.weight"] = randn(2, 16),
            ["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"] = randn(2, 32),
            ["unet.down_blocks.0.attentions.0.norm.lora_A.weight"] = randn(2, 16),
        });
        var e = Assert.Throws<InvalidDataException>(() => LoraFile.Load(unknown, pipe.Unet));
        Assert.Contains("3 key(s)", e.Message);
        Assert.Contains("attn1.to_qq.lora_A.weight", e.Message);
        Assert.Contains("text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight", e.Message);
        Assert.Contains("unet.down_blocks.0.attentions.0.norm.lora_A.weight", e.Message);
        Assert.Contains(unknown, e.Message);

        var bad = WriteFile(new()
        {
            [$"{q}.lora_A.weight"] = randn(2, 16), [$"{q}.lora_B.weight"] = randn(16, 3),   // rank 2 vs 3
            [$"{k}.lora_A.weight"] = randn(2, 16),                                          // no up
            [$"{v}.lora_A.weight"] = randn(2, 24), [$"{v}.lora_B.weight"] = randn(16, 2),   // 24 inputs, the layer takes 16
        });
        e = Assert.Throws<InvalidDataException>(() => LoraFile.Load(bad, pipe.Unet));
        Assert.Contains("rank mismatch", e.Message);
        Assert.Contains($"'{q}.lora_A.weight' has rank 2", e.Message);
        Assert.Contains($"'{k}.lora_A.weight' has no up weight", e.Message);
        Assert.Contains($"'{v}.lora_A.weight' has shape [2, 24]; expected [r, 16]", e.Message);

        var kohyaNoDown = WriteFile(new()
        {
            ["lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_q.lora_up.weight"] = randn(32, 2),
            ["lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_q.alpha"] = tensor(2f),
            ["lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"] = randn(2, 32),
        });
        e = Assert.Throws<InvalidDataException>(() => LoraFile.Load(kohyaNoDown, pipe.Unet));
        Assert.Contains("has no down weight", e.Message);
        Assert.Contains("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", e.Message);

        var none = WriteFile(new() { ["conv_in.weight"] = randn(16, 4, 3, 3) });
        Assert.Contains("no LoRA keys found", Assert.Throws<InvalidDataException>(() => LoraFile.Load(none, pipe.Unet)).Message);
        var pickle = Path.Combine(TestPaths.NewTempDir("lora-pickle"), "pytorch_lora_weights.bin");
        File.WriteAllBytes(pickle, [0x80, 0x02]);
        Assert.Contains("pickle", Assert.Throws<InvalidDataException>(() => LoraFile.Load(pickle, pipe.Unet)).Message);
        Assert.Throws<FileNotFoundException>(() => LoraFile.Load(Path.Combine(TestPaths.NewTempDir("lora-none"), "missing.safetensors"), pipe.Unet));
    }
}
