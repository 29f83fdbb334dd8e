using System.CommandLine;
using RoentGen.Cli.Commands;
using RoentGen.Data;
using RoentGen.Data.Phantoms;
using RoentGen.Data.Reports;
using RoentGen.Interactive;

namespace RoentGen.Tests.Data;

public class PhantomDatasetTests
{
    [Fact]
    public void WriteFolder_WritesGenericLayout_ThatReadsBack()
    {
        string dir = TestPaths.NewTempDir();
        try
        {
            var opts = new PhantomOptions { Size = 64, Seed = 9 };
            var summary = PhantomDataset.WriteFolder(dir, opts, 6, sink: ProgressSinks.None());
            Assert.Equal(6, summary.Count);
            var t = Csv.ReadFile(Path.Combine(dir, "labels.csv"));
            Assert.Equal(PhantomDataset.GenericColumns, t.Header.Take(8));
            Assert.Equal(["patient_id", "masks"], t.Header.Skip(8).Take(2));
            Assert.Equal(Observations.Names, t.Header.Skip(10).Take(14));
            Assert.Equal(6, t.Rows.Count);
            var gen = new PhantomGenerator(opts);
            for (int i = 0; i < 6; i++)
            {
                var row = t.Rows[i]; var c = gen.Generate(i);
                Assert.Equal($"images/{c.Id}.png", row["file"]);
                Assert.Equal("phantom", row["dataset"]);
                Assert.Equal(c.Report, row["report"]);
                Assert.Equal(c.Sex, row["sex"]);
                Assert.Equal(c.Age.ToString(), row["age"]);
                foreach (var o in Observations.All) Assert.Equal(c.Labels[o].Code(), row[o.Name()]);
                var img = ImageIO.Read(Path.Combine(dir, row["file"]));
                Assert.Equal(64, img.Width);
                Assert.True(File.Exists(Path.Combine(dir, row["mask"])));
                foreach (var part in row["masks"].Split('|'))
                    Assert.True(File.Exists(Path.Combine(dir, part.Split('=')[1])), part);
                Assert.Equal(c.Masks.Count, row["masks"].Split('|').Length);
                var positives = row["labels"].Split('|', StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal(c.Labels.Positives.Select(o => o.Name()), positives);
                Assert.Equal(c.Attributes["ctr"], row["ctr"]);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    private static int Cli(params string[] args)
    {
        var root = new RootCommand("test");
        root.Subcommands.Add(DataCommand.Build());
        return root.Parse(args).Invoke();
    }

    [Fact]
    public void Cli_PhantomsThenLabelReports_RoundTrip()
    {
        string dir = TestPaths.NewTempDir();
        var old = ProgressReporter.SinkFactory;
        try
        {
            ProgressReporter.SinkFactory = ProgressSinks.None;
            string outDir = Path.Combine(dir, "ph");
            Assert.Equal(0, Cli("data", "phantoms", "--n", "5", "--size", "64", "--seed", "4", "--out", outDir));
            Assert.True(File.Exists(Path.Combine(outDir, "labels.csv")));
            Assert.Equal(5, Directory.GetFiles(Path.Combine(outDir, "images")).Length);

            string labelled = Path.Combine(dir, "labelled.csv");
            Assert.Equal(0, Cli("data", "label-reports", "--in", Path.Combine(outDir, "labels.csv"), "--text-columns", "report", "--prefix", "pred_", "--out", labelled));
            var t = Csv.ReadFile(labelled);
            foreach (var row in t.Rows)
                foreach (var name in Observations.Names)
                    Assert.Equal(row[name], row["pred_" + name]); // the labeler recovers the writer's labels

            // without a prefix the CheXpert columns would clash
            Assert.Equal(2, Cli("data", "label-reports", "--in", Path.Combine(outDir, "labels.csv"), "--text-columns", "report", "--out", labelled));
            Assert.Equal(2, Cli("data", "phantoms", "--n", "2", "--size", "32", "--out", outDir));
        }
        finally
        {
            ProgressReporter.SinkFactory = old;
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Cli_LabelReports_HandlesQuotedFields_AndNamesMissingColumns()
    {
        string dir = TestPaths.NewTempDir();
        var old = ProgressReporter.SinkFactory;
        var oldErr = Console.Error;
        try
        {
            ProgressReporter.SinkFactory = ProgressSinks.None;
            string input = Path.Combine(dir, "in.csv");
            File.WriteAllText(input,
                "uid,findings,impression\n" +
                "1,\"Heart size normal, lungs clear.\nNo effusion.\",\"No acute disease.\"\n" +
                "2,\"Small left pleural effusion, \"\"layering\"\".\",Possible pneumonia.\n");
            string outPath = Path.Combine(dir, "out.csv");
            Assert.Equal(0, Cli("data", "label-reports", "--in", input, "--text-columns", "findings,impression", "--out", outPath));
            var t = Csv.ReadFile(outPath);
            Assert.Equal(2, t.Rows.Count);
            Assert.Equal("Heart size normal, lungs clear.\nNo effusion.", t.Rows[0]["findings"]);
            Assert.Equal("0", t.Rows[0]["Cardiomegaly"]);
            Assert.Equal("0", t.Rows[0]["Pleural Effusion"]);
            Assert.Equal("1", t.Rows[0]["No Finding"]);
            Assert.Equal("1", t.Rows[1]["Pleural Effusion"]);
            Assert.Equal("-1", t.Rows[1]["Pneumonia"]);
            Assert.Equal("", t.Rows[1]["Fracture"]);

            var err = new StringWriter();
            Console.SetError(err);
            Assert.Equal(2, Cli("data", "label-reports", "--in", input, "--text-columns", "findings,indication", "--out", outPath));
            Assert.Contains("'indication'", err.ToString());
            Assert.Contains("in.csv", err.ToString());
        }
        finally
        {
            Console.SetError(oldErr);
            ProgressReporter.SinkFactory = old;
            Directory.Delete(dir, true);
        }
    }
}
