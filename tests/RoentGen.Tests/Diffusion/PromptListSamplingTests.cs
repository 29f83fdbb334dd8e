using RoentGen.Diffusion;
using RoentGen.Tests.Cli;
using RoentGen.Text;
using static TorchSharp.torch;

namespace RoentGen.Tests.Diffusion;

/// <summary>Issue #20: a prompt list sampled in shards gives the images, table and merged manifest of the unsharded run.</summary>
[Collection(ProcessStateCollection.Name)]
public sealed class PromptListSamplingTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("roentgen-prompt-list");

    public void Dispose() => TestPaths.DeleteQuietly(_dir);

    private static TextToImagePipeline TinyPipeline() => TinyPipelines.Untrained(5);

    [Fact]
    public void Three_shards_merge_to_the_unsharded_run_byte_for_byte()
    {
        var pipe = TinyPipeline();
        var settings = new PromptListSettings
        {
            Prompts = ["cardiomegaly", "no pneumothorax", "small left pleural effusion", "cardiomegaly", "no pneumothorax"],
            Model = "tiny-test-model", Steps = 2, Scheduler = SchedulerKind.Ddim, Seed = 40,
        };
        var whole = Path.Combine(_dir, "whole");
        PromptListSampling.Run(pipe, settings, whole, Shard.Whole);
        ShardMerge.Merge(whole);
        var sharded = Path.Combine(_dir, "sharded");
        foreach (var i in new[] { 2, 0, 1 }) PromptListSampling.Run(pipe, settings, sharded, new Shard(i, 3));
        ShardMerge.Merge(sharded);

        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "samples.csv")), File.ReadAllBytes(Path.Combine(sharded, "samples.csv")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "shards", "merged.json")), File.ReadAllBytes(Path.Combine(sharded, "shards", "merged.json")));
        Assert.Equal(CliCases.HashTree(Path.Combine(whole, "images")), CliCases.HashTree(Path.Combine(sharded, "images")));
        Assert.Equal(5, Directory.GetFiles(Path.Combine(sharded, "images")).Length);
        var lines = File.ReadAllLines(Path.Combine(sharded, "samples.csv"));
        Assert.Equal("index,prompt,seed,file", lines[0]);
        Assert.Equal("3,cardiomegaly,43,images/sample_000003.png", lines[4]);
        // Prompt 0 and prompt 3 share the text but not the seed: different images.
        Assert.NotEqual(CliCases.Hash(Path.Combine(sharded, "images", "sample_000000.png")), CliCases.Hash(Path.Combine(sharded, "images", "sample_000003.png")));
        // Other settings are another job: the folder refuses them.
        Assert.Throws<RunStateException>(() => PromptListSampling.Run(pipe, settings with { Steps = 3 }, sharded, new Shard(0, 3)));
    }

    [Fact]
    public void A_prompt_file_is_one_prompt_per_nonblank_line()
    {
        var path = Path.Combine(_dir, "prompts.txt");
        File.WriteAllText(path, "cardiomegaly\r\n\n  left pleural effusion  \n\n");
        Assert.Equal(["cardiomegaly", "left pleural effusion"], PromptListSampling.ReadPromptFile(path));
        File.WriteAllText(path, "\n \n");
        Assert.Contains("no prompt", Assert.Throws<InvalidDataException>(() => PromptListSampling.ReadPromptFile(path)).Message);
        Assert.Throws<FileNotFoundException>(() => PromptListSampling.ReadPromptFile(Path.Combine(_dir, "absent.txt")));
    }
}
