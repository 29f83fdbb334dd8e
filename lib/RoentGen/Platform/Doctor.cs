using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;

namespace RoentGen.Platform;

/// <summary>What <c>roentgen doctor</c> found about this machine and its TorchSharp install.</summary>
public sealed record DoctorReport
{
    /// <summary>True when libtorch loaded and ran a tensor operation.</summary>
    public bool LibTorchLoaded { get; init; }
    /// <summary>The load error, when it did not load.</summary>
    public string? LoadError { get; init; }
    /// <summary>TorchSharp assembly version.</summary>
    public string TorchSharpVersion { get; init; } = "";
    /// <summary>libtorch version as TorchSharp reports it.</summary>
    public string? LibTorchVersion { get; init; }
    /// <summary>Build-time tensor backend (cpu or cuda).</summary>
    public string Backend { get; init; } = "cpu";
    /// <summary>Intra-op threads libtorch uses.</summary>
    public int? Threads { get; init; }
    /// <summary>Logical processors the process sees.</summary>
    public int ProcessorCount { get; init; }
    /// <summary>CPU model name, when known.</summary>
    public string? CpuModel { get; init; }
    /// <summary>SIMD features relevant to libtorch (AVX2, AVX-512, AVX-512 BF16, FMA, ...).</summary>
    public IReadOnlyList<string> CpuFeatures { get; init; } = [];
    /// <summary>OS description.</summary>
    public string Os { get; init; } = "";
    /// <summary>.NET runtime description.</summary>
    public string Runtime { get; init; } = "";
    /// <summary>The system libstdc++ the check looked at.</summary>
    public string? SystemLibStdCxx { get; init; }
    /// <summary>True when the system libstdc++ lacks GLIBCXX_3.4.32, so the compatibility fix is needed.</summary>
    public bool? CompatFixNeeded { get; init; }
    /// <summary>True when every libLibTorchSharp.so beside this program has the requirement marked weak (or has none).</summary>
    public bool? CompatFixApplied { get; init; }
    /// <summary>The native libraries checked for the fix.</summary>
    public IReadOnlyList<string> NativeLibraries { get; init; } = [];
    /// <summary>Whether libtorch's oneDNN kernels are on (with their cache sizes repaired), held to SSE4.1 or off, and why (<see cref="Platform.OneDnn"/>).</summary>
    public string? OneDnn { get; init; }
    /// <summary>How the native heap keeps freed memory (<see cref="Memory.KeepFreedHeap()"/>): glibc's trim threshold and who set it.</summary>
    public string? NativeHeap { get; init; }
    /// <summary>Measured float32 2048x2048 matmul throughput, median of several runs.</summary>
    public double? MatmulGflops { get; init; }

    /// <summary>The report as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>The report as a two-column table (check, value) for notebooks.</summary>
    public Microsoft.Data.Analysis.DataFrame ToDataFrame()
    {
        var rows = new (string, string?)[]
        {
            ("libtorch loaded", LibTorchLoaded ? "yes" : "NO: " + LoadError),
            ("TorchSharp", TorchSharpVersion), ("libtorch", LibTorchVersion), ("backend", Backend),
            ("threads (libtorch / logical CPUs)", $"{Threads} / {ProcessorCount}"), ("CPU", CpuModel),
            ("CPU features", string.Join(" ", CpuFeatures)), ("OS / runtime", $"{Os} / {Runtime}"),
            ("GLIBCXX_3.4.32 fix needed", CompatFixNeeded?.ToString()), ("GLIBCXX_3.4.32 fix applied", CompatFixApplied?.ToString()),
            ("oneDNN", OneDnn ?? "n/a"),
            ("native heap", NativeHeap ?? "n/a"),
            ("float32 matmul GFLOP/s", MatmulGflops?.ToString("F1")),
        };
        return new Microsoft.Data.Analysis.DataFrame(
            new Microsoft.Data.Analysis.StringDataFrameColumn("check", rows.Select(r => r.Item1)),
            new Microsoft.Data.Analysis.StringDataFrameColumn("value", rows.Select(r => r.Item2 ?? "n/a")));
    }

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,   // a figure that could not be measured is NaN
    };
}

