using System.Diagnostics;
using System.Text.Json;
using RoentGen.Evaluation;

namespace RoentGen.Platform;

/// <summary>One measured benchmark figure.</summary>
/// <param name="Name">What was measured.</param>
/// <param name="Value">The figure.</param>
/// <param name="Unit">Its unit.</param>
/// <param name="Detail">How it was measured.</param>
public sealed record BenchFigure(string Name, double Value, string Unit, string Detail);

/// <summary>All figures of a <c>roentgen bench</c> run, with the machine they were measured on.</summary>
/// <param name="Machine">Doctor report of the machine (versions, threads, CPU).</param>
/// <param name="Figures">The figures.</param>
/// <param name="PeakRssMb">Peak resident memory of the process at the end, in MiB.</param>
public sealed record BenchReport(DoctorReport Machine, IReadOnlyList<BenchFigure> Figures, double PeakRssMb)
{
    /// <summary>The report as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, DoctorReport.JsonOptions);
}

/// <summary>The speed and memory benchmarks of the library, one method per figure.</summary>
public static class Benchmarks
{
    /// <summary>Names of the benchmark groups <see cref="Run"/> knows.</summary>
    public static readonly IReadOnlyList<string> Groups = ["matmul", "phantoms", "tsne", "ldm"];

    /// <summary>Runs the chosen groups (all when empty).</summary>
    /// <param name="groups">Groups to run (null or empty: all).</param>
    /// <param name="onFigure">Receives each figure as it is measured.</param>
    /// <param name="ldmConfig">The experiment the ldm group measures (null: <see cref="Diffusion.LdmExperimentConfig.Quick"/>, the quickstart's models).</param>
    public static BenchReport Run(IReadOnlyCollection<string>? groups = null, Action<BenchFigure>? onFigure = null, Diffusion.LdmExperimentConfig? ldmConfig = null)
    {
        var chosen = groups is { Count: > 0 } ? groups : Groups;
        foreach (var g in chosen)
            if (!Groups.Contains(g)) throw new ArgumentException($"unknown benchmark '{g}'; known: {string.Join(", ", Groups)}");
        var machine = Doctor.Run(measure: false);
        var figures = new List<BenchFigure>();
        void Add(BenchFigure f) { figures.Add(f); onFigure?.Invoke(f); }
        double? matmul = null;
        if (chosen.Contains("matmul"))
        {
            matmul = Doctor.MeasureMatmulGflops(2048);
            Add(new BenchFigure("float32 matmul 2048x2048", matmul.Value, "GFLOP/s", "median of 5 runs after a warm-up"));
        }
        if (chosen.Contains("phantoms"))
        {
            RoentGen.Data.Phantoms.PhantomBenchmark.Run(128, 200); // warm-up (JIT, thread pool)
            var r = RoentGen.Data.Phantoms.PhantomBenchmark.Run(128, 4000);
            Add(new BenchFigure("phantom generation 128x128", r.ImagesPerSecond, "images/s", $"{r.Count} images with masks and reports, {r.Threads} threads"));
            var r256 = RoentGen.Data.Phantoms.PhantomBenchmark.Run(256, 1000);
            Add(new BenchFigure("phantom generation 256x256", r256.ImagesPerSecond, "images/s", $"{r256.Count} images, {r256.Threads} threads"));
        }
        if (chosen.Contains("tsne"))
        {
            var (seconds, kl) = TSne5000();
            Add(new BenchFigure("t-SNE 5,000 points (64-d, 10 clusters)", seconds, "s", $"Barnes-Hut theta 0.5, 750 iterations, final KL {kl:F3}"));
        }
        if (chosen.Contains("ldm"))
        {
            // The quickstart's models (LdmExperimentConfig.Quick) unless another experiment is given; random weights.
            var r = Diffusion.DiffusionBenchmark.Run(ldmConfig ?? Diffusion.LdmExperimentConfig.Quick, new Diffusion.DiffusionBenchOptions { MatmulPeakGflops = matmul });
            foreach (var f in r.ToFigures(ldmConfig is null ? "quick preset" : "given config")) Add(f);
        }
        return new BenchReport(machine, figures, PeakRssMb());
    }

    private static (double Seconds, double Kl) TSne5000()
    {
        var rng = new Random(7);
        int n = 5000, d = 64;
        var x = new float[n, d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                x[i, j] = (float)(rng.NextDouble() - 0.5 + (j % 10 == i % 10 ? 3 : 0));
        var sw = Stopwatch.StartNew();
        var r = TSne.Fit(x, new TSneOptions { KlEvery = 0 });
        return (sw.Elapsed.TotalSeconds, r.FinalKl);
    }

    /// <summary>Peak resident set size of this process in MiB (see <see cref="Memory.PeakRssMb"/>).</summary>
    public static double PeakRssMb() => Memory.PeakRssMb();
}
