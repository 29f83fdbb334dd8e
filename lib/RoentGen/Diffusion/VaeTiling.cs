using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Diffusion;

/// <summary>
/// Tiled VAE decoding: the latents are cut into overlapping square tiles, each tile is decoded on its own, and the decoded
/// tiles are blended where they overlap with linear ramps (each pixel the weighted mean of the tiles covering it), so the
/// decoder's full-resolution activations exist for one tile at a time. The decoder sees each tile without its
/// surroundings (its GroupNorm statistics, mid-block attention and borders are the tile's), so a tiled decode is close to,
/// not equal to, the whole decode; the overlap hides the seams. Latents no larger than a tile are decoded whole.
/// </summary>
public sealed record VaeTiling
{
    /// <summary>Tile side in latent pixels (32: 256 image pixels for Stable Diffusion's 8x VAE).</summary>
    public int TileLatent { get; init; } = 32;
    /// <summary>Overlap of neighbouring tiles in latent pixels (less than <see cref="TileLatent"/>).</summary>
    public int OverlapLatent { get; init; } = 8;

    /// <summary>Checks the tile side (at least 2) and the overlap (0 to tile side − 1).</summary>
    /// <exception cref="ArgumentException">Either is out of range; the message names it.</exception>
    public void Validate()
    {
        if (TileLatent < 2) throw new ArgumentException($"TileLatent {TileLatent} must be at least 2 latent pixels");
        if (OverlapLatent < 0 || OverlapLatent >= TileLatent) throw new ArgumentException($"OverlapLatent {OverlapLatent} must be in [0, TileLatent {TileLatent})");
    }

    /// <summary>The tile starts along one side of <paramref name="size"/> latent pixels: stride tile − overlap, the last tile flush with the end.</summary>
    public IReadOnlyList<int> Starts(int size)
    {
        Validate();
        if (size <= TileLatent) return [0];
        var starts = new List<int>();
        int stride = TileLatent - OverlapLatent;
        for (int s = 0; ; s += stride)
        {
            if (s + TileLatent >= size) { starts.Add(size - TileLatent); break; }
            starts.Add(s);
        }
        return starts;
    }

    /// <summary>Decodes unscaled latents (B, L, h, w) tile by tile into images (B, C, h·f, w·f), float32.</summary>
    public Tensor Decode(AutoencoderKL vae, Tensor latents)
    {
        Validate();
        int h = (int)latents.shape[2], w = (int)latents.shape[3], f = vae.Config.DownsampleFactor;
        if (h <= TileLatent && w <= TileLatent) return vae.Decode(latents).to(ScalarType.Float32);
        using var scope = NewDisposeScope();
        var ys = Starts(h);
        var xs = Starts(w);
        int th = Math.Min(TileLatent, h), tw = Math.Min(TileLatent, w);
        var sum = zeros(latents.shape[0], vae.Config.OutChannels, h * f, w * f, dtype: ScalarType.Float32);
        var weight = zeros(1, 1, h * f, w * f, dtype: ScalarType.Float32);
        foreach (int y in ys)
            foreach (int x in xs)
            {
                using var tileScope = NewDisposeScope();
                var image = vae.Decode(latents.narrow(2, y, th).narrow(3, x, tw)).to(ScalarType.Float32);   // (B, C, th·f, tw·f)
                var wy = Ramp(th * f, y > 0 ? OverlapLatent * f : 0, y + th < h ? OverlapLatent * f : 0);
                var wx = Ramp(tw * f, x > 0 ? OverlapLatent * f : 0, x + tw < w ? OverlapLatent * f : 0);
                var mask = (wy.unsqueeze(1) * wx.unsqueeze(0)).unsqueeze(0).unsqueeze(0);                // (1, 1, th·f, tw·f)
                sum.narrow(2, y * f, th * f).narrow(3, x * f, tw * f).add_(image * mask);
                weight.narrow(2, y * f, th * f).narrow(3, x * f, tw * f).add_(mask);
            }
        return (sum / weight).MoveToOuterDisposeScope();
    }

    /// <summary>Weights 1 inside, rising linearly over the first <paramref name="up"/> pixels and falling over the last <paramref name="down"/> (never 0).</summary>
    private static Tensor Ramp(int length, int up, int down)
    {
        var r = ones(length, dtype: ScalarType.Float32);
        if (up > 0) r.narrow(0, 0, up).copy_((arange(up, dtype: ScalarType.Float32) + 0.5) / up);
        if (down > 0) r.narrow(0, length - down, down).mul_((arange(down - 1, -1, -1, dtype: ScalarType.Float32) + 0.5) / down);
        return r;
    }
}
