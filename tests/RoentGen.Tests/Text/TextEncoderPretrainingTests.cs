using RoentGen.Data;
using RoentGen.Diffusion;
using RoentGen.Text;
using RoentGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Text;

// Seeds the global generator (the encoder's initial weights) and checks that two runs agree, so it runs alone.
[Collection(ProcessStateCollection.Name)]
public class TextEncoderPretrainingTests
{
    private static int Col(Observation o) => TextEncoderPretraining.Findings.ToList().IndexOf(o);
    private static int F => TextEncoderPretraining.Findings.Count;

    [Fact]
    public void Targets_are_the_findings_a_prompt_names_with_the_side_of_their_sentence()
    {
        string[] prompts =
        [
            "Small left pleural effusion.",
            "No pleural effusion or pneumothorax. The heart is enlarged.",
            "Right lower lobe consolidation. Possible small left pneumothorax.",
            "Small bilateral pleural effusions.",
            "",
        ];
        var t = TextEncoderPretraining.Targets(prompts);
        Assert.Equal(prompts.Length * TextEncoderPretraining.TargetCount, t.Length);
        float At(int row, int col) => t[row * TextEncoderPretraining.TargetCount + col];
        int eff = Col(Observation.PleuralEffusion), ptx = Col(Observation.Pneumothorax), cons = Col(Observation.Consolidation), cm = Col(Observation.Cardiomegaly);

        Assert.Equal(1, At(0, eff)); Assert.Equal(1, At(0, F + eff)); Assert.Equal(0, At(0, 2 * F + eff));
        Assert.Equal(1, t.Skip(0).Take(TextEncoderPretraining.TargetCount).Sum() - 1);   // effusion and its side, nothing else

        Assert.Equal(0, At(1, eff)); Assert.Equal(0, At(1, ptx));   // negated findings are not targets
        Assert.Equal(1, At(1, cm));

        Assert.Equal(1, At(2, cons)); Assert.Equal(1, At(2, 2 * F + cons)); Assert.Equal(0, At(2, F + cons));
        Assert.Equal(1, At(2, ptx)); Assert.Equal(1, At(2, F + ptx)); Assert.Equal(0, At(2, 2 * F + ptx));   // uncertain counts, side of its own sentence

        Assert.Equal(1, At(3, eff)); Assert.Equal(0, At(3, F + eff)); Assert.Equal(0, At(3, 2 * F + eff));   // bilateral names no single side
        Assert.All(Enumerable.Range(0, TextEncoderPretraining.TargetCount), c => Assert.Equal(0, At(4, c)));
    }

    [Fact]
    public void Pretraining_teaches_the_mean_token_state_the_findings_and_is_deterministic()
    {
        var prompts = Enumerable.Range(0, 64).Select(i => (i % 4) switch
        {
            0 => "Small left pleural effusion.",
            1 => "Small right pleural effusion.",
            2 => "No acute cardiopulmonary process.",
            _ => "Moderate cardiomegaly. No pleural effusion.",
        }).ToList();
        var tokenizer = BpeTokenizer.Train(prompts, 300);
        var cfg = new ClipTextConfig { VocabSize = tokenizer.VocabSize, EndTokenId = tokenizer.EndId, MaxPositions = 16, HiddenSize = 32, Layers = 1, Heads = 2, IntermediateSize = 64 };
        var ids = tokenizer.EncodeBatch(prompts, 16).Ids;
        var targets = TextEncoderPretraining.Targets(prompts);

        ClipTextModel Trained(out TextPretrainingResult r)
        {
            manual_seed(3);
            var m = new ClipTextModel(cfg);
            r = TextEncoderPretraining.Run(m, ids, targets, steps: 300, batch: 16, lr: 1e-2, seed: 5);
            return m;
        }
        var a = Trained(out var ra);
        var b = Trained(out var rb);
        Assert.True(ra.LastLoss < 0.5 * ra.FirstLoss, $"loss went from {ra.FirstLoss:F3} to {ra.LastLoss:F3}");
        Assert.Equal(ra, rb);
        var wb = b.state_dict();
        Assert.All(a.state_dict(), kv => Assert.True(kv.Value.eq(wb[kv.Key]).all().item<bool>(), $"{kv.Key} differs between two runs of one seed"));

        // Its head tells the findings and the sides apart on the training prompts; an encoder trained for one step does not.
        Assert.True(ra.FindingBalancedAccuracy > 0.95, $"finding balanced accuracy {ra.FindingBalancedAccuracy:F3}");
        Assert.True(ra.SideBalancedAccuracy > 0.95, $"side balanced accuracy {ra.SideBalancedAccuracy:F3}");
        manual_seed(3);
        var once = TextEncoderPretraining.Run(new ClipTextModel(cfg), ids, targets, steps: 1, batch: 16, lr: 3e-3, seed: 5);
        Assert.True(once.SideBalancedAccuracy < 0.9, $"one step already reached side balanced accuracy {once.SideBalancedAccuracy:F3}: the check above proves nothing");
    }

    [Fact]
    public void Bad_inputs_are_refused_with_what_was_wrong()
    {
        var m = new ClipTextModel(new ClipTextConfig { VocabSize = 50, EndTokenId = 1, MaxPositions = 8, HiddenSize = 16, Layers = 1, Heads = 2, IntermediateSize = 32 });
        var ids = zeros(4, 8, dtype: ScalarType.Int64);
        var ok = new float[4 * TextEncoderPretraining.TargetCount];
        Assert.Contains("targets", Assert.Throws<ArgumentException>(() => TextEncoderPretraining.Run(m, ids, new float[5], 1)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TextEncoderPretraining.Run(m, ids, ok, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => TextEncoderPretraining.Run(m, ids, ok, 1, batch: 0));
        Assert.Throws<ArgumentException>(() => TextEncoderPretraining.Run(m, zeros(4, dtype: ScalarType.Int64), ok, 1));
        Assert.Throws<ArgumentException>(() => (LdmExperimentConfig.Tiny with { TextPretrainSteps = -1 }).Validate());
    }
}
