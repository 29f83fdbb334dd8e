using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RoentGen.Interop;
using RoentGen.Platform;

namespace RoentGen.Training;

/// <summary>
/// The folder of one long job (a VAE, an LDM, a DINO or baseline encoder, a classifier, a study arm), with the same
/// rules for every job:
/// <list type="bullet">
/// <item>the job's config is pinned in <c>config.json</c> (written atomically when the job starts) and a later call
/// with another config is refused, naming the first differing field; fields listed as extendable (e.g. Steps) may grow;</item>
/// <item>the <see cref="Trainer"/>'s checkpoints live in <c>checkpoints/</c> and an interrupted job resumes from them
/// (<see cref="StepsDone"/>);</item>
/// <item><c>run.json</c> is written last, atomically, by <see cref="Finish"/>: a folder that has it at the wanted
/// steps is finished and is not run again (<see cref="IsFinishedAt"/>); asking for more steps continues the run;
/// asking for fewer is refused.</item>
/// </list>
/// Callers (library workflows, CLI verbs, notebooks) use <see cref="Open{TConfig}"/> and hold no lifecycle logic
/// of their own.
/// </summary>
public sealed class RunFolder
{
    /// <summary>The pinned config's file name.</summary>
    public const string ConfigFile = "config.json";
    /// <summary>The completion record's file name.</summary>
    public const string RunFile = "run.json";

    private readonly string _configJson;
    private readonly Func<string, string> _canonical;
    private readonly IReadOnlyCollection<string> _extendable;

    private RunFolder(string path, string kind, string configJson, Func<string, string> canonical, IReadOnlyCollection<string> extendable)
    {
        Path = path;
        Kind = kind;
        _configJson = configJson;
        _canonical = canonical;
        _extendable = extendable;
    }

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>What kind of job this is (e.g. "vae", "ldm", "dino"), used in messages and in run.json.</summary>
    public string Kind { get; }

    /// <summary>The checkpoint root the <see cref="Trainer"/> writes (pass <see cref="Path"/> as its output folder).</summary>
    public string CheckpointRoot => System.IO.Path.Combine(Path, "checkpoints");

