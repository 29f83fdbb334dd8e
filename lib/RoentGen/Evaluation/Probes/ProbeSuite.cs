using System.Diagnostics;
using RoentGen.Data;
using static TorchSharp.torch;

namespace RoentGen.Evaluation.Probes;

/// <summary>What a probe suite evaluates.</summary>
public enum ProbeTarget
{
    /// <summary>The 14 CheXpert observations: linear probe (grid) and k-NN, per-label test AUC.</summary>
    Labels,
    /// <summary>Sex (female = positive): linear probe, test AUC.</summary>
    Sex,
    /// <summary>Age: linear regression probe, test MAE in years and Pearson r.</summary>
    Age,
    /// <summary>Structures from patch tokens: 1×1 head, test Dice.</summary>
    Segmentation,
    /// <summary>Report generation: decoder on frozen tokens, labeler F1.</summary>
    Report,
}

/// <summary>Settings of <see cref="ProbeSuite.Run"/>.</summary>
public sealed record ProbeSuiteOptions
{
    /// <summary>Probes to run (default: all).</summary>
    public IReadOnlyList<ProbeTarget> Targets { get; init; } = Enum.GetValues<ProbeTarget>();
    /// <summary>Linear-probe grid (labels, sex, age).</summary>
    public LinearProbeOptions Linear { get; init; } = new();
    /// <summary>k-NN neighbours.</summary>
    public int KnnK { get; init; } = 20;
    /// <summary>k-NN vote temperature.</summary>
    public double KnnTemperature { get; init; } = 0.07;
    /// <summary>Segmentation head training.</summary>
    public SegmentationProbeOptions Segmentation { get; init; } = new();
    /// <summary>Report decoder size and training.</summary>
    public ReportProbeOptions Report { get; init; } = new();
    /// <summary>Images per encoder forward pass.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Quick settings for tests, smoke runs and the CLI's default.</summary>
    public static ProbeSuiteOptions Quick { get; } = new()
    {
        Linear = LinearProbeOptions.Quick, Segmentation = SegmentationProbeOptions.Quick, Report = ReportProbeOptions.Quick,
    };

    /// <summary>Parses a target name (labels, sex, age, segmentation, report; case-insensitive).</summary>
    /// <exception cref="ArgumentException">Unknown name (the message lists the valid ones).</exception>
    public static ProbeTarget ParseTarget(string name) =>
        Enum.TryParse<ProbeTarget>(name.Trim(), ignoreCase: true, out var t) && Enum.IsDefined(t) ? t
            : throw new ArgumentException($"unknown probe target '{name}'; expected one of: {string.Join(", ", Enum.GetNames<ProbeTarget>().Select(n => n.ToLowerInvariant()))}");
}

