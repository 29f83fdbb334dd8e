using System.Buffers;
using System.Runtime.CompilerServices;

namespace RoentGen.Data.Phantoms;

/// <summary>
/// Draws a case by float-array rasterisation: an attenuation map in patient coordinates built from analytic
/// shapes (body, lungs, heart, mediastinum, bones, vessels, findings, devices), resampled into the case's field
/// of view, blurred separably, exposed as 1 - exp(-k gain A), veiled by scatter, then given counter-based
/// white and correlated noise, collimator edges and the side marker. Coordinates are normalised (u, v in
/// [0, 1]); "side" -1 is the patient's right (image left), +1 the patient's left; "d" is the lateral distance
/// from the spine. Masks are drawn in patient coordinates and resampled with the image (then thresholded).
/// </summary>
internal sealed class PhantomRenderer
{
    private readonly PhantomSpec _s;
    private readonly int _n;
    private readonly float _px; // one pixel in normalised units

    /// <summary>Detector response per unit attenuation: sets the contrast between aerated lung (about 0.3 to 0.45) and mediastinum or abdomen (about 0.8 to 0.9).</summary>
    private const float DetectorGain = 1.7f;

    public PhantomRenderer(PhantomSpec spec, int size)
    {
        _s = spec; _n = size; _px = 1f / size;
    }

    public sealed class Result
    {
        public required float[] Image;
        public required Dictionary<string, float[]> Masks;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Smooth(float e0, float e1, float x)
    {
        float t = Math.Clamp((x - e0) / (e1 - e0), 0f, 1f);
        return t * t * (3 - 2 * t);
    }

    /// <summary>exp(-x^2), zero beyond |x| = 3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Gauss(float x) => x * x < 9 ? MathF.Exp(-x * x) : 0;

    private float L(int side) => side < 0 ? _s.LR : _s.LL;
    private float Dome(int side) => side < 0 ? _s.DomeR : _s.DomeL;

    /// <summary>
    /// The diaphragm's height at lateral distance d. On a supine (AP) film with a pneumothorax, pleural air collects in
    /// the anterior costophrenic recess of that side: the lateral angle is deeper (the deep sulcus sign), unless
    /// <paramref name="deepSulcus"/> is false (the collapsed lung itself does not follow it down).
    /// </summary>
    private float Diaphragm(int side, float d, bool deepSulcus = true)
    {
        float l = L(side), dome = Dome(side), dd = 0.42f * l;
        float cp = _s.VCp + (deepSulcus && side == _s.PtxSide && _s.View == "AP" ? 0.035f : 0);
        if (d >= dd) { float t = (d - dd) / (l - dd); return dome + (cp - dome) * t * t; }
        float tm = (dd - d) / dd;
        return dome + 0.3f * (_s.VCp - dome) * tm * tm;
    }

    /// <summary>
    /// The cardiac silhouette's border at height v: its distance from the spine on a side, 0 above the heart. The right
    /// border (right atrium) bulges out to <see cref="PhantomSpec.HeartWR"/> in its upper half and falls almost straight
    /// to the right cardiophrenic angle; the left border (left ventricle) widens to <see cref="PhantomSpec.HeartWL"/>
    /// low down and curves in to the apex on the left dome.
    /// </summary>
    private float HeartBorder(int side, float v)
    {
        float top = _s.HeartTop, bottom = Dome(side) + 0.01f;
        float t = (v - top) / (bottom - top);
        if (t <= 0) return 0;
        if (side < 0)
        {
            // right atrium: an arc from below the superior vena cava, widest just below its middle
            float tr = (t - 0.62f) / 0.62f;
            return tr >= 1 ? 0 : _s.HeartWR * MathF.Sqrt(1 - tr * tr);
        }
        // left ventricle: an arc from below the left hilum, widest low down, still wide where it meets the dome
        float tl = (t - 0.76f) / 0.62f;
        return tl >= 1 ? 0 : _s.HeartWL * MathF.Sqrt(1 - tl * tl);
    }

    /// <summary>Signed distance-like depth inside the (upright, without the deep sulcus) lung field of a side (positive inside).</summary>
    private float LungDepth(int side, float d, float v)
    {
        float l = L(side);
        float t = Math.Clamp((v - _s.VApex) / (_s.VCp - _s.VApex), 0f, 1f);
        float outer = l * (0.6f + 0.4f * MathF.Sqrt(t) + 0.05f * t * (1 - t));
        float da = 0.45f * l, w = 0.5f * l;
        float top = _s.VApex + 0.14f * ((d - da) / w) * ((d - da) / w);
        float inner = v < _s.HilumVR - 0.04f ? _s.MedUpper : _s.MedLower + (_s.MedUpper - _s.MedLower) * Smooth(_s.HilumVR + 0.02f, _s.HilumVR - 0.04f, v);
        float bottom = Diaphragm(side, d, deepSulcus: false) - v;
        return MathF.Min(MathF.Min(v - top, bottom), MathF.Min(outer - d, d - inner));
    }

    private readonly List<float[]> _rented = [];

    /// <summary>A cleared n x n buffer from the shared pool (may be longer than n * n), returned when <see cref="Render"/> ends.</summary>
    private float[] Rent()
    {
        var a = ArrayPool<float>.Shared.Rent(_n * _n);
        Array.Clear(a, 0, _n * _n);
        _rented.Add(a);
        return a;
    }

