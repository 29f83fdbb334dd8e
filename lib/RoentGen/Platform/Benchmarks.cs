using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
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
    /// <summary>The ldm group's figures by the names other tools read (JSON key "ldm"); null when it did not run.</summary>
    public LdmBenchFields? Ldm { get; init; }
    /// <summary>The peer-unet group's figures (JSON key "peer_unet"); null when it did not run.</summary>
    public PeerUnetBenchFields? PeerUnet { get; init; }

    /// <summary>The report as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, DoctorReport.JsonOptions);
}

/// <summary>The quick model's training and sampling figures under <c>ldm</c> in <c>roentgen bench --json</c> (names fixed: other tools read them).</summary>
public sealed record LdmBenchFields
{
    /// <summary>float32 denoiser (UNet + text encoder) training images/s.</summary>
    [JsonPropertyName("fp32_train_images_per_s")] public double Fp32TrainImagesPerSecond { get; init; }
    /// <summary>Mixed-precision (bfloat16 compute, float32 master weights) training images/s.</summary>
    [JsonPropertyName("bf16_train_images_per_s")] public double Bf16TrainImagesPerSecond { get; init; }
    /// <summary>bf16 over fp32 training images/s.</summary>
    [JsonPropertyName("bf16_speedup")] public double Bf16Speedup { get; init; }
    /// <summary>Model FLOPs/s of float32 training over the float32 matmul peak measured in the same run.</summary>
    [JsonPropertyName("fp32_peak_fraction")] public double Fp32PeakFraction { get; init; }
    /// <summary>Model FLOPs/s of bf16 training over the bfloat16 matmul peak measured in the same run.</summary>
    [JsonPropertyName("bf16_peak_fraction")] public double Bf16PeakFraction { get; init; }
    /// <summary>Peak memory of no-grad guided sampling over weights plus one guided UNet call.</summary>
    [JsonPropertyName("sampling_memory_ratio")] public double SamplingMemoryRatio { get; init; }
    /// <summary>float32 guided sampling images/s.</summary>
    [JsonPropertyName("fp32_sampling_images_per_s")] public double Fp32SamplingImagesPerSecond { get; init; }
    /// <summary>Guided sampling images/s with the UNet in bfloat16.</summary>
    [JsonPropertyName("bf16_sampling_images_per_s")] public double Bf16SamplingImagesPerSecond { get; init; }
    /// <summary>bf16 over fp32 sampling images/s.</summary>
    [JsonPropertyName("bf16_sampling_speedup")] public double Bf16SamplingSpeedup { get; init; }
    /// <summary>float32 2048² matmul GFLOP/s measured in the run.</summary>
    [JsonPropertyName("fp32_matmul_peak_gflops")] public double Fp32MatmulPeakGflops { get; init; }
    /// <summary>bfloat16 2048² matmul GFLOP/s measured in the run.</summary>
    [JsonPropertyName("bf16_matmul_peak_gflops")] public double Bf16MatmulPeakGflops { get; init; }

    /// <summary>The fields of a diffusion benchmark result.</summary>
    public static LdmBenchFields Of(Diffusion.DiffusionBenchResult r) => new()
    {
        Fp32TrainImagesPerSecond = r.LdmTrainImagesPerSecond, Bf16TrainImagesPerSecond = r.LdmBf16TrainImagesPerSecond, Bf16Speedup = r.LdmBf16Speedup,
        Fp32PeakFraction = r.LdmFractionOfPeak, Bf16PeakFraction = r.LdmBf16FractionOfPeak, SamplingMemoryRatio = r.SamplingMemoryRatio,
        Fp32SamplingImagesPerSecond = r.SampleImagesPerSecond, Bf16SamplingImagesPerSecond = r.SampleBf16ImagesPerSecond, Bf16SamplingSpeedup = r.SamplingBf16Speedup,
        Fp32MatmulPeakGflops = r.MatmulPeakGflops, Bf16MatmulPeakGflops = r.Bf16MatmulPeakGflops,
    };
}

