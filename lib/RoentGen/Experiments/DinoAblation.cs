using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Analysis;
using RoentGen.Evaluation.Probes;
using RoentGen.Platform;
using RoentGen.Training;
using RoentGen.Methods;

namespace RoentGen.Experiments;

/// <summary>One DINO variant of an ablation.</summary>
/// <param name="Name">Short name (also its folder and the CLI's --variant value).</param>
/// <param name="Description">What differs from the baseline.</param>
/// <param name="Config">The DINO run.</param>
/// <param name="Phantoms">Training phantoms.</param>
public sealed record DinoAblationVariant(string Name, string Description, DinoConfig Config, int Phantoms);

/// <summary>One row of an ablation: the variant, its training and its probes.</summary>
/// <param name="Variant">The variant.</param>
/// <param name="Run">Its training.</param>
/// <param name="Probes">Its probe results.</param>
public sealed record DinoAblationRow(DinoAblationVariant Variant, EncoderRun Run, EncoderProbes Probes);

/// <summary>The ablation table: one row per variant.</summary>
public sealed class DinoAblationResult
{
    /// <summary>Metric columns of the table.</summary>
    public static IReadOnlyList<string> Columns { get; } =
        ["linear/macro_auc", "knn/macro_auc", "sex/auc", "age/mae_years", "age/pearson", "segmentation/mean_dice", "report/macro_f1"];

    /// <summary>Creates a result.</summary>
    public DinoAblationResult(IReadOnlyList<DinoAblationRow> rows) => Rows = rows;

    /// <summary>The rows, in variant order.</summary>
    public IReadOnlyList<DinoAblationRow> Rows { get; }

    /// <summary>variant, description, phantoms, steps, then the headline metrics (null where not measured).</summary>
    public DataFrame ToDataFrame()
    {
        var cols = new List<DataFrameColumn>
        {
            new StringDataFrameColumn("variant", Rows.Select(r => r.Variant.Name)),
            new StringDataFrameColumn("description", Rows.Select(r => r.Variant.Description)),
            new Int32DataFrameColumn("phantoms", Rows.Select(r => (int?)r.Variant.Phantoms)),
            new Int32DataFrameColumn("steps", Rows.Select(r => (int?)r.Run.Steps)),
        };
        foreach (var key in Columns)
            cols.Add(new DoubleDataFrameColumn(key, Rows.Select(r => double.IsFinite(r.Probes[key]) ? r.Probes[key] : (double?)null)));
        return new DataFrame(cols);
    }

    /// <summary>JSON: one object per row (variant, description, phantoms, run folder, probe metrics).</summary>
    public string ToJson() => new JsonArray(Rows.Select(r =>
    {
        var o = r.Probes.ToJson();
        o["variant"] = r.Variant.Name;
        o["description"] = r.Variant.Description;
        o["phantoms"] = r.Variant.Phantoms;
        o["steps"] = r.Run.Steps;
        o["folder"] = r.Run.Folder;
        o["trained_now"] = r.Run.TrainedNow;
        o["seconds_training"] = Math.Round(r.Run.Seconds, 2);
        o["config"] = JsonNode.Parse(r.Variant.Config.ToJson());
        return (JsonNode)o;
    }).ToArray()).ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Reads an ablation.json written by <see cref="DinoAblation.Run"/>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not an ablation file.</exception>
    public static DinoAblationResult Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ablation file not found: {path}", path);
        JsonArray rows;
        try { rows = JsonNode.Parse(File.ReadAllText(path)) as JsonArray ?? throw new InvalidDataException($"{path}: expected a JSON array of ablation rows"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        return new DinoAblationResult(rows.Select(n =>
        {
            var o = n as JsonObject ?? throw new InvalidDataException($"{path}: an ablation row is not an object");
            string name = o["variant"]?.GetValue<string>() ?? throw new InvalidDataException($"{path}: a row has no 'variant'");
            var cfg = o["config"] is JsonNode c ? DinoConfig.FromJson(c.ToJsonString(), path) : throw new InvalidDataException($"{path}: row {name} has no 'config'");
            var variant = new DinoAblationVariant(name, o["description"]?.GetValue<string>() ?? "", cfg, o["phantoms"]?.GetValue<int>() ?? 0);
            var folder = o["folder"]?.GetValue<string>() ?? "";
            var run = new EncoderRun("dino", folder, Path.Combine(folder, EncoderRuns.DinoEncoderFolder), o["trained_now"]?.GetValue<bool>() ?? false,
                o["steps"]?.GetValue<int>() ?? 0, o["seconds_training"]?.GetValue<double>() ?? 0, double.NaN);
            return new DinoAblationRow(variant, run, EncoderProbes.FromJson(o, name));
        }).ToList());
    }
}

/// <summary>
/// Ablations of the DINO recipe at a comparison's budget (issue #5): data quantity (a quarter of, and four times, the
/// baseline's phantoms: 1k / 4k / 16k at the quick preset), iBOT off, KoLeo off, and two crop settings (no local crops;
/// global crops of 60–100 % instead of 32–100 % of the area). Every variant trains for the same steps with the same
/// seed and is judged by the same probes on the same held-out phantoms. The baseline's folder is the comparison's
/// DIR/dino, so an ablation in the comparison's folder reuses its DINO encoder; the others go to DIR/ablation/NAME.
/// </summary>
public static class DinoAblation
{
    /// <summary>File name of the result inside the output folder.</summary>
    public const string ResultFile = "ablation.json";

