using System.Diagnostics;

namespace RoentGen.Tests.Interactive;

/// <summary>Validates a notebook file with Jupyter's own validator (Debian's python3-nbformat, installed by environment/test.sh).</summary>
public static class NbformatValidator
{
    private const string Script = "import sys, nbformat\nnb = nbformat.read(sys.argv[1], as_version=4)\nnbformat.validate(nb)\nprint('valid', nb.nbformat, nb.nbformat_minor)";

    /// <summary>Whether python3 with nbformat is installed here.</summary>
    public static bool Available { get; } = Run("-c", "import nbformat").Code == 0;

    /// <summary>Fails with the validator's message when the file is not a valid notebook; skips when the validator is not installed.</summary>
    public static void AssertValid(string path)
    {
        Skip.IfNot(Available, "python3-nbformat is not installed (environment/test.sh installs it): the official validator cannot run");
        var (code, output) = Run("-c", Script, path);
        Assert.True(code == 0, $"nbformat rejects {path}:\n{output}");
        Assert.Contains("valid 4 5", output);
    }

    private static (int Code, string Output) Run(params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo(File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            var output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output + err.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }
}
