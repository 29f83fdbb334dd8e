using RoentGen.Interactive.Notebooks;

namespace RoentGen.Tests.Notebooks;

/// <summary>
/// Runs every project notebook in the real .NET Interactive kernel (the pinned dotnet-interactive tool that VS Code and
/// Jupyter run) with small parameters, from the committed file with nothing injected but those parameters; any error
/// output fails the test, and every cell that shows something must produce an HTML or PNG output.
/// </summary>
// Kernels are separate processes, but two training notebooks at once on 2 cores only slow each other down.
[Collection(ProcessStateCollection.Name)]
public class NotebookExecutionTests
{
    private static readonly string NotebookDir = Path.Combine(TestPaths.RepoRoot, "notebooks");

    /// <summary>Small parameters per notebook, so the suite stays fast.</summary>
    public static TheoryData<string, string> Notebooks => new()
    {
        { "00-getting-started.ipynb", "imageSize=64;gridCount=4;matmulSize=256" },
        { "01-data-tour.ipynb", "count=120;imageSize=64" },
        { "02-train-latent-diffusion.ipynb", "preset=tiny;trainImages=48;vaeSteps=3;ldmSteps=3;sampleSteps=2" },
        { "03-prompt-sweeps.ipynb", "checkpoint=no-such-folder;fallbackPreset=tiny;seeds=2;imagesPerPrompt=1;maxSteps=5" },
        { "04-rad-dino-pretraining.ipynb", RadDinoParameters },
        { "05-probes-and-tsne.ipynb", EncoderComparisonParameters },
        { "06-roentgen-domain-adaptation.ipynb", "resultsDir=;preset=tiny;seeds=0" },
        { "07-synthetic-augmentation.ipynb", "resultsDir=;preset=tiny;generator=;seeds=0,1;sizes=" },
        { "08-real-weights.ipynb", "weights=;outDir=;sampleSteps=2;loraSteps=2;phantoms=2" },
        { "09-pairaug.ipynb", "studyDir=;preset=tiny;seeds=0,1;editSteps=2;rewriteExamples=2" },
        { "10-mask-conditioned-generation.ipynb", "checkpoint=no-such-folder;fallbackPreset=tiny;maskPreset=tiny;segmenterPreset=tiny;outDir=;conditions=2;sampleSteps=2" },
        { "11-synthetic-data-study.ipynb", "resultsDir=;preset=tiny;seeds=0,1;sizes=8;generator=;realSample=" },
    };

    private const string EncoderComparisonParameters = "preset=tiny;outDir=;tsnePoints=24;ablationVariants=baseline,no-ibot;seeds=0,1;seedsDir=";

    private const string RadDinoParameters = "preset=tiny;steps=3;batchSize=4;attentionImages=2;tsnePoints=24";

    private static async Task<Notebook> Run(string file, string parameters)
    {
        var values = parameters.Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        // The notebooks' scratch folders (Path.GetTempPath) go into a folder this test deletes.
        var scratch = TestPaths.NewTempDir("roentgen-nb");
        NotebookRunResult result;
        try
        {
            var runner = new NotebookRunner(new NotebookRunOptions
            {
                Parameters = values, WorkingDirectory = NotebookDir, Environment = new Dictionary<string, string> { ["TMPDIR"] = scratch },
            });
            result = await runner.RunAsync(Notebook.Load(Path.Combine(NotebookDir, file)), Path.Combine(NotebookDir, file));
        }
        finally { TestPaths.DeleteQuietly(scratch); }
        var errors = result.Notebook.Cells.SelectMany(c => c.Outputs).Where(o => o.OutputType == "error")
            .Select(o => $"{o.EName}: {o.EValue}").ToList();
        Assert.True(errors.Count == 0, $"{file} produced error outputs:\n{string.Join("\n", errors)}");
        Assert.False(result.AnyFailed, $"{file}: a cell failed");
        // A cell that skipped its work says so on stdout (e.g. no real sample here); every other one that shows something must.
        foreach (var cell in result.Notebook.Cells.Where(c => c.IsCode && ShowsSomething(c.Source)
                     && !c.Outputs.Any(o => o.OutputType == "stream" && (o.Text ?? "").Contains("skipped", StringComparison.Ordinal))))
            Assert.True(cell.Outputs.Any(o => o.GetData("text/html") is { Length: > 0 } || o.GetData("image/png") is { Length: > 0 }),
                $"{file}: the cell starting '{cell.Source.Split('\n')[0]}' shows a value but produced no text/html or image/png output");
        return result.Notebook;
    }

