using System.Text.Json;
using RoentGen.Platform;

namespace RoentGen.Training;

/// <summary>
/// What a study folder's cached artefacts were made with, beyond its config: which generator drew the cached images,
/// which model pruned them, which real sample was scored. A resumed call that names another value would mix artefacts
/// of two set-ups under one name, so it is refused. A value given as null means "not used in this call" and leaves the
/// pinned one alone; a key first given later is added (nothing was cached for it yet).
/// </summary>
public static class StudyPins
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    /// <summary>Checks <paramref name="values"/> against the pins in <paramref name="path"/> and records the new ones (atomically).</summary>
    /// <param name="path">The pin file (JSON object of strings).</param>
    /// <param name="values">Key to value; null values are not checked or written.</param>
    /// <param name="hint">What to do instead, appended to the error (e.g. "use another --out for another generator").</param>
    /// <exception cref="RunStateException">A key is pinned to another value; the message names the key, both values and the file (a user error in the CLI).</exception>
    /// <exception cref="InvalidDataException">The pin file is not a JSON object of strings.</exception>
    public static void CheckAndRecord(string path, IReadOnlyDictionary<string, string?> values, string hint)
    {
        Dictionary<string, string> pinned;
        try
        {
            pinned = File.Exists(path) ? JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(path)) ?? [] : [];
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a pin file (a JSON object of strings): {e.Message}", e); }
        bool changed = false;
        foreach (var (key, value) in values)
        {
            if (value is null) continue;
            if (pinned.TryGetValue(key, out var old))
            {
                if (old != value)
                    throw new RunStateException($"{path}: this folder's {key} is '{old}', not '{value}'; {hint}");
            }
            else { pinned[key] = value; changed = true; }
        }
        if (changed) AtomicFile.WriteAllText(path, JsonSerializer.Serialize(pinned, Options));
    }
}
