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
