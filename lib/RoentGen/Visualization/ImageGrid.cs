using RoentGen.Data;
using TorchSharp;

namespace RoentGen.Visualization;

/// <summary>An RGB colour (for mask overlays).</summary>
/// <param name="R">Red, 0-255.</param>
/// <param name="G">Green, 0-255.</param>
/// <param name="B">Blue, 0-255.</param>
public readonly record struct Rgb(byte R, byte G, byte B)
{
    /// <summary>Pure red.</summary>
    public static Rgb Red => new(230, 40, 40);
    /// <summary>Green.</summary>
    public static Rgb Green => new(40, 200, 60);
    /// <summary>Blue.</summary>
    public static Rgb Blue => new(50, 110, 240);
    /// <summary>Yellow.</summary>
    public static Rgb Yellow => new(240, 210, 30);
}

/// <summary>One cell of an <see cref="ImageGrid"/>.</summary>
/// <param name="Image">The picture.</param>
/// <param name="Caption">Text under it, or null.</param>
/// <param name="Mask">An optional mask of the image's size; pixels above 0.5 are tinted.</param>
/// <param name="MaskColor">The tint.</param>
/// <param name="MaskAlpha">The tint's opacity in [0, 1].</param>
public sealed record ImageGridCell(GrayImage Image, string? Caption = null, GrayImage? Mask = null, Rgb MaskColor = default, float MaskAlpha = 0.4f);

/// <summary>
/// Gray images laid out in rows and columns, each with an optional caption under it and an optional coloured
/// mask overlay, under an optional title; rendered to an RGB PNG (captions use the built-in
/// <see cref="BitmapFont"/>, so they need no system fonts).
/// </summary>
public sealed class ImageGrid : IPngDisplayable
{
    private const int Pad = 4;
    private readonly List<ImageGridCell> _cells = [];

