using RoentGen.Diffusion;
using RoentGen.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

/// <summary>A tiny latent diffusion model trained a few steps on phantoms, shared by the prompt-to-prompt tests.</summary>
public sealed class TinyTrainedLdmFixture : IDisposable
{
    /// <summary>Trains (VAE 2 steps, UNet 3 steps, 32 px) into a temporary folder.</summary>
    public TinyTrainedLdmFixture()
    {
        Config = LdmExperimentConfig.Tiny with { VaeSteps = 2, LdmSteps = 3 };
        Dir = TestPaths.NewTempDir("p2p-ldm");
        Model = LatentDiffusionRuns.EnsureTrained(Config, LdmTrainingData.FromPhantoms(Config), Path.Combine(Dir, "experiment")).Model;
        Pipeline = new TextToImagePipeline(Model);
    }

    /// <summary>The experiment's config.</summary>
    public LdmExperimentConfig Config { get; }
    /// <summary>The run folder.</summary>
    public string Dir { get; }
    /// <summary>The trained model.</summary>
    public LatentDiffusionModel Model { get; }
    /// <summary>A pipeline over it.</summary>
    public TextToImagePipeline Pipeline { get; }

    /// <inheritdoc />
    public void Dispose() { }
}

/// <summary>Prompt-to-prompt controllers, editing and null-text inversion on a tiny trained model.</summary>
[Collection(ProcessStateCollection.Name)]
public class PromptToPromptTests(TinyTrainedLdmFixture fx) : IClassFixture<TinyTrainedLdmFixture>
{
    private const string Source = "small left pleural effusion";
    private static PromptToPromptOptions Options => new() { Steps = 6, GuidanceScale = 4, Seed = 3 };

    /// <summary>The source with "left" replaced by a word of the same token count under the trained tokenizer (replace needs it).</summary>
    private string ReplaceEdit
    {
        get
        {
            var tok = fx.Pipeline.Tokenizer;
            int n = tok.Encode("left").Length;
            var word = new[] { "right", "upper", "lower", "large", "basal", "mild", "apical", "lung", "the", "no" }.FirstOrDefault(w => tok.Encode(w).Length == n);
            Assert.True(word is not null, $"no replacement word with {n} tokens like 'left'");
            return Source.Replace("left", word);
        }
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static float MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Fact]
    public void Global_alignment_matches_hand_aligned_sequences()
    {
        // source 1 2 3 4, edit 1 9 2 3 4: 9 is new, the rest aligned in order.
        Assert.Equal([(0, 0), (1, 2), (2, 3), (3, 4)], TokenAlignment.Align([1, 2, 3, 4], [1, 9, 2, 3, 4]));
        // A removed token: source 1 2 3, edit 1 3.
        Assert.Equal([(0, 0), (2, 1)], TokenAlignment.Align([1, 2, 3], [1, 3]));
    }

    [Fact]
    public void Refine_maps_kept_words_to_their_source_tokens_and_new_words_to_none()
    {
        var tok = fx.Pipeline.Tokenizer;
        int max = fx.Pipeline.MaxTokens;
        const string edit = "large small left pleural effusion";
        var a = TokenAlignment.Refine(tok, Source, edit, max);
        int added = tok.Encode("large").Length;
        Assert.Equal(0, a.SourceIndex[0]);                                   // start token
        for (int j = 1; j <= added; j++) { Assert.Equal(-1, a.SourceIndex[j]); Assert.Equal(0f, a.Aligned[j]); }
        int sourceLength = tok.EncodeWithSpecialTokens(Source, max).Length;
        for (int i = 1; i < sourceLength; i++) { Assert.Equal(i, a.SourceIndex[i + added]); Assert.Equal(1f, a.Aligned[i + added]); }
        // Padding after the edit's end maps to itself.
        int editLength = tok.EncodeWithSpecialTokens(edit, max).Length;
        Assert.Equal(max - 1, a.SourceIndex[max - 1]);
        Assert.True(editLength < max);
        var ex = Assert.Throws<ArgumentException>(() => TokenAlignment.Replace(tok, Source, edit, max));
        Assert.Contains("same token count", ex.Message);
    }

