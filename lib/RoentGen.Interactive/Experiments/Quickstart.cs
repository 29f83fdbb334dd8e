using System.Diagnostics;
using System.Text;
using System.Text.Json;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Interactive;
using RoentGen.Interactive.Notebooks;
using RoentGen.Diffusion;
using RoentGen.Text;
using RoentGen.Evaluation;
using RoentGen.Platform;
using RoentGen.Training;
using static TorchSharp.torch;

namespace RoentGen.Experiments;

/// <summary>Settings of the main job.</summary>
public sealed record QuickstartOptions
{
    /// <summary>Output folder.</summary>
    public string OutputDir { get; init; } = Path.Combine("data", "generated", "quickstart");
    /// <summary>Phantoms written to disk.</summary>
    public int PhantomCount { get; init; } = 500;
    /// <summary>Phantom image side.</summary>
    public int ImageSize { get; init; } = 128;
    /// <summary>Reports checked for labeler exactness.</summary>
    public int LabelerReports { get; init; } = 5000;
    /// <summary>World seed.</summary>
    public long Seed { get; init; } = 1;
    /// <summary>Folder of the notebooks to execute (null: none).</summary>
    public string? NotebookDir { get; init; }
    /// <summary>
    /// The notebooks the job executes with their default parameters: the quick ones. Training notebooks take
    /// minutes to hours at their defaults; the tests run them at tiny sizes.
    /// </summary>
    public IReadOnlyList<string> Notebooks { get; init; } = ["00-getting-started.ipynb", "01-data-tour.ipynb"];
    /// <summary>The real sample folder (labels.csv, iu_xray_reports_sample.csv), when present.</summary>
    public string? RealSampleDir { get; init; }
    /// <summary>Train and evaluate the text-to-CXR latent diffusion model (the RoentGen part); false: the data stages only.</summary>
    public bool Diffusion { get; init; } = true;
    /// <summary>The latent diffusion experiment (VAE, text encoder, UNet and their training).</summary>
    public LdmExperimentConfig Ldm { get; init; } = LdmExperimentConfig.Quick;
    /// <summary>Phantoms the proxy finding classifier trains on (a world of its own: <see cref="RoentGen.Data.Phantoms.WorldSeeds.Judge"/>).</summary>
    public int ProxyImages { get; init; } = 4000;
    /// <summary>
    /// Proxy classifier training steps (<see cref="ProxyFindingClassifier.QuickJudgeSteps"/>, with why). The judge of
    /// 600 steps of 64 that s16 used held the s16 quickstart model's adherence at 0.643; under this one it scores 0.703.
    /// </summary>
    public int ProxySteps { get; init; } = ProxyFindingClassifier.QuickJudgeSteps;
    /// <summary>Proxy classifier images per training step.</summary>
    public int ProxyBatch { get; init; } = ProxyFindingClassifier.QuickJudgeBatch;
    /// <summary>Shape of the proxy classifier (null: default, at the experiment's image size).</summary>
    public ProxyClassifierConfig? Proxy { get; init; }
    /// <summary>
    /// Phantoms of the judge's world the side judge (<see cref="LateralityJudge"/>) reads; only those showing a lateralised
    /// finding are kept. 0 (the quick preset's default: it costs about as much as the judge) skips the laterality check;
    /// the study preset turns it on.
    /// </summary>
    public int LateralityImages { get; init; }
    /// <summary>Side judge training steps.</summary>
    public int LateralitySteps { get; init; } = 400;
    /// <summary>Real held-out phantoms (<see cref="RoentGen.Data.Phantoms.WorldSeeds.HeldOut"/>): the FID reference and the proxy classifier's test set.</summary>
    public int HeldOutImages { get; init; } = 1000;
    /// <summary>Seeds (columns) of the prompt grid.</summary>
    public int GridSeeds { get; init; } = 4;
    /// <summary>
    /// Evaluation settings (adherence prompt set, the held-out paraphrase set <see cref="ParaphrasePrompts.All"/>,
    /// baselines, sampler comparison; 32 images per sampling batch: on 2 cores 12 float32 / 18 bfloat16 images/s of the quick
    /// model against 11 / 15 at 16 and 7 / 8 at 64. Each image's noise comes from its own seed, so the batch size does not
    /// change the images).
    /// </summary>
    public DiffusionEvaluationOptions Evaluation { get; init; } = new() { SamplerComparisonImages = 64, ParaphrasePrompts = ParaphrasePrompts.All, BatchSize = 32 };
}

/// <summary>What the main job measured.</summary>
public sealed record QuickstartResult
{
    /// <summary>The machine.</summary>
    public required DoctorReport Machine { get; init; }
    /// <summary>Phantom generation speed at 128x128.</summary>
    public required double PhantomImagesPerSecond128 { get; init; }
    /// <summary>Phantoms written.</summary>
    public required int PhantomsWritten { get; init; }
    /// <summary>Reports labelled.</summary>
    public required int LabelerReports { get; init; }
    /// <summary>Reports whose 14 labels the labeler recovered exactly.</summary>
    public required int LabelerExact { get; init; }
    /// <summary>Per-finding agreement with the human tags of the real IU reports, when the sample is there.</summary>
    public IReadOnlyList<AgreementRow>? IuAgreement { get; init; }
    /// <summary>Macro F1 over <see cref="IuAgreement"/>.</summary>
    public double? IuMacroF1 { get; init; }
    /// <summary>Macro F1 on the held-out half of the IU reports (<see cref="IuReportSplit"/>, odd uids): reports the labeler's rules were not developed against.</summary>
    public double? IuHeldOutMacroF1 { get; init; }
    /// <summary>Executed notebooks and whether each ran clean.</summary>
    public IReadOnlyDictionary<string, bool> Notebooks { get; init; } = new Dictionary<string, bool>();
    /// <summary>Wall time of the whole job.</summary>
    public double Seconds { get; init; }
    /// <summary>Wall time of each stage, in order.</summary>
    public IReadOnlyDictionary<string, double> StageSeconds { get; init; } = new Dictionary<string, double>();
    /// <summary>The diffusion part (null when <see cref="QuickstartOptions.Diffusion"/> is off).</summary>
    public DiffusionQuickstartResult? Diffusion { get; init; }
}

