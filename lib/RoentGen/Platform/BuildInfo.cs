namespace RoentGen.Platform;

/// <summary>Facts fixed when the library was built.</summary>
public static class BuildInfo
{
    /// <summary>The tensor backend the library was built against (the TorchBackend build property).</summary>
    public static string TorchBackend =>
        typeof(BuildInfo).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .OfType<System.Reflection.AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "cpu";
}
