using RoentGen.Interop;

namespace RoentGen.Cli.Commands;

/// <summary>Shared handling of expected errors in verbs: a clear message and exit code 2.</summary>
internal static class Cli
{
    public static int Run(Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or ArgumentException or IOException or UnauthorizedAccessException or StateDictMismatchException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