/// <summary>What the diffusion part of the main job measured.</summary>
public sealed record DiffusionQuickstartResult
{
    /// <summary>The experiment that was trained.</summary>
    public required LdmExperimentConfig Config { get; init; }
    /// <summary>Held-out AUC of the proxy classifier per finding (the judge's own accuracy).</summary>
    public required IReadOnlyList<FindingAuc> ProxyHeldOutAuc { get; init; }
    /// <summary>Mean of the defined <see cref="ProxyHeldOutAuc"/>.</summary>
    public double ProxyMeanAuc => ProxyHeldOutAuc.Where(a => double.IsFinite(a.Auc)).Select(a => a.Auc).DefaultIfEmpty(double.NaN).Average();
    /// <summary>Final (last-20-step mean) VAE loss.</summary>
    public double VaeFinalLoss { get; init; }
    /// <summary>The VAE's latent scaling factor measured on the training data.</summary>
    public double LatentScalingFactor { get; init; }
    /// <summary>Final (last-50-step mean) denoiser loss.</summary>
    public double LdmFinalLoss { get; init; }
    /// <summary>Denoiser training speed over the whole run.</summary>
    public double LdmTrainImagesPerSecond { get; init; }
    /// <summary>The arithmetic the VAE and the denoiser trained in: "fp32" or "bf16" (the config's Precision resolved on this machine).</summary>
    public string TrainingPrecision { get; init; } = "";
    /// <summary>The text encoder's pretraining before the denoiser (<see cref="LdmExperimentConfig.TextPretrainSteps"/>); null when none ran.</summary>
    public TextPretrainingResult? TextPretraining { get; init; }
    /// <summary>The evaluation (adherence, FID, KID, MS-SSIM, untrained baseline, sampler comparison) as JSON.</summary>
    public required System.Text.Json.JsonElement Evaluation { get; init; }
    /// <summary>Mean adherence AUC on the writer-phrased prompt set (<see cref="PromptAdherence.DefaultPrompts"/> unless the options give another).</summary>
    [System.Text.Json.Serialization.JsonPropertyName("adherence_writer_mean_auc")]
    public double AdherenceWriterMeanAuc { get; init; } = double.NaN;
    /// <summary>Mean adherence AUC on the held-out paraphrase prompts (<see cref="ParaphrasePrompts.All"/>); NaN when not evaluated.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("adherence_paraphrase_mean_auc")]
    public double AdherenceParaphraseMeanAuc { get; init; } = double.NaN;
    /// <summary>
    /// The judge's ceiling for the writer-prompt measure: real held-out phantoms showing exactly what each prompt names,
    /// scored as if generated from it (<see cref="PromptAdherence.JudgeCeiling"/>); NaN when not measured.
    /// </summary>
    [System.Text.Json.Serialization.JsonPropertyName("judge_ceiling_mean_auc")]
    public double JudgeCeilingMeanAuc { get; init; } = double.NaN;
    /// <summary>Adherence AUC per finding on the paraphrase prompts (finding name to AUC); empty when not evaluated.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("adherence_paraphrase_auc")]
    public IReadOnlyDictionary<string, double> AdherenceParaphraseAuc { get; init; } = new Dictionary<string, double>();
    /// <summary>
    /// Fraction of the writer-prompt images that name one lateralised finding on one side whose finding the side judge puts
    /// on that side (target at least 0.9); NaN without the check.
    /// </summary>
    [System.Text.Json.Serialization.JsonPropertyName("laterality_accuracy")]
    public double LateralityAccuracy { get; init; } = double.NaN;
    /// <summary>
    /// The same over the findings whose side the side judge reads reliably on real phantoms
    /// (<see cref="LateralityResult.ReliableAccuracy"/>); NaN without the check.
    /// </summary>
    [System.Text.Json.Serialization.JsonPropertyName("laterality_reliable_accuracy")]
    public double LateralityReliableAccuracy { get; init; } = double.NaN;
    /// <summary>The side judge's own accuracy per finding on real held-out phantoms with the finding on one side (its ceiling).</summary>
    [System.Text.Json.Serialization.JsonPropertyName("laterality_judge_accuracy")]
    public IReadOnlyDictionary<string, double> LateralityJudgeAccuracy { get; init; } = new Dictionary<string, double>();
}

/// <summary>
/// The main job on the built-in data. Checks the machine, builds the phantom world and measures the report labeler;
/// then the RoentGen part: trains a proxy finding classifier (the judge), the autoencoder and the text-conditioned
/// latent diffusion model, samples a grid of prompts over several seeds, evaluates adherence, FID, KID and diversity
/// against an untrained baseline and a many-step DDPM reference, runs the quick notebooks headless, and writes
/// report.html and metrics.json. Every training stage checkpoints under the output folder, so a rerun resumes.
/// </summary>
public static class Quickstart
{
    /// <summary>
    /// The small prompt-grid PNG (first six prompts at the model's resolution) the quickstart writes beside
    /// prompt-grid.png; the README shows a copy of it from docs/images/.
    /// </summary>
    public const string ThumbnailFile = "prompt-grid-thumb.png";

