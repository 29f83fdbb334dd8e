using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using Xunit.Abstractions;

namespace RoentGen.Tests.Data;

public class ReportStyleTests(ITestOutputHelper output)
{
    private static readonly ReportLabeler Labeler = new();

    [Fact]
    public void Varied_reports_keep_the_template_labels_and_the_labeler_recovers_them_exactly()
    {
        var plain = new PhantomGenerator(new PhantomOptions { Seed = 2024 });
        var varied = new PhantomGenerator(new PhantomOptions { Seed = 2024, ReportStyle = ReportStyle.Varied });
        int changed = 0;
        for (int i = 0; i < 5000; i++)
        {
            var (_, a) = plain.GenerateReport(i);
            var (_, b) = varied.GenerateReport(i);
            // Same case, same template choices: the same labels, however the text is worded.
            Assert.True(a.Labels.Equals(b.Labels), $"report {i}: templates {a.Labels}, varied {b.Labels}");
            var got = Labeler.Label(b.Text);
            Assert.True(got.Equals(b.Labels), $"report {i}:\n{b.Text}\nwriter:  {b.Labels}\nlabeler: {got}");
            if (a.Text != b.Text) changed++;
        }
        output.WriteLine($"{changed} of 5000 reports worded differently");
        Assert.True(changed > 3500, $"only {changed} of 5000 varied reports differ from the templates");
    }

    [Fact]
    public void Varied_wording_is_deterministic_by_seed_and_uses_other_words()
    {
        var options = new PhantomOptions { Seed = 7, ReportStyle = ReportStyle.Varied };
        var g1 = new PhantomGenerator(options);
        var g2 = new PhantomGenerator(options);
        var texts = Enumerable.Range(0, 3000).Select(i => g1.GenerateReport(i).Report.Text).ToList();
        Assert.Equal(texts, Enumerable.Range(0, 3000).Select(i => g2.GenerateReport(i).Report.Text));
        Assert.NotEqual(texts, Enumerable.Range(0, 3000).Select(i => new PhantomGenerator(options with { Seed = 8 }).GenerateReport(i).Report.Text));
        string all = string.Join("\n", texts);
        foreach (var word in new[] { "PTX", "ETT", "CP angle", "cardiac enlargement", "Heart size normal", "Lungs clear", "Questionable ", "cannot be ruled out", "No active disease." })
            Assert.True(all.Contains(word, StringComparison.Ordinal), $"no varied report uses '{word}'");
        // Words held out for the paraphrase prompts never appear.
        foreach (var word in new[] { "RLL", "LLL", "CHF", "NG ", " fx" })
            Assert.False(all.Contains(word, StringComparison.Ordinal), $"a varied report uses '{word}', which the paraphrase set holds out");
    }

    [Fact]
    public void Templates_style_is_the_writer_of_before()
    {
        // The default style writes exactly what Write wrote without a style argument.
        var g = new PhantomGenerator(new PhantomOptions { Seed = 3 });
        for (int i = 0; i < 300; i++)
        {
            var (truth, report) = g.GenerateReport(i);
            var seed = PhantomRandom.Mix(3UL * 31 + (ulong)i + 0x5EED);
            Assert.Equal(ReportWriter.Write(truth, seed, 0.25).Text, report.Text);
            Assert.Equal(ReportWriter.Write(truth, seed, 0.25, ReportStyle.Templates).Text, report.Text);
        }
    }
}