    public Result Render()
    {
        int n = _n;
        var s = _s;
        var f = s.Findings;
        // canvas buffers are pooled (rented cleared, returned at the end): only the image and the projected masks escape
        var A = Rent();                    // attenuation
        var bone = Rent();                 // bone layer (ribs, clavicles)
        var vessels = Rent();              // lung markings, multiplied by aeration later
        float[]? bronchi = f.Consolidation is null || !s.AirBronchograms ? null : AirBronchograms();
        string? consLobe = f.Consolidation?.Lobe;
        bool spiculated = f.Lesion is { } les && s.NoduleSpiculated && (les.IsMass || les.SizeMm > 15);
        bool calcified = f.Lesion is { IsMass: false } les2 && les2.SizeMm <= 14 && s.NoduleCalcified;
        int consFissure = consLobe == "right upper lobe" ? -1 : consLobe == "right middle lobe" ? 1 : 0;
        float minorFissure = s.HilumVR + 0.015f;
        bool apView = s.View == "AP";
        float effusionVeil = f.Effusion is null ? 0 : f.Effusion.Size switch { "small" => 0.08f, "moderate" => 0.16f, _ => 0.25f };
        var devices = Rent();              // radio-opaque devices
        var masks = new Dictionary<string, float[]>();
        float[] M(string k) { if (!masks.TryGetValue(k, out var m)) masks[k] = m = Rent(); return m; }
        var lungs = M("lungs"); var heart = M("heart");
        float[]? mEff = f.Effusion is null ? null : M("pleural_effusion");
        float[]? mPtx = f.Pneumothorax is null ? null : M("pneumothorax");
        float[]? mCons = f.Consolidation is null ? null : M("consolidation");
        float[]? mEdema = f.Edema is null ? null : M("edema");
        float[]? mLes = f.Lesion is null ? null : M(f.Lesion.IsMass ? "mass" : "nodule");
        float[]? mAtel = f.Atelectasis is null ? null : M("atelectasis");
        float[]? mFx = f.Fracture is null ? null : M("fracture");

        DrawRibsAndClavicles(bone, mFx);
        DrawVessels(vessels);
        if (f.Devices is not null) DrawDevices(devices);

        float e = MathF.Max(0.004f, 0.6f * _px); // edge softness
        float ptxCd = 0.05f, ptxCv = 0;
        if (s.PtxSide != 0) ptxCv = Dome(s.PtxSide) - 0.03f;
        // geometry that depends only on the column or only on the row
        var colSide = new int[n]; var colD = new float[n]; var colTop = new float[n]; var colDia = new float[n];
        for (int x = 0; x < n; x++)
        {
            float u = (x + 0.5f) * _px;
            int side = u < s.Xs ? -1 : 1;
            float d = (u - s.Xs) * side, l = L(side), da = 0.45f * l, w = 0.5f * l;
            colSide[x] = side; colD[x] = d;
            colTop[x] = s.VApex + 0.14f * ((d - da) / w) * ((d - da) / w);
            colDia[x] = Diaphragm(side, d);
        }
        var rowOuter = new float[n]; var rowInner = new float[n]; var rowHw = new float[n];
        for (int y = 0; y < n; y++)
        {
            float v = (y + 0.5f) * _px;
            float t = Math.Clamp((v - s.VApex) / (s.VCp - s.VApex), 0f, 1f);
            rowOuter[y] = 0.6f + 0.4f * MathF.Sqrt(t) + 0.05f * t * (1 - t);
            rowInner[y] = v < s.HilumVR - 0.04f ? s.MedUpper : s.MedLower + (s.MedUpper - s.MedLower) * Smooth(s.HilumVR + 0.02f, s.HilumVR - 0.04f, v);
            rowHw[y] = s.NeckHalfWidth + (s.BodyHalfWidth - s.NeckHalfWidth) * Smooth(s.VApex - 0.1f, s.VApex + 0.05f, v);
        }
        // the cardiac silhouette's borders, row by row (0 above the heart)
        var rowHR = new float[n]; var rowHL = new float[n];
        for (int y = 0; y < n; y++)
        {
            float v = (y + 0.5f) * _px;
            rowHR[y] = HeartBorder(-1, v); rowHL[y] = HeartBorder(1, v);
        }
        var texture = LungTexture();
        float bodyCx = 0.5f + 0.01f * s.Rotation;
        // only the part of the patient that the field of view shows (plus a pixel for the bilinear projection)
        int wx0 = Math.Clamp((int)MathF.Floor((s.CenterU - 0.5f / s.ZoomX) * n) - 2, 0, n - 1), wx1 = Math.Clamp((int)MathF.Ceiling((s.CenterU + 0.5f / s.ZoomX) * n) + 2, 0, n - 1);
        int wy0 = Math.Clamp((int)MathF.Floor((s.CenterV - 0.5f / s.ZoomY) * n) - 2, 0, n - 1), wy1 = Math.Clamp((int)MathF.Ceiling((s.CenterV + 0.5f / s.ZoomY) * n) + 2, 0, n - 1);
        for (int y = wy0; y <= wy1; y++)
        {
            float v = (y + 0.5f) * _px;
            float outerF = rowOuter[y], innerRow = rowInner[y], hw = rowHw[y], invHw = 1 / hw;
            for (int x = wx0; x <= wx1; x++)
            {
                int i = y * n + x;
                float u = (x + 0.5f) * _px;
                int side = colSide[x];
                float d = colD[x];
                // body and soft tissue
                float bx = (u - bodyCx) * invHw;
                float body = 1 - bx * bx;
                float a = body > 0 ? 0.95f * s.Soft * MathF.Sqrt(body) * (body < 0.04f ? Smooth(0, 0.04f, body) : 1) : 0;
                // lungs
                float depth = MathF.Min(MathF.Min(v - colTop[x], colDia[x] - v), MathF.Min(L(side) * outerF - d, d - innerRow));
                float inLung = Smooth(-e, e, depth);
                float air = inLung * (0.8f + 0.2f * Math.Clamp(depth / 0.06f, 0, 1));
                float diaV = colDia[x];
                // pneumothorax: the lung collapses towards a medial-basal centre
                float collapsed = 1, pleuraLine = 0;
                if (side == s.PtxSide && inLung > 0)
                {
                    float k = s.PtxK;
                    float qd = ptxCd + (d - ptxCd) / k, qv = ptxCv + (v - ptxCv) / k;
                    float dq = LungDepth(side, qd, qv) * k;
                    collapsed = Smooth(-e, e, dq);
                    pleuraLine = dq * dq < 6 * e * e ? MathF.Exp(-(dq * dq) / (0.8f * e * e)) * inLung : 0;
                    if (mPtx is not null && inLung > 0.5f && collapsed < 0.5f) mPtx[i] = 1;
                }
                float ptxRegion = inLung * (1 - collapsed);
                a -= 0.68f * air + 0.1f * ptxRegion;
                a += 0.16f * pleuraLine;
                // lung markings (absent where the lung has collapsed away)
                a += vessels[i] * air * collapsed;
                // hila
                float hv = side < 0 ? s.HilumVR : s.HilumVL;
                float hd = (d - 0.085f) / 0.03f, hh = (v - hv) / 0.045f;
                float hq = hd * hd + hh * hh;
                if (hq < 9 && inLung > 0) a += 0.12f * MathF.Exp(-hq) * inLung;
                // heart
                float hIn = 0;
                float ra = air; // air not yet replaced by something denser (heart, fluid, consolidation, ...)
                float hb = side < 0 ? rowHR[y] : rowHL[y];
                if (hb > 0 && d < hb + 2 * e && v < diaV + 0.012f)
                {
                    // the heart replaces most of the lung in front of the retrocardiac lower lobe; thickest in its middle
                    hIn = Smooth(hb + e, hb - e, d) * Smooth(diaV + 0.01f, diaV - 0.004f, v);
                    float q = d / hb;
                    a += hIn * (0.6f * ra + 0.02f + 0.06f * MathF.Sqrt(MathF.Max(0, 1 - q * q)));
                    ra *= 1 - hIn;
                    if (hIn > 0.5f) heart[i] = 1;
                }
                // parenchymal texture (summed coarse noise), only where the lung is aerated
                a += air * collapsed * 0.05f * s.TextureStrength * texture[i];
                // aortic knob
                float kx = (u - s.KnobX) / s.KnobR, ky = (v - s.KnobY) / s.KnobR;
                float kr2 = kx * kx + ky * ky;
                float knob = 0;
                if (kr2 < 1.5f)
                {
                    { float kk = Smooth(1.1f, 0.85f, kr2); a += (0.68f * ra + 0.08f) * kk; ra *= 1 - kk; knob = kk; }
                    if (s.KnobCalcified && ky < 0.1f) a += 0.45f * Gauss((MathF.Sqrt(kr2) - 0.9f) / 0.08f);
                }
                // the visible lung field excludes the heart and the aortic knob (the real masks' convention); so does the pneumothorax
                if (inLung > 0.5f && hIn < 0.5f && knob < 0.5f) lungs[i] = 1;
                if (knob >= 0.5f && mPtx is not null) mPtx[i] = 0;
                // descending aorta: a soft-tissue band along the left of the spine from the knob to the diaphragm
                if (side > 0 && v > s.KnobY && v < diaV && d < 0.05f)
                    a += 0.05f * Smooth(0.05f, 0.035f, d) * Smooth(0.0f, 0.01f, d) * Smooth(s.KnobY, s.KnobY + 0.03f, v);
                // trachea and main bronchi
                if (v < s.VCarina)
                {
                    float tx = (u - s.TracheaX) / (s.TracheaW * 0.5f);
                    a -= 0.3f * Smooth(1.15f, 0.8f, MathF.Abs(tx)) * Smooth(0, 0.04f, v);
                }
                else if (v < s.VCarina + 0.1f)
                {
                    float dv = v - s.VCarina;
                    float cxR = s.TracheaX - dv * 0.55f, cxL = s.TracheaX + dv * 0.9f;
                    float wb = s.TracheaW * 0.35f * (1 - dv / 0.12f);
                    if (side < 0 && dv < 0.07f) a -= 0.22f * Smooth(1.2f, 0.7f, MathF.Abs(u - cxR) / wb);
                    if (side > 0 && dv < 0.08f) a -= 0.22f * Smooth(1.2f, 0.7f, MathF.Abs(u - cxL) / wb);
                }
                // spine (faint behind the mediastinum)
                float sx = MathF.Abs(u - s.Xs) / 0.032f;
                if (sx < 1.3f)
                {
                    float ph = (v - s.VApex) / s.RibSpacing;
                    float cph = MathF.Cos(MathF.PI * ph), c4 = cph * cph * cph * cph; float endplate = c4 * c4 * c4;
                    float pedicle = Gauss((sx - 0.75f) / 0.15f) * 0.5f;
                    a += s.Bone * (0.18f + 0.1f * endplate + 0.14f * pedicle) * Smooth(1.3f, 0.9f, sx);
                }
                // breasts (F) or pectoral soft tissue (M) over the lower lung zones
                float by = (v - (s.VCp - 0.07f)) / s.BreastRy;
                if (by > -1 && by < 1)
                {
                    float bxx = (d - 0.2f) / s.BreastRx;
                    float br = bxx * bxx + by * by;
                    if (br < 1) a += 0.8f * s.BreastDensity * Smooth(1, 0.7f, br) * Smooth(-0.6f, 0.7f, by) * (0.3f + 0.7f * air); // the lower margin is sharp, the upper fades
                }
                // scapulae (AP: projected over the upper lateral lungs; PA: rotated off them)
                {
                    float shift = s.Scapulae ? 0 : 0.08f;
                    float l = L(side);
                    float sd0 = 0.25f + shift, sd1 = l + 0.06f + shift;
                    if (d > sd0 - 0.02f && v > s.VApex - 0.04f && v < s.VApex + 0.3f)
                    {
                        float t = (v - (s.VApex - 0.03f)) / 0.31f; // 0 at top, 1 at the tip
                        float medial = sd0 + (sd1 - 0.04f - sd0) * t * t;
                        float lateral = sd1 - 0.02f * t;
                        float sc = Smooth(medial - 0.004f, medial + 0.006f, d) * Smooth(lateral + 0.01f, lateral - 0.01f, d) * Smooth(1.0f, 0.9f, t) * Smooth(0, 0.05f, t);
                        a += 0.16f * s.Bone * sc + (sc > 0 ? 0.1f * s.Bone * sc * Gauss((d - medial) / 0.006f) : 0);
                    }
                }
                // humeral heads at the shoulders
                if (v < s.VApex + 0.09f)
                {
                    float hd2 = (d - (s.BodyHalfWidth - 0.015f)) / 0.055f, hv2 = (v - (s.VApex + 0.015f)) / 0.06f;
                    float hr2 = hd2 * hd2 + hv2 * hv2;
                    if (hr2 < 1.2f) a += 0.3f * s.Bone * Smooth(1.1f, 0.9f, hr2);
                }
                // gastric bubble under the left hemidiaphragm
                if (s.GastricBubble && side > 0)
                {
                    float gd = (d - 0.17f) / 0.05f, gv = (v - (s.DomeL + 0.045f)) / 0.025f;
                    float gr = gd * gd + gv * gv;
                    if (gr < 1.2f) a -= 0.35f * Smooth(1.1f, 0.7f, gr) * Smooth(diaV + 0.008f, diaV + 0.02f, v);
                }
                // --- findings ---
                // pleural effusion: fluid in the dependent pleural space with a meniscus rising laterally
                float level = side < 0 ? s.EffusionLevelR : s.EffusionLevelL;
                if (!float.IsNaN(level))
                {
                    float l = L(side);
                    float tl = Math.Clamp(d / l, 0, 1.2f);
                    float meniscus = level - 0.06f * tl * tl * tl;
                    float band = MathF.Max(0.006f, e);
                    float fluidLung = Smooth(-e * 2, e, depth + 0.01f);
                    float fluid = fluidLung * Smooth(meniscus - band, meniscus + band, v);
                    a += fluid * (0.68f * ra + 0.08f * (1 - hIn)); ra *= 1 - fluid;
                    // supine (AP): the fluid layers behind the lung, a veil over the hemithorax that thickens downwards
                    if (apView) { float veil = effusionVeil * inLung * Smooth(s.VApex, diaV, v); a += veil * ra; ra *= 1 - veil; }
                    if (mEff is not null && fluid > 0.5f && inLung > 0.5f) mEff[i] = 1;
                }
                if (s.ConsSide == side && mCons is not null)
                {
                    // upper and middle lobe consolidations reach the minor fissure, which gives them a sharp horizontal edge
                    float ry = s.ConsRy;
                    if (consFissure < 0 && v > s.ConsV) ry = MathF.Max(ry, minorFissure - s.ConsV);
                    if (consFissure > 0 && v < s.ConsV) ry = MathF.Max(ry, s.ConsV - minorFissure);
                    float cdx = (d - s.ConsD) / s.ConsRx, cdy = (v - s.ConsV) / ry;
                    float cr = MathF.Sqrt(cdx * cdx + cdy * cdy);
                    if (cr < 1.6f)
                    {
                        float th = MathF.Atan2(cdy, cdx);
                        float rmod = 1 + 0.2f * MathF.Sin(3 * th + s.ConsPh1) + 0.1f * MathF.Sin(5 * th + s.ConsPh2);
                        float blob = Smooth(1.0f, 0.65f, cr / rmod);
                        if (consFissure < 0) blob *= Smooth(minorFissure + e, minorFissure - e, v);
                        if (consFissure > 0) blob *= Smooth(minorFissure - e, minorFissure + e, v);
                        float patch = 0.75f + 0.25f * MathF.Sin(45 * d + s.ConsPh3) * MathF.Sin(38 * v + s.ConsPh1);
                        // air bronchograms: the bronchi stay aerated inside the airless lobe
                        float br = bronchi is null ? 0 : bronchi[i] * blob;
                        a += blob * patch * ra * 0.8f - 0.45f * br * ra; ra *= 1 - blob * 0.8f;
                        if (blob > 0.5f && inLung > 0.5f) mCons[i] = 1;
                    }
                }
                if (mEdema is not null && inLung > 0)
                {
                    float ed = (d - 0.09f) / (0.11f + 0.04f * s.EdemaStrength), ev = (v - hv) / (0.12f + 0.05f * s.EdemaStrength);
                    float haze = ed * ed + ev * ev < 9 ? MathF.Exp(-(ed * ed + ev * ev)) : 0;
                    float mottle = 0.85f + 0.15f * MathF.Sin(70 * u + 3 * MathF.Sin(50 * v)) * MathF.Sin(64 * v);
                    a += ra * haze * mottle * 0.5f * s.EdemaStrength;
                    if (haze > 0.4f && inLung > 0.5f) mEdema[i] = 1;
                }
                if (mLes is not null && s.LesionSide == side)
                {
                    float ld = d - s.LesionD, lv = v - s.LesionV;
                    float rr = MathF.Sqrt(ld * ld + lv * lv) / s.LesionR;
                    if (rr < 2.2f)
                    {
                        float edge = MathF.Max(0.12f, e / s.LesionR);
                        if (spiculated)
                        {
                            // spicules: thin strands radiating from a lobulated margin
                            float th = MathF.Atan2(lv, ld);
                            float sp = MathF.Sin(11 * th + s.NoduleSpikePhase), sp2 = sp * sp; float spike = sp2 * sp2 * sp2 * sp2;
                            float r = rr / (1 + 0.1f * MathF.Sin(4 * th + s.NoduleSpikePhase));
                            a += 0.35f * spike * Smooth(2.1f, 1.0f, rr) * MathF.Max(ra, 0.3f) * (rr > 0.9f ? 1 : 0);
                            rr = r;
                        }
                        if (rr < 1.3f)
                        {
                            a += 0.6f * Smooth(1 + edge, 1 - edge, rr) * (0.6f + 0.4f * MathF.Sqrt(MathF.Max(0, 1 - rr * rr))) * MathF.Max(ra, 0.3f);
                            // a calcified granuloma: dense centre (benign pattern)
                            if (calcified) a += 0.6f * Smooth(0.75f, 0.45f, rr);
                        }
                        if (rr < 1 && inLung > 0.5f) mLes[i] = 1;
                    }
                }
                if (mAtel is not null && (s.AtelSides & (side < 0 ? 1 : 2)) != 0)
                {
                    float dome = Dome(side);
                    float val;
                    if (!s.AtelLobar)
                    {
                        // plate-like: a thin band above the dome, slightly tilted
                        float lineV = dome - s.AtelV + s.AtelTilt * (d - 0.2f);
                        float dist = MathF.Abs(v - lineV);
                        float th = MathF.Max(0.007f, 1.2f * _px);
                        val = MathF.Exp(-(dist * dist) / (th * th)) * Smooth(0.08f, 0.11f, d) * Smooth(0.33f, 0.28f, d);
                    }
                    else if (s.AtelV > 0.5f)
                    {
                        // right upper lobe collapse: a triangle at the upper medial right lung
                        float t = (v - s.VApex) / 0.16f;
                        val = Smooth(1.05f, 0.95f, t) * Smooth(0.22f * (1 - t) + 0.02f, 0.22f * (1 - t) - 0.02f, d);
                    }
                    else
                    {
                        // lower lobe collapse: a triangle against the spine, behind the heart
                        float top = (side < 0 ? s.HilumVR : s.HilumVL) + 0.03f;
                        float t = (v - top) / (dome + 0.02f - top);
                        float w = 0.03f + 0.13f * Math.Clamp(t, 0, 1);
                        val = Smooth(-0.05f, 0.05f, t) * Smooth(w + 0.01f, w - 0.01f, d);
                    }
                    a += val * ra * 0.75f;
                    if (val > 0.5f && inLung > 0.5f) mAtel[i] = 1;
                }
                a += devices[i];
                // bone shows against aerated lung; over the thick mediastinum and abdomen the display compresses it
                A[i] = a + bone[i] * (0.6f + 0.4f * inLung);
            }
        }
        // the pneumothorax is air in the pleural space over the lung field, not over the heart
        if (mPtx is not null)
            for (int i = 0; i < n * n; i++) if (heart[i] > 0) mPtx[i] = 0;
        // ground-truth masks that do not depend on the lung loop
        if (f.Devices is not null)
        {
            var m = M("support_devices");
            for (int i = 0; i < n * n; i++) m[i] = devices[i] > 0.3f ? 1 : 0;
        }
        // the field of view: radiographs are collimated, cropped and resized, so the thorax fills a varying part of the frame
        A = Project(A, clampOutside: true);
        foreach (var key in masks.Keys.ToList())
        {
            masks[key] = ProjectMask(masks[key]);
        }
        for (int p = 0; p < s.BlurPasses; p++) Blur121(A, n);
        var img = new float[n * n];
        float gain = s.Gain, gamma = s.Gamma, sigma = s.NoiseSigma;
        // exposure curve I = (1 - exp(-gain * A))^gamma as a lookup table over A in [0, 6)
        const int lutSize = 1024; const float lutMax = 6f;
        var lut = new float[lutSize + 2];
        for (int k = 0; k < lut.Length; k++) lut[k] = MathF.Pow(1 - MathF.Exp(-DetectorGain * gain * (k * lutMax / lutSize + 0.02f)), gamma);
        const float lutScale = lutSize / lutMax;
        for (int i = 0; i < img.Length; i++)
        {
            float pos = Math.Clamp(A[i], 0, lutMax) * lutScale;
            int k = (int)pos; float fr = pos - k;
            img[i] = lut[k] + (lut[k + 1] - lut[k]) * fr;
        }
        // scatter: a broad veil that lifts the dark lungs next to the bright mediastinum and abdomen
        if (s.Scatter > 0)
        {
            var veil = BlockMeans(img, 8);
            for (int i = 0; i < img.Length; i++) img[i] *= 1 - s.Scatter;
            UpsampleAdd(veil, 8, img, s.Scatter);
        }
        if (sigma > 0)
        {
            // quantum noise: white plus a detector-correlated part (white noise blurred twice), stronger where fewer photons arrive
            // correlated part: Gaussian-like values on a grid of half the resolution, upsampled bilinearly (grain of about 2 px)
            int g = n / 2;
            var grid = new float[g * g];
            for (int k = 0; k < grid.Length; k++)
            {
                ulong h2 = PhantomRandom.Mix(s.TextureKey ^ ((ulong)k * 0x9E3779B97F4A7C15UL));
                grid[k] = ((h2 & 0xFFFF) + ((h2 >> 16) & 0xFFFF) + ((h2 >> 32) & 0xFFFF)) * (1f / 65536f) - 1.5f;
            }
            var corr = Rent();
            UpsampleAdd(grid, g, corr, 1);
            float cs = 0.6f * s.CorrelatedNoise;
            for (int i = 0; i < img.Length; i++)
            {
                // one 64-bit hash per pixel gives three 16-bit uniforms: their sum is close to Gaussian
                ulong h = PhantomRandom.Mix(s.NoiseKey ^ ((ulong)i * 0xA24BAED4963EE407UL));
                float white = ((h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF)) * (1f / 65536f) - 1.5f;
                float I = img[i];
                img[i] = I + sigma * 2 * (0.5f * white + cs * corr[i]) * (0.6f + 0.6f * I);
            }
        }
        Collimate(img);
        if (s.Marker != 0) DrawMarker(img);
        for (int i = 0; i < img.Length; i++) img[i] = Math.Clamp(img[i], 0f, 1f);
        foreach (var buffer in _rented) ArrayPool<float>.Shared.Return(buffer);
        _rented.Clear();
        return new Result { Image = img, Masks = masks };
    }

