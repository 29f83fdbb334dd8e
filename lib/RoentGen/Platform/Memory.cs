using System.Diagnostics;
using System.Runtime.InteropServices;

namespace RoentGen.Platform;

/// <summary>Resident memory of this process, read from /proc on Linux (the process's working set elsewhere).</summary>
public static class Memory
{
    /// <summary>Peak resident set size in MiB (VmHWM), since the process started or the last <see cref="ResetPeakRss"/>.</summary>
    public static double PeakRssMb() => ReadStatusMb("VmHWM:") ?? WorkingSet(peak: true);

    /// <summary>Current resident set size in MiB (VmRSS).</summary>
    public static double CurrentRssMb() => ReadStatusMb("VmRSS:") ?? WorkingSet(peak: false);

    /// <summary>
    /// Resets the peak to the current resident size (Linux: writing 5 to /proc/self/clear_refs), so that a later
    /// <see cref="PeakRssMb"/> measures one stretch of work. Returns false where that is not possible.
    /// </summary>
    public static bool ResetPeakRss()
    {
        try
        {
            if (!File.Exists("/proc/self/clear_refs")) return false;
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Hands freed native heap memory back to the operating system (glibc's malloc_trim), so that a following
    /// <see cref="ResetPeakRss"/> and <see cref="PeakRssMb"/> see what a stretch of work needs rather than what an
    /// earlier one left cached. Returns false where glibc is not there.
    /// </summary>
    public static bool TrimNativeHeap()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            MallocTrim(0);
            return true;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>
    /// How much free memory glibc may keep at the top of a heap before it hands it back by itself, and the size from
    /// which it maps a block on its own instead of taking it from a heap: 256 MiB each. glibc's trim threshold starts at
    /// 128 KiB and only grows with freed mmap'ed blocks, so a training step that frees its activations gives most of them
    /// back, and the next step faults every page in again: 7,000-14,000 minor page faults per step of the quick LDM,
    /// 25-35 % of its step time on a virtual machine (s15, diag faults.cs). With both at 64 MiB or more the faults fall
    /// to 100-300 a step. Both must be set: setting either stops glibc from adjusting the other, and a mmap threshold
    /// held at its first 128 KiB maps and unmaps every activation (150,000 faults a step). Explicit trims
    /// (<see cref="TrimNativeHeap"/>) still return everything.
    /// </summary>
    public const int HeapThresholdBytes = 256 << 20;

    /// <summary>The mmap threshold glibc versions older than 2.35 accept at most (half their 64 MiB heap).</summary>
    private const int OldGlibcMaxMmapThreshold = 32 << 20;

    /// <summary>What <see cref="KeepFreedHeap()"/> did, for <c>doctor</c>: null before it ran.</summary>
    public static string? HeapNote { get; private set; }

    /// <summary>
    /// Sets glibc's trim and mmap thresholds (mallopt M_TRIM_THRESHOLD, M_MMAP_THRESHOLD) to
    /// <see cref="HeapThresholdBytes"/>, unless the user set either through glibc's own environment
    /// (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES): theirs wins. <c>ROENTGEN_NATIVE_HEAP=glibc</c>
    /// leaves glibc's own adaptive defaults (for comparing the two; any MALLOC_* variable would instead fix the
    /// thresholds at its value). Returns true when it set them.
    /// </summary>
    /// <exception cref="ArgumentException">ROENTGEN_NATIVE_HEAP holds something other than "glibc" or "keep".</exception>
    public static bool KeepFreedHeap() => KeepFreedHeap(Environment.GetEnvironmentVariable);

    /// <summary><see cref="KeepFreedHeap()"/> with the environment read through <paramref name="getEnv"/> (for tests).</summary>
    public static bool KeepFreedHeap(Func<string, string?> getEnv)
    {
        ArgumentNullException.ThrowIfNull(getEnv);
        if (!OperatingSystem.IsLinux()) { HeapNote = "not Linux: the allocator's defaults"; return false; }
        switch (getEnv(HeapVariable)?.Trim().ToLowerInvariant())
        {
            case null or "" or "keep": break;
            case "glibc": HeapNote = $"{HeapVariable}=glibc: glibc's adaptive defaults"; return false;
            case var other:
                throw new ArgumentException($"{HeapVariable}={other}: expected \"keep\" (the default: freed native memory stays for the next step) or \"glibc\" (glibc's own defaults)");
        }
        if (UserSetThresholds(getEnv) is { } source) { HeapNote = $"thresholds from {source}"; return false; }
        try
        {
            int mmap = MallOpt(MMmapThreshold, HeapThresholdBytes) == 1 ? HeapThresholdBytes
                : MallOpt(MMmapThreshold, OldGlibcMaxMmapThreshold) == 1 ? OldGlibcMaxMmapThreshold : 0;
            if (mmap == 0) { HeapNote = "mallopt refused the mmap threshold: glibc's defaults"; return false; }
            bool ok = MallOpt(MTrimThreshold, HeapThresholdBytes) == 1;
            HeapNote = ok ? $"trim threshold {HeapThresholdBytes >> 20} MiB, mmap threshold {mmap >> 20} MiB"
                : $"mmap threshold {mmap >> 20} MiB; mallopt refused the trim threshold";
            return ok;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            HeapNote = "no glibc mallopt: the allocator's defaults";
            return false;
        }
    }

    /// <summary>The environment variable that picks the native heap's policy: "keep" (default) or "glibc".</summary>
    public const string HeapVariable = "ROENTGEN_NATIVE_HEAP";

    /// <summary>The environment variable through which the user set glibc's trim or mmap threshold, or null when none did.</summary>
    public static string? UserSetThresholds(Func<string, string?> getEnv)
    {
        ArgumentNullException.ThrowIfNull(getEnv);
        foreach (var name in new[] { "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_" })
            if (!string.IsNullOrEmpty(getEnv(name))) return name;
        if (getEnv("GLIBC_TUNABLES") is { } t
            && (t.Contains("malloc.trim_threshold", StringComparison.Ordinal) || t.Contains("malloc.mmap_threshold", StringComparison.Ordinal)))
            return "GLIBC_TUNABLES";
        return null;
    }

    private const int MTrimThreshold = -1, MMmapThreshold = -3;   // glibc malloc.h: M_TRIM_THRESHOLD, M_MMAP_THRESHOLD

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int param, int value);

    private static double? ReadStatusMb(string key)
    {
        try
        {
            if (!File.Exists("/proc/self/status")) return null;
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
            return line is null ? null : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static double WorkingSet(bool peak)
    {
        using var p = Process.GetCurrentProcess();
        return (peak ? p.PeakWorkingSet64 : p.WorkingSet64) / 1048576.0;
    }
}
