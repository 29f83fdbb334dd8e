using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Training;
using RoentGen.Vision;
using TorchSharp;
using static TorchSharp.torch;
using RoentGen.Methods;

namespace RoentGen.Tests.Vision;

public class AttentionMapsTests
{
    private static readonly VitConfig Tiny = new() { ImageSize = 32, PatchSize = 8, HiddenSize = 32, Layers = 2, Heads = 2 };

    [Fact]
    public void Cls_attention_maps_are_the_cls_row_of_the_last_attention_over_patches()
    {
        using var scope = NewDisposeScope();
        using var vit = new VisionTransformer(Tiny with { RegisterTokens = 2 });
        vit.eval();
        var x = randn(2, 1, 32, 40);                                  // 4 x 5 patches
        var maps = vit.ClsAttentionMaps(x);
        Assert.Equal([2L, 2, 4, 5], maps.shape);
        var att = vit.LastAttention(x);                               // (2, 2, 1 + 2 + 20, same)
        Assert.True(maps.flatten(2).allclose(att.select(2, 0).narrow(2, 3, 20)), "maps are not the CLS row over the patch tokens");
        // Independently: capture the last layer's per-head queries and keys during an ordinary forward pass (through a
        // processor), compute softmax(QKᵀ/√d) here and take the CLS query's row over the 20 patch keys.
        var capture = new CapturingProcessor();
        vit.SetAttentionProcessor(_ => capture);
        using (no_grad()) vit.Forward(x);
        vit.SetAttentionProcessor(_ => RoentGen.Nn.ScaledDotProductProcessor.Instance);
        Assert.Equal(Tiny.Layers, capture.Calls);
        var (q, k) = (capture.Query!, capture.Key!);                  // (2, 2, 23, 16)
        var probs = matmul(q, k.transpose(2, 3)).div(Math.Sqrt(q.shape[3])).softmax(3);
        var expected = probs.select(2, 0).narrow(2, 1 + 2, 20).reshape(2, 2, 4, 5);
        Assert.True(maps.allclose(expected, rtol: 1e-4, atol: 1e-6), $"maps differ from softmax(QKᵀ/√d) of the last layer by {(maps - expected).abs().max().item<float>()}");
        var sums = maps.sum([2, 3]);
        Assert.True((sums <= 1 + 1e-5).all().item<bool>() && (sums > 0).all().item<bool>());
    }

    // Keeps the queries and keys of the last call, and attends as the default processor does.
    private sealed class CapturingProcessor : RoentGen.Nn.IAttentionProcessor
    {
        public Tensor? Query, Key;
        public int Calls;
        public Tensor Attend(Tensor query, Tensor key, Tensor value, RoentGen.Nn.AttentionCall call)
        {
            Calls++;
            Query = query.detach().clone().DetachFromDisposeScope();
            Key = key.detach().clone().DetachFromDisposeScope();
            return RoentGen.Nn.ScaledDotProductProcessor.Instance.Attend(query, key, value, call);
        }
    }

    [Fact]
    public void Mass_mask_keeps_the_fewest_patches_holding_the_mass()
    {
        using var scope = NewDisposeScope();
        var map = tensor(new float[] { 0.5f, 0.1f, 0.3f, 0.1f }).view(2, 2);
        var m = AttentionMaps.MassMask(map, 0.6, 4, 4);              // 0.5 + 0.3 is the smallest set reaching 0.6
        Assert.Equal(1f, m[0, 0]); Assert.Equal(1f, m[1, 1]);        // top-left patch
        Assert.Equal(0f, m[2, 0]); Assert.Equal(0f, m[3, 1]);        // top-right patch (x = 2..3, y = 0..1)
        Assert.Equal(1f, m[0, 2]); Assert.Equal(1f, m[1, 3]);        // bottom-left patch
        Assert.Equal(0f, m[3, 3]);
        Assert.Equal(8, m.Pixels.Count(v => v == 1f));
        Assert.Equal(4, AttentionMaps.MassMask(map, 0.4, 4, 4).Pixels.Count(v => v == 1f));
        Assert.Throws<ArgumentException>(() => AttentionMaps.MassMask(map, 0, 4, 4));

        var heat = AttentionMaps.Heatmap(map, 8, 8);
        Assert.Equal(1f, heat.Pixels.Max(), 5);
        Assert.Equal(0f, heat.Pixels.Min(), 5);
        Assert.True(heat[0, 0] > heat[7, 0], "the heatmap is not brightest where the attention is largest");
    }

    [Fact]
    public void Grid_has_image_mean_mask_and_one_map_per_head_for_each_image_and_restores_training_mode()
    {
        using var vit = new VisionTransformer(Tiny with { Channels = 3 });   // gray images are repeated to 3 channels
        vit.train();
        var images = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 1 }).Generate(0, 2).Select(c => c.Image).ToList();
        var grid = AttentionMaps.Grid(vit, images);
        Assert.Equal(2 * (3 + 2), grid.Cells.Count);
        Assert.Equal(5, grid.Columns);
        Assert.NotNull(grid.Cells[2].Mask);
        Assert.True(vit.training, "the model's training flag was not restored");
        Assert.True(grid.ToPng().Length > 100);
        Assert.Throws<ArgumentException>(() => AttentionMaps.ClsAttention(vit, [new GrayImage(30, 32)]));
    }

    [Fact]
    public void Dino_loss_chart_draws_the_total_and_each_reported_term()
    {
        var history = new TrainingHistory { Loss = [3, 2.5, 2] };
        history.Metrics["dino"] = [2, 1.5, 1.2];
        history.Metrics["koleo"] = [-0.5, -0.6, -0.7];
        history.Metrics["teacher_entropy"] = [4, 3.9, 3.8];
        var losses = DinoCharts.Losses(history);
        Assert.Equal("DINOv2 losses", losses.Title);
        Assert.Equal(["total", "dino", "koleo"], losses.Traces.Select(t => t.Name));
        Assert.All(losses.Traces, t => Assert.Equal(3, Assert.IsType<ScatterTrace>(t).Y.Count));
        var collapse = DinoCharts.Collapse(history);
        Assert.Equal(["teacher_entropy"], collapse.Traces.Select(t => t.Name));
        Assert.Null(collapse.Layout.YAxis2);
    }
}