    /// <summary>
    /// Resamples a patient-space layer into the image's field of view (bilinear): image (u, v) shows patient
    /// (Cu + (u - 0.5) / Zx, Cv + (v - 0.5) / Zy). Outside the patient canvas the edge is repeated when
    /// <paramref name="clampOutside"/> is set, else 0.
    /// </summary>
    private float[] Project(float[] src, bool clampOutside)
    {
        var s = _s; int n = _n;
        var dst = clampOutside ? Rent() : new float[n * n];
        var x0 = new int[n]; var x1 = new int[n]; var fx = new float[n]; var okX = new bool[n];
        for (int x = 0; x < n; x++)
        {
            float pu = (s.CenterU + ((x + 0.5f) * _px - 0.5f) / s.ZoomX) * n - 0.5f;
            okX[x] = pu >= -0.5f && pu <= n - 0.5f;
            pu = Math.Clamp(pu, 0, n - 1);
            x0[x] = (int)pu; x1[x] = Math.Min(n - 1, x0[x] + 1); fx[x] = pu - x0[x];
        }
        for (int y = 0; y < n; y++)
        {
            float pv = (s.CenterV + ((y + 0.5f) * _px - 0.5f) / s.ZoomY) * n - 0.5f;
            bool okY = pv >= -0.5f && pv <= n - 0.5f;
            if (!okY && !clampOutside) continue;
            pv = Math.Clamp(pv, 0, n - 1);
            int y0 = (int)pv, y1 = Math.Min(n - 1, y0 + 1); float fy = pv - y0;
            int r0 = y0 * n, r1 = y1 * n, o = y * n;
            for (int x = 0; x < n; x++)
            {
                if (!okX[x] && !clampOutside) continue;
                float a = src[r0 + x0[x]] + (src[r0 + x1[x]] - src[r0 + x0[x]]) * fx[x];
                float b = src[r1 + x0[x]] + (src[r1 + x1[x]] - src[r1 + x0[x]]) * fx[x];
                dst[o + x] = a + (b - a) * fy;
            }
        }
        return dst;
    }

