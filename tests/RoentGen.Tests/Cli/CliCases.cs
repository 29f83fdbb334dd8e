using System.CommandLine;
using System.Security.Cryptography;

namespace RoentGen.Tests.Cli;

/// <summary>Runs <c>roentgen</c> verbs in-process with standard output and error captured, and hashes files to prove nothing changed.</summary>
internal static class CliCases
{
    private static readonly object Gate = new();

    /// <summary>Invokes the command line; returns the exit code and what was written to standard output and error.</summary>
    public static (int ExitCode, string Out, string Err) Invoke(RootCommand root, params string[] args)
    {
        lock (Gate)
        {
            var oldOut = Console.Out;
            var oldErr = Console.Error;
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            Console.SetOut(stdout);
            Console.SetError(stderr);
            try
            {
                var parse = root.Parse(args);
                var rc = parse.Errors.Count > 0 ? -1 : parse.Invoke();
                return (rc, stdout.ToString(), stderr.ToString());
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
        }
    }

    /// <summary>SHA-256 of a file's bytes.</summary>
    public static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>Every file under a folder (relative path to hash; symbolic links are not followed), to compare a folder before and after.</summary>
    public static SortedDictionary<string, string> HashTree(string dir) =>
        new(Directory.EnumerateFiles(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint })
            .ToDictionary(f => Path.GetRelativePath(dir, f), Hash), StringComparer.Ordinal);

    /// <summary>Asserts the policy's one line on standard error: starts with <paramref name="prefix"/>, no trace, no raw control characters.</summary>
    public static string AssertOneLine(string err, string prefix = "error: ")
    {
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on standard error, got {lines.Length}:\n{err}");
        Assert.StartsWith(prefix, lines[0]);
        Assert.DoesNotContain("   at ", err);
        Assert.DoesNotContain(err.TrimEnd('\n', '\r'), c => char.IsControl(c));
        return lines[0];
    }
}
