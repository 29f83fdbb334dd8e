using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Interop;
using RoentGen.Interop.Diffusers;
using RoentGen.Text;
using static TorchSharp.torch;

namespace RoentGen.Tests.Interop.Diffusers;

/// <summary><c>roentgen weights tokenize|inspect</c> and <see cref="DiffusersFolder"/>: real fixtures where present, tiny written folders always.</summary>
[Collection(ProcessStateCollection.Name)] // the verbs write to Console.Out / Console.Error, which these tests swap
public class WeightsCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (new RootCommand("test") { WeightsCommand.Build() }.Parse(["weights", .. args]).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    private static string Fixture(string model)
    {
        Skip.If(TestPaths.StableDiffusionFixtures is null, "../shared/fixtures/stable-diffusion is not beside this clone");
        return Path.Combine(TestPaths.StableDiffusionFixtures!, model);
    }

    private static string Lines(params string[] lines)
    {
        var f = Path.Combine(TestPaths.NewTempDir("tok-in"), "texts.txt");
        File.WriteAllText(f, string.Join("\n", lines) + "\n");
        return f;
    }

    [SkippableFact]
    public void Tokenize_prints_one_json_array_per_line_untruncated_unless_asked()
    {
        var input = Lines("a photo of a cat", "", "Right apical pneumothorax.");
        var (code, output, err) = Run("tokenize", Fixture("sd-v1-4"), "--in", input);
        Assert.True(code == 0, err);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<int[]>(l)!).ToArray();
        Assert.Equal(3, rows.Length);
        Assert.Equal([49406, 320, 1125, 539, 320, 2368, 49407], rows[0]);
        Assert.Equal([49406, 49407], rows[1]);
        Assert.Equal([49406, 1155, 688, 1110, 28714, 617, 4130, 9203, 269, 49407], rows[2]);

        var (code2, padded, _) = Run("tokenize", Path.Combine(Fixture("sd-2-1-base"), "tokenizer"), "--in", input, "--max-length", "8", "--pad");
        Assert.Equal(0, code2);
        var p = padded.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<int[]>(l)!).ToArray();
        Assert.Equal([49406, 320, 1125, 539, 320, 2368, 49407, 0], p[0]);
        Assert.Equal([49406, 49407, 0, 0, 0, 0, 0, 0], p[1]);
        Assert.Equal([49406, 1155, 688, 1110, 28714, 617, 4130, 49407], p[2]);     // cut to 8, the end token kept
        var (code3, full, _) = Run("tokenize", Fixture("sd-v1-4"), "--in", input, "--pad");
        Assert.Equal(0, code3);
        Assert.All(full.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.Equal(77, JsonSerializer.Deserialize<int[]>(l)!.Length));
    }

    [Fact]
    public void Tokenize_errors_name_the_missing_file_and_exit_2()
    {
        var empty = TestPaths.NewTempDir("no-tok");
        var (code, _, err) = Run("tokenize", empty, "--in", Lines("x"));
        Assert.Equal(2, code);
        Assert.Contains("vocab.json", err);
        var tokDir = TestPaths.NewTempDir("tok");
        BpeTokenizer.Train(["small left pleural effusion"], vocabSize: 530).Save(tokDir);
        var (code2, _, err2) = Run("tokenize", tokDir, "--in", Path.Combine(empty, "missing.txt"));
        Assert.Equal(2, code2);
        Assert.Contains("missing.txt", err2);
        var (code3, _, err3) = Run("tokenize", tokDir, "--in", Lines("x"), "--max-length", "1");
        Assert.Equal(2, code3);
        Assert.Contains("--max-length", err3);
        var (code4, _, err4) = Run("tokenize", tokDir, "--in", Lines("x"), "--pad");
        Assert.Equal(2, code4);                                        // no model_max_length in a plain vocab folder
        Assert.Contains("--pad", err4);
        var (code5, out5, _) = Run("tokenize", tokDir, "--in", Lines("Small effusion"));
        Assert.Equal(0, code5);
        Assert.StartsWith("[", out5);
    }

    [SkippableFact]
    public void Inspect_of_the_real_folders_reports_components_counts_and_no_unknown_fields()
    {
        var v14 = DiffusersFolder.Inspect(Fixture("sd-v1-4"));
        Assert.Equal(859_520_964, v14.Components.Single(c => c.Name == "unet").ParametersFromConfig);
        Assert.Equal(83_653_863, v14.Components.Single(c => c.Name == "vae").ParametersFromConfig);
        Assert.Equal(123_060_480, v14.Components.Single(c => c.Name == "text_encoder").ParametersFromConfig);
        Assert.Empty(v14.Unknown);
        Assert.Empty(v14.Unsupported);
        Assert.Empty(v14.Refused);
        Assert.False(v14.Components.Single(c => c.Name == "safety_checker").Read);
        Assert.Equal(49407, v14.Tokenizer!.PadId);
        var v21 = DiffusersFolder.Inspect(Fixture("sd-2-1-base"));
        Assert.Equal(0, v21.Tokenizer!.PadId);
        Assert.Empty(v21.Unknown);
        var json = Path.Combine(TestPaths.NewTempDir("inspect"), "sd21.json");
        var (code, output, err) = Run("inspect", Fixture("sd-2-1-base"), "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("unknown config fields: none", output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(1024, doc.RootElement.GetProperty("unet").GetProperty("cross_attention_dim").GetInt32());
    }

    // A tiny diffusers folder: configs (one with an unknown key), a tokenizer, F16/F32 weights, a sharded set, a pickle file.
    private static string TinyFolder()
    {
        var root = TestPaths.NewTempDir("tiny-sd");
        void Write(string rel, string text)
        {
            var p = Path.Combine(root, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(p)!);
            File.WriteAllText(p, text);
        }
        Write("model_index.json", """
            {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0", "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "DDIMScheduler"], "safety_checker": [null, null], "requires_safety_checker": false}
            """);
        Write("unet/config.json", """
            {"_class_name": "UNet2DConditionModel", "block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "attention_head_dim": 8, "cross_attention_dim": 16, "norm_num_groups": 8,
             "layers_per_block": 1, "sparkle": true}
            """);
        Write("vae/config.json", """
            {"_class_name": "AutoencoderKL", "block_out_channels": [8, 16], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
             "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "norm_num_groups": 4, "latent_channels": 4}
            """);
        Write("text_encoder/config.json", """{"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 600, "hidden_act": "gelu"}""");
        Write("scheduler/scheduler_config.json", """{"_class_name": "DDIMScheduler", "beta_schedule": "scaled_linear", "prediction_type": "v_prediction", "timestep_spacing": "trailing"}""");
        BpeTokenizer.Train(["small left pleural effusion"], vocabSize: 530).Save(Path.Combine(root, "tokenizer"));
        using (NewDisposeScope())
        {
            SafeTensors.Save(Path.Combine(root, "text_encoder", "model.safetensors"), new Dictionary<string, Tensor>
            {
                ["a"] = zeros([3, 4], ScalarType.Float16),
                ["b"] = zeros([5], ScalarType.Float32),
                ["position_ids"] = zeros([1, 6], ScalarType.Int64),
            });
            SafeTensors.Save(Path.Combine(root, "unet", "diffusion_pytorch_model-00001-of-00002.safetensors"), new Dictionary<string, Tensor> { ["x"] = zeros([2, 2], ScalarType.BFloat16) });
            SafeTensors.Save(Path.Combine(root, "unet", "diffusion_pytorch_model-00002-of-00002.safetensors"), new Dictionary<string, Tensor> { ["y"] = zeros([7], ScalarType.BFloat16) });
        }
        Write("unet/diffusion_pytorch_model.safetensors.index.json", """
            {"metadata": {"total_size": 22}, "weight_map": {"x": "diffusion_pytorch_model-00001-of-00002.safetensors", "y": "diffusion_pytorch_model-00002-of-00002.safetensors"}}
            """);
        Write("vae/diffusion_pytorch_model.bin", "not really a pickle");
        using (NewDisposeScope())
            SafeTensors.Save(Path.Combine(root, "model.safetensors"), new Dictionary<string, Tensor> { ["model.diffusion_model.out.2.bias"] = zeros([4], ScalarType.Float16) });
        return root;
    }

    [Fact]
    public void Inspect_reads_headers_groups_shards_reports_unknown_fields_and_refuses_pickles()
    {
        var root = TinyFolder();
        var s = DiffusersFolder.Inspect(root);
        var text = s.Components.Single(c => c.Name == "text_encoder");
        var w = Assert.Single(text.WeightFiles);
        Assert.Equal((3, 17L, 6L), (w.Tensors, w.Parameters, w.OtherElements));   // an int64 buffer is not a parameter
        Assert.Equal(new Dictionary<string, long> { ["F16"] = 12, ["F32"] = 5, ["I64"] = 6 }, w.ElementsByDType);
        Assert.Equal(ParameterCounts.ClipText(s.TextEncoder!), text.ParametersFromConfig);
        var unet = Assert.Single(s.Components.Single(c => c.Name == "unet").WeightFiles);   // the shards are one set, not three files
        Assert.Equal((2, 11L), (unet.Shards.Count, unet.Parameters));
        Assert.Equal(["unet/config.json: sparkle"], s.Unknown.Select(u => Path.GetRelativePath(root, u.Split(':')[0]).Replace('\\', '/') + ":" + u.Split(':')[1]));
        var refusal = Assert.Single(s.Refused);
        Assert.Contains("diffusion_pytorch_model.bin", refusal);
        Assert.Contains("arbitrary code", refusal);
        Assert.Contains("safe_serialization=True", refusal);
        Assert.Equal(4L, Assert.Single(s.RootWeightFiles).Parameters);
        Assert.Equal(("v_prediction", "trailing", true), (s.Scheduler!.PredictionType, s.Scheduler.TimestepSpacing, s.Scheduler.SetAlphaToOneOrDefault));

        var json = Path.Combine(root, "summary.json");
        var (code, output, err) = Run("inspect", root, "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("sparkle", output);
        Assert.Contains("refused", output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(1, doc.RootElement.GetProperty("refused").GetArrayLength());
        Assert.Equal("sparkle", doc.RootElement.GetProperty("components").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "unet")
            .GetProperty("report").GetProperty("unknown_keys")[0].GetString());
    }

    [Fact]
    public void Inspect_errors_name_what_is_missing_or_malformed_and_exit_2()
    {
        var (c1, _, e1) = Run("inspect", TestPaths.NewTempDir("no-index"));
        Assert.Equal(2, c1);
        Assert.Contains("model_index.json", e1);

        var root = TinyFolder();
        File.Delete(Path.Combine(root, "unet", "diffusion_pytorch_model-00002-of-00002.safetensors"));
        var (c2, _, e2) = Run("inspect", root);
        Assert.Equal(2, c2);
        Assert.Contains("00002-of-00002", e2);
        Assert.Contains("does not exist", e2);

        root = TinyFolder();
        var vaeConfig = Path.Combine(root, "vae", "config.json");
        File.WriteAllText(vaeConfig, File.ReadAllText(vaeConfig)[..40]);
        var (c3, _, e3) = Run("inspect", root);
        Assert.Equal(2, c3);
        Assert.Contains("config.json: not valid JSON", e3);

        root = TinyFolder();
        Directory.Delete(Path.Combine(root, "scheduler"), recursive: true);
        var (c4, _, e4) = Run("inspect", root);
        Assert.Equal(2, c4);
        Assert.Contains("scheduler", e4);
        Assert.Contains("missing", e4);

        root = TinyFolder();
        File.WriteAllText(Path.Combine(root, "unet", "config.json"), """{"block_out_channels": [32], "down_block_types": ["DownBlock2D"], "up_block_types": ["UpBlock2D"], "layers_per_block": 1.5}""");
        var (c5, _, e5) = Run("inspect", root);
        Assert.Equal(2, c5);
        Assert.Contains("'layers_per_block' must be a whole number, got 1.5", e5);
    }

    [Fact]
    public void Export_writes_a_diffusers_folder_that_samples_like_the_trained_model()
    {
        using var scope = NewDisposeScope();
        var cfg = RoentGen.Diffusion.LdmExperimentConfig.Tiny with { ImageSize = 16 };
        manual_seed(2);
        var tokenizer = BpeTokenizer.Train(["small left pleural effusion", "no pneumothorax", "cardiomegaly"], 300);
        var textCfg = cfg.Text with { VocabSize = tokenizer.VocabSize, EndTokenId = tokenizer.EndId, MaxPositions = cfg.MaxTokens };
        var vae = new RoentGen.Diffusion.AutoencoderKL(cfg.Vae with { ScalingFactor = 0.7 });
        var unet = new RoentGen.Diffusion.UNet2DConditionModel(cfg.Unet with { InChannels = 4, OutChannels = 4, CrossAttentionDim = textCfg.HiddenSize });
        var model = new RoentGen.Diffusion.LatentDiffusionModel(vae, new ClipTextModel(textCfg), tokenizer, unet, cfg.Schedule, cfg.LatentSize, cfg.MaxTokens);
        var run = TestPaths.NewTempDir("ldm-run");
        model.Save(run);
        var output = Path.Combine(TestPaths.NewTempDir("export"), "sd");

        var (code, stdout, err) = Run("export", run, "--out", output);
        Assert.True(code == 0, err);
        Assert.Contains(output, stdout);
        Assert.True(DiffusersPipelineLoader.IsDiffusersFolder(output));
        Assert.False(DiffusersPipelineLoader.IsDiffusersFolder(run));
        var request = new RoentGen.Diffusion.SampleRequest { Prompts = ["small left pleural effusion"], Steps = 2, Seed = 1 };
        var expected = RoentGen.Diffusion.LatentDiffusionRuns.LoadPipeline(run).Sample(request);
        var exported = RoentGen.Diffusion.LatentDiffusionRuns.LoadPipeline(output);   // dispatches to the diffusers loader
        Assert.Equal(0.7, exported.Vae.Config.ScalingFactor);
        Assert.True(expected.eq(exported.Sample(request)).all().item<bool>());

        var half = Path.Combine(TestPaths.NewTempDir("export"), "sd16");
        var (code2, _, err2) = Run("export", run, "--out", half, "--dtype", "float16", "--variant", "fp16");
        Assert.True(code2 == 0, err2);
        Assert.All(SafeTensors.ReadHeader(Path.Combine(half, "unet", "diffusion_pytorch_model.fp16.safetensors")).Tensors, t => Assert.Equal("F16", t.DType));
        Assert.True(DiffusersPipelineLoader.Load(half, new DiffusersLoadOptions { Variant = "fp16" }).Sample(request).isfinite().all().item<bool>());

        var (code3, _, err3) = Run("export", run, "--out", half, "--dtype", "int8");
        Assert.Equal(2, code3);
        Assert.Contains("--dtype 'int8': expected float32, float16 or bfloat16", err3);
        var (code4, _, err4) = Run("export", run, "--out", half, "--variant", "../x");
        Assert.Equal(2, code4);
        Assert.Contains("variant '../x' must be letters", err4);

        // A diffusers folder whose weights do not match its configs: a user error (exit 2), one line naming the key.
        var unetFile = Path.Combine(output, "unet", "diffusion_pytorch_model.safetensors");
        var tensors = SafeTensors.Load(unetFile).Tensors;
        tensors.Remove("conv_out.bias");
        SafeTensors.Save(unetFile, tensors);
        var (code5, _, err5) = Run("export", output, "--out", Path.Combine(TestPaths.NewTempDir("export"), "again"));
        Assert.Equal(2, code5);
        Assert.Contains("conv_out.bias", err5);
        Assert.Single(err5.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
