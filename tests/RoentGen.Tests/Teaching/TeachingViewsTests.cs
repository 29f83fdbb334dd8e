using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Evaluation;
using RoentGen.Methods;
using RoentGen.Platform;
using RoentGen.Training;
using static TorchSharp.torch;

namespace RoentGen.Tests.Teaching;

/// <summary>The library views the teaching notebooks show beside their equations.</summary>
[Collection(ProcessStateCollection.Name)]
public class TeachingViewsTests
{
    [Fact]
    public void Long_captions_wrap_onto_lines_that_fit_and_keep_every_word_up_to_three_lines()
    {
        const string caption = "Lung Opacity, Consolidation, Pleural Effusion";
        int width = 128, scale = 1;
        var lines = ImageGrid.WrapCaption(caption, width, scale);
        Assert.True(lines.Count > 1);
        Assert.All(lines, l => Assert.True(BitmapFont.MeasureWidth(l, scale) <= width, $"'{l}' is wider than {width}"));
        Assert.Equal(caption.Replace(" ", ""), string.Concat(lines).Replace(" ", ""));
        var tooLong = ImageGrid.WrapCaption(string.Join(" ", Enumerable.Repeat("effusion", 20)), width, scale);
        Assert.Equal(ImageGrid.MaxCaptionLines, tooLong.Count);
        Assert.EndsWith("...", tooLong[^1]);
        // The grid's caption strip grows to the wrapped caption's lines; a short caption keeps one line.
        var img = new GrayImage(128, 128, new float[128 * 128]);
        var one = new ImageGrid(columns: 1) { FontScale = 1 }.Add(img, "no finding");
        var wrapped = new ImageGrid(columns: 1) { FontScale = 1 }.Add(img, caption);
        Assert.Equal(lines.Count * one.CaptionRect(0).H, wrapped.CaptionRect(0).H);
    }

    [Fact]
    public void Collapse_panels_put_entropy_and_prototype_counts_on_separate_charts_with_reference_lines()
    {
        var h = new TrainingHistory { Loss = [3, 2.5, 2] };
        h.Metrics["dino"] = [5.6, 5.55, 5.54];
        h.Metrics["ibot"] = [5.6, 5.2, 4.9];
        h.Metrics["koleo"] = [5.9, 3.0, 1.5];
        h.Metrics["teacher_entropy"] = [5.5, 5.5, 5.4];
        h.Metrics["effective_prototypes"] = [250, 240, 200];
        var (entropy, counts) = DinoCharts.CollapsePanels(h, 256);
        Assert.Equal(["teacher_entropy", "log K = 5.55 (uniform targets)"], entropy.Traces.Select(t => t.Name));
        Assert.Equal("effective_prototypes", counts.Traces[0].Name);
        Assert.Contains(counts.Traces, t => t.Name!.StartsWith("K = 256"));
        Assert.DoesNotContain(entropy.Traces.Concat(counts.Traces), t => t.SecondYAxis);
        Assert.True(entropy.Layout.YAxis!.Range!.Value.Max < 10 && counts.Layout.YAxis!.Range!.Value.Max > 256);

        var cfg = DinoConfig.FromPreset("tiny");
        var table = DinoCharts.LossReadout(h, cfg, window: 2);
        Assert.Equal(["dino", "ibot", "koleo"], table.Columns["term"].Cast<string>());
        Assert.Equal(5.6, (double)table.Columns["first step"][0]!, 9);
        Assert.Equal((5.2 + 4.9) / 2, (double)table.Columns["last 2 steps (mean)"][1]!, 9);
        Assert.Equal(cfg.KoLeoWeight, (double)table.Columns["weight"][2]!, 9);
        Assert.Contains("log K", (string)table.Columns["reference"][0]!);
    }

    [Fact]
    public void Adherence_intervals_are_hanley_mcneil_around_the_auc_and_hold_half_for_few_images()
    {
        var r = new PromptAdherenceResult([new FindingAdherence(Observation.PleuralEffusion, 0.70, 8, 8, 0.6, 0.4), new FindingAdherence(Observation.Cardiomegaly, 0.3, 200, 200, 0.2, 0.5)], 416);
        var df = r.ToDataFrameWithIntervals();
        double se = RoentGen.Evaluation.Statistics.HanleyMcNeil.StandardError(0.70, 8, 8);
        Assert.Equal(se, (double)df.Columns["auc_se"][0]!, 12);
        Assert.Equal(0.70 - 1.959964 * se, (double)df.Columns["auc_low"][0]!, 5);
        Assert.True((double)df.Columns["auc_low"][0]! < 0.5, "8 against 8 images cannot tell 0.70 from chance");
        Assert.True((double)df.Columns["auc_high"][1]! < 0.5, "0.3 with 200 against 200 is below chance");
        Assert.Equal(r.ToDataFrame().Columns.Count + 3, df.Columns.Count);
    }

