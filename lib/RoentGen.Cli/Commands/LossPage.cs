using RoentGen.Interactive;
using RoentGen.Vision;

namespace RoentGen.Cli.Commands;

/// <summary>
/// The loss chart page of a run folder: the core library writes the figure as JSON (<see cref="DinoRunReport.FigureFileName"/>),
/// the train verbs draw it to <see cref="DinoRunReport.ChartFileName"/>, an offline HTML page.
/// </summary>
internal static class LossPage
{
    /// <summary>Writes the page of a figure into a run folder; returns its path.</summary>
    public static string Write(Figure figure, string runFolder)
    {
        var path = Path.Combine(runFolder, DinoRunReport.ChartFileName);
        FigureHtml.SavePage(figure, path);
        return path;
    }

    /// <summary>Writes the page from the run folder's figure JSON; returns its path, or null when the folder has no figure.</summary>
    /// <exception cref="InvalidDataException">The figure file is not a figure.</exception>
    public static string? WriteFromFigureFile(string runFolder)
    {
        var json = Path.Combine(runFolder, DinoRunReport.FigureFileName);
        if (!File.Exists(json)) return null;
        Figure figure;
        try { figure = Figure.FromJson(File.ReadAllText(json)); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{json}: {e.Message}", e); }
        return Write(figure, runFolder);
    }
}
