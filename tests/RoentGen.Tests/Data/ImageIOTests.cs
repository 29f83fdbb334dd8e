using System.Buffers.Binary;
using RoentGen.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;

namespace RoentGen.Tests.Data;

public class ImageIOTests
{
    [Fact]
    public void EightBit_round_trip_is_exact_for_every_value()
    {
        var px = new float[256 * 4];
        for (int i = 0; i < px.Length; i++) px[i] = (i % 256) / 255f;
        var img = new GrayImage(256, 4, px);
        var back = ImageIO.Decode(ImageIO.EncodePng(img, 8), "eight.png");
        Assert.Equal(8, back.SourceBitDepth);
        Assert.Equal(px, back.Pixels);
    }

    [Fact]
    public void SixteenBit_round_trip_is_exact_for_all_65536_values()
    {
        var px = new float[256 * 256];
        for (int i = 0; i < px.Length; i++) px[i] = i / 65535f;
        var img = new GrayImage(256, 256, px, 16);
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "sixteen.png");
        ImageIO.WritePng(path, img, 16);
        var back = ImageIO.Read(path);
        Assert.Equal(16, back.SourceBitDepth);
        for (int i = 0; i < px.Length; i++)
            Assert.True(px[i] == back.Pixels[i], $"pixel {i}: wrote {px[i]}, read {back.Pixels[i]}");
        Assert.Equal(65536, back.Pixels.Distinct().Count());
        Directory.Delete(dir, true);
    }

    [Fact]
    public void SixteenBit_png_with_every_filter_type_decodes_exactly()
    {
        // A hand-made 16-bit PNG whose rows use filters 0..4 (our encoder writes only filter 0).
        const int w = 37, h = 10;
        var rng = new Random(7);
        var values = new int[w * h];
        for (int i = 0; i < values.Length; i++) values[i] = rng.Next(65536);
        int stride = 2 * w;
        var raw = new byte[h * (1 + stride)];
        var prev = new byte[stride];
        for (int y = 0; y < h; y++)
        {
            var line = new byte[stride];
            for (int x = 0; x < w; x++) BinaryPrimitives.WriteUInt16BigEndian(line.AsSpan(2 * x), (ushort)values[y * w + x]);
            int f = y % 5;
            raw[y * (1 + stride)] = (byte)f;
            for (int i = 0; i < stride; i++)
            {
                int a = i >= 2 ? line[i - 2] : 0, b = prev[i], c = i >= 2 ? prev[i - 2] : 0;
                int pred = f switch
                {
                    0 => 0, 1 => a, 2 => b, 3 => (a + b) >> 1,
                    _ => PaethPredictor(a, b, c),
                };
                raw[y * (1 + stride) + 1 + i] = (byte)(line[i] - pred);
            }
            prev = line;
        }
        var png = PngFixtures.Assemble(w, h, 16, 0, raw);
        var img = ImageIO.Decode(png, "filters.png");
        for (int i = 0; i < values.Length; i++) Assert.Equal(values[i] / 65535f, img.Pixels[i]);
    }

    [Fact]
    public void Adam7_interlaced_png_decodes_every_pixel_in_place()
    {
        const int w = 13, h = 11;
        static byte V(int x, int y) => (byte)((x * 17 + y * 29) % 256);
        (int x0, int y0, int dx, int dy)[] passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];
        var raw = new List<byte>();
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int pw = (w - x0 + dx - 1) / dx, ph = (h - y0 + dy - 1) / dy;
            if (pw <= 0 || ph <= 0) continue;
            for (int r = 0; r < ph; r++)
            {
                raw.Add(0);
                for (int c = 0; c < pw; c++) raw.Add(V(x0 + c * dx, y0 + r * dy));
            }
        }
        var img = ImageIO.Decode(PngFixtures.Assemble(w, h, 8, 0, raw.ToArray(), interlace: 1), "adam7.png");
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) Assert.Equal(V(x, y) / 255f, img[x, y]);
    }

    [Fact]
    public void Palette_4bit_gray_16bit_rgb_and_gray_alpha_pngs_decode()
    {
        // 2-bit palette, 5x1: indices 0 1 2 3 0, packed from the most significant bits.
        byte[] palette = [0, 0, 0, 255, 255, 255, 255, 0, 0, 10, 10, 10];
        var pal = ImageIO.Decode(PngFixtures.Assemble(5, 1, 2, 3, [0, 0b00_01_10_11, 0b00_000000], palette: palette), "palette.png");
        Assert.Equal(new[] { 0f, 1f, 0.299f * 255 / 255f, 10 / 255f, 0f }, pal.Pixels, new ToleranceComparer(1e-6f));

        // 4-bit gray, 3x1: 0, 7, 15.
        var g4 = ImageIO.Decode(PngFixtures.Assemble(3, 1, 4, 0, [0, 0x07, 0xF0]), "gray4.png");
        Assert.Equal(new[] { 0f, 7 / 15f, 1f }, g4.Pixels);

        // 16-bit RGB, 2x1: a gray pixel (exact) and pure green.
        var rgb16 = ImageIO.Decode(PngFixtures.Assemble(2, 1, 16, 2, [0, 0x12, 0x34, 0x12, 0x34, 0x12, 0x34, 0, 0, 0xFF, 0xFF, 0, 0]), "rgb16.png");
        Assert.Equal(0x1234 / 65535f, rgb16.Pixels[0]);
        Assert.Equal(0.587f, rgb16.Pixels[1], 1e-6f);
        Assert.Equal(16, rgb16.SourceBitDepth);

        // 8-bit gray + alpha, 2x1: alpha is ignored.
        var ga = ImageIO.Decode(PngFixtures.Assemble(2, 1, 8, 4, [0, 100, 0, 200, 255]), "ga.png");
        Assert.Equal(new[] { 100 / 255f, 200 / 255f }, ga.Pixels);

        // Invalid combinations are refused by name.
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(PngFixtures.Assemble(2, 1, 4, 2, [0, 0]), "bad-depth.png"));
        Assert.Contains("bad-depth.png", e.Message);
        Assert.Contains("colour type 2 with bit depth 4", e.Message);
    }

    private sealed class ToleranceComparer(float tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(float f) => 0;
    }

    private static int PaethPredictor(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    [Fact]
    public void Rgba_png_from_imagesharp_is_read_as_luma()
    {
        using var rgba = new Image<Rgba32>(4, 2);
        rgba[0, 0] = new Rgba32(255, 0, 0);
        rgba[1, 0] = new Rgba32(0, 255, 0);
        rgba[2, 0] = new Rgba32(0, 0, 255, 10); // alpha is ignored
        rgba[3, 0] = new Rgba32(200, 200, 200);
        using var ms = new MemoryStream();
        rgba.SaveAsPng(ms);
        var img = ImageIO.Decode(ms.ToArray(), "rgb.png");
        Assert.Equal(0.299f, img[0, 0], 3);
        Assert.Equal(0.587f, img[1, 0], 3);
        Assert.Equal(0.114f, img[2, 0], 3);
        Assert.Equal(200 / 255f, img[3, 0]);
    }

    [Fact]
    public void Jpeg_is_read_close_to_what_was_written()
    {
        const int w = 32, h = 16;
        using var ramp = new Image<Rgb24>(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) { byte v = (byte)(x * 8); ramp[x, y] = new Rgb24(v, v, v); }
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "ramp.jpg");
        ramp.SaveAsJpeg(path, new JpegEncoder { Quality = 95 });
        var img = ImageIO.Read(path);
        Assert.Equal((w, h), (img.Width, img.Height));
        Assert.Equal(8, img.SourceBitDepth);
        double err = 0;
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) err += Math.Abs(img[x, y] - x * 8 / 255f);
        Assert.True(err / (w * h) < 0.02, $"mean abs error {err / (w * h)}");
        Assert.True(img[w - 1, 0] > 0.9f && img[0, 0] < 0.05f);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Corrupt_files_are_refused_with_the_file_name()
    {
        var dir = TestPaths.NewTempDir();
        var garbage = Path.Combine(dir, "garbage.png");
        File.WriteAllBytes(garbage, "this is not an image at all"u8.ToArray());
        var e1 = Assert.Throws<InvalidDataException>(() => ImageIO.Read(garbage));
        Assert.Contains(garbage, e1.Message);

        var good = ImageIO.EncodePng(new GrayImage(64, 64, Enumerable.Range(0, 4096).Select(i => (i % 97) / 96f).ToArray()), 8);
        var truncated = Path.Combine(dir, "truncated.png");
        File.WriteAllBytes(truncated, good[..(good.Length / 2)]);
        var e2 = Assert.Throws<InvalidDataException>(() => ImageIO.Read(truncated));
        Assert.Contains(truncated, e2.Message);

        var flipped = (byte[])good.Clone();
        flipped[40] ^= 0xFF; // inside IDAT: the CRC no longer matches
        var e3 = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(flipped, "flipped.png"));
        Assert.Contains("flipped.png", e3.Message);
        Assert.Contains("CRC", e3.Message);

        var missing = Path.Combine(dir, "missing.png");
        var e4 = Assert.Throws<FileNotFoundException>(() => ImageIO.Read(missing));
        Assert.Contains(missing, e4.Message);
        Directory.Delete(dir, true);
    }

    private static byte[] GoodPng() =>
        ImageIO.EncodePng(new GrayImage(64, 64, Enumerable.Range(0, 4096).Select(i => (i % 97) / 96f).ToArray()), 8);

    [Fact]
    public void Png_with_a_bad_crc_in_an_ancillary_chunk_is_refused()
    {
        // ImageSharp 2.1 checks the CRC of critical chunks only; ImageIO checks every chunk itself.
        var png = PngFixtures.WithChunkAfterHeader(GoodPng(), "tEXt", "Comment\0hello"u8.ToArray(), breakCrc: true);
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(png, "text.png"));
        Assert.Contains("text.png: not a valid PNG: CRC mismatch in chunk 'tEXt'", e.Message);
        var intact = PngFixtures.WithChunkAfterHeader(GoodPng(), "tEXt", "Comment\0hello"u8.ToArray());
        Assert.Equal(ImageIO.Decode(GoodPng()).Pixels, ImageIO.Decode(intact, "text.png").Pixels);
    }

    [Fact]
    public void Png_with_a_bad_crc_inside_the_image_data_is_refused()
    {
        var png = GoodPng();
        var idat = PngFixtures.Chunks(png).Single(c => c.Type == "IDAT");
        png[idat.Offset + 8 + idat.Length / 2] ^= 0x01;
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(png, "bitflip.png"));
        Assert.Contains("bitflip.png", e.Message);
        Assert.Contains("CRC mismatch in chunk 'IDAT'", e.Message);
    }

    [Fact]
    public void Png_cut_short_at_a_chunk_boundary_is_refused_as_truncated()
    {
        // Without IEND: ImageSharp 2.1 would decode it (and fill missing rows with black).
        var png = GoodPng();
        var iend = PngFixtures.Chunks(png).Single(c => c.Type == "IEND");
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(png[..iend.Offset], "no-iend.png"));
        Assert.Contains("no-iend.png", e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("without an IEND chunk", e.Message);
    }

    [Fact]
    public void Png_declaring_a_huge_size_is_refused_before_its_pixels_are_allocated()
    {
        // 40000 x 40000 = 1.6 G pixels from a file of under 100 bytes.
        var bomb = PngFixtures.Assemble(40000, 40000, 8, 0, new byte[40001]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(bomb, "bomb.png"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("bomb.png", e.Message);
        Assert.Contains("40000x40000", e.Message);
        Assert.Contains($"above the limit of {ImageIO.MaxPixels}", e.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes allocated while refusing");
    }

    // A 64 x 64 gray ramp JPEG whose frame header then declares another size.
    private static byte[] JpegDeclaring(int width, int height)
    {
        using var ramp = new Image<L8>(64, 64);
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++) ramp[x, y] = new L8((byte)(4 * x));
        using var ms = new MemoryStream();
        ramp.SaveAsJpeg(ms, new JpegEncoder { Quality = 90 });
        var jpeg = ms.ToArray();
        // Walk the segments (all have lengths before the first scan) to the start-of-frame marker.
        int pos = 2;
        while (jpeg[pos + 1] is not (0xC0 or 0xC1 or 0xC2)) pos += 2 + BinaryPrimitives.ReadUInt16BigEndian(jpeg.AsSpan(pos + 2));
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(pos + 5), (ushort)height);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(pos + 7), (ushort)width);
        return jpeg;
    }

    [Fact]
    public void Truncated_543_byte_jpeg_declaring_16000x16000_is_refused_without_decoding()
    {
        var jpeg = JpegDeclaring(16000, 16000);
        Assert.True(jpeg.Length > 543, $"the fixture JPEG has only {jpeg.Length} bytes");
        var cut = jpeg[..543];
        Assert.Equal((16000, 16000), (Image.Identify(cut).Width, Image.Identify(cut).Height));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(cut, "bomb.jpg"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("bomb.jpg", e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes allocated while refusing"); // its pixels as floats would be 1 GB
    }

    [Fact]
    public void Complete_jpeg_declaring_more_than_the_pixel_limit_is_refused_before_decoding()
    {
        var jpeg = JpegDeclaring(20000, 20000); // 400 M pixels, structure intact
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(jpeg, "huge.jpg"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("huge.jpg", e.Message);
        Assert.Contains("JPEG image declares 20000x20000 pixels", e.Message);
        Assert.Contains($"above the limit of {ImageIO.MaxPixels}", e.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes allocated while refusing");
    }

    [Fact]
    public void Truncated_and_garbled_jpegs_are_refused_with_the_file_name()
    {
        var jpeg = JpegDeclaring(64, 64);
        Assert.Equal(64, ImageIO.Decode(jpeg, "whole.jpg").Width);
        var e1 = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(jpeg[..(jpeg.Length * 3 / 4)], "cut.jpg"));
        Assert.Contains("cut.jpg: not a valid JPEG: truncated", e1.Message);
        Assert.Contains("inside the image data", e1.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(jpeg[..100], "header-only.jpg"));
        Assert.Contains("header-only.jpg: not a valid JPEG: truncated", e2.Message);
        var e3 = Assert.Throws<InvalidDataException>(() => ImageIO.Decode([0xFF, 0xD8, 0xFF, 0xD9], "empty.jpg"));
        Assert.Contains("empty.jpg", e3.Message);
    }

    [Fact]
    public void Non_image_bytes_are_refused_with_the_file_name()
    {
        var e1 = Assert.Throws<InvalidDataException>(() => ImageIO.Decode("%PDF-1.4 not an image"u8.ToArray(), "paper.pdf"));
        Assert.Contains("paper.pdf: not a decodable image: no known image format", e1.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => ImageIO.Decode([], "empty.png"));
        Assert.Contains("empty.png", e2.Message);
        var sig = new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3 };
        var e3 = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(sig, "signature-only.png"));
        Assert.Contains("signature-only.png: not a valid PNG: truncated", e3.Message);
    }

    [Fact]
    public void Crc32_matches_the_standard_check_value()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        var data = Enumerable.Range(0, 1000).Select(i => (byte)(i * 31 + 7)).ToArray();
        uint bytewise = Crc32.Initial;
        foreach (var b in data) bytewise = Crc32.Update(bytewise, [b]);
        Assert.Equal(bytewise ^ 0xFFFFFFFFu, Crc32.Compute(data));
    }

    [Fact]
    public void Rgb_png_round_trips_every_byte_and_checks_its_buffer()
    {
        const int w = 7, h = 3;
        var rgb = Enumerable.Range(0, 3 * w * h).Select(i => (byte)(i * 37 + 11)).ToArray();
        var png = ImageIO.EncodeRgbPng(rgb, w, h);
        Assert.True(ImageFileChecks.IsPng(png));
        using var back = Image.Load<Rgb24>(png);
        Assert.Equal((w, h), (back.Width, back.Height));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int o = 3 * (y * w + x);
                Assert.Equal(new Rgb24(rgb[o], rgb[o + 1], rgb[o + 2]), back[x, y]);
            }
        var gray = ImageIO.Decode(png, "rgb.png"); // read back as luma
        Assert.Equal((0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2]) / 255f, gray[0, 0], 6);
        var e = Assert.Throws<ArgumentException>(() => ImageIO.EncodeRgbPng(rgb[..^1], w, h));
        Assert.Contains("expected 3 x 7 x 3 = 63", e.Message);
        Assert.Throws<ArgumentException>(() => ImageIO.EncodeRgbPng([], 0, 3));
    }

    [Fact]
    public void Only_8_and_16_bit_are_written()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageIO.EncodePng(new GrayImage(2, 2), 12));
    }

    [SkippableFact]
    public void Real_sample_pngs_and_masks_decode_and_round_trip_exactly()
    {
        Skip.If(TestPaths.RealSample is null, "shared real-cxr-sample not present");
        var images = Directory.EnumerateFiles(Path.Combine(TestPaths.RealSample!, "images"), "*.png", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();
        var masks = Directory.EnumerateFiles(Path.Combine(TestPaths.RealSample!, "masks"), "*.png", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();
        Assert.NotEmpty(images);
        Assert.NotEmpty(masks);
        foreach (var file in images.Concat(masks))
        {
            var ours = ImageIO.Read(file);
            // Through another of ImageSharp's pixel formats (RGB, red channel), not the one ImageIO picks.
            using var rgb = Image.Load<Rgb24>(file);
            Assert.Equal((rgb.Width, rgb.Height), (ours.Width, ours.Height));
            for (int y = 0; y < rgb.Height; y += 3)
                for (int x = 0; x < rgb.Width; x += 2)
                    Assert.Equal(rgb[x, y].R, (int)MathF.Round(ours[x, y] * 255f));
            var back = ImageIO.Decode(ImageIO.EncodePng(ours, ours.SourceBitDepth), file);
            Assert.Equal(ours.Pixels, back.Pixels);
        }
        foreach (var mask in masks) Assert.All(ImageIO.Read(mask).Pixels, p => Assert.True(p == 0f || p == 1f));
    }

    [Fact]
    public void GrayImage_is_png_displayable()
    {
        var img = new GrayImage(3, 2, [0, 0.5f, 1, 1, 0.5f, 0]);
        var png = img.ToPng();
        Assert.True(ImageFileChecks.IsPng(png));
        Assert.Equal(img.Pixels.Select(p => MathF.Round(p * 255f) / 255f), ImageIO.Decode(png).Pixels);
    }

    [Fact]
    public void Complete_16000x16000_jpeg_is_above_the_default_limit_and_the_limit_is_configurable()
    {
        var jpeg = JpegDeclaring(16000, 16000); // 256 M pixels, structure intact
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(jpeg, "big.jpg"));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20, "allocated while refusing");
        Assert.Contains("big.jpg: JPEG image declares 16000x16000 pixels", e.Message);
        Assert.Contains($"above the limit of {1L << 26}", e.Message);
        // A caller's own limit applies to every format: the 64 x 64 ramp passes by default and not under 4000 pixels.
        var small = JpegDeclaring(64, 64);
        Assert.Equal(64, ImageIO.Decode(small, "ok.jpg").Width);
        var e2 = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(small, "small.jpg", maxPixels: 4000));
        Assert.Contains("small.jpg: JPEG image declares 64x64 pixels, empty or above the limit of 4000", e2.Message);
        var png = ImageIO.EncodePng(new GrayImage(64, 64, new float[64 * 64]));
        var e3 = Assert.Throws<InvalidDataException>(() => ImageIO.Decode(png, "small.png", maxPixels: 4000));
        Assert.Contains("small.png: PNG image declares 64x64 pixels, empty or above the limit of 4000", e3.Message);
    }

    [Fact]
    public void Devices_fifos_and_folders_are_refused_before_they_are_read()
    {
        if (!OperatingSystem.IsLinux()) return;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Read("/dev/zero"));
        Assert.Contains("/dev/zero: the image is a device, FIFO or socket, not a regular file", e.Message);
        var dir = TestPaths.NewTempDir();
        var fifo = Path.Combine(dir, "pipe.png");
        using (var p = System.Diagnostics.Process.Start("mkfifo", [fifo])) p.WaitForExit();
        Assert.True(File.Exists(fifo), "mkfifo made no FIFO");
        var e2 = Assert.Throws<InvalidDataException>(() => ImageIO.Read(fifo)); // opening it would block for a writer
        Assert.Contains("pipe.png: the image is a device, FIFO or socket", e2.Message);
        var e3 = Assert.Throws<InvalidDataException>(() => ImageIO.Read(dir));
        Assert.Contains("the image is a folder, not a regular file", e3.Message);
        Assert.True(watch.ElapsedMilliseconds < 5000, $"{watch.ElapsedMilliseconds} ms");
        // A link to a regular file is read as the file.
        var real = Path.Combine(dir, "real.png");
        ImageIO.WritePng(real, new GrayImage(2, 2, [0f, 1f, 1f, 0f]));
        File.CreateSymbolicLink(Path.Combine(dir, "link.png"), real);
        Assert.Equal(2, ImageIO.Read(Path.Combine(dir, "link.png")).Width);
    }

    [Fact]
    public void Messages_print_no_file_bytes_and_escape_control_characters_in_names()
    {
        var e = Assert.Throws<InvalidDataException>(() => ImageIO.Decode("SECRET-PASSWORD-LINE"u8.ToArray(), "bad\x1b[2J\n.png"));
        Assert.DoesNotContain("SECRET", e.Message);
        Assert.DoesNotContain(Convert.ToHexString("SECRET-P"u8), e.Message);
        Assert.False(e.Message.Contains('\x1b', StringComparison.Ordinal), "a raw escape character reached the message");
        Assert.False(e.Message.Contains('\n', StringComparison.Ordinal), "a raw line break reached the message");
        Assert.Contains("bad\\e[2J\\n.png: not a decodable image", e.Message);
    }
}
