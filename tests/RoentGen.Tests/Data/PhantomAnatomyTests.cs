using RoentGen.Data;
using RoentGen.Data.Phantoms;

namespace RoentGen.Tests.Data;

/// <summary>
/// The phantom world's anatomy and findings' signs, checked on the pixels: each test renders cases (some twice, with
/// one element of the spec removed, through the internal sampler and renderer) and measures what a reader would see.
/// </summary>
public class PhantomAnatomyTests
{
    private static readonly PhantomOptions Quiet = new() { Size = 128, Seed = 7, NoiseLevel = 0 };

    private static PhantomRenderer.Result Render(PhantomSpec spec, int size) => new PhantomRenderer(spec, size).Render();

    /// <summary>Image pixel (x, y) that shows patient point (u, v) under the case's field of view.</summary>
    private static (int x, int y) ToImage(PhantomSpec s, float u, float v, int n) =>
        ((int)MathF.Floor((0.5f + (u - s.CenterU) * s.ZoomX) * n), (int)MathF.Floor((0.5f + (v - s.CenterV) * s.ZoomY) * n));

    private static List<int> Find(PhantomOptions o, Func<PhantomSpec, bool> pred, int want, int scan = 6000)
    {
        var list = new List<int>();
        for (int i = 0; i < scan && list.Count < want; i++)
            if (pred(PhantomSampler.Sample(o, i))) list.Add(i);
        return list;
    }

    private static double Mean(float[] img, Func<int, bool> where)
    {
        double s = 0; int c = 0;
        for (int i = 0; i < img.Length; i++) if (where(i)) { s += img[i]; c++; }
        return c == 0 ? double.NaN : s / c;
    }

    [Fact]
    public void Heart_LiesToThePatientsLeft_ImageRightOfTheMidline_InEveryCase()
    {
        var g = new PhantomGenerator(Quiet with { Size = 96 });
        foreach (var c in g.Generate(0, 40))
        {
            var heart = c.Masks["heart"];
            double sx = 0; int cnt = 0;
            for (int y = 0; y < 96; y++) for (int x = 0; x < 96; x++) if (heart[x, y] > 0.5f) { sx += x; cnt++; }
            Assert.True(cnt > 50, $"{c.Id}: heart mask has {cnt} pixels");
            Assert.True(sx / cnt > 48, $"{c.Id}: heart centroid x {sx / cnt:F1} should lie right of the image midline (48)");
        }
    }

    [Fact]
    public void RightDome_IsHigherThanTheLeft_InMostCases()
    {
        // the top of each hemidiaphragm, measured on the lungs mask: the lowest lung pixel in the column 40 % of the
        // lung's width from its lateral edge (the dome's summit lies 58 % of the way out from the spine)
        const int n = 192;
        var g = new PhantomGenerator(Quiet with { Size = n });
        int higher = 0, total = 0;
        foreach (var c in g.Generate(0, 30))
        {
            var m = c.Masks["lungs"];
            int Bottom(int col) { for (int y = n - 1; y >= 0; y--) if (m[col, y] > 0.5f) return y; return -1; }
            int mid = n / 2, l0 = n, l1 = -1, r0 = n, r1 = -1;
            for (int y = 0; y < n; y++)
                for (int x = 0; x < n; x++)
                {
                    if (m[x, y] < 0.5f) continue;
                    if (x < mid) { l0 = Math.Min(l0, x); l1 = Math.Max(l1, x); } else { r0 = Math.Min(r0, x); r1 = Math.Max(r1, x); }
                }
            int rightDome = Bottom(l0 + (int)(0.4 * (l1 - l0))), leftDome = Bottom(r1 - (int)(0.4 * (r1 - r0)));
            total++;
            if (rightDome < leftDome) higher++;
        }
        Assert.True(higher >= 0.7 * total, $"the right dome is higher in only {higher} of {total} cases");
    }

    [Fact]
    public void GastricBubble_IsDarkerThanTheAbdomenAroundIt()
    {
        var idx = Find(Quiet, s => s.GastricBubble && s.Findings.Effusion is null && s.Findings.Atelectasis is null && s.Findings.Consolidation is null, 6);
        Assert.Equal(6, idx.Count);
        const int n = 128;
        foreach (int i in idx)
        {
            var s = PhantomSampler.Sample(Quiet, i);
            var img = Render(s, n).Image;
            var (bx, by) = ToImage(s, s.Xs + 0.17f, s.DomeL + 0.045f, n);
            double inner = 0, ring = 0; int ni = 0, nr = 0;
            for (int y = by - 12; y <= by + 12; y++)
                for (int x = bx - 16; x <= bx + 16; x++)
                {
                    if ((uint)x >= n || (uint)y >= n) continue;
                    double ex = (x - bx) / (0.05 * s.ZoomX * n), ey = (y - by) / (0.025 * s.ZoomY * n);
                    double r2 = ex * ex + ey * ey;
                    if (r2 < 0.3) { inner += img[y * n + x]; ni++; }
                    else if (r2 > 2.5 && r2 < 5 && y > by) { ring += img[y * n + x]; nr++; } // the abdomen below and beside it
                }
            Assert.True(ni > 0 && nr > 0, $"case {i}: bubble at ({bx}, {by}) outside the image");
            Assert.True(inner / ni < ring / nr - 0.03, $"case {i}: bubble {inner / ni:F3} should be darker than the abdomen around it {ring / nr:F3}");
        }
    }

