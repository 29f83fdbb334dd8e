using System.CommandLine;
using System.Text;
using RoentGen.Cli.Commands;
using CliPolicy = RoentGen.Cli.Commands.Cli;

namespace RoentGen.Tests.Cli;

/// <summary>
/// Issue #12, root causes 1, 4 and 8, as the cases that found them (malformed inputs generated here): every verb gives
/// one line and exit 2 for a user error, exit 1 and no trace (unless --verbose) for an internal fault; outputs never
/// replace inputs or a user's files, are checked writable before the work, and errors name the user's path.
/// </summary>
[Collection(ProcessStateCollection.Name)]
public sealed class ErrorPolicyTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-cli-policy");
    private readonly ProgressSinkFactoryScope _quiet = new();

    public void Dispose()
    {
        _quiet.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private sealed class ProgressSinkFactoryScope : IDisposable
    {
        private readonly Func<IProgressSink>? _old = ProgressReporter.SinkFactory;
        public ProgressSinkFactoryScope() => ProgressReporter.SinkFactory = RoentGen.Interactive.ProgressSinks.None;
        public void Dispose() => ProgressReporter.SinkFactory = _old;
    }

    private static RootCommand Roentgen()
    {
        var root = new RootCommand
        {
            DataCommand.Build(), ProbeCommand.Build(), CheckRealCommand.Build(), TrainCommand.Build(), DoctorCommand.Build(),
            CompareEncodersCommand.BuildCompare(),
        };
        root.Options.Add(CliPolicy.Verbose);
        return root;
    }

    private string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    // Root cause 8: probe, check-real, data inspect, train dino|supervised|clip and compare-encoders exited 1 on user errors.
    [Fact]
    public void User_errors_exit_2_with_one_line_naming_what_was_wrong_in_every_verb()
    {
        var missing = Path.Combine(_dir, "no-such");
        var truncated = Write("trunc.json", "{\"Name\": \"x\", \"Vit\": {");
        var notAFolder = Write("run-is-a-file", "x");
        var before = CliCases.HashTree(_dir);
        (string[] Args, string Names)[] cases =
        [
            (["probe", "--encoder", missing, "--data", "phantoms", "--target", "sex", "--n", "12"], missing),
            (["check-real", "--data", missing + ".csv", "--random"], missing + ".csv"),
            (["data", "inspect", missing], missing),
            (["train", "dino", "--preset", "tiny", "--data", missing, "--out", Path.Combine(_dir, "run-dino")], missing),
            (["train", "supervised", "--config", truncated, "--out", Path.Combine(_dir, "run-sup")], truncated),
            (["train", "clip", "--config", truncated, "--out", Path.Combine(_dir, "run-clip")], truncated),
            (["compare-encoders", "--config", truncated, "--out", Path.Combine(_dir, "run-cmp")], truncated),
            (["check-real", "--data", missing, "--random", "--threads", "100000"], "--threads"),
            // A RunStateException of the run-folder checks is a user error too.
            (["train", "dino", "--preset", "tiny", "--data", "phantoms", "--steps", "1", "--out", notAFolder], $"{notAFolder} is a file"),
        ];
        foreach (var (args, names) in cases)
        {
            var (rc, _, err) = CliCases.Invoke(Roentgen(), args);
            Assert.True(rc == 2, $"{string.Join(" ", args)}: exit {rc}, expected 2\n{err}");
            Assert.Contains(names, CliCases.AssertOneLine(err));
        }
        Assert.Equal(before, CliCases.HashTree(_dir));
    }

    [Fact]
    public void An_internal_fault_exits_1_with_one_line_and_the_trace_only_under_verbose()
    {
        RootCommand Faulty()
        {
            var boom = new Command("boom");
            boom.SetAction(p => CliPolicy.Run(p, () => throw new NullReferenceException("a bug")));
            var root = new RootCommand { boom };
            root.Options.Add(CliPolicy.Verbose);
            return root;
        }
        var (rc, _, err) = CliCases.Invoke(Faulty(), "boom");
        Assert.Equal(1, rc);
        var line = CliCases.AssertOneLine(err, "internal error (System.NullReferenceException): a bug");
        Assert.Contains("run with --verbose for the trace", line);

        (rc, _, err) = CliCases.Invoke(Faulty(), "boom", "--verbose");
        Assert.Equal(1, rc);
        Assert.Contains("   at ", err);   // the trace, asked for

        // An InvalidOperationException the library does not throw for a user-caused state is a fault, not a user error.
        Assert.False(CliPolicy.IsUserError(Catch(() => throw new InvalidOperationException("state"))));
        // The user's run state is told by the exception's type, wherever it was thrown from (here, this test).
        Assert.True(CliPolicy.IsUserError(Catch(() => throw new RoentGen.Platform.RunStateException("a run of another config"))));
        Assert.True(CliPolicy.IsUserError(Catch(() => throw new System.Text.Json.JsonException("bad json"))));
    }

    private static Exception Catch(Action a)
    {
        try { a(); }
        catch (Exception e) { return e; }
        throw new InvalidOperationException("nothing thrown");
    }

    [Fact]
    public void Control_characters_from_files_are_escaped_in_messages()
    {
        var csv = Write("ctrl.csv", "id,fin\u001b[31mdings,impression\n1,a,b\n");
        var hash = CliCases.Hash(csv);
        var (rc, _, err) = CliCases.Invoke(Roentgen(), "data", "label-reports", "--in", csv, "--out", Path.Combine(_dir, "o.csv"));
        Assert.Equal(2, rc);
        var line = CliCases.AssertOneLine(err);
        Assert.Contains("fin\\e[31mdings", line);
        Assert.Equal(hash, CliCases.Hash(csv));
        Assert.False(File.Exists(Path.Combine(_dir, "o.csv")));

        Assert.Equal("a\\nb\\e\\u{0007}\\u{009B}\\u{202E}c", CliPolicy.Escape("a\nb\u001b\u0007\u009b\u202ec"));
        Assert.Equal("plain é ü 中", CliPolicy.Escape("plain é ü 中"));
    }

    // Root cause 1: label-reports --in x.csv --out x.csv overwrote its input (and rewrote non-UTF-8 bytes as U+FFFD).
    [Fact]
    public void Label_reports_refuses_to_write_over_its_input_directly_or_through_links()
    {
        var csv = Write("x.csv", "id,findings,impression\n1,no effusion,normal\n2,large effusion,cardiomegaly\n");
        File.CreateSymbolicLink(Path.Combine(_dir, "link.csv"), csv);
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        Directory.CreateSymbolicLink(Path.Combine(_dir, "sub", "up"), _dir);
        var before = CliCases.HashTree(_dir);
        foreach (var output in new[] { csv, Path.Combine(_dir, "link.csv"), Path.Combine(_dir, "sub", "up", "x.csv"), Path.Combine(_dir, ".", "sub", "..", "x.csv") })
        {
            var (rc, _, err) = CliCases.Invoke(Roentgen(), "data", "label-reports", "--in", csv, "--out", output);
            Assert.Equal(2, rc);
            Assert.Contains("is the same file as --in", CliCases.AssertOneLine(err));
        }
        Assert.Equal(before, CliCases.HashTree(_dir));

        // A different output still works.
        Assert.Equal(0, CliCases.Invoke(Roentgen(), "data", "label-reports", "--in", csv, "--out", Path.Combine(_dir, "labelled.csv")).ExitCode);
        Assert.Contains("Pleural Effusion", File.ReadAllText(Path.Combine(_dir, "labelled.csv")));

        // A hard link to the input is another name of the same file, which the path checks cannot see; the output is
        // written beside it and renamed over the link, so the link becomes the output and the input keeps its bytes.
        if (OperatingSystem.IsLinux())
        {
            var hard = Path.Combine(_dir, "hard.csv");
            Assert.Equal(0, HardLink(csv, hard));
            var input = CliCases.Hash(csv);
            Assert.Equal(input, CliCases.Hash(hard));
            Assert.Equal(0, CliCases.Invoke(Roentgen(), "data", "label-reports", "--in", csv, "--out", hard).ExitCode);
            Assert.Equal(input, CliCases.Hash(csv));
            Assert.Contains("Pleural Effusion", File.ReadAllText(hard));
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int HardLink(string existing, string newName);

    [Fact]
    public void Label_reports_refuses_a_csv_that_is_not_utf8_naming_the_line()
    {
        var csv = Write("latin1.csv", [.. "id,findings,impression\n1,clear,normal\n2,caf"u8, 0xE9, .. " opacity,normal\n"u8]);
        var hash = CliCases.Hash(csv);
        var output = Path.Combine(_dir, "out.csv");
        var (rc, _, err) = CliCases.Invoke(Roentgen(), "data", "label-reports", "--in", csv, "--out", output);
        Assert.Equal(2, rc);
        var line = CliCases.AssertOneLine(err);
        Assert.Contains($"{csv}, line 3", line);
        Assert.Contains("0xE9 is not UTF-8", line);
        Assert.Equal(hash, CliCases.Hash(csv));
        Assert.False(File.Exists(output));

        // A UTF-8 byte order mark is fine, and the labelled copy keeps the text byte for byte.
        var bom = Write("bom.csv", [0xEF, 0xBB, 0xBF, .. "id,findings,impression\n1,café opacity,normal\n"u8]);
        Assert.Equal(0, CliCases.Invoke(Roentgen(), "data", "label-reports", "--in", bom, "--out", output).ExitCode);
        Assert.Contains("café opacity", File.ReadAllText(output));
    }

    // Root cause 1: data phantoms --out DIR replaced a user's labels.csv and mixed old images with new ones.
    [Fact]
    public void Phantoms_refuses_a_non_empty_folder_and_overwrite_replaces_only_what_it_owns()
    {
        var dir = Path.Combine(_dir, "user");
        Write("user/labels.csv", "my,own\n1,2\n");
        Write("user/notes.txt", "keep me");
        Write("user/images/stale.png", "old");
        var before = CliCases.HashTree(dir);

        var (rc, _, err) = CliCases.Invoke(Roentgen(), "data", "phantoms", "--n", "2", "--size", "64", "--out", dir);
        Assert.Equal(2, rc);
        var line = CliCases.AssertOneLine(err);
        Assert.Contains($"--out {dir} is not empty", line);
        Assert.Contains("--overwrite", line);
        Assert.Equal(before, CliCases.HashTree(dir));

        (rc, _, err) = CliCases.Invoke(Roentgen(), "data", "phantoms", "--n", "2", "--size", "64", "--out", dir, "--overwrite");
        Assert.True(rc == 0, err);
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(dir, "notes.txt")));
        Assert.False(File.Exists(Path.Combine(dir, "images", "stale.png")));
        Assert.Equal(2, Directory.GetFiles(Path.Combine(dir, "images")).Length);
        Assert.StartsWith("file,", File.ReadAllText(Path.Combine(dir, "labels.csv")));

        // A new or empty folder needs no --overwrite.
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        Assert.Equal(0, CliCases.Invoke(Roentgen(), "data", "phantoms", "--n", "2", "--size", "64", "--out", Path.Combine(_dir, "empty")).ExitCode);
    }

    // Root cause 6 in the training verbs: a labels.csv row that leads outside its folder is refused by every train verb
    // (one line, exit 2, naming the row and the flag), and --allow-outside-root lets it through.
    [Fact]
    public void Every_train_verb_refuses_paths_outside_the_dataset_folder_unless_allowed()
    {
        var png = RoentGen.Data.ImageIO.EncodePng(new RoentGen.Data.GrayImage(64, 64, Enumerable.Range(0, 64 * 64).Select(i => (i % 64) / 64f).ToArray()));
        Write("outside.png", png);
        Write("ds/a.png", png);
        Write("ds/b.png", png);
        var data = Path.GetDirectoryName(Write("ds/labels.csv",
            "file,labels,report\na.png,No Finding,No acute cardiopulmonary process.\nb.png,Cardiomegaly,The heart is enlarged.\n../outside.png,Pleural Effusion,Small left pleural effusion.\n"))!;
        var before = CliCases.HashTree(_dir);
        foreach (var verb in new[] { "dino", "supervised", "clip", "vae", "ldm" })
        {
            var (rc, _, err) = CliCases.Invoke(Roentgen(), "train", verb, "--preset", "tiny", "--data", data, "--out", Path.Combine(_dir, "run-" + verb));
            Assert.True(rc == 2, $"train {verb}: exit {rc}\n{err}");
            var line = CliCases.AssertOneLine(err);
            Assert.Contains("line 4", line);
            Assert.Contains("'../outside.png' leads outside the folder", line);
            Assert.Contains("--allow-outside-root", line);
        }
        Assert.Equal(before.Keys, CliCases.HashTree(_dir).Keys.Where(k => !k.StartsWith("run-", StringComparison.Ordinal)));

        // Allowed, the three records load and a one-step run trains on them.
        var (ok, stdout, stderr) = CliCases.Invoke(Roentgen(), "train", "supervised", "--preset", "tiny", "--steps", "1", "--data", data,
            "--out", Path.Combine(_dir, "run-allowed"), "--allow-outside-root");
        Assert.True(ok == 0, stderr);
        Assert.Contains("done: 1 steps", stdout);
        Assert.Contains(": 3 images from", stdout);
    }

    // Root cause 4: an unwritable --json crashed with a trace after the work (probe, doctor), or named the temp file.
    [Fact]
    public void Unwritable_results_are_refused_before_the_work_naming_the_users_path()
    {
        var blocker = Write("afile", "I am a file");
        var before = CliCases.HashTree(_dir);
        (string[] Args, string Path)[] cases =
        [
            (["probe", "--encoder", "random", "--data", "phantoms", "--target", "sex", "--n", "12", "--size", "32", "--json", Path.Combine(blocker, "r.json")], Path.Combine(blocker, "r.json")),
            (["doctor", "--no-measure", "--json", Path.Combine(blocker, "d.json")], Path.Combine(blocker, "d.json")),
            (["check-real", "--data", Path.Combine(_dir, "none.csv"), "--random", "--json", Path.Combine(blocker, "c.json")], Path.Combine(blocker, "c.json")),
            (["data", "label-reports", "--in", Write("in.csv", "id,findings,impression\n1,a,b\n"), "--out", Path.Combine(blocker, "o.csv")], Path.Combine(blocker, "o.csv")),
        ];
        before = CliCases.HashTree(_dir);
        foreach (var (args, path) in cases)
        {
            var (rc, stdout, err) = CliCases.Invoke(Roentgen(), args);
            Assert.True(rc == 2, $"{args[0]}: exit {rc}\n{err}");
            var line = CliCases.AssertOneLine(err);
            Assert.Contains($"cannot write {path}", line);
            Assert.Contains($"{blocker} is a file", line);
            Assert.DoesNotContain(".tmp", line);
            Assert.DoesNotContain("sex", stdout); // no probe ran
        }
        Assert.Equal(before, CliCases.HashTree(_dir));
    }

    [Fact]
    public void AtomicFile_errors_name_the_target_and_the_check_leaves_nothing_behind()
    {
        var blocker = Write("afile", "x");
        var target = Path.Combine(blocker, "deep", "r.json");
        var e = Assert.Throws<IOException>(() => AtomicFile.WriteAllText(target, "{}"));
        Assert.Contains($"cannot write {target}", e.Message);
        Assert.DoesNotContain(".tmp", e.Message);
        Assert.Throws<IOException>(() => AtomicFile.EnsureWritable(target, "--json"));

        var existing = Write("keep.json", "old");
        AtomicFile.EnsureWritable(existing);
        AtomicFile.EnsureWritable(Path.Combine(_dir, "new", "r.json"));
        Assert.Equal("old", File.ReadAllText(existing));
        Assert.False(File.Exists(Path.Combine(_dir, "new", "r.json")));
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp", SearchOption.AllDirectories));
        Assert.Throws<IOException>(() => AtomicFile.EnsureWritable(_dir, "--json")); // a folder is not a file path
    }
}
