using RoentGen.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;

namespace RoentGen.Tests.Data.Datasets;

/// <summary>Builds tiny dataset folders in temp directories (images are a few pixels, made here).</summary>
internal static class Fixtures
{
    /// <summary>A w x h gradient image whose pixels depend on <paramref name="seed"/>.</summary>
    public static GrayImage Gradient(int w, int h, int seed = 0)
    {
        var img = new GrayImage(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img[x, y] = ((x * 7 + y * 3 + seed * 11) % 256) / 255f;
        return img;
    }

    /// <summary>Writes a PNG (folders created) and returns its path.</summary>
    public static string Png(string root, string relative, int w = 8, int h = 8, int seed = 0)
    {
        var p = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        ImageIO.WritePng(p, Gradient(w, h, seed));
        return p;
    }

    /// <summary>Writes a binary mask PNG: 1 inside the rectangle [x0, x1) x [y0, y1), else 0.</summary>
    public static string MaskPng(string root, string relative, int w, int h, int x0, int y0, int x1, int y1)
    {
        var p = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        var m = new GrayImage(w, h);
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) m[x, y] = 1f;
        ImageIO.WritePng(p, m);
        return p;
    }

    /// <summary>Writes a grayscale JPEG with ImageSharp and returns its path.</summary>
    public static string Jpeg(string root, string relative, int w = 8, int h = 8)
    {
        var p = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        using var bmp = new Image<L8>(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                bmp[x, y] = new L8((byte)(x * 20));
        bmp.Save(p, new JpegEncoder { Quality = 90 });
        return p;
    }

    /// <summary>Writes a text file (folders created) and returns its path.</summary>
    public static string Text(string root, string relative, string text)
    {
        var p = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllText(p, text);
        return p;
    }

    /// <summary>A generic-layout folder: 4 rows, two patients' worth of NIH-style names, one with masks.</summary>
    public static string Generic(string? extraRow = null)
    {
        var root = TestPaths.NewTempDir("generic");
        Png(root, "images/00000001_000.png", seed: 1);
        Png(root, "images/00000001_001.png", seed: 2);
        Png(root, "images/CHNCXR_0001_1.png", seed: 3);
        MaskPng(root, "masks/CHNCXR_0001_1.png", 8, 8, 1, 1, 7, 7);
        MaskPng(root, "masks/left.png", 8, 8, 4, 1, 7, 7);
        Png(root, "images/p9.png", w: 12, h: 6, seed: 6);
        var csv = "file,dataset,labels,sex,age,view,report,mask,masks,patientid,side\n"
            + "images/00000001_000.png,nih,Effusion|Infiltration,M,63,PA,,,,,\n"
            + "images/00000001_001.png,nih,No Finding,M,064Y,AP,,,,,\n"
            + "images/CHNCXR_0001_1.png,tb,tuberculosis|Emphysema,F,31,PA,\"FINDINGS: small left pleural effusion, no pneumothorax.\nIMPRESSION: effusion.\",masks/CHNCXR_0001_1.png,left_lung=masks/left.png,,left\n"
            + "images/p9.png,covid,COVID-19,,,LATERAL,\"case with \"\"quotes\"\", commas\",,,P9,\n"
            + (extraRow ?? "");
        File.WriteAllText(Path.Combine(root, "labels.csv"), csv);
        return root;
    }
}
