using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;

namespace RoentGen.Tests.Platform;

/// <summary>The <c>roentgen doctor</c> and <c>roentgen bench</c> verbs, run through their command-line parsers.</summary>
[Collection(ProcessStateCollection.Name)] // doctor --json - writes to Console.Out, which the test swaps
public class DoctorBenchCommandTests
{
    private static int Invoke(Command verb, params string[] args) => new RootCommand("test") { verb }.Parse([verb.Name, .. args]).Invoke();

    [Fact]
    public void Doctor_json_writes_the_report_fields_to_a_file_and_alone_to_standard_output()
    {
        var dir = TestPaths.NewTempDir("doctor-cli");
        var file = Path.Combine(dir, "doctor.json");
        Assert.Equal(0, Invoke(DoctorCommand.Build(), "--json", file, "--no-measure"));
        using (var doc = JsonDocument.Parse(File.ReadAllText(file)))
        {
            var r = doc.RootElement;
            Assert.True(r.GetProperty("lib_torch_loaded").GetBoolean());
            Assert.Equal("0.107.0", r.GetProperty("torch_sharp_version").GetString());
            Assert.Equal(TorchSharp.torch.__version__, r.GetProperty("lib_torch_version").GetString());
            Assert.Equal("cpu", r.GetProperty("backend").GetString());
            Assert.Equal(Environment.ProcessorCount, r.GetProperty("processor_count").GetInt32());
            Assert.Equal(TorchSharp.torch.get_num_threads(), r.GetProperty("threads").GetInt32());
            Assert.Equal(JsonValueKind.Array, r.GetProperty("cpu_features").ValueKind);
            Assert.Equal(System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription, r.GetProperty("runtime").GetString());
            // --no-measure: no timing was taken.
            Assert.True(!r.TryGetProperty("matmul_gflops", out var g) || g.ValueKind == JsonValueKind.Null, $"matmul_gflops is {g}");
        }

        // "--json -": the JSON alone on standard output (no table), so it can be piped.
        var saved = Console.Out;
        var captured = new StringWriter();
        Console.SetOut(captured);
        try { Assert.Equal(0, Invoke(DoctorCommand.Build(), "--json", "-", "--no-measure")); }
        finally { Console.SetOut(saved); }
        using (var doc = JsonDocument.Parse(captured.ToString()))
            Assert.True(doc.RootElement.GetProperty("lib_torch_loaded").GetBoolean());
        TestPaths.DeleteQuietly(dir);
    }

    [Fact]
    public void Bench_only_matmul_writes_one_figure_with_the_machine_and_refuses_an_unknown_group()
    {
        var dir = TestPaths.NewTempDir("bench-cli");
        var file = Path.Combine(dir, "bench.json");
        Assert.Equal(0, Invoke(BenchCommand.Build(), "--only", "matmul", "--json", file));
        using (var doc = JsonDocument.Parse(File.ReadAllText(file)))
        {
            var r = doc.RootElement;
            var figures = r.GetProperty("figures").EnumerateArray().ToList();
            var only = Assert.Single(figures); // the other groups did not run
            Assert.Equal("float32 matmul 2048x2048", only.GetProperty("name").GetString());
            Assert.Equal("GFLOP/s", only.GetProperty("unit").GetString());
            Assert.InRange(only.GetProperty("value").GetDouble(), 0.01, 100_000);
            Assert.True(r.GetProperty("machine").GetProperty("lib_torch_loaded").GetBoolean());
            Assert.Equal(Environment.ProcessorCount, r.GetProperty("machine").GetProperty("processor_count").GetInt32());
            // The process has at least the managed heap and libtorch resident, and the peak is never under the current RSS.
            double peak = r.GetProperty("peak_rss_mb").GetDouble();
            Assert.True(peak >= Environment.WorkingSet / (1024.0 * 1024.0) * 0.5 && peak >= 20, $"peak RSS {peak} MiB");
        }
        Assert.Equal(2, Invoke(BenchCommand.Build(), "--only", "matmul,nosuch", "--json", file + ".2"));
        Assert.False(File.Exists(file + ".2"));
        TestPaths.DeleteQuietly(dir);
    }
}
