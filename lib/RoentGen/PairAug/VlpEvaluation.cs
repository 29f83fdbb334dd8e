using System.Text.Json;
using System.Text.Json.Serialization;
using RoentGen.Data;
using RoentGen.Evaluation.Probes;
using RoentGen.Methods;
using RoentGen.Platform;
using static TorchSharp.torch;

namespace RoentGen.PairAug;

/// <summary>How a vision-language model is judged: zero-shot (CheXzero) on the test split and linear probes at label fractions.</summary>
public sealed record VlpEvaluationOptions
{
    /// <summary>Prompts, findings and the bootstrap of the zero-shot AUCs (1,000 resamples, 95 %).</summary>
    public ZeroShotOptions ZeroShot { get; init; } = new();
    /// <summary>Label fractions of the linear probes (CheXzero, ConVIRT: 1 %, 10 %, 100 %).</summary>
    public IReadOnlyList<double> Fractions { get; init; } = PairAug.ZeroShot.DefaultFractions;
    /// <summary>The probes' grid.</summary>
    public LinearProbeOptions Probe { get; init; } = LinearProbeOptions.Quick;
    /// <summary>Seed of the nested label subsets.</summary>
    public int ProbeSeed { get; init; }

    /// <summary>
    /// Checks the options: the zero-shot prompts and bootstrap (<see cref="ZeroShotOptions.Validate"/>), at least one label
    /// fraction, each in (0, 1] and none repeated, and a probe grid of positive finite learning rates, non-negative finite
    /// weight decays and at least one step.
    /// </summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        try { ZeroShot.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"ZeroShot: {e.Message}", e); }
        if (Fractions is null || Fractions.Count == 0) throw new ArgumentException("Fractions is empty; give the label fractions of the linear probes (CheXzero: 0.01, 0.1, 1)");
        foreach (var f in Fractions)
            if (!(f > 0 && f <= 1)) throw new ArgumentException($"Fractions must each lie in (0, 1], got {f}");
        if (Fractions.Distinct().Count() != Fractions.Count) throw new ArgumentException($"Fractions repeat: {string.Join(", ", Fractions)}");
        if (Probe is null) throw new ArgumentException("Probe is missing; give the linear probes' grid");
        if (Probe.LearningRates is null || Probe.LearningRates.Count == 0 || Probe.WeightDecays is null || Probe.WeightDecays.Count == 0)
            throw new ArgumentException("Probe: the grid needs at least one learning rate (LearningRates) and one weight decay (WeightDecays)");
        foreach (var lr in Probe.LearningRates)
            if (!(double.IsFinite(lr) && lr > 0)) throw new ArgumentException($"Probe.LearningRates must each be positive and finite, got {lr}");
        foreach (var wd in Probe.WeightDecays)
            if (!(double.IsFinite(wd) && wd >= 0)) throw new ArgumentException($"Probe.WeightDecays must each be 0 or more and finite, got {wd}");
        if (Probe.Steps < 1) throw new ArgumentException($"Probe.Steps must be at least 1, got {Probe.Steps}");
    }
}

/// <summary>One finding's zero-shot AUC with its bootstrap interval (NaN where the test split lacks a class).</summary>
/// <param name="Finding">CheXpert name.</param>
/// <param name="PositivePrompt">The positive prompt.</param>
/// <param name="NegativePrompt">The negative prompt.</param>
/// <param name="Auc">AUC.</param>
/// <param name="Lower">Interval's lower end.</param>
/// <param name="Upper">Interval's upper end.</param>
/// <param name="Positives">Positive test images.</param>
/// <param name="Count">Test images.</param>
public sealed record ZeroShotFindingRow(
    [property: JsonPropertyName("finding")] string Finding,
    [property: JsonPropertyName("positive_prompt")] string PositivePrompt,
    [property: JsonPropertyName("negative_prompt")] string NegativePrompt,
    [property: JsonPropertyName("auc")] double Auc,
    [property: JsonPropertyName("lower")] double Lower,
    [property: JsonPropertyName("upper")] double Upper,
    [property: JsonPropertyName("positives")] int Positives,
    [property: JsonPropertyName("count")] int Count);

/// <summary>The linear probe at one label fraction.</summary>
/// <param name="Fraction">The fraction of training labels.</param>
/// <param name="TrainCount">Training images used.</param>
/// <param name="MacroAuc">Test macro AUC over the scored findings.</param>
/// <param name="ValidationMacroAuc">Validation macro AUC of the chosen grid point.</param>
/// <param name="PerFinding">Test AUC per finding (NaN where not scored).</param>
public sealed record ProbeFractionRow(
    [property: JsonPropertyName("fraction")] double Fraction,
    [property: JsonPropertyName("train_count")] int TrainCount,
    [property: JsonPropertyName("macro_auc")] double MacroAuc,
    [property: JsonPropertyName("validation_macro_auc")] double ValidationMacroAuc,
    [property: JsonPropertyName("per_finding")] IReadOnlyDictionary<string, double> PerFinding);

