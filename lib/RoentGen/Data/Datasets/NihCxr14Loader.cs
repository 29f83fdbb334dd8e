namespace RoentGen.Data.Datasets;

/// <summary>
/// Loads NIH ChestX-ray14 (Wang et al. 2017): <c>Data_Entry_2017.csv</c> (or <c>Data_Entry_2017_v2020.csv</c>) with
/// Image Index, Finding Labels (pipe-separated), Follow-up #, Patient ID, Patient Age, Patient Gender, View Position;
/// images in <c>images/</c>, <c>images_NNN/images/</c> or <c>images_NNN/</c>; optional <c>train_val_list.txt</c> and
/// <c>test_list.txt</c> give the official split ("train_val" / "test", see <see cref="LoadOptions.Splits"/>).
/// Finding names become CheXpert labels through <see cref="ChexpertLabelMap"/> (positives only; Emphysema,
/// Fibrosis and Hernia stay source labels). Ages "58" and the first release's "058Y" are both read.
/// </summary>
public static class NihCxr14Loader
{
    /// <summary>Loads the dataset from its root folder.</summary>
    public static CxrDataset Load(string root, LoadOptions? options = null)
    {
        options ??= LoadOptions.Default;
        root = Path.GetFullPath(root);
        var csvPath = new[] { "Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv" }.Select(n => Path.Combine(root, n)).FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"Data_Entry_2017.csv not found in {root}; expected the ChestX-ray14 root folder");
        var t = DatasetCsv.Read(csvPath);
        foreach (var c in new[] { "Image Index", "Finding Labels", "Patient ID" }) t.Require(c);
        if (options.Views != ViewFilter.All) t.Require("View Position", "needed to filter views");

        var split = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (file, name) in new[] { ("train_val_list.txt", "train_val"), ("test_list.txt", "test") })
        {
            var p = Path.Combine(root, file);
            if (!File.Exists(p)) continue;
            foreach (var line in File.ReadLines(p)) if (line.Trim().Length > 0) split[line.Trim()] = name;
        }
        if (options.Splits is not null && split.Count == 0)
            throw new FileNotFoundException($"train_val_list.txt / test_list.txt not found in {root}; expected them because a split was selected");

        var index = IndexImages(root);
        var consumed = new HashSet<string>(["Image Index", "Finding Labels", "Patient ID", "Patient Age", "Patient Gender", "View Position"], StringComparer.OrdinalIgnoreCase);
        var ctx = new LoadContext(options) { Root = root };
        ctx.AddRows(t.Rows, row =>
        {
            var name = row["Image Index"];
            if (name.Length == 0) throw row.Error("Image Index", "blank; expected an image file name like 00000001_000.png");
            var view = row.Opt("View Position");
            if (!options.KeepView(view)) return null;
            split.TryGetValue(name, out var part);
            if (!options.KeepSplit(part)) return null;
            var findings = row["Finding Labels"].Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (findings.Length == 0) throw row.Error("Finding Labels", "blank; expected pipe-separated findings or 'No Finding'");
            var attrs = new Dictionary<string, string>(StringComparer.Ordinal);
            if (part is not null) attrs["split"] = part;
            for (int c = 0; c < t.Header.Count; c++)
                if (!consumed.Contains(t.Header[c]) && row[c].Length > 0) attrs[t.Header[c]] = row[c];
            var patient = row["Patient ID"];
            if (patient.Length == 0) throw row.Error("Patient ID", "blank; expected a patient number");
            return new CxrRecord
            {
                Id = name,
                PatientId = patient,
                Dataset = "nih-cxr14",
                Image = ImageSource.FromFile(index.TryGetValue(name, out var path) ? path : Path.Combine(root, "images", name)),
                Labels = ChexpertLabelMap.ToLabels(findings, out _),
                SourceLabels = findings,
                Sex = LoadContext.ParseSex(row, "Patient Gender"),
                Age = LoadContext.ParseAge(row, "Patient Age"),
                View = view,
                Attributes = attrs,
                SourceFile = csvPath,
                SourceLine = row.Line,
            };
        });
        return ctx.Build("nih-cxr14", root);
    }

    private static Dictionary<string, string> IndexImages(string root)
    {
        var index = new Dictionary<string, string>(StringComparer.Ordinal);
        var dirs = new List<string>();
        if (Directory.Exists(Path.Combine(root, "images"))) dirs.Add(Path.Combine(root, "images"));
        foreach (var d in Directory.EnumerateDirectories(root, "images_*").Order(StringComparer.Ordinal))
            dirs.Add(Directory.Exists(Path.Combine(d, "images")) ? Path.Combine(d, "images") : d);
        foreach (var d in dirs)
            foreach (var f in Directory.EnumerateFiles(d, "*.png"))
                index.TryAdd(Path.GetFileName(f), f);
        return index;
    }
}
