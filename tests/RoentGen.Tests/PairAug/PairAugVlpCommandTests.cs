using System.CommandLine;
using System.Text.Json;
using RoentGen.Cli.Commands;
using RoentGen.Diffusion;
using RoentGen.Methods;
using RoentGen.PairAug;
using RoentGen.Platform;
using RoentGen.Tests.Cli;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using CliPolicy = RoentGen.Cli.Commands.Cli;

namespace RoentGen.Tests.PairAug;

/// <summary>The pairaug pretrain and evaluate verbs, and sharded InterAug merged and pruned together.</summary>
[Collection(ProcessStateCollection.Name)]
public sealed class PairAugVlpCommandTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("pairaug-vlp-cli");

    public void Dispose() => TestPaths.DeleteQuietly(_dir);

    private static RootCommand Roentgen()
    {
        var root = new RootCommand { PairAugCommand.Build() };
        root.Options.Add(CliPolicy.Verbose);
        return root;
    }

    [Fact]
    public void Pretrain_saves_one_model_unit_and_evaluate_writes_its_json_and_a_wrong_folder_is_refused()
    {
        var run = Path.Combine(_dir, "clip");
        var (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "pretrain", "--preset", "tiny", "--steps", "2", "--phantoms", "8", "--out", run);
        Assert.True(rc == 0, stderr + stdout);
        Assert.True(ClipModel.Exists(Path.Combine(run, ClipModel.RunModelFolder)));
        Assert.Contains("model in", stdout, StringComparison.Ordinal);
        using (var pins = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, PairAugmentation.TrainingDataFile))))
            Assert.Equal("none", pins.RootElement.GetProperty("augmented pairs").GetString());

        // The same folder with augmented pairs added is other training data: refused before any step, naming the pin.
        var pairsDir = Path.Combine(_dir, "inter");
        Directory.CreateDirectory(pairsDir);
        var pairsFile = Path.Combine(pairsDir, PairAugmentation.PairsFileName);
        File.WriteAllText(pairsFile, """{"id":"r0-inter","image":"images/r0.png","report":"Small left pleural effusion.","source_id":"p0","scores":{"inter":0.4},"kept":true}""" + "\n");
        (rc, _, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "pretrain", "--preset", "tiny", "--steps", "2", "--phantoms", "8", "--out", run, "--pairs", pairsFile);
        Assert.Equal(2, rc);
        Assert.Contains("augmented pairs", stderr, StringComparison.Ordinal);
        Assert.Contains("inter/pairs.jsonl: 1 kept of 1", stderr, StringComparison.Ordinal);
        Assert.Contains("use another --out", stderr, StringComparison.Ordinal);

        var json = Path.Combine(_dir, "eval.json");
        (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "evaluate", "--model", run, "--images", "12", "--resamples", "100", "--probe-steps", "5", "--json", json);
        Assert.True(rc == 0, stderr + stdout);
        Assert.Contains("zero-shot macro AUC", stdout, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(100, doc.RootElement.GetProperty("resamples").GetInt32());
        Assert.Equal(13, doc.RootElement.GetProperty("zero_shot").GetArrayLength());
        Assert.Equal(3, doc.RootElement.GetProperty("probes").GetArrayLength());

        (rc, _, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "evaluate", "--model", _dir, "--json", Path.Combine(_dir, "x.json"));
        Assert.NotEqual(0, rc);
        Assert.Contains("is not a CLIP model folder", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Sharded_InterAug_merges_into_one_pairs_file_pruned_together_once_every_shard_is_done()
    {
        using var scope = NewDisposeScope();
        var pipe = RoentGen.Tests.Diffusion.TinyPipelines.Untrained(11);
        var rewrites = Enumerable.Range(0, 5).Select(i => new ReportRewrite($"r{i}", RewriteOperation.PartialOpposite, "no pneumothorax", i % 2 == 0 ? "small left pleural effusion" : "cardiomegaly", "test", null, null)).ToList();
        var embedder = new PooledEmbedder();
        var options = new InterAugOptions { Steps = 2, BatchSize = 4, Threshold = 0 };
        var whole = PairAugmentation.InterAug(pipe, embedder, rewrites, options with { Seed = 3 }, Path.Combine(_dir, "whole"));
        var outDir = Path.Combine(_dir, "sharded");
        for (int i = 0; i < 2; i++)
        {
            Assert.Null(PairAugShards.MergeIfComplete(outDir, 2, 0));
            var shard = new Shard(i, 2);
            var range = shard.Range(rewrites.Count);
            PairAugmentation.InterAug(pipe, embedder, rewrites.Skip(range.Start).Take(range.Count).ToList(), options with { Seed = 3 + range.Start }, PairAugShards.ShardFolder(outDir, shard));
        }
        var merged = PairAugShards.MergeIfComplete(outDir, 2, 0);
        Assert.NotNull(merged);
        var pairs = PairAugmentation.ReadPairs(merged.PairsFile);
        Assert.Equal(whole.Pairs.Select(p => p.Id), pairs.Select(p => p.Id));
        Assert.All(pairs, p => Assert.True(File.Exists(Path.Combine(outDir, p.Image)), p.Image));
        // Each image drawn from seed + its global index: the same scores as one whole run.
        Assert.Equal(whole.Pairs.Select(p => Math.Round(p.Scores["inter"], 4)), pairs.Select(p => Math.Round(p.Scores["inter"], 4)));
        Assert.Equal(whole.Kept, merged.Pairs.Count(p => p.Kept));
    }

    [Fact]
    public void Shards_that_own_no_rewrite_finish_empty_so_more_shards_than_rewrites_still_merge()
    {
        // Two rewrites over four shards: shards 1 and 3 own one each, shards 0 and 2 none.
        using var scope = NewDisposeScope();
        var rewrites = new[] { ("r0", "small left pleural effusion"), ("r1", "cardiomegaly") }
            .Select(x => new ReportRewrite(x.Item1, RewriteOperation.PartialOpposite, "no pneumothorax", x.Item2, "test", null, null)).ToList();
        var file = Path.Combine(_dir, "inter.jsonl");
        File.WriteAllLines(file, rewrites.Select(r => JsonSerializer.Serialize(new { id = r.Id, operation = "partial-opposite", original = r.Original, rewrite = r.Rewritten, source = r.Source })));
        var outDir = Path.Combine(_dir, "many-shards");
        var pipe = RoentGen.Tests.Diffusion.TinyPipelines.Untrained(11);
        foreach (int i in new[] { 1, 3 })
        {
            var shard = new Shard(i, 4);
            var range = shard.Range(rewrites.Count);
            Assert.Equal(1, range.Count);
            PairAugmentation.InterAug(pipe, new PooledEmbedder(), rewrites.Skip(range.Start).Take(1).ToList(),
                new InterAugOptions { Steps = 2, Seed = range.Start, Threshold = 0 }, PairAugShards.ShardFolder(outDir, shard));
        }
        Assert.Null(PairAugShards.MergeIfComplete(outDir, 4, 0));
        // An empty shard loads neither the generator nor the CLIP model: the folders need not exist.
        string[] Args(string shard) => ["pairaug", "inter", "--rewrites", file, "--generator", Path.Combine(_dir, "no-generator"), "--clip", Path.Combine(_dir, "no-clip"),
            "--out", outDir, "--threshold", "0", "--shard", shard];
        var (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), Args("0/4"));
        Assert.True(rc == 0, stderr + stdout);
        Assert.Contains("owns none of the 2 rewrites", stdout, StringComparison.Ordinal);
        Assert.Contains("when all 4 shards are done", stdout, StringComparison.Ordinal);
        Assert.True(PairAugShards.IsDone(PairAugShards.ShardFolder(outDir, new Shard(0, 4))));
        (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), Args("2/4"));
        Assert.True(rc == 0, stderr + stdout);
        Assert.Contains("all 4 shards done, pruned together", stdout, StringComparison.Ordinal);
        var merged = PairAugmentation.ReadPairs(Path.Combine(outDir, PairAugmentation.PairsFileName));
        Assert.Equal(["r0-inter", "r1-inter"], merged.Select(p => p.Id));
        Assert.All(merged, p => Assert.True(File.Exists(Path.Combine(outDir, p.Image)), p.Image));
        // A rerun of an empty shard finds it done.
        (rc, stdout, _) = CliCases.Invoke(Roentgen(), Args("0/4"));
        Assert.Equal(0, rc);
        Assert.Contains("already holds its pairs", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Inter_and_intra_refuse_the_other_operation_s_rewrites_and_a_limit_below_one_before_loading_anything()
    {
        string File1(string name, string op)
        {
            var path = Path.Combine(_dir, name);
            File.WriteAllText(path, JsonSerializer.Serialize(new { id = "r0", operation = op, original = "small left pleural effusion", rewrite = "large left pleural effusion", source = "test" }) + "\n");
            return path;
        }
        var symptoms = File1("intra.jsonl", "change-in-symptoms");
        var opposite = File1("inter.jsonl", "partial-opposite");
        // The generator and CLIP folders do not exist: each refusal must come first, and name the option.
        (int, string, string) Run(string verb, string file, params string[] more) => CliCases.Invoke(Roentgen(),
            ["pairaug", verb, "--rewrites", file, "--generator", Path.Combine(_dir, "no-generator"), "--clip", Path.Combine(_dir, "no-clip"), "--out", Path.Combine(_dir, "out-" + verb), .. more]);

        var (rc, _, stderr) = Run("inter", symptoms);
        Assert.NotEqual(0, rc);
        Assert.Contains("--rewrites", stderr, StringComparison.Ordinal);
        Assert.Contains("holds change-in-symptoms rewrites", stderr, StringComparison.Ordinal);
        Assert.Contains("pairaug inter needs partial-opposite rewrites", stderr, StringComparison.Ordinal);
        (rc, _, stderr) = Run("intra", opposite);
        Assert.NotEqual(0, rc);
        Assert.Contains("holds partial-opposite rewrites", stderr, StringComparison.Ordinal);
        Assert.Contains("pairaug intra needs change-in-symptoms rewrites", stderr, StringComparison.Ordinal);
        foreach (var limit in new[] { "0", "-2" })
        {
            (rc, _, stderr) = Run("inter", opposite, "--limit", limit);
            Assert.NotEqual(0, rc);
            Assert.Contains($"--limit must be at least 1, got {limit}", stderr, StringComparison.Ordinal);
        }
        Assert.False(Directory.Exists(Path.Combine(_dir, "out-inter")));
        Assert.False(Directory.Exists(Path.Combine(_dir, "out-intra")));
    }

    [Fact]
    public void Inter_and_sharded_intra_draw_from_a_generator_folder_score_with_a_clip_folder_and_merge_the_shards()
    {
        // An untrained tiny generator saved as a model folder, an untrained tiny CLIP unit, and real rewrites of phantom reports.
        var pipe = RoentGen.Tests.Diffusion.TinyPipelines.Untrained(11);
        var generator = Path.Combine(_dir, "generator");
        new LatentDiffusionModel(pipe.Vae, pipe.TextEncoder, pipe.Tokenizer, pipe.Unet, pipe.Schedule.Config, pipe.LatentSize, pipe.MaxTokens).Save(generator);
        var cfg = ClipConfig.Matching(DinoConfig.Tiny, 8, 1) with { TokenizerReports = 8 };
        var pool = RoentGen.Training.TrainingRecords.Phantoms(new RoentGen.Data.Phantoms.PhantomOptions { Size = cfg.SourceSize, Seed = 1 }, 8);
        var clip = Path.Combine(_dir, "clip");
        using (var model = new ClipModel(cfg, ClipTraining.TrainTokenizer(cfg, pool))) model.Save(clip);
        var reports = Path.Combine(_dir, "reports.txt");
        File.WriteAllText(reports, string.Join("\n\n", pool.Dataset!.Select(r => r.Report.FullText)) + "\n");
        var intraRewrites = Path.Combine(_dir, "intra.jsonl");
        var interRewrites = Path.Combine(_dir, "inter.jsonl");
        Assert.Equal(0, CliCases.Invoke(Roentgen(), "pairaug", "rewrite", "--in", reports, "--op", "change-in-symptoms", "--out", intraRewrites).ExitCode);
        Assert.Equal(0, CliCases.Invoke(Roentgen(), "pairaug", "rewrite", "--in", reports, "--op", "partial-opposite", "--out", interRewrites, "--limit", "3").ExitCode);
        int intraCount = RewriteFiles.ReadRewrites(intraRewrites).Count;
        Assert.True(intraCount >= 2, $"{intraCount} intra rewrites");

        var inter = Path.Combine(_dir, "inter");
        var (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "inter", "--rewrites", interRewrites, "--generator", generator, "--clip", clip, "--out", inter, "--steps", "2");
        Assert.True(rc == 0, stderr + stdout);
        Assert.Contains("generated 3", stdout, StringComparison.Ordinal);
        var interPairs = PairAugmentation.ReadPairs(Path.Combine(inter, PairAugmentation.PairsFileName));
        Assert.Equal(3, interPairs.Count);
        // labels.csv lists the kept pairs in the generic layout: the folder loads as a dataset.
        var loaded = RoentGen.Data.Datasets.ImageFolderLoader.LoadFolder(inter);
        Assert.Equal(interPairs.Count(p => p.Kept), loaded.Count);

        var intra = Path.Combine(_dir, "intra");
        (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "intra", "--rewrites", intraRewrites, "--generator", generator, "--clip", clip, "--out", intra, "--steps", "2", "--limit", "3", "--shard", "0/2");
        Assert.True(rc == 0, stderr + stdout);
        Assert.Contains("when all 2 shards are done", stdout, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(intra, PairAugmentation.PairsFileName)));
        (rc, stdout, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "intra", "--rewrites", intraRewrites, "--generator", generator, "--clip", clip, "--out", intra, "--steps", "2", "--limit", "3", "--shard", "1/2");
        Assert.True(rc == 0, stderr + stdout);
        Assert.Contains("all 2 shards done, pruned together", stdout, StringComparison.Ordinal);
        var merged = PairAugmentation.ReadPairs(Path.Combine(intra, PairAugmentation.PairsFileName));
        Assert.Equal(Math.Min(3, intraCount), merged.Count);
        Assert.All(merged, p => Assert.True(File.Exists(Path.Combine(intra, p.Image)), p.Image));
        Assert.True(File.Exists(Path.Combine(intra, PairsCsv.FileName)));
        // A finished shard is not drawn again.
        (rc, stdout, _) = CliCases.Invoke(Roentgen(), "pairaug", "intra", "--rewrites", intraRewrites, "--generator", generator, "--clip", clip, "--out", intra, "--steps", "2", "--limit", "3", "--shard", "0/2");
        Assert.Equal(0, rc);
        Assert.Contains("already holds its pairs", stdout, StringComparison.Ordinal);
        // The folder pins what its pairs were drawn with: another --limit, other steps or a CLIP model retrained in place
        // are refused, not taken for done (or merged with pairs of the first set-up).
        (rc, _, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "intra", "--rewrites", intraRewrites, "--generator", generator, "--clip", clip, "--out", intra, "--steps", "2", "--limit", "2", "--shard", "0/2");
        Assert.Equal(2, rc);
        Assert.Contains("rewrites", stderr, StringComparison.Ordinal);
        Assert.Contains("(2 used", stderr, StringComparison.Ordinal);
        (rc, _, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "inter", "--rewrites", interRewrites, "--generator", generator, "--clip", clip, "--out", inter, "--steps", "3");
        Assert.Equal(2, rc);
        Assert.Contains("steps is '2', not '3'", stderr, StringComparison.Ordinal);
        var clipWeights = Path.Combine(clip, ClipModel.WeightsFileName);
        var bytes = File.ReadAllBytes(clipWeights);
        bytes[^1] ^= 1;
        File.WriteAllBytes(clipWeights, bytes);
        (rc, _, stderr) = CliCases.Invoke(Roentgen(), "pairaug", "inter", "--rewrites", interRewrites, "--generator", generator, "--clip", clip, "--out", inter, "--steps", "2");
        Assert.Equal(2, rc);
        Assert.Contains("clip weights", stderr, StringComparison.Ordinal);
    }
}
