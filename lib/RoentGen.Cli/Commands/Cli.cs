using System.Globalization;
using Microsoft.Data.Analysis;
using RoentGen.Interop;
using Spectre.Console;

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

    /// <summary>Prints a data frame as a console table (numbers to 4 significant digits).</summary>
    public static void Print(DataFrame frame)
    {
        var table = new Table();
        foreach (var c in frame.Columns) table.AddColumn(Markup.Escape(c.Name));
        for (long r = 0; r < frame.Rows.Count; r++)
            table.AddRow(frame.Columns.Select(c => Markup.Escape(c[r] switch
            {
                double d => d.ToString("G4", CultureInfo.InvariantCulture),
                float f => f.ToString("G4", CultureInfo.InvariantCulture),
                var v => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
            })).ToArray());
        AnsiConsole.Write(table);
    }
}
