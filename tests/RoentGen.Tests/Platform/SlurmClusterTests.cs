using System.Diagnostics;
using Xunit.Abstractions;

namespace RoentGen.Tests.Platform;

/// <summary>
/// Issue #20's real Slurm test: environment/slurm/test-local-cluster.sh starts a one-node cluster on this machine,
/// runs a 4-way sampling array and its dependent merge through submit.sh, compares with the unsharded run byte for byte,
/// and stops its daemons. It runs where the test process is root on Linux with bash (and slurm-wlm and munge installed
/// or installable with apt-get); elsewhere it reports skipped with the script's reason.
/// </summary>
public sealed class SlurmClusterTests(ITestOutputHelper output)
{
    private const int ScriptDeadlineSeconds = 300;

    [SkippableFact]
    public void Four_shards_on_a_one_node_Slurm_cluster_merge_to_the_unsharded_run()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Slurm test: Linux only");
        Skip.IfNot(File.Exists("/bin/bash"), "Slurm test: needs bash");
        var script = Path.Combine(TestPaths.RepoRoot, "environment", "slurm", "test-local-cluster.sh");
        Assert.True(File.Exists(script), $"{script} is missing");
        var cliDll = Path.Combine(AppContext.BaseDirectory, "RoentGen.Cli.dll");
        Assert.True(File.Exists(cliDll), $"{cliDll} missing: the test project references RoentGen.Cli, so the build copies it");
        Skip.If(cliDll.Contains(' ', StringComparison.Ordinal), $"Slurm test: the scripts split ROENTGEN on spaces and {cliDll} has one");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
            : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";

        var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        psi.Environment["ROENTGEN"] = $"{dotnet} {cliDll}";
        psi.Environment["SLURM_TEST_DEADLINE"] = ScriptDeadlineSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(ScriptDeadlineSeconds + 120)))
        {
            // SIGTERM first, so the script's trap stops the daemons it started; then the whole tree.
            using (var term = Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) term.WaitForExit();
            if (!p.WaitForExit(TimeSpan.FromSeconds(30))) p.Kill(entireProcessTree: true);
            Assert.Fail($"the Slurm test did not stop by itself within {ScriptDeadlineSeconds + 120} s");
        }
        var text = stdout.Result + stderr.Result;
        output.WriteLine(text);
        output.WriteLine($"wall time: {clock.Elapsed.TotalSeconds:F0} s");
        var skipLine = text.Split('\n').FirstOrDefault(l => l.Contains("SKIP:", StringComparison.Ordinal));
        Skip.If(p.ExitCode == 77, $"Slurm test: {skipLine?.Trim() ?? "the script cannot run here"}");
        Assert.True(p.ExitCode == 0, $"test-local-cluster.sh exited {p.ExitCode}:\n{text}");
        Assert.Contains("PASS: 4 shards on Slurm + merge == unsharded run", text);
        Assert.Contains("stopped slurmctld", text);
        Assert.Contains("stopped slurmd", text);
        Assert.Contains("stopped munged", text);
    }
}
