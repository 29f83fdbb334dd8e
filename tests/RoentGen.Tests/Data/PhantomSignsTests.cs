using RoentGen.Data.Phantoms;

namespace RoentGen.Tests.Data;

/// <summary>
/// Four radiographic signs of the phantom world checked on the pixels, each by rendering a case twice with one element
/// of its spec changed (through the internal sampler and renderer): the deep sulcus of a supine pneumothorax, Kerley B
/// lines of interstitial edema, air bronchograms through a consolidation, and the silhouette sign of a right middle
/// lobe consolidation against the right heart border.
/// </summary>
public class PhantomSignsTests
{
    private static readonly PhantomOptions Quiet = new() { Size = 128, Seed = 11, NoiseLevel = 0 };

    private static PhantomRenderer.Result Render(PhantomSpec spec, int size) => new PhantomRenderer(spec, size).Render();

    private static List<int> Find(Func<PhantomSpec, bool> pred, int want, int scan = 20000)
    {
        var list = new List<int>();
        for (int i = 0; i < scan && list.Count < want; i++)
            if (pred(PhantomSampler.Sample(Quiet, i))) list.Add(i);
        return list;
    }

    private static bool Uncluttered(PhantomFindings f) =>
        f.Effusion is null && f.Atelectasis is null && f.Devices is null && f.Lesion is null;

    [Fact]
    public void DeepSulcus_OnASupineAPPneumothorax_DeepensAndDarkensThatCostophrenicAngleOnly()
    {
        var idx = Find(s => s.View == "AP" && s.PtxSide != 0 && Uncluttered(s.Findings) && s.Findings.Consolidation is null, 5);
        Assert.Equal(5, idx.Count);
        const int n = 128;
        foreach (int i in idx)
        {
            var ap = PhantomSampler.Sample(Quiet, i);
            var pa = PhantomSampler.Sample(Quiet, i);
            pa.View = "PA"; // the same patient and pneumothorax, upright: no deep sulcus
            var a = Render(ap, n); var b = Render(pa, n);
            // image left shows the patient's right (side -1)
            bool imageLeft = ap.PtxSide < 0;
            int Bottom(float[] lungs, bool left)
            {
                // the lowest lung row in the outer quarter of that side's lung columns
                int x0 = n, x1 = -1;
                for (int y = 0; y < n; y++)
                    for (int x = left ? 0 : n / 2; x < (left ? n / 2 : n); x++)
                        if (lungs[y * n + x] > 0.5f) { x0 = Math.Min(x0, x); x1 = Math.Max(x1, x); }
                int w = (x1 - x0 + 1) / 4, lo = left ? x0 : x1 - w, hi = left ? x0 + w : x1;
                int bottom = -1;
                for (int y = 0; y < n; y++) for (int x = lo; x <= hi; x++) if (lungs[y * n + x] > 0.5f) bottom = Math.Max(bottom, y);
                return bottom;
            }
            int deep = Bottom(a.Masks["lungs"], imageLeft), upright = Bottom(b.Masks["lungs"], imageLeft);
            Assert.True(deep >= upright + 3, $"case {i}: the {(imageLeft ? "right" : "left")} costophrenic angle should reach lower on AP ({upright} -> {deep})");
            Assert.Equal(Bottom(b.Masks["lungs"], !imageLeft), Bottom(a.Masks["lungs"], !imageLeft)); // the other side is unchanged
            // the deepened angle is pneumothorax and lucent: darker than the upper abdomen it replaces
            var ptx = a.Masks["pneumothorax"];
            int newPixels = 0, inPtx = 0; double dNew = 0, dOld = 0;
            for (int k = 0; k < n * n; k++)
            {
                if (a.Masks["lungs"][k] < 0.5f || b.Masks["lungs"][k] > 0.5f) continue;
                // away from the upright lung's edge (the masks' soft edges differ there by a pixel)
                bool edge = false;
                foreach (int nb in new[] { k - 1, k + 1, k - n, k + n })
                    if (nb >= 0 && nb < n * n && b.Masks["lungs"][nb] > 0.5f) edge = true;
                if (edge) continue;
                newPixels++; if (ptx[k] > 0.5f) inPtx++;
                dNew += a.Image[k]; dOld += b.Image[k];
            }
            Assert.True(newPixels > 5, $"case {i}: only {newPixels} new lung pixels");
            Assert.True(inPtx >= 0.75 * newPixels, $"case {i}: {inPtx} of {newPixels} deepened-sulcus pixels are in the pneumothorax mask");
            Assert.True(dNew / newPixels < dOld / newPixels - 0.1, $"case {i}: deep sulcus {dNew / newPixels:F3} should be darker than the abdomen there {dOld / newPixels:F3}");
        }
        // on an upright PA film the same pneumothorax leaves the angle where it was
        var paCase = Find(s => s.View == "PA" && s.PtxSide != 0 && Uncluttered(s.Findings), 1).Single();
        var with = PhantomSampler.Sample(Quiet, paCase);
        var without = PhantomSampler.Sample(Quiet, paCase);
        without.PtxSide = 0; without.Findings = without.Findings with { Pneumothorax = null };
        var lw = Render(with, n).Masks["lungs"]; var lo2 = Render(without, n).Masks["lungs"];
        int Lowest(float[] m) { for (int y = n - 1; y >= 0; y--) for (int x = 0; x < n; x++) if (m[y * n + x] > 0.5f) return y; return -1; }
        Assert.Equal(Lowest(lo2), Lowest(lw));
    }