    /// <summary>
    /// Opens a run folder for a job of <paramref name="kind"/> with <paramref name="config"/>, and checks that a config
    /// already pinned there is the same (a field that a newer version of the config added is compared at its default,
    /// since the pinned file is read back as <typeparamref name="TConfig"/>). Nothing is written until <see cref="Start"/>.
    /// </summary>
    /// <param name="path">The folder (need not exist).</param>
    /// <param name="kind">The job's kind, for messages.</param>
    /// <param name="config">The job's config record.</param>
    /// <param name="extendable">Config fields that may differ from the pinned ones (e.g. "Steps": a run continues to more steps); a
    /// field of a nested record is named by its dotted path (e.g. "Experiment.LdmSteps").</param>
    /// <exception cref="ArgumentException">The path is empty.</exception>
    /// <exception cref="RoentGen.Platform.RunStateException">The folder holds a job of another config (the message names the first differing field), or a file of that name.</exception>
    /// <exception cref="InvalidDataException">The pinned config.json is not a readable <typeparamref name="TConfig"/>.</exception>
    public static RunFolder Open<TConfig>(string path, string kind, TConfig config, params string[] extendable)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("a run folder path is required");
        var full = System.IO.Path.GetFullPath(path);
        if (File.Exists(full)) throw new RoentGen.Platform.RunStateException($"{path} is a file; a {kind} run needs a folder");
        var json = JsonSerializer.Serialize(config, SafeTensors.ConfigJsonOptions);
        // The pinned file read back as TConfig and written again, so a field added since compares at its default.
        string Canonical(string file) => JsonSerializer.Serialize(ReadConfig<TConfig>(file, kind), SafeTensors.ConfigJsonOptions);
        var run = new RunFolder(full, kind, json, Canonical, extendable);
        run.EnsureSameConfig();
        return run;
    }

    /// <summary>True when the folder already pins a config (a job was started here).</summary>
    public bool IsStarted => File.Exists(System.IO.Path.Combine(Path, ConfigFile));

    /// <summary>Optimizer steps of the newest complete checkpoint (0 when there is none).</summary>
    public int StepsDone => StepsOf(Trainer.LatestCheckpoint(Path));

    /// <summary>The completion record, or null when the job has not finished.</summary>
    /// <exception cref="InvalidDataException">run.json exists but cannot be read.</exception>
    public RunRecord? Finished
    {
        get
        {
            var file = System.IO.Path.Combine(Path, RunFile);
            if (!File.Exists(file)) return null;
            try
            {
                return JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(file), SafeTensors.ConfigJsonOptions)
                       ?? throw new InvalidDataException($"{file} is empty");
            }
            catch (JsonException e) { throw new InvalidDataException($"{file}: not a run record: {e.Message}", e); }
        }
    }

    /// <summary>
    /// True when the job finished at exactly <paramref name="steps"/> steps (so it need not run again).
    /// </summary>
    /// <exception cref="RoentGen.Platform.RunStateException">It finished with more steps than asked for.</exception>
    public bool IsFinishedAt(int steps)
    {
        if (Finished is not { } done) return false;
        if (done.Steps > steps)
            throw new RoentGen.Platform.RunStateException($"{Path} holds a {Kind} run of {done.Steps} steps, more than the {steps} asked for; use another output folder");
        return done.Steps == steps;
    }

    /// <summary>
    /// Starts (or continues) the job: creates the folder, pins the config atomically (rewriting an extendable field
    /// such as Steps), and removes a completion record of fewer steps so that the folder reads as unfinished until
    /// <see cref="Finish"/>. Fails early, before any work, when the folder is not writable.
    /// </summary>
    /// <exception cref="IOException">The folder cannot be created or written.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder is not writable.</exception>
    public RunFolder Start()
    {
        Directory.CreateDirectory(Path);
        AtomicFile.WriteAllText(System.IO.Path.Combine(Path, ConfigFile), _configJson);
        var record = System.IO.Path.Combine(Path, RunFile);
        if (File.Exists(record)) File.Delete(record);
        return this;
    }

    /// <summary>
    /// Marks the job finished: writes run.json (kind, steps, seconds of this call, final loss, when, and the arithmetic
    /// it trained in when given: "fp32" or "bf16"), atomically, last.
    /// </summary>
    public RunRecord Finish(int steps, double seconds, double finalLoss = double.NaN, string? precision = null)
    {
        var record = new RunRecord(Kind, steps, seconds, double.IsFinite(finalLoss) ? finalLoss : null, DateTimeOffset.UtcNow) { Precision = precision };
        AtomicFile.WriteAllText(System.IO.Path.Combine(Path, RunFile), JsonSerializer.Serialize(record, SafeTensors.ConfigJsonOptions));
        return record;
    }

    /// <summary>Steps of a checkpoint folder named step-NNNNNN (0 for null).</summary>
    /// <exception cref="InvalidDataException">The name is not of that form.</exception>
    public static int StepsOf(string? checkpoint)
    {
        if (checkpoint is null) return 0;
        var name = System.IO.Path.GetFileName(checkpoint.TrimEnd(System.IO.Path.DirectorySeparatorChar));
        if (name.StartsWith("step-", StringComparison.Ordinal)
            && int.TryParse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var steps)) return steps;
        throw new InvalidDataException($"{checkpoint}: a checkpoint folder must be named step-NNNNNN");
    }

    private void EnsureSameConfig()
    {
        var file = System.IO.Path.Combine(Path, ConfigFile);
        if (!File.Exists(file)) return;
        var existing = JsonNode.Parse(_canonical(file));
        var wanted = JsonNode.Parse(_configJson);
        foreach (var node in new[] { existing, wanted })
            foreach (var key in _extendable) RemovePath(node, key);
        if (JsonNode.DeepEquals(existing, wanted)) return;
        throw new RoentGen.Platform.RunStateException(
            $"{Path} holds a {Kind} run with another config ({FirstDifference(existing, wanted, "")}); use another output folder or delete this one");
    }

    /// <summary>
    /// The config pinned in a run folder, read as <typeparamref name="TConfig"/>, or null when no job was started there:
    /// a verb continuing a run without being given a config takes this one, so the checkpoints fit.
    /// </summary>
    /// <exception cref="InvalidDataException">config.json is not a readable <typeparamref name="TConfig"/>.</exception>
    public static TConfig? ReadPinned<TConfig>(string path) where TConfig : class
    {
        var file = System.IO.Path.Combine(path, ConfigFile);
        return File.Exists(file) ? ReadConfig<TConfig>(file, "pinned") : null;
    }

    /// <summary>Reads a config JSON file of type <typeparamref name="TConfig"/>; <paramref name="what"/> names it in messages.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a <typeparamref name="TConfig"/>.</exception>
    public static TConfig ReadConfig<TConfig>(string file, string what)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"{what} config file not found: {file}", file);
        try
        {
            return JsonSerializer.Deserialize<TConfig>(InputFile.ReadAllText(file, 1 << 20, $"{what} config"), SafeTensors.ConfigJsonOptions)
                   ?? throw new InvalidDataException($"{file}: the {what} config is null");
        }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not a valid {what} config ({typeof(TConfig).Name}): {e.Message}", e); }
    }

    // Removes a field given as "Name" or a dotted path into nested objects ("Experiment.LdmSteps").
    private static void RemovePath(JsonNode? node, string path)
    {
        var names = path.Split('.');
        for (int i = 0; i < names.Length - 1 && node is JsonObject o; i++) o.TryGetPropertyValue(names[i], out node);
        if (node is JsonObject last) last.Remove(names[^1]);
    }

    /// <summary>The path and both values of the first place two JSON trees differ, for messages.</summary>
    public static string FirstDifference(JsonNode? a, JsonNode? b, string path)
    {
        if (a is JsonObject oa && b is JsonObject ob)
        {
            foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
            {
                oa.TryGetPropertyValue(key, out var va);
                ob.TryGetPropertyValue(key, out var vb);
                if (!JsonNode.DeepEquals(va, vb)) return FirstDifference(va, vb, path.Length == 0 ? key : $"{path}.{key}");
            }
        }
        return $"{(path.Length == 0 ? "the config" : path)} is {a?.ToJsonString() ?? "absent"} there, {b?.ToJsonString() ?? "absent"} now";
    }
}

/// <summary>What a finished run folder records in run.json.</summary>
/// <param name="Kind">The job's kind.</param>
/// <param name="Steps">Optimizer steps the job reached.</param>
/// <param name="Seconds">Wall time of the call that finished it.</param>
/// <param name="FinalLoss">Loss of the last step, when there was one.</param>
/// <param name="FinishedUtc">When it finished.</param>
public sealed record RunRecord(string Kind, int Steps, double Seconds, double? FinalLoss, DateTimeOffset FinishedUtc)
{
    /// <summary>The arithmetic the call that finished the job trained in ("fp32" or "bf16"); null when not recorded.</summary>
    public string? Precision { get; init; }
}
