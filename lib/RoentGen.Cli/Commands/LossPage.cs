using RoentGen.Reporting;
using RoentGen.Interactive;

namespace RoentGen.Cli.Commands;

/// <summary>
/// The loss chart page of a run folder: the core library writes the figure as JSON (<see cref="RunReport.FigureFileName"/>),
/// the train verbs draw it to <see cref="RunReport.ChartFileName"/>, an offline HTML page.
/// </summary>
internal static class LossPage
{
    /// <summary>Writes the page of a figure into a run folder; returns its path.</summary>
    public static string Write(Figure figure, string runFolder)
    {
        var path = Path.Combine(runFolder, RunReport.ChartFileName);
        FigureHtml.SavePage(figure, path);
        return path;
    }

    /// <summary>Writes the page from the run folder's figure JSON; returns its path, or null when the folder has no figure.</summary>
    /// <exception cref="InvalidDataException">The figure file is not a figure.</exception>
    public static string? WriteFromFigureFile(string runFolder)
    {
        var json = Path.Combine(runFolder, RunReport.FigureFileName);
        if (!File.Exists(json)) return null;
        Figure figure;
        try { figure = Figure.FromJson(File.ReadAllText(json)); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{json}: {e.Message}", e); }
        return Write(figure, runFolder);
    }
}
