using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using static TorchSharp.torch;

namespace RoentGen.Tests.Evaluation;

/// <summary>
/// Real phantom images stand in for generated ones, and an oracle scorer that recognises each phantom (by its pixels)
/// stands in for a trained classifier: the adherence bookkeeping (prompt → finding → AUC) is what is under test.
/// </summary>
public class PromptAdherenceTests
{
    private static readonly IReadOnlyList<PhantomCase> Pool = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 21 }).Generate(0, 240);

    /// <summary>Recognises a pool image by a checksum of its pixels; probability = 0.6·present + 0.4·noise.</summary>
    internal sealed class OracleScorer(IReadOnlyList<PhantomCase> pool, int seed) : IFindingScorer
    {
        private readonly (double Key, PhantomCase Case)[] _keys = pool.Select(c => (Key(c.Image.Pixels), c)).ToArray();
        private readonly Random _rng = new(seed);

        private static double Key(float[] px)
        {
            double s = 0;
            for (int i = 0; i < px.Length; i++) s += px[i] * (1 + i % 97);
            return s;
        }

        public Tensor Predict(Tensor images)
        {
            var unit = ImageTensors.Unstack(images);
            var p = new float[unit.Length * 14];
            for (int i = 0; i < unit.Length; i++)
            {
                double k = Key(unit[i].Pixels);   // the nearest checksum: [-1, 1] round trips move pixels by rounding only
                var c = _keys.MinBy(e => Math.Abs(e.Key - k)).Case;
                for (int o = 0; o < 14; o++) p[i * 14 + o] = (c.Present.Contains((Observation)o) ? 0.6f : 0f) + 0.4f * (float)_rng.NextDouble();
            }
            return tensor(p, [unit.Length, 14]);
        }
    }

    /// <summary>Returns, for each prompt, a pool phantom showing the prompt's finding (or a normal one for a normal prompt).</summary>
    private static Tensor Faithful(IReadOnlyList<string> prompts, Random rng)
    {
        var images = new List<GrayImage>();
        foreach (var text in prompts)
        {
            var named = PromptAdherence.DefaultPrompts.First(p => p.Text == text).Findings;
            var fits = Pool.Where(c => named.Count == 0 ? c.Truth.IsNormal : named.All(c.Present.Contains)).ToList();
            images.Add(fits[rng.Next(fits.Count)].Image);
        }
        return ImageTensors.Stack(images);
    }

    private static Tensor Random(IReadOnlyList<string> prompts, Random rng) =>
        ImageTensors.Stack(prompts.Select(_ => Pool[rng.Next(Pool.Count)].Image));

    [Fact]
    public void A_generator_that_draws_the_prompted_finding_scores_high_and_one_that_ignores_prompts_scores_chance()
    {
        var rngA = new Random(1);
        var good = PromptAdherence.Evaluate(p => Faithful(p, rngA), new OracleScorer(Pool, 2), imagesPerPrompt: 4, batchSize: 10);
        Assert.Equal(PromptAdherence.DefaultFindings.OrderBy(o => o), good.Findings.Select(f => f.Finding));
        Assert.Equal(PromptAdherence.DefaultPrompts.Count * 4, good.Images);
        Assert.True(good.MeanAuc > 0.9, $"faithful generator: mean AUC {good.MeanAuc:F3}");
        Assert.All(good.Findings, f => Assert.True(f.Auc > 0.75, $"{f.Finding}: AUC {f.Auc:F3}"));
        Assert.All(good.Findings, f => Assert.True(f.MeanProbabilityNamed > f.MeanProbabilityNotNamed));

        var rngB = new Random(3);
        var ignoring = PromptAdherence.Evaluate(p => Random(p, rngB), new OracleScorer(Pool, 4), imagesPerPrompt: 4, batchSize: 10);
        Assert.InRange(ignoring.MeanAuc, 0.38, 0.62);
        var cm = good.Findings.Single(f => f.Finding == Observation.Cardiomegaly);
        Assert.Equal(16, cm.ImagesNamed);
        Assert.Equal(good.Images - 16, cm.ImagesNotNamed);
    }

    [Fact]
    public void Default_prompts_name_what_the_report_labeler_reads_in_them()
    {
        foreach (var p in PromptAdherence.DefaultPrompts)
        {
            var read = AdherencePrompt.FromText(p.Text).Findings;
            if (p.Findings.Count == 0) Assert.True(read.Count == 0, $"normal prompt '{p.Text}' reads as {string.Join(", ", read)}");
            else Assert.True(p.Findings.All(read.Contains), $"'{p.Text}' should name {string.Join(", ", p.Findings)} but reads as {string.Join(", ", read)}");
        }
        foreach (var f in PromptAdherence.DefaultFindings)
            Assert.True(PromptAdherence.DefaultPrompts.Count(p => p.Findings.Contains(f)) >= 3, $"{f} has fewer than 3 prompts");
        Assert.True(PromptAdherence.DefaultPrompts.Count(p => p.Findings.Count == 0) >= 3);
    }

    [Fact]
    public void Result_becomes_a_table_a_chart_and_json()
    {
        var result = new PromptAdherenceResult(
        [
            new FindingAdherence(Observation.Cardiomegaly, 0.9, 8, 40, 0.7, 0.2),
            new FindingAdherence(Observation.Pneumothorax, 0.6, 6, 42, 0.3, 0.25),
            new FindingAdherence(Observation.Fracture, double.NaN, 0, 48, double.NaN, 0.1),
        ], 48);
        Assert.Equal(0.75, result.MeanAuc, 12);

        var df = result.ToDataFrame();
        Assert.Equal(3, df.Rows.Count);
        Assert.Equal("Pneumothorax", df["finding"][1]);
        Assert.Equal(0.9, (double)df["auc"][0]!, 12);

        var json = result.ToJson();
        Assert.Contains("\"mean_auc\": 0.75", json);
        Assert.Contains("\"Cardiomegaly\"", json);
        Assert.Contains("\"NaN\"", json);

        var chart = result.ToChart();
        Assert.Contains("mean AUC 0.750", chart.Title);
        var bars = Assert.IsType<BarTrace>(Assert.Single(chart.Traces));
        Assert.Equal("AUC", bars.Name);
        Assert.Equal(result.Findings.Select(f => f.Finding.Name()), bars.Categories!);
        Assert.Contains("Pneumothorax", bars.Categories!);
        Assert.Equal(new AxisRange(0, 1), chart.Layout.YAxis!.Range);
        Assert.All(bars.Values, v => Assert.True(double.IsFinite(v)));   // an undefined AUC is drawn as 0
    }

    [Fact]
    public void A_generator_returning_the_wrong_count_is_reported()
    {
        var ex = Assert.Throws<InvalidOperationException>(() =>
            PromptAdherence.Evaluate(p => zeros(p.Count + 1, 1, 64, 64), new OracleScorer(Pool, 0), imagesPerPrompt: 1, batchSize: 4));
        Assert.Contains("for 4 prompts", ex.Message);
    }
}
