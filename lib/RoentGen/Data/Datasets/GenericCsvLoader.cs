using System.Text.RegularExpressions;

namespace RoentGen.Data.Datasets;

/// <summary>
/// Loads the project's generic layout: a folder with a labels.csv whose rows name image files relative to
/// the CSV's folder. This is the layout of the real test sample and of generated phantom sets.
/// <para>Columns (case-insensitive; only <c>file</c> is required):</para>
/// <list type="bullet">
/// <item><c>file</c>: image path relative to the CSV's folder.</item>
/// <item><c>id</c>: record id (default: the <c>file</c> value).</item>
/// <item><c>dataset</c>: source name (default: the options' name, else the folder's name).</item>
/// <item><c>labels</c>: source label names, pipe-separated (kept in <see cref="CxrRecord.SourceLabels"/>).</item>
/// <item><c>sex</c> (M/F/blank), <c>age</c> (years), <c>view</c>, <c>report</c> (FINDINGS:/IMPRESSION: headers parsed),
/// or <c>findings</c> and <c>impression</c> columns.</item>
/// <item><c>mask</c>: one mask path, named "mask"; <c>masks</c>: pipe-separated <c>name=path</c> pairs.</item>
/// <item><c>patient_id</c>, else <c>patientid</c>, else the patient is derived from the file name: the name
/// without extension and without a trailing <c>_digits</c> part (NIH "00021557_000" → "00021557",
/// Shenzhen "CHNCXR_0273_0" → "CHNCXR_0273").</item>
/// <item>All 14 CheXpert observation columns ("No Finding", ..., "Support Devices") with 1/0/-1/blank codes: when
/// all 14 are present they ARE the labels. Otherwise the labels are mapped from <c>labels</c> with
/// <see cref="ChexpertLabelMap"/> (some, but not all, observation-named columns, such as the NIH 0/1 columns of the
/// real sample, are not read as CheXpert codes: they stay attributes).</item>
/// <item><c>split</c> (optional): a split name; <see cref="LoadOptions.Splits"/> selects rows by it.</item>
/// <item>Every other non-blank column is kept in <see cref="CxrRecord.Attributes"/>.</item>
/// </list>
/// </summary>
public static partial class GenericCsvLoader
{
    /// <summary>The file name looked for when a folder is given.</summary>
    public const string DefaultFileName = "labels.csv";

    private static readonly string[] Consumed =
        ["file", "id", "dataset", "labels", "sex", "age", "view", "report", "findings", "impression", "mask", "masks", "patient_id", "patientid"];

    /// <summary>The labels.csv path for a CSV path or a folder holding labels.csv.</summary>
    /// <exception cref="FileNotFoundException">Neither exists.</exception>
    public static string FindCsv(string path)
    {
        if (File.Exists(path)) return Path.GetFullPath(path);
        if (Directory.Exists(path))
        {
            var p = Path.Combine(path, DefaultFileName);
            if (File.Exists(p)) return Path.GetFullPath(p);
            throw new FileNotFoundException($"no {DefaultFileName} in folder {path}; expected the generic layout (labels.csv beside the images)", p);
        }
        throw new FileNotFoundException($"no such file or folder: {path}; expected a labels.csv or a folder holding one", path);
    }

    /// <summary>Loads a labels.csv (or a folder holding one).</summary>
    /// <exception cref="DatasetFormatException">A bad row (unless skipping), a missing 'file' column, or a malformed CSV.</exception>
    public static CxrDataset Load(string labelsCsvPath, LoadOptions? options = null)
    {
        options ??= LoadOptions.Default;
        var csvPath = FindCsv(labelsCsvPath);
        var root = Path.GetDirectoryName(csvPath)!;
        var table = DatasetCsv.Read(csvPath);
        table.Require("file", "the image path relative to the CSV's folder");
        var chexpert = LoadContext.FindChexpertColumns(table);
        var consumed = new HashSet<int>(Consumed.Select(table.IndexOf).Where(i => i >= 0));
        if (chexpert is not null) consumed.UnionWith(chexpert);
        if (options.Splits is not null) table.Require("split", "needed because a split was selected");
        var folderName = new DirectoryInfo(root).Name;
        var defaultDataset = options.Name ?? folderName;

        var ctx = new LoadContext(options) { Root = root };
        ctx.AddRows(table.Rows, row =>
        {
            var view = row.Opt("view");
            if (!options.KeepView(view)) return null;
            if (!options.KeepSplit(row.Opt("split"))) return null;
            var file = row["file"];
            var image = ImageSource.FromFile(LoadContext.Resolve(root, file, row, "file", options.AllowOutsideRoot));
            var sourceLabels = row["labels"].Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var labels = chexpert is not null
                ? LoadContext.ParseChexpertColumns(row, chexpert)
                : ChexpertLabelMap.ToLabels(sourceLabels, out _);
            var masks = new Dictionary<string, ImageSource>(StringComparer.Ordinal);
            if (row.Opt("mask") is string mask) masks["mask"] = ImageSource.FromFile(LoadContext.Resolve(root, mask, row, "mask", options.AllowOutsideRoot));
            if (row.Opt("masks") is string many)
                foreach (var pair in many.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    int eq = pair.IndexOf('=');
                    if (eq <= 0 || eq == pair.Length - 1)
                        throw row.Error("masks", $"'{pair}' is not name=path; expected pipe-separated name=relative_path pairs");
                    var name = pair[..eq].Trim();
                    if (masks.ContainsKey(name)) throw row.Error("masks", $"mask name '{name}' appears twice; expected unique names");
                    masks[name] = ImageSource.FromFile(LoadContext.Resolve(root, pair[(eq + 1)..].Trim(), row, "masks", options.AllowOutsideRoot));
                }
            var report = row.Opt("findings") is not null || row.Opt("impression") is not null
                ? new CxrReport(row.Opt("findings"), row.Opt("impression"), row.Opt("report") ?? string.Join(" ", new[] { row.Opt("findings"), row.Opt("impression") }.Where(s => s is not null)))
                : ReportSections.Parse(row.Opt("report"));
            var attrs = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int c = 0; c < table.Header.Count; c++)
                if (!consumed.Contains(c) && row[c].Length > 0) attrs[table.Header[c]] = row[c];
            return new CxrRecord
            {
                Id = row.Opt("id") ?? file,
                PatientId = row.Opt("patient_id") ?? row.Opt("patientid") ?? PatientFromFileName(file),
                Dataset = row.Opt("dataset") ?? defaultDataset,
                Image = image,
                Report = report,
                Labels = labels,
                SourceLabels = sourceLabels,
                Masks = masks,
                Sex = LoadContext.ParseSex(row, "sex"),
                Age = LoadContext.ParseAge(row, "age"),
                View = view,
                Attributes = attrs,
                SourceFile = csvPath,
                SourceLine = row.Line,
            };
        });
        return ctx.Build(defaultDataset, root);
    }

    [GeneratedRegex(@"^(?<p>.+?)_\d+$")]
    private static partial Regex TrailingIndex();

    /// <summary>A patient id from an image file name: no folder, no extension, no trailing "_digits" part.</summary>
    public static string PatientFromFileName(string file)
    {
        var stem = Path.GetFileNameWithoutExtension(file.Replace('\\', '/'));
        var m = TrailingIndex().Match(stem);
        return m.Success ? m.Groups["p"].Value : stem;
    }
}
