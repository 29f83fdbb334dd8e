using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Analysis;
using RoentGen.Data.Datasets;
using RoentGen.Interactive.Notebooks;
using RoentGen.Interop;
using Spectre.Console;

namespace RoentGen.Cli.Commands;

/// <summary>
/// The one error policy of every <c>roentgen</c> verb. Each verb's action runs through <see cref="Run(ParseResult, Func{int})"/>
/// (or its overloads), which turns an exception into one line on standard error and an exit code:
/// <list type="bullet">
/// <item><b>2, a user error</b>: something the user can fix by changing an argument, a file or a folder.
/// <see cref="ArgumentException"/> (bad argument or value), <see cref="FileNotFoundException"/>,
/// <see cref="DirectoryNotFoundException"/>, <see cref="IOException"/> and <see cref="UnauthorizedAccessException"/>
/// (a user path that cannot be read or written), <see cref="InvalidDataException"/>, <see cref="DatasetFormatException"/>,
/// <see cref="StateDictMismatchException"/>, <see cref="RoentGen.Interop.Diffusers.DiffusersWeightsMismatchException"/> and
/// <see cref="JsonException"/> (a malformed or mismatched user file), the
/// notebook errors (<see cref="NotebookFormatException"/>, <see cref="NotebookParameterException"/>,
/// <see cref="NotebookExportException"/>, <see cref="KernelUnavailableException"/>); a <see cref="KeyNotFoundException"/> that the
/// RoentGen library threw itself (a missing column, mask or name that the user asked for); and an
/// <see cref="RoentGen.Platform.RunStateException"/> (the library's run-state checks: a run folder of another config or more
/// steps, an unfinished stage, a check with nothing to check, a diverged loss). Any other InvalidOperationException is a bug.</item>
/// <item><b>1, an internal fault</b>: anything else (a bug, a native libtorch failure, out of memory). One line names
/// the exception and says to run with <c>--verbose</c>; the stack trace is printed only under <c>--verbose</c>.</item>
/// <item><b>130</b>: the run was cancelled (Ctrl+C).</item>
/// </list>
/// A user error never prints a trace. Every message goes through <see cref="Escape"/>, so control characters from file
/// names, CSV headers or dataset names never reach the terminal raw.
/// </summary>
internal static class Cli
{
    /// <summary>Exit code of a user error.</summary>
    public const int UserError = 2;

    /// <summary>Exit code of an internal fault.</summary>
    public const int InternalError = 1;

    /// <summary>Exit code of a cancelled run.</summary>
    public const int Cancelled = 130;

