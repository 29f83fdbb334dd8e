using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation.Probes;
using RoentGen.Visualization;

namespace RoentGen.Evaluation;

/// <summary>The points of one category in a 2-D embedding.</summary>
/// <param name="Name">The category (legend entry).</param>
/// <param name="Indices">Row indices of its points in the embedding, ascending.</param>
/// <param name="X">First coordinate of each point.</param>
/// <param name="Y">Second coordinate of each point.</param>
public sealed record ScatterGroup(string Name, int[] Indices, double[] X, double[] Y)
{
    /// <summary>Number of points.</summary>
    public int Count => Indices.Length;
}

/// <summary>
/// Scatter plots of a 2-D embedding (e.g. <see cref="TSne.Fit"/> of encoder features) coloured by a category
/// (finding, sex, real vs synthetic) or by a number (age).
/// </summary>
public static class TSneCharts
{
    /// <summary>
    /// Splits the points by category: one group per distinct label, largest first (ties by name, ordinal), each
    /// holding its rows in ascending order.
    /// </summary>
    /// <exception cref="ArgumentException">The embedding is not n x 2, or the labels are not one per point (or one is null).</exception>
    public static IReadOnlyList<ScatterGroup> Groups(float[,] embedding, IReadOnlyList<string> labels)
    {
        int n = Check(embedding, labels.Count, "labels");
        for (int i = 0; i < n; i++)
            if (labels[i] is null) throw new ArgumentException($"label of point {i} is null", nameof(labels));
        return Enumerable.Range(0, n).GroupBy(i => labels[i], StringComparer.Ordinal)
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Select(g =>
            {
                var idx = g.OrderBy(i => i).ToArray();
                return new ScatterGroup(g.Key, idx, idx.Select(i => (double)embedding[i, 0]).ToArray(), idx.Select(i => (double)embedding[i, 1]).ToArray());
            }).ToList();
    }

    /// <summary>
    /// The t-SNE view notebooks 04 and 05 show for an encoder: its CLS features of <paramref name="cases"/> embedded in two
    /// dimensions and drawn three times, coloured by finding, by sex and by age (what reports say, and what they never say).
    /// </summary>
    /// <param name="encoder">A frozen image encoder.</param>
    /// <param name="cases">The phantoms to embed (their images at the encoder's size).</param>
    /// <param name="name">The name in the titles (default: the encoder's).</param>
    /// <param name="seed">The t-SNE seed.</param>
    public static TSneFeatureMaps FeatureMaps(IImageEncoder encoder, IReadOnlyList<PhantomCase> cases, string? name = null, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        if (cases.Count < 4) throw new ArgumentException($"t-SNE needs at least 4 cases, got {cases.Count}", nameof(cases));
        name ??= encoder.Name;
        using var images = ImageTensors.Stack(cases.Select(c => c.Image));
        var features = EncodedFeatures.Extract(encoder, images);
        var tsne = TSne.Fit(TSne.Rows(features.Cls), new TSneOptions { Perplexity = TSne.PerplexityFor(cases.Count), Seed = seed });
        var ids = cases.Select(c => c.Id).ToList();
        return new TSneFeatureMaps(
            tsne, cases.Count, (int)features.Cls.shape[1],
            Scatter(tsne.Embedding, cases.Select(c => FindingGroup(c.Present)).ToList(), $"{name}: CLS features by finding", ids),
            Scatter(tsne.Embedding, cases.Select(c => c.Sex).ToList(), $"{name}: by sex", ids),
            ScatterContinuous(tsne.Embedding, cases.Select(c => (double)c.Age).ToList(), $"{name}: by age", "age"),
            name);
    }

