using RoentGen.Vision.Segmentation;

namespace RoentGen.Tests.Vision;

public class MaskCleanupTests
{
    // Draws rows of '#' (foreground) and '.' into a mask.
    private static (float[] Mask, int W, int H) Parse(params string[] rows) =>
        (rows.SelectMany(r => r.Select(c => c == '#' ? 1f : 0f)).ToArray(), rows[0].Length, rows.Length);

    private static string[] Show(float[] mask, int w) =>
        Enumerable.Range(0, mask.Length / w).Select(y => new string(Enumerable.Range(0, w).Select(x => mask[y * w + x] >= 0.5f ? '#' : '.').ToArray())).ToArray();

    [Fact]
    public void Keeps_the_largest_components_and_fills_their_holes_only()
    {
        var (mask, w, h) = Parse(
            "###.....##",
            "#.#.....##",
            "###..#..##",
            "..........",
            "####....#.",
            "####....#.");
        // Components: a ring of 8 with a hole (top left), a bar of 6 (top right), one pixel, a block of 8, a bar of 2.
        Assert.Equal(new[]
        {
            "###.......",
            "###.......",
            "###.......",
            "..........",
            "####......",
            "####......",
        }, Show(MaskCleanup.KeepLargest(mask, w, h, 2), w));
        var three = Show(MaskCleanup.KeepLargest(mask, w, h, 3), w);
        Assert.Equal("###.....##", three[0]);
        Assert.Equal("###.....##", three[1]);   // the ring's hole is filled, the bar kept
        Assert.Equal("####......", three[5]);   // the bar of 2 and the single pixel go
        // Diagonal neighbours are not connected (4-connectivity); a hole open to the border is not a hole.
        var (diag, dw, dh) = Parse("#.", ".#");
        Assert.Equal(new[] { "#.", ".." }, Show(MaskCleanup.KeepLargest(diag, dw, dh, 1), dw));
        var (open, ow, oh) = Parse("###", "#..", "###");
        Assert.Equal(new[] { "###", "#..", "###" }, Show(MaskCleanup.KeepLargest(open, ow, oh, 1), ow));
        Assert.Throws<ArgumentException>(() => MaskCleanup.KeepLargest(mask, w + 1, h, 2));
        Assert.Throws<ArgumentException>(() => MaskCleanup.KeepLargest(mask, w, h, 0));
        Assert.Equal(2, MaskCleanup.ComponentsOf("lungs"));
        Assert.Equal(0, MaskCleanup.ComponentsOf("pneumothorax"));
    }
}
