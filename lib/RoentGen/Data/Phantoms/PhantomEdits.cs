namespace RoentGen.Data.Phantoms;

/// <summary>
/// Changes a sampled case's finding geometry to match an edited truth (see <see cref="PhantomGenerator.GenerateEdited"/>):
/// the finding draws stay the case's own; only place, size and side follow the truth.
/// </summary>
internal static class PhantomEdits
{
    public static void Apply(PhantomSpec s, PhantomFindings truth, int size, (double X, double Y)? lesionCentre, (double X, double Y)? consolidationCentre, string id)
    {
        var f = s.Findings;
        Require(f.Lesion, truth.Lesion, "lesion", id);
        Require(f.Consolidation, truth.Consolidation, "consolidation", id);
        Require(f.Effusion, truth.Effusion, "pleural effusion", id);
        Require(f.Pneumothorax, truth.Pneumothorax, "pneumothorax", id);
        Require(f.Atelectasis, truth.Atelectasis, "atelectasis", id);
        Require(f.Fracture, truth.Fracture, "fracture", id);
        Require(f.Edema, truth.Edema, "edema", id);
        Require(f.Devices, truth.Devices, "support devices", id);

        if (truth.Lesion is { } les)
        {
            s.LesionR = les.SizeMm / 2f / 400f;
            if (lesionCentre is { } c) (s.LesionSide, s.LesionD, s.LesionV) = Patient(s, size, c);
            else if (les.Location != f.Lesion!.Location) s.LesionSide = SideOfLobe(les.Location);
        }
        if (truth.Consolidation is { } cons)
        {
            if (consolidationCentre is { } c) (s.ConsSide, s.ConsD, s.ConsV) = Patient(s, size, c);
            else if (cons.Lobe != f.Consolidation!.Lobe) s.ConsSide = SideOfLobe(cons.Lobe);
        }
        if (truth.Effusion is { } eff && eff.Side != f.Effusion!.Side)
        {
            float level = float.IsNaN(s.EffusionLevelR) ? s.EffusionLevelL : s.EffusionLevelR;
            s.EffusionLevelR = eff.Side == "left" ? float.NaN : level;
            s.EffusionLevelL = eff.Side == "right" ? float.NaN : level;
        }
        if (truth.Pneumothorax is { } ptx) s.PtxSide = ptx.Side == "right" ? -1 : 1;
        if (truth.Fracture is { } fx) s.FractureSide = fx.Side == "right" ? -1 : 1;
        if (truth.Atelectasis is { } at)
        {
            s.AtelSides = at.Location switch
            {
                "bibasilar" => 3,
                "right base" => 1,
                "left base" => 2,
                _ => at.Location.StartsWith("right", StringComparison.Ordinal) ? 1 : 2,
            };
            if (s.AtelLobar)
            {
                // Either upper lobe collapses as the upper triangle (the renderer draws it on whichever side is set).
                s.AtelV = at.Location.EndsWith("upper lobe", StringComparison.Ordinal) ? 1 : 0;
                // Volume loss follows a collapse moved to the other side: the trachea is pulled the other way and the
                // raised hemidiaphragm changes sides (the sampler's shifts, undone on the old side).
                int was = f.Atelectasis!.Location.StartsWith("right", StringComparison.Ordinal) ? -1 : 1;
                int now = at.Location.StartsWith("right", StringComparison.Ordinal) ? -1 : 1;
                if (now != was)
                {
                    s.TracheaX += (now - was) * PhantomSampler.AtelectasisTracheaPull;
                    if (was < 0) { s.DomeR += PhantomSampler.AtelectasisDomeRise; s.DomeL -= PhantomSampler.AtelectasisDomeRise; }
                    else { s.DomeL += PhantomSampler.AtelectasisDomeRise; s.DomeR -= PhantomSampler.AtelectasisDomeRise; }
                }
            }
        }
        if (truth.Edema is null) s.EdemaStrength = 0;
        if (truth.Pneumothorax is null) s.PtxSide = 0;
        if (truth.Effusion is null) { s.EffusionLevelR = float.NaN; s.EffusionLevelL = float.NaN; }
        s.Findings = truth;
    }

    /// <summary>Image pixel (x, y) at side <paramref name="size"/> → (side, distance from the spine, height) in the patient's frame.</summary>
    private static (int Side, float D, float V) Patient(PhantomSpec s, int size, (double X, double Y) c)
    {
        float u = s.CenterU + (float)(((c.X + 0.5) / size - 0.5) / s.ZoomX);
        float v = s.CenterV + (float)(((c.Y + 0.5) / size - 0.5) / s.ZoomY);
        int side = u < s.Xs ? -1 : 1;
        return (side, (u - s.Xs) * side, v);
    }

    private static int SideOfLobe(string lobe) => lobe.StartsWith("right", StringComparison.Ordinal) ? -1 : 1;

    private static void Require(object? had, object? wants, string what, string id)
    {
        if (had is null && wants is not null)
            throw new ArgumentException($"{id}: the edited truth adds a {what} the case does not have; the phantom can only redraw the case's own findings");
    }
}
