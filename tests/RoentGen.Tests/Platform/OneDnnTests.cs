using RoentGen.Platform;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Platform;

/// <summary>oneDNN's cache sizes repaired (or oneDNN capped, or off) on AMD processors, and the convolution gradients that is for.</summary>
public class OneDnnTests
{
    [Fact]
    public void Amd_processors_are_told_apart_by_their_vendor_and_get_the_repair_mode_by_default()
    {
        Assert.True(OneDnn.IsAmd("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"));
        Assert.False(OneDnn.IsAmd("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"));
        Assert.False(OneDnn.IsAmd(""));
        Assert.Equal(OneDnnMode.CacheSizesRepaired, OneDnn.ChooseMode(null, amd: true));
        Assert.Equal(OneDnnMode.CacheSizesRepaired, OneDnn.ChooseMode("Repair", amd: false));
        Assert.Equal(OneDnnMode.AsLibTorchHasIt, OneDnn.ChooseMode("", amd: false));
        Assert.Equal(OneDnnMode.AsLibTorchHasIt, OneDnn.ChooseMode(" On ", amd: true));
        Assert.Equal(OneDnnMode.CappedAtSse41, OneDnn.ChooseMode("sse41", amd: false));
        Assert.Equal(OneDnnMode.Off, OneDnn.ChooseMode("OFF", amd: false));
        var e = Assert.Throws<ArgumentException>(() => OneDnn.ChooseMode("avx2", amd: true));
        Assert.Contains("ROENTGEN_ONEDNN=avx2", e.Message);

        // this process: on an AMD processor that hides its caches, with neither variable set, oneDNN's cache table was
        // repaired (or, failing that, oneDNN is held to SSE4.1), or, if the check still found a wrong convolution, it is off
        if (OneDnnCaches.HiddenByProcessor()
            && Environment.GetEnvironmentVariable(OneDnn.Variable) is null && Environment.GetEnvironmentVariable(OneDnn.IsaVariable) is null)
        {
            Assert.NotNull(OneDnn.Note);
            if (OneDnn.Enabled == false) Assert.Contains("off", OneDnn.Note);
            else if (OneDnn.Mode == OneDnnMode.CappedAtSse41) Assert.Contains("SSE4.1", OneDnn.Note);
            else { Assert.Equal(OneDnnMode.CacheSizesRepaired, OneDnn.Mode); Assert.Contains("cache sizes repaired", OneDnn.Note); }
        }
    }

    [Fact]
    public void The_bogus_cache_table_is_recognised_only_in_its_exact_pattern()
    {
        // Xbyak's Cpu object as dumped from libtorch 2.10 on the AMD EPYC: type (4 words), cores (3), 10 cache sizes,
        // 10 sharing counts, the level count (3), then family and model fields.
        uint[] bogus = [1592850431, 3355283262, 50339854, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 2, 15, 1, 0, 11, 26, 2];
        Assert.Equal(27, OneDnnCaches.BogusLevelIndex(bogus, out int levels));
        Assert.Equal(3, levels);
        // real sizes (48 KB, 1 MB, 32 MB shared by 1, 1, 8) are left alone
        var real = (uint[])bogus.Clone();
        real[7] = 48 * 1024; real[8] = 1024 * 1024; real[9] = 32 * 1024 * 1024; real[19] = 8;
        Assert.Equal(-1, OneDnnCaches.BogusLevelIndex(real, out _));
        // a count that does not match the table, and a table of zero levels (already empty), are not the pattern
        var mismatch = (uint[])bogus.Clone(); mismatch[27] = 2;
        Assert.Equal(-1, OneDnnCaches.BogusLevelIndex(mismatch, out _));
        var empty = (uint[])bogus.Clone(); empty[27] = 0;
        Assert.Equal(-1, OneDnnCaches.BogusLevelIndex(empty, out _));
        Assert.Equal(-1, OneDnnCaches.BogusLevelIndex(bogus.Take(20).ToArray(), out _));
    }

    [SkippableFact]
    public void The_cache_table_symbols_are_found_in_the_loaded_libtorch()
    {
        // the repair reads local symbols of libtorch_cpu.so from its ELF symbol table; a libtorch without them would fall
        // back to the SSE4.1 cap on an AMD processor that hides its caches, several times slower
        Skip.If(TorchNative.LoadedFrom is null, "libtorch was not preloaded by this library");
        string library = Path.Combine(Path.GetDirectoryName(TorchNative.LoadedFrom!)!, "libtorch_cpu.so");
        var symbols = ElfSymbols.Find(library, ["_ZN4dnnl4impl3cpu3x643cpuEv", "_ZZN4dnnl4impl3cpu3x643cpuEvE4cpu_", "_ZN2at13globalContextEv", "dnnl_set_max_cpu_isa", "no_such_symbol_here"]);
        Assert.Equal(4, symbols.Count);
        Assert.True(symbols["_ZZN4dnnl4impl3cpu3x643cpuEvE4cpu_"].Size >= 84, "Xbyak's Cpu object holds two 10-entry tables and a count");
        Assert.False(symbols.ContainsKey("no_such_symbol_here"));
        Assert.Throws<InvalidDataException>(() => ElfSymbols.Find(typeof(OneDnnTests).Assembly.Location, ["x"]));
    }

