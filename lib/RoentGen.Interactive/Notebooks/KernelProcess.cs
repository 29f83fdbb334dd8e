using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RoentGen.Interactive.Notebooks;

/// <summary>The kernel process could not be found, started, or talked to; the message says which and what to do.</summary>
public sealed class KernelUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The kernel process died while a command ran: the cell called <c>Environment.Exit</c>, overflowed its stack, threw on a
/// background thread, or the process was killed. The message says so, with the exit code and the reason when known.
/// </summary>
public sealed class KernelDiedException : Exception
{
    /// <summary>Creates the exception from what is known about the death.</summary>
    /// <param name="exitCode">The kernel's exit code as text ("unknown" when it could not be read).</param>
    /// <param name="reason">Why it died, from its standard error (null when it did not say).</param>
    /// <param name="standardError">The tail of the kernel's standard error.</param>
    public KernelDiedException(string exitCode, string? reason, string standardError)
        : base($"the kernel died during the cell (exit code {exitCode}{(reason is null ? "" : $": {reason}")}); the cells after it were not run")
    {
        ExitCode = exitCode;
        Reason = reason;
        StandardError = standardError;
    }

    /// <summary>The kernel's exit code as text.</summary>
    public string ExitCode { get; }

    /// <summary>Why it died when its standard error says so (a stack overflow, an unhandled exception), else null.</summary>
    public string? Reason { get; }

    /// <summary>The tail of what the kernel wrote on standard error.</summary>
    public string StandardError { get; }
}

/// <summary>One event of the kernel about a submitted command, as the kernel wrote it.</summary>
/// <param name="EventType">The .NET Interactive event type, e.g. <c>StandardOutputValueProduced</c>.</param>
/// <param name="Event">The event's own fields (formattedValues, valueId, message, ...).</param>
public sealed record KernelEvent(string EventType, JsonObject Event);

/// <summary>
/// The real .NET Interactive kernel (the dotnet-interactive tool, the same program that VS Code's Polyglot Notebooks
/// and Jupyter's .NET kernels run) in a child process, driven over its stdio protocol: one JSON command envelope per
/// line on standard input, one JSON event envelope per line on standard output.
/// </summary>
/// <remarks>
/// Running the tool rather than hosting a kernel in this process is the point: magic commands, <c>#r</c> and
/// <c>#r "nuget:"</c>, assembly loading, formatters and <c>display()</c> behave exactly as in VS Code, and the host's
/// own assemblies cannot leak into the notebook. A runaway cell is stopped by killing the process.
/// </remarks>
public sealed class KernelProcess : IAsyncDisposable, IDisposable
{
    /// <summary>The dotnet-interactive version this project pins and tests (dotnet-tools.json at the repository root).</summary>
    public const string PinnedVersion = "1.0.712001";

    /// <summary>An environment variable naming the kernel to run: a Microsoft.DotNet.Interactive.App.dll or a dotnet-interactive executable.</summary>
    public const string KernelPathVariable = "ROENTGEN_DOTNET_INTERACTIVE";

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly object _gate = new();
    private readonly Dictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private readonly Task _reader;
    private int _next;