/// <summary>Checks that libtorch loads here and measures what the machine can do.</summary>
public static class Doctor
{
    /// <summary>Runs every check. Never throws for a libtorch load failure: it is reported instead.</summary>
    /// <param name="measure">Whether to time the matmul (about a second).</param>
    /// <param name="matmulSize">Side of the square matrices timed.</param>
    public static DoctorReport Run(bool measure = true, int matmulSize = 2048)
    {
        var (cpuModel, features) = ReadCpu();
        TorchNative.EnsureLoaded();
        // The copies this process may load: the one preloaded next to TorchSharp.dll (a notebook kernel, a host that loads
        // the library by path) and those of the application's own output.
        var libs = TorchNative.Candidates().Where(File.Exists).Take(1)
            .Concat(GlibcxxCompat.FindLibraries(AppContext.BaseDirectory))
            .Select(Path.GetFullPath).Distinct().ToList();
        bool? needed = null, applied = null;
        if (OperatingSystem.IsLinux())
        {
            var has = GlibcxxCompat.SystemHasNeededVersion();
            needed = has is null ? null : !has;
            applied = libs.Count == 0 ? null : libs.All(l =>
            {
                try
                {
                    return GlibcxxCompat.ReadVersionNeeds(l)
                        .Where(n => n.Version == GlibcxxCompat.NeededVersion).All(n => n.IsWeak);
                }
                catch (InvalidDataException) { return false; }
            });
        }

        var report = new DoctorReport
        {
            TorchSharpVersion = typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0]
                                ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "?",
            Backend = BuildInfo.TorchBackend,
            ProcessorCount = Environment.ProcessorCount,
            CpuModel = cpuModel,
            CpuFeatures = features,
            Os = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            Runtime = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
            SystemLibStdCxx = GlibcxxCompat.FindSystemLibStdCxx(),
            CompatFixNeeded = needed,
            CompatFixApplied = applied,
            NativeLibraries = libs.Select(l => Path.GetRelativePath(AppContext.BaseDirectory, l)).ToList(),
            OneDnn = RoentGen.Platform.OneDnn.Note ?? (RoentGen.Platform.OneDnn.Enabled is bool on ? (on ? "on" : "off") : null),
            NativeHeap = Memory.HeapNote,
        };

        try
        {
            using var scope = torch.NewDisposeScope();
            float check = torch.ones(2, 2).sum().item<float>();
            if (check != 4f) throw new InvalidOperationException($"libtorch computed ones(2,2).sum() = {check}, expected 4");
            report = report with
            {
                LibTorchLoaded = true,
                LibTorchVersion = torch.__version__,
                Threads = torch.get_num_threads(),
                MatmulGflops = measure ? MeasureMatmulGflops(matmulSize) : null,
            };
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            string hint = needed == true && applied != true
                ? $" The system libstdc++ lacks {GlibcxxCompat.NeededVersion} and libLibTorchSharp.so is not patched: rebuild with `dotnet build` so environment/LibTorchCompat.targets patches it."
                : "";
            if (TorchNative.Note is { } note) hint += $" (preloading next to TorchSharp.dll: {note})";
            report = report with { LibTorchLoaded = false, LoadError = ex.GetBaseException().Message + hint };
        }
        return report;
    }

    /// <summary>
    /// The float32 matmul probe at several sizes and thread counts (the current count, then 1 thread; the count is
    /// restored afterwards): one row per (size, threads). Small products cannot keep every core's vector units busy,
    /// so GFLOP/s depends on the size as much as on the machine: compare figures only at the same size and threads.
    /// </summary>
    public static IReadOnlyList<MatmulMeasurement> MatmulSweep(IReadOnlyList<int> sizes, int repeats = 5)
    {
        int threads = torch.get_num_threads();
        var rows = new List<MatmulMeasurement>();
        try
        {
            foreach (var t in threads > 1 ? new[] { threads, 1 } : [threads])
            {
                torch.set_num_threads(t);
                foreach (var n in sizes) rows.Add(new MatmulMeasurement(n, t, MeasureMatmulGflops(n, repeats)));
            }
        }
        finally { torch.set_num_threads(threads); }
        return rows;
    }

    /// <summary>Median float32 matmul GFLOP/s over 5 timed runs after a warm-up.</summary>
    public static double MeasureMatmulGflops(int n = 2048, int repeats = 5) => MeasureMatmulGflops(n, repeats, torch.ScalarType.Float32);

    /// <summary>Median n x n matmul GFLOP/s in <paramref name="type"/> (e.g. bfloat16: that arithmetic's peak) over timed runs after a warm-up.</summary>
    public static double MeasureMatmulGflops(int n, int repeats, torch.ScalarType type)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var a = torch.randn(n, n).to(type);
        var b = torch.randn(n, n).to(type);
        torch.matmul(a, b).Dispose();
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            using (var c = torch.matmul(a, b)) { }
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return 2.0 * n * n * n / times[times.Count / 2] / 1e9;
    }

    private static (string? Model, List<string> Features) ReadCpu()
    {
        var features = new List<string>();
        string? model = null;
        try
        {
            if (File.Exists("/proc/cpuinfo"))
            {
                var lines = File.ReadLines("/proc/cpuinfo").TakeWhile(l => l.Length > 0).ToList();
                model = lines.FirstOrDefault(l => l.StartsWith("model name"))?.Split(':', 2)[1].Trim();
                var flags = Precisions.CpuFlags(string.Join('\n', lines));
                string[] interesting = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"];
                features.AddRange(interesting.Where(flags.Contains));
            }
        }
        catch (IOException) { }
        if (features.Count == 0)
        {
            if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) features.Add("avx2");
            if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) features.Add("avx512f");
            if (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported) features.Add("neon");
        }
        return (model, features);
    }
}

/// <summary>One float32 matmul timing of <see cref="Doctor.MatmulSweep"/>.</summary>
/// <param name="Size">n of the n x n by n x n product.</param>
/// <param name="Threads">libtorch's intra-op threads.</param>
/// <param name="Gflops">Median GFLOP/s (2 n³ operations per product).</param>
public sealed record MatmulMeasurement(int Size, int Threads, double Gflops);
