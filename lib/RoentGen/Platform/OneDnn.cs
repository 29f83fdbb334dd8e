using System.Runtime.InteropServices;
using TorchSharp;

namespace RoentGen.Platform;

/// <summary>
/// Keeps libtorch's oneDNN (MKL-DNN) convolutions right on AMD processors: where the processor hides its cache sizes, the
/// bogus sizes oneDNN read are repaired (<see cref="OneDnnCaches"/>) and oneDNN keeps every instruction set; where that
/// cannot be done it is capped at SSE4.1; where a check still finds a wrong convolution it is turned off. NNPACK, which
/// ATen tries where oneDNN does not take a convolution and which cannot start there, is turned off.
/// </summary>
/// <remarks>
/// <para>On an AMD EPYC virtual machine (libtorch 2.10 through TorchSharp 0.107, measured 2026-12-06) oneDNN's AVX, AVX2
/// and AVX-512 convolution kernels gave wrong and run-to-run different input gradients, sometimes NaN, in float32 and
/// bfloat16: an 8 -> 8 3x3 convolution's input gradient differed in 186 of 200 identical calls; the quick VAE's float32
/// loss went NaN at step 10. Against a float64 reference, random shapes were wrong in 54 of 120 (float32, AVX-512, one
/// thread), 41 of 120 (held to AVX2), about 25 of 120 (held to AVX) and none held to SSE4.1. The cause: the hypervisor
/// leaves CPUID's cache-topology leaf empty, and oneDNN's Xbyak reads it as three caches of 1 byte, from which the
/// kernels size their blocking (<see cref="OneDnnCaches"/>). Emptying that table, so that oneDNN uses its default sizes,
/// made every failing shape right at full speed: the 50 convolutions of the peer UNet's training step (forward and
/// backward) ran in 321-327 ms in float32 and 197-203 ms in bfloat16, against 1,417 and 9,345 ms held to SSE4.1, and
/// bfloat16 matmuls (oneDNN's AVX-512 BF16 kernels) at 475-688 GFLOP/s instead of 1-2.</para>
/// <para>The SSE4.1 cap, the fallback, must be set before oneDNN first chooses its instruction set: <see cref="Apply"/>
/// calls oneDNN's own <c>dnnl_set_max_cpu_isa</c> right after libtorch loads; the explicit <c>sse41</c> mode puts
/// <c>ONEDNN_MAX_CPU_ISA</c> into the native environment (libc <c>setenv</c>) before the load. TorchSharp 0.107 has no
/// switch for oneDNN itself, so turning it off calls libtorch's exported <c>at::globalContext()</c> and
/// <c>at::Context::setUserEnabledMkldnn(bool)</c> (the function behind PyTorch's <c>torch.backends.mkldnn.enabled</c>).</para>
/// <para><c>ROENTGEN_ONEDNN</c>: <c>repair</c> (the default on AMD) as above, <c>on</c> leaves oneDNN as libtorch has it
/// (no repair, no cap, no check), <c>sse41</c> caps it on any processor, <c>off</c> turns it off on any processor.</para>
/// </remarks>
public static class OneDnn
{
    /// <summary>The environment variable that overrides the choice: repair, on, sse41 or off.</summary>
    public const string Variable = "ROENTGEN_ONEDNN";

    /// <summary>oneDNN's own variable for the highest instruction set its kernels may use.</summary>
    public const string IsaVariable = "ONEDNN_MAX_CPU_ISA";

    /// <summary>What was done and why, for <c>doctor</c>; null when oneDNN was left as libtorch has it.</summary>
    public static string? Note { get; private set; }

    /// <summary>What <see cref="Prepare"/> chose for this process.</summary>
    public static OneDnnMode Mode { get; private set; } = OneDnnMode.AsLibTorchHasIt;

