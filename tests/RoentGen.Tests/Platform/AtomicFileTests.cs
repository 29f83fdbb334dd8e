using System.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace RoentGen.Tests.Platform;

public class AtomicFileTests
{
    // The child program: writes versions 1, 2, 3, ... of one file through AtomicFile.Write, each version a run of
    // one byte value, streamed in chunks with short pauses so that most of the child's time is spent mid-write.
    private const string WriterSource = """
        using RoentGen.Platform;
        var path = args[0];
        int size = int.Parse(args[1]), chunk = 64 * 1024;
        var buffer = new byte[chunk];
        for (int version = 1; ; version++)
        {
            System.Array.Fill(buffer, (byte)(version % 250 + 1));
            AtomicFile.Write(path, s =>
            {
                for (int written = 0; written < size; written += chunk)
                {
                    s.Write(buffer, 0, System.Math.Min(chunk, size - written));
                    s.Flush();
                    System.Threading.Thread.Sleep(1);
                }
            });
        }
        """;

    private const int Size = 4 << 20;

    /// <summary>Compiles the writer against the RoentGen.dll the tests run with, into a folder of its own.</summary>
    private static string BuildWriter(string dir)
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var roentgen = typeof(AtomicFile).Assembly.Location;
        var refs = tpa.Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "mscorlib.dll")
            .Append(roentgen).Distinct().Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("atomic-writer",
            [CSharpSyntaxTree.ParseText(WriterSource)], refs, new CSharpCompilationOptions(OutputKind.ConsoleApplication));
        var exe = Path.Combine(dir, "atomic-writer.dll");
        var emitted = compilation.Emit(exe);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
        File.Copy(roentgen, Path.Combine(dir, Path.GetFileName(roentgen)));
        File.WriteAllText(Path.Combine(dir, "atomic-writer.runtimeconfig.json"),
            "{\"runtimeOptions\":{\"tfm\":\"net" + $"{Environment.Version.Major}.{Environment.Version.Minor}" +
            "\",\"framework\":{\"name\":\"Microsoft.NETCore.App\",\"version\":\"" + Environment.Version + "\"}}}");
        return exe;
    }

    private static void AssertWhole(string file, string when)
    {
        var bytes = File.ReadAllBytes(file);
        Assert.True(bytes.Length == Size, $"{when}: the target holds {bytes.Length} bytes, a partial write (expected {Size})");
        byte first = bytes[0];
        int mixed = Array.FindIndex(bytes, b => b != first);
        Assert.True(mixed < 0, $"{when}: the target mixes two versions (byte {mixed} is {bytes[Math.Max(mixed, 0)]}, byte 0 is {first})");
    }

    [SkippableFact]
    public void A_writer_killed_mid_write_leaves_the_old_or_the_new_content_never_a_partial_one()
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "SIGKILL semantics are checked on Unix");
        var dir = TestPaths.NewTempDir("atomic");
        var bin = Directory.CreateDirectory(Path.Combine(dir, "bin")).FullName;
        var exe = BuildWriter(bin);
        var target = Path.Combine(dir, "out", "target.bin");
        AtomicFile.WriteAllBytes(target, new byte[Size]); // the old content: all zeros
        var dotnet = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var rng = new Random(12);
        int landed = 0;
        for (int kill = 0; kill < 4; kill++)
        {
            var psi = new ProcessStartInfo(dotnet) { UseShellExecute = false };
            foreach (var a in new[] { "exec", exe, target, Size.ToString(System.Globalization.CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
            var before = File.GetLastWriteTimeUtc(target);
            using var child = Process.Start(psi)!;
            try
            {
                // Wait for a finished version (the target replaced), then kill at a random moment of a later one
                // (SIGKILL: no finally block of the writer runs).
                var waited = Stopwatch.StartNew();
                while (File.GetLastWriteTimeUtc(target) == before && !child.HasExited && waited.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(5);
                Assert.False(child.HasExited, $"the writer exited with code {(child.HasExited ? child.ExitCode : 0)} before it was killed");
                Assert.NotEqual(before, File.GetLastWriteTimeUtc(target));
                landed++;
                Thread.Sleep(rng.Next(5, 120));
            }
            finally
            {
                child.Kill(entireProcessTree: true);
                child.WaitForExit();
            }
            AssertWhole(target, $"after kill {kill + 1}");
        }
        Assert.Equal(4, landed);
        // The kills did land mid-write: temporary files of unfinished versions are left beside the target
        // (a kill between two versions leaves none, so at least one of four must show).
        var stale = Directory.GetFiles(Path.GetDirectoryName(target)!, ".target.bin.*.tmp");
        Assert.NotEmpty(stale);
        // A whole new version replaced the old one at least once.
        Assert.NotEqual(0, File.ReadAllBytes(target)[0]);
        // The next successful write removes the dead writers' leftovers, but not a live writer's temporary file (this
        // process's, named as AtomicFile names its own) nor an unrelated file that only looks similar.
        var live = Path.Combine(Path.GetDirectoryName(target)!, $".target.bin.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        var unrelated = Path.Combine(Path.GetDirectoryName(target)!, ".target.bin.notes.tmp");
        File.WriteAllText(live, "in progress");
        File.WriteAllText(unrelated, "mine");
        AtomicFile.WriteAllBytes(target, new byte[Size]);
        Assert.Equal(new[] { live, unrelated }.Order(), Directory.GetFiles(Path.GetDirectoryName(target)!, ".target.bin.*.tmp").Order());
        Assert.Equal(0, AtomicFile.RemoveStaleTemps(target));
        TestPaths.DeleteQuietly(dir);
    }
}