    /// <summary>The global <c>--verbose</c> option (recursive: valid after any verb): prints the trace of an internal fault.</summary>
    public static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "On an internal error, print the full stack trace.",
        Recursive = true,
    };

    /// <summary>Runs a verb's action under the error policy; the action returns its exit code.</summary>
    public static int Run(ParseResult parse, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e)
        {
            return Report(e, IsVerbose(parse), Console.Error);
        }
    }

    /// <summary>Runs a verb's action under the error policy; exit 0 when it returns.</summary>
    public static int Run(ParseResult parse, Action action) => Run(parse, () =>
    {
        action();
        return 0;
    });

    /// <summary>Runs an asynchronous verb's action under the error policy.</summary>
    public static async Task<int> RunAsync(ParseResult parse, Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Report(e, IsVerbose(parse), Console.Error);
        }
    }

    /// <summary>A NAME=DIR option value split into its name (null for a bare DIR) and folder.</summary>
    /// <exception cref="ArgumentException">No folder after the '='; the message names <paramref name="option"/>.</exception>
    public static (string? Name, string Dir) NamedFolder(string spec, string option)
    {
        int eq = spec.IndexOf('=');
        var (name, dir) = eq > 0 ? (spec[..eq].Trim(), spec[(eq + 1)..].Trim()) : (null, spec.Trim());
        if (dir.Length == 0) throw new ArgumentException($"{option} '{spec}' names no folder; expected NAME=DIR");
        return (name, dir);
    }

    /// <summary>
    /// The real IU reports CSV of a <c>--iu-reports</c> option: the given file (which must exist), else the shared
    /// sample's beside the repository (null when not run from a clone; the caller skips it when absent).
    /// </summary>
    /// <exception cref="FileNotFoundException">The given file does not exist.</exception>
    public static string? IuReportsCsv(FileInfo? given)
    {
        if (given is not null)
            return given.Exists ? given.FullName : throw new FileNotFoundException($"--iu-reports: no such file: {given.FullName}", given.FullName);
        return QuickstartCommand.RepositoryRoot() is { } root
            ? Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "real-cxr-sample", "iu_xray_reports_sample.csv"))
            : null;
    }

    /// <summary>Writes a result with <paramref name="save"/> to a <c>--json</c> file when one was given, and says so.</summary>
    public static void SaveJson(FileInfo? file, Action<string> save)
    {
        if (file is null) return;
        save(file.FullName);
        Console.WriteLine($"wrote {Escape(file.FullName)}");
    }

    /// <summary>A user error raised by a verb itself: one line, exit 2 (for checks that need no exception).</summary>
    public static int Fail(string message)
    {
        Console.Error.WriteLine($"error: {Escape(message)}");
        return UserError;
    }

    /// <summary>Applies a <c>--threads</c> value (null: libtorch's default), after the library checks it (1 to <see cref="RoentGen.Platform.TorchThreads.Max"/>).</summary>
    /// <exception cref="ArgumentException">The value is out of range.</exception>
    public static void SetThreads(int? threads)
    {
        if (threads is not int t) return;
        try { RoentGen.Platform.TorchThreads.Set(t); }
        catch (ArgumentException e) { throw new ArgumentException($"--threads: {e.Message}", e); }
    }

    /// <summary>The <c>--allow-outside-root</c> flag of every verb that reads a labels.csv (one description everywhere).</summary>
    public static Option<bool> AllowOutsideRootOption() =>
        new("--allow-outside-root") { Description = "Accept image and mask paths in a labels.csv that lead outside the dataset's folder." };

    private static bool IsVerbose(ParseResult parse) => parse.GetResult(Verbose) is not null && parse.GetValue(Verbose);

    /// <summary>Prints the one line for an exception (and its trace for an internal fault under verbose); returns the exit code.</summary>
    public static int Report(Exception e, bool verbose, TextWriter error)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerExceptions[0];
        if (e is OperationCanceledException)
        {
            error.WriteLine("error: cancelled");
            return Cancelled;
        }
        if (IsUserError(e))
        {
            error.WriteLine($"error: {Escape(UserMessage(e))}");
            return UserError;
        }
        error.WriteLine($"internal error ({e.GetType().FullName}): {Escape(e.Message)}; "
                        + (verbose ? "trace follows" : "run with --verbose for the trace"));
        if (verbose) error.WriteLine(e.ToString());
        return InternalError;
    }

    // The message without .NET's "(Parameter 'x')" and "Actual value was y." suffixes (the messages name both already).
    private static string UserMessage(Exception e)
    {
        if (e is not ArgumentException { ParamName: { } name } a) return e.Message;
        var cut = a.Message.IndexOf($" (Parameter '{name}')", StringComparison.Ordinal);
        return cut > 0 ? a.Message[..cut] : a.Message;
    }

    /// <summary>Whether an exception is a user error (exit 2) under the policy above, rather than an internal fault (exit 1).</summary>
    public static bool IsUserError(Exception e) => e switch
    {
        ArgumentException or FileNotFoundException or DirectoryNotFoundException or IOException or UnauthorizedAccessException => true,
        InvalidDataException or DatasetFormatException or StateDictMismatchException or JsonException => true,
        RoentGen.Interop.Diffusers.DiffusersWeightsMismatchException => true,
        NotebookFormatException or NotebookParameterException or NotebookExportException or KernelUnavailableException => true,
        KeyNotFoundException => ThrownBy(e) is { } t && t.StartsWith("RoentGen.", StringComparison.Ordinal),
        RoentGen.Platform.RunStateException => true,
        _ => false,
    };

    // The full name of the type whose code threw e (the type that declares a lambda or local function, not its closure).
    private static string? ThrownBy(Exception e)
    {
        var type = new System.Diagnostics.StackTrace(e, fNeedFileInfo: false).GetFrame(0)?.GetMethod()?.DeclaringType ?? e.TargetSite?.DeclaringType;
        while (type is { DeclaringType: not null } && type.Name.StartsWith('<')) type = type.DeclaringType;
        return type?.FullName;
    }

    /// <summary>
    /// The text as one printable line, by the library's one escape (<see cref="RoentGen.Platform.TextEscape"/>: control
    /// characters and bidirectional overrides become <c>\n</c>, <c>\e</c>, <c>\u{202E}</c>...), so nothing echoed from a file
    /// name, CSV header or dataset name can move the cursor, recolour the terminal or split a message over lines.
    /// </summary>
    public static string Escape(string? text) => RoentGen.Platform.TextEscape.Escape(text);

    /// <summary>Parses a --precision value (fp32, bf16, auto) and warns on standard error where an explicit bf16 will not pay here.</summary>
    public static RoentGen.Platform.Precision ParsePrecision(string text)
    {
        var precision = RoentGen.Platform.Precisions.Parse(text);
        if (RoentGen.Platform.Precisions.BFloat16Warning(precision) is { } warning) Console.Error.WriteLine($"warning: {warning}");
        return precision;
    }

    /// <summary>Prints a data frame as a console table (numbers to 4 significant digits).</summary>
    public static void Print(DataFrame frame)
    {
        var table = new Table();
        foreach (var c in frame.Columns) table.AddColumn(Markup.Escape(Escape(c.Name)));
        for (long r = 0; r < frame.Rows.Count; r++)
            table.AddRow(frame.Columns.Select(c => Markup.Escape(Escape(c[r] switch
            {
                double d => d.ToString("G4", CultureInfo.InvariantCulture),
                float f => f.ToString("G4", CultureInfo.InvariantCulture),
                var v => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
            }))).ToArray());
        Out.Write(table);
    }

    /// <summary>
    /// A Spectre console over the <see cref="Console.Out"/> of this moment: AnsiConsole's shared console keeps the writer
    /// it first saw, so output redirected later (in-process callers, tests) would miss tables and markup written to it.
    /// </summary>
    public static IAnsiConsole Out => AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
}