    /// <summary>Whether a cell displays something: a display(...) call, or a last line that is a value (no semicolon).</summary>
    private static bool ShowsSomething(string source)
    {
        if (source.Contains("display(", StringComparison.Ordinal)) return true;
        // Last code line, without a trailing // comment.
        static string Code(string line)
        {
            // The first "//" outside a string literal (an even number of quotes before it) starts a comment.
            for (int c = line.IndexOf("//", StringComparison.Ordinal); c >= 0; c = line.IndexOf("//", c + 2, StringComparison.Ordinal))
                if (line[..c].Count(ch => ch == '"') % 2 == 0) return line[..c].Trim();
            return line.Trim();
        }
        var last = source.Split('\n').Select(Code).LastOrDefault(l => l.Length > 0);
        return last is not null && !last.EndsWith(';') && !last.EndsWith('}') && !last.EndsWith('{') && !last.StartsWith('#');
    }

    [Fact]
    public async Task Getting_started_runs_exactly_as_committed_at_its_defaults()
    {
        // No parameters, no injected cell, no references added: what a user opening the file in VS Code runs.
        var path = Path.Combine(NotebookDir, "00-getting-started.ipynb");
        var committed = File.ReadAllText(path);
        var scratch = TestPaths.NewTempDir("roentgen-nb");
        NotebookRunResult result;
        try
        {
            result = await new NotebookRunner(new NotebookRunOptions { Environment = new Dictionary<string, string> { ["TMPDIR"] = scratch } })
                .RunAsync(Notebook.Load(path), path);
        }
        finally { TestPaths.DeleteQuietly(scratch); }
        Assert.DoesNotContain(result.Notebook.Cells, c => c.Tags.Contains(NotebookParameters.InjectedTag));
        Assert.Equal(Notebook.Parse(committed).Cells.Select(c => c.Source), result.Notebook.Cells.Select(c => c.Source));
        var errors = result.Notebook.Cells.SelectMany(c => c.Outputs).Where(o => o.OutputType == "error").Select(o => $"{o.EName}: {o.EValue}");
        Assert.False(result.AnyFailed, string.Join("\n", errors));
    }

    [Theory]
    [MemberData(nameof(Notebooks))]
    public async Task Notebook_runs_without_error_outputs(string file, string parameters)
    {
        var nb = await Run(file, parameters);
        Assert.All(nb.Cells.Where(c => c.IsCode && c.KernelNameFromMetadata is null or "csharp"), c => Assert.NotNull(c.ExecutionCount));
    }

    [Fact]
    public void Every_notebook_in_the_folder_is_covered_by_a_test()
    {
        var covered = Notebooks.Select(row => (string)row[0]).ToHashSet();
        foreach (var path in Directory.GetFiles(NotebookDir, "*.ipynb"))
            Assert.Contains(Path.GetFileName(path), covered);
    }

    [Fact]
    public async Task Getting_started_shows_doctor_table_image_grid_chart_and_dataframe()
    {
        var nb = await Run("00-getting-started.ipynb", "imageSize=64;gridCount=4;matmulSize=256");
        var outputs = nb.Cells.SelectMany(c => c.Outputs).ToList();
        Assert.Contains(outputs, o => o.GetData("text/html") is string h && h.Contains("libtorch loaded") && h.Contains("yes"));
        Assert.Contains(outputs, o => o.GetData("text/html") is string h && h.Contains("data:image/png;base64,"));
        Assert.Contains(outputs, o => o.GetData("text/html") is string h && h.Contains("Plotly.newPlot") && !h.Contains("src=\"https://cdn.plot.ly"));
        Assert.Contains(outputs, o => o.GetData("text/html") is string h && h.Contains("<table") && h.Contains("labeler"));
    }