    /// <summary>Resamples a binary patient-space mask into the field of view (nearest pixel; 0 outside the canvas).</summary>
    private float[] ProjectMask(float[] src)
    {
        var s = _s; int n = _n;
        var dst = new float[n * n];
        var px = new int[n];
        for (int x = 0; x < n; x++)
        {
            float pu = (s.CenterU + ((x + 0.5f) * _px - 0.5f) / s.ZoomX) * n;
            px[x] = pu >= 0 && pu < n ? (int)pu : -1;
        }
        for (int y = 0; y < n; y++)
        {
            float pv = (s.CenterV + ((y + 0.5f) * _px - 0.5f) / s.ZoomY) * n;
            if (!(pv >= 0 && pv < n)) continue;
            int r = (int)pv * n, o = y * n;
            for (int x = 0; x < n; x++) if (px[x] >= 0) dst[o + x] = src[r + px[x]];
        }
        return dst;
    }

    /// <summary>Block means over <paramref name="blocks"/> x blocks cells (upsampled bilinearly, a cheap broad blur).</summary>
    private float[] BlockMeans(float[] img, int blocks)
    {
        int n = _n;
        var cell = new float[blocks * blocks];
        var bx0 = new int[n];
        for (int x = 0; x < n; x++) bx0[x] = x * blocks / n;
        for (int y = 0; y < n; y++)
        {
            int cy = y * blocks / n * blocks, o = y * n;
            for (int x = 0; x < n; x++) cell[cy + bx0[x]] += img[o + x];
        }
        for (int by = 0; by < blocks; by++)
            for (int bx = 0; bx < blocks; bx++)
            {
                int cnt = ((by + 1) * n + blocks - 1) / blocks - (by * n + blocks - 1) / blocks;
                int cntx = ((bx + 1) * n + blocks - 1) / blocks - (bx * n + blocks - 1) / blocks;
                cell[by * blocks + bx] /= Math.Max(1, cnt * cntx);
            }
        return cell;
    }

