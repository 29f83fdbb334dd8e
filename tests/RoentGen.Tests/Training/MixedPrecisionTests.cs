using RoentGen.Diffusion;
using RoentGen.Interop;
using RoentGen.Platform;
using RoentGen.Text;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Training;

/// <summary>bfloat16 mixed precision: the Auto switch, one training step per model kind, checkpoints and sampling.</summary>
[Collection(ProcessStateCollection.Name)]
public class MixedPrecisionTests
{
    private const string FlagsWithBf16 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n\nprocessor\t: 1\n";
    // a real flags line (an Intel Xeon of this project's machines), where avx512_bf16 is the 90th flag
    private const string RealFlagsWithBf16 = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch cpuid_fault invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 wbnoinvd arat avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid cldemote movdiri movdir64b md_clear serialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities\n";
    private const string FlagsWithoutBf16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\nbugs\t\t: avx512_bf16_is_not_a_flag\n";

    [Fact]
    public void Auto_resolves_to_bf16_only_on_linux_with_the_avx512_bf16_flag()
    {
        Assert.True(Precisions.HasAvx512Bf16(FlagsWithBf16));
        Assert.False(Precisions.HasAvx512Bf16(FlagsWithoutBf16));
        Assert.True(Precisions.HasAvx512Bf16(RealFlagsWithBf16)); // a long line: every flag is read, not the first few
        Assert.Equal(Precision.BFloat16, Precisions.Resolve(Precision.Auto, FlagsWithBf16, isLinux: true));
        Assert.Equal(Precision.Float32, Precisions.Resolve(Precision.Auto, FlagsWithoutBf16, isLinux: true));
        Assert.Equal(Precision.Float32, Precisions.Resolve(Precision.Auto, FlagsWithBf16, isLinux: false));
        Assert.Equal(Precision.Float32, Precisions.Resolve(Precision.Auto, null, isLinux: true));
        Assert.Equal(Precision.Float32, Precisions.Resolve(Precision.Float32, FlagsWithBf16, isLinux: true));
        Assert.Equal(Precision.BFloat16, Precisions.Resolve(Precision.BFloat16, FlagsWithoutBf16, isLinux: false));
        Assert.Equal(Precision.BFloat16, Precisions.Parse("BF16"));
        Assert.Equal(Precision.Float32, Precisions.Parse("fp32"));
        Assert.Equal(Precision.Auto, Precisions.Parse("auto"));
        Assert.Contains("fp32, bf16 or auto", Assert.Throws<ArgumentException>(() => Precisions.Parse("fp16")).Message);
        // the probe half of Auto: the flag is not enough, bf16 must also multiply at least 1.25x faster
        Assert.True(Precisions.BFloat16Pays(float32Gflops: 180, bfloat16Gflops: 400));   // AMD EPYC figures (docs/PLATFORM.md)
        Assert.False(Precisions.BFloat16Pays(float32Gflops: 292, bfloat16Gflops: 165));  // an Intel Xeon with avx512_bf16 measured here
        Assert.False(Precisions.BFloat16Pays(float32Gflops: 200, bfloat16Gflops: 240));  // 1.2x: not worth the rounding
        Assert.False(Precisions.BFloat16Pays(float32Gflops: 0, bfloat16Gflops: 240));
        Assert.NotEqual(Precision.Auto, Precisions.Resolve(Precision.Auto));
        // an explicit bf16 is warned about exactly where the probe finds it does not pay; fp32 and auto never are
        Assert.Null(Precisions.BFloat16Warning(Precision.Float32));
        Assert.Null(Precisions.BFloat16Warning(Precision.Auto));
        var warning = Precisions.BFloat16Warning(Precision.BFloat16);
        Assert.Equal(!Precisions.MachineComputesBf16Faster, warning is not null);
        if (warning is not null) Assert.Contains("slower", warning);
    }

