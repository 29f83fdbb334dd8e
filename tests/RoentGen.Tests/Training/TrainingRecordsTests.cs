using System.CommandLine;
using RoentGen.Cli.Commands;
using RoentGen.Data;
using RoentGen.Data.Datasets;
using RoentGen.Data.Phantoms;
using RoentGen.Interactive;
using RoentGen.Training;
using RoentGen.Vision;
using RoentGen.Methods;

namespace RoentGen.Tests.Training;

[Collection(ProcessStateCollection.Name)]
public class TrainingRecordsTests
{
    // Reference losses: computed on main at 0eb3c78 (before records replaced PhantomImageSource, PhantomTrainingPool and
    // FolderImageSource) by a scratch test that ran these same configs on the old sources (poolSize 24 of world 1;
    // fresh phantoms of world 2; the real sample through FolderImageSource at 64 px; PhantomTrainingPool(8, 64, 3);
    // PhantomTrainingPool(12, SourceSize, 2)) and printed history.Loss with the "R" format. The phantom losses were
    // recomputed by the same configs on the records path when the phantom world was redrawn (feat/world: every pixel
    // changed), and again when Kerley B lines were drawn stronger and the deep sulcus became pleural air only (edema and AP
    // pneumothorax cases changed); the real-folder losses did not change.
    private static readonly double[] DinoPoolLosses = [6.9385199546813965, 4.359084129333496, 8.860979080200195, 5.291438579559326];
    private static readonly double[] DinoFreshLosses = [7.70351505279541, 6.380449295043945, 5.199569225311279, 6.505416393280029];
    private static readonly double[] DinoRealFolderLosses = [5.840034008026123, 7.482475280761719, 6.632216930389404, 4.499300003051758];
    private static readonly double[] SupervisedLosses = [0.7338338494300842, 0.5894894003868103, 0.4603446125984192];
    private static readonly double[] ClipLosses = [2.5080809593200684, 1.743774175643921, 1.3918676376342773];

