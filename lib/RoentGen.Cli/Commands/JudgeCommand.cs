using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using RoentGen.Data.Phantoms;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using RoentGen.Platform;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen judge train --size S --out DIR</c> and <c>roentgen judge eval --model DIR --json F</c>: train the proxy
/// finding classifier (the judge) and report its held-out AUC on each prompted finding; <c>roentgen vae-eval --model
/// RUN_DIR --json F</c>: how faithfully a trained experiment's autoencoder reconstructs held-out phantoms (PSNR, SSIM,
/// judge-feature FID, and the judge's per-finding AUC on reconstructions against originals).
/// </summary>
internal static class JudgeCommand
{
    /// <summary>The verbs: judge (train, eval) and vae-eval.</summary>
    public static IEnumerable<Command> Build() => [BuildJudge(), BuildVaeEval()];

    private static Option<long> WorldOption(string what) => new("--world-seed")
    {
        Description = $"World seed of the {what} phantoms.",
        DefaultValueFactory = _ => what == "training" ? WorldSeeds.Judge(1) : WorldSeeds.HeldOut(1),
    };

    private static Command BuildJudge()
    {
        var size = new Option<int>("--size") { Description = "Input size in pixels (the training phantoms are drawn at this size).", DefaultValueFactory = _ => 64 };
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder of the judge (a finished run there is loaded, an interrupted one resumes).", Required = true };
        var arch = new Option<string>("--arch")
        {
            Description = "default: four stages [16, 32, 64, 128]; sharp: five thin stages [8, 16, 32, 64, 128] (ProxyClassifierConfig.Sharp128's); auto: sharp at 128 px and above, else default.",
            DefaultValueFactory = _ => "auto",
        };
        arch.AcceptOnlyFromAmong("auto", "default", "sharp");
        var images = new Option<int>("--images") { Description = "Training phantoms.", DefaultValueFactory = _ => 4000 };
        var steps = new Option<int>("--steps") { Description = "Training steps (default: the quick judge's).", DefaultValueFactory = _ => ProxyFindingClassifier.QuickJudgeSteps };
        var batch = new Option<int>("--batch") { Description = "Images per training step (default: the quick judge's).", DefaultValueFactory = _ => ProxyFindingClassifier.QuickJudgeBatch };
        var balance = new Option<double>("--balance")
        {
            Description = "Largest positive weight of the class-balanced loss (ProxyTrainingOptions.MaxPositiveWeight; 0: unweighted).",
            DefaultValueFactory = _ => 0,
        };
        var trainWorld = WorldOption("training");
        var heldOut = new Option<int>("--held-out") { Description = "Held-out phantoms to measure on after training (0: skip).", DefaultValueFactory = _ => 1000 };
        var heldWorld = new Option<long>("--held-out-seed") { Description = "World seed of the held-out phantoms.", DefaultValueFactory = _ => WorldSeeds.HeldOut(1) };
        var json = new Option<FileInfo?>("--json") { Description = "Write the held-out AUC per finding as JSON to this file." };
        var train = new Command("train", "Train the judge on phantoms (or load it when finished there) and measure its held-out AUC per prompted finding.")
            { size, outDir, arch, images, steps, batch, balance, trainWorld, heldOut, heldWorld, json };
        train.SetAction(parse => Cli.Run(parse, () =>
        {
            var dir = parse.GetValue(outDir)!.FullName;
            int s = parse.GetValue(size);
            var jsonFile = parse.GetValue(json);
            if (jsonFile is not null) AtomicFile.EnsureWritable(jsonFile.FullName, "--json");
            var config = parse.GetValue(arch) switch
            {
                "sharp" => ProxyClassifierConfig.Sharp128,
                "default" => new ProxyClassifierConfig(),
                _ => s >= 128 ? ProxyClassifierConfig.Sharp128 : new ProxyClassifierConfig(),
            };
            var clock = Stopwatch.StartNew();
            var judge = ProxyFindingClassifier.LoadOrTrain(dir, s, parse.GetValue(images), parse.GetValue(steps), parse.GetValue(trainWorld), config, parse.GetValue(balance), parse.GetValue(batch));
            double? seconds = TrainingSeconds(dir);
            Console.WriteLine(FormattableString.Invariant($"judge in {dir}: {judge.Config.InputSize} px, channels [{string.Join(", ", judge.Config.Channels)}]; trained in {seconds:F0} s (this call {clock.Elapsed.TotalSeconds:F0} s)"));
            int n = parse.GetValue(heldOut);
            if (n == 0) return;
            Measure(judge, n, parse.GetValue(heldWorld), jsonFile, seconds);
        }));

        var model = new Option<DirectoryInfo>("--model") { Description = "A judge folder (roentgen judge train --out, or the quickstart's proxy/).", Required = true };
        var evalImages = new Option<int>("--images") { Description = "Held-out phantoms.", DefaultValueFactory = _ => 1000 };
        var evalWorld = WorldOption("held-out");
        var evalJson = new Option<FileInfo?>("--json") { Description = "Write the AUC per finding as JSON to this file." };
        var eval = new Command("eval", "Held-out AUC of a trained judge on each prompted finding (phantoms of a world it was not trained on).")
            { model, evalImages, evalWorld, evalJson };
        eval.SetAction(parse => Cli.Run(parse, () =>
        {
            var jsonFile = parse.GetValue(evalJson);
            if (jsonFile is not null) AtomicFile.EnsureWritable(jsonFile.FullName, "--json");
            var dir = parse.GetValue(model)!.FullName;
            using var judge = ProxyFindingClassifier.Load(dir);
            Measure(judge, parse.GetValue(evalImages), parse.GetValue(evalWorld), jsonFile, TrainingSeconds(dir));
        }));
        return new Command("judge", "Train and measure the proxy finding classifier that judges prompt adherence.") { train, eval };
    }