    /// <summary>
    /// Prompts of the sample grid: normal, each finding, left against right, small against large, phrased as the
    /// phantom reports phrase them.
    /// </summary>
    public static IReadOnlyList<(string Label, string Prompt)> GridPrompts { get; } =
    [
        ("normal", "No acute cardiopulmonary process."),
        ("cardiomegaly", "Moderate cardiomegaly."),
        ("small L effusion", "Small left pleural effusion."),
        ("large L effusion", "Large left pleural effusion."),
        ("large R effusion", "Large right pleural effusion."),
        ("small R apical PTX", "Small right apical pneumothorax."),
        ("large R PTX", "Large right pneumothorax."),
        ("large L PTX", "Large left pneumothorax."),
        ("RLL consolidation", "Right lower lobe consolidation."),
        ("LLL consolidation", "Left lower lobe consolidation."),
        ("edema", "Moderate pulmonary edema."),
        ("RUL 4 cm mass", "There is a 4 cm mass in the right upper lobe."),
        ("L basal atelectasis", "Left basilar atelectasis."),
        ("ET tube", "Endotracheal tube terminates 4 cm above the carina."),
        ("L 6th rib fracture", "Acute fracture of the left 6th rib."),
    ];

    /// <summary>
    /// The same job at toy sizes (seconds of training, a handful of images): checks that everything runs and writes
    /// its outputs; its numbers mean nothing.
    /// </summary>
    public static QuickstartOptions TinyOptions(QuickstartOptions o) => o with
    {
        PhantomCount = Math.Min(o.PhantomCount, 20), LabelerReports = 200,
        Ldm = LdmExperimentConfig.Tiny with { VaeSteps = 4, LdmSteps = 4 },
        ProxyImages = 64, ProxySteps = 4, HeldOutImages = 16, GridSeeds = 2, LateralityImages = 64, LateralitySteps = 4,
        Evaluation = o.Evaluation with { ImagesPerPrompt = 1, ParaphraseImagesPerPrompt = 1, Steps = 4, SamplerComparisonImages = 4, DdpmSteps = 8 },
    };

    /// <summary>
    /// The study preset (<c>roentgen quickstart --preset study</c>): <see cref="LdmExperimentConfig.Study"/> (longer
    /// training, class-balanced sampling, varied report wording, positive-findings prompts; see its levers), a judge
    /// trained four times as long as the quick one on three times the phantoms (12,000 phantoms, 2,400 steps), more images per prompt for adherence on both the writer's and the
    /// paraphrase prompts, and the laterality check: a side judge (<see cref="LateralityJudge"/>) on the lateralised
    /// findings of 20,000 phantoms (for the one-channel judge, 20,000 rather than 6,000 raised its held-out side accuracy for
    /// fractures from 0.44 to 0.63 and lesions from 0.82 to 0.85; about 2-3 minutes). Sized for about 75 minutes on 2 cores
    /// with bfloat16 training.
    /// </summary>
    public static QuickstartOptions StudyOptions(QuickstartOptions o) => o with
    {
        Ldm = LdmExperimentConfig.Study,
        ProxyImages = 12000, ProxySteps = 2400, ProxyBatch = 64, HeldOutImages = 1000, GridSeeds = 4, LateralityImages = 20000, LateralitySteps = 600,
        Evaluation = o.Evaluation with { ImagesPerPrompt = 16, ParaphraseImagesPerPrompt = 6, SamplerComparisonImages = 64, ParaphrasePrompts = ParaphrasePrompts.All },
    };