    [Fact]
    public void Varied_report_sample_starts_normal_and_covers_different_findings_once_each()
    {
        var cases = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 7 }).Generate(0, 200);
        var sample = DataTour.VariedReportSample(cases, 8);
        Assert.Equal(8, sample.Count);
        Assert.All(sample[0].Present, o => Assert.Equal(Observation.NoFinding, o));
        Assert.Equal(sample.Count, sample.Distinct().Count());
        Assert.True(sample.Count(c => c.Present.All(o => o == Observation.NoFinding)) <= 2, "at most the normal case and the hedged case are normal");
        Assert.True(sample.SelectMany(c => c.Present).Where(o => o != Observation.NoFinding).Distinct().Count() >= 5, "the sample should show several findings");
        Assert.Contains(sample, c => Observations.All.Any(o => c.Labels[o] == Mention.Uncertain));
    }

    [Fact]
    public void Guidance_sweep_scores_fidelity_and_diversity_per_scale()
    {
        var same = zeros(3, 1, 32, 32);
        var varied = rand(3, 1, 32, 32, generator: new TorchSharp.torch.Generator(seed: 1)) * 2 - 1;
        var rows = GuidanceSweep.Measure([1, 7], [varied, same], new ConstantScorer(0.25f), Observation.PleuralEffusion);
        Assert.Equal(0.25, rows[0].MeanProbability, 6);
        Assert.Equal(1.0, rows[1].MsSsim, 4);              // identical samples: no diversity
        Assert.True(rows[0].MsSsim < rows[1].MsSsim);
        Assert.Equal(6, GuidanceSweep.ToDataFrame(rows).Columns.Count);
        Assert.Throws<ArgumentException>(() => GuidanceSweep.Measure([1], [zeros(1, 1, 32, 32)], new ConstantScorer(0.5f), Observation.PleuralEffusion));
    }

    [Fact]
    public void Matmul_sweep_measures_each_size_at_the_current_threads_and_one_and_restores_the_count()
    {
        int before = get_num_threads();
        var rows = Doctor.MatmulSweep([64, 128], repeats: 1);
        Assert.Equal(before, get_num_threads());
        Assert.Equal(before > 1 ? 4 : 2, rows.Count);
        Assert.All(rows, r => Assert.True(r.Gflops > 0));
        Assert.Equal([64, 128], rows.Take(2).Select(r => r.Size));
    }

    private sealed class ConstantScorer(float p) : IFindingScorer
    {
        public Tensor Predict(Tensor images) => full(images.shape[0], Observations.All.Count, p);
    }
}

[Collection(ProcessStateCollection.Name)]
public class EncoderShowcaseTests
{
    [Fact]
    public void Showcase_draws_each_structures_predicted_mask_per_image_and_a_generated_report()
    {
        using var vit = new RoentGen.Vision.VisionTransformer(new RoentGen.Vision.VitConfig { ImageSize = 32, PatchSize = 8, HiddenSize = 32, Layers = 1, Heads = 2 });
        var encoder = new RoentGen.Evaluation.Probes.VitEncoder(vit, "tiny");
        var data = RoentGen.Evaluation.Probes.ProbeData.FromPhantoms(30, size: 32, seed: 5);
        var options = RoentGen.Experiments.EncoderComparisonConfig.ProbesFor("tiny");
        var show = RoentGen.Experiments.EncoderShowcases.Run(encoder, data, options, images: 2);
        Assert.Equal("tiny", show.Encoder);
        int structures = show.Segmentation.PerStructure.Count;
        Assert.True(structures >= 2);
        Assert.Equal(2, show.Segmentation.Predictions!.shape[0]);
        Assert.Equal(2 * structures, show.Masks.Cells.Count);
        Assert.All(show.Masks.Cells, c => Assert.NotNull(c.Mask));
        Assert.False(string.IsNullOrEmpty(show.ReferenceReport));
        Assert.NotNull(show.GeneratedReport);
        var labels = RoentGen.Experiments.EncoderShowcases.Has(data.Train, Observation.NoFinding);
        Assert.Equal(data.Train.Count, labels.Length);
        Assert.Equal(Enumerable.Range(0, data.Train.Count).Select(i => data.Train.Labels[i, 0] > 0.5f), labels);
    }
}
