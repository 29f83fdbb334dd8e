using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Synthetic;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>What <c>mask_model.json</c> of a saved <see cref="MaskConditionedModel"/> holds.</summary>
public sealed record MaskModelIndex
{
    /// <summary>The format's name.</summary>
    public string Format { get; init; } = MaskConditionedModel.FormatName;
    /// <summary>The format's version.</summary>
    public int Version { get; init; } = 1;
    /// <summary>The variant.</summary>
    public MaskConditioningVariant Variant { get; init; }
    /// <summary>Mask names in channel order.</summary>
    public IReadOnlyList<string> MaskChannels { get; init; } = [];
    /// <summary>ControlNet residual scale used when sampling.</summary>
    public double ConditioningScale { get; init; } = 1.0;
    /// <summary>Which part of a report is the prompt (as the base model was trained).</summary>
    public PromptSource Prompt { get; init; }
}

/// <summary>
/// A latent diffusion model that also reads masks: the frozen text-to-image model (<see cref="Base"/>) plus either a
/// <see cref="ControlNetModel"/> over its frozen UNet, or a UNet whose input is widened by one channel per mask
/// (<see cref="ConcatUnet"/>; initialised from the base UNet with zero weights on the new channels). It predicts the
/// noise from noisy latents, timesteps, text tokens and masks at image resolution; <see cref="MaskConditioningObjective"/>
/// trains it and <see cref="MaskConditioningPipeline"/> samples it.
/// </summary>
public sealed class MaskConditionedModel
{
    /// <summary>The index file's name.</summary>
    public const string IndexFile = "mask_model.json";
    /// <summary>The index's format name.</summary>
    public const string FormatName = "roentgen-mask-conditioned-diffusion";
    /// <summary>Subfolder of the base model, the ControlNet and the widened UNet.</summary>
    public const string BaseFolder = "base", ControlNetFolder = "controlnet", ConcatUnetFolder = "unet";

    private MaskConditionedModel(LatentDiffusionModel baseModel, MaskConditioningVariant variant, IReadOnlyList<string> channels,
        ControlNetModel? controlNet, UNet2DConditionModel? concatUnet, double scale, PromptSource prompt)
    {
        Base = baseModel; Variant = variant; MaskChannels = channels.ToArray(); ControlNet = controlNet; ConcatUnet = concatUnet;
        ConditioningScale = scale; Prompt = prompt;
    }

    /// <summary>The text-to-image model (frozen).</summary>
    public LatentDiffusionModel Base { get; }
    /// <summary>The variant.</summary>
    public MaskConditioningVariant Variant { get; }
    /// <summary>Mask names in channel order.</summary>
    public IReadOnlyList<string> MaskChannels { get; }
    /// <summary>The ControlNet (variant ControlNet), else null.</summary>
    public ControlNetModel? ControlNet { get; }
    /// <summary>The widened UNet (variant Concat), else null.</summary>
    public UNet2DConditionModel? ConcatUnet { get; }
    /// <summary>ControlNet: the factor on its residuals (0: the base UNet alone).</summary>
    public double ConditioningScale { get; set; }
    /// <summary>Which part of a report is the prompt.</summary>
    public PromptSource Prompt { get; }
    /// <summary>Image side in pixels.</summary>
    public int ImageSize => Base.LatentSize * Base.Vae.Config.DownsampleFactor;
    /// <summary>The trained part: the ControlNet or the widened UNet.</summary>
    public nn.Module Trainable => (nn.Module?)ControlNet ?? ConcatUnet!;