    /// <summary>The variants of a comparison setup, baseline first.</summary>
    public static IReadOnlyList<DinoAblationVariant> Variants(EncoderComparisonConfig config)
    {
        var b = config.DinoRun();
        int p = config.Phantoms;
        return
        [
            new("baseline", $"the comparison's DINO run ({p} phantoms, DINO + iBOT + KoLeo, {b.Crops.LocalCrops} local crops)", b, p),
            new($"phantoms-{Math.Max(2, p / 4)}", $"a quarter of the phantoms ({Math.Max(2, p / 4)})", b, Math.Max(2, p / 4)),
            new($"phantoms-{p * 4}", $"four times the phantoms ({p * 4})", b, p * 4),
            new("no-ibot", "iBOT masked-patch loss off (no masking)", b with { IBotWeight = 0 }, p),
            new("no-koleo", "KoLeo regulariser off", b with { KoLeoWeight = 0 }, p),
            new("no-local-crops", "global crops only (no local crops)", b with { Crops = b.Crops with { LocalCrops = 0 } }, p),
            new("global-crops-0.6", "milder global crops: 60-100 % of the area instead of 32-100 %", b with { Crops = b.Crops with { GlobalScaleMin = 0.6 } }, p),
        ];
    }

    /// <summary>Folder of a variant's run.</summary>
    public static string FolderOf(string outDir, DinoAblationVariant v) =>
        v.Name == "baseline" ? Path.Combine(outDir, "dino") : Path.Combine(outDir, "ablation", v.Name);

    /// <summary>
    /// Trains (or finds) and probes each variant (all, or those named in <paramref name="only"/>), writes ablation.json
    /// into <paramref name="outDir"/> and returns the table's rows.
    /// </summary>
    /// <exception cref="ArgumentException">The config is inconsistent, or <paramref name="only"/> names an unknown variant.</exception>
    /// <exception cref="InvalidOperationException">A variant's folder holds a run of another config.</exception>
    public static DinoAblationResult Run(EncoderComparisonConfig config, string outDir, ProbeSuiteOptions? probes = null,
        IReadOnlyCollection<string>? only = null, Action<string>? log = null, CancellationToken cancellation = default)
    {
        config.Validate();
        log ??= Console.WriteLine;
        probes ??= ProbeSuiteOptions.Quick;
        var variants = Variants(config);
        if (only is { Count: > 0 })
        {
            var unknown = only.Where(n => variants.All(v => v.Name != n)).ToList();
            if (unknown.Count > 0)
                throw new ArgumentException($"unknown ablation variant(s) {string.Join(", ", unknown)}; known: {string.Join(", ", variants.Select(v => v.Name))}");
            variants = variants.Where(v => only.Contains(v.Name)).ToList();
        }
        Directory.CreateDirectory(outDir);
        var data = EncoderComparison.ProbeDataFor(config);
        var pools = new Dictionary<int, TrainingRecords>();
        var rows = new List<DinoAblationRow>();
        foreach (var v in variants)
        {
            if (!pools.TryGetValue(v.Phantoms, out var pool)) pools[v.Phantoms] = pool = config.CreatePool(v.Phantoms);
            var dir = FolderOf(outDir, v);
            log($"ablation {v.Name}: {v.Description}");
            var run = EncoderRuns.Dino(v.Config, pool, dir, cancellation);
            log(run.TrainedNow ? $"ablation {v.Name}: trained {run.Steps} steps in {run.Seconds:F0} s" : $"ablation {v.Name}: finished encoder found in {run.EncoderFolder}");
            var probed = EncoderComparison.ProbeCached(v.Name, dir, () => VitEncoder.Load(run.EncoderFolder), run.TrainedNow, config, data, probes, log);
            rows.Add(new DinoAblationRow(v, run, probed));
        }
        var result = new DinoAblationResult(rows);
        AtomicFile.WriteAllText(Path.Combine(outDir, ResultFile), result.ToJson());
        return result;
    }
}
