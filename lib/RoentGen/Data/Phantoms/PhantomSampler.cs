namespace RoentGen.Data.Phantoms;

/// <summary>Everything needed to draw one case: the patient, the geometry and the findings (normalised units: 1 = image side).</summary>
internal sealed class PhantomSpec
{
    public required PhantomFindings Findings;
    public required string Sex;
    public required int Age;
    public required string View;
    public required string Habitus;
    // geometry
    public float Xs, BodyHalfWidth, NeckHalfWidth, Soft, Rotation;
    public float VApex, VCp, DomeR, DomeL, LR, LL, MedUpper, MedLower;
    public float HeartCx, HeartCy, HeartA, HeartB;
    public float KnobX, KnobY, KnobR; public bool KnobCalcified;
    public float TracheaX, TracheaW, VCarina;
    public float Bone, RibSpacing, ClavicleLateralV, ClavicleMedialV;
    public float BreastDensity, BreastRx, BreastRy;
    public bool Scapulae;
    public bool GastricBubble;
    public float Gain, Gamma, NoiseSigma; public int BlurPasses;
    public float HilumVR, HilumVL;
    // finding geometry
    public float EffusionLevelR = float.NaN, EffusionLevelL = float.NaN;
    public int PtxSide; public float PtxK = 1;
    public int ConsSide; public float ConsD, ConsV, ConsRx, ConsRy, ConsPh1, ConsPh2, ConsPh3;
    public float EdemaStrength;
    public int LesionSide; public float LesionD, LesionV, LesionR;
    public int AtelSides; // bit 1 = right (side -1), bit 2 = left (side +1)
    public bool AtelLobar; public float AtelV, AtelTilt;
    public int FractureSide, FractureRib; public float FractureD;
    public ulong NoiseKey, VesselKey;
    // the new world's projection and appearance (stream 3: never shifts the findings, the report or the older draws)
    public float ZoomX = 1, ZoomY = 1, CenterU = 0.5f, CenterV = 0.5f; // field of view: image (u, v) shows patient (Cu + (u - 0.5) / Zx, Cv + (v - 0.5) / Zy)
    public float HeartTop, HeartWR, HeartWL;                            // cardiac silhouette: top of the left border, right and left reach from the spine
    public float RibSlope, CartilageCalcification, ScapulaShift;
    public float TextureStrength, CorrelatedNoise, Scatter;
    public int CollimationEdges; public float CollimationTop, CollimationBottom, CollimationLeft, CollimationRight; public bool CollimationBright;
    public int Marker; public bool MarkerRight;                         // 0 none, 1 "L", 2 "R"; top-right or top-left corner
    public bool NoduleCalcified, NoduleSpiculated; public float NoduleSpikePhase;
    public ulong TextureKey;
    /// <summary>Draw air bronchograms through a consolidation (on by default; off only to show the sign by its absence).</summary>
    public bool AirBronchograms = true;
}

/// <summary>Draws a case's patient and findings from the world's probabilities (co-occurrence keeps the marginals).</summary>
internal static class PhantomSampler
{
    /// <summary>Lobar collapse's volume loss: how far the trachea moves toward it, and how far its hemidiaphragm rises.</summary>
    public const float AtelectasisTracheaPull = 0.012f, AtelectasisDomeRise = 0.02f;

