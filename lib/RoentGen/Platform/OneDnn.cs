using System.Runtime.InteropServices;

namespace RoentGen.Platform;

/// <summary>
/// Turns libtorch's oneDNN (MKL-DNN) kernels off on AMD processors, so convolutions run on ATen's own implementation
/// (NNPACK, which ATen would try next, is turned off with it).
/// On an AMD EPYC (libtorch 2.10 through TorchSharp 0.107, measured 2026-12-06) oneDNN's convolutions gave wrong and
/// run-to-run different input gradients, sometimes NaN, for channel counts that are not multiples of 16, in float32 and
/// in bfloat16: an 8 -> 8 3x3 convolution's input gradient differed in 186 of 200 identical calls and was not finite in
/// 6; the quick VAE's float32 loss went NaN at step 10; the tiny UNet's gradients were NaN in some identical runs. Held
/// to AVX2 (<c>ONEDNN_MAX_CPU_ISA</c>) oneDNN still got 2 of 144 such float32 shapes and 28 of 144 bfloat16 ones wrong;
/// with oneDNN off every one of 300 random shapes was right, in both types. The same kernels were right on an Intel Xeon,
/// so oneDNN stays on elsewhere.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 has no switch for it, so this calls libtorch's exported <c>at::globalContext()</c> and
/// <c>at::Context::setUserEnabledMkldnn(bool)</c> (the function behind PyTorch's <c>torch.backends.mkldnn.enabled</c>).
/// Set <c>ROENTGEN_ONEDNN=on</c> to keep oneDNN, or <c>off</c> to turn it off on any processor.
/// </remarks>
public static class OneDnn
{
    /// <summary>The environment variable that overrides the choice: on or off.</summary>
    public const string Variable = "ROENTGEN_ONEDNN";

    /// <summary>What <see cref="Apply"/> did and why, for <c>doctor</c>; null when oneDNN was left as libtorch has it.</summary>
    public static string? Note { get; private set; }

    /// <summary>Whether a /proc/cpuinfo text names an AMD processor (vendor AuthenticAMD).</summary>
    public static bool IsAmd(string cpuinfo)
    {
        ArgumentNullException.ThrowIfNull(cpuinfo);
        return cpuinfo.Split('\n').Any(l => l.StartsWith("vendor_id", StringComparison.Ordinal) && l.Contains("AuthenticAMD", StringComparison.Ordinal));
    }

    /// <summary>Whether libtorch currently uses oneDNN where it can (null: could not be asked).</summary>
    public static bool? Enabled
    {
        get
        {
            var api = Api();
            return api is null ? null : api.Value.Get(api.Value.Context()) != 0;
        }
    }

    /// <summary>
    /// Turns oneDNN off on AMD processors (or as <see cref="Variable"/> says), once libtorch is loaded; never throws.
    /// </summary>
    /// <param name="libTorchSharp">The loaded libLibTorchSharp.so; libtorch_cpu.so is looked for beside it.</param>
    public static void Apply(string libTorchSharp)
    {
        try
        {
            string? wish = Environment.GetEnvironmentVariable(Variable)?.Trim().ToLowerInvariant();
            bool off = wish switch
            {
                "on" => false,
                "off" => true,
                _ => File.Exists("/proc/cpuinfo") && IsAmd(File.ReadAllText("/proc/cpuinfo")),
            };
            if (!off) { if (wish == "on") Note = $"oneDNN on ({Variable}=on)"; return; }
            _libTorchCpu = Path.Combine(Path.GetDirectoryName(libTorchSharp)!, "libtorch_cpu.so");
            var api = Api();
            if (api is null) { Note = $"could not reach libtorch's oneDNN switch in {_libTorchCpu}"; return; }
            api.Value.Set(api.Value.Context(), false);
            // Without oneDNN, ATen tries NNPACK for convolutions, and where NNPACK cannot start ("Unsupported hardware"
            // on the AMD EPYC) it prints a warning at every try, about 13 lines a second while training: off too.
            api.Value.SetNnpack?.Invoke(api.Value.Context(), false);
            Note = wish == "off"
                ? $"oneDNN off ({Variable}=off)"
                : $"oneDNN off: its convolutions gave wrong gradients on AMD processors ({Variable}=on keeps it)";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            Note = $"could not turn oneDNN off: {e.Message}";
        }
    }

    private static string? _libTorchCpu;

    private delegate IntPtr GlobalContext();
    private delegate void SetFlag(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool value);
    private delegate byte GetFlag(IntPtr context);

    private static (GlobalContext Context, SetFlag Set, GetFlag Get, SetFlag? SetNnpack)? Api()
    {
        var path = _libTorchCpu ?? (TorchNative.LoadedFrom is { } loaded ? Path.Combine(Path.GetDirectoryName(loaded)!, "libtorch_cpu.so") : null);
        if (path is null || !NativeLibrary.TryLoad(path, out var lib)) return null;
        if (!NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out var context)
            || !NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledMkldnnEb", out var set)
            || !NativeLibrary.TryGetExport(lib, "_ZNK2at7Context17userEnabledMkldnnEv", out var get))
            return null;
        SetFlag? nnpack = NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledNNPACKEb", out var n) ? Marshal.GetDelegateForFunctionPointer<SetFlag>(n) : null;
        return (Marshal.GetDelegateForFunctionPointer<GlobalContext>(context), Marshal.GetDelegateForFunctionPointer<SetFlag>(set),
            Marshal.GetDelegateForFunctionPointer<GetFlag>(get), nnpack);
    }
}
