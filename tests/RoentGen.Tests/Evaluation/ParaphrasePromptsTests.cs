using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Evaluation;

namespace RoentGen.Tests.Evaluation;

public class ParaphrasePromptsTests
{
    private static readonly ReportLabeler Labeler = new();

    private static string Norm(string s) => string.Join(' ', s.Trim().TrimEnd('.').ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries));

    // Every sentence and every section the writer can write, in both styles, over many worlds and cases.
    private static readonly Lazy<HashSet<string>> WriterSentences = new(() =>
    {
        var set = new HashSet<string>();
        foreach (var style in new[] { ReportStyle.Templates, ReportStyle.Varied })
            foreach (var seed in new long[] { 1, 2, 3 })
            {
                var g = new PhantomGenerator(new PhantomOptions { Seed = seed, ReportStyle = style });
                for (int i = 0; i < 8000; i++)
                {
                    var (_, report) = g.GenerateReport(i);
                    foreach (var section in new[] { report.Findings, report.Impression })
                    {
                        set.Add(Norm(section));
                        foreach (var sentence in System.Text.RegularExpressions.Regex.Split(section, @"(?<=\.)\s+(?:\d+\.\s+)?"))
                            if (sentence.Length > 0) set.Add(Norm(System.Text.RegularExpressions.Regex.Replace(sentence, @"^\d+\.\s+", "")));
                    }
                }
            }
        return set;
    });

    [Fact]
    public void Every_default_finding_has_at_least_eight_prompts_and_there_are_normal_ones()
    {
        foreach (var f in PromptAdherence.DefaultFindings)
            Assert.True(ParaphrasePrompts.For(f).Count >= 8, $"{f}: {ParaphrasePrompts.For(f).Count} prompts");
        Assert.True(ParaphrasePrompts.Normal.Count >= 8);
        Assert.All(ParaphrasePrompts.All, p => Assert.True(p.Findings.Count <= 1));
        Assert.Equal(ParaphrasePrompts.All.Count, ParaphrasePrompts.All.Select(p => Norm(p.Text)).Distinct().Count());
    }

    [Fact]
    public void The_labeler_reads_exactly_the_intended_finding_in_every_prompt()
    {
        foreach (var p in ParaphrasePrompts.All)
        {
            var read = AdherencePrompt.FromText(p.Text).Findings.Where(PromptAdherence.DefaultFindings.Contains).OrderBy(o => o).ToList();
            Assert.True(read.SequenceEqual(p.Findings.OrderBy(o => o)),
                $"'{p.Text}': intended [{string.Join(", ", p.Findings)}], the labeler reads [{string.Join(", ", read)}]");
        }
    }

    [Fact]
    public void The_set_uses_the_language_the_writer_templates_do_not()
    {
        string all = string.Join("\n", ParaphrasePrompts.All.Select(p => p.Text));
        foreach (var word in new[] { "PTX", "CHF", "CP angle", "ETT", "NG tube", "RLL", "fx", "possible", "cannot exclude", "likely", "left", "right", "bilateral", "No " })
            Assert.True(all.Contains(word, StringComparison.OrdinalIgnoreCase), $"no prompt uses '{word}'");
        // Hedged prompts are uncertain to the labeler and still name their finding.
        Assert.Contains(ParaphrasePrompts.All, p => p.Findings.Count == 1 && Labeler.Label(p.Text)[p.Findings[0]] == Mention.Uncertain);
        // Negations of another finding: a prompt naming one finding and negating another.
        Assert.Contains(ParaphrasePrompts.All, p => p.Findings.Count == 1
            && PromptAdherence.DefaultFindings.Any(o => o != p.Findings[0] && Labeler.Label(p.Text)[o] == Mention.Negative));
        // Both sides for the lateral findings.
        foreach (var f in new[] { Observation.PleuralEffusion, Observation.Pneumothorax, Observation.Fracture })
        {
            Assert.Contains(ParaphrasePrompts.For(f), p => p.Text.Contains("left", StringComparison.OrdinalIgnoreCase));
            Assert.Contains(ParaphrasePrompts.For(f), p => p.Text.Contains("right", StringComparison.OrdinalIgnoreCase));
        }
    }

    [Fact]
    public void No_prompt_is_a_sentence_or_section_the_writer_can_write()
    {
        var writer = WriterSentences.Value;
        Assert.True(writer.Count > 2000, $"only {writer.Count} distinct writer sentences");
        var clashes = new List<string>();
        foreach (var p in ParaphrasePrompts.All)
        {
            if (writer.Contains(Norm(p.Text))) clashes.Add($"'{p.Text}' is something the report writer writes");
            // The sentences that carry the prompt's finding are not the writer's either (a negation such as "No
            // pneumothorax." beside them may be).
            foreach (var sentence in ReportLabeler.SplitSentences(p.Text))
            {
                var named = AdherencePrompt.FromText(sentence).Findings.Where(p.Findings.Contains).ToList();
                if (named.Count > 0 && writer.Contains(Norm(sentence))) clashes.Add($"'{sentence}' of '{p.Text}' is a writer sentence");
            }
        }
        Assert.True(clashes.Count == 0, string.Join("\n", clashes));
        var defaults = PromptAdherence.DefaultPrompts.Select(p => Norm(p.Text)).ToHashSet();
        Assert.DoesNotContain(ParaphrasePrompts.All, p => defaults.Contains(Norm(p.Text)));
    }
}