    public static readonly string[] Lobes = ["right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "lingula", "left lower lobe"];

    /// <summary>P(B | A) = hi and P(B | not A) = lo with the marginal P(B) = p kept exactly, for P(A) = pa.</summary>
    private static (double hi, double lo) Conditional(double p, double pa, double lift)
    {
        if (pa <= 0) return (p, p);
        if (pa >= 1) return (p, p);
        double hi = Math.Min(1, p * lift);
        double lo = (p - pa * hi) / (1 - pa);
        if (lo < 0) { hi = p / pa; lo = 0; }
        return (hi, lo);
    }

    public static PhantomSpec Sample(PhantomOptions o, long index)
    {
        var r = new PhantomRandom(o.Seed, index, 1);
        // --- clinical state, with co-occurrence that keeps each marginal prevalence exact ---
        bool edema = r.Chance(o.EdemaPrevalence);
        var (cmHi, cmLo) = Conditional(o.CardiomegalyPrevalence, o.EdemaPrevalence, 4);
        bool cardiomegaly = r.Chance(edema ? cmHi : cmLo);
        double pHeartFailure = o.EdemaPrevalence + o.CardiomegalyPrevalence - o.EdemaPrevalence * cmHi;
        var (effHi, effLo) = Conditional(o.PleuralEffusionPrevalence, pHeartFailure, 3);
        bool effusion = r.Chance(edema || cardiomegaly ? effHi : effLo);
        bool ptx = r.Chance(o.PneumothoraxPrevalence);
        bool cons = r.Chance(o.ConsolidationPrevalence);
        double pSick = 1 - (1 - o.EdemaPrevalence) * (1 - o.PneumothoraxPrevalence) * (1 - o.ConsolidationPrevalence);
        var (devHi, devLo) = Conditional(o.SupportDevicesPrevalence, pSick, 3);
        bool sick = edema || ptx || cons;
        bool devices = r.Chance(sick ? devHi : devLo);
        bool lesion = r.Chance(o.LungLesionPrevalence);
        bool atel = r.Chance(o.AtelectasisPrevalence);
        bool fracture = r.Chance(o.FracturePrevalence);
        bool ecm = cardiomegaly && r.Chance(o.EnlargedMediastinumGivenCardiomegaly);

        // --- patient (its own random stream, so sex/age/habitus never shift the findings or the report) ---
        var p = new PhantomRandom(o.Seed, index, 2);
        bool female = p.Chance(o.FemaleFraction);
        int age = p.Int(o.MinAge, o.MaxAge);
        string habitus = p.Pick(["thin", "average", "large"], [0.25, 0.5, 0.25]);
        bool ap = p.Chance(sick || devices ? 0.65 : 0.12);
        var s = new PhantomSpec { Findings = new PhantomFindings(), Sex = female ? "F" : "M", Age = age, View = ap ? "AP" : "PA", Habitus = habitus };
        float hab = habitus == "thin" ? -1 : habitus == "large" ? 1 : 0;
        s.Rotation = (float)Math.Clamp(p.Normal() * 0.4, -1, 1);
        s.Xs = 0.5f + (float)p.Range(-0.012, 0.012);
        s.BodyHalfWidth = (female ? 0.405f : 0.44f) + 0.02f * hab + (float)p.Range(-0.012, 0.012);
        s.NeckHalfWidth = (female ? 0.085f : 0.10f) + 0.01f * hab;
        s.Soft = 1f + 0.14f * hab + (float)p.Range(-0.05, 0.05) + (female ? -0.03f : 0.03f);
        float ageF = Math.Clamp((age - 45) / 45f, 0, 1);
        s.Bone = Math.Clamp(1f - ageF * (female ? 0.45f : 0.25f) + (float)p.Range(-0.06, 0.06), 0.45f, 1.1f);
        s.VApex = (float)p.Range(0.10, 0.135);
        float inspiration = (float)p.Range(0, 1) - (ap ? 0.35f : 0) - (sick ? 0.15f : 0);
        s.VCp = Math.Clamp(0.745f + 0.075f * inspiration, 0.68f, 0.83f);
        float domeH = (float)p.Range(0.08, 0.115) + 0.01f * hab;
        s.DomeR = s.VCp - domeH;
        s.DomeL = s.DomeR + (float)p.Range(0.005, 0.03);
        float lungW = (female ? 0.315f : 0.345f) + 0.012f * hab + (float)p.Range(-0.012, 0.012);
        s.LR = lungW * (1 - 0.04f * s.Rotation);
        s.LL = lungW * (1 + 0.04f * s.Rotation) - 0.008f;
        float tort = age > 55 ? (float)(p.Next() * (age - 55) / 35.0) : 0;
        s.MedUpper = 0.062f + 0.012f * tort + (ecm ? (float)p.Range(0.03, 0.045) : 0);
        s.MedLower = 0.045f;
        s.HilumVR = s.VApex + 0.26f + (float)p.Range(-0.01, 0.01);
        s.HilumVL = s.HilumVR - 0.015f;

        // heart: CTR = heart width / thoracic width
        double ctr;
        string? cmSeverity = null;
        if (cardiomegaly)
        {
            cmSeverity = r.Pick(["mild", "moderate", "severe"], [0.5, 0.35, 0.15]);
            ctr = cmSeverity switch { "mild" => r.Range(0.53, 0.57), "moderate" => r.Range(0.57, 0.63), _ => r.Range(0.63, 0.70) };
        }
        else
        {
            ctr = 0.41 + 0.0012 * (age - 50) + 0.02 * p.Normal() + (ap ? 0.03 : 0);
            ctr = Math.Clamp(ctr, 0.34, 0.485);
        }
        float thorax = s.LR + s.LL;
        float heartW = (float)ctr * thorax;
        float rFrac = (float)p.Range(0.30, 0.38);
        s.HeartA = heartW / 2;
        s.HeartCx = s.Xs + heartW * (1 - rFrac) - heartW / 2;
        s.HeartB = (float)p.Range(0.095, 0.115) * (cardiomegaly ? 1.12f : 1f);
        s.HeartCy = s.DomeL + 0.03f - 0.8f * s.HeartB;
        s.KnobR = 0.026f + 0.01f * tort;
        s.KnobX = s.Xs + s.MedUpper + 0.002f;
        s.KnobY = s.VApex + 0.14f + (float)p.Range(-0.01, 0.01);
        s.KnobCalcified = age > 50 && p.Chance((age - 50) / 50.0);
        s.TracheaX = s.Xs + (float)p.Range(-0.006, 0.006);
        s.TracheaW = (female ? 0.03f : 0.036f);
        s.VCarina = s.VApex + 0.19f + (float)p.Range(-0.01, 0.01);
        s.RibSpacing = (s.VCp - s.VApex + 0.03f) / 9.6f;
        s.ClavicleMedialV = s.VApex + (ap ? 0.035f : 0.06f);
        s.ClavicleLateralV = s.VApex + (ap ? 0.02f : -0.025f);
        s.BreastDensity = female ? (float)p.Range(0.25, 0.45) * (1 + 0.25f * hab) : (float)p.Range(0.03, 0.08);
        s.BreastRx = female ? 0.15f + 0.02f * hab : 0.13f;
        s.BreastRy = female ? 0.11f + 0.015f * hab : 0.08f;
        s.Scapulae = ap;
        s.GastricBubble = p.Chance(0.7);
        s.Gain = (float)p.Range(0.95, 1.35);
        s.Gamma = (float)p.Range(0.85, 1.15);
        s.NoiseSigma = (float)(0.02 * o.NoiseLevel * p.Range(0.6, 1.4));
        s.BlurPasses = (int)Math.Round(o.BlurLevel * (o.Size / 128.0) * p.Range(1, 2.5));
        s.NoiseKey = p.NextULong();
        s.VesselKey = p.NextULong();
        SampleProjection(s, new PhantomRandom(o.Seed, index, 3), female, age, ap, rFrac, heartW);

        // --- findings ---
        EffusionFinding? eff = null;
        if (effusion)
        {
            string side = r.Pick(["right", "left", "both"], edema || cardiomegaly ? [0.25, 0.15, 0.6] : [0.45, 0.35, 0.2]);
            string size = r.Pick(["small", "moderate", "large"], [0.5, 0.35, 0.15]);
            eff = new EffusionFinding(side, size);
            float Level(float dome) => size switch
            {
                "small" => s.VCp - 0.012f,
                "moderate" => dome + (float)r.Range(-0.09, -0.06),
                _ => s.HilumVR + (float)r.Range(-0.02, 0.04),
            };
            if (side != "left") s.EffusionLevelR = Level(s.DomeR);
            if (side != "right") s.EffusionLevelL = Level(s.DomeL);
        }
        PneumothoraxFinding? px = null;
        if (ptx)
        {
            string side = r.Pick(["right", "left"]);
            string size = r.Pick(["small", "moderate", "large"], [0.45, 0.35, 0.2]);
            px = new PneumothoraxFinding(side, size);
            s.PtxSide = side == "right" ? -1 : 1;
            s.PtxK = size switch { "small" => (float)r.Range(0.84, 0.88), "moderate" => (float)r.Range(0.7, 0.76), _ => (float)r.Range(0.5, 0.58) };
        }
        ConsolidationFinding? cf = null;
        if (cons)
        {
            string lobe = r.Pick(Lobes);
            double pn = r.Next();
            string pneumonia = pn < o.PneumoniaGivenConsolidation * 0.7 ? "yes" : pn < o.PneumoniaGivenConsolidation ? "possible" : "no";
            cf = new ConsolidationFinding(lobe, pneumonia);
            (s.ConsSide, s.ConsD, s.ConsV) = LobePoint(s, lobe, ref r);
            s.ConsRx = (float)r.Range(0.06, 0.09); s.ConsRy = (float)r.Range(0.045, 0.07);
            s.ConsPh1 = (float)r.Range(0, 6.283); s.ConsPh2 = (float)r.Range(0, 6.283); s.ConsPh3 = (float)r.Range(0, 6.283);
        }
        EdemaFinding? ed = null;
        if (edema)
        {
            string sev = r.Pick(["mild", "moderate", "severe"], [0.5, 0.35, 0.15]);
            ed = new EdemaFinding(sev);
            s.EdemaStrength = sev == "mild" ? 0.6f : sev == "moderate" ? 0.85f : 1.1f;
        }
        LesionFinding? les = null;
        if (lesion)
        {
            string loc = r.Pick(Lobes);
            int mm = r.Chance(0.75) ? r.Int(8, 28) : r.Int(32, 65);
            les = new LesionFinding(loc, mm);
            (s.LesionSide, s.LesionD, s.LesionV) = LobePoint(s, loc, ref r);
            s.LesionR = mm / 2f / 400f; // the field of view is about 40 cm wide
        }
        AtelectasisFinding? at = null;
        if (atel)
        {
            if (r.Chance(0.7))
            {
                string loc = r.Pick(["right base", "left base", "bibasilar"]);
                at = new AtelectasisFinding("plate", loc);
                s.AtelSides = loc == "right base" ? 1 : loc == "left base" ? 2 : 3;
                s.AtelV = (float)r.Range(0.035, 0.06); s.AtelTilt = (float)r.Range(-0.12, 0.12);
            }
            else
            {
                string loc = r.Pick(["left lower lobe", "right lower lobe", "right upper lobe"], [0.5, 0.3, 0.2]);
                at = new AtelectasisFinding("lobar", loc);
                s.AtelLobar = true;
                s.AtelSides = loc.StartsWith("right") ? 1 : 2;
                s.AtelV = loc == "right upper lobe" ? 1 : 0;
                // volume loss: the trachea pulls toward the collapse and the hemidiaphragm rises
                int side = loc.StartsWith("right") ? -1 : 1;
                s.TracheaX += side * AtelectasisTracheaPull;
                if (side < 0) s.DomeR -= AtelectasisDomeRise; else s.DomeL -= AtelectasisDomeRise;
            }
        }
        FractureFinding? fx = null;
        if (fracture)
        {
            string side = r.Pick(["right", "left"]);
            int rib = r.Int(4, 9);
            fx = new FractureFinding(side, rib);
            s.FractureSide = side == "right" ? -1 : 1; s.FractureRib = rib; s.FractureD = (float)r.Range(0.17, 0.25);
        }
        DevicesFinding? dev = null;
        if (devices)
        {
            bool ett = r.Chance(sick ? 0.6 : 0.25), cvc = r.Chance(0.6), pm = r.Chance(sick ? 0.2 : 0.45);
            if (!ett && !cvc && !pm) { int k = r.Int(0, 2); ett = k == 0; cvc = k == 1; pm = k == 2; }
            dev = new DevicesFinding(
                ett ? r.Int(4, 14) / 2.0 : null,
                cvc ? (r.Chance(0.7) ? "right" : "left") : null,
                cvc ? (r.Chance(0.7) ? "internal jugular" : "subclavian") : null,
                cvc ? r.Pick(["superior vena cava", "cavoatrial junction", "right atrium"], [0.5, 0.35, 0.15]) : null,
                pm ? r.Int(1, 2) : null);
        }
        s.Findings = new PhantomFindings
        {
            Ctr = Math.Round(ctr, 3), Cardiomegaly = cmSeverity, EnlargedCardiomediastinum = ecm, Effusion = eff, Pneumothorax = px,
            Consolidation = cf, Edema = ed, Lesion = les, Atelectasis = at, Fracture = fx, Devices = dev,
        };
        return s;
    }

    /// <summary>
    /// The new world's geometry and appearance, from its own stream: field of view (radiographs are cropped and
    /// resized to a square, so the thorax fills 60 to 95 % of the width and the aspect varies), the cardiac
    /// silhouette, rib obliquity, costal cartilage calcification, scapular position, texture, scatter, collimation
    /// and the side marker.
    /// </summary>
    private static void SampleProjection(PhantomSpec s, PhantomRandom q, bool female, int age, bool ap, float rFrac, float heartW)
    {
        s.ZoomX = (float)q.Range(1.0, 1.32);
        s.ZoomY = Math.Clamp(s.ZoomX * (float)q.Range(0.78, 1.05), 0.9f, 1.35f);
        float lungMidV = 0.5f * (s.VApex + s.VCp);
        s.CenterU = s.Xs + (float)q.Range(-0.02, 0.02);
        s.CenterV = lungMidV + 0.025f + (float)q.Range(-0.03, 0.03);
        // the heart: the right border reaches rFrac of its width right of the spine, the left border the rest
        s.HeartWR = rFrac * heartW;
        s.HeartWL = (1 - rFrac) * heartW;
        s.HeartTop = s.VCarina + (float)q.Range(0.04, 0.07);
        s.RibSlope = (float)q.Range(1.3, 1.9) * (ap ? 0.8f : 1f);
        s.CartilageCalcification = age < 35 ? 0 : Math.Clamp((age - 35) / 45f, 0, 1) * (float)q.Range(0.2, 1.0) * (female ? 0.8f : 1f);
        // scapulae: on AP always over the lungs; on PA rotated off them unless the positioning was poor
        s.ScapulaShift = ap ? 0 : q.Chance(0.3) ? (float)q.Range(0.02, 0.06) : 0.09f;
        s.Scapulae = s.ScapulaShift < 0.08f;
        s.TextureStrength = (float)q.Range(0.6, 1.2);
        s.CorrelatedNoise = (float)q.Range(0.3, 1.0);
        s.Scatter = (float)q.Range(0.02, 0.08);
        s.CollimationEdges = q.Chance(0.35) ? q.Int(1, 3) : 0;
        s.CollimationTop = (float)q.Range(0.0, 0.05); s.CollimationBottom = 1 - (float)q.Range(0.0, 0.08);
        s.CollimationLeft = (float)q.Range(0.0, 0.05); s.CollimationRight = 1 - (float)q.Range(0.0, 0.05);
        s.CollimationBright = q.Chance(0.6);
        s.Marker = q.Chance(0.55) ? (q.Chance(0.7) ? 1 : 2) : 0;
        s.MarkerRight = q.Chance(0.75);
        s.NoduleCalcified = q.Chance(0.2);
        s.NoduleSpiculated = q.Chance(0.4);
        s.NoduleSpikePhase = (float)q.Range(0, 6.283);
        s.TextureKey = q.NextULong();
    }

    /// <summary>A point inside a lobe's zone: (side, lateral distance from the spine, height).</summary>
    private static (int side, float d, float v) LobePoint(PhantomSpec s, string lobe, ref PhantomRandom r)
    {
        float dj = (float)r.Range(-0.03, 0.03), vj = (float)r.Range(-0.03, 0.03);
        return lobe switch
        {
            "right upper lobe" => (-1, 0.17f + dj, s.VApex + 0.11f + vj),
            "right middle lobe" => (-1, 0.12f + dj * 0.5f, s.DomeR - 0.08f + vj * 0.5f),
            "right lower lobe" => (-1, 0.2f + dj, s.DomeR - 0.04f + vj * 0.5f),
            "left upper lobe" => (1, 0.17f + dj, s.VApex + 0.12f + vj),
            "lingula" => (1, 0.14f + dj * 0.5f, s.DomeL - 0.09f + vj * 0.5f),
            _ => (1, 0.21f + dj, s.DomeL - 0.04f + vj * 0.5f),
        };
    }
}
