using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Interop;

/// <summary>A key whose tensor has a different shape in the source than in the module.</summary>
/// <param name="Key">The state-dict key.</param>
/// <param name="Expected">The module's shape.</param>
/// <param name="Found">The source's shape.</param>
public sealed record ShapeMismatch(string Key, long[] Expected, long[] Found)
{
    /// <summary>"key: expected [64, 3], found [32, 3]".</summary>
    public override string ToString() => $"{Key}: expected {StateDict.FormatShape(Expected)}, found {StateDict.FormatShape(Found)}";
}

/// <summary>How a source state dict matched a module: what was missing, unexpected, or wrongly shaped.</summary>
/// <param name="MissingKeys">Keys the module has and the source lacks (left unchanged).</param>
/// <param name="UnexpectedKeys">Keys the source has and the module lacks (ignored).</param>
/// <param name="ShapeMismatches">Keys in both with different shapes (left unchanged).</param>
/// <param name="LoadedKeys">Keys copied into the module.</param>
public sealed record StateDictReport(IReadOnlyList<string> MissingKeys, IReadOnlyList<string> UnexpectedKeys,
    IReadOnlyList<ShapeMismatch> ShapeMismatches, IReadOnlyList<string> LoadedKeys)
{
    /// <summary>True when every key matched in name and shape.</summary>
    public bool IsExact => MissingKeys.Count == 0 && UnexpectedKeys.Count == 0 && ShapeMismatches.Count == 0;

    /// <summary>A multi-line listing of every problem (or "all N keys matched").</summary>
    public override string ToString()
    {
        if (IsExact) return $"all {LoadedKeys.Count} keys matched";
        var sb = new StringBuilder();
        if (MissingKeys.Count > 0) sb.AppendLine($"missing keys ({MissingKeys.Count}): {string.Join(", ", MissingKeys)}");
        if (UnexpectedKeys.Count > 0) sb.AppendLine($"unexpected keys ({UnexpectedKeys.Count}): {string.Join(", ", UnexpectedKeys)}");
        if (ShapeMismatches.Count > 0)
        {
            sb.AppendLine($"wrong shapes ({ShapeMismatches.Count}):");
            foreach (var m in ShapeMismatches) sb.AppendLine($"  {m}");
        }
        return sb.ToString().TrimEnd();
    }
}

/// <summary>A strict state-dict load that found differences; the message lists every one of them.</summary>
public sealed class StateDictMismatchException(string source, StateDictReport report)
    : Exception($"{source}: state dict does not match the module:{Environment.NewLine}{report}")
{
    /// <summary>Every difference found.</summary>
    public StateDictReport Report { get; } = report;
}

/// <summary>Compares and loads TorchSharp state dicts with a full report (PyTorch's <c>load_state_dict</c> stops at the first problem).</summary>
public static class StateDict
{
    /// <summary>"[64, 3, 3, 3]".</summary>
    public static string FormatShape(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";

    /// <summary>Compares a module's state dict (<paramref name="expected"/>) with a source, key by key and shape by shape.</summary>
    public static StateDictReport Compare(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> source)
    {
        var missing = new List<string>();
        var mismatched = new List<ShapeMismatch>();
        var ok = new List<string>();
        foreach (var (key, t) in expected)
        {
            if (!source.TryGetValue(key, out var s)) { missing.Add(key); continue; }
            if (!t.shape.SequenceEqual(s.shape)) mismatched.Add(new ShapeMismatch(key, t.shape, s.shape));
            else ok.Add(key);
        }
        var unexpected = source.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        return new StateDictReport(missing, unexpected, mismatched, ok);
    }

    /// <summary>
    /// Copies matching tensors of <paramref name="source"/> into the module's parameters and buffers (values are cast to
    /// the module's dtype and device). Strict: any difference throws before anything is copied, listing all of them.
    /// Non-strict: copies what matches and returns the report.
    /// </summary>
    /// <remarks>Every floating-point tensor that would be copied must be finite: a NaN or infinite weight is refused
    /// before anything is copied (it would only show up later as a black image or a NaN loss).</remarks>
    /// <exception cref="StateDictMismatchException">Strict mode and the dicts differ.</exception>
    /// <exception cref="InvalidDataException">A tensor holds NaN or infinite values; the message names the source and the key.</exception>
    public static StateDictReport Load(nn.Module module, IReadOnlyDictionary<string, Tensor> source, bool strict = true, string sourceName = "state dict")
    {
        var target = module.state_dict();
        var report = Compare(target, source);
        if (strict && !report.IsExact) throw new StateDictMismatchException(sourceName, report);
        foreach (var key in report.LoadedKeys) RequireFinite(source[key], key, sourceName);
        using (no_grad())
        {
            foreach (var key in report.LoadedKeys) target[key].copy_(source[key]);
        }
        return report;
    }

    /// <summary>Throws when a floating-point tensor holds a NaN or an infinity.</summary>
    /// <exception cref="InvalidDataException">It does; the message names the source, the key and how many values are bad.</exception>
    public static void RequireFinite(Tensor tensor, string key, string sourceName)
    {
        if (!tensor.is_floating_point() || tensor.numel() == 0) return;
        using var scope = NewDisposeScope();
        var bad = tensor.isfinite().logical_not();
        long count = bad.sum().item<long>();
        if (count == 0) return;
        long nan = tensor.isnan().sum().item<long>();
        throw new InvalidDataException(
            $"{sourceName}: tensor '{key}' {FormatShape(tensor.shape)} holds {count} non-finite values ({nan} NaN, {count - nan} infinite) of {tensor.numel()}; expected finite weights")
        { Data = { ["file"] = sourceName, ["key"] = key } };
    }
}