    /// <summary>Runs the job; every output goes under <see cref="QuickstartOptions.OutputDir"/>.</summary>
    public static async Task<QuickstartResult> RunAsync(QuickstartOptions o, TextWriter? log = null)
    {
        log ??= Console.Out;
        var sw = Stopwatch.StartNew();
        var stages = new Dictionary<string, double>();
        var stageClock = Stopwatch.StartNew();
        int total = o.Diffusion ? 10 : 5, stage = 0;
        string lastStage = "";
        void Stage(string name)
        {
            if (stage > 0) stages[lastStage] = stageClock.Elapsed.TotalSeconds;
            stageClock.Restart();
            lastStage = name;
            log.WriteLine($"{++stage}/{total} {name}");
        }
        Directory.CreateDirectory(o.OutputDir);
        var report = new HtmlReport("RoentGen.Notebooks quickstart");

        Stage("checking the machine");
        var machine = Doctor.Run(measure: true);
        if (!machine.LibTorchLoaded) throw new InvalidOperationException($"libtorch could not be loaded: {machine.LoadError}");
        AtomicFile.WriteAllText(Path.Combine(o.OutputDir, "doctor.json"), machine.ToJson());

        Stage("generating the phantom world");
        var bench = PhantomBenchmark.Run(128, 1000);
        var options = new PhantomOptions { Size = o.ImageSize, Seed = o.Seed };
        var written = PhantomDataset.WriteFolder(Path.Combine(o.OutputDir, "phantoms"), options, o.PhantomCount);
        var generator = new PhantomGenerator(options);
        var sample = generator.Generate(0, Math.Min(400, o.PhantomCount));   // for the gallery and the label chart
        var gallery = DataTour.FindingGallery(sample, perFinding: 4);
        File.WriteAllBytes(Path.Combine(o.OutputDir, "gallery.png"), gallery.ToPng());

        Stage("measuring the report labeler");
        var labeler = new ReportLabeler();
        int exact = 0;
        Parallel.For(0, o.LabelerReports, () => 0, (i, _, local) =>
        {
            var (_, rep) = generator.GenerateReport(i);
            return labeler.Label(rep.Text).Equals(rep.Labels) ? local + 1 : local;
        }, local => Interlocked.Add(ref exact, local));
        IReadOnlyList<AgreementRow>? iu = null;
        var iuCsv = o.RealSampleDir is null ? null : Path.Combine(o.RealSampleDir, "iu_xray_reports_sample.csv");
        double? iuHeldOut = null;
        if (iuCsv is not null && File.Exists(iuCsv))
        {
            var iuTable = Csv.ReadFile(iuCsv);
            iu = LabelerAgreement.EvaluateIu(iuTable, labeler);
            iuHeldOut = LabelerAgreement.MacroF1(LabelerAgreement.EvaluateIu(iuTable, labeler, IuHalf.HeldOut));
        }

        var partial = new QuickstartResult
        {
            Machine = machine,
            PhantomImagesPerSecond128 = bench.ImagesPerSecond,
            PhantomsWritten = written.Count,
            LabelerReports = o.LabelerReports,
            LabelerExact = exact,
            IuAgreement = iu,
            IuMacroF1 = iu is null ? null : LabelerAgreement.MacroF1(iu),
            IuHeldOutMacroF1 = iuHeldOut,
        };
        WorldSection(report, partial, gallery, sample);
        RealComparisonSection(report, o, sample);

        DiffusionQuickstartResult? diffusion = null;
        if (o.Diffusion) diffusion = RunDiffusion(o, report, Stage, log);

        var notebooks = new Dictionary<string, bool>();
        Stage("running the notebooks headless");
        if (o.NotebookDir is not null)
        {
            var nbOut = Path.Combine(o.OutputDir, "notebooks");
            Directory.CreateDirectory(nbOut);
            // What the notebooks write to their temp folders (trained models, datasets) stays inside this run's folder.
            var scratch = Path.Combine(nbOut, "scratch");
            Directory.CreateDirectory(scratch);
            var environment = new Dictionary<string, string> { ["TMPDIR"] = scratch };
            foreach (var path in o.Notebooks.Select(n => Path.Combine(o.NotebookDir, n)))
            {
                if (!File.Exists(path)) throw new FileNotFoundException($"notebook not found: {path}", path);
                var runner = new NotebookRunner(new NotebookRunOptions { WorkingDirectory = o.NotebookDir, Environment = environment });
                var executed = Path.Combine(nbOut, Path.GetFileName(path));
                var result = await runner.RunFileAsync(path, executed);
                // The executed notebook as a page a reader opens without a kernel (plotly.js once per page).
                AtomicFile.WriteAllText(Path.ChangeExtension(executed, ".html"), NotebookHtml.ToPage(result.Notebook));
                notebooks[Path.GetFileName(path)] = !result.AnyFailed;
                log.WriteLine($"   {Path.GetFileName(path)}: {(result.AnyFailed ? "FAILED" : "ok")}");
            }
            report.Heading("Notebooks")
                  .Paragraph("Run in the real .NET Interactive kernel (dotnet-interactive " + KernelProcess.PinnedVersion + "); each link is the executed notebook as one page.")
                  .Raw("<ul>" + string.Concat(notebooks.Select(kv =>
                      $"<li><a href=\"notebooks/{System.Net.WebUtility.HtmlEncode(Path.ChangeExtension(kv.Key, ".html"))}\">notebooks/{System.Net.WebUtility.HtmlEncode(kv.Key)}</a>: {(kv.Value ? "ran clean" : "FAILED")}</li>")) + "</ul>");
        }

        Stage("writing the report");
        stages[lastStage] = stageClock.Elapsed.TotalSeconds;
        var res = partial with { Notebooks = notebooks, Seconds = sw.Elapsed.TotalSeconds, StageSeconds = stages, Diffusion = diffusion };
        report.Heading("Time").Paragraph($"Finished in {res.Seconds:F0} s on {Environment.ProcessorCount} cores ({get_num_threads()} torch threads).")
              .Raw("<table><tr><th>stage</th><th>seconds</th></tr>" + string.Concat(stages.Select(kv => $"<tr><td>{kv.Key}</td><td>{kv.Value:F1}</td></tr>")) + "</table>")
              .Heading("Machine").Add(machine.ToDataFrame());
        AtomicFile.WriteAllText(Path.Combine(o.OutputDir, "metrics.json"), JsonSerializer.Serialize(res, MetricsJson));
        report.Save(Path.Combine(o.OutputDir, "report.html"));
        return res;
    }

