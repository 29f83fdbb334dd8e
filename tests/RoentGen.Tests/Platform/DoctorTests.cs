using System.Text.Json;
using RoentGen.Platform;

namespace RoentGen.Tests.Platform;

public class DoctorTests
{
    [Fact]
    public void Doctor_reports_libtorch_loaded_with_versions_and_a_positive_matmul_rate()
    {
        var report = Doctor.Run(measure: true, matmulSize: 256);
        Assert.True(report.LibTorchLoaded, report.LoadError);
        Assert.Equal("0.107.0", report.TorchSharpVersion);
        Assert.False(string.IsNullOrEmpty(report.LibTorchVersion));
        Assert.Equal(TorchSharp.torch.__version__, report.LibTorchVersion);
        Assert.Equal(TorchSharp.torch.get_num_threads(), report.Threads);
        Assert.Equal(Environment.ProcessorCount, report.ProcessorCount);
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) Assert.Contains("avx2", report.CpuFeatures);
        if (OperatingSystem.IsLinux() && GlibcxxCompat.SystemHasNeededVersion() is bool has) Assert.Equal(!has, report.CompatFixNeeded);
        Assert.InRange(report.MatmulGflops!.Value, 0.01, 100_000);
        using var doc = JsonDocument.Parse(report.ToJson());
        Assert.True(doc.RootElement.GetProperty("lib_torch_loaded").GetBoolean());
        Assert.Equal(report.MatmulGflops!.Value, doc.RootElement.GetProperty("matmul_gflops").GetDouble(), 9);
        Assert.Equal(report.Threads, doc.RootElement.GetProperty("threads").GetInt32());
        Assert.True(doc.RootElement.TryGetProperty("compat_fix_needed", out _) || !OperatingSystem.IsLinux());
    }
}
