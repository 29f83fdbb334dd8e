using RoentGen.Diffusion;
using RoentGen.Text;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

/// <summary>Untrained 16-px text-to-image pipelines for tests that need a whole pipeline but no learned weights.</summary>
internal static class TinyPipelines
{
    /// <summary>The prompts the tokenizer learns when a test gives none.</summary>
    public static readonly string[] DefaultCorpus = ["small left pleural effusion", "no pneumothorax", "cardiomegaly"];

    /// <summary>
    /// <see cref="LdmExperimentConfig.Tiny"/> at 16 px: a BPE tokenizer trained on <paramref name="corpus"/> (300 tokens), then
    /// the VAE, UNet and text encoder built in that order after <c>manual_seed(seed)</c>, so a seed gives the same weights.
    /// </summary>
    public static TextToImagePipeline Untrained(long seed, IEnumerable<string>? corpus = null)
    {
        var cfg = LdmExperimentConfig.Tiny with { ImageSize = 16 };
        manual_seed(seed);
        var tokenizer = BpeTokenizer.Train(corpus ?? DefaultCorpus, 300);
        var textCfg = cfg.Text with { VocabSize = tokenizer.VocabSize, EndTokenId = tokenizer.EndId, MaxPositions = cfg.MaxTokens };
        var vae = new AutoencoderKL(cfg.Vae);
        var unet = new UNet2DConditionModel(cfg.Unet with { InChannels = cfg.Vae.LatentChannels, OutChannels = cfg.Vae.LatentChannels, CrossAttentionDim = textCfg.HiddenSize });
        var text = new ClipTextModel(textCfg);
        return new TextToImagePipeline(vae, unet, text, tokenizer, new NoiseSchedule(cfg.Schedule), cfg.LatentSize, cfg.MaxTokens);
    }
}