    private static readonly JsonSerializerOptions MetricsJson = new()
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    private static DiffusionQuickstartResult RunDiffusion(QuickstartOptions o, HtmlReport report, Action<string> stage, TextWriter log)
    {
        var cfg = o.Ldm;
        string expDir = Path.Combine(o.OutputDir, "experiment"), proxyDir = Path.Combine(o.OutputDir, "proxy");
        using var scope = NewDisposeScope();

        stage("training the proxy finding classifier (the judge)");
        var (heldOut, heldOutLabels) = ProxyFindingClassifier.PhantomData(cfg.ImageSize, 0, o.HeldOutImages, WorldSeeds.HeldOut(o.Seed));
        var proxy = ProxyFindingClassifier.LoadOrTrain(proxyDir, cfg.ImageSize, o.ProxyImages, o.ProxySteps, WorldSeeds.Judge(o.Seed), o.Proxy, batchSize: o.ProxyBatch);
        var proxyAuc = proxy.Evaluate(heldOut, heldOutLabels);
        log.WriteLine($"   proxy classifier held-out mean AUC {proxyAuc.Where(a => double.IsFinite(a.Auc)).Average(a => a.Auc):F3}");
        LateralityJudge? sides = null;
        IReadOnlyDictionary<Observation, double>? sideAccuracy = null;
        if (o.LateralityImages > 0)
        {
            sides = LateralityJudge.LoadOrTrain(Path.Combine(o.OutputDir, "laterality-judge"), cfg.ImageSize, o.LateralityImages, o.LateralitySteps, WorldSeeds.Judge(o.Seed));
            sideAccuracy = sides.HeldOutAccuracy(cfg.ImageSize, o.HeldOutImages, WorldSeeds.HeldOut(o.Seed));
            log.WriteLine("   side judge held-out accuracy: " + string.Join(", ", sideAccuracy.Select(kv => $"{Observations.Name(kv.Key)} {kv.Value:F2}")));
        }

        stage("training the autoencoder (VAE)");
        var data = LdmTrainingData.FromPhantoms(cfg);
        var (vae, vaeHistory) = LatentDiffusionRuns.TrainVae(cfg, data, expDir);
        Tensor recon;
        using (no_grad())
        {
            vae.eval();
            recon = vae.Decode(vae.Encode(heldOut.narrow(0, 0, 8)).Mean).clamp(-1, 1);
        }
        var reconGrid = ImageGrid.FromTensor(cat([heldOut.narrow(0, 0, 8), recon], 0), columns: 8, title: "held-out phantoms (top) and their VAE reconstructions (bottom)");

        stage("training the text-conditioned latent diffusion model");
        var ldmClock = Stopwatch.StartNew();
        var ldm = LatentDiffusionRuns.TrainLdm(cfg, data, expDir);
        var ldmHistory = ldm.History;
        double ldmSeconds = ldmClock.Elapsed.TotalSeconds;
        // Hundreds of images from a small model: the heap is not trimmed between steps (about 4x faster sampling here,
        // at a peak of about 1.8x the weights plus one UNet call, some 80 MB; see TextToImagePipeline.TrimNativeHeapEvery).
        var pipeline = ldm.Model.ToPipeline();
        pipeline.TrimNativeHeapEvery = 0;
        // Sampled in the arithmetic the model trained in (Auto: bfloat16 UNet calls where the CPU has AVX-512 BF16; the
        // latents, guidance, scheduler, text encoder and decoder stay float32).
        pipeline.Precision = cfg.Precision;

        stage("sampling the prompt grid");
        var gridPrompts = GridPrompts.SelectMany(p => Enumerable.Repeat(p.Prompt, o.GridSeeds)).ToList();
        var gridImages = pipeline.Sample(new SampleRequest { Prompts = gridPrompts, Seed = 1, BatchSize = 16, GuidanceScale = o.Evaluation.GuidanceScale });
        // Shown at 128 px or more so that the row labels fit under the images (L/R: the patient's side).
        var shown = gridImages.shape[2] < 128 ? nn.functional.interpolate(gridImages, size: [128, 128], mode: InterpolationMode.Bilinear, align_corners: false) : gridImages;
        var captions = Enumerable.Range(0, gridPrompts.Count).Select(i => i % o.GridSeeds == 0 ? GridPrompts[i / o.GridSeeds].Label : $"seed {i % o.GridSeeds + 1}").ToList();
        var grid = ImageGrid.FromTensor(shown, columns: o.GridSeeds, captions: captions,
            title: $"DPM-Solver++ 20 steps, guidance {o.Evaluation.GuidanceScale}; rows: prompts");
        AtomicFile.WriteAllBytes(Path.Combine(o.OutputDir, "prompt-grid.png"), grid.ToPng());
        // A small copy for the README's thumbnail (well under 200 KB): the first six prompts at the model's own resolution.
        int thumbImages = Math.Min(6, GridPrompts.Count) * o.GridSeeds;
        var thumb = ImageGrid.FromTensor(gridImages.narrow(0, 0, Math.Min(thumbImages, gridImages.shape[0])), columns: o.GridSeeds,
            captions: captions.Take(thumbImages), title: "prompt grid (rows: prompts)");
        AtomicFile.WriteAllBytes(Path.Combine(o.OutputDir, ThumbnailFile), thumb.ToPng());

        stage("evaluating: adherence, FID, KID, diversity, baselines");
        var eval = DiffusionEvaluation.Run(pipeline, proxy, heldOut, o.Evaluation, line => log.WriteLine("   " + line), sides: sides, sideJudgeAccuracy: sideAccuracy,
            realLabels: heldOutLabels);
        AtomicFile.WriteAllText(Path.Combine(o.OutputDir, "evaluation.json"), eval.ToJson());

        var result = new DiffusionQuickstartResult
        {
            Config = cfg,
            ProxyHeldOutAuc = proxyAuc,
            VaeFinalLoss = TailMean(vaeHistory.Loss, 20),
            LatentScalingFactor = vae.Config.ScalingFactor,
            LdmFinalLoss = TailMean(ldmHistory.Loss, 50),
            LdmTrainImagesPerSecond = ldmSeconds > 0 && ldm.StepsTrained > 0 ? ldm.StepsTrained * (double)cfg.LdmBatch / ldmSeconds : double.NaN,
            TrainingPrecision = Precisions.ToShortName(Precisions.Resolve(cfg.Precision)),
            TextPretraining = ldm.TextPretraining,
            Evaluation = JsonDocument.Parse(eval.ToJson()).RootElement.Clone(),
            AdherenceWriterMeanAuc = eval.Trained.Adherence?.MeanAuc ?? double.NaN,
            AdherenceParaphraseMeanAuc = eval.Paraphrase?.MeanAuc ?? double.NaN,
            JudgeCeilingMeanAuc = eval.JudgeCeiling?.MeanAuc ?? double.NaN,
            AdherenceParaphraseAuc = eval.Paraphrase?.Findings.ToDictionary(f => f.Finding.Name(), f => f.Auc) ?? new Dictionary<string, double>(),
            LateralityAccuracy = eval.Laterality?.Accuracy ?? double.NaN,
            LateralityReliableAccuracy = eval.Laterality?.ReliableAccuracy ?? double.NaN,
            LateralityJudgeAccuracy = sideAccuracy?.ToDictionary(kv => kv.Key.Name(), kv => kv.Value) ?? new Dictionary<string, double>(),
        };
        DiffusionSection(report, o, result, eval, proxyAuc, reconGrid, grid, vaeHistory, ldmHistory);
        return result;
    }

