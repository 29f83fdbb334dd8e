using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace RoentGen.Platform;

/// <summary>What <see cref="OneDnnCaches.Repair"/> did.</summary>
public enum CacheRepairOutcome
{
    /// <summary>The processor reports its caches (or is not an AMD one): nothing to repair.</summary>
    NotNeeded,
    /// <summary>oneDNN's cache table was bogus and is now empty, so oneDNN uses its own default sizes.</summary>
    Repaired,
    /// <summary>The table is bogus but could not be reached (symbols missing, an unknown layout): the caller must cap oneDNN.</summary>
    Unavailable,
}

/// <summary>
/// Repairs the cache sizes that libtorch's oneDNN reads on AMD processors whose hypervisor hides the cache-topology leaf.
/// </summary>
/// <remarks>
/// <para>The cause of the wrong convolutions of libtorch 2.10's oneDNN (3.7.1) on the AMD EPYC virtual machines this project
/// runs on, found 2026-12-06: the machine's CPUID reports the extended leaf 0x8000001D (AMD's cache topology) as present,
/// but every sub-leaf reads zero (and the <c>topoext</c> flag is clear; <c>lscpu</c> lists no caches). oneDNN's copy of
/// Xbyak then fills its table with three cache levels of (0+1)(0+1)(0+1)(0+1) = <b>1 byte</b> each, and the convolution
/// kernels' blocking, sized from those caches, reads memory it never wrote: wrong results that differ from call to call.
/// oneDNN has its own defaults for a processor that reports no caches (32 KB, 512 KB and 1 MB per core), used when the
/// table has zero levels; setting the level count of the table to zero before the first oneDNN primitive is made gives
/// those defaults, and every convolution shape that failed before was right (<see cref="OneDnn.ConvolutionsAreRight"/>).</para>
/// <para>The table is the function-local static <c>cpu_</c> of <c>dnnl::impl::cpu::x64::cpu()</c>, a local symbol of
/// libtorch_cpu.so: it is found in the library's ELF symbol table, its load address from an exported symbol. The write is
/// made only where the table has exactly the bogus pattern (n levels of 1 byte, each shared by 1 core), so a processor
/// that reports its caches, or a libtorch whose layout differs, is left alone.</para>
/// </remarks>
public static class OneDnnCaches
{
    private const string CpuFunction = "_ZN4dnnl4impl3cpu3x643cpuEv";
    private const string CpuObject = "_ZZN4dnnl4impl3cpu3x643cpuEvE4cpu_";
    private const string Exported = "_ZN2at13globalContextEv";
    private const string SetMaxIsa = "dnnl_set_max_cpu_isa";
    private const int MaxCacheLevels = 10;

    /// <summary>Whether this processor is AMD and its CPUID leaf 0x8000001D exists but is empty (the case that misleads oneDNN).</summary>
    public static bool HiddenByProcessor()
    {
        if (!X86Base.IsSupported) return false;
        var (_, b, c, d) = X86Base.CpuId(0, 0);
        bool amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;   // "AuthenticAMD"
        if (!amd) return false;
        var (maxExtended, _, _, _) = X86Base.CpuId(unchecked((int)0x80000000), 0);
        if ((uint)maxExtended < 0x8000001D) return false;
        var (leaf, _, _, _) = X86Base.CpuId(unchecked((int)0x8000001D), 0);
        return (leaf & 0x1F) == 0;   // cache type 0 in sub-leaf 0: "no caches"
    }

