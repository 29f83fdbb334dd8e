using Microsoft.Data.Analysis;
using RoentGen.Training;
using RoentGen.Visualization;

namespace RoentGen.Methods;

/// <summary>Charts of a DINO run's history: the loss terms, and the signs of collapse.</summary>
public static class DinoCharts
{
    /// <summary>The loss terms, in the order they are drawn (those the run reported).</summary>
    public static IReadOnlyList<string> LossTerms { get; } = ["dino", "ibot", "koleo"];

    /// <summary>The collapse monitors reported by <see cref="DinoTraining.Step"/>.</summary>
    public static IReadOnlyList<string> CollapseMetrics { get; } = ["teacher_entropy", "effective_prototypes"];

    /// <summary>
    /// The weighted total and each reported loss term (DINO, iBOT, KoLeo, unweighted) per step, smoothed by a trailing
    /// mean of <paramref name="window"/> steps (1: raw). Terms whose weight was 0 are absent from the history and the chart.
    /// </summary>
    public static Figure Losses(TrainingHistory history, string title = "DINOv2 losses", int window = 1)
    {
        var steps = Steps(history);
        var lines = new List<Trace> { Line(steps, history.Loss, "total", window) };
        foreach (var name in LossTerms)
            if (history.Metrics.TryGetValue(name, out var values) && values.Count == steps.Length)
                lines.Add(Line(steps, values, name, window));
        return new Figure(title, lines, new FigureLayout { XAxis = new FigureAxis { Title = "step" }, YAxis = new FigureAxis { Title = "loss" } });
    }

    /// <summary>
    /// The teacher's mean per-image entropy (left axis, nats) and its effective number of prototypes (right axis: exp of
    /// the entropy of the batch-mean distribution), per step: entropy near log(K) means uniform targets, few effective
    /// prototypes means one dominant prototype; both are how DINO collapses. The two have different scales (about 5.5
    /// against up to K), hence two y axes.
    /// </summary>
    /// <param name="history">The run's history.</param>
    /// <param name="title">Chart title.</param>
    /// <param name="prototypes">
    /// K, the heads' prototype count (<see cref="DinoConfig.Prototypes"/>), when known: adds a dashed log K line (the
    /// entropy of uniform targets) and fixes the axes at 0 to log K and 0 to K (without it, both axes still start at 0).
    /// </param>
    /// <exception cref="ArgumentException"><paramref name="prototypes"/> is below 2.</exception>
    public static Figure Collapse(TrainingHistory history, string title = "teacher targets (collapse monitors)", int? prototypes = null)
    {
        if (prototypes is < 2) throw new ArgumentException($"prototypes must be at least 2 (K of the DINO head), got {prototypes}", nameof(prototypes));
        var steps = Steps(history);
        bool Has(string name) => history.Metrics.TryGetValue(name, out var v) && v.Count == steps.Length;
        bool entropy = Has(CollapseMetrics[0]), effective = Has(CollapseMetrics[1]);
        var traces = new List<Trace>();
        if (entropy) traces.Add(Line(steps, history.Metrics[CollapseMetrics[0]], CollapseMetrics[0], 1));
        if (entropy && prototypes is int k)
        {
            double logK = Math.Log(k);
            traces.Add(new ScatterTrace
            {
                Name = $"log K = {logK:F2} (uniform targets, K = {k})", X = [1, Math.Max(1, steps.Length)], Y = [logK, logK],
                Line = new LineStyle { Color = "#7f7f7f", Dash = LineDash.Dash, Width = 1.5 },
            });
        }
        if (effective) traces.Add(Line(steps, history.Metrics[CollapseMetrics[1]], CollapseMetrics[1], 1) with { SecondYAxis = true });
        if (traces.Count == 0) traces.Add(new ScatterTrace { Name = "no collapse metrics reported" });
        var layout = new FigureLayout
        {
            // The right side holds the prototype axis: the legend goes on top.
            Legend = LegendPosition.Top,
            XAxis = new FigureAxis { Title = "step" },
            // Both axes start at 0, so that a flat run does not look like a large change.
            YAxis = new FigureAxis { Title = "teacher entropy (nats)", Range = prototypes is int k1 ? new AxisRange(0, Math.Log(k1) * 1.08) : null, FromZero = true },
            YAxis2 = effective ? new FigureAxis { Title = "effective prototypes", Range = prototypes is int k2 ? new AxisRange(0, k2 * 1.05) : null, FromZero = true } : null,
        };
        return new Figure(title, traces, layout);
    }

