using RoentGen.Diffusion;
using RoentGen.Text;
using static TorchSharp.torch;

namespace RoentGen.Interop.Diffusers;

/// <summary>
/// A Stable Diffusion 1.x-shaped pipeline at tiny widths with random weights: the same layout as SD 1.x (cross-attention
/// down blocks then a plain one, 1x1-convolution transformer projections, a fixed number of heads at every level,
/// quick-GELU CLIP text encoder, 3-channel VAE with SD's scaling factor 0.18215, scaled-linear betas with steps_offset 1),
/// for notebooks and checks where no real weights are at hand. Its samples are noise; it exercises every code path that
/// real weights take. Latents are 8 x 8, images 32 x 32.
/// </summary>
public static class RandomStableDiffusion
{
    /// <summary>The prompts its tokenizer learns its merges from (chest X-ray report phrases).</summary>
    public static readonly IReadOnlyList<string> Corpus =
    [
        "small left pleural effusion", "no acute cardiopulmonary process", "right upper lobe pneumonia",
        "cardiomegaly with mild pulmonary edema", "left lower lobe atelectasis", "no pneumothorax", "a chest x-ray",
        "the lungs are clear", "heart size is normal", "large right pleural effusion", "there is no consolidation",
        "bibasilar opacities", "the cardiomediastinal silhouette is within normal limits", "mild cardiomegaly",
    ];

    /// <summary>Latent side (the UNet's sample_size).</summary>
    public const int LatentSize = 8;
    /// <summary>Tokens per prompt.</summary>
    public const int MaxTokens = 32;

    /// <summary>Builds the pipeline; all weights are drawn after <c>manual_seed(seed)</c>.</summary>
    public static TextToImagePipeline Create(long seed = 1)
    {
        var tokenizer = BpeTokenizer.Train(Corpus, 400);
        manual_seed(seed);
        var unet = new UNet2DConditionModel(new UNetConfig
        {
            InChannels = 4, OutChannels = 4, BlockOutChannels = [32, 64, 64], CrossAttentionLevels = [true, true, false],
            LayersPerBlock = 1, HeadsPerLevel = [2, 2, 2], AttentionHeadDim = 16, CrossAttentionDim = 32, NormGroups = 8,
        });
        var vae = new AutoencoderKL(new VaeConfig
        {
            InChannels = 3, OutChannels = 3, LatentChannels = 4, BlockOutChannels = [16, 32, 32], LayersPerBlock = 1, NormGroups = 8,
            ScalingFactor = AutoencoderKLConfig.DefaultScalingFactor,
        });
        var text = new ClipTextModel(new RoentGen.Text.ClipTextConfig
        {
            VocabSize = tokenizer.VocabSize, MaxPositions = MaxTokens, HiddenSize = 32, Layers = 2, Heads = 2, IntermediateSize = 64,
            EndTokenId = tokenizer.EndId, HiddenAct = "quick_gelu",
        });
        var schedule = new NoiseSchedule(new NoiseScheduleConfig
        {
            TrainTimesteps = 1000, BetaStart = 0.00085, BetaEnd = 0.012, Schedule = BetaSchedule.ScaledLinear, Prediction = PredictionType.Epsilon,
            Spacing = TimestepSpacing.Leading, StepsOffset = 1, SetAlphaToOne = false,
        });
        foreach (var m in new TorchSharp.torch.nn.Module[] { unet, vae, text }) m.eval();
        return new TextToImagePipeline(vae, unet, text, tokenizer, schedule, LatentSize, MaxTokens);
    }

    /// <summary>Writes the pipeline of <see cref="Create"/> as a diffusers folder (<see cref="DiffusersPipelineWriter"/>) and returns the folder.</summary>
    public static string Write(string dir, long seed = 1)
    {
        var pipe = Create(seed);
        DiffusersPipelineWriter.Save(pipe, dir);
        foreach (var m in new TorchSharp.torch.nn.Module[] { pipe.Unet, pipe.Vae, pipe.TextEncoder }) m.Dispose();
        return Path.GetFullPath(dir);
    }
}
