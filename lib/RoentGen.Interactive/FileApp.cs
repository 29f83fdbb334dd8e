using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using RoentGen.Interactive.Notebooks;

namespace RoentGen.Interactive;

/// <summary>
/// The runtime of a notebook exported as a C# file-based app (<c>roentgen notebook export NB.ipynb --to cs</c>, then
/// <c>dotnet run NB.cs</c>): the second front end beside the notebook kernel. It gives the app the notebook's
/// <c>display()</c>, takes <c>-p name=value</c> parameters like the notebook runner, runs the cells in the notebook's
/// folder, echoes console output, and writes every cell with its outputs into one self-contained HTML page
/// (plotly.js once) when the app ends, also when a cell throws.
/// </summary>
public sealed class FileApp
{
    private static FileApp? _current;
    private readonly Notebook _page = Notebook.CreatePolyglot();
    private readonly Dictionary<string, string> _overrides;
    private readonly HashSet<string> _declared = new(StringComparer.Ordinal);
    private readonly string _htmlPath;
    private readonly string _title;
    private NotebookCell? _cell;
    private int _count;
    private bool _finished;
    private TextWriter _stdout = Console.Out;

    private FileApp(string title, string htmlPath, Dictionary<string, string> overrides)
    {
        _title = title;
        _htmlPath = htmlPath;
        _overrides = overrides;
    }

    /// <summary>The app of this process (set by <see cref="Start"/>).</summary>
    public static FileApp Current => _current ?? throw new InvalidOperationException("FileApp.Start has not been called: display() works in exported notebook apps only");

    /// <summary>Where the page is written.</summary>
    public string HtmlPath => _htmlPath;

