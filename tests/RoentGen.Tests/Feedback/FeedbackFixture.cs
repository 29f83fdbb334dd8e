using System.Text.Json;
using RoentGen.Data;

namespace RoentGen.Tests.Feedback;

/// <summary>A small synthetic set on disk: PNG images (gradients), a lung-like mask for some, and a manifest.json.</summary>
internal static class FeedbackFixture
{
    /// <summary>Writes <paramref name="count"/> images "synth_00.png".. with a manifest into a new folder; returns the folder.</summary>
    public static string WriteSet(int count, string? dir = null)
    {
        dir ??= TestPaths.NewTempDir("roentgen-feedback");
        Directory.CreateDirectory(Path.Combine(dir, "masks"));
        var entries = new List<object>();
        for (int i = 0; i < count; i++)
        {
            var img = new GrayImage(32, 32);
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) img[x, y] = ((x + y + 7 * i) % 32) / 31f;
            string file = $"synth_{i:D2}.png";
            ImageIO.WritePng(Path.Combine(dir, file), img);
            var entry = new Dictionary<string, object> { ["file"] = file, ["prompt"] = $"Small right pleural effusion, case {i}.", ["labels"] = new[] { "Pleural Effusion" } };
            if (i % 2 == 0)
            {
                var mask = new GrayImage(32, 32);
                for (int y = 8; y < 24; y++)
                    for (int x = 4; x < 14; x++) mask[x, y] = 1;
                string m = $"masks/synth_{i:D2}_lungs.png";
                ImageIO.WritePng(Path.Combine(dir, m), mask);
                entry["masks"] = new Dictionary<string, string> { ["lungs"] = m };
            }
            entries.Add(entry);
        }
        File.WriteAllText(Path.Combine(dir, "manifest.json"), JsonSerializer.Serialize(new { images = entries }));
        return dir;
    }

    /// <summary>The id of image i (the manifest gives none, so the file name).</summary>
    public static string Id(int i) => $"synth_{i:D2}.png";
}
