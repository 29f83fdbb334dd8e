using RoentGen.Platform;

namespace RoentGen.Tests.Platform;

public class GlibcxxCompatTests
{
    private static string? PristineLibrary()
    {
        var home = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var p = Path.Combine(home, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", GlibcxxCompat.LibraryFileName);
        return File.Exists(p) ? p : null;
    }

    [SkippableFact]
    public void Patch_marks_only_the_GLIBCXX_3_4_32_need_weak_and_is_idempotent()
    {
        var source = PristineLibrary();
        Skip.If(source is null, "TorchSharp's linux-x64 native library is not in the NuGet cache on this machine");
        var dir = TestPaths.NewTempDir();
        var copy = Path.Combine(dir, GlibcxxCompat.LibraryFileName);
        File.Copy(source!, copy);
        var before = File.ReadAllBytes(copy);
        var needs = GlibcxxCompat.ReadVersionNeeds(copy);
        var target = Assert.Single(needs, n => n.Version == GlibcxxCompat.NeededVersion);
        Assert.Equal("libstdc++.so.6", target.File);
        Assert.False(target.IsWeak);

        Assert.Equal("patched", GlibcxxCompat.MakeNeededVersionWeak(copy));
        Assert.Equal("already-weak", GlibcxxCompat.MakeNeededVersionWeak(copy));

        var after = File.ReadAllBytes(copy);
        Assert.Equal(before.Length, after.Length);
        var changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToList();
        Assert.Equal([target.FlagsOffset], changed.Select(i => (long)i));
        var patched = GlibcxxCompat.ReadVersionNeeds(copy);
        Assert.True(patched.Single(n => n.Version == GlibcxxCompat.NeededVersion).IsWeak);
        Assert.All(patched.Where(n => n.Version != GlibcxxCompat.NeededVersion),
            n => Assert.Equal(needs.Single(o => o.FlagsOffset == n.FlagsOffset).Flags, n.Flags));
        Directory.Delete(dir, true);
    }

    [SkippableFact]
    public void Build_output_copy_is_loadable_here()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Linux only");
        var libs = GlibcxxCompat.FindLibraries(AppContext.BaseDirectory).ToList();
        Assert.NotEmpty(libs);
        if (GlibcxxCompat.SystemHasNeededVersion() == false)
            Assert.All(libs, l => Assert.True(GlibcxxCompat.ReadVersionNeeds(l)
                .Where(n => n.Version == GlibcxxCompat.NeededVersion).All(n => n.IsWeak), $"{l} is not patched"));
        var report = Doctor.Run(measure: false);
        Assert.True(report.LibTorchLoaded, report.LoadError);
    }

    [Fact]
    public void Non_elf_and_truncated_files_are_refused_with_the_file_name()
    {
        var dir = TestPaths.NewTempDir();
        var junk = Path.Combine(dir, "junk.so");
        File.WriteAllBytes(junk, new byte[100]);
        var ex = Assert.Throws<InvalidDataException>(() => GlibcxxCompat.ReadVersionNeeds(junk));
        Assert.Contains("junk.so", ex.Message);

        var truncated = Path.Combine(dir, "truncated.so");
        var header = new byte[64];
        header[0] = 0x7f; header[1] = (byte)'E'; header[2] = (byte)'L'; header[3] = (byte)'F'; header[4] = 2; header[5] = 1;
        BitConverter.GetBytes(1_000_000UL).CopyTo(header, 0x28); // section headers far beyond the end
        BitConverter.GetBytes((ushort)64).CopyTo(header, 0x3A);
        BitConverter.GetBytes((ushort)3).CopyTo(header, 0x3C);
        File.WriteAllBytes(truncated, header);
        ex = Assert.Throws<InvalidDataException>(() => GlibcxxCompat.ReadVersionNeeds(truncated));
        Assert.Contains("beyond the file", ex.Message);
        Directory.Delete(dir, true);
    }
}