    /// <summary>Adds <paramref name="weight"/> times the bilinear upsampling of a g x g grid (cell centres) to <paramref name="dst"/>.</summary>
    private void UpsampleAdd(float[] grid, int g, float[] dst, float weight)
    {
        int n = _n;
        var gx0 = new int[n]; var gx1 = new int[n]; var gfx = new float[n];
        for (int x = 0; x < n; x++)
        {
            float gx = Math.Clamp((x + 0.5f) * g / n - 0.5f, 0, g - 1);
            gx0[x] = (int)gx; gx1[x] = Math.Min(g - 1, gx0[x] + 1); gfx[x] = gx - gx0[x];
        }
        for (int y = 0; y < n; y++)
        {
            float gy = Math.Clamp((y + 0.5f) * g / n - 0.5f, 0, g - 1);
            int r0 = (int)gy * g, r1 = Math.Min(g - 1, (int)gy + 1) * g; float fy = gy - (int)gy;
            int o = y * n;
            for (int x = 0; x < n; x++)
            {
                float a = grid[r0 + gx0[x]] + (grid[r0 + gx1[x]] - grid[r0 + gx0[x]]) * gfx[x];
                float b = grid[r1 + gx0[x]] + (grid[r1 + gx1[x]] - grid[r1 + gx0[x]]) * gfx[x];
                dst[o + x] += weight * (a + (b - a) * fy);
            }
        }
    }