    [Fact]
    public void Auto_is_left_out_of_the_experiment_json_and_other_precisions_round_trip()
    {
        var auto = System.Text.Json.JsonSerializer.Serialize(LdmExperimentConfig.Tiny, SafeTensors.ConfigJsonOptions);
        Assert.DoesNotContain("Precision", auto);
        var bf16 = System.Text.Json.JsonSerializer.Serialize(LdmExperimentConfig.Tiny with { Precision = Precision.BFloat16 }, SafeTensors.ConfigJsonOptions);
        Assert.Contains("\"Precision\": \"BFloat16\"", bf16);
        Assert.Equal(Precision.BFloat16, System.Text.Json.JsonSerializer.Deserialize<LdmExperimentConfig>(bf16, SafeTensors.ConfigJsonOptions)!.Precision);
    }

    // One AdamW step of a float32 model and one of its mixed-precision twin on the same batch: returns both losses and
    // checks what a mixed-precision step must do to the float32 masters.
    private static (double Fp32, double Bf16) OneStepEach<T>(Func<T> build, Func<T, Tensor> loss) where T : nn.Module
    {
        manual_seed(3);
        var reference = build();
        var master = build();
        master.load_state_dict(reference.state_dict());
        var shadow = new BFloat16Shadow<T>(master, build);
        Assert.All(shadow.Compute.parameters(), p => Assert.True(p.dtype is ScalarType.BFloat16 or ScalarType.Float32));
        Assert.Contains(shadow.Compute.parameters(), p => p.dtype == ScalarType.BFloat16);

        var before = master.parameters().Select(p => p.detach().clone()).ToList();
        var optRef = optim.AdamW(reference.parameters(), lr: 1e-3);
        var optMix = optim.AdamW(master.parameters(), lr: 1e-3);
        reference.train(); master.train(); shadow.PullWeights();

        var l32 = loss(reference);
        l32.backward();
        optRef.step();

        var l16 = loss(shadow.Compute);
        Assert.Equal(ScalarType.Float32, l16.dtype);
        l16.backward();
        shadow.PushGradients();
        var gradCos = CosineOfGradients(reference, master);
        optMix.step();
        shadow.PullWeights();

        var after = master.parameters().ToList();
        Assert.All(after, p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(after, p => Assert.Equal(ScalarType.Float32, p.grad!.dtype));
        int changed = after.Zip(before).Count(t => !t.First.eq(t.Second).all().item<bool>());
        Assert.True(changed > after.Count / 2, $"only {changed} of {after.Count} float32 master tensors changed");
        Assert.All(shadow.Compute.parameters(), p => Assert.Null(p.grad));
        // The gradient of bf16 compute points the same way as float32's (bf16 keeps 8 significant bits, ~0.4 % per value).
        Assert.True(gradCos > 0.98, $"cosine of the bf16 and fp32 gradients {gradCos:F4}");
        return (l32.item<float>(), l16.item<float>());
    }

    private static double CosineOfGradients(nn.Module a, nn.Module b)
    {
        var ga = cat(a.parameters().Where(p => p.grad is not null).Select(p => p.grad!.flatten()).ToList());
        var gb = cat(b.parameters().Where(p => p.grad is not null).Select(p => p.grad!.flatten()).ToList());
        return (ga.dot(gb) / (ga.norm() * gb.norm())).item<float>();
    }

    // Tolerance of the loss: bfloat16 rounds each value to 8 significant bits (relative error up to 2^-9); through a few
    // layers the errors partly cancel, and the loss, a mean over thousands of values, moves by well under 1 %. 2 % is the
    // issue's tolerance for a whole run's final loss.
    private static void AssertClose((double Fp32, double Bf16) l)
    {
        Assert.True(double.IsFinite(l.Bf16), $"bf16 loss {l.Bf16}");
        Assert.True(Math.Abs(l.Bf16 - l.Fp32) <= 0.02 * Math.Abs(l.Fp32), $"bf16 loss {l.Bf16} vs fp32 {l.Fp32}");
    }

    [Fact]
    public void Bf16_step_of_a_tiny_unet_trains_the_float32_masters_with_the_float32_loss()
    {
        var cfg = LdmExperimentConfig.Tiny.Unet;
        manual_seed(5);
        var x = randn(4, 4, 8, 8); var noise = randn(4, 4, 8, 8); var ctx = randn(4, 6, cfg.CrossAttentionDim);
        var t = tensor(new long[] { 10, 300, 600, 900 });
        AssertClose(OneStepEach(() => new UNet2DConditionModel(cfg),
            u => nn.functional.mse_loss(u.call(x + noise, t, ctx).to(ScalarType.Float32), noise)));
    }

    [Fact]
    public void Bf16_step_of_a_tiny_vae_trains_the_float32_masters_with_the_float32_loss()
    {
        var cfg = LdmExperimentConfig.Tiny.Vae;
        manual_seed(6);
        var images = rand(2, 1, 16, 16) * 2 - 1;
        AssertClose(OneStepEach(() => new AutoencoderKL(cfg), v =>
        {
            using var g = new Generator(seed: 9);
            return LatentDiffusionRuns.VaeTrainingLoss(v, images, g, new VaeLossConfig()).Total;
        }));
    }

    [Fact]
    public void Bf16_step_of_a_tiny_text_encoder_trains_the_float32_masters_with_the_float32_loss()
    {
        var cfg = LdmExperimentConfig.Tiny.Text with { VocabSize = 64, EndTokenId = 63 };
        manual_seed(7);
        var ids = randint(0, 63, [3, 8], dtype: ScalarType.Int64);
        var target = randn(3, 8, cfg.HiddenSize);
        AssertClose(OneStepEach(() => new ClipTextModel(cfg), m => nn.functional.mse_loss(m.call(ids).to(ScalarType.Float32), target)));
    }

    [Fact]
    public void A_bf16_run_saves_float32_weights_that_load_into_a_float32_run_and_records_its_precision()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var cfg = LdmExperimentConfig.Tiny with { VaeSteps = 2, LdmSteps = 2, Precision = Precision.BFloat16 };
            var result = LatentDiffusionRuns.EnsureTrained(cfg, LdmTrainingData.FromPhantoms(cfg), dir);
            Assert.All(result.History.Loss.Concat(result.VaeHistory!.Loss), l => Assert.True(double.IsFinite(l)));
            foreach (var part in new[] { "vae", "unet", "text_encoder" })
            {
                using var file = SafeTensors.Load(Path.Combine(dir, part, Checkpoint.WeightsFileName));
                Assert.All(file.Tensors, kv => Assert.Equal(ScalarType.Float32, kv.Value.dtype));
            }
            foreach (var stage in new[] { LatentDiffusionRuns.VaeRunPath(dir), LatentDiffusionRuns.LdmRunPath(dir) })
                Assert.Contains("\"Precision\": \"bf16\"", File.ReadAllText(Path.Combine(stage, "run.json")));
            // The saved model loads as float32 and samples in float32, the same weights as the bf16 run's masters.
            var loaded = LatentDiffusionModel.Load(dir);
            Assert.All(loaded.Unet.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
            var images = loaded.ToPipeline().Sample(new SampleRequest { Prompts = ["no acute findings"], Steps = 2, Seed = 1 });
            Assert.Equal(ScalarType.Float32, images.dtype);
            // A float32 run starts its UNet from the bf16 run's weights.
            var fp32 = cfg with { Precision = Precision.Float32, Parts = cfg.Parts with { Unet = new LdmPartConfig { From = dir } } };
            var again = LatentDiffusionModel.Build(fp32, LdmTrainingData.FromPhantoms(cfg).Prompts, Path.Combine(dir, "vae"));
            var saved = loaded.Unet.state_dict();
            Assert.All(again.Unet.state_dict(), kv => Assert.True(kv.Value.eq(saved[kv.Key]).all().item<bool>(), kv.Key));
        }
        finally { TestPaths.DeleteQuietly(dir); }
    }

