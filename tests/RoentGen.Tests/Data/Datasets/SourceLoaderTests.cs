using RoentGen.Data;
using RoentGen.Data.Datasets;

namespace RoentGen.Tests.Data.Datasets;

public class SourceLoaderTests
{
    private static readonly string ChexpertHeader14 = string.Join(",", Observations.Names);

    // MIMIC's chexpert CSV orders the observations alphabetically; the loader must find them by name.
    private static readonly string[] MimicOrder =
        ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture", "Lung Lesion",
         "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices"];

    private static string MimicFixture()
    {
        var root = TestPaths.NewTempDir("mimic");
        Fixtures.Text(root, "mimic-cxr-2.0.0-metadata.csv",
            "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns\n"
            + "d1,10000032,50414267,CHEST (PA AND LAT),PA,8,8\n"
            + "d2,10000032,50414267,CHEST (PA AND LAT),LATERAL,8,8\n"
            + "d3,10000032,53189527,CHEST (PORTABLE AP),AP,8,8\n"
            + "d4,11000011,52000001,CHEST (PA AND LAT),PA,8,8\n");
        Fixtures.Text(root, "mimic-cxr-2.0.0-split.csv",
            "dicom_id,study_id,subject_id,split\nd1,50414267,10000032,train\nd2,50414267,10000032,train\nd3,53189527,10000032,train\nd4,52000001,11000011,test\n");
        string Row(string subj, string study, params (string Name, string Code)[] codes) =>
            subj + "," + study + "," + string.Join(",", MimicOrder.Select(n => codes.FirstOrDefault(c => c.Name == n).Code ?? ""));
        Fixtures.Text(root, "mimic-cxr-2.0.0-chexpert.csv",
            "subject_id,study_id," + string.Join(",", MimicOrder) + "\n"
            + Row("10000032", "50414267", ("No Finding", "1.0")) + "\n"
            + Row("10000032", "53189527", ("Pleural Effusion", "1.0"), ("Edema", "-1.0"), ("Pneumothorax", "0.0")) + "\n");
        foreach (var (s, st, d) in new[] { ("10000032", "50414267", "d1"), ("10000032", "50414267", "d2"), ("10000032", "53189527", "d3"), ("11000011", "52000001", "d4") })
            Fixtures.Jpeg(root, $"files/p{s[..2]}/p{s}/s{st}/{d}.jpg");
        Fixtures.Text(root, "files/p10/p10000032/s50414267.txt",
            "                                 FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n\n INDICATION:  ___ with cough\n\n"
            + " FINDINGS:\n \n There is no focal consolidation, pleural effusion or pneumothorax.\n Heart size is normal.\n \n"
            + " IMPRESSION:\n \n No acute cardiopulmonary process.\n");
        Fixtures.Text(root, "files/p10/p10000032/s53189527.txt",
            "Impression: Small left effusion.\nNotification: discussed with Dr. ___.\n"); // lower case, no findings
        return root;
    }

    [Fact]
    public void Mimic_images_labels_reports_views_and_splits()
    {
        var root = MimicFixture();
        var ds = MimicCxrLoader.Load(root);
        Assert.Equal(4, ds.Count);
        var d1 = ds.Single(r => r.Id == "d1");
        Assert.Equal("10000032", d1.PatientId);
        Assert.Equal("There is no focal consolidation, pleural effusion or pneumothorax. Heart size is normal.", d1.Report.Findings);
        Assert.Equal("No acute cardiopulmonary process.", d1.Report.Impression);
        Assert.True(d1.Labels.Has(Observation.NoFinding));
        Assert.Equal("train", d1.Attributes["split"]);
        Assert.Equal("CHEST (PA AND LAT)", d1.Attributes["PerformedProcedureStepDescription"]);
        var d3 = ds.Single(r => r.Id == "d3");
        Assert.Null(d3.Report.Findings);
        Assert.Equal("Small left effusion.", d3.Report.Impression);
        Assert.Equal(Mention.Uncertain, d3.Labels[Observation.Edema]);
        Assert.Equal(Mention.Negative, d3.Labels[Observation.Pneumothorax]);
        Assert.True(d3.Labels.Has(Observation.PleuralEffusion));
        var d4 = ds.Single(r => r.Id == "d4");
        Assert.True(d4.Report.IsEmpty);
        Assert.Empty(d4.Labels.Positives);
        Assert.Equal((8, 8), (ds.LoadImage(d4).Width, ds.LoadImage(d4).Height));

        var frontalTrain = MimicCxrLoader.Load(root, new LoadOptions { Views = ViewFilter.FrontalOnly, Splits = ["train"] });
        Assert.Equal(["d1", "d3"], frontalTrain.Select(r => r.Id));
        Assert.Equal(["d2"], MimicCxrLoader.Load(root, new LoadOptions { Views = ViewFilter.LateralOnly }).Select(r => r.Id));

        File.Delete(Path.Combine(root, "files/p11/p11000011/s52000001/d4.jpg"));
        var ex = Assert.Throws<DatasetFormatException>(() => MimicCxrLoader.Load(root));
        Assert.Equal(5, ex.Line);
        Assert.Contains("d4.jpg", ex.Message);
        var skipped = MimicCxrLoader.Load(root, new LoadOptions { SkipBadRows = true });
        Assert.Equal((3, 1), (skipped.Count, skipped.SkippedCount));
    }

    [Fact]
    public void Mimic_bad_label_value_names_file_line_and_column()
    {
        var root = MimicFixture();
        var p = Path.Combine(root, "mimic-cxr-2.0.0-chexpert.csv");
        File.WriteAllText(p, File.ReadAllText(p).Replace("-1.0", "maybe"));
        var ex = Assert.Throws<DatasetFormatException>(() => MimicCxrLoader.Load(root));
        Assert.Equal((3, "Edema"), (ex.Line!.Value, ex.Column));
        Assert.Contains("mimic-cxr-2.0.0-chexpert.csv", ex.File);
        Assert.Contains("'maybe'", ex.Message);
        var ds = MimicCxrLoader.Load(root, new LoadOptions { SkipBadRows = true });
        Assert.Equal(1, ds.SkippedCount);
        Assert.Equal(4, ds.Count); // the images stay; that study's labels are not mentioned
    }

    [Fact]
    public void Chexpert_paths_patients_views_and_bad_values()
    {
        var root = Path.Combine(TestPaths.NewTempDir("chexpert"), "CheXpert-v1.0-small");
        var header = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ChexpertHeader14 + "\n";
        string Codes(int pos, string code) => string.Join(",", Enumerable.Range(0, 14).Select(i => i == pos ? code : ""));
        Fixtures.Text(root, "train.csv", header
            + "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP," + Codes(0, "1.0") + "\n"
            + "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg,Male,87,Frontal,PA," + Codes(10, "-1.0") + "\n"
            + "CheXpert-v1.0-small/train/patient00002/study2/view2_lateral.jpg,Male,87,Lateral,," + Codes(10, "0.0") + "\n");
        Fixtures.Text(root, "valid.csv", header
            + "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg,Unknown,55,Frontal,AP," + Codes(2, "1.0") + "\n");
        Fixtures.Jpeg(root, "train/patient00001/study1/view1_frontal.jpg");
        Fixtures.Jpeg(root, "train/patient00002/study2/view1_frontal.jpg");
        Fixtures.Jpeg(root, "train/patient00002/study2/view2_lateral.jpg");
        Fixtures.Jpeg(root, "valid/patient64541/study1/view1_frontal.jpg");

        var ds = CheXpertLoader.Load(root);
        Assert.Equal(4, ds.Count);
        Assert.Equal(["patient00001", "patient00002", "patient00002", "patient64541"], ds.Select(r => r.PatientId));
        Assert.Equal(["AP", "PA", "Lateral", "AP"], ds.Select(r => r.View!));
        Assert.Equal(["F", "M", "M", null], ds.Select(r => r.Sex));
        Assert.Equal(Mention.Uncertain, ds[1].Labels[Observation.PleuralEffusion]);
        Assert.Equal(Mention.Negative, ds[2].Labels[Observation.PleuralEffusion]);
        Assert.Equal("valid", ds[3].Attributes["split"]);
        Assert.Equal(8, ds.LoadImage(ds[0]).Width);
        Assert.Equal(3, CheXpertLoader.Load(root, new LoadOptions { Views = ViewFilter.FrontalOnly }).Count);
        Assert.Single(CheXpertLoader.Load(root, new LoadOptions { Splits = ["valid"] }));
        // The parent folder works as a root too when the CSVs are found there... they are not: clear error.
        Assert.Throws<FileNotFoundException>(() => CheXpertLoader.Load(Path.GetDirectoryName(root)!));

        File.AppendAllText(Path.Combine(root, "valid.csv"), "CheXpert-v1.0-small/valid/patient64542/study1/view1_frontal.jpg,Male,55,Sideways,AP," + Codes(2, "1.0") + "\n");
        var ex = Assert.Throws<DatasetFormatException>(() => CheXpertLoader.Load(root));
        Assert.Equal((3, "Frontal/Lateral"), (ex.Line!.Value, ex.Column));
    }

    [Fact]
    public void Nih_images_in_subfolders_labels_ages_and_lists()
    {
        var root = TestPaths.NewTempDir("nih");
        Fixtures.Text(root, "Data_Entry_2017.csv",
            "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
            + "00000001_000.png,Cardiomegaly|Emphysema,0,1,058Y,M,PA,2682,2749,0.143,0.143,\n"
            + "00000001_001.png,No Finding,1,1,58,M,AP,2894,2729,0.143,0.143,\n"
            + "00000002_000.png,Mass|Infiltration,0,2,81,F,PA,2500,2048,0.171,0.171,\n");
        Fixtures.Png(root, "images_001/images/00000001_000.png");
        Fixtures.Png(root, "images_001/images/00000001_001.png");
        Fixtures.Png(root, "images_002/images/00000002_000.png");
        Fixtures.Text(root, "train_val_list.txt", "00000001_000.png\n00000001_001.png\n");
        Fixtures.Text(root, "test_list.txt", "00000002_000.png\n");
        var ds = NihCxr14Loader.Load(root);
        Assert.Equal(3, ds.Count);
        Assert.Equal(58, ds[0].Age);
        Assert.True(ds[0].Labels.Has(Observation.Cardiomegaly));
        Assert.Equal(["Cardiomegaly", "Emphysema"], ds[0].SourceLabels);
        Assert.Single(ds[0].Labels.Positives);
        Assert.True(ds[2].Labels.Has(Observation.LungLesion) && ds[2].Labels.Has(Observation.LungOpacity));
        Assert.Equal(ds[0].PatientId, ds[1].PatientId);
        Assert.Contains("images_002", ds[2].ImagePath);
        Assert.Equal("test", ds[2].Attributes["split"]);
        Assert.Equal(["00000002_000.png"], NihCxr14Loader.Load(root, new LoadOptions { Splits = ["test"] }).Select(r => r.Id));
        Assert.Equal(2, NihCxr14Loader.Load(root, new LoadOptions { Views = ViewFilter.FrontalOnly, Limit = 2 }).Count);

        var csv = Path.Combine(root, "Data_Entry_2017.csv");
        File.WriteAllText(csv, File.ReadAllText(csv).Replace("Patient ID", "Patient"));
        var ex = Assert.Throws<DatasetFormatException>(() => NihCxr14Loader.Load(root));
        Assert.Equal("Patient ID", ex.Column);
    }

    [Fact]
    public void Iu_xray_joins_projections_reports_and_mesh_labels()
    {
        var root = TestPaths.NewTempDir("iu");
        Fixtures.Text(root, "indiana_reports.csv",
            "uid,MeSH,Problems,image,indication,comparison,findings,impression\n"
            + "1,normal,normal,Xray Chest PA and Lateral,Positive TB test,None.,The cardiac silhouette and mediastinum size are within normal limits.,Normal chest x-XXXX.\n"
            + "2,Cardiomegaly/borderline;Pulmonary Artery/enlarged;Opacity/lung/base/left,Cardiomegaly;Pulmonary Artery;Opacity,Chest 2 views,,,,Left basilar opacity.\n");
        Fixtures.Text(root, "indiana_projections.csv",
            "uid,filename,projection\n1,1_IM-0001-4001.dcm.png,Frontal\n1,1_IM-0001-3001.dcm.png,Lateral\n2,2_IM-0652-1001.dcm.png,Frontal\n");
        foreach (var f in new[] { "1_IM-0001-4001.dcm.png", "1_IM-0001-3001.dcm.png", "2_IM-0652-1001.dcm.png" })
            Fixtures.Png(root, "images/images_normalized/" + f);
        var ds = IuXrayLoader.Load(root);
        Assert.Equal(3, ds.Count);
        Assert.True(ds[0].Labels.Has(Observation.NoFinding));
        Assert.Equal("Normal chest x-XXXX.", ds[0].Report.Impression);
        Assert.Contains("INDICATION: Positive TB test", ds[0].Report.Full);
        Assert.Equal(Mention.Uncertain, ds[2].Labels[Observation.Cardiomegaly]);
        Assert.Equal(Mention.Positive, ds[2].Labels[Observation.LungOpacity]);
        Assert.Null(ds[2].Report.Findings);
        Assert.Equal(["Cardiomegaly", "Pulmonary Artery", "Opacity"], ds[2].SourceLabels);
        Assert.Equal(2, IuXrayLoader.Load(root, new LoadOptions { Views = ViewFilter.FrontalOnly }).Count);

        File.AppendAllText(Path.Combine(root, "indiana_projections.csv"), "9,9_x.png,Frontal\n");
        var ex = Assert.Throws<DatasetFormatException>(() => IuXrayLoader.Load(root, new LoadOptions { CheckFilesExist = false }));
        Assert.Equal((5, "uid"), (ex.Line!.Value, ex.Column));
    }

    [SkippableFact]
    public void Iu_xray_real_reports_parse_and_map()
    {
        Skip.If(TestPaths.RealSample is null, "real-cxr-sample not present");
        // The sample has IU reports but no IU images: build projections and tiny images in a temp folder.
        var root = TestPaths.NewTempDir("iu-real");
        File.Copy(Path.Combine(TestPaths.RealSample!, "iu_xray_reports_sample.csv"), Path.Combine(root, "indiana_reports.csv"));
        var reports = DatasetCsv.Read(Path.Combine(root, "indiana_reports.csv"));
        var lines = new List<string> { "uid,filename,projection" };
        foreach (var r in reports.Rows.Take(40))
            foreach (var img in r["images"].Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var (file, proj) = (img.Split(':')[0], img.Split(':')[1]);
                lines.Add($"{r["uid"]},{file},{proj}");
                Fixtures.Png(root, "images/" + file, 4, 4);
            }
        File.WriteAllLines(Path.Combine(root, "indiana_projections.csv"), lines);
        var ds = IuXrayLoader.Load(root);
        Assert.Equal(lines.Count - 1, ds.Count);
        Assert.True(ds.Count(r => r.Labels.Has(Observation.NoFinding)) > 10);
        Assert.Contains(ds, r => r.Labels[Observation.Cardiomegaly] != Mention.NotMentioned);
        Assert.All(ds.Where(r => r.Report.Findings is not null), r => Assert.DoesNotContain("FINDINGS:", r.Report.Findings));
        Assert.True(ds.Count(r => r.Report.Impression is not null) > ds.Count / 2);
    }
}
