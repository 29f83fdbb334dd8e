using System.Text.Json;
using RoentGen.Diffusion;
using RoentGen.Platform;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

/// <summary>The peer UNet's architecture, and the field names of <c>roentgen bench --json</c> that other tools read.</summary>
[Collection(ProcessStateCollection.Name)]
public class PeerUnetBenchmarkTests
{
    // shared/bench/peer-unet/bench.py prints "INFO unet_params=10430468" for its class UNet (counted with Debian's
    // python3-torch 1.13.1: sum(p.numel() for p in UNet().parameters())).
    private const long PeerScriptParameters = 10_430_468;

    [Fact]
    public void The_peer_config_builds_a_unet_with_exactly_the_peer_scripts_parameter_count()
    {
        var unet = new UNet2DConditionModel(PeerUnetBenchmark.Config);
        Assert.Equal(PeerScriptParameters, unet.parameters().Sum(p => p.numel()));
        // The shapes the script names: 64 -> 256 time MLP, linear projections, a GEGLU of 8x then 4x width, 1x1 skips.
        var shapes = unet.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal([256L, 64], shapes["time_embedding.linear_1.weight"]);
        Assert.Equal([128L, 128], shapes["down_blocks.1.attentions.0.proj_in.weight"]);
        Assert.Equal([1024L, 128], shapes["mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight"]);
        Assert.Equal([128L, 256], shapes["up_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"]);
        Assert.DoesNotContain(shapes.Keys, k => k.StartsWith("down_blocks.0.attentions", StringComparison.Ordinal));
    }

    [Fact]
    public void Peer_script_result_lines_are_read_by_name()
    {
        const string output = "INFO torch=1.13.1\nRESULT impl=pytorch name=unet_fwd_b32_fp32 median_ms=243.10 min_ms=240 max_ms=250 n=10 rss_mb=500\n" +
                              "RESULT impl=pytorch name=unet_train_b32_fp32 median_ms=799.25 min_ms=744.00 max_ms=935.00 n=10 rss_mb=900 loss=1.0\n";
        Assert.Equal(799.25, PeerScript.ParseMedianMs(output, "unet_train_b32_fp32"));
        Assert.Equal(243.10, PeerScript.ParseMedianMs(output, "unet_fwd_b32_fp32"));
        Assert.Null(PeerScript.ParseMedianMs(output, "unet_train_b32_amp_bf16"));
    }

    [SkippableFact]
    public void A_peer_without_pytorch_is_named_with_the_script_that_installs_it_and_a_failing_one_with_its_output()
    {
        Skip.IfNot(File.Exists("/usr/bin/python3"), "needs /usr/bin/python3");
        var dir = TestPaths.NewTempDir();
        try
        {
            var noTorch = Path.Combine(dir, "no_torch.py");
            File.WriteAllText(noTorch, "raise ModuleNotFoundError(\"No module named 'torch'\")\n");
            var e = Assert.Throws<InvalidOperationException>(() => PeerScript.MedianMs(noTorch, "unet_fp32", "unet_train_b32_fp32"));
            Assert.Contains("environment/install-peer-bench.sh", e.Message);
            var broken = Path.Combine(dir, "broken.py");
            File.WriteAllText(broken, "print('RESULT impl=pytorch name=other median_ms=1')\n");
            var f = Assert.Throws<InvalidOperationException>(() => PeerScript.MedianMs(broken, "unet_fp32", "unet_train_b32_fp32"));
            Assert.Contains("without a RESULT line named unet_train_b32_fp32", f.Message);
            Assert.DoesNotContain("install-peer-bench", f.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Bench_json_holds_the_ldm_and_peer_unet_fields_by_their_fixed_names()
    {
        var report = Benchmarks.Run(["ldm", "peer-unet"], ldmConfig: LdmExperimentConfig.Tiny,
            ldmOptions: new DiffusionBenchOptions { WarmupSteps = 0, TimedSteps = 1, SampleImages = 2, SampleBatch = 2, SampleSteps = 2, MatmulPeakGflops = 100, Bf16MatmulPeakGflops = 200 },
            peerSteps: (0, 1, 2));
        using var doc = JsonDocument.Parse(report.ToJson());
        var ldm = doc.RootElement.GetProperty("ldm");
        foreach (var name in new[] { "fp32_train_images_per_s", "bf16_train_images_per_s", "bf16_speedup", "fp32_peak_fraction", "bf16_peak_fraction", "bf16_sampling_speedup" })
            Assert.True(ldm.GetProperty(name).GetDouble() > 0, name);
        // A number, or "NaN" where the peak resident memory cannot be reset.
        Assert.Contains(ldm.GetProperty("sampling_memory_ratio").ValueKind, new[] { JsonValueKind.Number, JsonValueKind.String });
        Assert.Equal(200, ldm.GetProperty("bf16_matmul_peak_gflops").GetDouble());
        Assert.Equal(ldm.GetProperty("bf16_train_images_per_s").GetDouble() / ldm.GetProperty("fp32_train_images_per_s").GetDouble(), ldm.GetProperty("bf16_speedup").GetDouble(), 9);
        var peer = doc.RootElement.GetProperty("peer_unet");
        Assert.True(peer.GetProperty("fp32_ms_per_step").GetDouble() > 0);
        Assert.True(peer.GetProperty("bf16_ms_per_step").GetDouble() > 0);
        Assert.Equal(PeerScriptParameters, peer.GetProperty("parameters").GetInt64());
        Assert.False(peer.TryGetProperty("pytorch_fp32_ms_per_step", out _));   // no --peer-script: ours only
    }
}
