namespace RoentGen.Data.Datasets;

/// <summary>Which projections a loader keeps.</summary>
public enum ViewFilter
{
    /// <summary>Every image.</summary>
    All,
    /// <summary>Frontal images only (PA, AP and their variants).</summary>
    FrontalOnly,
    /// <summary>Lateral images only.</summary>
    LateralOnly,
}

/// <summary>Options shared by every loader. Loader-specific meaning is documented on each field.</summary>
public sealed record LoadOptions
{
    /// <summary>Default options: fail on the first bad row, check that image files exist, keep every view.</summary>
    public static LoadOptions Default { get; } = new();

    /// <summary>
    /// When true, a bad row (missing image, unknown label value, unreadable field) is left out, counted and
    /// its reason kept in <see cref="CxrDataset.Skipped"/>; when false (default) it throws
    /// <see cref="DatasetFormatException"/>. A missing required column or an unreadable CSV always throws.
    /// </summary>
    public bool SkipBadRows { get; init; }

    /// <summary>Check at load time that every image and mask file exists (default true).</summary>
    public bool CheckFilesExist { get; init; } = true;

    /// <summary>Also decode every image at load time to find corrupt files (default false: slow on big sets).</summary>
    public bool DecodeImages { get; init; }

    /// <summary>Which projections to keep (MIMIC-CXR, CheXpert, NIH, IU X-ray, generic 'view' column).</summary>
    public ViewFilter Views { get; init; } = ViewFilter.All;

    /// <summary>
    /// Official splits to keep, or null for all. MIMIC-CXR: "train", "validate", "test". CheXpert: "train",
    /// "valid". NIH: "train_val", "test" (from train_val_list.txt / test_list.txt). Case-insensitive.
    /// </summary>
    public IReadOnlyCollection<string>? Splits { get; init; }

    /// <summary>Dataset name to use instead of the loader's default.</summary>
    public string? Name { get; init; }

    /// <summary>
    /// Accept image and mask paths that lead outside the dataset's folder (absolute paths, "..", symbolic links that
    /// point elsewhere). Default false: such a row is an error naming the file, line and column (or a skipped row with
    /// <see cref="SkipBadRows"/>), so a labels.csv cannot make a program read, say, /etc/shadow.
    /// </summary>
    public bool AllowOutsideRoot { get; init; }

    /// <summary>At most this many records (after filtering), or null for all; handy for quick runs.</summary>
    public int? Limit { get; init; }

    internal bool KeepSplit(string? split) =>
        Splits is null || (split is not null && Splits.Any(s => string.Equals(s, split, StringComparison.OrdinalIgnoreCase)));

    internal bool KeepView(string? view) => Views switch
    {
        ViewFilter.FrontalOnly => CxrViews.IsFrontal(view),
        ViewFilter.LateralOnly => CxrViews.IsLateral(view),
        _ => true,
    };
}

/// <summary>Recognises projection names across datasets.</summary>
public static class CxrViews
{
    /// <summary>True for PA, AP and their variants ("AP Supine", "frontal", "AP/PA (pediatric)").</summary>
    public static bool IsFrontal(string? view)
    {
        if (string.IsNullOrWhiteSpace(view)) return false;
        var k = Key(view);
        return k.StartsWith("pa", StringComparison.Ordinal) || k.StartsWith("ap", StringComparison.Ordinal)
            || k.StartsWith("frontal", StringComparison.Ordinal) || k.StartsWith("postero", StringComparison.Ordinal)
            || k.StartsWith("antero", StringComparison.Ordinal);
    }

    /// <summary>True for lateral views ("LATERAL", "LL", "RL", "Lateral", "LAO"/"RAO" are not lateral).</summary>
    public static bool IsLateral(string? view)
    {
        if (string.IsNullOrWhiteSpace(view)) return false;
        var k = Key(view);
        return k.StartsWith("lat", StringComparison.Ordinal) || k is "ll" or "rl" or "xtablelateral";
    }

    private static string Key(string s) => new(s.Where(char.IsLetter).Select(char.ToLowerInvariant).ToArray());
}
