using RoentGen.Data.Phantoms;
using System.CommandLine;
using RoentGen.Diffusion;
using RoentGen.Evaluation;
using RoentGen.Platform;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen evaluate --checkpoint DIR [--json FILE]</c>: adherence, FID, KID and diversity of a trained text-to-CXR model.
/// Split over a cluster: <c>--samples S --shard i/N</c> samples shard i of the evaluation images into S
/// (<see cref="EvaluationSampleShards"/>), <c>roentgen merge S</c> checks them, and <c>--samples S</c> without
/// <c>--shard</c> evaluates on them.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Build()
    {
        var checkpoint = new Option<DirectoryInfo>("--checkpoint") { Description = "A trained experiment folder (roentgen train ldm --out, or the quickstart's experiment/).", Required = true };
        var classifier = new Option<DirectoryInfo?>("--classifier") { Description = "Proxy classifier folder (default: ../proxy next to the checkpoint, else CHECKPOINT/proxy, trained there when missing: the quick judge, 2,400 steps of 32 images on 4,000 phantoms)." };
        var json = new Option<FileInfo?>("--json") { Description = "Write the results as JSON to this file." };
        var perPrompt = new Option<int>("--images-per-prompt") { Description = "Images per adherence prompt.", DefaultValueFactory = _ => 8 };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 4.0 };
        var steps = new Option<int>("--steps") { Description = "Sampler steps.", DefaultValueFactory = _ => 20 };
        var scheduler = new Option<string>("--scheduler") { Description = "ddpm, ddim, dpmpp or euler.", DefaultValueFactory = _ => "dpmpp" };
        var compare = new Option<int>("--compare-images") { Description = "Images for the sampler-against-DDPM FID comparison (0: skip).", DefaultValueFactory = _ => 128 };
        var ddpmSteps = new Option<int>("--ddpm-steps") { Description = "Steps of the DDPM reference.", DefaultValueFactory = _ => 250 };
        var heldOut = new Option<int>("--held-out") { Description = "Real held-out phantoms (FID reference).", DefaultValueFactory = _ => 1000 };
        var noBaseline = new Option<bool>("--no-baseline") { Description = "Skip the untrained-UNet baseline." };
        var paraphrase = new Option<int>("--paraphrase-images-per-prompt")
        {
            Description = "Images per prompt of the held-out paraphrase set (prompts written apart from the report writer), scored beside the main set (0: skip).",
            DefaultValueFactory = _ => 3,
        };
        var samples = new Option<DirectoryInfo?>("--samples")
        {
            Description = "Folder of the evaluation images sampled as a sharded job: with --shard i/N, sample that shard there and stop; "
                          + "without, evaluate on the merged images there (roentgen merge first) instead of sampling them.",
        };
        var sidesOption = new Option<DirectoryInfo?>("--laterality-judge")
        {
            Description = "Side judge folder for the laterality check (trained there when missing). Default: the quickstart's laterality-judge/ next to the "
                          + "checkpoint when one is saved there, else the check is skipped.",
        };
        var shard = ShardOption.Create();
        var cmd = new Command("evaluate", "Evaluate a trained text-to-CXR model: prompt adherence per finding, FID/KID against held-out phantoms, MS-SSIM diversity, an untrained baseline and a DDPM reference.")
            { checkpoint, classifier, json, perPrompt, guidance, steps, scheduler, compare, ddpmSteps, heldOut, noBaseline, paraphrase, samples, shard, sidesOption };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var dir = parse.GetValue(checkpoint)!.FullName;
            var samplesDir = parse.GetValue(samples)?.FullName;
            var part = ShardOption.Get(parse, shard);
            if (part is not null && samplesDir is null) throw new ArgumentException("--shard needs --samples DIR (the folder every shard of the evaluation images writes into)");
            var jsonFile = parse.GetValue(json);
            if (jsonFile is not null && part is null) AtomicFile.EnsureWritable(jsonFile.FullName, "--json");
            var pipeline = LatentDiffusionRuns.LoadPipeline(dir);
            pipeline.TrimNativeHeapEvery = 0;   // many images, one model: speed over the last MBs (TextToImagePipeline.TrimNativeHeapEvery)
            if (part is not null)
            {
                var sampled = EvaluationSampleShards.Run(pipeline, SampleOptions(parse), dir, samplesDir!, part, line => Console.WriteLine(Cli.Escape(line)));
                Console.WriteLine(Cli.Escape(ShardOption.Describe(sampled, samplesDir!)));
                return;
            }
            var cfg = LatentDiffusionRuns.LoadConfig(dir);
            var proxyDir = parse.GetValue(classifier)?.FullName ?? DefaultClassifierDir(dir);
            Console.WriteLine($"proxy classifier: {proxyDir}");
            // A judge already in that folder (e.g. the quickstart's) is used as it is; else the default one is trained there.
            var proxy = ProxyFindingClassifier.LoadSavedOrTrain(proxyDir, cfg.ImageSize, steps: ProxyFindingClassifier.QuickJudgeSteps,
                seed: WorldSeeds.Judge(cfg.DataSeed), batchSize: ProxyFindingClassifier.QuickJudgeBatch);
            int n = parse.GetValue(heldOut);
            if (n < 2) throw new ArgumentException("--held-out must be at least 2");
            var (real, realLabels) = ProxyFindingClassifier.PhantomData(cfg.ImageSize, 0, n, WorldSeeds.HeldOut(cfg.DataSeed));
            int perParaphrase = parse.GetValue(paraphrase);
            if (perParaphrase < 0) throw new ArgumentException($"--paraphrase-images-per-prompt must be 0 (skip) or more, got {perParaphrase}");
            var options = SampleOptions(parse) with
            {
                SamplerComparisonImages = parse.GetValue(compare), DdpmSteps = parse.GetValue(ddpmSteps), UntrainedBaseline = !parse.GetValue(noBaseline),
                ParaphrasePrompts = perParaphrase > 0 ? ParaphrasePrompts.All : null, ParaphraseImagesPerPrompt = Math.Max(1, perParaphrase),
            };
            using var given = samplesDir is null ? null : EvaluationSampleShards.Load(samplesDir, options, dir);
            var sidesDir = parse.GetValue(sidesOption)?.FullName;
            var siblingSides = Path.Combine(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(dir)) ?? dir, "laterality-judge");
            if (sidesDir is null && ProxyFindingClassifier.IsSaved(siblingSides)) sidesDir = siblingSides;
            LateralityJudge? sides = null;
            IReadOnlyDictionary<RoentGen.Data.Observation, double>? sidesAccuracy = null;
            if (sidesDir is not null)
            {
                Console.WriteLine($"side judge: {sidesDir}");
                sides = LateralityJudge.LoadSavedOrTrain(sidesDir, cfg.ImageSize, seed: WorldSeeds.Judge(cfg.DataSeed));
                sidesAccuracy = sides.HeldOutAccuracy(cfg.ImageSize, n, WorldSeeds.HeldOut(cfg.DataSeed));
            }
            var result = DiffusionEvaluation.Run(pipeline, proxy, real, options, Console.WriteLine, given, sides, sidesAccuracy, realLabels);
            Cli.Print(result.Summary());
            if (result.Trained.Adherence is { } a) Cli.Print(a.ToDataFrame());
            if (result.Paraphrase is { } pa)
            {
                Console.WriteLine($"paraphrase prompts (written apart from the report writer): mean adherence AUC {pa.MeanAuc:F3}");
                Cli.Print(pa.ToDataFrame());
            }
            if (result.Laterality is { } side)
            {
                Console.WriteLine($"laterality: {side.Accuracy:P1} of {side.Images} images prompted with one finding on one side are on that side (judge_accuracy: the side judge on real phantoms)");
                Cli.Print(side.ToDataFrame());
            }
            foreach (var warning in result.Trained.Warnings) Console.Error.WriteLine($"warning: {Cli.Escape(warning)}");
            if (jsonFile is not null)
            {
                AtomicFile.WriteAllText(jsonFile.FullName, result.ToJson());
                Console.WriteLine($"wrote {Cli.Escape(jsonFile.FullName)}");
            }
        }));
        return cmd;

        // The settings that decide the evaluation images (a sharded sampling job hashes exactly these).
        DiffusionEvaluationOptions SampleOptions(ParseResult parse) => new()
        {
            ImagesPerPrompt = parse.GetValue(perPrompt), GuidanceScale = parse.GetValue(guidance), Steps = parse.GetValue(steps),
            Scheduler = NoiseScheduler.ParseKind(parse.GetValue(scheduler)!),
        };
    }

    internal static string DefaultClassifierDir(string checkpoint)
    {
        var sibling = Path.Combine(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(checkpoint)) ?? checkpoint, "proxy");
        return Directory.Exists(sibling) ? sibling : Path.Combine(checkpoint, "proxy");
    }
}