    private static double TailMean(IReadOnlyList<double> values, int n) => values.Count == 0 ? double.NaN : values.Skip(Math.Max(0, values.Count - n)).Average();

    private static void WorldSection(HtmlReport report, QuickstartResult r, ImageGrid gallery, IReadOnlyList<PhantomCase> sample)
    {
        report.Heading("The phantom world")
              .Paragraph($"{r.PhantomsWritten} phantoms written; generation speed {r.PhantomImagesPerSecond128:F0} images/s at 128x128 on {Environment.ProcessorCount} cores.")
              .Add(gallery)
              .Add(DataTour.LabelChart(sample.Select(c => c.Labels).ToList()))
              .Heading("Report labeler")
              .Paragraph($"Recovers the generator's labels exactly (all 14 observations) on {r.LabelerExact} of {r.LabelerReports} generated reports.");
        if (r.IuAgreement is { } iu)
        {
            report.Paragraph($"Agreement with the human MeSH tags of {iu[0].Total} real IU reports: macro F1 {r.IuMacroF1:F3} on all of them; {r.IuHeldOutMacroF1:F3} on the held-out half (odd uids), whose text was not read while the rules were written.")
                  .Raw("<table><tr><th>finding</th><th>tagged</th><th>precision</th><th>recall</th><th>F1</th></tr>" +
                       string.Concat(iu.Select(row => $"<tr><td>{row.Finding}</td><td>{row.ReferencePositives}</td><td>{row.Precision:F3}</td><td>{row.Recall:F3}</td><td>{row.F1:F3}</td></tr>")) + "</table>");
        }
    }

    // Phantoms beside real radiographs of the shared sample, at the same size, when that sample is beside the clone.
    private static void RealComparisonSection(HtmlReport report, QuickstartOptions o, IReadOnlyList<PhantomCase> sample)
    {
        var csv = o.RealSampleDir is null ? null : Path.Combine(o.RealSampleDir, GenericCsvLoader.DefaultFileName);
        report.Heading("Phantoms beside real radiographs", 3);
        if (csv is null || !File.Exists(csv))
        {
            report.Paragraph("No real sample beside the repository (../shared/data/real-cxr-sample), so no comparison is shown.");
            return;
        }
        var real = GenericCsvLoader.Load(csv, new LoadOptions());
        var figure = DataTour.PhantomsBesideReal(sample, real, count: 6, size: 128);
        File.WriteAllBytes(Path.Combine(o.OutputDir, "phantoms-beside-real.png"), figure.ToPng());
        report.Paragraph($"Top: phantoms of this world; bottom: real frontal radiographs from {real.Count} images of the shared sample, both at 128 px.")
              .Add(figure);
    }