    private static void Measure(ProxyFindingClassifier judge, int n, long world, FileInfo? jsonFile, double? trainSeconds)
    {
        if (n < 2) throw new ArgumentException($"--images/--held-out must be at least 2, got {n}");
        using var scope = TorchSharp.torch.NewDisposeScope();
        var (x, y) = ProxyFindingClassifier.PhantomData(judge.Config.InputSize, 0, n, world);
        var report = JudgeReport.Measure(judge, x, y, world) with { TrainSeconds = trainSeconds };
        PrintLines(report.Summary());
        if (jsonFile is null) return;
        AtomicFile.WriteAllText(jsonFile.FullName, report.ToJson());
        Console.WriteLine($"wrote {Cli.Escape(jsonFile.FullName)}");
    }

    private static void PrintLines(string text)
    {
        foreach (var line in text.Split(Environment.NewLine)) Console.WriteLine(Cli.Escape(line));
    }

    // The judge run's recorded training time (folder/run/run.json), or null when it has none.
    private static double? TrainingSeconds(string folder)
    {
        var file = Path.Combine(folder, "run", RoentGen.Training.RunFolder.RunFile);
        if (!File.Exists(file)) return null;
        try { return JsonNode.Parse(File.ReadAllText(file))?["Seconds"]?.GetValue<double>(); }
        catch (System.Text.Json.JsonException) { return null; }
    }

    private static Command BuildVaeEval()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "An experiment folder (roentgen train ldm --out, the quickstart's experiment/), or one whose VAE stage has finished.", Required = true };
        var judgeDir = new Option<DirectoryInfo?>("--judge") { Description = "Judge folder (default: ../proxy next to the experiment, else MODEL/proxy)." };
        var images = new Option<int>("--images") { Description = "Held-out phantoms.", DefaultValueFactory = _ => 1000 };
        var world = new Option<long?>("--world-seed") { Description = "World seed of the held-out phantoms (default: the experiment's held-out world)." };
        var json = new Option<FileInfo?>("--json") { Description = "Write the results as JSON to this file." };
        var cmd = new Command("vae-eval", "Reconstruction fidelity of an experiment's autoencoder: PSNR, SSIM, judge-feature FID, and the judge's AUC per prompted finding on reconstructions against originals.")
            { model, judgeDir, images, world, json };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var jsonFile = parse.GetValue(json);
            if (jsonFile is not null) AtomicFile.EnsureWritable(jsonFile.FullName, "--json");
            var dir = parse.GetValue(model)!.FullName;
            var cfg = ReadExperimentConfig(dir);
            var vaeDir = Path.Combine(dir, LatentDiffusionModel.VaeFolder);
            if (!File.Exists(Path.Combine(vaeDir, RoentGen.Training.Checkpoint.WeightsFileName)))
                throw new FileNotFoundException($"{dir} holds no trained VAE: {vaeDir} has no {RoentGen.Training.Checkpoint.WeightsFileName}", vaeDir);
            using var vae = LatentDiffusionModel.LoadVae(vaeDir, cfg.Vae, "the experiment's VAE");
            var proxyDir = parse.GetValue(judgeDir)?.FullName ?? EvaluateCommand.DefaultClassifierDir(dir);
            if (!ProxyFindingClassifier.IsSaved(proxyDir))
                throw new FileNotFoundException($"no judge in {proxyDir}: pass --judge DIR (roentgen judge train --out DIR makes one)", proxyDir);
            using var judge = ProxyFindingClassifier.Load(proxyDir);
            int n = parse.GetValue(images);
            if (n < 2) throw new ArgumentException($"--images must be at least 2, got {n}");
            long seed = parse.GetValue(world) ?? WorldSeeds.HeldOut(cfg.DataSeed);
            Console.WriteLine(FormattableString.Invariant($"VAE {vaeDir} ({cfg.ImageSize} px, {cfg.Vae.LatentChannels} latent channels); judge {proxyDir} ({judge.Config.InputSize} px); {n} held-out phantoms of world {seed}"));
            using var scope = TorchSharp.torch.NewDisposeScope();
            var (x, y) = ProxyFindingClassifier.PhantomData(cfg.ImageSize, 0, n, seed);
            var clock = Stopwatch.StartNew();
            var result = ReconstructionFidelity.Measure(vae, judge, x, y);
            PrintLines(result.Summary());
            Console.WriteLine(FormattableString.Invariant($"measured in {clock.Elapsed.TotalSeconds:F0} s"));
            if (jsonFile is null) return;
            AtomicFile.WriteAllText(jsonFile.FullName, result.ToJson());
            Console.WriteLine($"wrote {Cli.Escape(jsonFile.FullName)}");
        }));
        return cmd;
    }

    // experiment.json of a trained experiment, else the config pinned by its VAE stage (a folder whose denoiser has not run).
    private static LdmExperimentConfig ReadExperimentConfig(string dir)
    {
        if (File.Exists(Path.Combine(dir, LatentDiffusionRuns.ConfigFile))) return LatentDiffusionRuns.LoadConfig(dir);
        var stage = RoentGen.Training.RunFolder.ReadPinned<VaeStageConfig>(LatentDiffusionRuns.VaeRunPath(dir))
            ?? throw new FileNotFoundException($"{dir} is neither a trained experiment (no {LatentDiffusionRuns.ConfigFile}) nor one whose VAE stage ran (no {LatentDiffusionRuns.VaeRunPath(dir)}/config.json)");
        return new LdmExperimentConfig { ImageSize = stage.ImageSize, Vae = stage.Vae, Seed = stage.Seed };
    }
}
