namespace RoentGen.Nn;

/// <summary>
/// Limits on the size of a model described by a config, checked before any tensor is allocated, so that a small
/// config file with one huge or absurd field is refused at once instead of exhausting memory or running for hours.
/// </summary>
public static class ModelSize
{
    /// <summary>The largest model built from a config: 2^30 parameters (4 GiB of float32 weights).</summary>
    public const long MaxParameters = 1L << 30;

    /// <summary>The largest width of any layer (channels, hidden size, vocabulary rows are bounded separately).</summary>
    public const int MaxWidth = 65536;

    /// <summary>The largest depth (transformer layers, ResNet blocks per level).</summary>
    public const int MaxDepth = 1024;

    /// <summary>Throws unless <paramref name="parameters"/> (an estimate in double precision, so it cannot overflow) is at most <see cref="MaxParameters"/>.</summary>
    /// <param name="model">What the model is, for the message (e.g. "ViT").</param>
    /// <param name="parameters">Its parameter count.</param>
    /// <exception cref="ArgumentException">Above the limit; the message gives the count, its float32 bytes and the limit.</exception>
    public static void CheckParameters(string model, double parameters)
    {
        if (!(parameters <= MaxParameters))
            throw new ArgumentException(
                $"the {model} config describes {parameters:0.###e+0} parameters ({parameters * 4 / (1 << 30):0.#} GiB as float32), above the limit of {MaxParameters} ({MaxParameters * 4L >> 30} GiB); refused before building it");
    }

    /// <summary>
    /// Compares a config's parameter count with the values stored in its weights files (read from their headers only),
    /// so that a config describing a far larger model than its weights is refused before the model is built.
    /// </summary>
    /// <param name="configName">The config file, for the message.</param>
    /// <param name="parameters">The config's parameter count or estimate.</param>
    /// <param name="weightFiles">The safetensors files of the weights.</param>
    /// <exception cref="InvalidDataException">The config describes more than twice (plus 2^20) the values the weights hold.</exception>
    public static void CheckAgainstWeights(string configName, double parameters, IEnumerable<string> weightFiles)
    {
        double values = 0;
        var files = weightFiles.ToList();
        foreach (var f in files)
            foreach (var t in Interop.SafeTensors.ReadHeader(f).Tensors) values += t.Shape.Aggregate(1.0, (a, d) => a * d);
        if (parameters > 2 * values + (1 << 20))
            throw new InvalidDataException(
                $"{Platform.TextEscape.Escape(configName)}: the config describes a model of {parameters:0.###e+0} parameters, but {string.Join(", ", files.Select(f => Platform.TextEscape.Escape(Path.GetFileName(f))))} hold {values:0} values; expected a config that matches its weights (refused before building the model)")
            { Data = { ["file"] = configName } };
    }

    /// <summary>Throws unless <paramref name="value"/> lies in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    /// <exception cref="ArgumentException">Out of range; the message names the key, the value and the range.</exception>
    public static void InRange(string key, long value, long min, long max)
    {
        if (value < min || value > max) throw new ArgumentException($"{key} is {value}; expected {min} to {max}");
    }

    /// <summary>Throws unless <paramref name="value"/> is finite and lies in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    /// <exception cref="ArgumentException">Out of range or not finite; the message names the key, the value and the range.</exception>
    public static void InRange(string key, double value, double min, double max)
    {
        if (!double.IsFinite(value) || value < min || value > max) throw new ArgumentException($"{key} is {value}; expected a finite number from {min} to {max}");
    }

    /// <summary>Throws unless <paramref name="value"/> is a multiple of <paramref name="divisor"/> (both already positive).</summary>
    /// <exception cref="ArgumentException">Not a multiple; the message names both keys.</exception>
    public static void MultipleOf(string key, long value, string divisorKey, long divisor)
    {
        if (value % divisor != 0) throw new ArgumentException($"{key} {value} is not a multiple of {divisorKey} {divisor}; expected {key} divisible by {divisorKey}");
    }
}

/// <summary>A model config that can check its own fields and estimate the size of the model it describes.</summary>
public interface IModelConfig
{
    /// <summary>Checks every field that sizes a tensor, and the parameter count, before anything is allocated.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and what was expected.</exception>
    void Validate();

    /// <summary>The parameter count of the model (exact where the config allows, else an estimate within a small factor).</summary>
    double ParameterEstimate();
}
