namespace RoentGen.Data.Datasets;

/// <summary>
/// Loads MIMIC-CXR-JPG (Johnson et al. 2019, PhysioNet). Expects under the root:
/// <list type="bullet">
/// <item><c>mimic-cxr-2.0.0-metadata.csv[.gz]</c>: dicom_id, subject_id, study_id, ViewPosition, ... (one row per image; required).</item>
/// <item><c>mimic-cxr-2.0.0-split.csv[.gz]</c>: dicom_id, study_id, subject_id, split (train / validate / test; optional).</item>
/// <item><c>mimic-cxr-2.0.0-chexpert.csv[.gz]</c>: subject_id, study_id and the 14 observations as 1.0 / 0.0 / -1.0 / blank
/// (optional; a study without a row has every observation not mentioned).</item>
/// <item>images at <c>files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg</c> (XX = the subject id's first two digits).</item>
/// <item>reports (optional, from MIMIC-CXR's mimic-cxr-reports.zip) at <c>files/pXX/pSUBJECT/sSTUDY.txt</c> under the
/// reports root (default: the same root); FINDINGS and IMPRESSION are parsed with <see cref="ReportSections"/>.</item>
/// <item><c>patients.csv[.gz]</c> from MIMIC-IV (optional): subject_id, gender, anchor_age give sex and age.</item>
/// </list>
/// <see cref="LoadOptions.Views"/> filters on ViewPosition (FrontalOnly keeps PA and AP); <see cref="LoadOptions.Splits"/>
/// on the official split. Other metadata columns become attributes, with study_id and split.
/// </summary>
public static class MimicCxrLoader
{
    /// <summary>Loads the dataset.</summary>
    /// <param name="root">The MIMIC-CXR-JPG folder (holding files/ and the CSVs).</param>
    /// <param name="options">Shared options.</param>
    /// <param name="reportsRoot">Folder holding files/pXX/.../sSTUDY.txt reports; default <paramref name="root"/>.</param>
    public static CxrDataset Load(string root, LoadOptions? options = null, string? reportsRoot = null)
    {
        options ??= LoadOptions.Default;
        root = Path.GetFullPath(root);
        reportsRoot = reportsRoot is null ? root : Path.GetFullPath(reportsRoot);
        var metaPath = Find(root, "mimic-cxr-2.0.0-metadata.csv")
            ?? throw new FileNotFoundException($"mimic-cxr-2.0.0-metadata.csv(.gz) not found in {root}; expected the MIMIC-CXR-JPG root folder");
        var meta = DatasetCsv.Read(metaPath);
        meta.Require("dicom_id"); meta.Require("subject_id"); meta.Require("study_id");
        if (options.Views != ViewFilter.All) meta.Require("ViewPosition", "needed to filter views");

        var splits = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Find(root, "mimic-cxr-2.0.0-split.csv") is string splitPath)
        {
            var t = DatasetCsv.Read(splitPath);
            t.Require("dicom_id"); t.Require("split");
            foreach (var r in t.Rows) splits[r["dicom_id"]] = r["split"];
        }
        else if (options.Splits is not null)
            throw new FileNotFoundException($"mimic-cxr-2.0.0-split.csv(.gz) not found in {root}; expected it because a split was selected");

        var labels = new Dictionary<string, CxrLabels>(StringComparer.Ordinal);
        var ctx = new LoadContext(options) { Root = root };
        if (Find(root, "mimic-cxr-2.0.0-chexpert.csv") is string cxPath)
        {
            var t = DatasetCsv.Read(cxPath);
            t.Require("study_id");
            var cols = LoadContext.FindChexpertColumns(t)
                ?? throw new DatasetFormatException(cxPath, 1, null, $"expected the 14 CheXpert columns ({string.Join(", ", Observations.Names)}); the header has: {string.Join(", ", t.Header)}");
            foreach (var r in t.Rows)
            {
                try { labels[r["study_id"]] = LoadContext.ParseChexpertColumns(r, cols); }
                catch (DatasetFormatException ex) { ctx.Problem(ex); }
            }
        }

        var patients = new Dictionary<string, DatasetCsvRow>(StringComparer.Ordinal);
        if (Find(root, "patients.csv") is string patPath)
            foreach (var r in DatasetCsv.Read(patPath).Rows) patients[r["subject_id"]] = r;

        var consumed = new HashSet<string>(["dicom_id", "subject_id", "study_id", "ViewPosition"], StringComparer.OrdinalIgnoreCase);
        ctx.AddRows(meta.Rows, row =>
        {
            var dicom = row["dicom_id"];
            var subject = row["subject_id"];
            var study = row["study_id"];
            if (dicom.Length == 0) throw row.Error("dicom_id", "blank; expected a DICOM id");
            if (subject.Length < 2 || !subject.All(char.IsDigit)) throw row.Error("subject_id", $"'{subject}' is not a subject number; expected digits like 10000032");
            if (study.Length == 0 || !study.All(char.IsDigit)) throw row.Error("study_id", $"'{study}' is not a study number; expected digits like 50414267");
            var view = row.Opt("ViewPosition");
            if (!options.KeepView(view)) return null;
            splits.TryGetValue(dicom, out var split);
            if (!options.KeepSplit(split)) return null;
            var folder = Path.Combine("files", "p" + subject[..2], "p" + subject);
            var reportFile = Path.Combine(reportsRoot, folder, "s" + study + ".txt");
            var attrs = new Dictionary<string, string>(StringComparer.Ordinal) { ["study_id"] = study };
            if (split is not null) attrs["split"] = split;
            for (int c = 0; c < meta.Header.Count; c++)
                if (!consumed.Contains(meta.Header[c]) && row[c].Length > 0) attrs[meta.Header[c]] = row[c];
            string? sex = null; double? age = null;
            if (patients.TryGetValue(subject, out var p))
            {
                sex = LoadContext.ParseSex(p, "gender");
                age = LoadContext.ParseAge(p, "anchor_age");
            }
            return new CxrRecord
            {
                Id = dicom,
                PatientId = subject,
                Dataset = "mimic-cxr",
                Image = ImageSource.FromFile(Path.Combine(root, folder, "s" + study, dicom + ".jpg")),
                Report = File.Exists(reportFile) ? ReportSections.Parse(File.ReadAllText(reportFile)) : CxrReport.Empty,
                Labels = labels.TryGetValue(study, out var l) ? l.Clone() : new CxrLabels(),
                View = view,
                Sex = sex,
                Age = age,
                Attributes = attrs,
                SourceFile = metaPath,
                SourceLine = row.Line,
            };
        });
        return ctx.Build("mimic-cxr", root);
    }

    internal static string? Find(string root, string name)
    {
        foreach (var n in new[] { name, name + ".gz" })
        {
            var p = Path.Combine(root, n);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
