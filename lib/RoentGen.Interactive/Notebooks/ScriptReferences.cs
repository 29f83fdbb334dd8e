using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Runtime.Loader;
using System.Text.Json;
using Microsoft.CodeAnalysis;

namespace RoentGen.Interactive.Notebooks;

/// <summary>
/// What notebook code compiles against and loads: the .NET framework plus every managed assembly in the
/// folder holding RoentGen.dll, as metadata references; at run time every assembly resolves once, in the
/// default load context (Roslyn's own #r loads each file in its own context, and FSharp.Core then loads
/// twice and Plotly.NET breaks). Also the NuGet packages that `#r "nuget: ..."` may name: those listed in
/// the deps.json files of that folder.
/// </summary>
internal static class ScriptReferences
{
    private static readonly Lazy<IReadOnlyList<MetadataReference>> _references = new(BuildReferences);
    private static readonly Lazy<IReadOnlyDictionary<string, string>> _packages = new(ReadPackages);
    private static readonly Dictionary<string, string> _extraAssemblyPaths = new(StringComparer.OrdinalIgnoreCase);
    private static int _resolverInstalled;

    /// <summary>The folder holding RoentGen.dll.</summary>
    public static string LibraryFolder { get; } =
        Path.GetDirectoryName(typeof(ScriptReferences).Assembly.Location) is { Length: > 0 } d ? d : AppContext.BaseDirectory;

    /// <summary>Metadata references for scripts (built once per process).</summary>
    public static IReadOnlyList<MetadataReference> References => _references.Value;

    /// <summary>Simple names of the referenced assemblies (case-insensitive).</summary>
    public static IReadOnlySet<string> ReferencedNames { get; private set; } = new HashSet<string>();

    /// <summary>Available NuGet packages: name (case-insensitive) to version.</summary>
    public static IReadOnlyDictionary<string, string> Packages => _packages.Value;

    /// <summary>Makes the default load context find assemblies of the library folder (and #r'd files) by name.</summary>
    public static void InstallResolver()
    {
        if (Interlocked.Exchange(ref _resolverInstalled, 1) == 1) return;
        AssemblyLoadContext.Default.Resolving += (context, name) =>
        {
            if (name.Name is null) return null;
            string? path;
            lock (_extraAssemblyPaths) _extraAssemblyPaths.TryGetValue(name.Name, out path);
            path ??= Path.Combine(LibraryFolder, name.Name + ".dll");
            return File.Exists(path) ? context.LoadFromAssemblyPath(path) : null;
        };
    }

    /// <summary>Loads a #r'd assembly file into the default context and returns a reference to it.</summary>
    public static MetadataReference LoadExtra(string path)
    {
        InstallResolver();
        var name = AssemblyName.GetAssemblyName(path);
        lock (_extraAssemblyPaths) _extraAssemblyPaths[name.Name!] = path;
        var loaded = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => AssemblyName.ReferenceMatchesDefinition(a.GetName(), name));
        if (loaded is null) AssemblyLoadContext.Default.LoadFromAssemblyPath(path);
        return MetadataReference.CreateFromFile(path);
    }

    private static IReadOnlyList<MetadataReference> BuildReferences()
    {
        // Name -> path. The runtime's trusted platform assemblies (framework + the host app's dependencies)
        // come first: they are what the default context loads. Then the library folder's other assemblies.
        var byName = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string tpa)
        {
            foreach (var p in tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
                if (p.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)) byName.TryAdd(Path.GetFileNameWithoutExtension(p), p);
        }
        foreach (var p in Directory.EnumerateFiles(LibraryFolder, "*.dll"))
            byName.TryAdd(Path.GetFileNameWithoutExtension(p), p);

        var refs = new List<MetadataReference>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, path) in byName)
        {
            if (!IsManagedAssembly(path)) continue;
            refs.Add(MetadataReference.CreateFromFile(path));
            names.Add(name);
        }
        ReferencedNames = names;
        return refs;
    }

    private static bool IsManagedAssembly(string path)
    {
        try
        {
            using var fs = File.OpenRead(path);
            using var pe = new PEReader(fs);
            return pe.HasMetadata && pe.GetMetadataReader().IsAssembly;
        }
        catch (Exception e) when (e is BadImageFormatException or IOException or InvalidOperationException)
        {
            return false;
        }
    }

    // deps.json "libraries": { "Plotly.NET/6.0.0": { "type": "package", ... }, ... }
    private static IReadOnlyDictionary<string, string> ReadPackages()
    {
        var packages = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var files = Directory.EnumerateFiles(LibraryFolder, "*.deps.json").ToList();
        if (Path.GetFullPath(AppContext.BaseDirectory) != Path.GetFullPath(LibraryFolder + Path.DirectorySeparatorChar))
            files.AddRange(Directory.EnumerateFiles(AppContext.BaseDirectory, "*.deps.json"));
        foreach (var file in files)
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(file));
                if (!doc.RootElement.TryGetProperty("libraries", out var libs)) continue;
                foreach (var lib in libs.EnumerateObject())
                {
                    if (!lib.Value.TryGetProperty("type", out var t) || t.GetString() != "package") continue;
                    var slash = lib.Name.IndexOf('/');
                    if (slash > 0) packages.TryAdd(lib.Name[..slash], lib.Name[(slash + 1)..]);
                }
            }
            catch (JsonException)
            {
                // A malformed deps.json lists nothing; the runtime itself would have refused to start with it.
            }
        }
        return packages;
    }
}
