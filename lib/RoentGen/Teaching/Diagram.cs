using System.Globalization;
using System.Net;
using System.Text;

namespace RoentGen.Teaching;

/// <summary>A box of a <see cref="Diagram"/>: position and size in SVG units, a title and a second line.</summary>
/// <param name="Id">Name the arrows refer to.</param>
/// <param name="X">Left edge.</param>
/// <param name="Y">Top edge.</param>
/// <param name="Width">Width.</param>
/// <param name="Height">Height.</param>
/// <param name="Title">Bold first line.</param>
/// <param name="Detail">Smaller second line (shapes, what it does), or empty.</param>
/// <param name="Fill">Fill colour.</param>
public sealed record DiagramBox(string Id, double X, double Y, double Width, double Height, string Title, string Detail = "", string Fill = "#eef3fb");

/// <summary>An arrow of a <see cref="Diagram"/> from one box's edge to another's, with an optional label.</summary>
/// <param name="From">Source box id.</param>
/// <param name="To">Target box id.</param>
/// <param name="Label">Text beside the arrow's middle, or empty.</param>
/// <param name="Dashed">Dashed (no gradient flows, or a path used only at sampling).</param>
public sealed record DiagramArrow(string From, string To, string Label = "", bool Dashed = false);

/// <summary>
/// A block diagram (boxes and labelled arrows) rendered as inline SVG, so a notebook shows how a model's parts connect
/// next to the calls that build them. The notebook display shows <see cref="ToSvg"/>.
/// </summary>
/// <param name="Title">Caption above the figure.</param>
/// <param name="Boxes">The boxes.</param>
/// <param name="Arrows">The arrows; each end must name a box.</param>
/// <param name="Width">Canvas width.</param>
/// <param name="Height">Canvas height.</param>
public sealed record Diagram(string Title, IReadOnlyList<DiagramBox> Boxes, IReadOnlyList<DiagramArrow> Arrows, double Width, double Height)
{
    /// <summary>The diagram as a standalone &lt;svg&gt; element (titles HTML-escaped).</summary>
    /// <exception cref="ArgumentException">An arrow names a box that is not in <see cref="Boxes"/>.</exception>
    public string ToSvg()
    {
        var byId = Boxes.ToDictionary(b => b.Id, StringComparer.Ordinal);
        static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);
        static string E(string s) => WebUtility.HtmlEncode(s);
        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(Width)}\" height=\"{F(Height + 24)}\" viewBox=\"0 0 {F(Width)} {F(Height + 24)}\" font-family=\"sans-serif\">");
        sb.Append("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker></defs>");
        sb.Append($"<text x=\"{F(Width / 2)}\" y=\"16\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{E(Title)}</text>");
        sb.Append("<g transform=\"translate(0,24)\">");
        foreach (var a in Arrows)
        {
            if (!byId.TryGetValue(a.From, out var from)) throw new ArgumentException($"arrow {a.From} -> {a.To}: no box '{a.From}' (boxes: {string.Join(", ", byId.Keys)})");
            if (!byId.TryGetValue(a.To, out var to)) throw new ArgumentException($"arrow {a.From} -> {a.To}: no box '{a.To}' (boxes: {string.Join(", ", byId.Keys)})");
            var (x1, y1) = Edge(from, to);
            var (x2, y2) = Edge(to, from);
            sb.Append($"<line x1=\"{F(x1)}\" y1=\"{F(y1)}\" x2=\"{F(x2)}\" y2=\"{F(y2)}\" stroke=\"#444\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"{(a.Dashed ? " stroke-dasharray=\"5,4\"" : "")}/>");
            if (a.Label.Length > 0)
                sb.Append($"<text x=\"{F((x1 + x2) / 2 + 4)}\" y=\"{F((y1 + y2) / 2 - 4)}\" font-size=\"11\" fill=\"#333\">{E(a.Label)}</text>");
        }
        foreach (var b in Boxes)
        {
            sb.Append($"<rect x=\"{F(b.X)}\" y=\"{F(b.Y)}\" width=\"{F(b.Width)}\" height=\"{F(b.Height)}\" rx=\"6\" fill=\"{E(b.Fill)}\" stroke=\"#4a7bd0\"/>");
            double cy = b.Y + b.Height / 2 + (b.Detail.Length > 0 ? -3 : 4);
            sb.Append($"<text x=\"{F(b.X + b.Width / 2)}\" y=\"{F(cy)}\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{E(b.Title)}</text>");
            if (b.Detail.Length > 0)
                sb.Append($"<text x=\"{F(b.X + b.Width / 2)}\" y=\"{F(cy + 15)}\" text-anchor=\"middle\" font-size=\"10.5\" fill=\"#333\">{E(b.Detail)}</text>");
        }
        sb.Append("</g></svg>");
        return sb.ToString();
    }

    /// <summary>"Diagram: title (n boxes, m arrows)".</summary>
    public override string ToString() => $"Diagram: {Title} ({Boxes.Count} boxes, {Arrows.Count} arrows)";

    // Where the line from a's centre towards b's centre leaves a's rectangle.
    private static (double X, double Y) Edge(DiagramBox a, DiagramBox b)
    {
        double ax = a.X + a.Width / 2, ay = a.Y + a.Height / 2, dx = b.X + b.Width / 2 - ax, dy = b.Y + b.Height / 2 - ay;
        if (dx == 0 && dy == 0) return (ax, ay);
        double sx = dx == 0 ? double.PositiveInfinity : a.Width / 2 / Math.Abs(dx);
        double sy = dy == 0 ? double.PositiveInfinity : a.Height / 2 / Math.Abs(dy);
        double s = Math.Min(sx, sy);
        return (ax + dx * s, ay + dy * s);
    }
}