    private sealed class Pending(Action<KernelEvent> onEvent)
    {
        public Action<KernelEvent> OnEvent { get; } = onEvent;
        public TaskCompletionSource<KernelEvent> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private KernelProcess(Process process)
    {
        _process = process;
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) { if (_stderr.Length < 64_000) _stderr.AppendLine(e.Data); } };
        _process.BeginErrorReadLine();
        _reader = Task.Run(ReadEventsAsync);
    }

    /// <summary>The kernel's process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>Whether the kernel process has exited (crashed, or was killed after a timeout).</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>What the kernel wrote on standard error so far (its own diagnostics, not the cells' output).</summary>
    public string StandardError { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>
    /// Where the kernel program is: <see cref="KernelPathVariable"/> if set; else the pinned tool in the NuGet package
    /// folder, where <c>dotnet tool restore</c> (run by the build of lib/RoentGen.Interactive) puts it; else
    /// <c>dotnet-interactive</c> on the PATH. The command is the program and its leading arguments.
    /// </summary>
    /// <exception cref="KernelUnavailableException">No kernel was found; the message says how to get one.</exception>
    public static IReadOnlyList<string> FindKernelCommand()
    {
        if (Environment.GetEnvironmentVariable(KernelPathVariable) is { Length: > 0 } configured)
        {
            if (!File.Exists(configured))
                throw new KernelUnavailableException($"{KernelPathVariable} names {configured}, which does not exist");
            return configured.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? [DotnetHost(), configured] : [configured];
        }
        // `dotnet tool restore` puts local tools in a NuGet packages folder: NUGET_PACKAGES when it was set then, else
        // ~/.nuget/packages (it keeps using the first place it restored to), so look in both.
        var roots = new[] { Environment.GetEnvironmentVariable("NUGET_PACKAGES"), Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages") }
            .Where(r => !string.IsNullOrEmpty(r)).Distinct().ToList();
        foreach (var root in roots)
        {
            var tools = Path.Combine(root!, "microsoft.dotnet-interactive", PinnedVersion, "tools");
            if (Directory.Exists(tools)
                && Directory.EnumerateFiles(tools, "Microsoft.DotNet.Interactive.App.dll", SearchOption.AllDirectories).FirstOrDefault() is { } app)
                return [DotnetHost(), app];
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, OperatingSystem.IsWindows() ? "dotnet-interactive.exe" : "dotnet-interactive");
            if (File.Exists(candidate)) return [candidate];
        }
        throw new KernelUnavailableException(
            $"the .NET Interactive kernel (dotnet-interactive {PinnedVersion}) was not found under {string.Join(" or ", roots.Select(r => Path.Combine(r!, "microsoft.dotnet-interactive", PinnedVersion)))} or on the PATH. " +
            "Run `dotnet build` (or `dotnet tool restore`) at the repository root, which installs the pinned tool, " +
            $"or set {KernelPathVariable} to a Microsoft.DotNet.Interactive.App.dll.");
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>Starts a fresh kernel whose working directory (relative paths in cells) is <paramref name="workingDirectory"/>.</summary>
    /// <exception cref="KernelUnavailableException">The kernel could not be found or started.</exception>
    /// <param name="workingDirectory">The kernel's current directory.</param>
    /// <param name="command">The kernel program and its leading arguments; null finds the pinned tool.</param>
    /// <param name="environment">Variables set (or overridden) in the kernel's environment.</param>
    public static KernelProcess Start(string workingDirectory, IReadOnlyList<string>? command = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        if (!Directory.Exists(workingDirectory)) throw new DirectoryNotFoundException($"working directory for the kernel not found: {workingDirectory}");
        command ??= FindKernelCommand();
        var info = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = Utf8,
            StandardOutputEncoding = Utf8,
            StandardErrorEncoding = Utf8,
            UseShellExecute = false,
        };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        foreach (var a in new[] { "stdio", "--default-kernel", "csharp" }) info.ArgumentList.Add(a);
        info.Environment["DOTNET_INTERACTIVE_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_INTERACTIVE_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        try
        {
            var process = Process.Start(info) ?? throw new KernelUnavailableException($"could not start the kernel: {string.Join(" ", command)}");
            return new KernelProcess(process);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new KernelUnavailableException($"could not start the kernel ({string.Join(" ", command)}): {e.Message}", e);
        }
    }

    /// <summary>
    /// Submits code to a kernel (csharp, fsharp, html, ...) and returns the command's final event
    /// (<c>CommandSucceeded</c> or <c>CommandFailed</c>); every event produced on the way goes to <paramref name="onEvent"/>.
    /// </summary>
    /// <exception cref="TimeoutException">The command did not finish in time; the kernel has been killed.</exception>
    /// <exception cref="KernelDiedException">The kernel exited before the command finished.</exception>
    /// <exception cref="KernelUnavailableException">The kernel was not running when the command was sent.</exception>
    public async Task<KernelEvent> SubmitCodeAsync(string code, string kernelName, Action<KernelEvent> onEvent,
        TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var token = $"roentgen-{Interlocked.Increment(ref _next)}";
        var pending = new Pending(onEvent);
        lock (_gate) _pending[token] = pending;
        var envelope = new JsonObject
        {
            ["token"] = token,
            ["commandType"] = "SubmitCode",
            ["command"] = new JsonObject { ["code"] = code, ["targetKernelName"] = kernelName },
        };
        try
        {
            await _process.StandardInput.WriteLineAsync(envelope.ToJsonString().AsMemory(), cancellationToken).ConfigureAwait(false);
            await _process.StandardInput.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw new KernelUnavailableException($"the kernel is not running (exit code {ExitCodeText()}): {LastError()}", e);
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var limit = timeout is { } t ? Task.Delay(t, cts.Token) : Task.Delay(Timeout.Infinite, cts.Token);
        var finished = await Task.WhenAny(pending.Done.Task, limit).ConfigureAwait(false);
        cts.Cancel();
        lock (_gate) _pending.Remove(token);
        if (finished == pending.Done.Task) return await pending.Done.Task.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        Kill();
        throw new TimeoutException($"the cell did not finish within {timeout!.Value.TotalSeconds:0.###} s; the kernel process was killed to stop it");
    }

    private async Task ReadEventsAsync()
    {
        try
        {
            while (await _process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                if (!line.StartsWith('{')) continue;   // the tool's banner and other plain text
                JsonObject? envelope;
                try { envelope = JsonNode.Parse(line) as JsonObject; }
                catch (JsonException) { continue; }
                if (envelope?["eventType"]?.GetValue<string>() is not { } type || envelope["command"] is not JsonObject command) continue;
                var token = command["token"]?.GetValue<string>() ?? "";
                Pending? pending;
                bool root;
                lock (_gate)
                {
                    // Child commands (e.g. "roentgen-3.1", a #r the kernel splits off) report under the root token.
                    var rootToken = token.Split('.')[0];
                    _pending.TryGetValue(rootToken, out pending);
                    root = rootToken == token;
                }
                if (pending is null) continue;
                var e = new KernelEvent(type, envelope["event"] as JsonObject ?? new JsonObject());
                if (root && type is "CommandSucceeded" or "CommandFailed") pending.Done.TrySetResult(e);
                else pending.OnEvent(e);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The process went away; pending commands are failed below.
        }
        List<Pending> left;
        lock (_gate) left = _pending.Values.ToList();
        try { await _process.WaitForExitAsync().ConfigureAwait(false); } catch (InvalidOperationException) { }
        foreach (var p in left)
            p.Done.TrySetException(new KernelDiedException(ExitCodeText(), DeathReason(StandardError), LastError()));
    }

    /// <summary>
    /// Why the kernel died, when its standard error says so: a stack overflow, or the unhandled exception (e.g. one thrown
    /// on a background thread) that .NET reports as "Unhandled exception. TYPE: message"; null when it does not say.
    /// </summary>
    internal static string? DeathReason(string standardError)
    {
        var lines = standardError.Replace("\r", "").Split('\n');
        if (lines.Any(l => l.Contains("Stack overflow", StringComparison.OrdinalIgnoreCase)))
            return "stack overflow";
        foreach (var line in lines)
        {
            const string unhandled = "Unhandled exception. ";
            var at = line.IndexOf(unhandled, StringComparison.Ordinal);
            if (at < 0) continue;
            var what = line[(at + unhandled.Length)..].Trim();
            return "unhandled exception " + (what.Length > 300 ? what[..300] + "..." : what);
        }
        return null;
    }

    private string ExitCodeText()
    {
        try { return _process.HasExited ? _process.ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture) : "still running"; }
        catch (InvalidOperationException) { return "unknown"; }
    }

    private string LastError()
    {
        var err = StandardError.Trim();
        if (err.Length == 0) return "it wrote nothing on standard error";
        return err.Length > 2000 ? "..." + err[^2000..] : err;
    }

    /// <summary>Kills the kernel and everything it started.</summary>
    public void Kill()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try { _process.StandardInput.Close(); } catch (IOException) { }
        Kill();
        try { await _reader.ConfigureAwait(false); } catch (Exception e) when (e is KernelUnavailableException or KernelDiedException) { }
        _process.Dispose();
    }

    /// <inheritdoc />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