    [Fact]
    public void A_bf16_sample_of_a_tiny_pipeline_is_close_to_the_float32_one()
    {
        using var scope = NewDisposeScope();
        var cfg = LdmExperimentConfig.Tiny with { ImageSize = 16 };
        manual_seed(11);
        string[] corpus = ["small left pleural effusion", "no acute cardiopulmonary process", "right upper lobe pneumonia"];
        var tokenizer = BpeTokenizer.Train(corpus, 300);
        var textCfg = cfg.Text with { VocabSize = tokenizer.VocabSize, EndTokenId = tokenizer.EndId, MaxPositions = cfg.MaxTokens };
        var vae = new AutoencoderKL(cfg.Vae);
        var unet = new UNet2DConditionModel(cfg.Unet with { InChannels = cfg.Vae.LatentChannels, OutChannels = cfg.Vae.LatentChannels, CrossAttentionDim = textCfg.HiddenSize });
        var pipe = new TextToImagePipeline(vae, unet, new ClipTextModel(textCfg), tokenizer, new NoiseSchedule(cfg.Schedule), cfg.LatentSize, cfg.MaxTokens);
        var request = new SampleRequest { Prompts = corpus, Steps = 4, Seed = 5, GuidanceScale = 3, BatchSize = 3 };
        var fp32 = pipe.Sample(request);
        pipe.Precision = Precision.BFloat16;
        var bf16 = pipe.Sample(request);
        Assert.Equal(ScalarType.Float32, bf16.dtype);
        Assert.All(unet.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.False(fp32.eq(bf16).all().item<bool>(), "the bf16 switch changed nothing");
        // Tolerance: each UNet call's ε is off by about bfloat16's rounding (~0.4 % of its scale); over 4 guided solver steps
        // (guidance 3 amplifies the difference of the two predictions) the latents move by a few tenths of a percent of their
        // range, which the decoder maps to pixels in [-1, 1]: a mean absolute difference under 0.02 (1 % of the range) and
        // no pixel off by more than 0.1.
        var diff = (fp32 - bf16).abs();
        Assert.True(diff.mean().item<float>() < 0.02, $"mean |fp32 - bf16| = {diff.mean().item<float>():G4}");
        Assert.True(diff.max().item<float>() < 0.1, $"max |fp32 - bf16| = {diff.max().item<float>():G4}");
        pipe.Precision = Precision.Float32;
        Assert.True(fp32.eq(pipe.Sample(request)).all().item<bool>(), "float32 sampling changed after a bf16 call");
    }

    // Every parameter of a bfloat16 model is bfloat16 but the weight and bias of convolutions BFloat16Kernels.Repair moved
    // to float32 (those whose bfloat16 kernel this machine gets wrong; none on most machines) and, with normalisation,
    // the normalisation layers a BFloat16Shadow keeps in float32.
    internal static void AssertBFloat16ExceptRepairedConvolutions(nn.Module model, bool normalisation = false)
    {
        var convolutionParameters = model.named_modules()
            .Where(m => m.module is TorchSharp.Modules.Conv2d || normalisation && m.module is TorchSharp.Modules.GroupNorm or TorchSharp.Modules.LayerNorm)
            .SelectMany(m => m.module.named_parameters().Select(p => m.name.Length == 0 ? p.name : $"{m.name}.{p.name}")).ToHashSet();
        foreach (var (name, p) in model.named_parameters())
            if (p.dtype != ScalarType.BFloat16)
                Assert.True(p.dtype == ScalarType.Float32 && convolutionParameters.Contains(name), $"{name} is {p.dtype}: only a repaired convolution may stay float32");
    }

    // The same comparison as BFloat16Kernels.Agrees, written out independently on other random values.
    private static bool ConvolutionAgreesInBf16(int inChannels, int outChannels, int kernel, int stride, int size, int batch)
    {
        using var generator = new Generator(seed: 21);
        var x = randn([batch, inChannels, size, size], generator: generator).to(ScalarType.BFloat16).to(ScalarType.Float32);
        var w = (randn([outChannels, inChannels, kernel, kernel], generator: generator) * 0.2).to(ScalarType.BFloat16).to(ScalarType.Float32);
        (Tensor Y, Tensor Gx, Tensor Gw) Run(ScalarType type)
        {
            var xi = x.to(type).requires_grad_(true);
            var wi = w.to(type).requires_grad_(true);
            var y = nn.functional.conv2d(xi, wi, strides: [stride, stride], padding: [kernel / 2, kernel / 2]);
            (y.to(ScalarType.Float32) * arange(y.numel()).to(ScalarType.Float32).sin().reshape(y.shape)).sum().backward();
            return (y.to(ScalarType.Float32), xi.grad!.to(ScalarType.Float32), wi.grad!.to(ScalarType.Float32));
        }
        var low = Run(ScalarType.BFloat16);
        var reference = Run(ScalarType.Float32);
        static bool Close(Tensor a, Tensor b) => (a - b).abs().max().item<float>() <= 0.05 * b.abs().max().item<float>();
        return Close(low.Y, reference.Y) && Close(low.Gx, reference.Gx) && Close(low.Gw, reference.Gw);
    }

    [Fact]
    public void The_bf16_convolution_check_agrees_with_a_direct_comparison_and_repaired_layers_compute_like_float32()
    {
        // Whatever this machine's kernels do (wrong on the AMD EPYC of 2026-12-06, right on an Intel Xeon), the check must
        // say what a direct comparison on other values says, and Auto must not pick bfloat16 where convolutions are wrong.
        bool direct = BFloat16Kernels.CheckedShapes.All(t => ConvolutionAgreesInBf16(t.In, t.Out, t.Kernel, t.Stride, t.Size, t.Batch));
        Assert.Equal(direct, BFloat16Kernels.ConvolutionsAreRight);
        if (!direct) Assert.Equal(Precision.Float32, Precisions.Resolve(Precision.Auto));

        // The default repair: every convolution where they are wrong, none where they are right.
        var cfg = LdmExperimentConfig.Tiny.Vae;
        manual_seed(4);
        var plain = new AutoencoderKL(cfg);
        plain.to(ScalarType.BFloat16);
        int convolutions = plain.modules().Count(m => m is TorchSharp.Modules.Conv2d);
        Assert.Equal(direct ? 0 : convolutions, BFloat16Kernels.Repair(plain).Count);

        // A layer forced to float32 inside a bfloat16 model (besides the default's): bfloat16 in and out, float32 weights
        // and gradients, and the float32 model's output within bfloat16 rounding.
        var master = new AutoencoderKL(cfg);
        var shadow = new BFloat16Shadow<AutoencoderKL>(master, () => new AutoencoderKL(cfg),
            keepFloat32: (name, _) => name == "encoder.conv_out" || !BFloat16Kernels.ConvolutionsAreRight);
        Assert.Contains("encoder.conv_out", shadow.Float32Layers);
        Assert.Equal(direct ? 1 : convolutions, shadow.Float32Layers.Count);
        AssertBFloat16ExceptRepairedConvolutions(shadow.Compute, normalisation: true);
        Assert.Equal(ScalarType.BFloat16, BFloat16Kernels.ComputeType(shadow.Compute));
        Assert.Equal(ScalarType.Float32, BFloat16Kernels.ComputeType(master));
        var x = rand(2, 1, 32, 32) * 2 - 1;
        var reference = master.Encode(x).Mean;
        var moments = shadow.Compute.Encode(x.to(ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, moments.Mean.dtype);
        double error = (moments.Mean.to(ScalarType.Float32) - reference).abs().max().item<float>();
        Assert.True(error < 0.05 * reference.abs().max().item<float>() + 0.02, $"encoder mean {error} from float32");
        moments.Mean.to(ScalarType.Float32).sum().backward();
        shadow.PushGradients();
        var convOut = master.named_parameters().Single(p => p.name == "encoder.conv_out.weight").parameter;
        Assert.Equal(ScalarType.Float32, convOut.grad!.dtype);
        Assert.True(convOut.grad.abs().sum().item<float>() > 0);
    }
}
