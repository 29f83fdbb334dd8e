using System.CommandLine;
using System.Globalization;
using RoentGen.Data;
using RoentGen.Data.Reports;
using RoentGen.Platform;

namespace RoentGen.Cli.Commands;

/// <summary>
/// <c>roentgen data labeler-agreement --reports FILE.csv [--split dev|heldout|all] [--rule parity|seeded] [--uncertain positive|negative]
/// [--json FILE] [--disagreements N]</c>: agreement of the rule-based report labeler with the human MeSH tags of IU X-ray
/// reports (<see cref="LabelerAgreement"/>), per finding, on one half of the fixed split (<see cref="IuReportSplit"/>).
/// </summary>
internal static class DataLabelerAgreementCommand
{
    public static Command Build()
    {
        var reports = new Option<FileInfo>("--reports") { Description = "IU reports CSV (columns uid, Problems, findings, impression), e.g. iu_xray_reports_sample.csv.", Required = true };
        var split = new Option<string>("--split") { Description = "Which half: dev (even uid), heldout (odd uid) or all; with --rule seeded, the seeded halves.", DefaultValueFactory = _ => "all" };
        split.AcceptOnlyFromAmong("dev", "heldout", "all");
        var rule = new Option<string>("--rule") { Description = "Split rule: parity (uid parity, the split the labeler was developed against) or seeded (a seeded hash of the uid).", DefaultValueFactory = _ => "parity" };
        rule.AcceptOnlyFromAmong("parity", "seeded");
        var uncertain = new Option<string>("--uncertain") { Description = "Count an uncertain label as positive (U-Ones) or negative (U-Zeros).", DefaultValueFactory = _ => "positive" };
        uncertain.AcceptOnlyFromAmong("positive", "negative");
        var json = new Option<FileInfo?>("--json") { Description = "Also write the table as JSON to this file." };
        var disagreements = new Option<int>("--disagreements")
        {
            Description = "Print up to N reports where the labeler and the tags disagree, with the mentions the labeler found (not with --split heldout: held-out text is for the final score only).",
            DefaultValueFactory = _ => 0,
        };
        var cmd = new Command("labeler-agreement", "Per-finding agreement of the report labeler with the human tags of IU X-ray reports, on a fixed dev / held-out split.")
        {
            reports, split, rule, uncertain, json, disagreements,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var file = parse.GetValue(reports)!;
            var half = parse.GetValue(split) switch { "dev" => IuHalf.Dev, "heldout" => IuHalf.HeldOut, _ => IuHalf.All };
            var splitRule = parse.GetValue(rule) == "seeded" ? IuSplitRule.SeededHalf : IuSplitRule.UidParity;
            bool uOnes = parse.GetValue(uncertain) != "negative";
            int show = parse.GetValue(disagreements);
            if (show < 0) throw new ArgumentException($"--disagreements must be 0 or more, got {show}");
            if (show > 0 && half == IuHalf.HeldOut)
                throw new ArgumentException("--disagreements reads report text: use it with --split dev (or all), not heldout (held-out reports are for the final score only)");
            var jsonFile = parse.GetValue(json);
            if (jsonFile is not null) AtomicFile.EnsureWritable(jsonFile.FullName, "--json");

            var table = Csv.ReadFile(file.FullName);
            table.RequireColumns("Problems", "findings", "impression");
            var rows = IuReportSplit.Select(table, half, splitRule);
            if (rows.Count == 0) throw new InvalidDataException($"{file.FullName}: no reports in the {Describe(half, splitRule)}");
            var labeler = new ReportLabeler();
            var agreement = LabelerAgreement.EvaluateIu(rows, labeler, uOnes);
            Console.WriteLine(Cli.Escape($"{file.FullName}: {rows.Count} of {table.Rows.Count} reports ({Describe(half, splitRule)}); uncertain counted as {(uOnes ? "positive" : "negative")}"));
            Console.Write(LabelerAgreement.FormatTable(agreement));
            if (show > 0)
            {
                foreach (var d in LabelerAgreement.Disagreements(rows, labeler).Take(show))
                {
                    Console.WriteLine();
                    Console.WriteLine(Cli.Escape($"uid {d.Uid}  {d.Finding}: tags say {(d.Reference ? "present" : "absent")}, labeler {d.Labeler}  [{d.Tags}]"));
                    Console.WriteLine(Cli.Escape(d.Text.Replace('\n', ' ')));
                    var why = labeler.LabelMentions(d.Text).Select(m => $"{m.Observation.Name()} {m.Mention} '{m.Phrase}' ({m.Reason})");
                    Console.WriteLine(Cli.Escape("  mentions: " + string.Join("; ", why)));
                }
            }
            if (jsonFile is not null)
            {
                var doc = LabelerAgreement.ToJson(agreement, file.FullName, half, splitRule, uOnes, rows.Count);
                AtomicFile.WriteAllText(jsonFile.FullName, doc);
                Console.WriteLine(Cli.Escape($"wrote {jsonFile.FullName}"));
            }
        }));
        return cmd;
    }

    private static string Describe(IuHalf half, IuSplitRule rule) => half switch
    {
        IuHalf.All => "all reports",
        _ => string.Create(CultureInfo.InvariantCulture, $"{(half == IuHalf.Dev ? "development" : "held-out")} half by {(rule == IuSplitRule.UidParity ? "uid parity" : "seeded uid hash")}"),
    };
}
