using System.Text.RegularExpressions;

namespace RoentGen.Data.Datasets;

/// <summary>
/// Loads CheXpert (Irvin et al. 2019): <c>train.csv</c> and <c>valid.csv</c> with columns Path, Sex, Age,
/// Frontal/Lateral, AP/PA and the 14 observations (1.0 / 0.0 / -1.0 / blank). Paths such as
/// "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg" are resolved against the root (the
/// folder holding the CSVs) with their first folder dropped, or against the root or its parent as written,
/// whichever exists. Patient id and study come from the path (patientNNNNN, studyN). The view is the AP/PA
/// value for frontal images and "Lateral" for lateral ones. <see cref="LoadOptions.Splits"/> selects
/// "train" and/or "valid".
/// </summary>
public static partial class CheXpertLoader
{
    [GeneratedRegex(@"(?<p>patient\d+)/(?<s>study\d+)/", RegexOptions.IgnoreCase)]
    private static partial Regex PatientStudy();

    /// <summary>Loads the dataset from the folder holding train.csv / valid.csv.</summary>
    public static CxrDataset Load(string root, LoadOptions? options = null)
    {
        options ??= LoadOptions.Default;
        root = Path.GetFullPath(root);
        var files = new[] { "train", "valid" }.Where(options.KeepSplit).Select(s => (Split: s, Path: Path.Combine(root, s + ".csv"))).Where(f => File.Exists(f.Path)).ToList();
        if (files.Count == 0)
            throw new FileNotFoundException($"no train.csv or valid.csv in {root}; expected the CheXpert folder (e.g. CheXpert-v1.0-small)");
        var parent = Directory.GetParent(root)?.FullName ?? root;
        // CheXpert's Path column starts with the dataset folder's own name ("CheXpert-v1.0-small/train/..."), so images
        // are looked up from the parent folder too: that is the data root.
        var ctx = new LoadContext(options) { Root = parent };
        foreach (var (split, path) in files)
        {
            var t = DatasetCsv.Read(path);
            t.Require("Path");
            var cols = LoadContext.FindChexpertColumns(t)
                ?? throw new DatasetFormatException(path, 1, null, $"expected the 14 CheXpert columns ({string.Join(", ", Observations.Names)}); the header has: {string.Join(", ", t.Header)}");
            bool hasFl = t.Has("Frontal/Lateral");
            if (options.Views != ViewFilter.All && !hasFl) t.Require("Frontal/Lateral", "needed to filter views");
            ctx.AddRows(t.Rows, row =>
            {
                var rel = row["Path"].Replace('\\', '/');
                if (rel.Length == 0) throw row.Error("Path", "blank; expected an image path like CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg");
                var m = PatientStudy().Match(rel);
                if (!m.Success) throw row.Error("Path", $"'{rel}' has no patientNNNNN/studyN folders; expected a CheXpert image path");
                var fl = row["Frontal/Lateral"];
                bool? frontal = fl.Length == 0 ? null : fl.Equals("Frontal", StringComparison.OrdinalIgnoreCase) ? true
                    : fl.Equals("Lateral", StringComparison.OrdinalIgnoreCase) ? false
                    : throw row.Error("Frontal/Lateral", $"unknown value '{fl}'; expected Frontal or Lateral");
                var view = frontal == false ? "Lateral" : row.Opt("AP/PA") ?? (frontal == true ? "Frontal" : null);
                if (options.Views == ViewFilter.FrontalOnly && frontal != true) return null;
                if (options.Views == ViewFilter.LateralOnly && frontal != false) return null;
                var attrs = new Dictionary<string, string> { ["split"] = split, ["study"] = m.Groups["s"].Value };
                if (row.Opt("AP/PA") is string appa) attrs["AP/PA"] = appa;
                return new CxrRecord
                {
                    Id = rel,
                    PatientId = m.Groups["p"].Value,
                    Dataset = "chexpert",
                    Image = ImageSource.FromFile(ResolveImage(root, parent, rel)),
                    Labels = LoadContext.ParseChexpertColumns(row, cols),
                    Sex = LoadContext.ParseSex(row, "Sex"),
                    Age = LoadContext.ParseAge(row, "Age"),
                    View = view,
                    Attributes = attrs,
                    SourceFile = path,
                    SourceLine = row.Line,
                };
            });
        }
        return ctx.Build("chexpert", root);
    }

    private static string ResolveImage(string root, string parent, string rel)
    {
        int slash = rel.IndexOf('/');
        var stripped = slash > 0 && rel[..slash].StartsWith("CheXpert", StringComparison.OrdinalIgnoreCase) ? rel[(slash + 1)..] : rel;
        foreach (var c in new[] { Path.Combine(root, stripped), Path.Combine(root, rel), Path.Combine(parent, rel) })
            if (File.Exists(c)) return c;
        return Path.Combine(root, stripped);
    }
}
