using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Synthetic;

namespace RoentGen.Tests.Synthetic;

/// <summary>Finding edits on phantom cases: flips change the side in the truth and the report and the labeler agrees; moves stay in the lungs.</summary>
public sealed class FindingEditsTests
{
    private static readonly PhantomGenerator World = new(new PhantomOptions { Size = 128 });
    private static readonly ReportLabeler Labeler = new();

    /// <summary>The first cases (up to <paramref name="count"/>) whose truth matches, drawn.</summary>
    private static List<PhantomCase> Cases(Func<PhantomFindings, bool> match, int count)
    {
        var found = new List<PhantomCase>();
        for (int i = 0; i < 3000 && found.Count < count; i++)
            if (match(World.GenerateReport(i).Truth)) found.Add(World.Generate(i));
        Assert.True(found.Count > 0, "no phantom case with the finding in the first 3000");
        return found;
    }

    private static void AssertLabelerAgrees(MaskCondition c) =>
        Assert.Equal(c.Report.Labels, Labeler.Label(c.Report.Text));

    private static bool ImageLeft(GrayImage lungs, GrayImage mask) => MaskTransforms.Centroid(mask)!.Value.X < FindingEdits.Midline(lungs);

    [Fact]
    public void Flipping_a_one_sided_effusion_swaps_its_side_in_truth_report_and_mask_and_the_labeler_agrees()
    {
        foreach (var phantom in Cases(f => f.Effusion is { Side: not "both" }, 3))
        {
            var c = MaskCondition.FromCase(phantom);
            string from = phantom.Truth.Effusion!.Side, to = from == "right" ? "left" : "right";
            var flipped = FindingEdits.Flip(c, "pleural_effusion", seed: 11);
            Assert.Equal(to, flipped.Truth.Effusion!.Side);
            Assert.Contains($"{to} pleural effusion", flipped.Report.Text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain($"{from} pleural effusion", flipped.Report.Text, StringComparison.OrdinalIgnoreCase);
            AssertLabelerAgrees(flipped);
            Assert.Equal(phantom.Labels[Observation.PleuralEffusion] == Mention.NotMentioned, flipped.Report.Labels[Observation.PleuralEffusion] == Mention.NotMentioned);
            var lungs = c.Masks["lungs"];
            Assert.NotEqual(ImageLeft(lungs, c.Masks["pleural_effusion"]), ImageLeft(lungs, flipped.Masks["pleural_effusion"]));
            Assert.Equal(to == "right", ImageLeft(lungs, flipped.Masks["pleural_effusion"])); // the patient's right is the image's left
            Assert.Same(c.Masks["heart"], flipped.Masks["heart"]);
            Assert.Equal($"flip pleural_effusion: {from} -> {to}", Assert.Single(flipped.Edits));
        }
    }

    [Fact]
    public void Flipping_a_lesion_moves_it_to_the_mirror_lobe_inside_the_lungs_and_the_labeler_agrees()
    {
        foreach (var phantom in Cases(f => f.Lesion is not null, 4))
        {
            var c = MaskCondition.FromCase(phantom);
            string key = phantom.Truth.Lesion!.IsMass ? "mass" : "nodule";
            var flipped = FindingEdits.Flip(c, key, seed: 3);
            string lobe = FindingEdits.MirrorLobe(phantom.Truth.Lesion.Location);
            Assert.Equal(lobe, flipped.Truth.Lesion!.Location);
            Assert.Equal(phantom.Truth.Lesion.SizeMm, flipped.Truth.Lesion.SizeMm);
            Assert.Contains(lobe, flipped.Report.Text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(phantom.Truth.Lesion.Location, flipped.Report.Text, StringComparison.OrdinalIgnoreCase);
            AssertLabelerAgrees(flipped);
            var lungs = c.Masks["lungs"];
            Assert.Equal(0, MaskTransforms.FractionOutside(flipped.Masks[key], lungs));
            Assert.True(MaskTransforms.Area(flipped.Masks[key]) > 0);
            Assert.Equal(lobe.StartsWith("right", StringComparison.Ordinal), ImageLeft(lungs, flipped.Masks[key]));
            // the same seed gives the same condition
            Assert.Equal(flipped.Report, FindingEdits.Flip(c, key, seed: 3).Report);
        }
    }

    [Fact]
    public void Flipping_consolidation_pneumothorax_and_fracture_swaps_the_side_and_the_labeler_agrees()
    {
        var cons = Cases(f => f.Consolidation is not null, 1)[0];
        var c1 = FindingEdits.Flip(MaskCondition.FromCase(cons), "consolidation", 5);
        Assert.Equal(FindingEdits.MirrorLobe(cons.Truth.Consolidation!.Lobe), c1.Truth.Consolidation!.Lobe);
        AssertLabelerAgrees(c1);

        var ptx = Cases(f => f.Pneumothorax is not null, 1)[0];
        var c2 = FindingEdits.Flip(MaskCondition.FromCase(ptx), "pneumothorax", 5);
        string to = ptx.Truth.Pneumothorax!.Side == "right" ? "left" : "right";
        Assert.Equal(to, c2.Truth.Pneumothorax!.Side);
        Assert.Contains($"{to} pneumothorax", c2.Report.Text, StringComparison.OrdinalIgnoreCase);
        AssertLabelerAgrees(c2);

        var fx = Cases(f => f.Fracture is not null, 1)[0];
        var c3 = FindingEdits.Flip(MaskCondition.FromCase(fx), "fracture", 5);
        Assert.Equal(fx.Truth.Fracture!.Side == "right" ? "left" : "right", c3.Truth.Fracture!.Side);
        Assert.Contains(c3.Truth.Fracture.Side, c3.Report.Text, StringComparison.OrdinalIgnoreCase);
        AssertLabelerAgrees(c3);
        int rib = MaskTransforms.Area(fx.Masks["fracture"]);
        Assert.InRange(MaskTransforms.Area(c3.Masks["fracture"]), rib - 3, rib); // a rib mirrored (exact unless it leaves the image), not cut to the lungs
    }

    [Fact]
    public void Moving_a_lesion_keeps_it_in_the_lungs_with_its_area_and_names_its_new_lobe()
    {
        foreach (var phantom in Cases(f => f.Lesion is { IsMass: false }, 4))
        {
            var c = MaskCondition.FromCase(phantom);
            var lungs = c.Masks["lungs"];
            var t = MaskTransforms.RandomAffine(lungs, (ulong)phantom.Id.GetHashCode(StringComparison.Ordinal) & 0xFFFF, new MaskAffineRanges(MinScale: 1, MaxScale: 1));
            var moved = FindingEdits.Move(c, "nodule", t, seed: 9);
            var mask = moved.Masks["nodule"];
            Assert.Equal(0, MaskTransforms.FractionOutside(mask, lungs));
            // the source mask may reach behind the heart (outside the "lungs" mask): compare with its part inside the lungs
            int before = MaskTransforms.Area(MaskTransforms.Intersect(c.Masks["nodule"], lungs));
            Assert.InRange(MaskTransforms.Area(mask), before * 0.8, Math.Max(before * 1.25, MaskTransforms.Area(c.Masks["nodule"]) * 1.1));
            var (x, y) = MaskTransforms.Centroid(mask)!.Value;
            Assert.Equal(FindingEdits.Locate(lungs, x, y).Lobe, moved.Truth.Lesion!.Location);
            Assert.Contains(moved.Truth.Lesion.Location, moved.Report.Text, StringComparison.OrdinalIgnoreCase);
            AssertLabelerAgrees(moved);
        }
    }

    [Fact]
    public void Resizing_a_nodule_past_30_mm_makes_it_a_mass_in_mask_name_truth_and_report()
    {
        var phantom = Cases(f => f.Lesion is { IsMass: false, SizeMm: >= 16 }, 1)[0];
        var c = MaskCondition.FromCase(phantom);
        var grown = FindingEdits.Resize(c, "nodule", 2.0, seed: 1);
        Assert.False(grown.Masks.ContainsKey("nodule"));
        Assert.True(grown.Masks.ContainsKey("mass"));
        Assert.True(grown.Truth.Lesion!.IsMass, $"size {grown.Truth.Lesion.SizeMm} mm");
        Assert.Contains("mass", grown.Report.Text, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, MaskTransforms.FractionOutside(grown.Masks["mass"], c.Masks["lungs"]));
        Assert.True(MaskTransforms.Area(grown.Masks["mass"]) > MaskTransforms.Area(MaskTransforms.Intersect(c.Masks["nodule"], c.Masks["lungs"])));
        AssertLabelerAgrees(grown);
    }

    [Fact]
    public void Deform_keeps_the_report_and_alpha_zero_keeps_the_mask()
    {
        var phantom = Cases(f => f.Consolidation is not null, 1)[0];
        var c = MaskCondition.FromCase(phantom);
        var same = FindingEdits.Deform(c, "consolidation", new ElasticOptions(Alpha: 0), 4);
        Assert.Equal(MaskTransforms.Intersect(c.Masks["consolidation"], c.Masks["lungs"]).Pixels, same.Masks["consolidation"].Pixels);
        var warped = FindingEdits.Deform(c, "consolidation", new ElasticOptions(), 4);
        Assert.Equal(c.Report, warped.Report);
        Assert.Equal(0, MaskTransforms.FractionOutside(warped.Masks["consolidation"], c.Masks["lungs"]));
    }

    [Fact]
    public void Edits_that_make_no_sense_are_refused_with_the_reason()
    {
        var both = Cases(f => f.Effusion is { Side: "both" }, 1)[0];
        var e1 = Assert.Throws<ArgumentException>(() => FindingEdits.Flip(MaskCondition.FromCase(both), "pleural_effusion", 1));
        Assert.Contains("bilateral", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => FindingEdits.Move(MaskCondition.FromCase(both), "pleural_effusion", MaskAffine.Identity, 1));
        Assert.Contains("cannot be moved", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => FindingEdits.Flip(MaskCondition.FromCase(both), "nodule", 1));
        Assert.Contains("has no 'nodule' mask", e3.Message);
    }
}