    /// <summary>Lung parenchymal texture: two octaves of hashed coarse noise (about 1.5 and 0.75 cm cells), in [-1, 1].</summary>
    private float[] LungTexture()
    {
        var t = Rent();
        foreach (var (g, w, salt) in new[] { (24, 0.6f, 1UL), (48, 0.4f, 2UL) })
        {
            var grid = new float[g * g];
            for (int k = 0; k < grid.Length; k++)
                grid[k] = (float)((PhantomRandom.Mix(_s.TextureKey ^ (salt << 40) ^ ((ulong)k * 0xD6E8FEB86659FD93UL)) >> 11) * (2.0 / (1UL << 53)) - 1);
            UpsampleAdd(grid, g, t, w);
        }
        return t;
    }

    /// <summary>Collimator shutters: straight bands along some image edges, unexposed (bright) or masked black.</summary>
    private void Collimate(float[] img)
    {
        var s = _s; int n = _n;
        if (s.CollimationEdges == 0) return;
        float val = s.CollimationBright ? 0.93f : 0.02f;
        for (int y = 0; y < n; y++)
        {
            float v = (y + 0.5f) * _px;
            for (int x = 0; x < n; x++)
            {
                float u = (x + 0.5f) * _px, w = 0;
                if ((s.CollimationEdges & 1) != 0) w = MathF.Max(Smooth(s.CollimationTop + _px, s.CollimationTop - _px, v), Smooth(s.CollimationBottom - _px, s.CollimationBottom + _px, v));
                if ((s.CollimationEdges & 2) != 0) w = MathF.Max(w, MathF.Max(Smooth(s.CollimationLeft + _px, s.CollimationLeft - _px, u), Smooth(s.CollimationRight - _px, s.CollimationRight + _px, u)));
                if (w > 0) img[y * n + x] += (val - img[y * n + x]) * w;
            }
        }
    }

    /// <summary>The technologist's side marker: a lead letter "L" or "R" near a top corner, drawn bright.</summary>
    private void DrawMarker(float[] img)
    {
        var s = _s;
        var layer = Rent();
        float h = 0.045f, w = 0.028f, x0 = s.MarkerRight ? 0.86f : 0.07f, y0 = 0.04f;
        float stroke = MathF.Max(0.006f, 0.9f * _px);
        Segment(layer, x0, y0, x0, y0 + h, stroke, 1);
        if (s.Marker == 1) Segment(layer, x0, y0 + h, x0 + w, y0 + h, stroke, 1);
        else
        {
            Segment(layer, x0, y0, x0 + w * 0.8f, y0, stroke, 1);
            Segment(layer, x0 + w * 0.8f, y0, x0 + w, y0 + h * 0.25f, stroke, 1);
            Segment(layer, x0 + w, y0 + h * 0.25f, x0 + w * 0.8f, y0 + h * 0.5f, stroke, 1);
            Segment(layer, x0 + w * 0.8f, y0 + h * 0.5f, x0, y0 + h * 0.5f, stroke, 1);
            Segment(layer, x0 + w * 0.4f, y0 + h * 0.5f, x0 + w, y0 + h, stroke, 1);
        }
        for (int i = 0; i < img.Length; i++) if (layer[i] > 0) img[i] += (0.97f - img[i]) * layer[i]; // img is exactly n * n
    }

    /// <summary>One pass of a separable [1 2 1] / 4 blur (edges clamped).</summary>
    private static void Blur121(float[] a, int n)
    {
        var row = new float[n];
        for (int y = 0; y < n; y++)
        {
            int o = y * n;
            for (int x = 0; x < n; x++) row[x] = a[o + x];
            for (int x = 0; x < n; x++)
                a[o + x] = 0.25f * row[Math.Max(0, x - 1)] + 0.5f * row[x] + 0.25f * row[Math.Min(n - 1, x + 1)];
        }
        var col = new float[n];
        for (int x = 0; x < n; x++)
        {
            for (int y = 0; y < n; y++) col[y] = a[y * n + x];
            for (int y = 0; y < n; y++)
                a[y * n + x] = 0.25f * col[Math.Max(0, y - 1)] + 0.5f * col[y] + 0.25f * col[Math.Min(n - 1, y + 1)];
        }
    }

    /// <summary>
    /// Posterior ribs (arcs from the spine, curving down laterally, with bright cortical margins),
    /// fainter anterior ribs, and clavicles, drawn column by column. A fractured rib gets a gap and a step.
    /// </summary>
    private void DrawRibsAndClavicles(float[] bone, float[]? fxMask)
    {
        var s = _s; int n = _n;
        for (int x = 0; x < n; x++)
        {
            float u = (x + 0.5f) * _px;
            int side = u < s.Xs ? -1 : 1;
            float d = (u - s.Xs) * side;
            float l = L(side);
            if (d < 0.025f || d > l + 0.05f) continue;
            float fade = Smooth(l + 0.05f, l + 0.01f, d) * Smooth(0.025f, 0.045f, d);
            for (int k = 0; k < 10; k++)
            {
                float yk = s.VApex - 0.005f + k * s.RibSpacing;
                float dd = d - 0.07f;
                float yc = RibY(k, d);
                float th = (0.016f + 0.012f * MathF.Min(d / l, 1)) * (0.9f + 0.02f * k);
                float val = 0.26f * s.Bone * fade;
                if (k == 0) th *= 0.8f;
                bool fx = side == s.FractureSide && k + 1 == s.FractureRib;
                if (fx)
                {
                    float gap = MathF.Max(0.005f, 1.2f * _px);
                    if (MathF.Abs(d - s.FractureD) < gap * 0.5f) val *= 0.15f;
                    if (d > s.FractureD) yc += MathF.Max(0.006f, 1.5f * _px);
                }
                Band(bone, x, yc, th, val, cortical: true);
                // anterior rib: from the lateral chest wall down and medially, fading medially
                float lat = RibY(k, l);
                float ya = lat - 0.11f + (l - d) * 0.42f + 0.02f;
                float va = 0.065f * s.Bone * fade * Smooth(0.08f, 0.2f, d);
                if (va > 0 && k < 8) Band(bone, x, ya, th * 0.9f, va, cortical: false);
                // costal cartilage: invisible unless calcified (with age), then blotchy along the anterior rib's medial end
                if (s.CartilageCalcification > 0 && k < 8 && d > 0.05f && d < 0.15f)
                {
                    ulong h = PhantomRandom.Mix(s.TextureKey ^ ((ulong)(k * 4096 + x) * 0x9E3779B97F4A7C15UL));
                    float blot = (h & 0xFF) / 255f;
                    float vc = 0.22f * s.CartilageCalcification * s.Bone * Smooth(0.05f, 0.07f, d) * Smooth(0.15f, 0.12f, d) * blot * blot;
                    if (vc > 0.005f) Band(bone, x, ya, th * 0.6f, vc, cortical: false);
                }
            }
            // clavicle
            float cd0 = 0.035f, cd1 = l + 0.02f;
            if (d < cd1)
            {
                float t = (d - cd0) / (cd1 - cd0);
                float yc = s.ClavicleMedialV + (s.ClavicleLateralV - s.ClavicleMedialV) * t + 0.012f * MathF.Sin(6.283f * t) + 0.005f * s.Rotation * side;
                Band(bone, x, yc, 0.03f, 0.6f * s.Bone * Smooth(0.02f, 0.04f, d), cortical: true);
            }
        }
        if (fxMask is not null)
        {
            int k = s.FractureRib - 1;
            float yk = s.VApex - 0.005f + k * s.RibSpacing, dd = s.FractureD - 0.07f;
            float yc = RibY(k, s.FractureD);
            float cx = s.Xs + s.FractureSide * s.FractureD;
            float r = MathF.Max(0.02f, 3 * _px);
            Disc(fxMask, cx, yc, r);
        }
    }

