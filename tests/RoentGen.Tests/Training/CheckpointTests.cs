using RoentGen.Interop;
using RoentGen.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RoentGen.Tests.Training;

public class CheckpointTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("checkpoint");
    public void Dispose() => Directory.Delete(_dir, true);

    public sealed record TinyConfig(int Hidden = 8, string Name = "tiny");

    // Parameter names follow PyTorch's snake_case field names: fc1.weight, norm.bias, ...
    private sealed class TinyNet : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc1;
        private readonly GroupNorm norm;
        private readonly Linear head;

        public TinyNet(int hidden = 8) : base(nameof(TinyNet))
        {
            fc1 = nn.Linear(4, hidden);
            norm = nn.GroupNorm(2, hidden);
            head = nn.Linear(hidden, 2);
            using (no_grad()) { norm.weight!.uniform_(0.5, 1.5); norm.bias!.uniform_(-0.5, 0.5); }
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => head.forward(norm.forward(fc1.forward(x).unsqueeze(-1)).squeeze(-1)); // GroupNorm wants (B, C, L)
    }

    // Differs from TinyNet: fc1 is narrower, "head" is gone, "extra" is new.
    private sealed class OtherNet : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc1;
        private readonly GroupNorm norm;
        private readonly Linear extra;

        public OtherNet() : base(nameof(OtherNet))
        {
            fc1 = nn.Linear(4, 6);
            norm = nn.GroupNorm(2, 8);
            extra = nn.Linear(8, 2);
            using (no_grad()) { norm.weight!.fill_(1); norm.bias!.zero_(); }
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => extra.forward(norm.forward(fc1.forward(x).unsqueeze(-1)).squeeze(-1));
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a == b).all().item<bool>();

    [Fact]
    public void Save_then_strict_load_restores_every_tensor_and_the_config()
    {
        using var scope = NewDisposeScope();
        var a = new TinyNet();
        Checkpoint.Save(_dir, a, new TinyConfig(8, "tiny"));
        Assert.True(File.Exists(Path.Combine(_dir, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(_dir, "config.json")));
        Assert.Equal(new TinyConfig(8, "tiny"), Checkpoint.ReadConfig<TinyConfig>(_dir));

        var b = new TinyNet();
        Assert.False(Same(a.state_dict()["fc1.weight"], b.state_dict()["fc1.weight"]));
        var report = Checkpoint.Load(_dir, b);
        Assert.True(report.IsExact);
        Assert.Equal(6, report.LoadedKeys.Count);
        foreach (var (k, t) in a.state_dict()) Assert.True(Same(t, b.state_dict()[k]), k);
        var x = randn(3, 4);
        Assert.True(a.forward(x).allclose(b.forward(x)));
    }

    [Fact]
    public void Strict_load_lists_every_missing_unexpected_and_misshapen_key_and_changes_nothing()
    {
        using var scope = NewDisposeScope();
        Checkpoint.Save(_dir, new TinyNet(), new TinyConfig());
        var other = new OtherNet();
        var before = other.state_dict()["norm.weight"].clone();
        var e = Assert.Throws<StateDictMismatchException>(() => Checkpoint.Load(_dir, other));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("missing keys (2): extra.weight, extra.bias", e.Message);
        Assert.Contains("unexpected keys (2): head.bias, head.weight", e.Message);
        Assert.Contains("fc1.weight: expected [6, 4], found [8, 4]", e.Message);
        Assert.Contains("fc1.bias: expected [6], found [8]", e.Message);
        Assert.True(Same(before, other.state_dict()["norm.weight"]));
    }

    [Fact]
    public void Non_strict_load_returns_the_report_and_loads_what_matches()
    {
        using var scope = NewDisposeScope();
        var a = new TinyNet();
        Checkpoint.Save(_dir, a, new TinyConfig());
        var other = new OtherNet();
        var report = Checkpoint.Load(_dir, other, strict: false);
        Assert.False(report.IsExact);
        Assert.Equal(["extra.weight", "extra.bias"], report.MissingKeys);
        Assert.Equal(["head.bias", "head.weight"], report.UnexpectedKeys.Order());
        Assert.Equal(["fc1.weight", "fc1.bias"], report.ShapeMismatches.Select(m => m.Key));
        Assert.Equal(["norm.weight", "norm.bias"], report.LoadedKeys);
        Assert.True(Same(a.state_dict()["norm.weight"], other.state_dict()["norm.weight"]));
    }

    [Fact]
    public void Missing_checkpoint_folder_names_the_file()
    {
        var e = Assert.Throws<FileNotFoundException>(() => Checkpoint.Load(Path.Combine(_dir, "nope"), new TinyNet()));
        Assert.Contains("nope", e.Message);
    }
}
