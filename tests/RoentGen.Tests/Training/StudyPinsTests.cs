using RoentGen.Platform;
using RoentGen.Training;

namespace RoentGen.Tests.Training;

public class StudyPinsTests
{
    [Fact]
    public void Pins_are_recorded_once_and_another_value_is_refused_naming_both()
    {
        var path = Path.Combine(TestPaths.NewTempDir("pins"), "pins.json");
        StudyPins.CheckAndRecord(path, new Dictionary<string, string?> { ["generator"] = "/models/a", ["real sample"] = null }, "use another --out");
        Assert.True(File.Exists(path));
        Assert.DoesNotContain("real sample", File.ReadAllText(path));                     // a value not used is not pinned

        // The same value passes; a key first given later is added; null leaves a pinned key alone.
        StudyPins.CheckAndRecord(path, new Dictionary<string, string?> { ["generator"] = "/models/a", ["real sample"] = "/data/s" }, "x");
        StudyPins.CheckAndRecord(path, new Dictionary<string, string?> { ["generator"] = null, ["real sample"] = "/data/s" }, "x");
        Assert.Contains("/data/s", File.ReadAllText(path));

        var e = Assert.Throws<RunStateException>(() =>
            StudyPins.CheckAndRecord(path, new Dictionary<string, string?> { ["generator"] = "/models/b" }, "use another --out"));
        Assert.Contains("generator is '/models/a', not '/models/b'", e.Message);
        Assert.Contains("use another --out", e.Message);
        Assert.Contains("/models/a", File.ReadAllText(path));                             // the refused value was not written

        File.WriteAllText(path, "[1, 2]");
        Assert.Throws<InvalidDataException>(() => StudyPins.CheckAndRecord(path, new Dictionary<string, string?> { ["generator"] = "/models/a" }, "x"));
    }
}
