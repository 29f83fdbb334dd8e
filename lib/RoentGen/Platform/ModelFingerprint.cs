using System.Security.Cryptography;
using System.Text;

namespace RoentGen.Platform;

/// <summary>
/// A content hash of a model folder, so a study can tell "the same folder" from "the same weights": a folder retrained
/// or overwritten in place keeps its path but not its fingerprint.
/// </summary>
public static class ModelFingerprint
{
    /// <summary>Subfolders left out: training state and outputs that change without the model changing.</summary>
    public static IReadOnlySet<string> IgnoredFolders { get; } = new HashSet<string>(StringComparer.Ordinal) { "runs", "checkpoints", "samples", "logs", "curve" };

    /// <summary>Top-level files that are part of the model (how its components fit together).</summary>
    public static IReadOnlyList<string> IndexFiles { get; } = ["model_index.json", "mask_model.json"];

    /// <summary>
    /// SHA-256 (hex, first 16 characters) over the relative path and bytes of every file in the folder's subfolders
    /// (the components: weights, configs, tokenizer), in ordinal path order, plus the top-level <see cref="IndexFiles"/>.
    /// Other files directly in the folder (experiment records, reports) and <see cref="IgnoredFolders"/> are left out.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="InvalidDataException">The folder holds no component file to hash.</exception>
    public static string Of(string dir)
    {
        dir = Path.GetFullPath(dir);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: no such model folder");
        var files = new List<string>();
        foreach (var sub in Directory.EnumerateDirectories(dir))
            if (!IgnoredFolders.Contains(Path.GetFileName(sub)))
                files.AddRange(Directory.EnumerateFiles(sub, "*", SearchOption.AllDirectories));
        foreach (var name in IndexFiles)
            if (File.Exists(Path.Combine(dir, name))) files.Add(Path.Combine(dir, name));
        if (files.Count == 0) throw new InvalidDataException($"{dir}: no model files to fingerprint (expected component subfolders such as unet/)");
        return OfFiles(dir, files.Select(f => Path.GetRelativePath(dir, f)));
    }

    /// <summary>
    /// The same hash over the named files of <paramref name="dir"/> (relative paths; for models kept as single files,
    /// e.g. a CLIP model's weights and config).
    /// </summary>
    /// <exception cref="FileNotFoundException">A named file is missing.</exception>
    public static string OfFiles(string dir, IEnumerable<string> relativeFiles)
    {
        dir = Path.GetFullPath(dir);
        var relative = relativeFiles.Select(f => f.Replace('\\', '/')).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (relative.Count == 0) throw new ArgumentException("name at least one file to fingerprint", nameof(relativeFiles));
        foreach (var rel in relative)
            if (!File.Exists(Path.Combine(dir, rel))) throw new FileNotFoundException($"{Path.Combine(dir, rel)}: no such file to fingerprint", Path.Combine(dir, rel));
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var rel in relative)
        {
            var name = Encoding.UTF8.GetBytes(rel);
            hash.AppendData(BitConverter.GetBytes(name.Length));
            hash.AppendData(name);
            using var stream = File.OpenRead(Path.Combine(dir, rel));
            hash.AppendData(BitConverter.GetBytes(stream.Length));
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0) hash.AppendData(buffer, 0, read);
        }
        return "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }
}