/// <summary>Runs probes on a frozen encoder.</summary>
public static class ProbeSuite
{
    /// <summary>
    /// Encodes the three splits once (cached for every probe), then runs the chosen probes. A probe whose targets
    /// the data lack (e.g. no sex column) is recorded in <see cref="ProbeResults.NotAvailable"/> with the reason.
    /// Linear probes read [CLS, mean patch token] (DINOv2's linear input with average pooling); k-NN reads CLS.
    /// </summary>
    public static ProbeResults Run(IImageEncoder encoder, ProbeData data, ProbeSuiteOptions? options = null)
    {
        options ??= new ProbeSuiteOptions();
        var watch = Stopwatch.StartNew();
        var results = new ProbeResults(encoder.Name, data.Name);
        using var scope = NewDisposeScope();
        var tr = EncodedFeatures.Extract(encoder, data.Train.Images, options.BatchSize);
        var va = EncodedFeatures.Extract(encoder, data.Validation.Images, options.BatchSize);
        var te = EncodedFeatures.Extract(encoder, data.Test.Images, options.BatchSize);
        static Tensor Linear(EncodedFeatures f) => cat([f.Cls, f.Patches.mean([1])], 1);
        var targets = options.Targets.Distinct().ToList();

        if (targets.Contains(ProbeTarget.Labels))
        {
            var names = Observations.All.Select(o => o.Name()).ToList();
            if (!LinearProbe.BothClasses(data.Train.Labels).Zip(LinearProbe.BothClasses(data.Test.Labels), (a, b) => a && b).Any(x => x))
                results.NotAvailable["labels"] = "no observation has both positive and negative images in train and in test";
            else
            {
                results.Labels = LinearProbe.TrainMultiLabel(Linear(tr), data.Train.Labels, Linear(va), data.Validation.Labels, Linear(te), data.Test.Labels, names, options.Linear);
                results.Knn = KnnProbe.Evaluate(tr.Cls, data.Train.Labels, te.Cls, data.Test.Labels, names, options.KnnK, options.KnnTemperature);
            }
        }
        if (targets.Contains(ProbeTarget.Sex))
        {
            var (rows, why) = Known(data, s => s.Sex.Select(v => v is "M" or "F").ToArray(), "sex", s => s.Sex.Select(v => v == "F").ToArray());
            if (why is not null) results.NotAvailable["sex"] = why;
            else
            {
                bool[] Y(ProbeSplit s, int[] r) => r.Select(i => s.Sex[i] == "F").ToArray();
                results.Sex = LinearProbe.TrainBinary(Rows(Linear(tr), rows[0]), Y(data.Train, rows[0]), Rows(Linear(va), rows[1]), Y(data.Validation, rows[1]),
                    Rows(Linear(te), rows[2]), Y(data.Test, rows[2]), "female", options.Linear);
            }
        }
        if (targets.Contains(ProbeTarget.Age))
        {
            var (rows, why) = Known(data, s => s.Age.Select(v => v is double).ToArray(), "age", null);
            if (why is not null) results.NotAvailable["age"] = why;
            else
            {
                double[] Y(ProbeSplit s, int[] r) => r.Select(i => s.Age[i]!.Value).ToArray();
                results.Age = LinearProbe.TrainRegression(Rows(Linear(tr), rows[0]), Y(data.Train, rows[0]), Rows(Linear(va), rows[1]), Y(data.Validation, rows[1]),
                    Rows(Linear(te), rows[2]), Y(data.Test, rows[2]), options.Linear);
            }
        }
        if (targets.Contains(ProbeTarget.Segmentation))
        {
            var usable = data.Train.Masks.Keys.Where(k => data.Test.Masks.TryGetValue(k, out var m) && m.Present.Any(p => p) && data.Train.Masks[k].Present.Any(p => p)).ToList();
            if (usable.Count == 0) results.NotAvailable["segmentation"] = "no mask is present in both train and test images";
            else
            {
                var (trM, teM) = (Present(data.Train, usable), Present(data.Test, usable));
                results.Segmentation = SegmentationProbe.Train(Select(tr, trM.Rows), trM.Masks, Select(te, teM.Rows), teM.Masks, options.Segmentation);
            }
        }
        if (targets.Contains(ProbeTarget.Report))
        {
            int nTr = data.Train.Reports.Count(r => !string.IsNullOrWhiteSpace(r)), nTe = data.Test.Reports.Count(r => !string.IsNullOrWhiteSpace(r));
            if (nTr < 2 || nTe < 1) results.NotAvailable["report"] = $"too few reports ({nTr} train, {nTe} test; need 2 and 1)";
            else results.Report = ReportProbe.Train(tr, data.Train.Reports, te, data.Test.Reports, options.Report);
        }
        results.Seconds = watch.Elapsed.TotalSeconds;
        return results;
    }

    // Rows with a known target in each split; a reason when a split has none (or, for binary targets, one class only).
    private static (int[][] Rows, string? Why) Known(ProbeData data, Func<ProbeSplit, bool[]> known, string what, Func<ProbeSplit, bool[]>? positive)
    {
        var rows = data.Parts.Select(p => Enumerable.Range(0, p.Split.Count).Where(i => known(p.Split)[i]).ToArray()).ToArray();
        var parts = data.Parts.ToList();
        for (int k = 0; k < 3; k++)
        {
            if (rows[k].Length < 2) return (rows, $"not available: {rows[k].Length} {parts[k].Name} images have a known {what}");
            if (positive is not null)
            {
                var y = positive(parts[k].Split);
                if (rows[k].All(i => y[i]) || rows[k].All(i => !y[i])) return (rows, $"not available: the {parts[k].Name} images with a known {what} all have the same one");
            }
        }
        return (rows, null);
    }

    private static Tensor Rows(Tensor x, int[] rows) => x.index_select(0, tensor(rows.Select(i => (long)i).ToArray()));

    private static EncodedFeatures Select(EncodedFeatures f, int[] rows) => new(Rows(f.Cls, rows), Rows(f.Patches, rows), f.GridH, f.GridW);

    // Images having at least one of the masks, and those masks restricted to them.
    private static (int[] Rows, Dictionary<string, ProbeMask> Masks) Present(ProbeSplit s, List<string> names)
    {
        var rows = Enumerable.Range(0, s.Count).Where(i => names.Any(n => s.Masks[n].Present[i])).ToArray();
        var idx = tensor(rows.Select(i => (long)i).ToArray());
        return (rows, names.ToDictionary(n => n, n => new ProbeMask(s.Masks[n].Masks.index_select(0, idx), rows.Select(i => s.Masks[n].Present[i]).ToArray())));
    }
}
