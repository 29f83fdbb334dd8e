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

    /// <summary>Reads each image's index from its constant pixel value and returns that row of the given probabilities.</summary>
    private sealed class IndexScorer(float[,] probabilities) : IFindingScorer
    {
        public List<int> Seen { get; } = [];

        public Tensor Predict(Tensor images)
        {
            var values = images.mean([1L, 2L, 3L]).data<float>().ToArray();
            var p = new float[values.Length * 14];
            for (int i = 0; i < values.Length; i++)
            {
                int row = (int)Math.Round(values[i] * 100);
                Seen.Add(row);
                for (int o = 0; o < 14; o++) p[i * 14 + o] = probabilities[row, o];
            }
            return tensor(p, [values.Length, 14]);
        }
    }

    [Fact]
    public void The_judge_ceiling_scores_real_images_showing_exactly_each_prompts_findings_and_falls_where_the_judge_confuses_findings()
    {
        // 12 real images: 0-3 effusion; 4-5 atelectasis; 6 both (matches no prompt); 7 effusion with lung opacity (no
        // prompt names opacity, so it counts as effusion alone); 8-11 normal.
        var labels = new float[12, 14];
        foreach (int i in new[] { 0, 1, 2, 3, 6, 7 }) labels[i, (int)Observation.PleuralEffusion] = 1;
        foreach (int i in new[] { 4, 5, 6 }) labels[i, (int)Observation.Atelectasis] = 1;
        labels[7, (int)Observation.LungOpacity] = 1;
        using var images = stack(Enumerable.Range(0, 12).Select(i => full(new long[] { 1, 8, 8 }, i / 100f)).ToArray());
        using var labelTensor = tensor(labels.Cast<float>().ToArray(), [12, 14]);
        var prompts = new List<AdherencePrompt>
        {
            new("Small left pleural effusion.", [Observation.PleuralEffusion]),
            new("Left basilar atelectasis.", [Observation.Atelectasis]),
            new("Normal chest radiograph.", []),
        };

        var perfect = new IndexScorer(labels);
        var (ceiling, shortPrompts) = PromptAdherence.JudgeCeiling(images, labelTensor, prompts, perfect, imagesPerPrompt: 5);
        Assert.Equal(new[] { 0, 1, 2, 3, 7, 4, 5, 8, 9, 10, 11 }, perfect.Seen);
        Assert.Equal(11, ceiling.Images);
        Assert.Equal(new[] { "Left basilar atelectasis.", "Normal chest radiograph." }, shortPrompts);
        Assert.All(ceiling.Findings, f => Assert.Equal(1.0, f.Auc, 9));

        // A judge whose effusion output also fires on atelectasis: the effusion ceiling falls to (5·4 + 5·2·½) / (5·6).
        var confused = (float[,])labels.Clone();
        foreach (int i in new[] { 4, 5 }) confused[i, (int)Observation.PleuralEffusion] = 1;
        var (lower, _) = PromptAdherence.JudgeCeiling(images, labelTensor, prompts, new IndexScorer(confused), imagesPerPrompt: 5);
        Assert.Equal(25.0 / 30, lower.Findings.Single(f => f.Finding == Observation.PleuralEffusion).Auc, 9);
        Assert.Equal(1.0, lower.Findings.Single(f => f.Finding == Observation.Atelectasis).Auc, 9);

        Assert.Throws<ArgumentException>(() => PromptAdherence.JudgeCeiling(images, labelTensor.narrow(0, 0, 11), prompts, perfect, 5));
        var onlyBoth = new List<AdherencePrompt> { new("Effusion and atelectasis.", [Observation.PleuralEffusion, Observation.Atelectasis]) };
        Assert.Equal(1, PromptAdherence.JudgeCeiling(images, labelTensor, onlyBoth, perfect, 5).Ceiling.Images);
        var nothing = new List<AdherencePrompt> { new("Right pneumothorax.", [Observation.Pneumothorax]) };
        var err = Assert.Throws<InvalidOperationException>(() => PromptAdherence.JudgeCeiling(images, labelTensor, nothing, perfect, 5));
        Assert.Contains("none of the 12 real images", err.Message);
    }

    [Fact]
    public void Each_prompt_gets_its_own_auc_against_the_images_of_prompts_not_naming_its_findings()
    {
        // Images 0-1: "effusion A"; 2-3: "effusion B" (the wording the generator ignores); 4-5: "effusion and atelectasis";
        // 6-7: normal. Effusion probabilities: A 0.9, 0.8; B 0.1, 0.3; both 0.7, 0.2; normal 0.2, 0.4.
        // Atelectasis probabilities: 0.1 everywhere except image 4 (0.6) and image 6 (0.6).
        var p = new float[8, 14];
        float[] effusion = [0.9f, 0.8f, 0.1f, 0.3f, 0.7f, 0.2f, 0.2f, 0.4f];
        for (int i = 0; i < 8; i++)
        {
            p[i, (int)Observation.PleuralEffusion] = effusion[i];
            p[i, (int)Observation.Atelectasis] = i is 4 or 6 ? 0.6f : 0.1f;
        }
        var ef = new AdherencePrompt("effusion A", [Observation.PleuralEffusion]);
        var efB = new AdherencePrompt("effusion B", [Observation.PleuralEffusion]);
        var both = new AdherencePrompt("effusion and atelectasis", [Observation.PleuralEffusion, Observation.Atelectasis]);
        var normal = new AdherencePrompt("normal", []);
        var prompts = new[] { ef, ef, efB, efB, both, both, normal, normal };
        var images = stack(Enumerable.Range(0, 8).Select(i => full(1, 8, 8, i / 100f)).ToArray());
        var result = PromptAdherence.Score(images, prompts, new IndexScorer(p));

        var rows = result.Prompts!;
        Assert.Equal(["effusion A", "effusion B", "effusion and atelectasis"], rows.Select(r => r.Prompt));   // normal prompts have no row
        // "effusion A" (0.9, 0.8) against the normal images (0.2, 0.4): every pair ranked right.
        Assert.Equal(1.0, rows[0].Auc, 12);
        Assert.Equal(0.85, rows[0].MeanProbability, 6);
        // "effusion B" (0.1, 0.3) against (0.2, 0.4): only 0.3 > 0.2 of the four pairs.
        Assert.Equal(0.25, rows[1].Auc, 12);
        Assert.Equal(2, rows[1].Images);
        // "effusion and atelectasis": effusion (0.7, 0.2) vs (0.2, 0.4): 0.7 beats both, 0.2 ties 0.2 (half) → 2.5 / 4;
        // atelectasis (0.6, 0.1) vs the six images not naming it (0.1 ×5, 0.6 at image 6): 0.6 beats five, ties one → 5.5;
        // 0.1 ties five → 2.5; (5.5 + 2.5) / 12 = 2/3. Mean of the two.
        Assert.Equal([Observation.Atelectasis.Name(), Observation.PleuralEffusion.Name()], rows[2].Findings);   // CheXpert order
        Assert.Equal((2.5 / 4 + 8.0 / 12) / 2, rows[2].Auc, 12);
        Assert.Equal((0.7 + 0.2 + 0.6 + 0.1) / 4, rows[2].MeanProbability, 6);

        Assert.Equal(["effusion B", "effusion and atelectasis"], result.LeastFollowed(2).Select(r => r.Prompt));
        Assert.Equal(3, result.ToPromptDataFrame().Rows.Count);
        Assert.Contains("\"prompts\"", result.ToJson());
        Assert.Contains("effusion B", result.ToJson());
        // A result built from per-finding rows alone has no prompt rows, and says so by being empty.
        Assert.Empty(new PromptAdherenceResult(result.Findings, 8).LeastFollowed(3));
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