    /// <summary>
    /// Where <see cref="HiddenByProcessor"/>, empties oneDNN's bogus cache table in the loaded libtorch_cpu.so; call before
    /// the first oneDNN primitive is made. Never throws; <paramref name="detail"/> says what was found.
    /// </summary>
    /// <param name="libTorchCpu">Path of the libtorch_cpu.so the process has loaded.</param>
    /// <param name="detail">What was found or done, for the doctor note.</param>
    public static CacheRepairOutcome Repair(string libTorchCpu, out string detail)
    {
        if (!HiddenByProcessor()) { detail = "the processor reports its caches"; return CacheRepairOutcome.NotNeeded; }
        try
        {
            var symbols = ElfSymbols.Find(libTorchCpu, [CpuFunction, CpuObject, Exported]);
            if (!symbols.TryGetValue(CpuFunction, out var function) || !symbols.TryGetValue(CpuObject, out var table) || !symbols.TryGetValue(Exported, out var exported))
            { detail = "oneDNN's cpu() or libtorch's globalContext is not in libtorch_cpu.so's symbol table"; return CacheRepairOutcome.Unavailable; }
            if (!NativeLibrary.TryLoad(libTorchCpu, out var handle) || !NativeLibrary.TryGetExport(handle, Exported, out var exportedAt))
            { detail = "libtorch_cpu.so is not loaded"; return CacheRepairOutcome.Unavailable; }
            long loadBase = (long)exportedAt - (long)exported.Value;
            IntPtr at;
            unsafe { at = ((delegate* unmanaged<IntPtr>)(loadBase + (long)function.Value))(); }   // builds the table on first call
            if (at != (IntPtr)(loadBase + (long)table.Value) || table.Size < 4 * (2 * MaxCacheLevels + 1))
            { detail = $"oneDNN's cache table is not where its symbol says ({at:x})"; return CacheRepairOutcome.Unavailable; }
            var words = new uint[table.Size / 4];
            for (int i = 0; i < words.Length; i++) words[i] = (uint)Marshal.ReadInt32(at, 4 * i);
            int index = BogusLevelIndex(words, out int levels);
            if (index < 0) { detail = "oneDNN's cache table does not have the 1-byte pattern (an unknown layout)"; return CacheRepairOutcome.Unavailable; }
            Marshal.WriteInt32(at, 4 * index, 0);
            detail = $"the processor reports no caches (CPUID 0x8000001D empty) and oneDNN read {levels} levels of 1 byte; emptied its table so it uses its defaults";
            return CacheRepairOutcome.Repaired;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException)
        {
            detail = $"could not read libtorch_cpu.so: {e.Message}";
            return CacheRepairOutcome.Unavailable;
        }
    }

    /// <summary>
    /// The index of the level count in Xbyak's Cpu object whose table holds the bogus pattern (sizes, then cores sharing,
    /// then the count: n sizes of 1, n sharers of 1, zeros after them), or -1; the index must be unique.
    /// </summary>
    public static int BogusLevelIndex(IReadOnlyList<uint> words, out int levels)
    {
        ArgumentNullException.ThrowIfNull(words);
        int found = -1; levels = 0;
        for (int k = 2 * MaxCacheLevels; k < words.Count; k++)
        {
            uint n = words[k];
            if (n < 1 || n > MaxCacheLevels) continue;
            bool match = true;
            for (int i = 0; i < MaxCacheLevels && match; i++)
            {
                uint expected = i < n ? 1u : 0u;
                match = words[k - 2 * MaxCacheLevels + i] == expected && words[k - MaxCacheLevels + i] == expected;
            }
            if (!match) continue;
            if (found >= 0) { levels = 0; return -1; }
            found = k; levels = (int)n;
        }
        return found;
    }

    /// <summary>
    /// Caps oneDNN at SSE4.1 through its own <c>dnnl_set_max_cpu_isa</c> (a local symbol of libtorch_cpu.so), which takes
    /// effect only before oneDNN first asks for its instruction set; false where that failed.
    /// </summary>
    public static bool TryCapAtSse41(string libTorchCpu, out string detail)
    {
        try
        {
            var symbols = ElfSymbols.Find(libTorchCpu, [SetMaxIsa, Exported]);
            if (!symbols.TryGetValue(SetMaxIsa, out var set) || !symbols.TryGetValue(Exported, out var exported)
                || !NativeLibrary.TryLoad(libTorchCpu, out var handle) || !NativeLibrary.TryGetExport(handle, Exported, out var exportedAt))
            { detail = "dnnl_set_max_cpu_isa not found"; return false; }
            long loadBase = (long)exportedAt - (long)exported.Value;
            int status;
            unsafe { status = ((delegate* unmanaged<int, int>)(loadBase + (long)set.Value))(1); }   // dnnl_cpu_isa_sse41 = 0x1
            detail = status == 0 ? "held to SSE4.1" : $"dnnl_set_max_cpu_isa refused (status {status}: oneDNN had already chosen)";
            return status == 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException)
        {
            detail = $"could not read libtorch_cpu.so: {e.Message}";
            return false;
        }
    }
}