    [Fact]
    public void This_process_computes_the_convolutions_that_onednn_got_wrong_on_an_amd_epyc_right()
    {
        // The check compares float32 with float64 over shapes that oneDNN's AVX/AVX-512 kernels got wrong there (it
        // returned false for them in a process with ROENTGEN_ONEDNN=on); whatever this process chose must pass it.
        Assert.True(OneDnn.ConvolutionsAreRight(out var wrong), $"{wrong} (oneDNN: {OneDnn.Note ?? "as libtorch has it"})");
    }

    [Fact]
    public void A_small_convolution_gives_the_same_finite_input_gradient_every_time()
    {
        // On an AMD EPYC with oneDNN on, this gradient differed in 186 of 200 identical calls and was not finite in 6
        // (float32); with oneDNN's cache sizes repaired, held to SSE4.1 or off it is repeatable, as on every other machine seen.
        using var scope = NewDisposeScope();
        using var generator = new Generator(seed: 7);
        var weight = randn([8, 8, 3, 3], generator: generator) * 0.2;
        var input = randn([2, 8, 16, 16], generator: generator);
        float[]? first = null;
        for (int i = 0; i < 40; i++)
        {
            var x = input.detach().clone().requires_grad_(true);
            var y = nn.functional.conv2d(x, weight, padding: [1, 1]);
            (y * arange(y.numel()).reshape(y.shape).cos()).sum().backward();
            var g = x.grad!.data<float>().ToArray();
            Assert.All(g, v => Assert.True(float.IsFinite(v)));
            if (first is null) first = g;
            else Assert.True(first.SequenceEqual(g), $"call {i}: the input gradient differs from the first call's (oneDNN: {OneDnn.Note ?? "as libtorch has it"})");
        }
    }

    [SkippableFact]
    public void The_mapped_libtorch_cpu_is_the_one_reached_into_never_another_copy()
    {
        string[] maps =
        [
            "7f00-7f10 r--p 00000000 08:01 11 /opt/other libs/libtorch_cpu.so",
            "7f10-7f20 r-xp 00010000 08:01 11 /opt/other libs/libtorch_cpu.so",
            "7f30-7f40 r--p 00000000 08:01 12 /pkg/runtimes/linux-x64/native/libtorch_cpu.so",
            "7f50-7f60 r--p 00000000 08:01 13 /pkg/runtimes/linux-x64/native/libtorch.so",
            "7f70-7f80 rw-p 00000000 00:00 0 ",
            "7f90-7fa0 r--p 00000000 08:01 14 /old/libtorch_cpu.so (deleted)",
        ];
        Assert.Equal("/pkg/runtimes/linux-x64/native/libtorch_cpu.so", TorchNative.MappedLibrary(maps, "libtorch_cpu.so", "/pkg/runtimes/linux-x64/native"));
        Assert.Equal("/opt/other libs/libtorch_cpu.so", TorchNative.MappedLibrary(maps, "libtorch_cpu.so", "/elsewhere"));
        Assert.Equal("/opt/other libs/libtorch_cpu.so", TorchNative.MappedLibrary(maps, "libtorch_cpu.so", null));
        Assert.Null(TorchNative.MappedLibrary(maps, "libc10.so", null));
        Assert.Null(TorchNative.MappedLibrary(maps[5..], "libtorch_cpu.so", null));
        // In this process: the file the oneDNN repair reached into is mapped, and it is the one beside the preloaded library.
        Skip.If(TorchNative.LoadedFrom is null || !OperatingSystem.IsLinux(), "libtorch was not preloaded by this library");
        var mapped = TorchNative.LibTorchCpu();
        Assert.NotNull(mapped);
        Assert.True(File.Exists(mapped), mapped);
        Assert.Equal("libtorch_cpu.so", Path.GetFileName(mapped));
    }

    [SkippableFact]
    public void The_sse41_cap_is_refused_once_onednn_has_chosen_its_instruction_set()
    {
        // After a convolution that ATen gives to oneDNN (a batch of 2 is enough), oneDNN has read its instruction set: the
        // cap must say so (status non-zero) rather than claim it took effect; an unreadable library is a false with a reason.
        Assert.False(OneDnnCaches.TryCapAtSse41(typeof(OneDnnTests).Assembly.Location, out var bad));
        Assert.Contains("could not read", bad);
        Skip.If(TorchNative.LibTorchCpu() is null, "libtorch_cpu.so is not mapped by this library's loader");
        Skip.If(OneDnn.Mode == OneDnnMode.Off, "oneDNN is off in this process, so it never chose an instruction set");
        using (var scope = NewDisposeScope()) nn.functional.conv2d(ones(2, 8, 16, 16), ones(8, 8, 3, 3)).sum().item<float>();
        Assert.False(OneDnnCaches.TryCapAtSse41(TorchNative.LibTorchCpu()!, out var detail));
        Assert.Contains("already chosen", detail);
    }
}
