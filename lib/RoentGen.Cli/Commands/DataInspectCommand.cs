using System.CommandLine;
using RoentGen.Data.Datasets;
using Spectre.Console;

namespace RoentGen.Cli.Commands;

/// <summary><c>roentgen data inspect PATH [--json]</c>: what a generic-layout dataset holds.</summary>
internal static class DataInspectCommand
{
    public static Command Build()
    {
        var path = new Argument<string>("path") { Description = "A labels.csv in the generic layout, or a folder holding one." };
        var json = new Option<bool>("--json") { Description = "Print the summary as JSON to standard output instead of tables." };
        var outside = Cli.AllowOutsideRootOption();
        var cmd = new Command("inspect", "Count records, labels, sexes, ages, views, masks and missing images of a dataset.") { path, json, outside };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var s = DatasetInspection.InspectCsv(parse.GetValue(path)!, parse.GetValue(outside));
            if (parse.GetValue(json)) Console.WriteLine(s.ToJson());
            else Print(s);
        }));
        return cmd;
    }

    private static void Print(DatasetSummary s)
    {
        var head = new Table().AddColumn("dataset").AddColumn("value");
        void Row(string k, string v) => head.AddRow(Markup.Escape(Cli.Escape(k)), Markup.Escape(Cli.Escape(v)));
        Row("source", s.Source);
        Row("records / patients", $"{s.Records} / {s.Patients}");
        Row("datasets", Join(s.Datasets));
        Row("sex", Join(s.Sex));
        Row("age", s.Age.Known == 0 ? $"unknown ({s.Age.Missing})"
            : $"{s.Age.Min:0.#}-{s.Age.Max:0.#}, mean {s.Age.Mean:0.#}, median {s.Age.Median:0.#}; unknown {s.Age.Missing}");
        Row("views", Join(s.Views));
        Row("masks", s.Masks.Count == 0 ? "none" : $"{Join(s.Masks)} ({s.RecordsWithMasks} records)");
        Row("reports", s.RecordsWithReport.ToString());
        Row("missing images / masks", $"{s.MissingImages} / {s.MissingMasks}" + (s.MissingImageExamples.Count > 0 ? " e.g. " + s.MissingImageExamples[0] : ""));
        Row("skipped rows", s.Skipped + (s.SkippedExamples.Count > 0 ? " e.g. " + s.SkippedExamples[0] : ""));
        Cli.Out.Write(head);

        var obs = new Table().AddColumn("observation").AddColumn("positive", c => c.RightAligned())
            .AddColumn("negative", c => c.RightAligned()).AddColumn("uncertain", c => c.RightAligned()).AddColumn("not mentioned", c => c.RightAligned());
        foreach (var o in s.Observations)
            obs.AddRow(Markup.Escape(Cli.Escape(o.Observation)), o.Positive.ToString(), o.Negative.ToString(), o.Uncertain.ToString(), o.NotMentioned.ToString());
        Cli.Out.Write(obs);

        if (s.SourceLabels.Count > 0)
        {
            var src = new Table().AddColumn("source label").AddColumn("records", c => c.RightAligned());
            foreach (var (k, v) in s.SourceLabels.OrderByDescending(kv => kv.Value)) src.AddRow(Markup.Escape(Cli.Escape(k)), v.ToString());
            Cli.Out.Write(src);
        }
    }

    private static string Join(IReadOnlyDictionary<string, int> d) => string.Join(", ", d.Select(kv => $"{kv.Key} {kv.Value}"));
}
