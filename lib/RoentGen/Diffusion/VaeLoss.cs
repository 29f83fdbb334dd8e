using RoentGen.Evaluation;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>Weights of the autoencoder's training loss.</summary>
public sealed record VaeLossConfig
{
    /// <summary>Weight of the per-pixel L1 term.</summary>
    public double L1Weight { get; init; } = 1.0;
    /// <summary>Weight of the structural term 1 − SSIM, which keeps fine texture (ribs, vessels) sharper than L1 alone.</summary>
    public double SsimWeight { get; init; } = 0.2;
    /// <summary>Weight of the KL term (per latent element); small, as in latent diffusion, so the latent stays informative.</summary>
    public double KlWeight { get; init; } = 1e-6;
}

/// <summary>The terms of one autoencoder loss evaluation.</summary>
/// <param name="Total">Weighted sum, for backward.</param>
/// <param name="L1">Mean absolute error in [−1, 1] units.</param>
/// <param name="Ssim">Mean SSIM of reconstructions (in [0, 1] units).</param>
/// <param name="Kl">Mean KL per latent element.</param>
public sealed record VaeLossTerms(Tensor Total, double L1, double Ssim, double Kl);

/// <summary>Reconstruction loss for CXRs: L1 plus a structural (SSIM) term, plus a small KL regulariser.</summary>
public static class VaeLoss
{
    /// <summary>Images and reconstructions in [−1, 1]; the posterior for the KL.</summary>
    public static VaeLossTerms Compute(Tensor images, Tensor reconstruction, DiagonalGaussian posterior, VaeLossConfig config)
    {
        var l1 = (reconstruction - images).abs().mean();
        var ssim = Ssim.Compute((reconstruction.clamp(-1, 1) + 1) / 2, (images + 1) / 2).mean();
        var kl = posterior.Kl().mean() / posterior.Mean[0].numel();
        var total = config.L1Weight * l1 + config.SsimWeight * (1 - ssim) + config.KlWeight * kl;
        return new VaeLossTerms(total, l1.item<float>(), ssim.item<float>(), kl.item<float>());
    }
}
