using RoentGen.Data;
using RoentGen.Data.Datasets;

namespace RoentGen.Tests.Data.Datasets;

public class ReportAndResizeTests
{
    [Fact]
    public void Report_sections_are_found_in_any_case_with_extra_and_missing_sections()
    {
        var r = ReportSections.Parse(
            "WET READ: ___ no ptx\n  FINAL REPORT\n EXAMINATION: CHEST PA AND LAT\n INDICATION: cough\n"
            + " findings : Lungs are clear.\nHeart size: normal.\n Note: patient rotated.\n"
            + " PA AND LATERAL COMPARISON: none\n Impression:\n\n   No acute process.\n RECOMMENDATION(S): none\n");
        Assert.Equal("Lungs are clear. Heart size: normal. Note: patient rotated.", r.Findings);
        Assert.Equal("No acute process.", r.Impression);
        Assert.StartsWith("WET READ", r.Full);
        var sections = ReportSections.Split(r.Full!);
        Assert.Equal("cough", sections["indication"]);
        Assert.Equal("none", sections["recommendation(s)"]);

        var none = ReportSections.Parse("Normal chest. No effusion.");
        Assert.Null(none.Findings);
        Assert.Null(none.Impression);
        Assert.Equal("Normal chest. No effusion.", none.Text);
        Assert.True(ReportSections.Parse("  ").IsEmpty);
        Assert.Equal("Opacity.", ReportSections.Parse("CONCLUSION: Opacity.").Impression);
        Assert.Equal("a. b.", ReportSections.Parse("FINDINGS: a.\nIMPRESSION: x\nFINDINGS: b.").Findings);
    }

    [Theory]
    [InlineData("PA", true, false)]
    [InlineData("AP Supine", true, false)]
    [InlineData("frontal", true, false)]
    [InlineData("AP/PA (pediatric)", true, false)]
    [InlineData("LATERAL", false, true)]
    [InlineData("LL", false, true)]
    [InlineData("", false, false)]
    [InlineData(null, false, false)]
    public void Views_are_classified(string? view, bool frontal, bool lateral)
    {
        Assert.Equal(frontal, CxrViews.IsFrontal(view));
        Assert.Equal(lateral, CxrViews.IsLateral(view));
    }

    [Fact]
    public void Resize_averages_when_shrinking_and_pads_or_crops_to_square()
    {
        var checker = new GrayImage(16, 16);
        for (int y = 0; y < 16; y++) for (int x = 0; x < 16; x++) checker[x, y] = (x + y) % 2;
        var small = ImageResize.ToSquare(checker, 4);
        Assert.All(small.Pixels, v => Assert.InRange(v, 0.4f, 0.6f)); // no aliasing into black/white blocks

        var wide = new GrayImage(8, 4, Enumerable.Repeat(1f, 32).ToArray());
        var padded = ImageResize.ToSquare(wide, 8, SquareMode.Pad);
        Assert.Equal(0f, padded[4, 0]);
        Assert.Equal(1f, padded[4, 4], 3);
        var cropped = ImageResize.ToSquare(wide, 8, SquareMode.CenterCrop);
        Assert.All(cropped.Pixels, v => Assert.Equal(1f, v, 3));
        var stretched = ImageResize.ToSquare(wide, 8, SquareMode.Stretch);
        Assert.All(stretched.Pixels, v => Assert.Equal(1f, v, 3));
    }
}