/// <summary>Looks names up in an ELF64 file's full symbol table (.symtab, local symbols included), memory-mapped.</summary>
internal static class ElfSymbols
{
    /// <summary>A symbol's value (its address relative to the load base) and size.</summary>
    internal readonly record struct Symbol(ulong Value, ulong Size);

    /// <summary>The symbols of <paramref name="names"/> that the file's .symtab holds (the first of each name).</summary>
    /// <exception cref="InvalidDataException">Not a little-endian ELF64 file, or a section lies outside it.</exception>
    internal static unsafe Dictionary<string, Symbol> Find(string path, IReadOnlyCollection<string> names)
    {
        var result = new Dictionary<string, Symbol>(StringComparer.Ordinal);
        using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        try
        {
            start += view.PointerOffset;
            long length = (long)view.SafeMemoryMappedViewHandle.ByteLength - view.PointerOffset;
            if (length < 64 || start[0] != 0x7F || start[1] != (byte)'E' || start[2] != (byte)'L' || start[3] != (byte)'F' || start[4] != 2 || start[5] != 1)
                throw new InvalidDataException($"{path}: not a little-endian ELF64 file");
            ulong sectionsAt = *(ulong*)(start + 0x28);
            int entrySize = *(ushort*)(start + 0x3A), count = *(ushort*)(start + 0x3C);
            if (entrySize < 64 || (long)sectionsAt + (long)entrySize * count > length) throw new InvalidDataException($"{path}: section headers outside the file");
            for (int s = 0; s < count; s++)
            {
                byte* header = start + (long)sectionsAt + (long)s * entrySize;
                if (*(uint*)(header + 4) != 2) continue;   // SHT_SYMTAB
                ulong symOffset = *(ulong*)(header + 24), symSize = *(ulong*)(header + 32), symEntry = *(ulong*)(header + 56);
                uint link = *(uint*)(header + 40);
                if (link >= count || symEntry < 24) throw new InvalidDataException($"{path}: a bad .symtab header");
                byte* strHeader = start + (long)sectionsAt + (long)link * entrySize;
                ulong strOffset = *(ulong*)(strHeader + 24), strSize = *(ulong*)(strHeader + 32);
                if (symOffset + symSize > (ulong)length || strOffset + strSize > (ulong)length || strSize > int.MaxValue)
                    throw new InvalidDataException($"{path}: the symbol table lies outside the file");
                var strings = new ReadOnlySpan<byte>(start + (long)strOffset, (int)strSize);
                // Each name's offset in the string table (a whole, NUL-delimited entry), then the symbol that points at it.
                var wanted = new Dictionary<uint, string>();
                foreach (var name in names)
                {
                    var needle = System.Text.Encoding.ASCII.GetBytes("\0" + name + "\0");
                    int from = 0;
                    while (from < strings.Length)
                    {
                        int hit = strings[from..].IndexOf(needle);
                        if (hit < 0) break;
                        wanted.TryAdd((uint)(from + hit + 1), name);
                        from += hit + 1;
                    }
                }
                if (wanted.Count == 0) return result;
                for (ulong o = 0; o + symEntry <= symSize; o += symEntry)
                {
                    byte* sym = start + (long)symOffset + (long)o;
                    if (wanted.TryGetValue(*(uint*)sym, out var name) && *(ulong*)(sym + 8) != 0)
                        result.TryAdd(name, new Symbol(*(ulong*)(sym + 8), *(ulong*)(sym + 16)));
                }
                return result;
            }
            return result;
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }
}
