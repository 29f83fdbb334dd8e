namespace RoentGen.Data.Datasets;

/// <summary>
/// Loads the Indiana University chest X-ray collection (Demner-Fushman et al. 2016) in its common CSV form:
/// <c>indiana_reports.csv</c> (uid, MeSH, Problems, image, indication, comparison, findings, impression) and
/// <c>indiana_projections.csv</c> (uid, filename, projection Frontal/Lateral), with images in
/// <c>images/images_normalized/</c>, <c>images_normalized/</c> or <c>images/</c>. One record per image; the patient is
/// the report uid (the collection is de-identified per study). Labels: MeSH terms whose main heading maps to a
/// CheXpert observation (<see cref="ChexpertLabelMap"/>: normal, Opacity, Infiltrate, Airspace Disease,
/// Cardiomegaly, Pulmonary Atelectasis, Pleural Effusion, Nodule, Mass, Pneumonia, Pneumothorax, Consolidation,
/// Pulmonary Edema, Fractures Bone, devices) are positive, or uncertain when every mention is qualified
/// "borderline"; the Problems terms are the source labels.
/// </summary>
public static class IuXrayLoader
{
    /// <summary>Loads the dataset from the folder holding the two CSVs.</summary>
    public static CxrDataset Load(string root, LoadOptions? options = null)
    {
        options ??= LoadOptions.Default;
        root = Path.GetFullPath(root);
        var repPath = Path.Combine(root, "indiana_reports.csv");
        var projPath = Path.Combine(root, "indiana_projections.csv");
        var reports = DatasetCsv.Read(repPath);
        reports.Require("uid"); reports.Require("findings"); reports.Require("impression");
        var proj = DatasetCsv.Read(projPath);
        proj.Require("uid"); proj.Require("filename"); proj.Require("projection");
        var byUid = new Dictionary<string, DatasetCsvRow>(StringComparer.Ordinal);
        foreach (var r in reports.Rows) byUid.TryAdd(r["uid"], r);
        var imageDirs = new[] { Path.Combine(root, "images", "images_normalized"), Path.Combine(root, "images_normalized"), Path.Combine(root, "images"), root }
            .Where(Directory.Exists).ToList();

        var ctx = new LoadContext(options) { Root = root };
        ctx.AddRows(proj.Rows, row =>
        {
            var uid = row["uid"];
            var file = row["filename"];
            if (file.Length == 0) throw row.Error("filename", "blank; expected an image file name");
            if (!byUid.TryGetValue(uid, out var rep))
                throw row.Error("uid", $"uid '{uid}' has no row in {repPath}; expected every projection to have a report");
            var view = row["projection"];
            if (view is not ("Frontal" or "Lateral")) throw row.Error("projection", $"unknown projection '{view}'; expected Frontal or Lateral");
            if (!options.KeepView(view)) return null;
            var problems = rep["Problems"].Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct().ToList();
            var path = imageDirs.Select(d => Path.Combine(d, file)).FirstOrDefault(File.Exists) ?? Path.Combine(imageDirs.FirstOrDefault() ?? root, file);
            var attrs = new Dictionary<string, string>(StringComparer.Ordinal) { ["uid"] = uid };
            foreach (var c in new[] { "MeSH", "image", "indication", "comparison" })
                if (rep.Opt(c) is string v) attrs[c] = v;
            return new CxrRecord
            {
                Id = file,
                PatientId = uid,
                Dataset = "iu-xray",
                Image = ImageSource.FromFile(path),
                Report = ReportOf(rep),
                Labels = LabelsFromMesh(rep["MeSH"]),
                SourceLabels = problems,
                View = view,
                Attributes = attrs,
                SourceFile = projPath,
                SourceLine = row.Line,
            };
        });
        return ctx.Build("iu-xray", root);
    }

    /// <summary>CheXpert labels from an IU MeSH field like "Cardiomegaly/borderline;Opacity/lung/base/left".</summary>
    public static CxrLabels LabelsFromMesh(string mesh)
    {
        var labels = new CxrLabels();
        foreach (var term in mesh.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = term.Split('/', StringSplitOptions.TrimEntries);
            if (!ChexpertLabelMap.TryMap(parts[0], out var o)) continue;
            bool borderline = parts.Skip(1).Any(p => p.Equals("borderline", StringComparison.OrdinalIgnoreCase));
            if (!borderline) labels[o] = Mention.Positive;
            else if (labels[o] != Mention.Positive) labels[o] = Mention.Uncertain;
        }
        if (labels.Has(Observation.NoFinding) && labels.Positives.Any(p => p != Observation.NoFinding))
            labels[Observation.NoFinding] = Mention.NotMentioned;
        return labels;
    }

    private static CxrReport ReportOf(DatasetCsvRow rep)
    {
        string? f = rep.Opt("findings"), i = rep.Opt("impression");
        var parts = new List<string>();
        if (rep.Opt("indication") is string ind) parts.Add("INDICATION: " + ind);
        if (rep.Opt("comparison") is string cmp) parts.Add("COMPARISON: " + cmp);
        if (f is not null) parts.Add("FINDINGS: " + f);
        if (i is not null) parts.Add("IMPRESSION: " + i);
        return new CxrReport(f, i, parts.Count == 0 ? null : string.Join("\n", parts));
    }
}