    [Fact]
    public void PleuralEffusion_WhitensTheCostophrenicAngleOfItsSide()
    {
        var idx = Find(Quiet, s => s.Findings.Effusion is { Side: "right" or "left" } && s.Findings.Consolidation is null && s.Findings.Atelectasis is null, 6);
        Assert.Equal(6, idx.Count);
        const int n = 128;
        foreach (int i in idx)
        {
            var with = PhantomSampler.Sample(Quiet, i);
            var without = PhantomSampler.Sample(Quiet, i);
            without.EffusionLevelR = without.EffusionLevelL = float.NaN;
            without.Findings = without.Findings with { Effusion = null };
            var a = Render(with, n); var b = Render(without, n);
            var lungs = b.Masks["lungs"];
            bool right = with.Findings.Effusion!.Side == "right";
            // the costophrenic angle: the lowest eighth of that lung's rows, lateral half
            int lo = n, hi = -1, xl = n, xr = -1;
            for (int y = 0; y < n; y++)
                for (int x = right ? 0 : n / 2; x < (right ? n / 2 : n); x++)
                    if (lungs[y * n + x] > 0.5f) { lo = Math.Min(lo, y); hi = Math.Max(hi, y); xl = Math.Min(xl, x); xr = Math.Max(xr, x); }
            int yCut = hi - (hi - lo) / 8, xMid = (xl + xr) / 2;
            bool Angle(int k) => lungs[k] > 0.5f && k / n >= yCut && (right ? k % n <= xMid : k % n >= xMid);
            double mw = Mean(a.Image, Angle), mo = Mean(b.Image, Angle);
            Assert.True(mw > mo + 0.05, $"case {i}: the {with.Findings.Effusion.Side} costophrenic angle should whiten with fluid ({mo:F3} -> {mw:F3})");
        }
    }

    [Fact]
    public void RibFracture_ChangesThePixelsOfTheNamedRibOnly()
    {
        var idx = Find(Quiet, s => s.Findings.Fracture is not null, 5);
        Assert.Equal(5, idx.Count);
        const int n = 192;
        foreach (int i in idx)
        {
            var with = PhantomSampler.Sample(Quiet, i);
            var without = PhantomSampler.Sample(Quiet, i);
            without.FractureSide = 0;
            without.Findings = without.Findings with { Fracture = null };
            var a = Render(with, n); var b = Render(without, n);
            var fx = a.Masks["fracture"];
            // the named posterior rib's path (centre line from the renderer's rib geometry), with its half thickness,
            // the fragment's step and 3 px of blur around it
            var renderer = new PhantomRenderer(with, n);
            int side = with.FractureSide, rib = with.Findings.Fracture!.Rib;
            bool OnTheRib(int k)
            {
                float u = with.CenterU + ((k % n + 0.5f) / n - 0.5f) / with.ZoomX, v = with.CenterV + ((k / n + 0.5f) / n - 0.5f) / with.ZoomY;
                float d = (u - with.Xs) * side;
                return d > 0 && MathF.Abs(v - renderer.RibY(rib - 1, d)) < 0.016f + 0.008f + 3f / (n * with.ZoomY);
            }
            int changed = 0, onRib = 0;
            for (int k = 0; k < a.Image.Length; k++)
            {
                if (MathF.Abs(a.Image[k] - b.Image[k]) < 0.02f) continue;
                changed++;
                if (OnTheRib(k)) onRib++;
            }
            Assert.True(changed >= 3, $"case {i}: the fracture changed only {changed} pixels");
            Assert.True(onRib >= 0.95 * changed, $"case {i}: {changed - onRib} of {changed} changed pixels lie off rib {rib} on the {with.Findings.Fracture.Side}");
            double cx = 0; int cnt = 0;
            for (int k = 0; k < fx.Length; k++) if (fx[k] > 0.5f) { cx += k % n; cnt++; }
            Assert.Equal(with.Findings.Fracture!.Side == "right", cx / cnt < n / 2.0);
        }
    }

    [SkippableFact]
    public void LungsMask_AreaAndExtent_LieInTheRangeOfTheRealSamplesMasks()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real-CXR sample is not beside this checkout");
        static (double area, double top, double bottom, double width) Stats(GrayImage m)
        {
            int n = m.Width, t = n, b = -1, l = n, r = -1; double area = 0;
            for (int y = 0; y < m.Height; y++)
                for (int x = 0; x < n; x++)
                    if (m[x, y] > 0.5f) { area++; t = Math.Min(t, y); b = Math.Max(b, y); l = Math.Min(l, x); r = Math.Max(r, x); }
            return (area / (n * m.Height), t / (double)m.Height, b / (double)m.Height, (r - l + 1) / (double)n);
        }
        var real = Directory.GetFiles(Path.Combine(TestPaths.RealSample!, "masks", "tb"), "*.png").Select(f => Stats(ImageIO.Read(f))).ToList();
        Assert.True(real.Count >= 8, $"expected the real sample's lung masks, found {real.Count}");
        var phantom = new PhantomGenerator(new PhantomOptions { Size = 128, Seed = 0 }).Generate(0, 60).Select(c => Stats(c.Masks["lungs"])).ToList();
        void Check(string name, Func<(double area, double top, double bottom, double width), double> f, double tol)
        {
            double rm = real.Average(f), pm = phantom.Average(f), lo = real.Min(f), hi = real.Max(f);
            Assert.True(Math.Abs(pm - rm) <= tol, $"lungs {name}: phantom mean {pm:F3}, real mean {rm:F3} (tolerance {tol})");
            int inside = phantom.Count(p => f(p) >= lo - tol && f(p) <= hi + tol);
            Assert.True(inside >= 0.9 * phantom.Count, $"lungs {name}: {phantom.Count - inside} of {phantom.Count} phantoms outside the real range {lo:F3}..{hi:F3} (+- {tol})");
        }
        Check("area fraction", p => p.area, 0.05);
        Check("top", p => p.top, 0.04);
        Check("bottom", p => p.bottom, 0.06);
        Check("width", p => p.width, 0.06);
    }
}