    /// <summary>
    /// A scatter with one trace per category (legend "name (count)"), so categories can be toggled in the legend.
    /// </summary>
    /// <param name="embedding">n x 2 coordinates.</param>
    /// <param name="labels">One category per point.</param>
    /// <param name="title">Chart title.</param>
    /// <param name="hover">Optional hover text per point (e.g. case ids).</param>
    /// <exception cref="ArgumentException">Sizes disagree.</exception>
    public static Figure Scatter(float[,] embedding, IReadOnlyList<string> labels, string title, IReadOnlyList<string>? hover = null)
    {
        if (hover is not null) Check(embedding, hover.Count, "hover");
        var traces = Groups(embedding, labels).Select(g => (Trace)new ScatterTrace
        {
            Name = $"{g.Name} ({g.Count})", Mode = ScatterMode.Markers, X = g.X, Y = g.Y,
            Text = hover is null ? null : g.Indices.Select(i => hover[i]).ToArray(),
        }).ToList();
        return Style(traces, title);
    }

    /// <summary>
    /// A scatter with a single trace whose marker colour follows a number per point (e.g. age), on the Viridis scale
    /// with a colour bar titled <paramref name="colorTitle"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Sizes disagree, or a value is not finite.</exception>
    public static Figure ScatterContinuous(float[,] embedding, IReadOnlyList<double> values, string title, string colorTitle = "value")
    {
        int n = Check(embedding, values.Count, "values");
        for (int i = 0; i < n; i++)
            if (!double.IsFinite(values[i])) throw new ArgumentException($"value of point {i} is {values[i]}, expected a finite number", nameof(values));
        var trace = new ScatterTrace
        {
            Name = colorTitle, Mode = ScatterMode.Markers,
            X = Enumerable.Range(0, n).Select(i => (double)embedding[i, 0]).ToArray(),
            Y = Enumerable.Range(0, n).Select(i => (double)embedding[i, 1]).ToArray(),
            Text = values.Select(v => FormattableString.Invariant($"{colorTitle} {v:G4}")).ToArray(),
            Marker = new MarkerStyle { ColorValues = values, ColorScale = ContinuousColorScale, ShowScale = true, ColorBarTitle = colorTitle },
        };
        return Style([trace], title);
    }

    /// <summary>The plotly colour scale of <see cref="ScatterContinuous"/>.</summary>
    public const string ContinuousColorScale = "Viridis";

    /// <summary>
    /// A single category for a case's findings: "No Finding" when nothing but support devices is present, the
    /// observation's CheXpert name when one is, "multiple" when several are.
    /// </summary>
    public static string FindingGroup(IEnumerable<Observation> present)
    {
        var findings = present.Where(o => o is not Observation.SupportDevices and not Observation.NoFinding).Distinct().ToList();
        return findings.Count switch
        {
            0 => Observation.NoFinding.Name(),
            1 => findings[0].Name(),
            _ => "multiple",
        };
    }

    private static Figure Style(IReadOnlyList<Trace> traces, string title) =>
        new(title, traces, new FigureLayout { XAxis = new FigureAxis { Title = "t-SNE 1" }, YAxis = new FigureAxis { Title = "t-SNE 2" } });

    private static int Check(float[,] embedding, int count, string what)
    {
        if (embedding.GetLength(1) != 2) throw new ArgumentException($"expected an n x 2 embedding, got {embedding.GetLength(0)} x {embedding.GetLength(1)}", nameof(embedding));
        int n = embedding.GetLength(0);
        if (count != n) throw new ArgumentException($"{what} has {count} entries for {n} points", what);
        return n;
    }
}

/// <summary>An encoder's t-SNE maps (<see cref="TSneCharts.FeatureMaps"/>).</summary>
/// <param name="Tsne">The embedding and its KL history.</param>
/// <param name="Points">How many cases were embedded.</param>
/// <param name="Features">The width of the CLS features.</param>
/// <param name="ByFinding">Coloured by finding group.</param>
/// <param name="BySex">Coloured by sex.</param>
/// <param name="ByAge">Coloured by age (a colour scale).</param>
/// <param name="Name">The encoder's name in the titles.</param>
public sealed record TSneFeatureMaps(TSneResult Tsne, int Points, int Features, Figure ByFinding, Figure BySex, Figure ByAge, string Name)
{
    /// <summary>One line: what was embedded and how well t-SNE fit it.</summary>
    public string Summary => $"{Name}: t-SNE of {Points} x {Features} CLS features, KL {Tsne.FinalKl:F3} in {Tsne.Seconds:F1} s";
}