    private static void DiffusionSection(HtmlReport report, QuickstartOptions o, DiffusionQuickstartResult r, DiffusionEvaluationResult eval,
        IReadOnlyList<FindingAuc> proxyAuc, ImageGrid recon, ImageGrid grid, TrainingHistory vae, TrainingHistory ldm)
    {
        var cfg = r.Config;
        report.Heading("RoentGen: text-to-CXR latent diffusion")
              .Paragraph($"Trained from scratch on {cfg.TrainImages} phantoms at {cfg.ImageSize} px with report text as prompts ({PromptDescription(cfg.Prompt)}): " +
                         $"VAE {string.Join("/", cfg.Vae.BlockOutChannels)} channels ({cfg.VaeSteps} steps, latents {cfg.Vae.LatentChannels}x{cfg.LatentSize}x{cfg.LatentSize}, scaling factor {r.LatentScalingFactor:F3}); " +
                         $"UNet {string.Join("/", cfg.Unet.BlockOutChannels)} channels and a {cfg.Text.Layers}-layer text encoder trained together ({cfg.LdmSteps} steps of {cfg.LdmBatch}, prompt dropout {cfg.PromptDropout}, " +
                         $"{r.LdmTrainImagesPerSecond:F1} images/s)." +
                         (r.TextPretraining is { } tp
                             ? $" Before that, the text encoder was pretrained for {tp.Steps} steps to read from each prompt which findings it names and on which side " +
                               $"(balanced accuracy on the training prompts: findings {tp.FindingBalancedAccuracy:F3}, sides {tp.SideBalancedAccuracy:F3})."
                             : ""))
              .Add(recon)
              .Chart(TrainingCharts.LossCurve(vae, "VAE loss"))
              .Chart(TrainingCharts.LossCurve(ldm, "denoiser loss (ε-prediction MSE)"))
              .Heading("Samples", 3).Add(grid)
              .Raw("<ol>" + string.Concat(GridPrompts.Select(p => $"<li><b>{System.Net.WebUtility.HtmlEncode(p.Label)}</b>: {System.Net.WebUtility.HtmlEncode(p.Prompt)}</li>")) + "</ol>");

        report.Heading("Evaluation", 3)
              .Paragraph($"The judge is a proxy CNN trained for {o.ProxySteps} steps of {o.ProxyBatch} images on {o.ProxyImages} phantoms of another world (seed {WorldSeeds.Judge(o.Seed)}); its features give FID and KID, its probabilities give prompt adherence. " +
                         $"Real reference: {o.HeldOutImages} held-out phantoms (seed {WorldSeeds.HeldOut(o.Seed)}). Generated: {eval.ImagePrompts.Count} images ({eval.Options.ImagesPerPrompt} per prompt), " +
                         $"{NoiseScheduler.KindName(eval.Options.Scheduler)} {eval.Options.Steps} steps, guidance {eval.Options.GuidanceScale}, UNet in {r.TrainingPrecision} (as it trained).")
              .Add(eval.Summary());
        var verdicts = new List<string>();
        var ceilings = eval.JudgeCeiling?.Findings.ToDictionary(f => f.Finding) ?? [];
        if (eval.Trained.Adherence is { } a)
        {
            double min = a.Findings.Where(f => double.IsFinite(f.Auc)).Select(f => f.Auc).DefaultIfEmpty(double.NaN).Min();
            verdicts.Add(Verdict(a.MeanAuc >= 0.85, $"mean adherence AUC {a.MeanAuc:F3} (target 0.85)"
                + (eval.JudgeCeiling is { } jc ? $"; real phantoms showing exactly what the prompts name score {jc.MeanAuc:F3} with this judge (its ceiling)" : "")));
            var judge = proxyAuc.ToDictionary(f => f.Finding, f => f.Auc);
            // Why a finding is below 0.75: the generator's shortfall when it is clearly under what the judge scores on real
            // images (the ceiling), else the judge's limit when the ceiling or the judge itself is low.
            string Reason(FindingAdherence f)
            {
                double c = ceilings.TryGetValue(f.Finding, out var cf) ? cf.Auc : double.NaN;
                if (double.IsFinite(c) && f.Auc < c - 0.05)
                    return $"real phantoms showing exactly this finding score {c:F2} with this judge, so the generator falls short of what the judge can see";
                if (double.IsFinite(c) && c < 0.8)
                    return $"real phantoms showing exactly this finding score only {c:F2} with this judge, so this score cannot be read as the generator's failure alone";
                if (judge.TryGetValue(f.Finding, out var j) && j < 0.8)
                    return $"the judge itself only reaches {j:F2} on real held-out phantoms, so this score cannot be read as the generator's failure alone";
                return $"the judge sees it on real phantoms (AUC {j:F2}" + (double.IsFinite(c) ? $", ceiling {c:F2}" : "") + $"), so the generator does not yet draw it reliably after {cfg.LdmSteps} steps";
            }
            var weak = a.Findings.Where(f => f.Auc < 0.75).ToList();
            verdicts.Add(Verdict(weak.Count == 0, weak.Count == 0 ? $"every finding at or above 0.75 (lowest {min:F3})"
                : "below 0.75: " + string.Join("; ", weak.Select(f => $"{Observations.Name(f.Finding)} {f.Auc:F2} ({Reason(f)})"))));
            report.Chart(a.ToChart()).Add(a.ToDataFrame());
        }
        if (eval.Paraphrase is { } para) ParaphraseSection(report, eval.Trained.Adherence, para, eval.Options.ParaphrasePrompts?.Count ?? 0);
        if (eval.Laterality is { } side)
        {
            verdicts.Add(Verdict(side.Accuracy >= 0.9, $"laterality {side.Accuracy:P1} of {side.Images} images prompted with a finding on one side (target 90 %); {side.SeenAccuracy:P1} where the judge sees the finding"
                + (side.ReliableImages > 0 ? $"; {side.ReliableAccuracy:P1} of the {side.ReliableImages} images of findings whose side the side judge reads with accuracy {LateralityResult.ReliableJudgeAccuracy:P0} or more on real phantoms" : "")));
            LateralitySection(report, side, eval.ParaphraseLaterality);
        }
        if (eval.Untrained is { } u) verdicts.Add(Verdict(eval.Trained.Fid < u.Fid, $"FID {eval.Trained.Fid:F2} against {u.Fid:F2} for the untrained UNet"));
        if (eval.Samplers.Count == 2)
            verdicts.Add(Verdict(eval.SamplerFidGap <= 0.10, $"{eval.Samplers[0].Sampler} FID {eval.Samplers[0].Fid:F2} vs {eval.Samplers[1].Sampler} {eval.Samplers[1].Fid:F2} ({eval.SamplerFidGap:+0.0%;-0.0%}; target: at most 10% above the DDPM reference; {eval.SamplerComparisonImages} images per sampler, so FID is noisy)"));
        report.Heading("Targets", 4).Raw("<ul>" + string.Concat(verdicts) + "</ul>");
        static string Ceil(FindingAdherence? f) => f is null || !double.IsFinite(f.Auc) ? "" : FormattableString.Invariant($"{f.Auc:F3} ({f.ImagesNamed} images)");
        report.Paragraph("The judge bounds what adherence can show. Its held-out AUC says how well it tells a finding from everything else on real phantoms; "
                         + "the ceiling is the adherence measure itself on real held-out phantoms that show exactly what each prompt names, scored as if generated from it "
                         + "(lower where the judge confuses findings with each other: the other prompts' images are the negatives). A finding the judge cannot see cannot score high.")
              .Raw("<table><tr><th>finding</th><th>judge held-out AUC</th><th>positives</th><th>adherence on real images (ceiling)</th></tr>" +
                   string.Concat(proxyAuc.Where(f => f.Positives > 0).Select(f => $"<tr><td>{Observations.Name(f.Finding)}</td><td>{f.Auc:F3}</td><td>{f.Positives}</td><td>{Ceil(ceilings.GetValueOrDefault(f.Finding))}</td></tr>")) + "</table>");
    }

