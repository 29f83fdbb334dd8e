using System.Runtime.InteropServices;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace RoentGen.Platform;

/// <summary>
/// The arithmetic a model computes in. Training in <see cref="BFloat16"/> is mixed precision: the forward and backward
/// passes run on a bfloat16 copy of the weights, while the weights the optimizer updates (and its state) stay float32.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<Precision>))]
public enum Precision
{
    /// <summary>
    /// BFloat16 where the CPU computes it natively (AVX-512 BF16 on Linux), a matmul probe finds it faster than
    /// float32 on this machine and its bfloat16 convolutions compute right; float32 elsewhere.
    /// </summary>
    Auto,
    /// <summary>Everything in float32.</summary>
    Float32,
    /// <summary>BFloat16 compute, float32 master weights, optimizer state and loss.</summary>
    BFloat16,
}

/// <summary>Resolves <see cref="Precision.Auto"/> from the CPU's features and converts precisions to tensor types.</summary>
public static class Precisions
{
    private static readonly Lazy<bool> NativeBf16 = new(() =>
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return false;
        try { return File.Exists("/proc/cpuinfo") && HasAvx512Bf16(File.ReadAllText("/proc/cpuinfo")); }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    });

    /// <summary>True when this machine computes bfloat16 natively (Linux, /proc/cpuinfo lists <c>avx512_bf16</c>).</summary>
    public static bool MachineHasNativeBf16 => NativeBf16.Value;

    /// <summary>How much faster bfloat16 must multiply than float32 in the probe for Auto to choose it.</summary>
    public const double AutoMinimumSpeedup = 1.25;

    private static readonly Lazy<MatmulProbe?> Probe = new(() =>
    {
        if (!MachineHasNativeBf16) return null;
        // The flag alone does not say bf16 is faster: libtorch's CPU kernels reach about 2x float32 on some AVX-512 BF16
        // machines and less than float32 on others (both measured on this project's machines). A 1024 x 1024 matmul in
        // each type, a few milliseconds, decides once per process. Where bfloat16 has no fast kernel (oneDNN held below
        // AVX-512 or off) it multiplies at about 1-2 GFLOP/s and that probe alone would take about 12 s (estimated): a 512 x 512
        // product in each type goes first, and bfloat16 below a quarter of the float32 rate there settles it (on the AMD EPYC
        // 1.8 against 47 GFLOP/s held to SSE4.1; with oneDNN's AVX-512 kernels, 1024 x 1024: 276-335 against 87-110).
        double small32 = Doctor.MeasureMatmulGflops(512, 3, ScalarType.Float32), small16 = Doctor.MeasureMatmulGflops(512, 3, ScalarType.BFloat16);
        if (small16 < 0.25 * small32) return new MatmulProbe(512, small32, small16);
        return new MatmulProbe(1024, Doctor.MeasureMatmulGflops(1024, 5, ScalarType.Float32), Doctor.MeasureMatmulGflops(1024, 5, ScalarType.BFloat16));
    });

    /// <summary>
    /// True when this machine computes bfloat16 natively and a matmul probe (once per process) finds it at least
    /// <see cref="AutoMinimumSpeedup"/> times the float32 rate: what <see cref="Precision.Auto"/> resolves by.
    /// </summary>
    public static bool MachineComputesBf16Faster => Probe.Value is { } p && BFloat16Pays(p.Float32Gflops, p.BFloat16Gflops);

    /// <summary>
    /// A warning for an explicit bfloat16 request on a machine where it does not pay (no AVX-512 BF16, or the probe finds
    /// bf16 matmuls slower than <see cref="AutoMinimumSpeedup"/> times float32's); null where bf16 pays or was not asked for.
    /// </summary>
    public static string? BFloat16Warning(Precision requested)
    {
        if (requested != Precision.BFloat16 || MachineComputesBf16Faster) return null;
        return Probe.Value is { } p
            ? $"bf16 was asked for, but this machine multiplies {p.Size} x {p.Size} matrices at {p.BFloat16Gflops:F1} GFLOP/s in bfloat16 against {p.Float32Gflops:F1} in float32"
              + (OneDnn.Mode == OneDnnMode.CappedAtSse41 ? " (oneDNN is held to SSE4.1 here, and its fast bf16 kernels need AVX-512)" : "")
              + ": expect it to be slower than fp32, which auto would choose"
            : "bf16 was asked for, but this machine has no AVX-512 BF16 (or /proc/cpuinfo could not be read): expect it to be slower than fp32, which auto would choose";
    }

    /// <summary>The bf16 probe's matmul rates at one size.</summary>
    private sealed record MatmulProbe(int Size, double Float32Gflops, double BFloat16Gflops);

    /// <summary>Whether probe rates favour bfloat16: bf16 GFLOP/s at least <see cref="AutoMinimumSpeedup"/> times float32's.</summary>
    public static bool BFloat16Pays(double float32Gflops, double bfloat16Gflops) =>
        float32Gflops > 0 && bfloat16Gflops >= AutoMinimumSpeedup * float32Gflops;

    /// <summary>True when a /proc/cpuinfo text lists the <c>avx512_bf16</c> flag on a "flags" line.</summary>
    public static bool HasAvx512Bf16(string cpuinfo) => CpuFlags(cpuinfo).Contains("avx512_bf16");

    /// <summary>The flags of the first "flags" line of a /proc/cpuinfo text (empty when there is none).</summary>
    public static IReadOnlySet<string> CpuFlags(string cpuinfo)
    {
        ArgumentNullException.ThrowIfNull(cpuinfo);
        foreach (var line in cpuinfo.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon < 0 || line[..colon].Trim() != "flags") continue;
            // Split([' ', '\t'], ...): Split(' ', '\t', options) would bind '\t' to a count of 9 parts and miss later flags
            return line[(colon + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        }
        return new HashSet<string>();
    }

    /// <summary>
    /// The flag part of <see cref="Precision.Auto"/> (the probe aside): <see cref="Precision.BFloat16"/> on Linux with AVX-512 BF16 (read from
    /// <paramref name="cpuinfo"/>), <see cref="Precision.Float32"/> otherwise; the other values unchanged.
    /// </summary>
    /// <param name="precision">The requested precision.</param>
    /// <param name="cpuinfo">The text of /proc/cpuinfo (null: none, so Auto is float32).</param>
    /// <param name="isLinux">Whether the machine runs Linux (Auto is float32 elsewhere).</param>
    public static Precision Resolve(Precision precision, string? cpuinfo, bool isLinux) => precision switch
    {
        Precision.Auto => isLinux && cpuinfo is not null && HasAvx512Bf16(cpuinfo) ? Precision.BFloat16 : Precision.Float32,
        _ => precision,
    };

    /// <summary>
    /// The precision this machine runs: <see cref="Precision.Auto"/> is bfloat16 only where the CPU has AVX-512 BF16,
    /// the matmul probe finds it faster (<see cref="MachineComputesBf16Faster"/>) and its bfloat16 convolutions compute
    /// right (<see cref="Training.BFloat16Kernels.ConvolutionsAreRight"/>; where they do not, an explicit BFloat16 computes
    /// every convolution in float32).
    /// </summary>
    public static Precision Resolve(Precision precision) =>
        precision == Precision.Auto ? (MachineComputesBf16Faster && Training.BFloat16Kernels.ConvolutionsAreRight ? Precision.BFloat16 : Precision.Float32) : precision;

    /// <summary>The tensor type of a resolved precision's compute (Auto resolved on this machine).</summary>
    public static ScalarType ComputeType(Precision precision) =>
        Resolve(precision) == Precision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>The command-line and metrics spelling: fp32, bf16 or auto.</summary>
    public static string ToShortName(Precision precision) => precision switch
    {
        Precision.Float32 => "fp32",
        Precision.BFloat16 => "bf16",
        _ => "auto",
    };

    /// <summary>Parses fp32/float32, bf16/bfloat16 or auto (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Another word; the message lists the accepted ones.</exception>
    public static Precision Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" => Precision.Float32,
        "bf16" or "bfloat16" => Precision.BFloat16,
        "auto" => Precision.Auto,
        _ => throw new ArgumentException($"unknown precision '{text}'; expected fp32, bf16 or auto"),
    };
}
