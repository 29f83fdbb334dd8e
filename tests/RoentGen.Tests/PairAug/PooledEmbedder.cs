using RoentGen.PairAug;
using static TorchSharp.torch;

namespace RoentGen.Tests.PairAug;

/// <summary>A deterministic stand-in for a CLIP model in the PairAug tests: images pooled to 4×4, texts to seeded vectors.</summary>
internal sealed class PooledEmbedder : IClipEmbedder
{
    public int ImageSize => 16;
    public Tensor EmbedImages(Tensor images) => nn.functional.adaptive_avg_pool2d(images, [4, 4]).flatten(1);
    public Tensor EmbedTexts(IReadOnlyList<string> texts) => stack(texts.Select(t =>
    {
        var rng = new Random(t.Aggregate(17, (h, c) => unchecked(h * 31 + c)));
        return tensor(Enumerable.Range(0, 16).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray());
    }).ToList(), 0);
}