    /// <summary>
    /// A new mask-conditioned model over a trained one: a ControlNet whose encoder copies the base UNet (zero convolutions
    /// and conditioning output zero), or a UNet widened by one input channel per mask (the base UNet's weights, zeros on
    /// the new channels). Either way it starts out computing what the base model computes. The base model is frozen.
    /// </summary>
    public static MaskConditionedModel Create(LatentDiffusionModel baseModel, MaskConditioningVariant variant, IReadOnlyList<string> maskChannels,
        int conditioningWidth = 16, double conditioningScale = 1.0, PromptSource prompt = PromptSource.ImpressionAndFindings)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        foreach (var part in new[] { LdmPart.Vae, LdmPart.TextEncoder, LdmPart.Unet }) baseModel.SetTrainable(part, false);
        if (variant == MaskConditioningVariant.ControlNet)
        {
            var net = ControlNetModel.FromUnet(baseModel.Unet, maskChannels.Count, baseModel.Vae.Config.DownsampleFactor, conditioningWidth);
            return new MaskConditionedModel(baseModel, variant, maskChannels, net, null, conditioningScale, prompt);
        }
        return new MaskConditionedModel(baseModel, variant, maskChannels, null, WidenInput(baseModel.Unet, maskChannels.Count), conditioningScale, prompt);
    }

    /// <summary>
    /// A copy of <paramref name="unet"/> with <paramref name="extraChannels"/> more input channels: every weight copied,
    /// conv_in's weights on the new channels zero, so it computes the same output whatever those channels hold.
    /// </summary>
    public static UNet2DConditionModel WidenInput(UNet2DConditionModel unet, int extraChannels)
    {
        var wide = new UNet2DConditionModel(unet.Config with { InChannels = unet.Config.InChannels + extraChannels });
        var source = unet.state_dict();
        using var _ = no_grad();
        foreach (var (key, target) in wide.state_dict())
        {
            var value = source[key];
            if (key == "conv_in.weight")
            {
                target.zero_();
                target.narrow(1, 0, value.shape[1]).copy_(value);   // (C0, C_latent + M, 3, 3): the latent channels' weights
            }
            else target.copy_(value);
        }
        return wide;
    }

    /// <summary>Masks (B, M, h, w) at latent resolution: each channel's area average (the fraction of each latent cell inside).</summary>
    public static Tensor LatentMasks(Tensor masks, int latentSize) =>
        masks.shape[2] == latentSize && masks.shape[3] == latentSize ? masks.alias() : nn.functional.adaptive_avg_pool2d(masks, [latentSize, latentSize]);

    /// <summary>
    /// The noise (or v) prediction: noisy latents (B, C, h, w), timesteps (B), text tokens (B, S, D), masks (B, M, H, W) in
    /// {0, 1} at image resolution. ControlNet: the base UNet with the ControlNet's residuals times
    /// <see cref="ConditioningScale"/> (scale 0 calls the base UNet alone); Concat: the widened UNet on [latents, masks resized].
    /// </summary>
    public Tensor Predict(Tensor latents, Tensor timesteps, Tensor context, Tensor masks)
    {
        using var scope = NewDisposeScope();
        if (ConcatUnet is not null)
            return ConcatUnet.call(cat([latents, LatentMasks(masks.to(latents.dtype), (int)latents.shape[2])], 1), timesteps, context).MoveToOuterDisposeScope();
        if (ConditioningScale == 0) return Base.Unet.call(latents, timesteps, context).MoveToOuterDisposeScope();
        var residuals = ControlNet!.Forward(latents, timesteps, context, masks, ConditioningScale);
        return Base.Unet.Forward(latents, timesteps, context, residuals).MoveToOuterDisposeScope();
    }

    /// <summary>The prompt of a condition: its report as the base model's training prompts were made.</summary>
    public string PromptOf(MaskCondition condition) => PromptOf(condition, Prompt);

    /// <summary>The prompt of a condition's report under a prompt source.</summary>
    public static string PromptOf(MaskCondition condition, PromptSource source) =>
        LdmTrainingData.PromptOf(condition.Report.Impression.Trim(), condition.Report.Findings.Trim(), source).Trim();

    /// <summary>The conditions' masks (B, M, size, size) in {0, 1}, channel i the mask named <paramref name="channels"/>[i] (resized, thresholded at 0.5), zeros where a condition lacks it.</summary>
    public static Tensor MaskTensor(IReadOnlyList<MaskCondition> conditions, IReadOnlyList<string> channels, int size)
    {
        var data = new float[(long)conditions.Count * channels.Count * size * size];
        int plane = size * size;
        for (int b = 0; b < conditions.Count; b++)
            for (int c = 0; c < channels.Count; c++)
            {
                if (!conditions[b].Masks.TryGetValue(channels[c], out var mask)) continue;
                var m = mask.Width == size && mask.Height == size ? mask : ImageResize.Resize(mask, size, size);
                int o = (b * channels.Count + c) * plane;
                for (int i = 0; i < plane; i++) data[o + i] = m.Pixels[i] >= 0.5f ? 1f : 0f;
            }
        return tensor(data, [conditions.Count, channels.Count, size, size]);
    }

    /// <summary>
    /// Saves into <paramref name="dir"/>: base/ (the latent diffusion model, <see cref="LatentDiffusionModel.Save"/>),
    /// controlnet/ or unet/ (weights and config), then mask_model.json last.
    /// </summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        Base.Save(Path.Combine(dir, BaseFolder));
        if (ControlNet is not null) Checkpoint.Save(Path.Combine(dir, ControlNetFolder), ControlNet, ControlNet.Config);
        if (ConcatUnet is not null) Checkpoint.Save(Path.Combine(dir, ConcatUnetFolder), ConcatUnet, ConcatUnet.Config);
        var index = new MaskModelIndex { Variant = Variant, MaskChannels = MaskChannels, ConditioningScale = ConditioningScale, Prompt = Prompt };
        AtomicFile.WriteAllText(Path.Combine(dir, IndexFile), JsonSerializer.Serialize(index, SafeTensors.ConfigJsonOptions));
    }

    /// <summary>The folder holding mask_model.json: <paramref name="folder"/> itself or its model/ subfolder (a run folder), or null.</summary>
    public static string? Resolve(string folder)
    {
        foreach (var dir in new[] { folder, Path.Combine(folder, MaskConditioningRuns.ModelFolder) })
            if (File.Exists(Path.Combine(dir, IndexFile))) return Path.GetFullPath(dir);
        return null;
    }

    /// <summary>Loads a saved model (from its folder or from the run folder holding it); every part frozen.</summary>
    /// <exception cref="FileNotFoundException">The folder holds no mask-conditioned model; the message says where it looked.</exception>
    /// <exception cref="InvalidDataException">The index or a part is malformed or does not fit.</exception>
    public static MaskConditionedModel Load(string folder)
    {
        var dir = Resolve(folder) ?? throw new FileNotFoundException(
            $"{folder} is not a mask-conditioned model: no {IndexFile} there or in {Path.Combine(folder, MaskConditioningRuns.ModelFolder)} " +
            "(train one with 'roentgen masks train --variant controlnet|concat --from LDM_DIR --out DIR')", Path.Combine(folder, IndexFile));
        var indexPath = Path.Combine(dir, IndexFile);
        MaskModelIndex index;
        try { index = JsonSerializer.Deserialize<MaskModelIndex>(File.ReadAllText(indexPath), SafeTensors.ConfigJsonOptions) ?? throw new InvalidDataException($"{indexPath} is empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{indexPath}: not a valid mask model index: {e.Message}", e); }
        if (index.Format != FormatName) throw new InvalidDataException($"{indexPath}: format '{index.Format}', expected '{FormatName}'");
        if (index.MaskChannels.Count == 0) throw new InvalidDataException($"{indexPath}: MaskChannels is empty");
        var baseModel = LatentDiffusionModel.Load(Path.Combine(dir, BaseFolder));
        MaskConditionedModel model;
        if (index.Variant == MaskConditioningVariant.ControlNet)
        {
            var folderOf = Path.Combine(dir, ControlNetFolder);
            var cfg = Checkpoint.ReadConfig<ControlNetConfig>(folderOf);
            if (cfg.ConditioningChannels != index.MaskChannels.Count || !SameUnet(cfg.Unet, baseModel.Unet.Config))
                throw new InvalidDataException($"{folderOf}: the ControlNet reads {cfg.ConditioningChannels} channels over a UNet that must match {Path.Combine(dir, BaseFolder)}'s; {indexPath} lists {index.MaskChannels.Count} masks");
            var net = new ControlNetModel(cfg);
            Checkpoint.Load(folderOf, net);
            model = new MaskConditionedModel(baseModel, index.Variant, index.MaskChannels, net, null, index.ConditioningScale, index.Prompt);
        }
        else
        {
            var folderOf = Path.Combine(dir, ConcatUnetFolder);
            var cfg = Checkpoint.ReadConfig<UNetConfig>(folderOf);
            if (cfg.InChannels != baseModel.Unet.Config.InChannels + index.MaskChannels.Count)
                throw new InvalidDataException($"{folderOf}: the widened UNet takes {cfg.InChannels} input channels; expected {baseModel.Unet.Config.InChannels} latent + {index.MaskChannels.Count} mask channels ({indexPath})");
            var unet = new UNet2DConditionModel(cfg);
            Checkpoint.Load(folderOf, unet);
            model = new MaskConditionedModel(baseModel, index.Variant, index.MaskChannels, null, unet, index.ConditioningScale, index.Prompt);
        }
        foreach (var p in model.Trainable.parameters()) p.requires_grad = false;
        model.Trainable.eval();
        return model;
    }

    private static bool SameUnet(UNetConfig a, UNetConfig b) =>
        JsonSerializer.Serialize(a, SafeTensors.ConfigJsonOptions) == JsonSerializer.Serialize(b, SafeTensors.ConfigJsonOptions);
}