    /// <summary>
    /// Starts the app: parses <paramref name="args"/> (<c>-p name=value</c> or <c>name=value</c>, and <c>--html PATH</c>),
    /// makes the notebook's folder the working directory, captures console output and registers the formatters.
    /// </summary>
    /// <param name="args">The app's command-line arguments.</param>
    /// <param name="title">The page title (the notebook's name).</param>
    /// <param name="notebookFolder">The notebook's folder relative to the app's source file: relative paths in cells start there.</param>
    /// <param name="sourceFile">The app's source file (filled in by the compiler).</param>
    public static FileApp Start(string[] args, string title, string notebookFolder, [CallerFilePath] string sourceFile = "")
    {
        ArgumentNullException.ThrowIfNull(args);
        var overrides = new Dictionary<string, string>(StringComparer.Ordinal);
        string? html = null;
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a is "--html") { html = i + 1 < args.Length ? Path.GetFullPath(args[++i]) : throw new ArgumentException("--html needs a file path"); continue; }
            if (a is "-p" or "--parameter") { a = i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs name=value"); }
            var eq = a.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"unexpected argument '{a}': give parameters as -p name=value (and --html PATH for the page)");
            if (!overrides.TryAdd(a[..eq].Trim(), a[(eq + 1)..])) throw new ArgumentException($"parameter '{a[..eq].Trim()}' given twice");
        }
        var sourceDir = Path.GetDirectoryName(Path.GetFullPath(sourceFile)) ?? Environment.CurrentDirectory;
        html ??= Path.Combine(sourceDir, Path.GetFileNameWithoutExtension(sourceFile) + ".html");
        var folder = Path.GetFullPath(Path.Combine(sourceDir, notebookFolder));
        if (Directory.Exists(folder)) Environment.CurrentDirectory = folder;

        var app = new FileApp(title, html, overrides);
        _current = app;
        Display.Register();
        app._stdout = Console.Out;
        Console.SetOut(new CellWriter(app, "stdout", Console.Out));
        Console.SetError(new CellWriter(app, "stderr", Console.Error));
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            if (e.ExceptionObject is Exception ex) app.Fail(ex);
        };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => app.Finish();
        return app;
    }

    /// <summary>A markdown cell of the notebook.</summary>
    public void Markdown(string text)
    {
        _page.Cells.Add(NotebookCell.Markdown(text));
        _cell = null;
    }

    /// <summary>Begins the next code cell; its source is shown on the page.</summary>
    public void Cell(string source)
    {
        _cell = NotebookCell.Code(source);
        _cell.ExecutionCount = ++_count;
        _page.Cells.Add(_cell);
    }

    /// <summary>An HTML cell of the notebook (the kernel's html cells): shown as it is.</summary>
    public void Html(string html) => Add(new NotebookOutput { OutputType = "display_data", Data = new System.Text.Json.Nodes.JsonObject { ["text/html"] = html } });

    /// <summary>The value of a parameter: the command line's, when given, else the notebook's default.</summary>
    /// <exception cref="ArgumentException">The value given is not a valid <typeparamref name="T"/>.</exception>
    public T Parameter<T>(string name, T value)
    {
        _declared.Add(name);
        if (!_overrides.TryGetValue(name, out var text)) return value;
        var inv = CultureInfo.InvariantCulture;
        object? parsed = typeof(T) switch
        {
            var t when t == typeof(string) => text,
            var t when t == typeof(int) => int.TryParse(text, NumberStyles.Integer, inv, out var i) ? i : null,
            var t when t == typeof(long) => long.TryParse(text, NumberStyles.Integer, inv, out var l) ? l : null,
            var t when t == typeof(double) => double.TryParse(text, NumberStyles.Float, inv, out var d) ? d : null,
            var t when t == typeof(float) => float.TryParse(text, NumberStyles.Float, inv, out var f) ? f : null,
            var t when t == typeof(decimal) => decimal.TryParse(text, NumberStyles.Float, inv, out var m) ? m : null,
            var t when t == typeof(bool) => bool.TryParse(text, out var b) ? b : null,
            _ => throw new ArgumentException($"parameter '{name}' has type {typeof(T).Name}, which cannot be set from the command line"),
        };
        return parsed is T typed ? typed : throw new ArgumentException($"parameter '{name}' is a {typeof(T).Name}, and '{text}' is not");
    }

    /// <summary>After the parameters cell: refuses command-line parameters the notebook does not declare.</summary>
    public void EndParameters()
    {
        var unknown = _overrides.Keys.Where(k => !_declared.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"unknown parameter(s) {string.Join(", ", unknown)}: the notebook declares {string.Join(", ", _declared)}");
    }

    /// <summary>The notebook's <c>display(value)</c>: shows the value on the page (as HTML, through the same formatters as the kernel).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Style", "IDE1006:Naming Styles", Justification = "The kernel's own name, so exported cells compile unchanged.")]
    public static DisplayedValue display(object? value)
    {
        var output = new NotebookOutput { OutputType = "display_data", Data = new System.Text.Json.Nodes.JsonObject { ["text/html"] = Display.ToHtml(value) } };
        Current.Add(output);
        return new DisplayedValue(output);
    }

    /// <summary>A displayed value; <see cref="Update"/> replaces it on the page, as in the kernel.</summary>
    public sealed class DisplayedValue(NotebookOutput output)
    {
        /// <summary>Replaces what is shown.</summary>
        public void Update(object? value) => output.Data = new System.Text.Json.Nodes.JsonObject { ["text/html"] = Display.ToHtml(value) };
    }

    private void Add(NotebookOutput output)
    {
        lock (_page)
        {
            if (_cell is null) Cell("");
            _cell!.Outputs.Add(output);
        }
    }

    private void Write(string stream, string text)
    {
        lock (_page)
        {
            if (_cell is null) Cell("");
            if (_cell!.Outputs.Count > 0 && _cell.Outputs[^1] is { OutputType: "stream" } last && last.Name == stream) last.Text += text;
            else _cell.Outputs.Add(NotebookOutput.Stream(stream, text));
        }
    }

    private void Fail(Exception e)
    {
        var lines = e.ToString().Replace("\r", "").Split('\n');
        Add(NotebookOutput.Error(e.GetType().FullName ?? "Exception", e.Message, lines));
        Finish();
    }

    /// <summary>Writes the page (also called when the process exits). Safe to call more than once.</summary>
    public void Finish()
    {
        lock (_page)
        {
            if (_finished) return;
            _finished = true;
            var dir = Path.GetDirectoryName(_htmlPath);
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
            AtomicFile.WriteAllText(_htmlPath, NotebookHtml.ToPage(_page, _title));
        }
        _stdout.WriteLine($"wrote {_htmlPath}");
    }

    /// <summary>Echoes console text and records it in the current cell.</summary>
    private sealed class CellWriter(FileApp app, string stream, TextWriter inner) : TextWriter
    {
        private TextWriter Inner { get; } = inner;
        public override Encoding Encoding => Inner.Encoding;
        public override void Write(char value) { Inner.Write(value); app.Write(stream, value.ToString()); }
        public override void Write(string? value) { Inner.Write(value); if (value is not null) app.Write(stream, value); }
        public override void WriteLine(string? value) { Inner.WriteLine(value); app.Write(stream, (value ?? "") + "\n"); }
        public override void Flush() => Inner.Flush();
    }
}
