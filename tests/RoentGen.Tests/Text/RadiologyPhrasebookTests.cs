using RoentGen.Data;
using RoentGen.Data.Reports;
using RoentGen.Evaluation;
using RoentGen.Text;

namespace RoentGen.Tests.Text;

public class RadiologyPhrasebookTests
{
    private static readonly ReportLabeler Labeler = new();

    private static bool Named(string text, Observation o) => Labeler.Label(text)[o] is Mention.Positive or Mention.Uncertain;

    [Fact]
    public void Every_name_is_read_by_the_report_labeler_as_its_finding()
    {
        // The pretraining targets come from the labeler: a name it did not read would teach the encoder the wrong thing.
        foreach (var (finding, names) in RadiologyPhrasebook.Names)
            foreach (var name in names)
            {
                Assert.True(Named($"{char.ToUpperInvariant(name[0])}{name[1..]}.", finding), $"'{name}' is not read as {finding}");
                Assert.False(Named($"No {name}.", finding), $"'No {name}.' is read as {finding}");
            }
    }

    [Fact]
    public void Statements_are_deterministic_and_name_every_finding_in_many_ways()
    {
        var a = RadiologyPhrasebook.Sentences(3000, seed: 4);
        Assert.Equal(a, RadiologyPhrasebook.Sentences(3000, seed: 4));
        Assert.NotEqual(a, RadiologyPhrasebook.Sentences(3000, seed: 5));
        Assert.Equal(3000, a.Count);
        Assert.Empty(RadiologyPhrasebook.Sentences(0, seed: 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => RadiologyPhrasebook.Sentences(-1, seed: 4));

        foreach (var finding in RadiologyPhrasebook.Names.Keys)
        {
            var naming = a.Where(s => Named(s, finding)).ToList();
            Assert.True(naming.Count >= 150, $"{finding}: only {naming.Count} of 3,000 statements name it");
            Assert.True(naming.Distinct().Count() >= 50, $"{finding}: only {naming.Distinct().Count()} different statements name it");
            // Each of its names is used, not only the first.
            var unused = RadiologyPhrasebook.Names[finding].Where(n => !naming.Any(s => s.Contains(n, StringComparison.OrdinalIgnoreCase))).ToList();
            Assert.True(unused.Count == 0, $"{finding}: names never used: {string.Join(", ", unused)}");
        }
        // Negations name nothing, and some statements name two findings.
        var negations = a.Where(s => s.StartsWith("No ", StringComparison.Ordinal) || s.StartsWith("Negative for", StringComparison.Ordinal)).ToList();
        Assert.True(negations.Count > 150);
        Assert.All(negations, s => Assert.True(RadiologyPhrasebook.Names.Keys.All(f => !Named(s.Split('.')[0] + ".", f)), $"'{s}' names a finding"));
        Assert.True(a.Count(s => RadiologyPhrasebook.Names.Keys.Count(f => Named(s, f)) >= 2) > 200);
        // Some name one finding and deny another ("Left PTX. No effusion."): the labeler reads the first only.
        var namedAndDenied = a.Where(s => RadiologyPhrasebook.Names.Keys.Count(f => Named(s, f)) == 1
                                          && RadiologyPhrasebook.Names.Keys.Any(f => Labeler.Label(s)[f] == Mention.Negative)).ToList();
        Assert.True(namedAndDenied.Count > 150, $"only {namedAndDenied.Count} of 3,000 statements name one finding and deny another");
        Assert.Contains(namedAndDenied, s => s.Contains("; no ", StringComparison.Ordinal));
        Assert.Contains(namedAndDenied, s => s.Contains(", without ", StringComparison.Ordinal));
    }

    [Fact]
    public void No_statement_is_a_held_out_paraphrase_prompt()
    {
        // The phrasebook shares words with the paraphrase prompts (CHF, RLL, PICC), as a language model's pretraining
        // would; it must not contain the prompts themselves (five short ones came up by chance before they were excluded).
        var statements = RadiologyPhrasebook.Sentences(20000, seed: 0).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var copied = ParaphrasePrompts.All.Concat(PromptAdherence.DefaultPrompts).Select(p => p.Text).Where(statements.Contains).ToList();
        Assert.True(copied.Count == 0, $"held-out prompts among the statements: {string.Join(" | ", copied)}");
    }
}
