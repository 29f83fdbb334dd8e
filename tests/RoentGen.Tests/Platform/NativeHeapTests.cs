using System.Runtime.InteropServices;
using RoentGen.Platform;

namespace RoentGen.Tests.Platform;

// Reads resident memory and changes the allocator's settings of the whole process, so it runs alone.
[Collection(ProcessStateCollection.Name)]
public class NativeHeapTests
{
    [Fact]
    public void The_users_own_glibc_setting_wins_over_the_librarys()
    {
        Assert.Equal("MALLOC_TRIM_THRESHOLD_", Memory.UserSetThresholds(n => n == "MALLOC_TRIM_THRESHOLD_" ? "1000000" : null));
        Assert.Equal("GLIBC_TUNABLES", Memory.UserSetThresholds(n => n == "GLIBC_TUNABLES" ? "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=4096" : null));
        Assert.Equal("MALLOC_MMAP_THRESHOLD_", Memory.UserSetThresholds(n => n == "MALLOC_MMAP_THRESHOLD_" ? "1000000" : null));
        Assert.Equal("GLIBC_TUNABLES", Memory.UserSetThresholds(n => n == "GLIBC_TUNABLES" ? "glibc.malloc.mmap_threshold=65536" : null));
        Assert.Null(Memory.UserSetThresholds(n => n == "GLIBC_TUNABLES" ? "glibc.malloc.arena_max=2" : null));
        Assert.Null(Memory.UserSetThresholds(_ => null));
        try
        {
            Assert.False(Memory.KeepFreedHeap(n => n == "MALLOC_TRIM_THRESHOLD_" ? "1000000" : null));
            Assert.Contains("MALLOC_TRIM_THRESHOLD_", Memory.HeapNote);
        }
        finally { Memory.KeepFreedHeap(_ => null); }
    }

    // 24 MiB freed in 96 KiB blocks (below glibc's first mmap threshold, so they come from the heap) must stay resident
    // with the library's threshold, and must go back to the system with glibc's default of 128 KiB: the second half
    // shows that the first could fail.
    [SkippableFact]
    public void Freed_heap_memory_stays_resident_for_the_next_step_and_glibcs_default_would_return_it()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && Memory.KeepFreedHeap(_ => null), "needs glibc's mallopt");
        try
        {
            double kept = ResidentDropAfterFreeingMb();
            Assert.True(mallopt(-1, 128 << 10) == 1, "mallopt refused glibc's default threshold");
            double returned = ResidentDropAfterFreeingMb();
            Assert.True(kept < 8, $"with the library's threshold {kept:F1} MiB went back to the system");
            Assert.True(returned > 16, $"with glibc's default threshold only {returned:F1} MiB went back: the check above proves nothing");
        }
        finally { Memory.KeepFreedHeap(_ => null); }
    }

    private static double ResidentDropAfterFreeingMb()
    {
        const int block = 96 << 10, count = 256;
        var blocks = new IntPtr[count];
        for (int i = 0; i < count; i++)
        {
            blocks[i] = Marshal.AllocHGlobal(block);
            for (int b = 0; b < block; b += 4096) Marshal.WriteByte(blocks[i], b, 1);   // touch every page
        }
        double before = Memory.CurrentRssMb();
        for (int i = count - 1; i >= 0; i--) Marshal.FreeHGlobal(blocks[i]);
        return before - Memory.CurrentRssMb();
    }

    [DllImport("libc")]
    private static extern int mallopt(int param, int value);
}