    /// <summary>Creates an empty grid.</summary>
    /// <param name="columns">Cells per row (at least 1).</param>
    /// <param name="title">A line of text above the grid, or null.</param>
    public ImageGrid(int columns = 4, string? title = null)
    {
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "a grid needs at least one column");
        Columns = columns; Title = title;
    }

    /// <summary>Cells per row.</summary>
    public int Columns { get; }
    /// <summary>The title, or null.</summary>
    public string? Title { get; set; }
    /// <summary>Font pixel size for captions and title; 0 (default) picks one from the cell width.</summary>
    public int FontScale { get; set; }
    /// <summary>The cells, in row-major order.</summary>
    public IReadOnlyList<ImageGridCell> Cells => _cells;

    /// <summary>Appends an image with an optional caption; returns the grid.</summary>
    public ImageGrid Add(GrayImage image, string? caption = null)
    {
        _cells.Add(new ImageGridCell(image, caption));
        return this;
    }

    /// <summary>Appends an image with a mask overlay (mask &gt; 0.5 tinted with <paramref name="color"/> at <paramref name="alpha"/>).</summary>
    /// <exception cref="ArgumentException">The mask's size differs from the image's.</exception>
    public ImageGrid AddWithMask(GrayImage image, GrayImage mask, string? caption = null, Rgb? color = null, float alpha = 0.4f)
    {
        if (mask.Width != image.Width || mask.Height != image.Height)
            throw new ArgumentException($"mask is {mask.Width}x{mask.Height} but the image is {image.Width}x{image.Height}", nameof(mask));
        _cells.Add(new ImageGridCell(image, caption, mask, color ?? Rgb.Red, Math.Clamp(alpha, 0f, 1f)));
        return this;
    }

    /// <summary>A grid of images with optional captions (one per image).</summary>
    public static ImageGrid FromImages(IEnumerable<GrayImage> images, int columns = 4, IEnumerable<string?>? captions = null, string? title = null)
    {
        var grid = new ImageGrid(columns, title);
        var caps = captions?.ToList();
        int i = 0;
        foreach (var img in images) { grid.Add(img, caps is not null && i < caps.Count ? caps[i] : null); i++; }
        return grid;
    }

    /// <summary>A grid from a (B, 1, H, W), (B, H, W), (1, H, W) or (H, W) tensor whose values lie in [low, high].</summary>
    public static ImageGrid FromTensor(torch.Tensor images, int columns = 4, float low = -1f, float high = 1f,
        IEnumerable<string?>? captions = null, string? title = null)
    {
        var imgs = images.shape.Length switch
        {
            2 => [ImageTensors.FromTensor(images, low, high)],
            3 when images.shape[0] == 1 => [ImageTensors.FromTensor(images, low, high)],
            _ => ImageTensors.Unstack(images, low, high),
        };
        return FromImages(imgs, columns, captions, title);
    }

    // ---- layout ----

    private (int W, int H) CellSize() =>
        _cells.Count == 0 ? (64, 64) : (_cells.Max(c => c.Image.Width), _cells.Max(c => c.Image.Height));

    internal int EffectiveFontScale => FontScale > 0 ? FontScale : Math.Max(1, CellSize().W / 128);

    /// <summary>Most lines a caption wraps onto; what still does not fit ends with "...".</summary>
    public const int MaxCaptionLines = 3;

    // Every caption strip has the height of the longest wrapped caption, so rows stay aligned.
    private int CaptionLines => _cells.Count == 0 ? 0
        : _cells.Max(c => string.IsNullOrEmpty(c.Caption) ? 0 : WrapCaption(c.Caption, CellSize().W, EffectiveFontScale).Count);
    private int CaptionHeight => CaptionLines * (BitmapFont.GlyphHeight + 3) * EffectiveFontScale;
    private int TitleHeight => string.IsNullOrEmpty(Title) ? 0 : (BitmapFont.GlyphHeight + 4) * EffectiveFontScale;
    private int Rows => Math.Max(1, (_cells.Count + Columns - 1) / Columns);
    private int UsedColumns => Math.Max(1, Math.Min(Columns, _cells.Count));

    /// <summary>The rendered width in pixels.</summary>
    public int PixelWidth => Pad + UsedColumns * (CellSize().W + Pad);
    /// <summary>The rendered height in pixels.</summary>
    public int PixelHeight => Pad + TitleHeight + Rows * (CellSize().H + CaptionHeight + Pad);

    /// <summary>The image area of cell <paramref name="index"/>: (x, y, width, height) in pixels.</summary>
    public (int X, int Y, int W, int H) CellRect(int index)
    {
        var (cw, ch) = CellSize();
        int col = index % Columns, row = index / Columns;
        return (Pad + col * (cw + Pad), Pad + TitleHeight + row * (ch + CaptionHeight + Pad), cw, ch);
    }

    /// <summary>The caption strip of cell <paramref name="index"/>: (x, y, width, height) in pixels.</summary>
    public (int X, int Y, int W, int H) CaptionRect(int index)
    {
        var (x, y, w, h) = CellRect(index);
        return (x, y + h, w, CaptionHeight);
    }

    // ---- rendering ----

    /// <summary>Renders to RGB bytes (3 per pixel, row-major) on a white background.</summary>
    public byte[] RenderRgb()
    {
        int width = PixelWidth, height = PixelHeight, scale = EffectiveFontScale;
        var rgb = new byte[3 * width * height];
        Array.Fill(rgb, (byte)255);
        if (!string.IsNullOrEmpty(Title))
            BitmapFont.Draw(rgb, width, height, Fit(Title, width - 2 * Pad, scale), Pad, Pad, scale, 0, 0, 0);
        for (int i = 0; i < _cells.Count; i++)
        {
            var cell = _cells[i];
            var (x0, y0, cw, ch) = CellRect(i);
            var img = cell.Image;
            int ox = x0 + (cw - img.Width) / 2, oy = y0 + (ch - img.Height) / 2;
            for (int y = 0; y < img.Height; y++)
                for (int x = 0; x < img.Width; x++)
                {
                    float v = img.Pixels[y * img.Width + x];
                    v = float.IsNaN(v) ? 0f : Math.Clamp(v, 0f, 1f) * 255f;
                    float r = v, g = v, b = v;
                    if (cell.Mask is { } m && m.Pixels[y * img.Width + x] > 0.5f)
                    {
                        float a = cell.MaskAlpha;
                        r = (1 - a) * v + a * cell.MaskColor.R;
                        g = (1 - a) * v + a * cell.MaskColor.G;
                        b = (1 - a) * v + a * cell.MaskColor.B;
                    }
                    int o = 3 * ((oy + y) * width + ox + x);
                    rgb[o] = (byte)MathF.Round(r); rgb[o + 1] = (byte)MathF.Round(g); rgb[o + 2] = (byte)MathF.Round(b);
                }
            if (!string.IsNullOrEmpty(cell.Caption))
            {
                var (cx, cy, cwid, _) = CaptionRect(i);
                var lines = WrapCaption(cell.Caption, cwid, scale);
                for (int l = 0; l < lines.Count; l++)
                {
                    int tx = cx + Math.Max(0, (cwid - BitmapFont.MeasureWidth(lines[l], scale)) / 2);
                    BitmapFont.Draw(rgb, width, height, lines[l], tx, cy + 2 * scale + l * (BitmapFont.GlyphHeight + 3) * scale, scale, 0, 0, 0);
                }
            }
        }
        return rgb;
    }

    /// <summary>Renders to an RGB PNG.</summary>
    public byte[] ToPng() => ImageIO.EncodeRgbPng(RenderRgb(), PixelWidth, PixelHeight);

    /// <summary>"ImageGrid: 8 images, 4 columns, 'title'".</summary>
    public override string ToString() => $"ImageGrid: {_cells.Count} images, {Columns} columns{(Title is null ? "" : $", '{Title}'")}";

    /// <summary>
    /// A caption broken at spaces (or inside a word longer than a line) into lines that fit <paramref name="width"/>
    /// pixels at font scale <paramref name="scale"/>, at most <see cref="MaxCaptionLines"/>; the last line ends with
    /// "..." when text is left over.
    /// </summary>
    public static IReadOnlyList<string> WrapCaption(string text, int width, int scale)
    {
        int perLine = Math.Max(1, (width / Math.Max(1, scale) + 1) / BitmapFont.Advance);
        var lines = new List<string>();
        var rest = text.Trim();
        while (rest.Length > 0 && lines.Count < MaxCaptionLines)
        {
            if (rest.Length <= perLine) { lines.Add(rest); rest = ""; break; }
            int cut = rest.LastIndexOf(' ', Math.Min(perLine, rest.Length - 1));
            if (cut <= 0) cut = perLine;   // one word longer than the line: break inside it
            lines.Add(rest[..cut].TrimEnd());
            rest = rest[cut..].TrimStart();
        }
        if (rest.Length > 0) lines[^1] = Fit(lines[^1] + " " + rest, width, scale);
        return lines;
    }

    // Shortens text with "..." so it fits a width at a scale.
    private static string Fit(string text, int width, int scale)
    {
        if (BitmapFont.MeasureWidth(text, scale) <= width) return text;
        int max = Math.Max(0, (width / scale + 1) / BitmapFont.Advance);
        if (max <= 3) return text[..Math.Min(text.Length, max)];
        return text[..(max - 3)] + "...";
    }
}