/// <summary>The peer UNet's training step under <c>peer_unet</c> in <c>roentgen bench --json</c> (names fixed: other tools read them).</summary>
public sealed record PeerUnetBenchFields
{
    /// <summary>Parameters of the UNet (the peer script prints unet_params).</summary>
    [JsonPropertyName("parameters")] public long Parameters { get; init; }
    /// <summary>Median float32 training step, ms.</summary>
    [JsonPropertyName("fp32_ms_per_step")] public double Fp32MsPerStep { get; init; }
    /// <summary>Median mixed-precision training step, ms.</summary>
    [JsonPropertyName("bf16_ms_per_step")] public double Bf16MsPerStep { get; init; }
    /// <summary>Fastest float32 step, ms.</summary>
    [JsonPropertyName("fp32_min_ms")] public double Fp32MinMs { get; init; }
    /// <summary>Slowest float32 step, ms.</summary>
    [JsonPropertyName("fp32_max_ms")] public double Fp32MaxMs { get; init; }
    /// <summary>Fastest mixed-precision step, ms.</summary>
    [JsonPropertyName("bf16_min_ms")] public double Bf16MinMs { get; init; }
    /// <summary>Slowest mixed-precision step, ms.</summary>
    [JsonPropertyName("bf16_max_ms")] public double Bf16MaxMs { get; init; }
    /// <summary>Timed steps per precision.</summary>
    [JsonPropertyName("timed_steps")] public int TimedSteps { get; init; }
    /// <summary>The PyTorch script's median float32 step, ms, measured alternately with ours (null without --peer-script).</summary>
    [JsonPropertyName("pytorch_fp32_ms_per_step")] public double? PyTorchFp32MsPerStep { get; init; }
    /// <summary>The PyTorch script's median bf16-autocast step, ms (null without --peer-script).</summary>
    [JsonPropertyName("pytorch_bf16_ms_per_step")] public double? PyTorchBf16MsPerStep { get; init; }
    /// <summary>Our float32 step over PyTorch's float32 step (the issue's target: at most 0.8).</summary>
    [JsonPropertyName("fp32_ratio_to_pytorch_fp32")] public double? Fp32RatioToPyTorch { get; init; }
    /// <summary>Our bf16 step over PyTorch's bf16 autocast step (the issue's target: at most 1.0).</summary>
    [JsonPropertyName("bf16_ratio_to_pytorch_bf16")] public double? Bf16RatioToPyTorch { get; init; }

    /// <summary>The fields of a peer benchmark result.</summary>
    public static PeerUnetBenchFields Of(Diffusion.PeerUnetResult r) => new()
    {
        Parameters = r.Parameters, Fp32MsPerStep = r.Fp32.MedianMs, Bf16MsPerStep = r.Bf16.MedianMs, Fp32MinMs = r.Fp32.MinMs, Fp32MaxMs = r.Fp32.MaxMs,
        Bf16MinMs = r.Bf16.MinMs, Bf16MaxMs = r.Bf16.MaxMs, TimedSteps = r.Fp32.Runs,
    };
}