    [Fact]
    public void KerleyBLines_OfEdema_AddHorizontalLinesAtTheRightLateralBase()
    {
        var idx = Find(s => s.Findings.Edema is not null && Uncluttered(s.Findings) && s.Findings.Consolidation is null && s.PtxSide == 0, 6);
        Assert.Equal(6, idx.Count);
        const int n = 256;
        int passed = 0; var report = new List<string>();
        foreach (int i in idx)
        {
            var with = PhantomSampler.Sample(Quiet, i);
            var without = PhantomSampler.Sample(Quiet, i);
            without.Findings = without.Findings with { Edema = null };
            without.EdemaStrength = 0;
            var a = Render(with, n); var b = Render(without, n);
            var lungs = b.Masks["lungs"];
            // the patient's right lung (image left; its vessels are drawn before the left's, so they match between the two):
            // the outer quarter of its columns, the lowest third of its rows
            int x0 = n, x1 = -1, y0 = n, y1 = -1;
            for (int y = 0; y < n; y++) for (int x = 0; x < n / 2; x++)
                if (lungs[y * n + x] > 0.5f) { x0 = Math.Min(x0, x); x1 = Math.Max(x1, x); y0 = Math.Min(y0, y); y1 = Math.Max(y1, y); }
            int xr = x0 + (x1 - x0) / 4, yt = y1 - (y1 - y0) / 3;
            // horizontal lines show as vertical second differences that horizontal second differences do not match
            double Lines(float[] img)
            {
                double v = 0, h = 0;
                for (int y = Math.Max(1, yt); y < Math.Min(n - 1, y1); y++)
                    for (int x = Math.Max(1, x0); x <= xr; x++)
                    {
                        int k = y * n + x;
                        if (lungs[k] < 0.5f) continue;
                        v += Math.Abs(2 * img[k] - img[k - n] - img[k + n]);
                        h += Math.Abs(2 * img[k] - img[k - 1] - img[k + 1]);
                    }
                return v - h;
            }
            double lw = Lines(a.Image), lo = Lines(b.Image);
            report.Add($"case {i}: {lo:F3} -> {lw:F3}");
            if (lw > lo + 0.5) passed++;
        }
        Assert.True(passed >= 5, "horizontal-line energy at the right lateral base, without -> with edema: " + string.Join("; ", report));
    }

