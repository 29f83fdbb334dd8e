using System.CommandLine;
using RoentGen.PairAug;
using RoentGen.Platform;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen pairaug rewrite --in reports.txt|labels.csv --op partial-opposite|change-in-symptoms --out FILE.jsonl
/// [--llm-endpoint URL --llm-model M [--llm-key-env NAME] [--cache DIR]] [--seed N] [--limit N]</c>: PairAug's report
/// rewriting, offline and rule-based by default; <c>prune</c>; and the image and VLP verbs of <see cref="PairAugVlpCommands"/>
/// (inter, intra, pretrain, evaluate, study).
/// </summary>
internal static class PairAugCommand
{
    public static Command Build()
    {
        var cmd = new Command("pairaug", "PairAug (Xie et al., CVPR 2024): new image-report pairs for vision-language pretraining.");
        cmd.Subcommands.Add(BuildRewrite());
        cmd.Subcommands.Add(BuildPrune());
        foreach (var verb in PairAugVlpCommands.Build()) cmd.Subcommands.Add(verb);
        return cmd;
    }

    private static Command BuildPrune()
    {
        var pairs = new Option<FileInfo>("--pairs") { Description = "A pairs.jsonl written by InterAug or IntraAug (its scores are kept; the kept flags are rewritten).", Required = true };
        var threshold = new Option<double>("--threshold")
        {
            Description = "InterAug: keep a pair when its scaled score (logit scale x cosine) is above this (PairAug: 0.3).",
            DefaultValueFactory = _ => PairPruning.InterAugThreshold,
        };
        var margin = new Option<double>("--margin")
        {
            Description = "IntraAug: keep a pair when each of its three scores is above that score's mean minus this (PairAug: 0.003).",
            DefaultValueFactory = _ => PairPruning.IntraAugMargin,
        };
        var cmd = new Command("prune", "Prune generated pairs again from their written scores (InterAug threshold, IntraAug hybrid rule) and print the counts per stage.")
            { pairs, threshold, margin };
        cmd.SetAction((parse, ct) => Cli.RunAsync(parse, () =>
        {
            var file = parse.GetValue(pairs)!.FullName;
            if (!File.Exists(file)) throw new FileNotFoundException($"--pairs: {file} does not exist; expected a pairs.jsonl written by InterAug or IntraAug", file);
            var result = PairAugmentation.Prune(file, parse.GetValue(threshold), parse.GetValue(margin));
            Console.WriteLine(string.Join(", ", result.Counts.Select(kv => $"{kv.Key} {kv.Value}")));
            Console.WriteLine($"wrote {Cli.Escape(file)}");
            return Task.FromResult(0);
        }));
        return cmd;
    }

    private static Command BuildRewrite()
    {
        var input = new Option<FileInfo>("--in")
        {
            Description = "Reports: a .csv with a 'report' column (or 'findings' and 'impression'), e.g. a labels.csv, or a text file of reports separated by blank lines.",
            Required = true,
        };
        var op = new Option<string>("--op") { Description = "partial-opposite (InterAug) or change-in-symptoms (IntraAug).", Required = true };
        var output = new Option<FileInfo>("--out")
        {
            Description = "Kept rewrites as JSON lines; the dropped ones (labels not changed as the operation says) go to FILE.dropped.jsonl beside it.",
            Required = true,
        };
        var endpoint = new Option<string?>("--llm-endpoint") { Description = "Base URL of an OpenAI-compatible API (e.g. http://localhost:8000/v1); without it the offline rule-based rewriter runs." };
        var model = new Option<string?>("--llm-model") { Description = "Model name for --llm-endpoint." };
        var keyEnv = new Option<string>("--llm-key-env")
        {
            Description = "Environment variable holding the endpoint's API key (the key itself is never an argument).",
            DefaultValueFactory = _ => "ROENTGEN_LLM_API_KEY",
        };
        var cache = new Option<DirectoryInfo?>("--cache") { Description = "Cache folder of LLM rewrites (default: FILE.cache beside --out); a rerun asks only for what is missing." };
        var seed = new Option<long>("--seed") { Description = "Base seed (report i gets seed + i).", DefaultValueFactory = _ => 0 };
        var limit = new Option<int?>("--limit") { Description = "Rewrite at most this many reports." };
        var cmd = new Command("rewrite", "Rewrite reports (partial opposite or change in symptoms); keep those whose labels change as the operation says.")
            { input, op, output, endpoint, model, keyEnv, cache, seed, limit };
        cmd.SetAction((parse, ct) => Cli.RunAsync(parse, async () =>
        {
            var operation = RewriteOperations.Parse(parse.GetValue(op)!);
            var outFile = parse.GetValue(output)!.FullName;
            string dropped = DroppedPath(outFile);
            AtomicFile.EnsureWritable(outFile, "--out");
            if (parse.GetValue(limit) is int l && l < 1) throw new ArgumentException($"--limit must be at least 1, got {l}");
            var requests = RewriteFiles.ReadRequests(parse.GetValue(input)!.FullName, operation, parse.GetValue(seed), parse.GetValue(limit));

            string? url = parse.GetValue(endpoint), name = parse.GetValue(model);
            if ((url is null) != (name is null)) throw new ArgumentException("--llm-endpoint and --llm-model go together: give both for the LLM rewriter, or neither for the rule-based one");
            IReportRewriter rewriter;
            LlmReportRewriter? llm = null;
            if (url is not null)
            {
                if (!Uri.TryCreate(url, UriKind.Absolute, out var uri)) throw new ArgumentException($"--llm-endpoint must be an absolute URL, got '{url}'");
                rewriter = llm = new LlmReportRewriter(new LlmRewriterOptions
                {
                    Endpoint = uri, Model = name!, ApiKeyVariable = parse.GetValue(keyEnv)!,
                    CacheDirectory = parse.GetValue(cache)?.FullName ?? outFile + ".cache",
                });
            }
            else rewriter = new RuleBasedReportRewriter();
            try
            {
                Console.WriteLine($"{rewriter.Name}: {operation.CliName()} of {requests.Count} reports");
                var result = await RewriteBatch.RunAsync(rewriter, requests, cancellationToken: ct);
                RewriteFiles.WriteJsonl(result, outFile, dropped);
                Console.WriteLine($"kept {result.Kept.Count}, dropped {result.Dropped.Count} (labels not changed as {operation.CliName()} says), "
                    + $"not applicable {result.NotApplicable.Count}, from cache {result.FromCache}");
                Console.WriteLine($"wrote {Cli.Escape(outFile)} and {Cli.Escape(dropped)}");
            }
            finally { llm?.Dispose(); }
            return 0;
        }));
        return cmd;
    }

    /// <summary>FILE.jsonl to FILE.dropped.jsonl.</summary>
    internal static string DroppedPath(string outFile) =>
        outFile.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? outFile[..^6] + ".dropped.jsonl" : outFile + ".dropped.jsonl";
}
