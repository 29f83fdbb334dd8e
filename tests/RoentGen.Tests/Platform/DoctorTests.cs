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
        Assert.True(report.Threads >= 1);
        Assert.True(report.MatmulGflops > 0);
        using var doc = JsonDocument.Parse(report.ToJson());
        Assert.True(doc.RootElement.GetProperty("lib_torch_loaded").GetBoolean());
        Assert.True(doc.RootElement.TryGetProperty("compat_fix_needed", out _) || !OperatingSystem.IsLinux());
    }
}
