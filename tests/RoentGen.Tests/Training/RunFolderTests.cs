using RoentGen.Training;

namespace RoentGen.Tests.Training;

public class RunFolderTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "runfolder-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    private sealed record Cfg
    {
        public int Steps { get; init; } = 10;
        public double Lr { get; init; } = 1e-3;
        public int[] Widths { get; init; } = [8, 16];
    }

    // The same type as Cfg's first two fields, standing for an older version of it that lacked Widths.
    private sealed record OldCfg
    {
        public int Steps { get; init; } = 10;
        public double Lr { get; init; } = 1e-3;
    }

    [Fact]
    public void Nothing_is_written_before_start_and_start_pins_the_config()
    {
        var run = RunFolder.Open(_dir, "test", new Cfg());
        Assert.False(Directory.Exists(_dir));
        Assert.False(run.IsStarted);
        run.Start();
        Assert.True(run.IsStarted);
        Assert.Contains("\"Lr\"", File.ReadAllText(Path.Combine(_dir, RunFolder.ConfigFile)));
        Assert.Equal(0, run.StepsDone);
        Assert.Null(run.Finished);
        Assert.False(run.IsFinishedAt(10));
    }

    [Fact]
    public void Another_config_is_refused_with_the_first_differing_field()
    {
        RunFolder.Open(_dir, "vae", new Cfg()).Start();
        var ex = Assert.Throws<RoentGen.Platform.RunStateException>(() => RunFolder.Open(_dir, "vae", new Cfg { Widths = [8, 32] }));
        Assert.Contains("Widths", ex.Message);
        Assert.Contains("vae", ex.Message);
        Assert.Contains(_dir, ex.Message);
        // Steps is not extendable unless the caller says so.
        Assert.Throws<RoentGen.Platform.RunStateException>(() => RunFolder.Open(_dir, "vae", new Cfg { Steps = 20 }));
        var grown = RunFolder.Open(_dir, "vae", new Cfg { Steps = 20 }, "Steps");
        grown.Start();
        Assert.Contains("20", File.ReadAllText(Path.Combine(_dir, RunFolder.ConfigFile)));
    }

    [Fact]
    public void A_field_added_since_the_config_was_pinned_compares_at_its_default()
    {
        RunFolder.Open(_dir, "old", new OldCfg()).Start();
        var run = RunFolder.Open(_dir, "old", new Cfg());          // Widths at its default: same run
        Assert.True(run.IsStarted);
        Assert.Throws<RoentGen.Platform.RunStateException>(() => RunFolder.Open(_dir, "old", new Cfg { Widths = [4] }));
    }

    [Fact]
    public void Finished_runs_are_recognised_continued_to_more_steps_and_never_shortened()
    {
        var run = RunFolder.Open(_dir, "ldm", new Cfg(), "Steps").Start();
        run.Finish(10, 1.5, 0.25);
        var again = RunFolder.Open(_dir, "ldm", new Cfg(), "Steps");
        Assert.True(again.IsFinishedAt(10));
        Assert.Equal(0.25, again.Finished!.FinalLoss);
        Assert.Equal("ldm", again.Finished.Kind);
        var more = RunFolder.Open(_dir, "ldm", new Cfg { Steps = 20 }, "Steps");
        Assert.False(more.IsFinishedAt(20));
        more.Start();
        Assert.Null(more.Finished);                                   // unfinished until Finish at 20
        more.Finish(20, 1, double.NaN);
        Assert.Null(RunFolder.Open(_dir, "ldm", new Cfg { Steps = 20 }, "Steps").Finished!.FinalLoss);
        var ex = Assert.Throws<RoentGen.Platform.RunStateException>(() => RunFolder.Open(_dir, "ldm", new Cfg { Steps = 5 }, "Steps").IsFinishedAt(5));
        Assert.Contains("20 steps", ex.Message);
    }

    [Fact]
    public void Steps_done_come_from_the_latest_checkpoint_and_bad_names_are_errors()
    {
        var run = RunFolder.Open(_dir, "dino", new Cfg()).Start();
        Directory.CreateDirectory(Path.Combine(run.CheckpointRoot, "step-000040"));
        File.WriteAllText(Path.Combine(run.CheckpointRoot, "latest"), "step-000040");
        Assert.Equal(40, run.StepsDone);
        Assert.Equal(0, RunFolder.StepsOf(null));
        Assert.Throws<InvalidDataException>(() => RunFolder.StepsOf("/x/checkpoints/step-abc"));
        Assert.Throws<InvalidDataException>(() => RunFolder.StepsOf("/x/checkpoints/latest"));
    }

    [Fact]
    public void A_corrupt_pinned_config_or_a_file_in_the_way_is_a_clear_error()
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllText(Path.Combine(_dir, RunFolder.ConfigFile), "{ \"Steps\": ");
        var ex = Assert.Throws<InvalidDataException>(() => RunFolder.Open(_dir, "clip", new Cfg()));
        Assert.Contains(RunFolder.ConfigFile, ex.Message);
        var file = Path.Combine(_dir, "afile");
        File.WriteAllText(file, "x");
        Assert.Throws<RoentGen.Platform.RunStateException>(() => RunFolder.Open(file, "clip", new Cfg()));
    }
}