    // The same data in the same order gives the same losses; the tolerance only allows libtorch's threaded sums to
    // round differently on another machine (a different batch moves a loss by far more than 1e-5).
    private static void AssertSameLosses(double[] expected, IReadOnlyList<double> actual)
    {
        Assert.Equal(expected.Length, actual.Count);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Abs(expected[i]), $"step {i}: loss {actual[i]:R}, expected {expected[i]:R} (all losses: {string.Join(", ", actual.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))})");
    }

    private static DinoConfig TinyDino => Methods.DinoTrainingTests.Tiny with { Steps = 4, BatchSize = 4, CheckpointEvery = 0 };

    [Fact]
    public void A_tiny_dino_run_on_phantom_records_reproduces_the_losses_of_the_old_phantom_sources()
    {
        using (var pool = new DinoTraining(TinyDino))
            AssertSameLosses(DinoPoolLosses, pool.Train(TrainingRecords.Phantoms(new PhantomOptions { Size = 64, Seed = 1 }, 24)).Loss);
        using (var fresh = new DinoTraining(TinyDino))
            AssertSameLosses(DinoFreshLosses, fresh.Train(TrainingRecords.FreshPhantoms(new PhantomOptions { Size = 64, Seed = 2 })).Loss);
    }

    [SkippableFact]
    public void A_tiny_dino_run_on_a_labelled_folder_reproduces_the_old_folder_source()
    {
        Skip.If(TestPaths.RealSample is null, "the shared real-CXR sample is not beside this checkout");
        using var training = new DinoTraining(TinyDino);
        AssertSameLosses(DinoRealFolderLosses, training.Train(new TrainingRecords(ImageFolderLoader.LoadFolder(TestPaths.RealSample!), 64)).Loss);
    }

    [Fact]
    public void Supervised_and_clip_runs_on_phantom_records_reproduce_the_old_pool()
    {
        var sup = new SupervisedConfig
        {
            Vit = new VitConfig { ImageSize = 32, PatchSize = 8, HiddenSize = 32, Layers = 2, Heads = 2 }, Phantoms = 8, SourceSize = 64, CropScaleMin = 0.9,
            Steps = 3, BatchSize = 8, WarmupSteps = 2, LearningRate = 3e-3, CheckpointEvery = 0, Seed = 5,
        };
        using (var t = new SupervisedTraining(sup))
            AssertSameLosses(SupervisedLosses, t.Train(t.CreateTrainer(), TrainingRecords.Phantoms(new PhantomOptions { Size = 64, Seed = 3 }, 8)).Loss);
        var clip = ClipConfig.Matching(DinoConfig.Tiny with { Steps = 3, BatchSize = 4 }, 12, 2) with { TokenizerReports = 12, CheckpointEvery = 0 };
        var pool = TrainingRecords.Phantoms(new PhantomOptions { Size = clip.SourceSize, Seed = clip.WorldSeed }, clip.Phantoms);
        using (var t = new ClipTraining(clip, ClipTraining.TrainTokenizer(clip, pool)))
            AssertSameLosses(ClipLosses, t.Train(t.CreateTrainer(), pool).Loss);
    }

    [Fact]
    public void A_pool_draws_one_index_per_example_from_the_stream_and_keeps_phantom_pixels()
    {
        var options = new PhantomOptions { Size = 64, Seed = 4 };
        var pool = TrainingRecords.Phantoms(options, 10);
        Assert.Equal(10, pool.Count);
        Assert.False(pool.IsStream);
        var expected = new Random(9);
        var want = Enumerable.Range(0, 5).Select(_ => expected.Next(10)).ToArray();
        var batch = pool.Batch(0, 5, new Random(9));
        Assert.Equal(want.Select(i => $"phantom_{i:D6}"), batch.Records.Select(r => r.Id));
        var gen = new PhantomGenerator(options);
        for (int k = 0; k < 5; k++)
        {
            Assert.Equal(gen.Generate(want[k]).Image.Pixels, batch.Images[k].Pixels);
            Assert.Equal(gen.Generate(want[k]).Labels.ToBinaryVector(), batch.PositiveLabels().Skip(14 * k).Take(14));
            Assert.Equal(gen.Generate(want[k]).Report, batch.ReportTexts()[k]);
        }
        Assert.Empty(pool.Dataset![want[0]].Masks);           // a training pool keeps no masks
        Assert.Equal(Enumerable.Range(0, 3).Select(i => gen.Generate(i).Report), pool.Reports(3));
        Assert.Equal(10, pool.Reports(50).Count);

        var fresh = TrainingRecords.FreshPhantoms(options);
        Assert.True(fresh.IsStream);
        Assert.Equal(["phantom_000006", "phantom_000007", "phantom_000008"], fresh.Batch(2, 3, new Random(0)).Records.Select(r => r.Id));
        Assert.Throws<InvalidOperationException>(() => fresh.Count);
        Assert.Throws<InvalidOperationException>(() => fresh.Reports(3));
        Assert.Throws<ArgumentException>(() => new TrainingRecords(PhantomRecords.Create(options, 0), 64));
    }

    [Fact]
    public void A_bare_image_folder_loads_as_records_in_path_order()
    {
        var dir = TestPaths.NewTempDir("image-folder");
        try
        {
            var gen = new PhantomGenerator(new PhantomOptions { Size = 64, Seed = 6 });
            Directory.CreateDirectory(Path.Combine(dir, "b"));
            File.WriteAllBytes(Path.Combine(dir, "b", "x_1.png"), ImageIO.EncodePng(gen.Generate(0).Image));
            File.WriteAllBytes(Path.Combine(dir, "a.PNG"), ImageIO.EncodePng(gen.Generate(1).Image));
            File.WriteAllText(Path.Combine(dir, "notes.txt"), "not an image");
            var ds = ImageFolderLoader.LoadFolder(dir);
            Assert.Equal(["a.PNG", "b/x_1.png"], ds.Select(r => r.Id));
            Assert.Equal(["a", "x"], ds.Select(r => r.PatientId));
            Assert.All(ds, r => Assert.True(r.Report.IsEmpty && r.Labels.Positives.Count() == 0 && r.Masks.Count == 0));
            Assert.Equal(new DirectoryInfo(dir).Name, ds[0].Dataset);
            Assert.Single(ImageFolderLoader.Load(dir, new LoadOptions { Limit = 1 }));
            var images = new TrainingRecords(ds, 32).Images(0, 2, new Random(0));
            Assert.All(images, i => Assert.Equal((32, 32), (i.Width, i.Height)));

            var empty = TestPaths.NewTempDir("empty-folder");
            var e = Assert.Throws<InvalidDataException>(() => ImageFolderLoader.LoadFolder(empty));
            Assert.Contains(empty, e.Message);
            Directory.Delete(empty, true);
        }
        finally { Directory.Delete(dir, true); }
    }

    private static int Invoke(params string[] args)
    {
        var root = new RootCommand("test");
        root.Subcommands.Add(new Command("train", "train") { TrainBaselineCommand.BuildSupervised(), TrainBaselineCommand.BuildClip(), TrainDinoCommand.Build() });
        return root.Parse(args).Invoke();
    }

    [Fact]
    public void Clip_and_supervised_tiny_runs_train_from_a_labels_csv_folder_and_refuse_one_without_labels_or_reports()
    {
        var dir = TestPaths.NewTempDir("baseline-folder");
        try
        {
            var data = Path.Combine(dir, "data");
            PhantomDataset.WriteFolder(data, new PhantomOptions { Size = 64, Seed = 8 }, 10, sink: ProgressSinks.None());
            var folder = new TrainingRecords(GenericCsvLoader.Load(data), 64);

            var sup = SupervisedConfig.FromPreset("tiny") with { Steps = 2, CheckpointEvery = 0 };
            using (var t = new SupervisedTraining(sup))
            {
                var h = t.Train(t.CreateTrainer(), folder);
                Assert.Equal(2, h.Steps);
                Assert.All(h.Loss, l => Assert.True(double.IsFinite(l)));
            }
            var clip = ClipConfig.FromPreset("tiny") with { Steps = 2, CheckpointEvery = 0, TokenizerReports = 10 };
            using (var t = new ClipTraining(clip, ClipTraining.TrainTokenizer(clip, folder)))
            {
                var h = t.Train(t.CreateTrainer(), folder);
                Assert.Equal(2, h.Steps);
                Assert.All(h.Loss, l => Assert.True(double.IsFinite(l)));
            }

            Assert.Equal(0, Invoke("train", "supervised", "--preset", "tiny", "--data", data, "--out", Path.Combine(dir, "sup"), "--steps", "2"));
            Assert.True(EncoderRuns.IsFinished(Path.Combine(dir, "sup", EncoderRuns.EncoderFolder)));
            Assert.Equal(0, Invoke("train", "clip", "--preset", "tiny", "--data", data, "--out", Path.Combine(dir, "clip"), "--steps", "2"));
            Assert.True(EncoderRuns.IsFinished(Path.Combine(dir, "clip", EncoderRuns.EncoderFolder)));
            Assert.Equal(0, Invoke("train", "dino", "--preset", "tiny", "--data", Path.Combine(data, "images"), "--out", Path.Combine(dir, "dino"), "--steps", "1"));
            Assert.True(EncoderRuns.IsFinished(Path.Combine(dir, "dino", EncoderRuns.DinoEncoderFolder)));

            // An image folder (no labels.csv) has neither labels nor reports: both baselines refuse it by name.
            var images = Path.GetFullPath(Path.Combine(data, "images"));
            var errors = new StringWriter();
            var old = Console.Error;
            Console.SetError(errors);
            try
            {
                Assert.Equal(2, Invoke("train", "supervised", "--preset", "tiny", "--data", images, "--out", Path.Combine(dir, "sup-images"), "--steps", "1"));
                Assert.Equal(2, Invoke("train", "clip", "--preset", "tiny", "--data", images, "--out", Path.Combine(dir, "clip-images"), "--steps", "1"));
            }
            finally { Console.SetError(old); }
            var lines = errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, lines.Length);
            Assert.Contains(images, lines[0]);
            Assert.Contains("CheXpert label", lines[0]);
            Assert.Contains(images, lines[1]);
            Assert.Contains("has a report", lines[1]);
        }
        finally { Directory.Delete(dir, true); }
    }
}
