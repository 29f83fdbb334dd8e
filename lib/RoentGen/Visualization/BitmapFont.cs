namespace RoentGen.Visualization;

/// <summary>
/// A built-in 5x7 pixel font for printable ASCII (32 to 126), so captions render without any system font
/// (no font package is served here that draws text into ImageSharp images, and machines may have no system fonts).
/// Each glyph is 7 rows of 5 bits, the most significant of the 5 being the leftmost pixel. Other characters
/// are drawn as '?'.
/// </summary>
public static class BitmapFont
{
    /// <summary>Glyph width in font pixels.</summary>
    public const int GlyphWidth = 5;
    /// <summary>Glyph height in font pixels.</summary>
    public const int GlyphHeight = 7;
    /// <summary>Horizontal advance per character in font pixels (glyph plus one pixel of spacing).</summary>
    public const int Advance = GlyphWidth + 1;

    // 95 glyphs, 7 rows each as two hex digits.
    private static readonly string[] Glyphs =
    [
        "00000000000000", // space
        "04040404040004", // !
        "0A0A0A00000000", // quote
        "0A0A1F0A1F0A0A", // #
        "040F140E051E04", // $
        "18190204081303", // %
        "0C12140815120D", // &
        "0C040800000000", // '
        "02040808080402", // (
        "08040202020408", // )
        "0004150E150400", // *
        "0004041F040400", // +
        "000000000C0408", // ,
        "0000001F000000", // -
        "00000000000C0C", // .
        "00010204081000", // /
        "0E11131519110E", // 0
        "040C040404040E", // 1
        "0E11010204081F", // 2
        "1F02040201110E", // 3
        "02060A121F0202", // 4
        "1F101E0101110E", // 5
        "0608101E11110E", // 6
        "1F010204080808", // 7
        "0E11110E11110E", // 8
        "0E11110F01020C", // 9
        "000C0C000C0C00", // :
        "000C0C000C0408", // ;
        "02040810080402", // <
        "00001F001F0000", // =
        "08040201020408", // >
        "0E110102040004", // ?
        "0E11010D15150E", // @
        "0E1111111F1111", // A
        "1E11111E11111E", // B
        "0E11101010110E", // C
        "1C12111111121C", // D
        "1F10101E10101F", // E
        "1F10101E101010", // F
        "0E11101711110F", // G
        "1111111F111111", // H
        "0E04040404040E", // I
        "0702020202120C", // J
        "11121418141211", // K
        "1010101010101F", // L
        "111B1515111111", // M
        "11111915131111", // N
        "0E11111111110E", // O
        "1E11111E101010", // P
        "0E11111115120D", // Q
        "1E11111E141211", // R
        "0F10100E01011E", // S
        "1F040404040404", // T
        "1111111111110E", // U
        "11111111110A04", // V
        "1111111515150A", // W
        "11110A040A1111", // X
        "1111110A040404", // Y
        "1F01020408101F", // Z
        "0E08080808080E", // [
        "00100804020100", // backslash
        "0E02020202020E", // ]
        "040A1100000000", // ^
        "0000000000001F", // _
        "08040200000000", // `
        "00000E010F110F", // a
        "1010161911111E", // b
        "00000E1010110E", // c
        "01010D1311110F", // d
        "00000E111F100E", // e
        "0609081C080808", // f
        "000F11110F010E", // g
        "10101619111111", // h
        "04000C0404040E", // i
        "0200060202120C", // j
        "10101214181412", // k
        "0C04040404040E", // l
        "00001A15151111", // m
        "00001619111111", // n
        "00000E1111110E", // o
        "00001E111E1010", // p
        "00000D130F0101", // q
        "00001619101010", // r
        "00000E100E011E", // s
        "08081C08080906", // t
        "0000111111130D", // u
        "00001111110A04", // v
        "0000111115150A", // w
        "0000110A040A11", // x
        "000011110F010E", // y
        "00001F0204081F", // z
        "02040408040402", // {
        "04040404040404", // |
        "08040402040408", // }
        "00000815020000", // ~
    ];

    private static readonly byte[] Rows = Glyphs.SelectMany(g => Enumerable.Range(0, GlyphHeight).Select(r => Convert.ToByte(g.Substring(2 * r, 2), 16))).ToArray();

    /// <summary>True when row <paramref name="row"/>, column <paramref name="col"/> of the glyph for <paramref name="c"/> is inked.</summary>
    public static bool IsSet(char c, int col, int row)
    {
        if ((uint)col >= GlyphWidth || (uint)row >= GlyphHeight) return false;
        int index = c is >= ' ' and <= '~' ? c - ' ' : '?' - ' ';
        return (Rows[index * GlyphHeight + row] & (0x10 >> col)) != 0;
    }

    /// <summary>Width in device pixels of <paramref name="text"/> at a scale (the trailing spacing excluded).</summary>
    public static int MeasureWidth(string text, int scale) => text.Length == 0 ? 0 : (text.Length * Advance - 1) * scale;

    /// <summary>
    /// Draws text into an RGB buffer (3 bytes per pixel, row-major, <paramref name="width"/> x <paramref name="height"/>),
    /// each font pixel a <paramref name="scale"/> x <paramref name="scale"/> square; pixels outside the buffer are skipped.
    /// </summary>
    public static void Draw(byte[] rgb, int width, int height, string text, int x, int y, int scale, byte r, byte g, byte b)
    {
        for (int i = 0; i < text.Length; i++)
        {
            int gx = x + i * Advance * scale;
            for (int row = 0; row < GlyphHeight; row++)
                for (int col = 0; col < GlyphWidth; col++)
                {
                    if (!IsSet(text[i], col, row)) continue;
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++)
                        {
                            int px = gx + col * scale + dx, py = y + row * scale + dy;
                            if ((uint)px >= (uint)width || (uint)py >= (uint)height) continue;
                            int o = 3 * (py * width + px);
                            rgb[o] = r; rgb[o + 1] = g; rgb[o + 2] = b;
                        }
                }
        }
    }
}