    [Fact]
    public void Controller_attaches_to_every_cross_attention_layer_counted_from_the_config()
    {
        var cfg = fx.Model.Unet.Config;
        int Depth(int level) => cfg.TransformerLayersPerLevel?[level] ?? 1;
        int expected = 0;
        for (int level = 0; level < cfg.BlockOutChannels.Length; level++)
            if (cfg.CrossAttentionLevels[level]) expected += (cfg.LayersPerBlock + cfg.LayersPerBlock + 1) * Depth(level);
        if (cfg.MidBlockAttention) expected += Depth(cfg.BlockOutChannels.Length - 1);
        Assert.True(expected > 0);
        Assert.Equal(expected, fx.Model.Unet.AttentionModules.Count(a => a.IsCrossAttention));

        var result = new PromptToPromptEditor(fx.Pipeline).Edit(Source, [ReplaceEdit], Options with { Kind = PromptEditKind.Replace });
        Assert.Equal(expected, result.Controller.CrossAttentionLayers.Count);
        Assert.Equal(fx.Model.Unet.AttentionModules.Count(a => !a.IsCrossAttention), result.Controller.SelfAttentionLayers.Count);
        // The previous processors are back after the edit.
        Assert.All(fx.Model.Unet.AttentionModules, a => Assert.Same(ScaledDotProductProcessor.Instance, a.Processor));
    }

    [Fact]
    public void Edit_equal_to_the_source_gives_the_plain_sample()
    {
        using var scope = NewDisposeScope();
        var o = Options;
        var noise = fx.Pipeline.DrawNoise(1, o.Seed);
        var plain = fx.Pipeline.Sample(new SampleRequest
        {
            Prompts = [Source], Steps = o.Steps, GuidanceScale = o.GuidanceScale, Scheduler = SchedulerKind.Ddim, Latents = noise,
        });
        foreach (var kind in new[] { PromptEditKind.Replace, PromptEditKind.Refine })
        {
            var edit = new PromptToPromptEditor(fx.Pipeline).Edit(Source, [Source], o with { Kind = kind });
            Assert.Equal([2L, 1, fx.Config.ImageSize, fx.Config.ImageSize], edit.Images.shape);
            // Explicit softmax(QKᵀ/√d)V instead of the fused kernel and a batch of 4 rows instead of 2: float32 rounding only.
            Assert.True(MaxDiff(edit.Images[0], plain[0]) < 1e-4f, $"{kind}: source row differs from the plain sample by {MaxDiff(edit.Images[0], plain[0])}");
            Assert.True(MaxDiff(edit.Images[1], plain[0]) < 1e-4f, $"{kind}: edit row differs from the plain sample by {MaxDiff(edit.Images[1], plain[0])}");
        }
    }

    [Fact]
    public void Replace_over_all_steps_copies_the_source_maps_and_reweight_scales_its_words()
    {
        using var scope = NewDisposeScope();
        var edit = ReplaceEdit;
        var word = edit.Split(' ')[1];
        int calls = 0, reweighted = 0;
        var tok = fx.Pipeline.Tokenizer;
        var words = TokenAlignment.TokensOfWord(tok, edit, word, fx.Pipeline.MaxTokens);
        Assert.NotEmpty(words);
        var o = Options with { Kind = PromptEditKind.Replace, CrossReplaceSteps = 1 };
        var controller = new PromptToPromptController(tok, fx.Pipeline.MaxTokens, fx.Pipeline.LatentSize, Source, [edit], o)
        {
            Inspect = (call, maps) =>
            {
                if (!call.IsCrossAttention) return;
                calls++;
                Assert.True(Same(maps[1], maps[0]), $"{call.Name} step {call.Sampling!.Step}: the edit's cross-attention is not the source's");
            },
        };
        new PromptToPromptEditor(fx.Pipeline).Edit(Source, [edit], o, controller: controller);
        Assert.Equal(o.Steps * fx.Model.Unet.AttentionModules.Count(a => a.IsCrossAttention), calls);

        // Reweight the new word by 2.5: those columns are the source's times 2.5, the others the source's.
        var ow = o with { Reweight = new Dictionary<string, double> { [word] = 2.5 } };
        var column = new float[fx.Pipeline.MaxTokens];
        foreach (int w in words) column[w] = 1;
        var mask = tensor(column);
        var weighted = new PromptToPromptController(tok, fx.Pipeline.MaxTokens, fx.Pipeline.LatentSize, Source, [edit], ow)
        {
            Inspect = (call, maps) =>
            {
                if (!call.IsCrossAttention) return;
                reweighted++;
                var expected = maps[0] * (1 + 1.5 * mask);
                Assert.True(maps[1].allclose(expected, rtol: 1e-6, atol: 0), $"{call.Name}: reweighted map is not the source's scaled on the word's tokens");
                Assert.True(maps[1].index_select(-1, tensor(words.Select(i => (long)i).ToArray())).sum().item<float>() > 0);
            },
        };
        new PromptToPromptEditor(fx.Pipeline).Edit(Source, [edit], ow, controller: weighted);
        Assert.True(reweighted > 0);
    }

