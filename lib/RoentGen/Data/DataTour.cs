using Microsoft.Data.Analysis;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Platform;
using RoentGen.Visualization;

namespace RoentGen.Data;

/// <summary>
/// Views of a set of CXRs for the data-tour notebook and reports: galleries per finding, mask overlays, reports
/// beside their extracted labels, label and metadata distributions, and phantoms beside real images.
/// </summary>
public static class DataTour
{
    /// <summary>Mask colours by mask name.</summary>
    public static Rgb MaskColor(string mask) => mask switch
    {
        "lungs" => Rgb.Blue,
        "heart" => Rgb.Yellow,
        "pleural_effusion" or "edema" => new Rgb(0, 200, 220),
        "pneumothorax" => Rgb.Red,
        _ => Rgb.Green,
    };

    /// <summary>
    /// A gallery with one row per observation: up to <paramref name="perFinding"/> cases whose image shows it
    /// (first the ones with only that finding), captioned with the case id and attributes.
    /// </summary>
    public static ImageGrid FindingGallery(IReadOnlyList<PhantomCase> cases, int perFinding = 4, IEnumerable<Observation>? findings = null)
    {
        var grid = new ImageGrid(perFinding, "phantoms by finding");
        foreach (var o in findings ?? Observations.All.Where(o => o != Observation.PleuralOther))
        {
            var chosen = cases.Where(c => o == Observation.NoFinding ? c.Labels.Has(Observation.NoFinding) : c.Present.Contains(o))
                .OrderBy(c => c.Present.Count).Take(perFinding).ToList();
            for (int i = 0; i < perFinding; i++)
            {
                if (i < chosen.Count) grid.Add(chosen[i].Image, $"{o.Name()}: {Describe(chosen[i], o)}");
                else grid.Add(new GrayImage(cases[0].Image.Width, cases[0].Image.Height), $"{o.Name()}: none in sample");
            }
        }
        return grid;
    }

    /// <summary>Each case with its masks tinted (lungs blue, heart yellow, findings in their own colours).</summary>
    public static ImageGrid MaskOverlays(IEnumerable<PhantomCase> cases, int columns = 4, bool anatomy = false)
    {
        var grid = new ImageGrid(columns, anatomy ? "anatomy masks" : "finding masks");
        foreach (var c in cases)
        {
            var masks = c.Masks.Where(kv => anatomy ? kv.Key is "lungs" or "heart" : kv.Key is not ("lungs" or "heart")).ToList();
            if (masks.Count == 0) { grid.Add(c.Image, $"{c.Id}: no finding mask"); continue; }
            // One overlay per cell: the first mask; further masks get their own cells.
            foreach (var (name, mask) in masks)
                grid.AddWithMask(c.Image, mask, $"{c.Id}: {name}", MaskColor(name), 0.45f);
        }
        return grid;
    }

