using System.CommandLine;
using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Interactive;
using RoentGen.Platform;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen data ...</c>: dataset verbs. Add a verb by adding its builder to <see cref="Verbs"/>.</summary>
internal static class DataCommand
{
    /// <summary>The subcommands of <c>data</c>, one builder each.</summary>
    private static readonly Func<Command>[] Verbs =
    [
        BuildPhantoms,
        BuildLabelReports,
        DataInspectCommand.Build,
        DataStatsCommand.Build,
        DataLabelerAgreementCommand.Build,
    ];

    public static Command Build()
    {
        var cmd = new Command("data", "Datasets: generate the procedural CXR world, label report text, measure the labeler on IU reports, inspect a labels.csv dataset, compare image statistics.");
        foreach (var verb in Verbs) cmd.Subcommands.Add(verb());
        return cmd;
    }

    /// <summary><c>roentgen data phantoms --n N --size S --seed K --out DIR</c>.</summary>
    private static Command BuildPhantoms()
    {
        var n = new Option<int>("--n") { Description = "Number of cases.", DefaultValueFactory = _ => 100 };
        var size = new Option<int>("--size") { Description = "Image side in pixels (64..512).", DefaultValueFactory = _ => 128 };
        var seed = new Option<long>("--seed") { Description = "World seed.", DefaultValueFactory = _ => 0 };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder (images/, masks/, labels.csv); must be empty or new unless --overwrite.", Required = true };
        var overwrite = new Option<bool>("--overwrite")
        {
            Description = "Write into a non-empty --out: first deletes what this verb writes there (images/, masks/, labels.csv), never other files.",
        };
        var shard = ShardOption.Create();
        var cmd = new Command("phantoms", "Write phantom chest X-rays, masks, reports and labels.csv (generic layout) to a folder.") { n, size, seed, output, overwrite, shard };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var options = new PhantomOptions { Size = parse.GetValue(size), Seed = parse.GetValue(seed) };
            options.Validate();
            int count = parse.GetValue(n);
            if (count < 1) throw new ArgumentOutOfRangeException("--n", count, "--n must be at least 1");
            var dir = parse.GetValue(output)!.FullName;
            if (ShardOption.Get(parse, shard) is { } part)
            {
                // Shards share --out: no emptiness check (the shard bookkeeping refuses a folder of another job instead).
                if (parse.GetValue(overwrite)) throw new ArgumentException("--overwrite cannot be combined with --shard (shards of one job share --out); use a new folder");
                var result = PhantomDataset.WriteShard(dir, options, count, part, ProgressReporter.SinkFactory?.Invoke(), line => Console.WriteLine(Cli.Escape(line)));
                Console.WriteLine(Cli.Escape(ShardOption.Describe(result, dir)));
                return;
            }
            OutputPaths.PrepareOwnedFolder(dir, PhantomOutputs, parse.GetValue(overwrite), "--out");
            var summary = PhantomDataset.WriteFolder(dir, options, count, sink: ProgressReporter.SinkFactory?.Invoke());
            Console.WriteLine($"wrote {summary.Count} cases to {Cli.Escape(summary.Directory)} in {summary.Elapsed.TotalSeconds:F1} s ({summary.Count / Math.Max(1e-9, summary.Elapsed.TotalSeconds):F0} images/s); labels: {Cli.Escape(summary.LabelsCsv)}");
        }));
        return cmd;
    }

    // What `data phantoms` writes into its folder, and so what --overwrite may delete there.
    private static readonly string[] PhantomOutputs = ["images/", "masks/", "labels.csv"];

    /// <summary><c>roentgen data label-reports --in CSV --text-columns findings,impression --out CSV</c>.</summary>
    private static Command BuildLabelReports()
    {
        var input = new Option<FileInfo>("--in") { Description = "CSV file with a header row.", Required = true };
        var columns = new Option<string>("--text-columns") { Description = "Comma-separated columns whose text is labelled together.", DefaultValueFactory = _ => "findings,impression" };
        var output = new Option<FileInfo>("--out") { Description = "Output CSV: the input plus one column per CheXpert observation (1, 0, -1, empty).", Required = true };
        var prefix = new Option<string>("--prefix") { Description = "Prefix of the added column names (needed when the input already has CheXpert columns).", DefaultValueFactory = _ => "" };
        var cmd = new Command("label-reports", "Label report text with the rule-based CheXpert-style labeler.") { input, columns, output, prefix };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var inFile = parse.GetValue(input)!;
            var outFile = parse.GetValue(output)!;
            OutputPaths.RefuseSame(inFile.FullName, "--in", outFile.FullName, "--out");
            var table = Csv.ReadFile(inFile.FullName);
            AtomicFile.EnsureWritable(outFile.FullName, "--out");
            var textColumns = parse.GetValue(columns)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (textColumns.Length == 0) throw new ArgumentException("--text-columns names no column");
            table.RequireColumns(textColumns);
            string pre = parse.GetValue(prefix) ?? "";
            var added = Observations.Names.Select(nm => pre + nm).ToArray();
            var clash = added.Where(table.HasColumn).ToArray();
            if (clash.Length > 0)
                throw new InvalidDataException($"{inFile.FullName}: already has column(s) {string.Join(", ", clash.Select(c => $"'{c}'"))}; pass --prefix (e.g. --prefix pred_) to add labelled columns beside them");
            var labeler = new ReportLabeler();
            var header = table.Header.Concat(added).ToArray();
            var rows = new List<string[]>(table.Rows.Count);
            using (var progress = ProgressReporter.Start("label reports", table.Rows.Count, "reports"))
            {
                foreach (var row in table.Rows)
                {
                    string text = string.Join("\n", textColumns.Select(c => row[c]).Where(t => !string.IsNullOrWhiteSpace(t)));
                    var labels = labeler.Label(text);
                    rows.Add(row.Fields.Concat(Observations.All.Select(o => labels[o].Code())).ToArray());
                    progress.Advance();
                }
            }
            Csv.WriteFile(outFile.FullName, header, rows);
            Console.WriteLine(Cli.Escape($"labelled {rows.Count} rows of {inFile.FullName} (text: {string.Join(", ", textColumns)}); wrote {outFile.FullName}"));
        }));
        return cmd;
    }
}