    /// <summary>
    /// The two collapse monitors as two charts, one per quantity, each with its own reference line: the teacher's entropy
    /// with log K (uniform targets), and the effective number of prototypes with K (all used equally) and 1 (one
    /// prototype for every image). Separate panels keep nats and counts off one axis.
    /// </summary>
    /// <param name="history">The run's history.</param>
    /// <param name="prototypes">K, the heads' prototype count.</param>
    /// <exception cref="ArgumentException"><paramref name="prototypes"/> is below 2.</exception>
    public static (Figure Entropy, Figure Prototypes) CollapsePanels(TrainingHistory history, int prototypes)
    {
        if (prototypes < 2) throw new ArgumentException($"prototypes must be at least 2 (K of the DINO head), got {prototypes}", nameof(prototypes));
        var steps = Steps(history);
        double last = Math.Max(1, steps.Length);
        ScatterTrace Reference(double y, string name) => new()
        {
            Name = name, X = [1, last], Y = [y, y], Line = new LineStyle { Color = "#7f7f7f", Dash = LineDash.Dash, Width = 1.5 },
        };
        IReadOnlyList<double>? Metric(string name) => history.Metrics.TryGetValue(name, out var v) && v.Count == steps.Length ? v : null;
        double logK = Math.Log(prototypes);
        var entropyTraces = new List<Trace> { Reference(logK, FormattableString.Invariant($"log K = {logK:F2} (uniform targets)")) };
        if (Metric(CollapseMetrics[0]) is { } h) entropyTraces.Insert(0, Line(steps, h, CollapseMetrics[0], 1));
        var countTraces = new List<Trace> { Reference(prototypes, $"K = {prototypes} (all prototypes used)"), Reference(1, "1 (one prototype: collapse)") };
        if (Metric(CollapseMetrics[1]) is { } e) countTraces.Insert(0, Line(steps, e, CollapseMetrics[1], 1));
        var x = new FigureAxis { Title = "step" };
        var entropy = new Figure("teacher entropy (nats): at log K the targets are uniform", entropyTraces,
            new FigureLayout { XAxis = x, YAxis = new FigureAxis { Title = "nats", Range = new AxisRange(0, logK * 1.08) }, Legend = LegendPosition.Top });
        var counts = new Figure("effective prototypes: near 1 means one prototype for every image", countTraces,
            new FigureLayout { XAxis = x, YAxis = new FigureAxis { Title = "prototypes", Range = new AxisRange(0, prototypes * 1.05) }, Legend = LegendPosition.Top });
        return (entropy, counts);
    }

    /// <summary>
    /// The three losses as equations beside the values this run produced: per term its formula, weight, the value at the
    /// first step, the mean of the last <paramref name="window"/> steps, and the reference value that reads it (log K for
    /// the cross-entropies: uniform outputs).
    /// </summary>
    /// <param name="history">The run's history.</param>
    /// <param name="config">The run's config (weights, K).</param>
    /// <param name="window">Steps averaged at the end (at least 1).</param>
    public static DataFrame LossReadout(TrainingHistory history, DinoConfig config, int window = 10)
    {
        window = Math.Max(1, window);
        double logK = Math.Log(config.Prototypes);
        var rows = new (string Term, string Equation, double Weight, string Reference)[]
        {
            ("dino", "L_DINO = - sum_k p_t(k | global crop) log p_s(k | other crop), CLS token", config.DinoWeight, FormattableString.Invariant($"log K = {logK:F3} (uniform targets)")),
            ("ibot", "L_iBOT = - sum_k p_t(k | patch) log p_s(k | masked patch), masked patches", config.IBotWeight, FormattableString.Invariant($"log K = {logK:F3} (uniform targets)")),
            ("koleo", "L_KoLeo = - mean_i log min_j || f_i - f_j ||, CLS features on the unit sphere", config.KoLeoWeight, "falls as the features spread"),
        };
        double First(string t) => history.Metrics.TryGetValue(t, out var v) && v.Count > 0 ? v[0] : double.NaN;
        double Last(string t) => history.Metrics.TryGetValue(t, out var v) && v.Count > 0 ? v.Skip(Math.Max(0, v.Count - window)).Average() : double.NaN;
        return new DataFrame(
            new StringDataFrameColumn("term", rows.Select(r => r.Term)),
            new StringDataFrameColumn("equation", rows.Select(r => r.Equation)),
            new DoubleDataFrameColumn("weight", rows.Select(r => r.Weight)),
            new DoubleDataFrameColumn("first step", rows.Select(r => First(r.Term))),
            new DoubleDataFrameColumn($"last {window} steps (mean)", rows.Select(r => Last(r.Term))),
            new StringDataFrameColumn("reference", rows.Select(r => r.Reference)));
    }

    private static double[] Steps(TrainingHistory history) => Enumerable.Range(1, history.Steps).Select(i => (double)i).ToArray();

    private static ScatterTrace Line(double[] steps, IReadOnlyList<double> values, string name, int window) =>
        new() { Name = name, X = steps, Y = window > 1 ? TrainingCharts.MovingAverage(values, window) : values };
}