    [Fact]
    public async Task Encoder_comparison_notebook_shows_the_four_encoder_table_the_claim_tsne_and_the_ablation_table()
    {
        // With the shared real sample beside the clone, the real-data check runs too; without it, the cell says it skipped.
        var real = TestPaths.RealSample;
        var nb = await Run("05-probes-and-tsne.ipynb", EncoderComparisonParameters + (real is null ? "" : $";realData={real}"));
        var outputs = nb.Cells.SelectMany(c => c.Outputs).ToList();
        var html = outputs.Select(o => o.GetData("text/html")).OfType<string>().ToList();
        Assert.Contains(html, h => h.Contains("<table") && h.Contains("dino") && h.Contains("clip") && h.Contains("supervised") && h.Contains("random") && h.Contains("linear/macro_auc"));
        Assert.Contains(html, h => h.Contains("<table") && h.Contains("RAD-DINO claim") && h.Contains("beats language supervision clearly"));
        // The claim table's verdicts follow from its numbers, and its numbers are the encoder table's (not a fixed text).
        var probeTable = HtmlTable(html.First(h => h.Contains("<table") && h.Contains("linear/macro_auc") && !h.Contains("RAD-DINO claim")));
        var claimTable = HtmlTable(html.First(h => h.Contains("<table") && h.Contains("RAD-DINO claim")));
        Assert.Equal(7, claimTable.Count);
        foreach (var row in claimTable)
        {
            var probeRow = probeTable.Single(r => r["metric"] == row["metric"]);
            foreach (var enc in new[] { "dino", "clip", "supervised", "random" }) Assert.Equal(probeRow[enc], row[enc]);
            double d = Num(row["dino"]), c = Num(row["clip"]);
            bool lowerBetter = row["metric"] == "age/mae_years";
            double adv = lowerBetter ? (c - d) / Math.Max(Math.Abs(c), 1e-9) : d - c;
            if (double.IsFinite(adv)) Assert.Equal(adv, Num(row["dino advantage"]), 9);
            else Assert.Equal("", row["dino advantage"]);
            bool clearly = row["RAD-DINO claim (images-only vs text-supervised)"].StartsWith("beats", StringComparison.Ordinal);
            var all = new[] { d, c, Num(row["supervised"]), Num(row["random"]) };
            string expected = !all.All(double.IsFinite) || all.Max() - all.Min() <= 1e-9 ? "undecided (missing, or all four encoders equal)"
                : (clearly ? adv > 0.02 : adv >= -0.02) ? "holds" : "does not hold";
            Assert.Equal(expected, row["measured here"]);
        }
        Assert.Contains(outputs, o => o.Text is string t && t.Contains("RAD-DINO's claim"));
        foreach (var enc in new[] { "dino", "clip", "supervised", "random" })
            Assert.Contains(html, h => h.Contains("Plotly.newPlot") && h.Contains($"{enc}: by sex"));
        Assert.Contains(html, h => h.Contains("<table") && h.Contains("no-ibot") && h.Contains("baseline"));
        Assert.Contains(html, h => h.Contains("<table") && h.Contains("dino sd") && h.Contains("clip sd"));
        Assert.Contains(outputs, o => o.Text is string t && t.Contains("Over 2 seeds (0, 1)"));
        if (real is null) Assert.Contains(outputs, o => o.Text is string t && t.Contains("real-data check skipped"));
        else
        {
            Assert.Contains(outputs, o => o.Text is string t && t.Contains("tuberculosis vs normal k-NN AUC") && t.Contains("vs random init"));
            Assert.Contains(html, h => h.Contains("Plotly.newPlot"));
        }
    }

    /// <summary>The rows of the first table in a DataFrame's HTML, by column header (the unnamed index column left out).</summary>
    private static List<Dictionary<string, string>> HtmlTable(string html)
    {
        static List<string> Cells(string row, string tag) => System.Text.RegularExpressions.Regex
            .Matches(row, $"<{tag}>(.*?)</{tag}>", System.Text.RegularExpressions.RegexOptions.Singleline)
            .Select(m => System.Net.WebUtility.HtmlDecode(m.Groups[1].Value)).ToList();
        int start = html.IndexOf("<table>", StringComparison.Ordinal), end = html.IndexOf("</table>", start, StringComparison.Ordinal);
        var rows = System.Text.RegularExpressions.Regex.Matches(html[start..end], "<tr>(.*?)</tr>", System.Text.RegularExpressions.RegexOptions.Singleline)
            .Select(m => m.Groups[1].Value).ToList();
        var header = Cells(rows[0], "th");
        return rows.Skip(1).Select(r => Cells(r, "td")).Select(cells => Enumerable.Range(1, header.Count - 1)
            .ToDictionary(i => header[i], i => cells[i])).ToList();
    }

    private static double Num(string cell) => cell.Length == 0 ? double.NaN : double.Parse(cell, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Rad_dino_notebook_shows_crops_loss_charts_attention_maps_and_tsne_scatters()
    {
        var nb = await Run("04-rad-dino-pretraining.ipynb", RadDinoParameters);
        var outputs = nb.Cells.SelectMany(c => c.Outputs).ToList();
        var html = outputs.Select(o => o.GetData("text/html")).OfType<string>().ToList();
        Assert.True(outputs.Count(o => o.GetData("text/html") is string h && h.Contains("data:image/png;base64,")) >= 2, "expected the crop grid and the attention grid as PNGs");
        Assert.Contains(html, h => h.Contains("Plotly.newPlot") && h.Contains("DINOv2 losses") && h.Contains("\"dino\"") && h.Contains("\"ibot\"") && h.Contains("\"koleo\""));
        Assert.Contains(html, h => h.Contains("Plotly.newPlot") && h.Contains("teacher_entropy"));
        Assert.Contains(html, h => h.Contains("Plotly.newPlot") && h.Contains("by finding"));
        Assert.Contains(html, h => h.Contains("Plotly.newPlot") && h.Contains("Viridis"));
        Assert.Contains(outputs, o => o.Text is string t && t.Contains("3 steps in"));
    }
}
