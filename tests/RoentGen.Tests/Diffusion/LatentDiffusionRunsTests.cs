using RoentGen.Data.Datasets;
using RoentGen.Diffusion;
using RoentGen.Interop;
using RoentGen.Text;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

[Collection(ProcessStateCollection.Name)]
public class LatentDiffusionRunsTests
{
    // Obtained by running main's code (commit 0eb3c78, before the LDM became named parts with an objective) in a scratch
    // worktree: LatentDiffusionTraining.TrainVae then TrainLdm on LdmExperimentConfig.Tiny with FromPhantoms(Tiny),
    // printing each step's loss with ToString("R") and the sum of |w| over the saved (EMA) UNet's parameters; recomputed
    // by this same run when the phantom world was redrawn (feat/world: every pixel of the training images changed), and again
    // when Kerley B lines were drawn stronger and the deep sulcus became pleural air only (edema and AP pneumothorax cases).
    private static readonly double[] MainVaeLosses = [0.6841354966163635, 0.6177850365638733, 0.4762371778488159, 0.4698224365711212, 0.3951631486415863, 0.4344346523284912];
    private static readonly double[] MainLdmLosses = [1.086972713470459, 1.0276211500167847, 0.8700522184371948, 0.9107568264007568, 0.9098624587059021, 0.8806199431419373];
    private const double MainUnetAbsSum = 27925.280744068325;

    private static LdmExperimentConfig Small => LdmExperimentConfig.Tiny with { VaeSteps = 2, LdmSteps = 3 };

    private static bool SameWeights(nn.Module a, nn.Module b)
    {
        var other = b.state_dict();
        return a.state_dict().All(kv => kv.Value.eq(other[kv.Key]).all().item<bool>());
    }