    // Adherence on the writer's prompts beside the held-out paraphrase prompts, per finding.
    private static void ParaphraseSection(HtmlReport report, PromptAdherenceResult? writer, PromptAdherenceResult para, int prompts)
    {
        static string F(double v) => double.IsFinite(v) ? v.ToString("F3", System.Globalization.CultureInfo.InvariantCulture) : "n/a";
        var byWriter = writer?.Findings.ToDictionary(f => f.Finding, f => f.Auc) ?? [];
        report.Heading("Radiology language the writer does not use", 4)
              .Paragraph($"The same model on {prompts} prompts written apart from the report writer (synonyms, hedges, other word order, " +
                         $"negations of other findings, abbreviations such as PTX, CHF, ETT, RLL, laterality, the terse style of the IU reports): " +
                         $"mean adherence AUC {F(para.MeanAuc)} ({para.Images} images) against {F(writer?.MeanAuc ?? double.NaN)} on the writer's own phrasing. " +
                         "A text encoder that learned the findings rather than the writer's templates scores about the same on both.")
              .Raw("<table><tr><th>finding</th><th>adherence AUC, writer's prompts</th><th>adherence AUC, paraphrase prompts</th><th>paraphrase images naming it</th></tr>" +
                   string.Concat(para.Findings.Select(f => $"<tr><td>{Observations.Name(f.Finding)}</td><td>{F(byWriter.GetValueOrDefault(f.Finding, double.NaN))}</td><td>{F(f.Auc)}</td><td>{f.ImagesNamed}</td></tr>")) +
                   $"<tr><td><b>mean</b></td><td><b>{F(writer?.MeanAuc ?? double.NaN)}</b></td><td><b>{F(para.MeanAuc)}</b></td><td></td></tr></table>");
        var least = para.LeastFollowed(6);
        if (least.Count == 0) return;
        report.Paragraph("The paraphrase prompts the model follows least (per prompt: the AUC of the judge's probability for the prompt's findings on its own " +
                         "images against the images of prompts that do not name them; a few images each, so a ranking rather than a measurement):")
              .Raw("<table><tr><th>prompt</th><th>findings</th><th>images</th><th>AUC</th></tr>" +
                   string.Concat(least.Select(p => $"<tr><td>{System.Net.WebUtility.HtmlEncode(p.Prompt)}</td><td>{string.Join(", ", p.Findings)}</td><td>{p.Images}</td><td>{F(p.Auc)}</td></tr>")) + "</table>");
    }

    // Per finding: how often the side drawn is the side asked for, beside the side judge's own accuracy on real phantoms.
    private static void LateralitySection(HtmlReport report, LateralityResult side, LateralityResult? paraphrase)
    {
        static string F(double v) => double.IsFinite(v) ? v.ToString("P0", System.Globalization.CultureInfo.InvariantCulture) : "n/a";
        var para = paraphrase?.Findings.ToDictionary(f => f.Finding) ?? [];
        report.Heading("Laterality", 4)
              .Paragraph("A side judge (the judge's network reading each hemithorax, the patient's left half mirrored, with the other half beside it, " +
                         "trained on phantoms of the judge's world whose sides come from their masks) says on which side of each generated image a finding lies. Counted: images whose prompt names one " +
                         "lateralised finding on one side; correct when the judge's output for the named side beats the other. Where the finding is not drawn the " +
                         "side is a coin toss, so the column 'where seen' keeps the images in which the finding judge sees it (probability at least 0.5). " +
                         "The side judge's accuracy on real held-out phantoms bounds what can be measured.")
              .Raw("<table><tr><th>finding</th><th>images</th><th>on the named side</th><th>where seen</th><th>paraphrase prompts</th><th>side judge on real phantoms</th></tr>" +
                   string.Concat(side.Findings.Select(f => $"<tr><td>{Observations.Name(f.Finding)}</td><td>{f.Images}</td><td>{F(f.Accuracy)}</td><td>{F(f.SeenAccuracy)} of {f.Seen}</td>" +
                       $"<td>{(para.TryGetValue(f.Finding, out var p) ? $"{F(p.Accuracy)} of {p.Images}" : "n/a")}</td><td>{F(f.JudgeAccuracy)}</td></tr>")) +
                   $"<tr><td><b>all</b></td><td><b>{side.Images}</b></td><td><b>{F(side.Accuracy)}</b></td><td><b>{F(side.SeenAccuracy)}</b></td><td><b>{(paraphrase is null ? "n/a" : F(paraphrase.Accuracy))}</b></td><td></td></tr></table>");
    }

    private static string PromptDescription(PromptSource source) => source switch
    {
        PromptSource.Impression => "the impression",
        PromptSource.ImpressionAndFindings => "the impression, then the findings",
        PromptSource.ImpressionAndPositiveFindings => "the impression, then the findings sentences that name something present",
        _ => source.ToString(),
    };

    private static string Verdict(bool met, string text) =>
        $"<li class=\"{(met ? "ok" : "miss")}\">{(met ? "met" : "missed")}: {System.Net.WebUtility.HtmlEncode(text)}</li>";
}
