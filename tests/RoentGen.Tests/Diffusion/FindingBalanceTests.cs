using System.Text.Json;
using RoentGen.Data.Reports;
using RoentGen.Diffusion;
using RoentGen.Interop;

namespace RoentGen.Tests.Diffusion;

public class FindingBalanceTests
{
    // 80 normal studies, 16 effusions, 4 fractures (one of them with an effusion as well).
    private static IReadOnlyList<string> Prompts()
    {
        var prompts = new List<string>();
        prompts.AddRange(Enumerable.Repeat("No acute cardiopulmonary process.", 80));
        prompts.AddRange(Enumerable.Repeat("Small left pleural effusion.", 16));
        prompts.AddRange(Enumerable.Repeat("Right 7th rib fracture.", 3));
        prompts.Add("Right 7th rib fracture. Small right pleural effusion.");
        return prompts;
    }

    private static double[] DrawShares(FindingBalance b, int draws, int seed, IReadOnlyList<string> prompts)
    {
        var rng = new Random(seed);
        var counts = new double[3];   // normal, effusion only, fracture
        for (int i = 0; i < draws; i++)
        {
            string p = prompts[b.Draw(rng)];
            counts[p.Contains("fracture") ? 2 : p.Contains("effusion") ? 1 : 0]++;
        }
        return counts.Select(c => c / draws).ToArray();
    }

    [Fact]
    public void Rare_findings_are_drawn_more_often_and_power_zero_is_uniform()
    {
        var prompts = Prompts();
        var uniform = FindingBalance.FromPrompts(prompts, 0);
        Assert.All(uniform.Weights, w => Assert.Equal(0.01, w, 12));
        Assert.Equal(0.8, uniform.ClassShare[FindingBalance.NormalClass], 12);
        Assert.Equal(0.17, uniform.ClassShare["Pleural Effusion"], 12);
        Assert.Equal(0.04, uniform.ClassShare["Fracture"], 12);

        var half = DrawShares(FindingBalance.FromPrompts(prompts, 0.5), 40_000, 1, prompts);
        var full = DrawShares(FindingBalance.FromPrompts(prompts, 1), 40_000, 1, prompts);
        var none = DrawShares(uniform, 40_000, 1, prompts);
        Assert.Equal(0.04, none[2], 2);
        // Fractures: 4 % of the images, drawn more often as the power grows; normal studies less often.
        Assert.True(half[2] > 2 * none[2], $"power 0.5 draws fractures {half[2]:F3}, uniform {none[2]:F3}");
        Assert.True(full[2] > half[2] && full[0] < half[0] && half[0] < none[0], $"shares normal/effusion/fracture: {string.Join(" ", full)} vs {string.Join(" ", half)}");
        // Power 1 with one class per image gives each class about the same share (the one two-class image counts as a fracture).
        Assert.Equal(1.0 / 3, full[0], 1);
        Assert.Equal(1.0 / 3, full[2], 1);
        // The image whose rarest finding is a fracture weighs as a fracture.
        var w = FindingBalance.FromPrompts(prompts, 1).Weights;
        Assert.Equal(w[^2], w[^1], 12);
    }

    [Fact]
    public void Draws_are_deterministic_by_seed()
    {
        var b = FindingBalance.FromPrompts(Prompts(), 0.5);
        var r1 = new Random(5);
        var r2 = new Random(5);
        var a = Enumerable.Range(0, 500).Select(_ => b.Draw(r1)).ToList();
        Assert.Equal(a, Enumerable.Range(0, 500).Select(_ => b.Draw(r2)).ToList());
        Assert.All(a, i => Assert.InRange(i, 0, 99));
        Assert.Throws<ArgumentException>(() => FindingBalance.FromPrompts(Prompts(), -0.1));
        Assert.Throws<ArgumentException>(() => FindingBalance.FromPrompts([], 0.5));
    }

    [Fact]
    public void Config_levers_validate_round_trip_and_stay_out_of_old_configs_json()
    {
        var tinyJson = JsonSerializer.Serialize(LdmExperimentConfig.Tiny, SafeTensors.ConfigJsonOptions);
        Assert.DoesNotContain("BalanceFindings", tinyJson);
        Assert.DoesNotContain("ReportStyle", tinyJson);
        var cfg = LdmExperimentConfig.Tiny with { BalanceFindings = 0.5, ReportStyle = ReportStyle.Varied };
        var back = JsonSerializer.Deserialize<LdmExperimentConfig>(JsonSerializer.Serialize(cfg, SafeTensors.ConfigJsonOptions), SafeTensors.ConfigJsonOptions)!;
        Assert.Equal(0.5, back.BalanceFindings);
        Assert.Equal(ReportStyle.Varied, back.ReportStyle);
        var e = Assert.Throws<ArgumentException>(() => (cfg with { BalanceFindings = 5 }).Validate());
        Assert.Contains("BalanceFindings", e.Message);
        Assert.Equal(ReportStyle.Varied, LdmExperimentConfig.Quick.ReportStyle);
        Assert.Null(LdmExperimentConfig.Quick.BalanceFindings);
    }

    [Fact]
    public void Study_preset_validates_and_turns_its_levers_on()
    {
        var s = LdmExperimentConfig.Study;
        s.ValidateParts();
        Assert.Equal(ReportStyle.Varied, s.ReportStyle);
        Assert.True(s.BalanceFindings > 0);
        Assert.Equal(PromptSource.ImpressionAndPositiveFindings, s.Prompt);
        Assert.Equal(LdmExperimentConfig.Quick.FindingLossWeight, s.FindingLossWeight);   // the finding-weighted loss, as Quick (s21)
        Assert.NotNull(s.FindingLossWeight);
        Assert.True(s.TextPretrainSteps >= LdmExperimentConfig.Quick.TextPretrainSteps && LdmExperimentConfig.Quick.TextPretrainSteps > 0);
        // Written to experiment.json when on, left out when off (configs from before the setting read as 0).
        Assert.Contains("TextPretrainSteps", JsonSerializer.Serialize(s, SafeTensors.ConfigJsonOptions));
        Assert.DoesNotContain("TextPretrainSteps", JsonSerializer.Serialize(LdmExperimentConfig.Tiny, SafeTensors.ConfigJsonOptions));
        Assert.True(s.LdmSteps > LdmExperimentConfig.Quick.LdmSteps && s.TrainImages >= LdmExperimentConfig.Quick.TrainImages);
        Assert.Equal(RoentGen.Platform.Precision.Auto, s.Precision);
        // Phantom data of the varied style say so in their source (a run folder of template reports refuses them).
        var data = LdmTrainingData.FromPhantoms(LdmExperimentConfig.Tiny with { TrainImages = 4, ReportStyle = ReportStyle.Varied });
        Assert.EndsWith(", reports Varied", data.Source);
        Assert.DoesNotContain("reports", LdmTrainingData.FromPhantoms(LdmExperimentConfig.Tiny with { TrainImages = 4 }).Source);
    }
}
