using System.Buffers.Binary;
using System.Text;
using RoentGen.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Interop;

public class SafeTensorsTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("safetensors");
    public void Dispose() => Directory.Delete(_dir, true);

    private sealed record TinyConfig(int Hidden, string Name, double[] Betas);

    public static TheoryData<ScalarType> AllDTypes() => new()
    {
        ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Int64, ScalarType.Int32,
        ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Float64, ScalarType.Bool,
    };

    private static Tensor Sample(ScalarType type, long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        return type switch
        {
            ScalarType.Bool => (arange(n) % 3 == 0).reshape(shape),
            ScalarType.Int64 => (arange(n, dtype: ScalarType.Int64) * 123456789012345L - 999).reshape(shape),
            ScalarType.Byte or ScalarType.Int8 or ScalarType.Int16 or ScalarType.Int32 => (arange(n, dtype: ScalarType.Int64) * 37 - 50).to(type).reshape(shape),
            _ => (randn(shape, dtype: ScalarType.Float64) * 1000).to(type),
        };
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void Round_trip_keeps_every_bit(ScalarType type)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["a.weight"] = Sample(type, [3, 5]),
            ["b.scalar"] = Sample(type, []),
            ["c.empty"] = Sample(type, [0, 4]),
            ["d.transposed"] = Sample(type, [4, 6]).t(), // not contiguous
        };
        var path = Path.Combine(_dir, $"{type}.safetensors");
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["note"] = "hello" });
        using var file = SafeTensors.Load(path);
        Assert.Equal("hello", file.Metadata["note"]);
        Assert.Equal(tensors.Keys.Order(), file.Tensors.Keys.Order());
        foreach (var (k, t) in tensors)
        {
            var r = file.Tensors[k];
            Assert.Equal(type, r.dtype);
            Assert.Equal(t.shape, r.shape);
            Assert.Equal(t.contiguous().bytes.ToArray(), r.bytes.ToArray());
        }
    }

    [Fact]
    public void Float_special_values_keep_their_bits()
    {
        using var scope = NewDisposeScope();
        var t = tensor(new[] { float.NaN, -0f, float.PositiveInfinity, float.Epsilon, 1e-40f });
        var path = Path.Combine(_dir, "special.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = t });
        using var file = SafeTensors.Load(path);
        Assert.Equal(t.bytes.ToArray(), file.Tensors["x"].bytes.ToArray());
    }

    [Fact]
    public void Config_is_stored_in_metadata_and_beside_the_file()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(_dir, "with-config.safetensors");
        var config = new TinyConfig(8, "tiny", [0.9, 0.999]);
        SafeTensors.SaveWithConfig(path, new Dictionary<string, Tensor> { ["w"] = ones(2) }, config);
        var (_, meta) = SafeTensors.ReadHeader(path);
        Assert.Contains("\"Hidden\": 8", meta["config"]);
        Assert.True(File.Exists(Path.Combine(_dir, "config.json")));
        var back = SafeTensors.ReadConfig<TinyConfig>(path)!;
        Assert.Equal(config with { Betas = back.Betas }, back);
        Assert.Equal(config.Betas, back.Betas);
    }

    [Fact]
    public void Header_is_padded_to_8_bytes_and_follows_the_spec_layout()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(_dir, "layout.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = tensor(new[] { 1f, 2f }) });
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        var json = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.Contains("\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", json);
        Assert.Equal(8 + n + 8, bytes.Length);
        Assert.Equal(2f, BitConverter.ToSingle(bytes, (int)(8 + n + 4)));
    }

    // ---- malformed files, crafted by hand ----

    private string Craft(string name, string header, int dataBytes, ulong? claimedHeaderLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, claimedHeaderLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static InvalidDataException Refused(string path, string? key, string expectInMessage)
    {
        var e = Assert.Throws<InvalidDataException>(() => { using var f = SafeTensors.Load(path); });
        Assert.Contains(path, e.Message);
        if (key is not null) Assert.Contains($"'{key}'", e.Message);
        Assert.Contains(expectInMessage, e.Message);
        return e;
    }

    [Fact]
    public void Header_length_beyond_the_file_is_refused()
    {
        var p = Craft("beyond.safetensors", "{}", 0, claimedHeaderLength: 1000);
        Refused(p, null, "beyond the end of the file");
    }

    [Fact]
    public void Header_claiming_2_pow_60_bytes_is_refused_without_allocating()
    {
        var p = Craft("huge.safetensors", "{}", 16, claimedHeaderLength: 1UL << 60);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Refused(p, null, "above the limit");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
    }

    [Fact]
    public void Tensor_claiming_2_pow_60_bytes_is_refused_without_allocating()
    {
        var p = Craft("huge-tensor.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[288230376151711744],\"data_offsets\":[0,1152921504606846976]}}", 8);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Refused(p, "x", "beyond the data buffer");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
    }

    [Fact]
    public void Invalid_json_is_refused() => Refused(Craft("json.safetensors", "{\"x\": {nope", 0), null, "not valid JSON");

    [Fact]
    public void Unknown_dtype_is_refused() =>
        Refused(Craft("dtype.safetensors", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2), "w", "unknown or unsupported dtype 'Q7'");

    [Fact]
    public void Offsets_out_of_range_are_refused() =>
        Refused(Craft("range.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "w", "beyond the data buffer of 8 bytes");

    [Fact]
    public void Negative_offsets_are_refused() =>
        Refused(Craft("negative.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4), "w", "negative");

    [Fact]
    public void End_before_begin_is_refused() =>
        Refused(Craft("reversed.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4), "w", "before begin");

    [Fact]
    public void Overlapping_tensors_are_refused() =>
        Refused(Craft("overlap.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "b", "overlap tensor 'a'");

    [Fact]
    public void Size_not_matching_dtype_and_shape_is_refused() =>
        Refused(Craft("size.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "w", "needs 12 bytes");

    [Fact]
    public void Holes_in_the_buffer_are_refused() =>
        Refused(Craft("hole.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20), "b", "hole of 4 bytes");

    [Fact]
    public void Trailing_unindexed_bytes_are_refused() =>
        Refused(Craft("trailing.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12), "a", "data buffer holds 12");

    [Fact]
    public void Overflowing_shape_is_refused() =>
        Refused(Craft("overflow.safetensors", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8), "a", "overflows");

    [Fact]
    public void Non_string_metadata_is_refused() =>
        Refused(Craft("meta.safetensors", "{\"__metadata__\":{\"step\":5}}", 0), null, "expected a string");

    [Fact]
    public void Too_short_file_is_refused() => Refused(Craft("short.safetensors", "", 0, 0) is var p ? TruncateTo(p, 5) : "", null, "fewer than the 8-byte");

    private static string TruncateTo(string path, int length)
    {
        File.WriteAllBytes(path, new byte[length]);
        return path;
    }
}
