using RoentGen.Data;
using RoentGen.Interactive;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace RoentGen.Tests.Interactive;

public class ImageGridTests
{
    private static GrayImage Flat(int w, int h, float v) => new(w, h, Enumerable.Repeat(v, w * h).ToArray());

    private static int InkIn(byte[] rgb, int width, (int X, int Y, int W, int H) r)
    {
        int ink = 0;
        for (int y = r.Y; y < r.Y + r.H; y++)
            for (int x = r.X; x < r.X + r.W; x++)
                if (rgb[3 * (y * width + x)] < 128) ink++;
        return ink;
    }

    [Fact]
    public void Every_printable_glyph_has_ink_except_space_and_glyphs_differ()
    {
        var seen = new HashSet<string>();
        for (char c = '!'; c <= '~'; c++)
        {
            var bits = string.Concat(Enumerable.Range(0, 35).Select(i => BitmapFont.IsSet(c, i % 5, i / 5) ? '#' : '.'));
            Assert.Contains('#', bits);
            Assert.True(seen.Add(bits), $"glyph '{c}' duplicates another");
        }
        Assert.All(Enumerable.Range(0, 35), i => Assert.False(BitmapFont.IsSet(' ', i % 5, i / 5)));
    }

    [Fact]
    public void Captions_put_ink_in_the_caption_strip_and_empty_captions_do_not()
    {
        var grid = new ImageGrid(columns: 2, title: "Sample grid").Add(Flat(32, 32, 0.8f), "cardiomegaly").Add(Flat(32, 32, 0.8f), "");
        var rgb = grid.RenderRgb();
        var strip0 = grid.CaptionRect(0);
        Assert.True(strip0.H > 0);
        Assert.True(InkIn(rgb, grid.PixelWidth, strip0) > 20, "caption 0 drew nothing");
        Assert.Equal(0, InkIn(rgb, grid.PixelWidth, grid.CaptionRect(1)));
        Assert.True(InkIn(rgb, grid.PixelWidth, (0, 0, grid.PixelWidth, grid.CellRect(0).Y)) > 20, "title drew nothing");
    }

    [Fact]
    public void Png_is_rgb_with_the_laid_out_size_and_the_images_drawn()
    {
        var grid = ImageGrid.FromImages([Flat(20, 10, 0f), Flat(20, 10, 1f), Flat(20, 10, 0.5f)], columns: 2, captions: ["a", "b", "c"]);
        var png = grid.ToPng();
        using var bmp = Image.Load<Rgb24>(png);
        Assert.Equal((grid.PixelWidth, grid.PixelHeight), (bmp.Width, bmp.Height));
        var c0 = grid.CellRect(0); var c2 = grid.CellRect(2);
        Assert.Equal(new Rgb24(0, 0, 0), bmp[c0.X + 5, c0.Y + 5]);
        Assert.Equal(new Rgb24(128, 128, 128), bmp[c2.X + 5, c2.Y + 5]);
        Assert.True(c2.Y > c0.Y); // third image starts a second row
    }

    [Fact]
    public void Mask_overlay_tints_only_masked_pixels()
    {
        var img = Flat(16, 16, 0.5f);
        var mask = new GrayImage(16, 16, Enumerable.Range(0, 256).Select(i => i % 16 < 8 ? 1f : 0f).ToArray());
        var grid = new ImageGrid(1).AddWithMask(img, mask, "lungs", new Rgb(255, 0, 0), 0.5f);
        var rgb = grid.RenderRgb();
        var r = grid.CellRect(0);
        int o1 = 3 * ((r.Y + 3) * grid.PixelWidth + r.X + 2);   // masked
        int o2 = 3 * ((r.Y + 3) * grid.PixelWidth + r.X + 12);  // not masked
        Assert.Equal(new byte[] { 191, 64, 64 }, rgb[o1..(o1 + 3)]); // 0.5 x 127.5 + 0.5 x 255, rounded
        Assert.Equal(new byte[] { 128, 128, 128 }, rgb[o2..(o2 + 3)]);
        Assert.Throws<ArgumentException>(() => new ImageGrid().AddWithMask(img, Flat(8, 8, 1f)));
    }

    [Fact]
    public void FromTensor_makes_one_cell_per_batch_item()
    {
        using var scope = NewDisposeScope();
        var grid = ImageGrid.FromTensor(linspace(-1, 1, 5 * 16 * 16).reshape(5, 1, 16, 16), columns: 3);
        Assert.Equal(5, grid.Cells.Count);
        Assert.Equal(0f, grid.Cells[0].Image.Pixels[0], 1e-6f);
        Assert.Equal(1f, grid.Cells[4].Image.Pixels[^1], 1e-6f);
    }
}