    /// <summary>
    /// Centre height of posterior rib k (0 = first) at lateral distance d: rising slightly from the spine, then sloping
    /// down and out; level with its spinal origin at d = 0.14, so that the ribs counted above the dome are the ribs
    /// whose origin lies above it (the inspiration_ribs attribute).
    /// </summary>
    internal float RibY(int k, float d)
    {
        var s = _s;
        float yk = s.VApex - 0.005f + k * s.RibSpacing, dd = d - 0.07f;
        return yk + s.RibSlope * (dd * dd - 0.0049f) + 0.02f * k * MathF.Max(0, d - 0.15f);
    }

    /// <summary>Adds a horizontal-ish band centred at height yc in column x (antialiased).</summary>
    private void Band(float[] layer, int x, float yc, float th, float val, bool cortical)
    {
        int n = _n;
        float half = th * 0.5f;
        int y0 = Math.Max(0, (int)((yc - half) * n) - 1), y1 = Math.Min(n - 1, (int)((yc + half) * n) + 1);
        for (int y = y0; y <= y1; y++)
        {
            float v = (y + 0.5f) * _px;
            float dist = MathF.Abs(v - yc);
            float cov = Math.Clamp((half - dist) / _px + 0.5f, 0, 1);
            if (cov <= 0) continue;
            float q = dist / half; float prof = cortical ? 0.55f + 0.45f * q * q * q : 1;
            layer[y * n + x] += val * cov * prof;
        }
    }