    /// <summary>
    /// A varied sample for reading reports: one normal case, one hedged case (a label of −1, uncertain) when there is
    /// one, then one case per finding in <see cref="Observations.All"/> order (the one with the fewest other findings
    /// first), each case at most once, up to <paramref name="count"/> cases. The first cases of a phantom set are
    /// mostly normal; this shows what the report writer does with each finding.
    /// </summary>
    public static IReadOnlyList<PhantomCase> VariedReportSample(IReadOnlyList<PhantomCase> cases, int count = 8)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be at least 1");
        var chosen = new List<PhantomCase>();
        void Take(PhantomCase? c) { if (c is not null && chosen.Count < count && !chosen.Contains(c)) chosen.Add(c); }
        Take(cases.FirstOrDefault(c => c.Present.All(o => o == Observation.NoFinding)));
        Take(cases.FirstOrDefault(c => Observations.All.Any(o => c.Labels[o] == Mention.Uncertain)));
        foreach (var o in Observations.All.Where(o => o != Observation.NoFinding))
            Take(cases.Where(c => c.Present.Contains(o) && !chosen.Contains(c)).OrderBy(c => c.Present.Count(p => p != Observation.NoFinding)).FirstOrDefault());
        return chosen;
    }

    /// <summary>Reports beside the labeler's labels and the generator's truth, one row per case.</summary>
    public static DataFrame ReportsWithLabels(IEnumerable<PhantomCase> cases, ReportLabeler? labeler = null)
    {
        labeler ??= new ReportLabeler();
        var id = new StringDataFrameColumn("id");
        var report = new StringDataFrameColumn("report");
        var extracted = new StringDataFrameColumn("labeler");
        var truth = new StringDataFrameColumn("generator labels");
        var agree = new PrimitiveDataFrameColumn<bool>("agree");
        foreach (var c in cases)
        {
            var l = labeler.Label(c.Report);
            id.Append(c.Id);
            report.Append(c.Report);
            extracted.Append(l.ToString());
            truth.Append(c.Labels.ToString());
            agree.Append(l.Equals(c.Labels));
        }
        return new DataFrame(id, report, extracted, truth, agree);
    }

    /// <summary>Bar chart: how many cases are positive, uncertain and negative for each observation (one trace each, grouped).</summary>
    public static Figure LabelChart(IReadOnlyList<CxrLabels> labels, string title = "label distribution")
    {
        var names = Observations.Names.ToArray();
        BarTrace Bars(Mention m, string name) => new()
        {
            Name = name, Categories = names, Values = Observations.All.Select(o => (double)labels.Count(l => l[o] == m)).ToArray(),
        };
        return new Figure(title, [Bars(Mention.Positive, "positive (1)"), Bars(Mention.Uncertain, "uncertain (-1)"), Bars(Mention.Negative, "negative (0)")],
            new FigureLayout { BarMode = BarMode.Group, YAxis = new FigureAxis { Title = "cases" } });
    }

    /// <summary>Bins of the age histogram of <see cref="MetadataCharts"/> (about this many, shared by both sexes).</summary>
    public const int AgeBins = 15;

    /// <summary>
    /// Histogram of age by sex (female and male overlaid, the same bins for both, binned in C#: see
    /// <see cref="Histogram"/>), and counts of views, as one figure each.
    /// </summary>
    public static (Figure Age, Figure Views) MetadataCharts(IReadOnlyList<(string? Sex, double? Age, string? View)> rows)
    {
        double[] AgesOf(string sex) => rows.Where(r => r.Sex == sex && r.Age is double a && double.IsFinite(a)).Select(r => r.Age!.Value).ToArray();
        var (female, male) = (AgesOf("F"), AgesOf("M"));
        var all = female.Concat(male).ToArray();
        var ageTraces = new List<Trace>();
        if (all.Length > 0)
        {
            var edges = Histogram.EvenEdges(all.Min(), all.Max(), AgeBins);
            ageTraces.Add(Histogram.Bin(female, edges).ToBar("female") with { Opacity = 0.6 });
            ageTraces.Add(Histogram.Bin(male, edges).ToBar("male") with { Opacity = 0.6 });
        }
        var age = new Figure("age by sex (never written in reports)", ageTraces, new FigureLayout
        {
            BarMode = BarMode.Overlay, BarGap = 0,
            XAxis = new FigureAxis { Title = "age (years)" }, YAxis = new FigureAxis { Title = "cases" },
        });
        var viewGroups = rows.GroupBy(r => r.View ?? "unknown").OrderBy(g => g.Key).ToList();
        var views = new Figure("views",
            [new BarTrace { Name = "views", Categories = viewGroups.Select(g => g.Key).ToArray(), Values = viewGroups.Select(g => (double)g.Count()).ToArray() }],
            new FigureLayout { YAxis = new FigureAxis { Title = "cases" } });
        return (age, views);
    }

    /// <summary>Phantom cases as (sex, age, view) rows for <see cref="MetadataCharts"/>.</summary>
    public static IReadOnlyList<(string? Sex, double? Age, string? View)> Metadata(IEnumerable<PhantomCase> cases) =>
        cases.Select(c => ((string?)c.Sex, (double?)c.Age, (string?)c.View)).ToList();

    /// <summary>Dataset records as (sex, age, view) rows for <see cref="MetadataCharts"/>.</summary>
    public static IReadOnlyList<(string? Sex, double? Age, string? View)> Metadata(CxrDataset dataset) =>
        dataset.Select(r => (r.Sex, r.Age, r.View)).ToList();

    /// <summary>Phantoms in the top row(s), real images below, same size, captioned with their source.</summary>
    public static ImageGrid PhantomsBesideReal(IReadOnlyList<PhantomCase> phantoms, CxrDataset real, int count = 6, int size = 128)
    {
        var grid = new ImageGrid(count, "phantoms (top) and real images (bottom)");
        foreach (var c in phantoms.Take(count)) grid.Add(ImageResize.Resize(c.Image, size, size), $"phantom {c.Id}");
        foreach (var r in real.GroupBy(r => r.Dataset).SelectMany(g => g.Take(Math.Max(1, count / 4))).Take(count))
            grid.Add(real.LoadImage(r, size), $"{r.Dataset}: {string.Join("|", r.SourceLabels.Take(2))}");
        return grid;
    }

    /// <summary>
    /// A normal man and a normal woman of <paramref name="generator"/>'s world redrawn at <paramref name="size"/> px, each
    /// plain, with the lungs mask (blue) and with the heart mask (yellow): the anatomy as it projects on a frontal film.
    /// </summary>
    /// <param name="generator">The world (its seed and options; the size is replaced).</param>
    /// <param name="size">Side in pixels (64..512).</param>
    /// <param name="search">How many cases to look through for the two normal patients.</param>
    /// <exception cref="InvalidOperationException">No normal man or woman among the first <paramref name="search"/> cases.</exception>
    public static ImageGrid AnatomyPlates(PhantomGenerator generator, int size = 256, int search = 400)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var big = new PhantomGenerator(generator.Options with { Size = size });
        var grid = new ImageGrid(3, $"normal anatomy at {size} px: plain, lungs, heart");
        foreach (var sex in new[] { "M", "F" })
        {
            // Reports are cheap; only normal cases are drawn, and the one found is kept rather than drawn again.
            var c = Enumerable.Range(0, search).Where(i => big.GenerateReport(i).Truth.IsNormal).Select(big.Generate).FirstOrDefault(x => x.Sex == sex)
                ?? throw new InvalidOperationException($"no normal {(sex == "M" ? "man" : "woman")} among the first {search} cases of world {generator.Options.Seed}");
            grid.Add(c.Image, $"{c.Id}: {(sex == "M" ? "man" : "woman")}, {c.Age} y, {c.View}");
            grid.AddWithMask(c.Image, c.Masks["lungs"], "lungs mask", MaskColor("lungs"), 0.35f);
            grid.AddWithMask(c.Image, c.Masks["heart"], "heart mask", MaskColor("heart"), 0.35f);
        }
        return grid;
    }

    /// <summary>
    /// Image statistics of phantoms beside a real set (the same number of images, at the same size): body intensity,
    /// noise power spectrum slope, edge density, and the distance between the intensity histograms inside the body
    /// (definitions: <see cref="RoentGen.Evaluation.ImageStatistics"/>).
    /// </summary>
    public static DataFrame StatisticsBesideReal(IReadOnlyList<PhantomCase> phantoms, CxrDataset real, int size = 128)
    {
        ArgumentNullException.ThrowIfNull(phantoms);
        ArgumentNullException.ThrowIfNull(real);
        int n = Math.Min(phantoms.Count, real.Count);
        var set = RoentGen.Evaluation.ImageStatistics.OfSet("phantoms", phantoms.Take(n).Select(c => ImageResize.Resize(c.Image, size, size)));
        var reference = RoentGen.Evaluation.ImageStatistics.OfSet(real.Name, real.Take(n).Select(r => real.LoadImage(r, size)));
        return RoentGen.Evaluation.ImageStatistics.Compare(set, reference).ToDataFrame();
    }

    /// <summary>The radiographic sign each finding mask of the phantom world is drawn with (what to look for in a close-up).</summary>
    public static IReadOnlyDictionary<string, string> SignsDrawn { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["pleural_effusion"] = "meniscus, blunted costophrenic angle, layering with size, dome obscured",
        ["pneumothorax"] = "thin visceral pleural line, no vessels beyond it, deep sulcus when supine",
        ["consolidation"] = "lobar opacity, air bronchograms, edge at the fissure, silhouette of heart or dome",
        ["edema"] = "perihilar haze, Kerley B lines, upper-zone vessels",
        ["nodule"] = "round opacity, sharp, spiculated or calcified",
        ["mass"] = "round opacity of 30 mm or more, sharp or spiculated",
        ["atelectasis"] = "linear or plate-like band, volume loss",
        ["fracture"] = "cortical break and step in the named rib",
        ["support_devices"] = "tube tip above the carina, line along the vein, pacemaker and leads",
    };

    /// <summary>
    /// Close-ups of each finding's sign: for every finding mask, the case that shows it with the fewest other findings (the largest of those),
    /// cropped to the mask's box (with a margin), once plain and once with the mask tinted, at <paramref name="tile"/> px.
    /// </summary>
    public static ImageGrid FindingSigns(IReadOnlyList<PhantomCase> cases, int tile = 128)
    {
        ArgumentNullException.ThrowIfNull(cases);
        var grid = new ImageGrid(4, "each finding's sign, close up (plain, then with its mask)");
        foreach (var (name, sign) in SignsDrawn)
        {
            // The clearest example: fewest other findings, then the largest mask.
            var c = cases.Where(x => x.Masks.TryGetValue(name, out var m) && m.Pixels.Any(v => v > 0.5f))
                .OrderBy(x => x.Present.Count).ThenByDescending(x => x.Masks[name].Pixels.Count(v => v > 0.5f)).FirstOrDefault();
            if (c is null) continue;
            var (x0, y0, w) = Box(c.Masks[name]);
            var crop = ImageResize.Resize(Crop(c.Image, x0, y0, w), tile, tile);
            var mask = ImageResize.Resize(Crop(c.Masks[name], x0, y0, w), tile, tile);
            grid.Add(crop, $"{name.Replace('_', ' ')} ({c.Id})");
            grid.AddWithMask(crop, mask, sign, MaskColor(name), 0.35f);
        }
        return grid;
    }

    // The square box around a mask's pixels, grown by half its size (at least a quarter of the image), inside the image.
    private static (int X, int Y, int Side) Box(GrayImage mask)
    {
        int minX = mask.Width, minY = mask.Height, maxX = -1, maxY = -1;
        for (int y = 0; y < mask.Height; y++)
            for (int x = 0; x < mask.Width; x++)
                if (mask[x, y] > 0.5f) { minX = Math.Min(minX, x); maxX = Math.Max(maxX, x); minY = Math.Min(minY, y); maxY = Math.Max(maxY, y); }
        int side = Math.Min(Math.Min(mask.Width, mask.Height), Math.Max(Math.Max(maxX - minX, maxY - minY) * 3 / 2 + 1, mask.Width / 4));
        int cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
        return (Math.Clamp(cx - side / 2, 0, mask.Width - side), Math.Clamp(cy - side / 2, 0, mask.Height - side), side);
    }

    private static GrayImage Crop(GrayImage image, int x0, int y0, int side)
    {
        var px = new float[side * side];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) px[y * side + x] = image[x0 + x, y0 + y];
        return new GrayImage(side, side, px);
    }

    private static string Describe(PhantomCase c, Observation o)
    {
        string Attr(string k) => c.Attributes.TryGetValue(k, out var v) && v.Length > 0 ? v : "";
        return o switch
        {
            Observation.PleuralEffusion => $"{Attr("effusion_side")} {Attr("effusion_size")}".Trim(),
            Observation.Pneumothorax => $"{Attr("pneumothorax_side")} {Attr("pneumothorax_size")}".Trim(),
            Observation.Cardiomegaly => $"CTR {Attr("ctr")}",
            Observation.Consolidation or Observation.Pneumonia => Attr("consolidation_lobe"),
            Observation.LungLesion => $"{Attr("lesion_kind")} {Attr("nodule_location")} {Attr("nodule_size_mm")}mm".Trim(),
            Observation.SupportDevices => Attr("devices"),
            _ => c.Id,
        };
    }
}