    /// <summary>Whether a /proc/cpuinfo text names an AMD processor (vendor AuthenticAMD).</summary>
    public static bool IsAmd(string cpuinfo)
    {
        ArgumentNullException.ThrowIfNull(cpuinfo);
        return cpuinfo.Split('\n').Any(l => l.StartsWith("vendor_id", StringComparison.Ordinal) && l.Contains("AuthenticAMD", StringComparison.Ordinal));
    }

    /// <summary>The mode a value of <see cref="Variable"/> asks for on a processor (null or empty: the default for it).</summary>
    /// <exception cref="ArgumentException">The value is none of repair, on, sse41, off.</exception>
    public static OneDnnMode ChooseMode(string? wish, bool amd) => wish?.Trim().ToLowerInvariant() switch
    {
        null or "" => amd ? OneDnnMode.CacheSizesRepaired : OneDnnMode.AsLibTorchHasIt,
        "repair" => OneDnnMode.CacheSizesRepaired,
        "on" => OneDnnMode.AsLibTorchHasIt,
        "sse41" => OneDnnMode.CappedAtSse41,
        "off" => OneDnnMode.Off,
        _ => throw new ArgumentException($"{Variable}={wish} is not understood: use repair, on, sse41 or off"),
    };

    /// <summary>Whether libtorch currently uses oneDNN where it can (null: could not be asked).</summary>
    public static bool? Enabled => Switch.Value is { } api ? api.Get(api.Context()) != 0 : null;

    /// <summary>Why <see cref="Mode"/> was chosen, for the note (empty: libtorch's default, nothing to say).</summary>
    private static string _reason = "";

    /// <summary>The user's own ONEDNN_MAX_CPU_ISA, kept (and named in the note) in the repair mode.</summary>
    private static string? _userIsa;