/// <summary>What <see cref="VlpEvaluation.Run"/> measured; written as JSON by <c>roentgen pairaug evaluate --json</c>.</summary>
/// <param name="Model">The model's folder or name.</param>
/// <param name="Data">The evaluation data's name.</param>
/// <param name="TestImages">Images of the test split (zero-shot and the probes' test).</param>
/// <param name="ZeroShotMacroAuc">Mean zero-shot AUC over findings with both classes.</param>
/// <param name="ZeroShot">Zero-shot AUC per finding.</param>
/// <param name="IntervalMethod">How the zero-shot intervals were made.</param>
/// <param name="Resamples">Bootstrap resamples per interval.</param>
/// <param name="Level">Interval level.</param>
/// <param name="Probes">The linear probe at each label fraction.</param>
/// <param name="Seconds">Wall time of the evaluation.</param>
public sealed record VlpEvaluationResult(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("data")] string Data,
    [property: JsonPropertyName("test_images")] int TestImages,
    [property: JsonPropertyName("zero_shot_macro_auc")] double ZeroShotMacroAuc,
    [property: JsonPropertyName("zero_shot")] IReadOnlyList<ZeroShotFindingRow> ZeroShot,
    [property: JsonPropertyName("interval_method")] string IntervalMethod,
    [property: JsonPropertyName("resamples")] int Resamples,
    [property: JsonPropertyName("level")] double Level,
    [property: JsonPropertyName("probes")] IReadOnlyList<ProbeFractionRow> Probes,
    [property: JsonPropertyName("seconds")] double Seconds)
{
    /// <summary>JSON options of the result files (NaN written as "NaN").</summary>
    public static JsonSerializerOptions Json { get; } = new() { WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>The probe's test macro AUC at a fraction (NaN when that fraction was not probed).</summary>
    public double ProbeMacroAuc(double fraction) => Probes.FirstOrDefault(p => Math.Abs(p.Fraction - fraction) < 1e-12)?.MacroAuc ?? double.NaN;

    /// <summary>Writes the result atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    /// <summary>Reads a result file.</summary>
    /// <exception cref="InvalidDataException">The file is not a VLP evaluation.</exception>
    public static VlpEvaluationResult Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<VlpEvaluationResult>(InputFile.ReadAllText(path, 16 << 20, "VLP evaluation"), Json)
                ?? throw new InvalidDataException($"{path}: empty VLP evaluation");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a VLP evaluation ({e.Message})", e); }
    }
}

/// <summary>
/// Judges a CLIP-style model as PairAug and CheXzero do: zero-shot AUC per finding on the test split with stratified
/// bootstrap intervals (<see cref="ZeroShot.Evaluate(ClipModel, Tensor, float[,], ZeroShotOptions?)"/>), and multi-label
/// linear probes of the image tower at label fractions (<see cref="ZeroShot.LinearProbeAtFractions(ClipModel, ProbeData, IReadOnlyList{double}?, LinearProbeOptions?, int)"/>).
/// </summary>
public static class VlpEvaluation
{
    /// <summary>Evaluates <paramref name="model"/> on <paramref name="data"/> (zero-shot on its test split; probes on its three splits).</summary>
    /// <param name="model">The model.</param>
    /// <param name="data">Train, validation and test splits with labels.</param>
    /// <param name="options">Prompts, bootstrap, fractions and probe grid.</param>
    /// <param name="name">The model's name in the result (its folder).</param>
    public static VlpEvaluationResult Run(ClipModel model, ProbeData data, VlpEvaluationOptions? options = null, string name = "clip")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        options ??= new VlpEvaluationOptions();
        options.Validate();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var zs = ZeroShot.Evaluate(model, data.Test.Images, data.Test.Labels, options.ZeroShot);
        var probes = ZeroShot.LinearProbeAtFractions(model, data, options.Fractions, options.Probe, options.ProbeSeed);
        return new VlpEvaluationResult(name, data.Name, data.Test.Count, zs.MacroAuc,
            zs.PerFinding.Select(f => new ZeroShotFindingRow(f.Finding.Name(), f.PositivePrompt, f.NegativePrompt, f.Auc.Estimate, f.Auc.Lower, f.Auc.Upper, f.Positives, f.Count)).ToList(),
            zs.IntervalMethod, options.ZeroShot.Resamples, options.ZeroShot.Level,
            probes.Select(p => new ProbeFractionRow(p.Fraction, p.TrainCount, p.Result.MacroAuc, p.Result.ValidationMacroAuc,
                p.Result.PerLabel.ToDictionary(l => l.Label, l => l.Auc))).ToList(),
            clock.Elapsed.TotalSeconds);
    }
}