    [Fact]
    public void Without_injection_the_edit_keeps_its_own_maps_and_self_attention_is_injected_only_in_its_window()
    {
        using var scope = NewDisposeScope();
        var edit = ReplaceEdit;
        var word = edit.Split(' ')[1];
        var o = Options with { Kind = PromptEditKind.Replace, CrossReplaceSteps = 0, SelfReplaceSteps = 0.5 };
        bool crossDiffers = false;
        var selfSame = new Dictionary<int, bool>();
        var controller = new PromptToPromptController(fx.Pipeline.Tokenizer, fx.Pipeline.MaxTokens, fx.Pipeline.LatentSize, Source, [edit], o)
        {
            Inspect = (call, maps) =>
            {
                int step = call.Sampling!.Step;
                if (call.IsCrossAttention) crossDiffers |= !Same(maps[1], maps[0]);
                else if (step < 3) Assert.True(Same(maps[1], maps[0]), $"self-attention at step {step} was not injected");
                else selfSame[step] = Same(maps[1], maps[0]);
            },
        };
        new PromptToPromptEditor(fx.Pipeline).Edit(Source, [edit], o, controller: controller);
        Assert.True(crossDiffers, "with cross_replace_steps = 0 the edit's cross-attention should be its own");
        Assert.Contains(false, selfSame.Values);
    }

    [Fact]
    public void Local_blend_with_an_empty_region_keeps_the_source_image_and_editing_is_deterministic_by_seed()
    {
        using var scope = NewDisposeScope();
        var edit = ReplaceEdit;
        var word = edit.Split(' ')[1];
        var editor = new PromptToPromptEditor(fx.Pipeline);
        var o = Options with { Kind = PromptEditKind.Replace };
        var a = editor.Edit(Source, [edit], o).Images;
        Assert.True(Same(a, editor.Edit(Source, [edit], o).Images), "same seed, different images");
        Assert.False(Same(a, editor.Edit(Source, [edit], o with { Seed = 4 }).Images), "the seed was ignored");
        Assert.True(MaxDiff(a[0], a[1]) > 0, "the edit did not change the image");
        // Threshold 1: no latent pixel is above the map's maximum, so the edit row becomes the source row from the first step.
        var blended = editor.Edit(Source, [edit], o with { LocalBlend = new LocalBlendOptions { Words = [word, "left"], Threshold = 1, StartFraction = 0 } }).Images;
        Assert.True(MaxDiff(blended[0], blended[1]) < 1e-6f);
        // Threshold 0: everything is in the region, so blending changes nothing.
        var open = editor.Edit(Source, [edit], o with { LocalBlend = new LocalBlendOptions { Words = [word], Threshold = 0, StartFraction = 0 } }).Images;
        Assert.True(MaxDiff(open, a) < 1e-6f);
    }

    [Fact]
    public void Recorded_maps_have_one_map_per_prompt_and_token_at_latent_size()
    {
        var r = new PromptToPromptEditor(fx.Pipeline).Edit(Source, [ReplaceEdit], Options with { Kind = PromptEditKind.Replace, RecordMaps = true });
        var maps = r.Controller.AverageMaps!;
        Assert.Equal([2L, fx.Pipeline.MaxTokens, fx.Pipeline.LatentSize, fx.Pipeline.LatentSize], maps.shape);
        // Each query's probabilities over tokens sum to 1, so the maps summed over tokens are 1 everywhere.
        Assert.True(maps.sum([1]).allclose(ones(2, fx.Pipeline.LatentSize, fx.Pipeline.LatentSize), rtol: 1e-4, atol: 1e-4));
    }

    [Fact]
    public void Null_text_inversion_reconstructs_a_phantom_better_than_plain_ddim_inversion_at_guidance_above_one()
    {
        using var scope = NewDisposeScope();
        var real = LdmTrainingData.FromPhantoms(1, fx.Config.ImageSize, seed: 77, start: 500);
        var image = real.Images.narrow(0, 0, 1);
        var options = new NullTextOptions { Steps = 6, GuidanceScale = 4, InnerIterations = 10, LearningRate = 1e-2 };
        var r = NullTextInversion.Run(fx.Pipeline, image, real.Prompts[0], options);
        Assert.Equal(options.Steps, r.NullEmbeddings.Count);
        Assert.True(r.NullTextError < r.PlainInversionError,
            $"null-text error {r.NullTextError} is not below plain DDIM inversion's {r.PlainInversionError} at guidance {options.GuidanceScale}");
        // The edit of the inverted image with the source prompt reproduces the null-text reconstruction.
        var editor = new PromptToPromptEditor(fx.Pipeline);
        var edit = editor.Edit(real.Prompts[0], [real.Prompts[0]], new PromptToPromptOptions { Steps = options.Steps, GuidanceScale = options.GuidanceScale },
            r.StartLatent, r.NullEmbeddings);
        var target = editor.Decode(r.EncodedLatent);
        Assert.True(MaxDiff(edit.Images[0], edit.Images[1]) < 1e-4f);
        Assert.Equal(target.shape, edit.Images.narrow(0, 0, 1).shape);
    }
}