    /// <summary>
    /// Chooses the mode and, for the SSE4.1 cap, puts it in the process environment; call before libtorch loads. Never throws.
    /// </summary>
    public static void Prepare()
    {
        try
        {
            string? wish = Environment.GetEnvironmentVariable(Variable);
            bool amd = File.Exists("/proc/cpuinfo") && IsAmd(File.ReadAllText("/proc/cpuinfo"));
            string amdReason = $"its AVX/AVX-512 convolutions were wrong on AMD processors that hide their caches; {Variable}=on leaves it as libtorch has it";
            try
            {
                Mode = ChooseMode(wish, amd);
                _reason = !string.IsNullOrWhiteSpace(wish) ? $"{Variable}={wish.Trim()}" : amd ? amdReason : "";
            }
            catch (ArgumentException e)
            {
                Mode = ChooseMode(null, amd);
                _reason = amd ? amdReason : "";
                AddNote($"{e.Message}; the processor's default is used");
            }
            string? own = Environment.GetEnvironmentVariable(IsaVariable);
            if (Mode == OneDnnMode.CacheSizesRepaired && !string.IsNullOrEmpty(own)) _userIsa = own;
            if (Mode != OneDnnMode.CappedAtSse41) return;
            if (!string.IsNullOrEmpty(own)) { Mode = OneDnnMode.AsLibTorchHasIt; _reason = ""; AddNote($"oneDNN held to {own} ({IsaVariable} set by the user)"); }
            else if (SetEnv(IsaVariable, "SSE41", 0) != 0) { Mode = OneDnnMode.Off; _reason = $"could not set {IsaVariable}"; }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
        {
            Mode = OneDnnMode.Off;
            _reason = $"could not cap it: {e.Message}";
        }
    }

    /// <summary>
    /// After libtorch has loaded and before any other libtorch call: repairs oneDNN's cache sizes or caps it (the repair
    /// mode), checks the convolutions (<see cref="ConvolutionsAreRight"/>) and turns oneDNN off where they are wrong, or
    /// where the mode is <see cref="OneDnnMode.Off"/>. Never throws.
    /// </summary>
    public static void Apply()
    {
        try
        {
            switch (Mode)
            {
                case OneDnnMode.AsLibTorchHasIt:
                    if (_reason.Length > 0) AddNote($"oneDNN on ({_reason})");
                    return;
                case OneDnnMode.CappedAtSse41:
                    // Where oneDNN does not take a convolution (float64, as in the check below, some small float32 ones), ATen
                    // tries NNPACK, which on the AMD EPYC cannot start and prints "Unsupported hardware" at every try.
                    if (Switch.Value is { } api) api.SetNnpack?.Invoke(api.Context(), false);
                    if (ConvolutionsAreRight(out string? wrong)) AddNote($"oneDNN held to SSE4.1 ({_reason})");
                    else TurnOff($"oneDNN off: held to SSE4.1 it still got {wrong} wrong");
                    return;
                case OneDnnMode.CacheSizesRepaired:
                    RepairOrCap();
                    return;
                default:
                    TurnOff($"oneDNN off ({_reason})");
                    return;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException or TypeInitializationException or ExternalException)
        {
            AddNote($"could not check or turn off oneDNN: {e.Message}");
        }
    }

    // The repair mode: empty oneDNN's bogus cache table (or, where that cannot be done, cap oneDNN at SSE4.1 before it
    // chooses its instruction set), then check the convolutions that were wrong, and turn oneDNN off if any still is.
    private static void RepairOrCap()
    {
        if (Switch.Value is { } api) api.SetNnpack?.Invoke(api.Context(), false);
        if (TorchNative.LibTorchCpu() is not { } library) { TurnOff("oneDNN off: libtorch_cpu.so is not mapped in this process, so its cache sizes could not be repaired nor could it be capped"); return; }
        var outcome = OneDnnCaches.Repair(library, out string detail);
        string done = outcome == CacheRepairOutcome.Repaired ? $"oneDNN's cache sizes repaired: {detail}" : "";
        string userIsa = _userIsa is null ? "" : $"; held to {_userIsa} ({IsaVariable} set by the user)";
        if (outcome == CacheRepairOutcome.Unavailable && _userIsa is null)
        {
            if (!OneDnnCaches.TryCapAtSse41(library, out string cap)) { TurnOff($"oneDNN off: its cache sizes could not be repaired ({detail}) nor could it be capped ({cap})"); return; }
            Mode = OneDnnMode.CappedAtSse41;
            done = $"oneDNN held to SSE4.1: its cache sizes could not be repaired ({detail})";
        }
        if (!ConvolutionsAreRight(out string? wrong)) { TurnOff($"oneDNN off: {(done.Length > 0 ? done + ", but it" : "it")} still got {wrong} wrong{userIsa}"); return; }
        if (done.Length > 0 || userIsa.Length > 0) AddNote($"{(done.Length > 0 ? done : "oneDNN on, its convolutions checked")}{userIsa}");
    }

    private static void AddNote(string text) => Note = Note is null ? text : $"{Note}. {text}";

    /// <summary>
    /// Runs float32 convolutions of shapes that oneDNN got wrong on the AMD EPYC (three calls each, forward and both
    /// gradients) and compares them with float64 (which oneDNN does not compute); false, with the first wrong shape, where
    /// any differs by more than 1e-4 of its scale or any two calls differ.
    /// </summary>
    public static bool ConvolutionsAreRight(out string? wrong)
    {
        wrong = null;
        using var scope = torch.NewDisposeScope();
        using var generator = new torch.Generator(seed: 11);
        foreach (var (batch, cin, cout, size, kernel, stride) in new[] { (2, 8, 8, 16, 3, 1), (16, 3, 4, 16, 3, 1), (8, 40, 20, 16, 3, 1), (8, 48, 128, 8, 3, 2), (4, 33, 4, 16, 3, 1), (16, 32, 1, 16, 3, 1) })
        {
            var x = torch.randn([batch, cin, size, size], generator: generator);
            var w = torch.randn([cout, cin, kernel, kernel], generator: generator) / Math.Sqrt(cin * kernel * kernel);
            var reference = Gradients(x.to(torch.ScalarType.Float64), w.to(torch.ScalarType.Float64), stride);
            float[]? first = null;
            for (int call = 0; call < 3; call++)
            {
                var got = Gradients(x, w, stride);
                for (int i = 0; i < 3; i++)
                {
                    double scale = reference[i].abs().max().item<double>() + 1e-12;
                    double error = (got[i].to(torch.ScalarType.Float64) - reference[i]).abs().max().item<double>();
                    if (!(error <= 1e-4 * scale)) { wrong = $"a {cin} -> {cout} {kernel}x{kernel} convolution (stride {stride}, {batch} x {size} px)"; return false; }
                }
                var flat = got[1].contiguous().data<float>().ToArray();
                if (first is null) first = flat;
                else if (!first.SequenceEqual(flat)) { wrong = $"a {cin} -> {cout} convolution's input gradient (differs from call to call)"; return false; }
            }
        }
        return true;

        static torch.Tensor[] Gradients(torch.Tensor input, torch.Tensor weight, int stride)
        {
            var x = input.detach().requires_grad_(true);
            var w = weight.detach().requires_grad_(true);
            var y = torch.nn.functional.conv2d(x, w, strides: [stride, stride], padding: [1, 1]);
            (y * torch.arange(y.numel(), dtype: y.dtype).reshape(y.shape).cos()).sum().backward();
            return [y.detach(), x.grad!, w.grad!];
        }
    }

    private static void TurnOff(string note)
    {
        if (Switch.Value is not { } api) { AddNote("could not reach libtorch's oneDNN switch in libtorch_cpu.so"); return; }
        api.Set(api.Context(), false);
        // Without oneDNN, ATen tries NNPACK for convolutions, and where NNPACK cannot start ("Unsupported hardware" on the
        // AMD EPYC) it prints a warning at every try, about 13 lines a second while training: off too.
        api.SetNnpack?.Invoke(api.Context(), false);
        AddNote(note);
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv(string name, string value, int overwrite);

    private delegate IntPtr GlobalContext();
    private delegate void SetFlag(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool value);
    private delegate byte GetFlag(IntPtr context);

    private sealed record SwitchApi(GlobalContext Context, SetFlag Set, GetFlag Get, SetFlag? SetNnpack);

    /// <summary>libtorch's oneDNN switch, resolved once from the libtorch_cpu.so this process has mapped (never another copy).</summary>
    private static readonly Lazy<SwitchApi?> Switch = new(() =>
    {
        if (TorchNative.LoadedFrom is null || TorchNative.LibTorchCpu() is not { } path) return null;
        if (!NativeLibrary.TryLoad(path, out var lib)) return null;
        if (!NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out var context)
            || !NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledMkldnnEb", out var set)
            || !NativeLibrary.TryGetExport(lib, "_ZNK2at7Context17userEnabledMkldnnEv", out var get))
            return null;
        SetFlag? nnpack = NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledNNPACKEb", out var n) ? Marshal.GetDelegateForFunctionPointer<SetFlag>(n) : null;
        return new SwitchApi(Marshal.GetDelegateForFunctionPointer<GlobalContext>(context), Marshal.GetDelegateForFunctionPointer<SetFlag>(set),
            Marshal.GetDelegateForFunctionPointer<GetFlag>(get), nnpack);
    });
}

/// <summary>How this process runs libtorch's oneDNN kernels.</summary>
public enum OneDnnMode
{
    /// <summary>As libtorch has it: on, every instruction set the processor has.</summary>
    AsLibTorchHasIt,
    /// <summary>On, held to SSE4.1.</summary>
    CappedAtSse41,
    /// <summary>On, every instruction set, with oneDNN's cache sizes repaired where the processor hides them (the default on AMD processors).</summary>
    CacheSizesRepaired,
    /// <summary>Off: ATen's own convolutions.</summary>
    Off,
}