/// <summary>The block diagrams of the teaching notebooks.</summary>
public static class Diagrams
{
    /// <summary>
    /// Latent diffusion (Rombach et al. 2022) as RoentGen trains it: the VAE encoder maps an image to a latent z₀, noise
    /// is added by the scheduler, the text encoder turns the report into a context that the UNet reads by cross-attention,
    /// and the UNet predicts the noise; at sampling the scheduler steps from noise and the VAE decoder makes the image.
    /// </summary>
    /// <param name="imageSize">Image side (pixels) written on the boxes.</param>
    /// <param name="latentChannels">Latent channels.</param>
    /// <param name="latentSize">Latent side.</param>
    public static Diagram LatentDiffusion(int imageSize = 64, int latentChannels = 4, int latentSize = 16)
    {
        string img = $"1x{imageSize}x{imageSize} image", lat = $"{latentChannels}x{latentSize}x{latentSize}";
        var boxes = new List<DiagramBox>
        {
            new("image", 10, 20, 130, 50, "X-ray", img, "#f4f4f4"),
            new("enc", 180, 20, 150, 50, "VAE encoder", $"image -> z0 ({lat})"),
            new("sched", 370, 20, 170, 50, "Noise scheduler", "z_t = sqrt(a_t) z0 + sqrt(1-a_t) eps", "#fff6e0"),
            new("unet", 370, 120, 170, 60, "UNet", "predicts eps from (z_t, t, context)", "#e8f5e9"),
            new("loss", 600, 120, 120, 60, "Loss", "|| eps - eps_hat ||^2", "#fdecea"),
            new("report", 10, 220, 130, 50, "Report / prompt", "\"Large right effusion.\"", "#f4f4f4"),
            new("text", 180, 220, 150, 50, "Text encoder", "tokens -> context (L x D)"),
            new("dec", 600, 20, 120, 50, "VAE decoder", "z0 -> image"),
        };
        var arrows = new List<DiagramArrow>
        {
            new("image", "enc"), new("enc", "sched", "z0"), new("sched", "unet", "z_t, t"),
            new("report", "text"), new("text", "unet", "cross-attention"), new("unet", "loss", "eps_hat"),
            new("unet", "dec", "sampling: denoised z0", Dashed: true),
        };
        return new Diagram("Latent diffusion: training (solid) and sampling (dashed)", boxes, arrows, 740, 290);
    }

