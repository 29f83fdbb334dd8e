using RoentGen.Interactive;
using RoentGen.Teaching;

namespace RoentGen.Tests.Teaching;

public class DiagramTests
{
    [Fact]
    public void Latent_diffusion_diagram_names_its_four_parts_and_the_forward_process()
    {
        var svg = Diagrams.LatentDiffusion(64, 4, 16).ToSvg();
        Assert.StartsWith("<svg", svg);
        foreach (var part in new[] { "VAE encoder", "VAE decoder", "Text encoder", "UNet", "Noise scheduler", "4x16x16" })
            Assert.Contains(part, svg);
        Assert.Equal(7, System.Text.RegularExpressions.Regex.Matches(svg, "<line ").Count);
        Assert.Contains("stroke-dasharray", svg);
    }

    [Fact]
    public void Dino_diagram_has_student_teacher_and_the_three_losses_and_displays_as_svg()
    {
        var d = Diagrams.DinoStudentTeacher();
        var html = Display.ToHtml(d);
        Assert.StartsWith("<svg", html);
        foreach (var part in new[] { "Student ViT", "Teacher ViT", "DINO loss", "iBOT loss", "KoLeo", "EMA" })
            Assert.Contains(part, html);
    }

    [Fact]
    public void An_arrow_to_a_missing_box_is_an_error_that_names_it_and_titles_are_escaped()
    {
        var bad = new Diagram("t", [new DiagramBox("a", 0, 0, 10, 10, "A")], [new DiagramArrow("a", "b")], 100, 100);
        Assert.Contains("no box 'b'", Assert.Throws<ArgumentException>(() => bad.ToSvg()).Message);
        var escaped = new Diagram("<x>", [new DiagramBox("a", 0, 0, 10, 10, "a & b")], [], 100, 100).ToSvg();
        Assert.Contains("&lt;x&gt;", escaped);
        Assert.Contains("a &amp; b", escaped);
    }
}