    [Fact]
    public void Default_config_reproduces_the_losses_and_unet_of_the_code_before_the_split()
    {
        var dir = TestPaths.NewTempDir();
        // The code before the split trained in float32; Precision Auto would pick bfloat16 on a CPU with AVX-512 BF16.
        var cfg = LdmExperimentConfig.Tiny with { Precision = RoentGen.Platform.Precision.Float32 };
        var result = LatentDiffusionRuns.EnsureTrained(cfg, LdmTrainingData.FromPhantoms(cfg), dir);
        static string R(IEnumerable<double> v) => string.Join(", ", v.Select(x => x.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
        double sum = 0;
        foreach (var p in result.Model.Unet.parameters()) sum += p.abs().sum().item<float>();
        string got = $"VAE [{R(result.VaeHistory!.Loss)}], LDM [{R(result.History.Loss)}], UNet |w| sum {sum:R}";
        // Bit-equal on the machines the values were pinned on; where libtorch computes convolutions with other kernels
        // (oneDNN repaired, held to SSE4.1 or off on AMD processors, see Platform.OneDnn) rounding moves the losses by about 3e-6 relative. A change
        // of logic moves them by far more than the 2e-5 allowed here.
        static bool Near(double pinned, double value) => Math.Abs(pinned - value) <= 2e-5 * Math.Abs(pinned);
        Assert.True(MainVaeLosses.Length == result.VaeHistory!.Loss.Count && MainVaeLosses.Zip(result.VaeHistory.Loss).All(t => Near(t.First, t.Second)), got);
        Assert.True(MainLdmLosses.Length == result.History.Loss.Count && MainLdmLosses.Zip(result.History.Loss).All(t => Near(t.First, t.Second)), got);
        Assert.True(Near(MainUnetAbsSum, sum), got);
        TestPaths.DeleteQuietly(dir);
    }

    [Fact]
    public void Ldm_trains_from_a_vae_run_with_the_unet_of_another_run_and_a_frozen_text_encoder()
    {
        var data = LdmTrainingData.FromPhantoms(Small);
        var vaeDir = TestPaths.NewTempDir();
        var (vae, _) = LatentDiffusionRuns.TrainVae(Small, data, vaeDir);
        var frozenVae = new LdmPartConfig { From = vaeDir, Train = false };
        var otherDir = TestPaths.NewTempDir();
        var other = LatentDiffusionRuns.TrainLdm(Small with { Seed = 5, Parts = new LdmPartsConfig { Vae = frozenVae } }, data, otherDir);
        Assert.False(Directory.Exists(LatentDiffusionRuns.VaeRunPath(otherDir)));   // no VAE stage for a frozen VAE

        var cfg = Small with
        {
            Parts = new LdmPartsConfig { Vae = frozenVae, Unet = new LdmPartConfig { From = otherDir }, TextEncoder = new LdmPartConfig { Train = false } },
        };
        var initial = LatentDiffusionModel.Build(cfg, data.Prompts);
        Assert.True(SameWeights(initial.Unet, other.Model.Unet), "the UNet does not start from the other run's weights");
        Assert.False(initial.IsTrainable(LdmPart.TextEncoder));
        Assert.Equal(Path.Combine(otherDir, "unet"), initial.Sources[LdmPart.Unet]);

        var dir = TestPaths.NewTempDir();
        var result = LatentDiffusionRuns.TrainLdm(cfg, data, dir);
        Assert.True(SameWeights(result.Model.Vae, vae), "the frozen VAE changed");
        Assert.True(SameWeights(result.Model.TextEncoder, initial.TextEncoder), "the frozen text encoder changed");
        Assert.False(SameWeights(result.Model.Unet, other.Model.Unet), "the UNet did not train");
        // EMA covers the trained UNet and not the frozen text encoder.
        var last = Trainer.LatestCheckpoint(LatentDiffusionRuns.LdmRunPath(dir))!;
        Assert.True(File.Exists(Path.Combine(last, Trainer.EmaFileName("unet"))));
        Assert.False(File.Exists(Path.Combine(last, Trainer.EmaFileName("text_encoder"))));

        // The saved model: one folder per part and an index; it reloads and samples identically.
        foreach (var part in new[] { "vae", "text_encoder", "tokenizer", "unet", "scheduler" }) Assert.True(Directory.Exists(Path.Combine(dir, part)), part);
        Assert.Contains($"\"LatentSize\": {cfg.LatentSize}", File.ReadAllText(Path.Combine(dir, LatentDiffusionModel.IndexFile)));
        var request = new SampleRequest { Prompts = ["small left pleural effusion", "cardiomegaly"], Steps = 3, Seed = 2, GuidanceScale = 3 };
        var a = result.Model.ToPipeline().Sample(request);
        var b = LatentDiffusionRuns.LoadPipeline(dir).Sample(request);
        Assert.True(a.eq(b).all().item<bool>(), "the reloaded model samples differently");
        foreach (var d in new[] { vaeDir, otherDir, dir }) TestPaths.DeleteQuietly(d);
    }

    [Fact]
    public void Ema_covers_every_trained_part_and_a_resumed_run_equals_an_uninterrupted_one()
    {
        var cfg = Small with { LdmSteps = 5 };
        var data = LdmTrainingData.FromPhantoms(cfg);
        var options = new LdmRunOptions { CheckpointEvery = 2 };
        var dirA = TestPaths.NewTempDir();
        var a = LatentDiffusionRuns.EnsureTrained(cfg, data, dirA, options);
        var last = Trainer.LatestCheckpoint(LatentDiffusionRuns.LdmRunPath(dirA))!;
        // Both trained parts have an average, and the saved model carries it (not the raw weights).
        foreach (var (part, module) in new (string, nn.Module)[] { ("unet", a.Model.Unet), ("text_encoder", a.Model.TextEncoder) })
        {
            using var ema = SafeTensors.Load(Path.Combine(last, Trainer.EmaFileName(part)));
            using var raw = SafeTensors.Load(Path.Combine(last, part + ".safetensors"));
            var weights = module.state_dict();
            Assert.All(ema.Tensors, kv => Assert.True(kv.Value.eq(weights[kv.Key]).all().item<bool>(), $"{part}.{kv.Key} is not its EMA"));
            Assert.Contains(raw.Tensors, kv => !kv.Value.eq(weights[kv.Key]).all().item<bool>());
        }

        // Killed after step 3 (its last checkpoint at step 2), then run again: the VAE stage is skipped, the denoiser resumes.
        var dirB = TestPaths.NewTempDir();
        var kill = options with { AfterStep = (stage, step) => { if (stage == "ldm" && step == 3) throw new OperationCanceledException("killed"); } };
        Assert.Throws<OperationCanceledException>(() => LatentDiffusionRuns.EnsureTrained(cfg, data, dirB, kill));
        Assert.Null(RunFolder.Open(LatentDiffusionRuns.LdmRunPath(dirB), "ldm", new LdmStageConfig { Data = data.Source, Experiment = cfg }, "Experiment.LdmSteps").Finished);
        var b = LatentDiffusionRuns.EnsureTrained(cfg, data, dirB, options);
        Assert.Equal(cfg.LdmSteps - 2, b.StepsTrained);   // resumed at step 2 of 5
        Assert.Equal(a.History.Loss, b.History.Loss);
        Assert.Equal(a.VaeHistory!.Loss, b.VaeHistory!.Loss);
        Assert.True(SameWeights(a.Model.Unet, b.Model.Unet), "UNet differs after resume");
        Assert.True(SameWeights(a.Model.TextEncoder, b.Model.TextEncoder), "text encoder differs after resume");
        TestPaths.DeleteQuietly(dirA);
        TestPaths.DeleteQuietly(dirB);
    }

    [Fact]
    public void Text_pretraining_runs_before_the_denoiser_and_a_resumed_run_skips_it_and_equals_an_uninterrupted_one()
    {
        var cfg = Small with { LdmSteps = 5, TextPretrainSteps = 10 };
        var data = LdmTrainingData.FromPhantoms(cfg);
        var options = new LdmRunOptions { CheckpointEvery = 2 };
        var dirA = TestPaths.NewTempDir();
        var a = LatentDiffusionRuns.EnsureTrained(cfg, data, dirA, options);
        var dirPlain = TestPaths.NewTempDir();
        var plain = LatentDiffusionRuns.EnsureTrained(cfg with { TextPretrainSteps = 0 }, data, dirPlain, options);
        Assert.False(SameWeights(a.Model.TextEncoder, plain.Model.TextEncoder), "pretraining left the text encoder as it was");
        Assert.Equal(10, a.TextPretraining?.Steps);
        Assert.Null(plain.TextPretraining);
        Assert.NotEqual(a.History.Loss, plain.History.Loss);

        var dirB = TestPaths.NewTempDir();
        var kill = options with { AfterStep = (stage, step) => { if (stage == "ldm" && step == 3) throw new OperationCanceledException("killed"); } };
        Assert.Throws<OperationCanceledException>(() => LatentDiffusionRuns.EnsureTrained(cfg, data, dirB, kill));
        var b = LatentDiffusionRuns.EnsureTrained(cfg, data, dirB, options);
        Assert.Equal(cfg.LdmSteps - 2, b.StepsTrained);
        Assert.Equal(a.History.Loss, b.History.Loss);
        Assert.True(SameWeights(a.Model.TextEncoder, b.Model.TextEncoder), "text encoder differs after resume");
        Assert.True(SameWeights(a.Model.Unet, b.Model.Unet), "UNet differs after resume");
        Assert.Equal(a.TextPretraining, b.TextPretraining);   // kept from the killed run, not run again
        Assert.Equal(a.TextPretraining, LatentDiffusionRuns.EnsureTrained(cfg, data, dirA, options).TextPretraining);   // and read back when finished
        foreach (var d in new[] { dirA, dirPlain, dirB }) TestPaths.DeleteQuietly(d);
    }

    [Fact]
    public void Phrasebook_statements_join_the_text_pretraining_only()
    {
        var cfg = Small with { LdmSteps = 2, TextPretrainSteps = 4, TextPretrainPhrases = 30 };
        var data = LdmTrainingData.FromPhantoms(cfg);
        var options = new LdmRunOptions { CheckpointEvery = 2 };
        var dir = TestPaths.NewTempDir();
        var dirPlain = TestPaths.NewTempDir();
        var a = LatentDiffusionRuns.EnsureTrained(cfg, data, dir, options);
        var plain = LatentDiffusionRuns.EnsureTrained(cfg with { TextPretrainPhrases = 0 }, data, dirPlain, options);
        Assert.Equal(data.Prompts.Count + 30, a.TextPretraining?.Prompts);
        Assert.Equal(data.Prompts.Count, plain.TextPretraining?.Prompts);
        Assert.False(SameWeights(a.Model.TextEncoder, plain.Model.TextEncoder), "the phrases changed nothing");
        Assert.Equal(cfg.LdmSteps, a.History.Steps);   // the denoiser's steps and data are the training images'
        // The setting is pinned with the run and written only when used.
        Assert.Contains("\"TextPretrainPhrases\": 30", File.ReadAllText(Path.Combine(dir, "experiment.json")), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("TextPretrainPhrases", File.ReadAllText(Path.Combine(dirPlain, "experiment.json")), StringComparison.OrdinalIgnoreCase);
        Assert.Throws<ArgumentException>(() => (cfg with { TextPretrainPhrases = -1 }).Validate());
        TestPaths.DeleteQuietly(dir);
        TestPaths.DeleteQuietly(dirPlain);
    }

    [Fact]
    public void A_tokenizer_that_learns_the_phrases_spells_them_in_fewer_pieces_and_is_the_same_on_resume()
    {
        var cfg = Small with { LdmSteps = 2, TextPretrainSteps = 4, TextPretrainPhrases = 200 };
        var data = LdmTrainingData.FromPhantoms(cfg);
        var options = new LdmRunOptions { CheckpointEvery = 1 };
        string dirPlain = TestPaths.NewTempDir(), dir = TestPaths.NewTempDir();
        var plain = LatentDiffusionRuns.EnsureTrained(cfg, data, dirPlain, options);
        var learned = cfg with { TokenizerLearnsPhrases = true };
        var t = LatentDiffusionRuns.EnsureTrained(learned with { LdmSteps = 1 }, data, dir, options);
        var phrases = RadiologyPhrasebook.Sentences(cfg.TextPretrainPhrases, cfg.Seed + 11);
        int Pieces(BpeTokenizer tok) => phrases.Sum(p => tok.Encode(p).Length);
        Assert.True(Pieces(t.Model.Tokenizer) < Pieces(plain.Model.Tokenizer),
            $"phrases in {Pieces(t.Model.Tokenizer)} pieces with the tokenizer that learned them, {Pieces(plain.Model.Tokenizer)} without");
        Assert.Contains("\"TokenizerLearnsPhrases\": true", File.ReadAllText(Path.Combine(dir, "experiment.json")), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("TokenizerLearnsPhrases", File.ReadAllText(Path.Combine(dirPlain, "experiment.json")), StringComparison.OrdinalIgnoreCase);
        // A resumed run rebuilds its tokenizer from the same prompts and phrases, so the token ids it trained on still hold.
        var resumed = LatentDiffusionRuns.EnsureTrained(learned, data, dir, options);
        Assert.Equal(2, resumed.History.Steps);
        Assert.All(phrases.Take(20), p => Assert.Equal(t.Model.Tokenizer.Encode(p), resumed.Model.Tokenizer.Encode(p)));
        TestPaths.DeleteQuietly(dir);
        TestPaths.DeleteQuietly(dirPlain);
    }

    [Fact]
    public void A_part_whose_config_does_not_fit_is_a_clear_error()
    {
        var dir = TestPaths.NewTempDir();
        var cfg = LdmExperimentConfig.Tiny;
        var prompts = LdmTrainingData.FromPhantoms(cfg with { TrainImages = 8 }).Prompts;
        string vaeDir = Path.Combine(dir, "vae-run", "vae"), unetDir = Path.Combine(dir, "unet-run", "unet"), textDir = Path.Combine(dir, "text-run");
        Checkpoint.Save(vaeDir, new AutoencoderKL(cfg.Vae), cfg.Vae);
        var narrowUnet = cfg.Unet with { CrossAttentionDim = 16 };
        Checkpoint.Save(unetDir, new UNet2DConditionModel(narrowUnet), narrowUnet);
        var tokenizer = BpeTokenizer.Train(prompts, cfg.TokenizerVocab);
        var textCfg = cfg.Text with { VocabSize = tokenizer.VocabSize, EndTokenId = tokenizer.EndId, MaxPositions = cfg.MaxTokens };
        Checkpoint.Save(Path.Combine(textDir, "text_encoder"), new ClipTextModel(textCfg), textCfg);
        var frozenVae = new LdmPartConfig { From = Path.Combine(dir, "vae-run"), Train = false };

        // UNet cross-attention width against the text encoder's hidden size: both folders and the field are named.
        var parts = new LdmPartsConfig { Vae = frozenVae, Unet = new LdmPartConfig { From = Path.Combine(dir, "unet-run") }, TextEncoder = new LdmPartConfig { From = textDir } };
        var ex = Assert.Throws<InvalidDataException>(() => LatentDiffusionModel.Build(cfg with { Parts = parts }, prompts));
        Assert.Contains("CrossAttentionDim", ex.Message);
        Assert.Contains(unetDir, ex.Message);
        Assert.Contains(textDir, ex.Message);
        Assert.Contains("16", ex.Message);

        // A VAE with other latent channels than the experiment's.
        var otherVae = Assert.Throws<InvalidDataException>(() => LatentDiffusionModel.Build(cfg with { Vae = cfg.Vae with { LatentChannels = 3 }, Parts = new LdmPartsConfig { Vae = frozenVae } }, prompts));
        Assert.Contains("LatentChannels", otherVae.Message);
        Assert.Contains(vaeDir, otherVae.Message);

        // Parts assembled by hand are checked too.
        var fit = Assert.Throws<InvalidDataException>(() => new LatentDiffusionModel(new AutoencoderKL(cfg.Vae), new ClipTextModel(textCfg), tokenizer,
            new UNet2DConditionModel(narrowUnet), cfg.Schedule, cfg.LatentSize, cfg.MaxTokens, new Dictionary<LdmPart, string> { [LdmPart.Unet] = unetDir }));
        Assert.Contains("CrossAttentionDim 16", fit.Message);
        Assert.Contains(unetDir, fit.Message);

        // Choices that cannot make a model, and a From folder without the part.
        Assert.Contains("Parts.Vae", Assert.Throws<ArgumentException>(() => (cfg with { Parts = new LdmPartsConfig { Vae = new LdmPartConfig { Train = false } } }).ValidateParts()).Message);
        Assert.Contains("nothing to train", Assert.Throws<ArgumentException>(() =>
            (cfg with { TrainTextEncoder = false, Parts = new LdmPartsConfig { Unet = new LdmPartConfig { Train = false } } }).ValidateParts()).Message);
        Assert.Contains("Parts.Unet.From", Assert.Throws<FileNotFoundException>(() =>
            LatentDiffusionModel.Build(cfg with { Parts = new LdmPartsConfig { Vae = frozenVae, Unet = new LdmPartConfig { From = textDir } } }, prompts)).Message);
        TestPaths.DeleteQuietly(dir);
    }

    [Fact]
    public void Stages_skip_when_finished_and_refuse_another_config_or_data()
    {
        var cfg = Small;
        var data = LdmTrainingData.FromPhantoms(cfg);
        var dir = TestPaths.NewTempDir();
        var ex0 = Assert.Throws<RoentGen.Platform.RunStateException>(() => LatentDiffusionRuns.TrainLdm(cfg, data, dir));
        Assert.Contains("VAE stage", ex0.Message);
        var first = LatentDiffusionRuns.EnsureTrained(cfg, data, dir);
        Assert.False(first.Skipped);
        Assert.Equal(cfg.LdmSteps, first.StepsTrained);
        var runJson = Path.Combine(LatentDiffusionRuns.LdmRunPath(dir), RunFolder.RunFile);
        var written = File.GetLastWriteTimeUtc(runJson);

        var again = LatentDiffusionRuns.EnsureTrained(cfg, data, dir);
        Assert.True(again.Skipped);
        Assert.Equal(0, again.StepsTrained);
        Assert.Equal(first.History.Loss, again.History.Loss);
        Assert.Equal(first.VaeHistory!.Loss, again.VaeHistory!.Loss);
        Assert.Equal(written, File.GetLastWriteTimeUtc(runJson));
        Assert.True(LatentDiffusionRuns.TrainVae(cfg, data, dir).Skipped);

        Assert.Contains("UnetLr", Assert.Throws<RoentGen.Platform.RunStateException>(() => LatentDiffusionRuns.TrainLdm(cfg with { UnetLr = 2e-3 }, data, dir)).Message);
        Assert.Contains("VaeLr", Assert.Throws<RoentGen.Platform.RunStateException>(() => LatentDiffusionRuns.TrainVae(cfg with { VaeLr = 1e-3 }, data, dir)).Message);
        var otherData = LdmTrainingData.FromPhantoms(cfg with { DataSeed = 2 });
        Assert.Contains("Data", Assert.Throws<RoentGen.Platform.RunStateException>(() => LatentDiffusionRuns.EnsureTrained(cfg, otherData, dir)).Message);
        Assert.Contains("Parts", Assert.Throws<RoentGen.Platform.RunStateException>(() =>
            LatentDiffusionRuns.TrainLdm(cfg with { Parts = new LdmPartsConfig { TextEncoder = new LdmPartConfig { Train = false } } }, data, dir)).Message);
        TestPaths.DeleteQuietly(dir);
    }

    [Fact]
    public void Parts_config_round_trips_through_json_and_its_defaults_are_the_plain_recipe()
    {
        var cfg = LdmExperimentConfig.Tiny with { Parts = new LdmPartsConfig { Vae = new LdmPartConfig { From = "runs/a", Train = false }, Unet = new LdmPartConfig { From = "b" } } };
        var path = Path.Combine(TestPaths.NewTempDir(), "experiment.json");
        File.WriteAllText(path, System.Text.Json.JsonSerializer.Serialize(cfg, SafeTensors.ConfigJsonOptions));
        var back = LdmExperimentConfig.Load(path);
        Assert.Equal(cfg.Parts, back.Parts);
        Assert.False(back.Trains(LdmPart.Vae));
        var plain = LdmExperimentConfig.Quick;
        Assert.True(plain.Trains(LdmPart.Vae) && plain.Trains(LdmPart.Tokenizer) && plain.Trains(LdmPart.Unet) && plain.Trains(LdmPart.TextEncoder));
        Assert.False((plain with { TrainTextEncoder = false }).Trains(LdmPart.TextEncoder));
        Assert.True((plain with { TrainTextEncoder = false, Parts = new LdmPartsConfig { TextEncoder = new LdmPartConfig { Train = true } } }).Trains(LdmPart.TextEncoder));
        TestPaths.DeleteQuietly(Path.GetDirectoryName(path)!);
    }

    [SkippableFact]
    public void Training_data_comes_from_the_records_of_any_labels_csv_folder()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real-cxr-sample is not beside this clone");
        var records = GenericCsvLoader.Load(TestPaths.RealSample!);
        var data = LdmTrainingData.FromRecords(records, 32, PromptSource.Impression);
        Assert.Equal([(long)records.Count, 1, 32, 32], data.Images.shape);
        Assert.True(data.Images.min().item<float>() >= -1f && data.Images.max().item<float>() <= 1f);
        Assert.Equal(records.Count, data.Prompts.Count);
        for (int i = 0; i < records.Count; i++)
            Assert.Equal(LdmTrainingData.PromptOf(records[i].Report, PromptSource.Impression), data.Prompts[i]);
        Assert.Contains(data.Prompts, p => p.Length > 0);
        Assert.Contains(records.Name, data.Source);
        var first = records.LoadImage(records[0], 32);
        Assert.True(RoentGen.Data.ImageTensors.Stack([first], -1f, 1f).eq(data.Images.narrow(0, 0, 1)).all().item<bool>());
        // The same through the CLI's --data value.
        Assert.Equal(data.Source, LdmTrainingData.From(TestPaths.RealSample!, LdmExperimentConfig.Tiny with { Prompt = PromptSource.Impression }).Source);
    }
}
