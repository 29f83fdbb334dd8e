// This namespace is imported only by the headless notebook runner's script options. Inside VS Code
// Polyglot Notebooks, dotnet-interactive supplies its own `display` and `.Display()`; a `.Display()`
// extension in a namespace that notebooks import would make calls there ambiguous.
namespace RoentGen.Interactive.Notebooks.RunnerGlobals;

/// <summary>The globals object of notebook scripts run by <see cref="NotebookRunner"/>: supplies <c>display(...)</c>.</summary>
public sealed class NotebookGlobals
{
    /// <summary>
    /// Shows a value as a display_data output; the handle's Update replaces it in place. With
    /// <paramref name="mimeTypes"/>, only those representations are written (text/plain is always kept).
    /// </summary>
    /// <remarks>Named and shaped like dotnet-interactive's <c>display</c> so notebooks run unchanged in both hosts.</remarks>
#pragma warning disable IDE1006 // lower-case name on purpose: notebooks call display(...)
    public IDisplayHandle display(object? value, params string[] mimeTypes) =>
        mimeTypes.Length == 0 ? DisplayExtensions.Display(value) : DisplayExtensions.Display(new MimeRestricted(value, mimeTypes));
#pragma warning restore IDE1006

    /// <summary>A value to show only in the given mime types.</summary>
    internal sealed record MimeRestricted(object? Value, IReadOnlyList<string> MimeTypes);
}

/// <summary>The runner's <c>x.Display()</c>, as dotnet-interactive offers it.</summary>
public static class DisplayExtensions
{
    /// <summary>Shows a value as a display_data output; the handle's Update replaces it in place.</summary>
    /// <exception cref="InvalidOperationException">Called outside a notebook host.</exception>
    public static IDisplayHandle Display(this object? value) =>
        NotebookHost.Display(value ?? NullValue.Instance)
        ?? throw new InvalidOperationException("Display() needs a notebook host (the headless runner or Polyglot Notebooks)");

    /// <summary>Stands for null in a display call (the host hook takes a non-null object).</summary>
    internal sealed class NullValue
    {
        public static readonly NullValue Instance = new();
        public override string ToString() => "<null>";
    }
}
