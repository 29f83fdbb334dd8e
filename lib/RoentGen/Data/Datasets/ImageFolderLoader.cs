namespace RoentGen.Data.Datasets;

/// <summary>
/// Loads a bare folder of images (PNG or JPEG, searched recursively, no labels.csv) as records: one record per file in
/// ordinal path order, id = the path relative to the folder, patient from the file name as
/// <see cref="GenericCsvLoader.PatientFromFileName"/> derives it, dataset = the options' name or the folder's name, and
/// no labels, report or masks. Such a set serves self-supervised training; the baselines need labels or reports.
/// </summary>
public static class ImageFolderLoader
{
    /// <summary>File extensions read as images (case-insensitive).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg"];

    /// <summary>Loads every image under <paramref name="folder"/>.</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="options">Name, Limit and DecodeImages (with SkipBadRows) apply; the rest has nothing to act on.</param>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="InvalidDataException">The folder holds no PNG or JPEG file.</exception>
    /// <exception cref="DatasetFormatException">With DecodeImages, a file that does not decode (unless SkipBadRows).</exception>
    public static CxrDataset Load(string folder, LoadOptions? options = null)
    {
        options ??= LoadOptions.Default;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"image folder not found: {folder}");
        var root = Path.GetFullPath(folder);
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Any(e => f.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (files.Count == 0)
            throw new InvalidDataException($"no images in {folder}: expected a {GenericCsvLoader.DefaultFileName} or .png/.jpg/.jpeg files");
        var name = options.Name ?? new DirectoryInfo(root).Name;
        var records = new List<CxrRecord>();
        var skipped = new List<SkippedRow>();
        foreach (var file in files)
        {
            if (options.Limit is int limit && records.Count >= limit) break;
            var rel = Path.GetRelativePath(root, file).Replace('\\', '/');
            var record = new CxrRecord
            {
                Id = rel, PatientId = GenericCsvLoader.PatientFromFileName(rel), Dataset = name, Image = ImageSource.FromFile(file), SourceFile = file,
            };
            if (options.DecodeImages)
            {
                try { record.Image.Load(); }
                catch (InvalidDataException ex)
                {
                    if (!options.SkipBadRows) throw new DatasetFormatException(file, null, null, ex.Message, ex);
                    skipped.Add(new SkippedRow(file, null, ex.Message));
                    continue;
                }
            }
            records.Add(record);
        }
        return new CxrDataset(name, root, records, skipped);
    }

    /// <summary>
    /// A training or probing folder: its labels.csv in the generic layout (<see cref="GenericCsvLoader"/>) when it holds
    /// one, else its images (<see cref="Load"/>).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="InvalidDataException">The folder holds neither a labels.csv nor images.</exception>
    /// <exception cref="DatasetFormatException">The labels.csv has a bad row.</exception>
    public static CxrDataset LoadFolder(string folder, LoadOptions? options = null)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"image folder not found: {folder}");
        return File.Exists(Path.Combine(folder, GenericCsvLoader.DefaultFileName)) ? GenericCsvLoader.Load(folder, options) : Load(folder, options);
    }
}