    private void Disc(float[] mask, float cx, float cy, float r)
    {
        int n = _n;
        int x0 = Math.Max(0, (int)((cx - r) * n)), x1 = Math.Min(n - 1, (int)((cx + r) * n) + 1);
        int y0 = Math.Max(0, (int)((cy - r) * n)), y1 = Math.Min(n - 1, (int)((cy + r) * n) + 1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
            {
                float dx = (x + 0.5f) * _px - cx, dy = (y + 0.5f) * _px - cy;
                if (dx * dx + dy * dy <= r * r) mask[y * n + x] = 1;
            }
    }

    /// <summary>Draws a segment of a given width with max-compositing (so crossings do not add up).</summary>
    private void Segment(float[] layer, float x0, float y0, float x1, float y1, float width, float val)
    {
        int n = _n;
        float len = MathF.Sqrt((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0));
        float r = MathF.Max(width * 0.5f, 0.5f * _px);
        float minX = MathF.Min(x0, x1) - r - _px, maxX = MathF.Max(x0, x1) + r + _px;
        float minY = MathF.Min(y0, y1) - r - _px, maxY = MathF.Max(y0, y1) + r + _px;
        int px0 = Math.Max(0, (int)(minX * n)), px1 = Math.Min(n - 1, (int)(maxX * n));
        int py0 = Math.Max(0, (int)(minY * n)), py1 = Math.Min(n - 1, (int)(maxY * n));
        float dx = x1 - x0, dy = y1 - y0, inv = len > 0 ? 1 / (len * len) : 0;
        // very thin lines are drawn fainter rather than thinner than a pixel
        float thin = Math.Clamp(width / _px, 0.35f, 1f);
        for (int y = py0; y <= py1; y++)
        {
            float py = (y + 0.5f) * _px;
            for (int x = px0; x <= px1; x++)
            {
                float pxx = (x + 0.5f) * _px;
                float t = Math.Clamp(((pxx - x0) * dx + (py - y0) * dy) * inv, 0, 1);
                float ex = pxx - (x0 + t * dx), ey = py - (y0 + t * dy);
                float dist = MathF.Sqrt(ex * ex + ey * ey);
                float cov = Math.Clamp((r - dist) / _px + 0.5f, 0, 1) * thin;
                if (cov > 0)
                {
                    int i = y * n + x;
                    float w = val * cov;
                    if (w > layer[i]) layer[i] = w;
                }
            }
        }
    }

    /// <summary>
    /// Pulmonary vessels: the hilar arteries, then branching trees that curve, narrow and fade towards the periphery,
    /// more of them to the lower zones (gravity, upright); with edema the upper-zone vessels are recruited
    /// (redistribution) and Kerley B lines run in from the lateral costophrenic pleura.
    /// </summary>
    private void DrawVessels(float[] layer)
    {
        var s = _s;
        var rng = new PhantomRandom((long)s.VesselKey, 0, 7);
        int maxDepth = _n > 256 ? 5 : _n > 128 ? 4 : 3; // finer branches would be under a pixel
        bool edema = s.Findings.Edema is not null;
        foreach (int side in new[] { -1, 1 })
        {
            float hv = side < 0 ? s.HilumVR : s.HilumVL;
            float hd = 0.075f + (side > 0 ? 0.01f : 0);
            // hilar arteries: the right interlobar artery descends lateral to the bronchus; the left arches over it
            if (side < 0) Segment(layer, s.Xs - 0.065f, hv - 0.03f, s.Xs - 0.09f, hv + 0.06f, 0.02f, 0.22f);
            else
            {
                Segment(layer, s.Xs + 0.07f, hv - 0.035f, s.Xs + 0.1f, hv - 0.02f, 0.02f, 0.22f);
                Segment(layer, s.Xs + 0.1f, hv - 0.02f, s.Xs + 0.105f, hv + 0.05f, 0.017f, 0.2f);
            }
            float[] trunks = [-1.25f, -0.75f, -0.2f, 0.25f, 0.65f, 1.0f, 1.3f, 1.55f];
            foreach (float t0 in trunks)
            {
                float th = t0 + (float)rng.Range(-0.15, 0.15);
                float val = 0.22f * (t0 < -0.5f ? (edema ? 1.5f : 0.8f) : t0 > 0.5f ? 1.1f : 1f);
                float w = 0.012f * (t0 < -0.5f && edema ? 1.3f : 1f);
                Branch(layer, side, hd, hv + 0.02f * MathF.Sin(t0), th, (float)rng.Range(0.05, 0.07), w, val, 0, maxDepth, ref rng);
            }
            if (edema)
            {
                // Kerley B: short horizontal septal lines at the lateral bases, 1-2 cm long, reaching the pleura
                float l = L(side), dome = Dome(side);
                for (int k = 0; k < 7; k++)
                {
                    float v = dome + 0.01f - k * 0.013f - (float)rng.Range(0, 0.006);
                    float len = (float)rng.Range(0.025, 0.045);
                    float dOut = l * (0.97f - 0.06f * (k / 7f));
                    Segment(layer, s.Xs + side * dOut, v, s.Xs + side * (dOut - len), v + (float)rng.Range(-0.003, 0.003), MathF.Max(0.004f, 0.8f * _px), 0.22f * s.EdemaStrength);
                }
            }
        }
    }

    /// <summary>Air-filled bronchi through a consolidation: short branching lucent lines from its hilar side outwards.</summary>
    private float[] AirBronchograms()
    {
        var s = _s;
        var layer = Rent();
        var rng = new PhantomRandom((long)s.TextureKey, 0, 9);
        float hv = s.ConsSide < 0 ? s.HilumVR : s.HilumVL;
        float theta = MathF.Atan2(s.ConsV - hv, s.ConsD - 0.08f);
        for (int k = 0; k < 3; k++)
        {
            float th = theta + (k - 1) * 0.45f;
            float d0 = s.ConsD - 0.7f * s.ConsRx * MathF.Cos(theta), v0 = s.ConsV - 0.7f * s.ConsRy * MathF.Sin(theta);
            Branch(layer, s.ConsSide, d0, v0, th, 0.035f, MathF.Max(0.006f, 0.8f * _px), 1f, 0, 2, ref rng);
        }
        return layer;
    }

    private void Branch(float[] layer, int side, float d, float v, float theta, float len, float width, float val, int depth, int maxDepth, ref PhantomRandom rng)
    {
        // two sub-segments with a bend, so vessels curve rather than radiate as straight spokes
        float bend = (float)rng.Range(-0.35, 0.35);
        float dm = d + MathF.Cos(theta) * len * 0.5f, vm = v + MathF.Sin(theta) * len * 0.5f;
        float theta2 = theta + bend;
        float d1 = dm + MathF.Cos(theta2) * len * 0.5f, v1 = vm + MathF.Sin(theta2) * len * 0.5f;
        if (dm < 0.03f) dm = 0.03f;
        if (d1 < 0.03f) d1 = 0.03f;
        Segment(layer, _s.Xs + side * d, v, _s.Xs + side * dm, vm, width, val);
        Segment(layer, _s.Xs + side * dm, vm, _s.Xs + side * d1, v1, width * 0.9f, val * 0.95f);
        if (depth >= maxDepth) return;
        float spread = (float)rng.Range(0.3, 0.6);
        float skew = (float)rng.Range(-0.1, 0.1);
        Branch(layer, side, d1, v1, theta2 + spread + skew, len * (float)rng.Range(0.65, 0.85), width * 0.74f, val * 0.8f, depth + 1, maxDepth, ref rng);
        Branch(layer, side, d1, v1, theta2 - spread + skew, len * (float)rng.Range(0.65, 0.85), width * 0.74f, val * 0.8f, depth + 1, maxDepth, ref rng);
    }

    /// <summary>Endotracheal tube, central venous catheter, pacemaker generator and leads.</summary>
    private void DrawDevices(float[] layer)
    {
        var s = _s; var dv = s.Findings.Devices!;
        const float cm = 1f / 40f; // the field of view is about 40 cm wide
        if (dv.EttCmAboveCarina is double ett)
        {
            float tip = s.VCarina - (float)ett * cm;
            Segment(layer, s.TracheaX, -0.02f, s.TracheaX, tip, s.TracheaW * 0.55f, 0.18f);
            Segment(layer, s.TracheaX - s.TracheaW * 0.2f, -0.02f, s.TracheaX - s.TracheaW * 0.2f, tip, MathF.Max(0.004f, 0.7f * _px), 1.6f);
        }
        if (dv.CvcTip is string tipPos)
        {
            float tipV = s.VCarina + (tipPos == "superior vena cava" ? 0.03f : tipPos == "cavoatrial junction" ? 0.085f : 0.12f);
            float svcX = s.Xs - s.MedUpper * 0.6f;
            float w = MathF.Max(0.004f, 0.8f * _px);
            var pts = new List<(float x, float y)>();
            int sd = dv.CvcSide == "right" ? -1 : 1;
            if (dv.CvcAccess == "internal jugular")
            {
                pts.Add((s.Xs + sd * 0.07f, 0f)); pts.Add((s.Xs + sd * 0.06f, s.VApex + 0.02f));
                pts.Add((s.Xs + sd * 0.03f, s.VApex + 0.08f));
            }
            else
            {
                pts.Add((s.Xs + sd * 0.32f, s.VApex + 0.03f)); pts.Add((s.Xs + sd * 0.18f, s.ClavicleMedialV + 0.02f));
                pts.Add((s.Xs + sd * 0.05f, s.VApex + 0.09f));
            }
            pts.Add((svcX, s.VCarina - 0.02f)); pts.Add((svcX, tipV));
            for (int i = 0; i + 1 < pts.Count; i++) Segment(layer, pts[i].x, pts[i].y, pts[i + 1].x, pts[i + 1].y, w, 1.3f);
        }
        if (dv.PacemakerLeads is int leads)
        {
            float gx = s.Xs + 0.25f, gy = s.VApex + 0.085f, gw = 0.035f, gh = 0.026f;
            for (float yy = -gh; yy <= gh; yy += _px * 0.5f)
                Segment(layer, gx - gw, gy + yy, gx + gw, gy + yy, _px, 2.2f);
            float w = MathF.Max(0.004f, 0.8f * _px);
            float svcX = s.Xs - s.MedUpper * 0.5f;
            (float, float)[] path = [(gx - gw, gy), (s.Xs + 0.1f, s.VApex + 0.07f), (svcX, s.VCarina), (svcX + 0.005f, s.VCarina + 0.1f)];
            for (int i = 0; i + 1 < path.Length; i++) Segment(layer, path[i].Item1, path[i].Item2, path[i + 1].Item1, path[i + 1].Item2, w, 1.4f);
            // ventricular lead: across the heart to the apex
            float apexX = s.HeartCx + s.HeartA * 0.55f, apexY = s.HeartCy + s.HeartB * 0.7f;
            Segment(layer, svcX + 0.005f, s.VCarina + 0.1f, (svcX + apexX) / 2, apexY, w, 1.4f);
            Segment(layer, (svcX + apexX) / 2, apexY, apexX, apexY - 0.01f, w, 1.4f);
            if (leads == 2) Segment(layer, svcX + 0.005f, s.VCarina + 0.1f, svcX + 0.02f, s.VCarina + 0.07f, w, 1.4f);
        }
    }
}
