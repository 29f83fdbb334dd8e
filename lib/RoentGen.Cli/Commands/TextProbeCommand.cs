using System.CommandLine;
using System.Diagnostics;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Diffusion;
using RoentGen.Experiments;
using RoentGen.Platform;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen text-probe --model NAME=DIR [--model NAME=DIR ...] [--reports N] [--world SEED] [--prompt P] [--style S] [--iu-reports FILE] [--json FILE]</c>:
/// what the text encoders of trained models know about findings (<see cref="TextProbeComparison"/>), e.g. a foundation
/// model's before and after <c>train ldm --init-from</c>, with each model's relative change over the first.
/// </summary>
internal static class TextProbeCommand
{
    public static Command Build()
    {
        var models = new Option<string[]>("--model")
        {
            Description = "NAME=DIR: a trained latent-diffusion folder whose text encoder is probed under NAME (repeat for several; the first is the baseline of the changes; a bare DIR is named after its folder).",
            AllowMultipleArgumentsPerToken = false, Required = true,
        };
        var reports = new Option<int>("--reports") { Description = "Held-out phantom reports probed (60/20/20 split into probe train, validation and test).", DefaultValueFactory = _ => 1000 };
        var world = new Option<long?>("--world") { Description = "World seed of the phantom reports (default: the held-out world of the last model's training data, its DataSeed + 2000)." };
        var prompt = new Option<string?>("--prompt") { Description = "Which part of each phantom report is embedded: impression-and-findings (the whole findings, negations included: the hardest), impression, impression-and-positive-findings. Default: the last model's training prompts." };
        var style = new Option<string?>("--style") { Description = "Wording of the phantom reports: templates or varied (synonyms, abbreviations, hedges). Default: the last model's." };
        var iu = new Option<FileInfo?>("--iu-reports") { Description = "Real IU reports CSV probed too (columns findings, impression; labelled by the report labeler). Default: ../shared/data/real-cxr-sample/iu_xray_reports_sample.csv beside the repository, skipped when absent." };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the comparison as JSON to this file." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads." };
        var cmd = new Command("text-probe",
            "What trained models' text encoders know about findings: per-finding linear and k-NN probe AUCs of their report embeddings on held-out phantom reports (and real IU reports), and fit on the phantom reports but scored on paraphrase prompts written apart from the report writer (does the encoder know that PTX is a pneumothorax?), each model's change over the first (RoentGen's text-encoder claim: pneumothorax +25 % after fine-tuning).")
            { models, reports, world, prompt, style, iu, json, threads };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Cli.SetThreads(parse.GetValue(threads));
            var jsonFile = parse.GetValue(json);
            if (jsonFile is not null) AtomicFile.EnsureWritable(jsonFile.FullName, "--json");
            // Options first, so a bad one is refused before any model is loaded.
            int count = parse.GetValue(reports);
            if (count < 10) throw new ArgumentException($"--reports {count}: the probe needs at least 10 reports");
            PromptSource? promptGiven = parse.GetValue(prompt) is { } p ? ParsePrompt(p) : null;
            ReportStyle? styleGiven = parse.GetValue(style) is { } w ? ParseStyle(w) : null;
            var watch = Stopwatch.StartNew();
            var encoders = new List<(string Name, long? Seed, LatentDiffusionModel Model)>();
            LdmExperimentConfig? last = null;
            foreach (var spec in parse.GetValue(models) ?? [])
            {
                var (name, dir) = Cli.NamedFolder(spec, "--model");
                if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"--model {spec}: no such folder: {dir}");
                name ??= Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)));
                if (encoders.Any(e => e.Name == name)) throw new ArgumentException($"--model: the name '{name}' is given twice; name each model (NAME=DIR)");
                encoders.Add((name, null, LatentDiffusionModel.Load(dir)));
                last = File.Exists(Path.Combine(dir, LatentDiffusionRuns.ConfigFile)) ? LatentDiffusionRuns.LoadConfig(dir) : last;
            }
            long worldSeed = parse.GetValue(world) ?? WorldSeeds.HeldOut(last?.DataSeed ?? new LdmExperimentConfig().DataSeed);
            var source = promptGiven ?? last?.Prompt ?? PromptSource.ImpressionAndFindings;
            var wording = styleGiven ?? last?.ReportStyle ?? ReportStyle.Templates;
            var sets = new List<LabelledReports> { LabelledReports.Phantoms(count, worldSeed, source, wording) };
            if (Cli.IuReportsCsv(parse.GetValue(iu)) is { } iuCsv && LabelledReports.IuReports(iuCsv) is { } real) sets.Add(real);
            else Console.WriteLine("real IU reports: none found, probing phantom reports only");
            // Across wordings too: the probe fit on the phantom reports, scored on the paraphrase prompts.
            var result = TextProbeComparison.Run(encoders, sets, log: line => Console.WriteLine(Cli.Escape(line)), transferTest: LabelledReports.Paraphrases());
            Console.WriteLine($"ptx = pneumothorax; change = relative change over {Cli.Escape(result.Baseline)} (after / before - 1)");
            Cli.Print(result.Table());
            Console.WriteLine($"{watch.Elapsed.TotalSeconds:0.#} s");
            Cli.SaveJson(jsonFile, result.Save);
            return 0;
        }));
        return cmd;
    }

    private static PromptSource ParsePrompt(string name) => name.Trim().ToLowerInvariant() switch
    {
        "impression-and-findings" => PromptSource.ImpressionAndFindings,
        "impression" => PromptSource.Impression,
        "impression-and-positive-findings" => PromptSource.ImpressionAndPositiveFindings,
        _ => throw new ArgumentException($"--prompt '{name}': expected impression-and-findings, impression or impression-and-positive-findings"),
    };

    private static ReportStyle ParseStyle(string name) => name.Trim().ToLowerInvariant() switch
    {
        "templates" => ReportStyle.Templates,
        "varied" => ReportStyle.Varied,
        _ => throw new ArgumentException($"--style '{name}': expected templates or varied"),
    };
}
