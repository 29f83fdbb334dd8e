using RoentGen.Data.Datasets;
using RoentGen.Feedback;
using RoentGen.Tests.Cli;

namespace RoentGen.Tests.Feedback;

/// <summary>The SQLite store, its CSV export, the catalogue, and turning ratings into a filtered set or weights.</summary>
public sealed class RatingStoreTests
{
    private static System.CommandLine.RootCommand Roentgen() => new() { RoentGen.Cli.Commands.FeedbackCommand.Build() };

    private static ImageRating R(string rater, string id, RatingDecision? d, int? g, long n) => new(rater, id, d, g, DateTimeOffset.UnixEpoch, n);

    [Fact]
    public void Last_submission_wins_per_rater_and_image_and_history_keeps_all()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var db = Path.Combine(dir, "sub", "r.sqlite");
            using (var store = RatingStore.Open(db))
            {
                store.Submit(new("a", "x.png", RatingDecision.Accept, 5));
                store.Submit(new("b", "x.png", RatingDecision.Reject, null));
                var last = store.Submit(new("a", "x.png", null, 2));
                Assert.Equal(3, last.Submission);
                var bad = Assert.Throws<ArgumentException>(() => store.Submit(new("a", "x.png", null, 6)));
                Assert.Equal("grade", bad.ParamName);
            }
            var current = RatingStore.ReadCurrent(db);
            Assert.Equal(2, current.Count);
            var a = current.Single(r => r.Rater == "a");
            Assert.Equal((null, 2, 3L), (a.Decision, a.Grade, a.Submission)); // a whole rating: the later grade-only submission clears the decision
            using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db}"))
            {
                c.Open();
                using var cmd = c.CreateCommand();
                cmd.CommandText = "PRAGMA journal_mode;";
                Assert.Equal("wal", cmd.ExecuteScalar() as string);
            }
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            using var again = RatingStore.Open(db);
            Assert.Equal([1L, 2L, 3L], again.History().Select(h => h.Submission));
            Assert.Equal(RatingDecision.Accept, again.History("a")[0].Decision);
        }
        finally { TestPaths.DeleteQuietly(dir); }
    }

    [Fact]
    public void A_file_that_is_not_sqlite_is_refused_with_its_name()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var db = Path.Combine(dir, "notes.sqlite");
            File.WriteAllText(db, "these are not ratings, just some text long enough to be a header");
            var e = Assert.Throws<InvalidDataException>(() => RatingStore.Open(db));
            Assert.Contains("notes.sqlite", e.Message);
        }
        finally { TestPaths.DeleteQuietly(dir); }
    }

    [Fact]
    public void Export_command_writes_a_csv_that_reads_back()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var db = Path.Combine(dir, "r.sqlite");
            using (var store = RatingStore.Open(db))
            {
                store.Submit(new("dr, \"quoted\"", "a.png", RatingDecision.Accept, 4));
                store.Submit(new("b", "a.png", RatingDecision.Reject, null));
                store.Submit(new("b", "a.png", null, 3));
            }
            var csv = Path.Combine(dir, "ratings.csv");
            var (rc, stdout, err) = CliCases.Invoke(Roentgen(), "feedback", "export", "--db", db, "--out", csv);
            Assert.True(rc == 0, err);
            Assert.Contains("wrote 2 ratings", stdout);
            var back = RatingStore.ReadCsv(csv);
            Assert.Equal(RatingStore.ReadCurrent(db), back);
            var hist = Path.Combine(dir, "history.csv");
            (rc, _, err) = CliCases.Invoke(Roentgen(), "feedback", "export", "--db", db, "--out", hist, "--history");
            Assert.True(rc == 0, err);
            Assert.Equal(3, RatingStore.ReadCsv(hist).Count);
            (rc, _, err) = CliCases.Invoke(Roentgen(), "feedback", "export", "--db", Path.Combine(dir, "none.sqlite"), "--out", hist);
            Assert.Equal(2, rc);
            Assert.Contains("no such ratings database", CliCases.AssertOneLine(err));
        }
        finally { TestPaths.DeleteQuietly(dir); }
    }

    [Fact]
    public void Serve_refuses_a_missing_folder_a_bad_port_and_an_empty_set_with_one_line()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var db = Path.Combine(dir, "r.sqlite");
            var (rc, _, err) = CliCases.Invoke(Roentgen(), "feedback", "serve", "--images", Path.Combine(dir, "none"), "--db", db);
            Assert.Equal(2, rc);
            Assert.Contains("images folder not found", CliCases.AssertOneLine(err));
            (rc, _, err) = CliCases.Invoke(Roentgen(), "feedback", "serve", "--images", dir, "--db", db, "--port", "70000");
            Assert.Equal(2, rc);
            Assert.Contains("port must be 0", CliCases.AssertOneLine(err));
            (rc, _, err) = CliCases.Invoke(Roentgen(), "feedback", "serve", "--images", dir, "--db", db);
            Assert.Equal(2, rc);
            Assert.Contains("no images to rate", CliCases.AssertOneLine(err));
        }
        finally { TestPaths.DeleteQuietly(dir); }
    }

    [Fact]
    public void Filter_keeps_accepted_images_above_a_grade_and_any_rejection_removes_one()
    {
        ImageRating[] ratings =
        [
            R("a", "1", RatingDecision.Accept, 5, 1),
            R("a", "2", RatingDecision.Accept, 2, 2),
            R("a", "3", RatingDecision.Accept, 4, 3), R("b", "3", RatingDecision.Reject, 4, 4),
            R("a", "4", null, 5, 5),
            R("a", "5", RatingDecision.Reject, 1, 6), R("a", "5", RatingDecision.Accept, 3, 7), // a later submission of the same pair wins
        ];
        string[] ids = ["1", "2", "3", "4", "5", "6"];
        Assert.Equal(["1", "2", "5"], RatingSelection.Select(ids, ratings, new RatingFilter()));
        Assert.Equal(["1", "5"], RatingSelection.Select(ids, ratings, new RatingFilter { MinGrade = 3 }));
        Assert.Equal(["1", "3", "4"], RatingSelection.Select(ids, ratings, new RatingFilter { AcceptedOnly = false, MinGrade = 4 }));
        Assert.Equal(["1", "2", "3", "5", "6"], RatingSelection.Select(ids, ratings, new RatingFilter { Rater = "a", KeepUnrated = true }).Except(["4"]).ToArray());
        Assert.Throws<ArgumentException>(() => RatingSelection.Select(ids, ratings, new RatingFilter { MinGrade = 6 }));

        var set = new CxrDataset("synthetic", "", ids.Select(id => new CxrRecord
        {
            Id = id, PatientId = id, Dataset = "synthetic", Image = ImageSource.FromImage(new RoentGen.Data.GrayImage(2, 2), id),
        }));
        var kept = RatingSelection.Filter(set, ratings, new RatingFilter { MinGrade = 3 });
        Assert.Equal(["1", "5"], kept.Select(r => r.Id));
    }

    [Fact]
    public void Weights_average_each_raters_weight_and_unrated_images_get_the_unrated_weight()
    {
        ImageRating[] ratings =
        [
            R("a", "1", RatingDecision.Accept, 5, 1),
            R("a", "2", RatingDecision.Accept, null, 2), R("b", "2", RatingDecision.Reject, 5, 3),
            R("a", "3", null, 2, 4),
        ];
        var w = RatingSelection.Weights(["1", "2", "3", "4"], ratings);
        Assert.Equal(1.0, w["1"], 12);
        Assert.Equal(0.5, w["2"], 12); // (1 + 0) / 2
        Assert.Equal(0.4, w["3"], 12);
        Assert.Equal(1.0, w["4"], 12);
        var strict = RatingSelection.Weights(["4"], ratings, new RatingWeighting { UnratedWeight = 0 });
        Assert.Equal(0.0, strict["4"]);
        Assert.Throws<ArgumentException>(() => RatingSelection.Weights(["1"], ratings, new RatingWeighting { GradeWeights = [1, 1] }));
        Assert.Throws<ArgumentException>(() => RatingSelection.Weights(["1"], ratings, new RatingWeighting { RejectedWeight = double.NaN }));
    }

    [Fact]
    public void Catalog_reads_a_manifest_a_bare_folder_and_labels_csv_and_refuses_paths_outside()
    {
        var dir = FeedbackFixture.WriteSet(3);
        try
        {
            var c = FeedbackCatalog.Load(dir);
            Assert.Equal(["synth_00.png", "synth_01.png", "synth_02.png"], c.Images.Select(i => i.Id));
            Assert.Equal(["Pleural Effusion"], c.Images[0].Labels);
            Assert.Equal(Path.Combine(dir, "masks", "synth_00_lungs.png"), c.Images[0].Masks["lungs"]);
            Assert.Empty(c.Images[1].Masks);

            File.Move(Path.Combine(dir, "manifest.json"), Path.Combine(dir, "manifest.bak"));
            var bare = FeedbackCatalog.Load(dir);
            Assert.Equal(3, bare.Images.Count);
            Assert.Equal("", bare.Images[0].Prompt);

            File.WriteAllText(Path.Combine(dir, "labels.csv"), "file,labels,report\nsynth_01.png,Pneumothorax|Fracture,\"FINDINGS: Small left pneumothorax.\"\n");
            var csv = FeedbackCatalog.Load(dir);
            Assert.Equal("synth_01.png", Assert.Single(csv.Images).Id);
            Assert.Equal(["Pneumothorax", "Fracture"], csv.Images[0].Labels);
            Assert.Contains("left pneumothorax", csv.Images[0].Prompt);
            File.Delete(Path.Combine(dir, "labels.csv"));

            File.WriteAllText(Path.Combine(dir, "manifest.json"), "{\"images\":[{\"file\":\"../outside.png\"}]}");
            var e = Assert.Throws<InvalidDataException>(() => FeedbackCatalog.Load(dir));
            Assert.Contains("outside", e.Message);
            File.WriteAllText(Path.Combine(dir, "manifest.json"), "{\"images\":[{\"file\":\"synth_00.png\"},{\"file\":\"synth_01.png\",\"id\":\"synth_00.png\"}]}");
            Assert.Contains("appears twice", Assert.Throws<InvalidDataException>(() => FeedbackCatalog.Load(dir)).Message);
            File.WriteAllText(Path.Combine(dir, "manifest.json"), "{\"images\":[{\"file\":\"missing.png\"}]}");
            Assert.Contains("does not exist", Assert.Throws<InvalidDataException>(() => FeedbackCatalog.Load(dir)).Message);
        }
        finally { TestPaths.DeleteQuietly(dir); }
    }
}