/// <summary>
/// Runs the PyTorch peer script (<c>shared/bench/peer-unet/bench.py</c>) and reads its <c>RESULT</c> lines: Debian's
/// <c>/usr/bin/python3</c> (its python3-torch), 2 threads unless BENCH_THREADS says otherwise, with the OpenMP OpenBLAS
/// on the library path as the script's README asks.
/// </summary>
public static class PeerScript
{
    /// <summary>Runs <c>python3 SCRIPT MODE</c> and returns the median ms of the RESULT line named <paramref name="resultName"/>.</summary>
    /// <exception cref="InvalidOperationException">The script failed or printed no such line; the message has its last output.</exception>
    public static double MedianMs(string script, string mode, string resultName, TimeSpan? timeout = null)
    {
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var psi = new System.Diagnostics.ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(mode);
        const string openblas = "/usr/lib/x86_64-linux-gnu/openblas-openmp";
        if (Directory.Exists(openblas)) psi.Environment["LD_LIBRARY_PATH"] = openblas;
        using var process = System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException($"could not start {python} {script}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(10))) { process.Kill(); throw new InvalidOperationException($"{script} {mode} did not finish in time"); }
        var median = ParseMedianMs(stdout, resultName);
        if (process.ExitCode != 0 && stderr.Result.Contains("No module named 'torch'", StringComparison.Ordinal))
            throw new InvalidOperationException($"PyTorch is not installed for {python}, which runs the peer script: run environment/install-peer-bench.sh "
                                                + "(Debian's python3-torch and libopenblas0-openmp), then run the benchmark again");
        if (process.ExitCode != 0 || median is null)
            throw new InvalidOperationException($"{python} {script} {mode} exited {process.ExitCode} without a RESULT line named {resultName}; last output: {Tail(stdout + stderr.Result)}");
        return median.Value;
    }

    /// <summary>The median_ms of the line <c>RESULT impl=pytorch name=NAME median_ms=...</c> in the script's output, or null.</summary>
    public static double? ParseMedianMs(string output, string resultName)
    {
        foreach (var line in output.Split('\n'))
        {
            if (!line.StartsWith("RESULT ", StringComparison.Ordinal)) continue;
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(f => f.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
            if (fields.GetValueOrDefault("name") == resultName && double.TryParse(fields.GetValueOrDefault("median_ms"), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms)) return ms;
        }
        return null;
    }

    private static string Tail(string text) => text.Length <= 800 ? text : text[^800..];
}

/// <summary>The speed and memory benchmarks of the library, one method per figure.</summary>
public static class Benchmarks
{
    /// <summary>Names of the benchmark groups <see cref="Run"/> knows.</summary>
    public static readonly IReadOnlyList<string> Groups = ["matmul", "phantoms", "tsne", "ldm", "peer-unet"];

    /// <summary>Runs the chosen groups (all when empty).</summary>
    /// <param name="groups">Groups to run (null or empty: all).</param>
    /// <param name="onFigure">Receives each figure as it is measured.</param>
    /// <param name="ldmConfig">The experiment the ldm group measures (null: <see cref="Diffusion.LdmExperimentConfig.Quick"/>, the quickstart's models).</param>
    /// <param name="peerScript">
    /// The PyTorch peer script (bench.py) to time alternately with the peer-unet group: PyTorch fp32, ours, PyTorch bf16
    /// autocast, ours again; null: ours only.
    /// </param>
    /// <param name="ldmOptions">Settings of the ldm group (null: the defaults).</param>
    /// <param name="peerSteps">Warm-up and timed steps and batch of the peer-unet group (null: the script's 3, 10 and 32).</param>
    public static BenchReport Run(IReadOnlyCollection<string>? groups = null, Action<BenchFigure>? onFigure = null, Diffusion.LdmExperimentConfig? ldmConfig = null,
        string? peerScript = null, Diffusion.DiffusionBenchOptions? ldmOptions = null, (int Warmup, int Timed, int Batch)? peerSteps = null)
    {
        var chosen = groups is { Count: > 0 } ? groups : Groups;
        foreach (var g in chosen)
            if (!Groups.Contains(g)) throw new ArgumentException($"unknown benchmark '{g}'; known: {string.Join(", ", Groups)}");
        var machine = Doctor.Run(measure: false);
        var figures = new List<BenchFigure>();
        void Add(BenchFigure f) { figures.Add(f); onFigure?.Invoke(f); }
        double? matmul = null;
        LdmBenchFields? ldm = null;
        PeerUnetBenchFields? peer = null;
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
            var r = Diffusion.DiffusionBenchmark.Run(ldmConfig ?? Diffusion.LdmExperimentConfig.Quick, (ldmOptions ?? new Diffusion.DiffusionBenchOptions()) with { MatmulPeakGflops = ldmOptions?.MatmulPeakGflops ?? matmul });
            foreach (var f in r.ToFigures(ldmConfig is null ? "quick preset" : "given config")) Add(f);
            ldm = LdmBenchFields.Of(r);
        }
        if (chosen.Contains("peer-unet"))
        {
            var (warmup, timed, batch) = peerSteps ?? (3, 10, Diffusion.PeerUnetBenchmark.Batch);
            double? torchFp32 = null, torchBf16 = null;
            Diffusion.PeerUnetResult ours;
            if (peerScript is null) ours = Diffusion.PeerUnetBenchmark.Run(warmup, timed, batch);
            else
            {
                // Alternately, in one sitting: PyTorch fp32, ours (fp32 and bf16), PyTorch bf16, ours again; each of ours is the faster median of its two runs.
                torchFp32 = PeerScript.MedianMs(peerScript, "unet_fp32", "unet_train_b32_fp32");
                var first = Diffusion.PeerUnetBenchmark.Run(warmup, timed, batch);
                torchBf16 = PeerScript.MedianMs(peerScript, "unet_bf16", "unet_train_b32_amp_bf16");
                var second = Diffusion.PeerUnetBenchmark.Run(warmup, timed, batch);
                ours = first with
                {
                    Fp32 = first.Fp32.MedianMs <= second.Fp32.MedianMs ? first.Fp32 : second.Fp32,
                    Bf16 = first.Bf16.MedianMs <= second.Bf16.MedianMs ? first.Bf16 : second.Bf16,
                };
            }
            var fields = PeerUnetBenchFields.Of(ours) with
            {
                PyTorchFp32MsPerStep = torchFp32, PyTorchBf16MsPerStep = torchBf16,
                Fp32RatioToPyTorch = ours.Fp32.MedianMs / torchFp32, Bf16RatioToPyTorch = ours.Bf16.MedianMs / torchBf16,
            };
            peer = fields;
            Add(new BenchFigure("peer UNet training step fp32", ours.Fp32.MedianMs, "ms", $"{ours.Parameters:N0}-parameter UNet of bench.py, batch {batch}, median of {ours.Fp32.Runs} (min {ours.Fp32.MinMs:F0}, max {ours.Fp32.MaxMs:F0})" +
                (torchFp32 is { } tf ? $"; PyTorch fp32 {tf:F0} ms, ratio {ours.Fp32.MedianMs / tf:F2}" : "")));
            Add(new BenchFigure("peer UNet training step bf16", ours.Bf16.MedianMs, "ms", $"mixed precision, median of {ours.Bf16.Runs} (min {ours.Bf16.MinMs:F0}, max {ours.Bf16.MaxMs:F0})" +
                (torchBf16 is { } tb ? $"; PyTorch bf16 autocast {tb:F0} ms, ratio {ours.Bf16.MedianMs / tb:F2}" : "")));
        }
        return new BenchReport(machine, figures, PeakRssMb()) { Ldm = ldm, PeerUnet = peer };
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