    [Fact]
    public void AirBronchograms_AreLucentBranchesInsideTheConsolidation()
    {
        // lobes that do not lie behind the heart (a lingular or middle lobe one is partly hidden by it)
        var idx = Find(s => s.Findings.Consolidation is { Lobe: "right upper lobe" or "left upper lobe" or "right lower lobe" } && Uncluttered(s.Findings) && s.PtxSide == 0 && s.Findings.Edema is null, 5);
        Assert.Equal(5, idx.Count);
        const int n = 256;
        foreach (int i in idx)
        {
            var with = PhantomSampler.Sample(Quiet, i);
            var without = PhantomSampler.Sample(Quiet, i);
            without.AirBronchograms = false;
            var a = Render(with, n); var b = Render(without, n);
            var cons = a.Masks["consolidation"];
            // the consolidation mask dilated by two pixels: bronchi run to its edge
            var near = new bool[n * n];
            for (int y = 0; y < n; y++) for (int x = 0; x < n; x++)
                if (cons[y * n + x] > 0.5f)
                    for (int dy = -2; dy <= 2; dy++) for (int dx = -2; dx <= 2; dx++)
                    { int yy = y + dy, xx = x + dx; if ((uint)yy < n && (uint)xx < n) near[yy * n + xx] = true; }
            int area = cons.Count(v => v > 0.5f), changed = 0, inside = 0, darker = 0;
            for (int k = 0; k < n * n; k++)
            {
                float d = a.Image[k] - b.Image[k];
                if (Math.Abs(d) < 0.03f) continue; // clearly changed (the film's blur spreads a faint halo around each bronchus)
                changed++; if (near[k]) inside++; if (d < 0) darker++;
            }
            Assert.True(changed > 0.02 * area && changed < 0.5 * area, $"case {i} ({with.Findings.Consolidation!.Lobe}, ConsD {with.ConsD:F3} ConsV {with.ConsV:F3} Rx {with.ConsRx:F3} Ry {with.ConsRy:F3} hilum {with.HilumVR:F3}/{with.HilumVL:F3}): {changed} pixels changed for a consolidation of {area}: bronchi should be lines through it, not nothing or the whole of it");
            Assert.True(inside >= 0.95 * changed, $"case {i}: {inside} of {changed} changed pixels lie in the consolidation");
            Assert.Equal(changed, darker); // air: every changed pixel is darker
        }
    }

    [Fact]
    public void SilhouetteSign_RightMiddleLobeConsolidation_EffacesTheRightHeartBorder()
    {
        var idx = Find(s => s.Findings.Consolidation is { Lobe: "right middle lobe" } && Uncluttered(s.Findings) && s.PtxSide == 0 && s.Findings.Edema is null, 5);
        Assert.Equal(5, idx.Count);
        const int n = 256;
        int passed = 0; var report = new List<string>();
        foreach (int i in idx)
        {
            var with = PhantomSampler.Sample(Quiet, i);
            var without = PhantomSampler.Sample(Quiet, i);
            without.ConsSide = 0; without.Findings = without.Findings with { Consolidation = null };
            var a = Render(with, n); var b = Render(without, n);
            var heart = b.Masks["heart"]; var cons = a.Masks["consolidation"];
            // the right heart border, row by row: the first heart pixel from the image left; its contrast is the step from
            // the lung beside it to the heart; rows where the consolidation reaches within 4 px of the border
            double cw = 0, co = 0; int rows = 0;
            for (int y = 0; y < n; y++)
            {
                int xb = -1;
                for (int x = 0; x < n; x++) if (heart[y * n + x] > 0.5f) { xb = x; break; }
                if (xb < 8 || xb > n - 8) continue;
                bool touches = false;
                for (int x = xb - 6; x < xb; x++) if (cons[y * n + x] > 0.5f) touches = true;
                if (!touches) continue;
                double Step(float[] img) => (img[y * n + xb + 2] + img[y * n + xb + 3]) / 2 - (img[y * n + xb - 4] + img[y * n + xb - 3]) / 2;
                cw += Step(a.Image); co += Step(b.Image); rows++;
            }
            report.Add($"case {i}: {rows} rows, border step {co / Math.Max(1, rows):F3} -> {cw / Math.Max(1, rows):F3}");
            if (rows >= 3 && cw / rows < 0.5 * (co / rows)) passed++;
        }
        Assert.True(passed >= 4, "right heart border contrast without -> with a right middle lobe consolidation: " + string.Join("; ", report));
    }
}
