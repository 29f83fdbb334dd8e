namespace RoentGen.Tests;

/// <summary>Where tests find the repository and the shared real-data sample.</summary>
public static class TestPaths
{
    /// <summary>The repository root (the folder holding RoentGen.Notebooks.sln).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>
    /// ../shared/data/real-cxr-sample beside the repository, or null where it is absent (a user's clone):
    /// tests that need it call <c>Skip.If(TestPaths.RealSample is null, ...)</c>.
    /// </summary>
    public static string? RealSample
    {
        get
        {
            var p = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data", "real-cxr-sample"));
            return Directory.Exists(p) ? p : null;
        }
    }

    /// <summary>
    /// ../shared/fixtures/stable-diffusion beside the repository (the real config and tokenizer files of SD v1-4 and
    /// SD 2.1-base, no weights), or null where it is absent: tests that need it call <c>Skip.If(... is null, ...)</c>.
    /// </summary>
    public static string? StableDiffusionFixtures
    {
        get
        {
            var p = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures", "stable-diffusion"));
            return Directory.Exists(Path.Combine(p, "sd-v1-4")) && Directory.Exists(Path.Combine(p, "sd-2-1-base")) ? p : null;
        }
    }

    /// <summary>A new empty temporary folder.</summary>
    public static string NewTempDir(string prefix = "roentgen-test")
    {
        var d = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Deletes a folder and everything in it; a folder that cannot be deleted is left, never an error.</summary>
    public static void DeleteQuietly(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RoentGen.Notebooks.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException($"no RoentGen.Notebooks.sln above {AppContext.BaseDirectory}");
    }
}