    /// <summary>
    /// DINOv2 (Oquab et al. 2023) as notebook 04 trains it: multi-crop views go to a student (all crops, some patches
    /// masked) and to an EMA teacher (global crops only, no gradient); the DINO loss compares CLS distributions, iBOT the
    /// masked patches', KoLeo spreads the student's CLS features; only the student is trained by gradients.
    /// </summary>
    public static Diagram DinoStudentTeacher()
    {
        var boxes = new List<DiagramBox>
        {
            new("image", 10, 110, 110, 50, "X-ray", "one image", "#f4f4f4"),
            new("crops", 160, 110, 140, 50, "Multi-crop", "2 global + local crops"),
            new("student", 350, 30, 170, 60, "Student ViT + heads", "all crops, iBOT masks", "#e8f5e9"),
            new("teacher", 350, 180, 170, 60, "Teacher ViT + heads", "global crops, no gradient", "#fff6e0"),
            new("dino", 580, 10, 150, 40, "DINO loss", "CLS: -sum p_t log p_s"),
            new("ibot", 580, 65, 150, 40, "iBOT loss", "masked patches"),
            new("koleo", 580, 120, 150, 40, "KoLeo", "-mean log d_nn (CLS)"),
            new("center", 580, 190, 150, 45, "Centre / Sinkhorn", "teacher targets"),
        };
        var arrows = new List<DiagramArrow>
        {
            new("image", "crops"), new("crops", "student", "all crops"), new("crops", "teacher", "global crops"),
            new("student", "dino"), new("student", "ibot"), new("student", "koleo"),
            new("teacher", "center", "softmax(. / tau_t)"), new("center", "ibot", Dashed: true), new("center", "dino", Dashed: true),
            new("student", "teacher", "EMA: m teacher + (1-m) student", Dashed: true),
        };
        return new Diagram("DINOv2: student (trained by gradients) and EMA teacher", boxes, arrows, 745, 250);
    }

    /// <summary>
    /// ControlNet (Zhang, Rao and Agrawala 2023) as notebook 10 uses it: the masks pass through a small conditioning
    /// network to the latent size and a zero convolution Z, are added to the noisy latents' features, and go through a
    /// trainable copy F_c of the frozen UNet's encoder; each of its outputs passes through a zero convolution and is added
    /// to the frozen UNet F's matching skip and mid-block output: y = F(x) + Z(F_c(x + Z(c))). The text still reaches
    /// both through cross-attention.
    /// </summary>
    public static Diagram ControlNet()
    {
        var boxes = new List<DiagramBox>
        {
            new("latent", 10, 30, 130, 50, "Noisy latents x", "z_t, t", "#f4f4f4"),
            new("unet", 380, 30, 200, 60, "Frozen UNet F", "encoder, mid block, decoder", "#fff6e0"),
            new("out", 630, 30, 110, 60, "y", "predicted noise", "#fdecea"),
            new("masks", 10, 200, 130, 50, "Masks c", "lungs, heart, findings", "#f4f4f4"),
            new("cond", 180, 200, 150, 50, "Conditioning net", "convs to latent size, Z"),
            new("copy", 380, 190, 200, 60, "Trainable copy F_c", "encoder + mid block of F", "#e8f5e9"),
            new("zero", 630, 190, 110, 60, "Zero 1x1 convs Z", "one per skip + mid"),
            new("report", 180, 110, 150, 45, "Report (text)", "cross-attention", "#f4f4f4"),
        };
        var arrows = new List<DiagramArrow>
        {
            new("latent", "unet"), new("unet", "out"), new("latent", "copy", "x"), new("masks", "cond"), new("cond", "copy", "+ Z(c)"),
            new("copy", "zero"), new("zero", "unet", "added to skips and mid (x scale)"), new("report", "unet", Dashed: true), new("report", "copy", Dashed: true),
        };
        return new Diagram("ControlNet: y = F(x) + Z(F_c(x + Z(c)))", boxes, arrows, 760, 270);
    }
}
