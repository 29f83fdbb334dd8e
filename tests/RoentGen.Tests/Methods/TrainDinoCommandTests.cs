using RoentGen.Reporting;
using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Training;
using RoentGen.Vision;

namespace RoentGen.Tests.Methods;

[Collection(ProcessStateCollection.Name)]
public class TrainDinoCommandTests
{
    private static int Invoke(params string[] args)
    {
        var root = new RootCommand("test");
        var train = new Command("train", "train") { TrainDinoCommand.Build() };
        root.Subcommands.Add(train);
        return root.Parse(["train", "dino", .. args]).Invoke();
    }

    [Fact]
    public void Trains_on_phantoms_writes_its_report_and_resumes()
    {
        var dir = TestPaths.NewTempDir("dino-cli");
        var configPath = Path.Combine(dir, "tiny.json");
        File.WriteAllText(configPath, (DinoTrainingTests.Tiny with { BatchSize = 4, CheckpointEvery = 2 }).ToJson());
        var run = Path.Combine(dir, "run");

        Assert.Equal(0, Invoke("--config", configPath, "--data", "phantoms", "--out", run, "--steps", "2"));
        Assert.EndsWith("step-000002", Trainer.LatestCheckpoint(run));
        foreach (var f in new[] { "config.json", RunReport.MetricsFileName, RunReport.ChartFileName, Path.Combine("teacher_backbone", "model.safetensors") })
            Assert.True(File.Exists(Path.Combine(run, f)), $"missing {f}");
        Assert.Contains("<html", File.ReadAllText(Path.Combine(run, RunReport.ChartFileName)), StringComparison.OrdinalIgnoreCase);
        // The core library wrote the figure as JSON; the verb drew it to the page (plotly.js inline).
        var figure = Figure.FromJson(File.ReadAllText(Path.Combine(run, RunReport.FigureFileName)));
        Assert.Equal("total", figure.Traces[0].Name);
        Assert.Contains(figure.Traces, t => t.Name == "dino");
        Assert.Contains("plotly.js (basic - minified)", File.ReadAllText(Path.Combine(run, RunReport.ChartFileName)));

        // A second call continues the same run (no --config needed) to 3 steps.
        Assert.Equal(0, Invoke("--data", "phantoms", "--out", run, "--steps", "3"));
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, RunReport.MetricsFileName)));
        Assert.Equal(3, metrics.RootElement.GetProperty("steps").GetInt32());
        Assert.Equal(1, metrics.RootElement.GetProperty("steps_this_session").GetInt32());
        Assert.Equal(3, metrics.RootElement.GetProperty("loss").GetArrayLength());
        Assert.Equal(3, metrics.RootElement.GetProperty("metrics").GetProperty("dino").GetArrayLength());
        Assert.True(double.IsFinite(metrics.RootElement.GetProperty("final").GetProperty("ibot").GetDouble()));
        var cfg = Checkpoint.ReadConfig<VitConfig>(Path.Combine(run, "teacher_backbone"));
        Assert.Equal(32, cfg.HiddenSize);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Trains_on_a_folder_of_pngs()
    {
        var dir = TestPaths.NewTempDir("dino-cli-png");
        var images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        foreach (var c in new RoentGen.Data.Phantoms.PhantomGenerator(new() { Size = 64, Seed = 4 }).Generate(0, 5))
            RoentGen.Data.ImageIO.WritePng(Path.Combine(images, c.Id + ".png"), c.Image);
        var configPath = Path.Combine(dir, "tiny.json");
        File.WriteAllText(configPath, (DinoTrainingTests.Tiny with { BatchSize = 4 }).ToJson());
        int threads = TorchSharp.torch.get_num_threads();
        try
        {
            Assert.Equal(0, Invoke("--config", configPath, "--data", images, "--out", Path.Combine(dir, "run"), "--steps", "1", "--threads", "1"));
            Assert.Equal(1, TorchSharp.torch.get_num_threads());
        }
        finally { TorchSharp.torch.set_num_threads(threads); }
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Bad_inputs_exit_1()
    {
        var dir = TestPaths.NewTempDir("dino-cli-bad");
        var errors = new StringWriter();
        var old = Console.Error;
        Console.SetError(errors);
        try
        {
            Assert.Equal(2, Invoke("--preset", "enormous", "--data", "phantoms", "--out", Path.Combine(dir, "a")));
            Assert.Equal(2, Invoke("--data", Path.Combine(dir, "no-such-folder"), "--out", Path.Combine(dir, "b"), "--steps", "1"));
            Assert.Equal(2, Invoke("--config", Path.Combine(dir, "missing.json"), "--data", "phantoms", "--out", Path.Combine(dir, "c")));
        }
        finally { Console.SetError(old); }
        var text = errors.ToString();
        Assert.Contains("unknown DINO preset 'enormous'", text);
        Assert.Contains("image folder not found", text);
        Assert.Contains("DINO config file not found", text);
        Directory.Delete(dir, true);
    }
}
