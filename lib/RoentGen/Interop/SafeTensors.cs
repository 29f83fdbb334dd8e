using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using RoentGen.Platform;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Interop;

/// <summary>
/// Errors for safetensors files that break the format. <see cref="InvalidDataException"/> is sealed, so the
/// errors are plain InvalidDataExceptions whose message names the file and the tensor key, and whose
/// <see cref="Exception.Data"/> carries them under "file" and "key".
/// </summary>
public static class SafeTensorsError
{
    /// <summary>Creates the error: "file: invalid safetensors file, tensor 'key': problem".</summary>
    public static InvalidDataException Create(string fileName, string? tensorKey, string problem)
    {
        var e = new InvalidDataException($"{fileName}: invalid safetensors file{(tensorKey is null ? "" : $", tensor '{tensorKey}'")}: {problem}");
        e.Data["file"] = fileName;
        if (tensorKey is not null) e.Data["key"] = tensorKey;
        return e;
    }
}

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The tensor's key.</param>
/// <param name="DType">The safetensors dtype name (F32, BF16, ...).</param>
/// <param name="Shape">The shape.</param>
/// <param name="Begin">Start of its bytes, relative to the data buffer.</param>
/// <param name="End">End (exclusive) of its bytes, relative to the data buffer.</param>
public sealed record SafeTensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of bytes.</summary>
    public long ByteCount => End - Begin;
}

/// <summary>The tensors and metadata read from a safetensors file. Disposing it disposes the tensors.</summary>
public sealed class SafeTensorsFile : IDisposable
{
    internal SafeTensorsFile(Dictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors; Metadata = metadata;
    }

    /// <summary>Name → tensor (CPU), in file order.</summary>
    public Dictionary<string, Tensor> Tensors { get; }
    /// <summary>The <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
        Tensors.Clear();
    }
}

/// <summary>
/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}</c>),
/// then the tensors' bytes, little-endian, C order. Reading validates the whole header before allocating
/// any tensor: sizes beyond the file or the cap, bad JSON, unknown dtypes, offsets out of range, overlapping,
/// leaving holes, or not matching dtype size x shape are refused with a <see cref="InvalidDataException"/> naming the file and key.
/// </summary>
public static class SafeTensors
{
    /// <summary>The largest JSON header accepted (100 MB, the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The metadata key under which <see cref="SaveWithConfig{TConfig}"/> stores the config record as JSON.</summary>
    public const string ConfigMetadataKey = "config";

    private static readonly (string Name, ScalarType Type, int Size)[] DTypes =
    [
        ("F64", ScalarType.Float64, 8), ("F32", ScalarType.Float32, 4), ("F16", ScalarType.Float16, 2),
        ("BF16", ScalarType.BFloat16, 2), ("I64", ScalarType.Int64, 8), ("I32", ScalarType.Int32, 4),
        ("I16", ScalarType.Int16, 2), ("I8", ScalarType.Int8, 1), ("U8", ScalarType.Byte, 1), ("BOOL", ScalarType.Bool, 1),
    ];

    /// <summary>JSON options for config records: indented, camelCase-insensitive on read.</summary>
    public static JsonSerializerOptions ConfigJsonOptions { get; } = new() { WriteIndented = true, PropertyNameCaseInsensitive = true };

    /// <summary>The safetensors dtype name of a TorchSharp scalar type.</summary>
    /// <exception cref="NotSupportedException">The type has no safetensors name here (e.g. complex).</exception>
    public static string DTypeName(ScalarType type)
    {
        foreach (var d in DTypes) if (d.Type == type) return d.Name;
        throw new NotSupportedException($"dtype {type} cannot be stored in safetensors by this library (supported: {string.Join(", ", DTypes.Select(d => d.Type))})");
    }

    /// <summary>Writes tensors (and optional string metadata) to a safetensors file, atomically. Keys are written in ordinal order.</summary>
    /// <exception cref="ArgumentException">A key is empty or "__metadata__".</exception>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.Write(path, s => Write(s, tensors, metadata));

    /// <summary>Writes tensors, with the config record as JSON in the metadata under "config", and the same JSON as config.json beside the file.</summary>
    public static void SaveWithConfig<TConfig>(string path, IReadOnlyDictionary<string, Tensor> tensors, TConfig config, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var json = JsonSerializer.Serialize(config, ConfigJsonOptions);
        var meta = metadata is null ? new Dictionary<string, string>() : new Dictionary<string, string>(metadata);
        meta[ConfigMetadataKey] = json;
        Save(path, tensors, meta);
        AtomicFile.WriteAllText(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "config.json"), json);
    }

    /// <summary>Writes tensors in safetensors format to a stream.</summary>
    public static void Write(Stream stream, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();
        var header = new MemoryStream();
        long offset = 0;
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (var name in names)
            {
                if (string.IsNullOrEmpty(name) || name == "__metadata__") throw new ArgumentException($"invalid tensor name '{name}'", nameof(tensors));
                var t = tensors[name];
                long bytes = t.numel() * t.ElementSize;
                w.WriteStartObject(name);
                w.WriteString("dtype", DTypeName(t.dtype));
                w.WriteStartArray("shape");
                foreach (var d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 bytes, so the data buffer is aligned.
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        stream.Write(len);
        stream.Write(header.GetBuffer(), 0, (int)header.Length);
        foreach (var name in names)
        {
            using var scope = NewDisposeScope();
            var t = tensors[name].detach().cpu().contiguous();
            if (t.numel() == 0) continue;
            stream.Write(t.bytes);
        }
    }

    /// <summary>Reads a safetensors file (validating first); tensors are on the CPU.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file breaks the format.</exception>
    public static SafeTensorsFile Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: {path}", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return Load(fs, path);
    }

    /// <summary>Reads safetensors from a seekable stream (validating first).</summary>
    /// <param name="stream">A readable, seekable stream positioned at the start of the file.</param>
    /// <param name="name">A name for error messages.</param>
    public static SafeTensorsFile Load(Stream stream, string name) => Load(stream, name, null);

    /// <summary>
    /// Reads only the tensors whose names <paramref name="include"/> accepts (the whole header is validated first), so that
    /// a large file can be read part by part; tensors are on the CPU.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file breaks the format.</exception>
    public static SafeTensorsFile Load(string path, Func<string, bool> include)
    {
        ArgumentNullException.ThrowIfNull(include);
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: {path}", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return Load(fs, path, include);
    }

    private static SafeTensorsFile Load(Stream stream, string name, Func<string, bool>? include)
    {
        var (all, metadata, dataStart) = ReadHeader(stream, name);
        var infos = include is null ? all : all.Where(i => include(i.Name)).ToList();
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            foreach (var info in infos.OrderBy(i => i.Begin))
            {
                var type = DTypes.First(d => d.Name == info.DType).Type;
                var t = empty(info.Shape, type);
                tensors[info.Name] = t;
                if (info.ByteCount == 0) continue;
                var buffer = new byte[info.ByteCount];
                stream.Position = dataStart + info.Begin;
                stream.ReadExactly(buffer);
                t.bytes = buffer;
            }
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw SafeTensorsError.Create(name, null, $"data could not be read ({e.Message})");
        }
        // Keep the header's order.
        var ordered = new Dictionary<string, Tensor>();
        foreach (var info in infos) ordered[info.Name] = tensors[info.Name];
        return new SafeTensorsFile(ordered, metadata);
    }

    /// <summary>Reads and validates only the header of a safetensors file.</summary>
    public static (IReadOnlyList<SafeTensorInfo> Tensors, IReadOnlyDictionary<string, string> Metadata) ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: {path}", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var (t, m, _) = ReadHeader(fs, path);
        return (t, m);
    }

    /// <summary>The config record stored under "config" in a file's metadata, or, failing that, in config.json beside it; null when neither exists.</summary>
    /// <exception cref="InvalidDataException">The JSON does not deserialize to <typeparamref name="TConfig"/>.</exception>
    public static TConfig? ReadConfig<TConfig>(string path)
    {
        var (_, meta) = ReadHeader(path);
        string source = $"{path} (metadata \"{ConfigMetadataKey}\")";
        if (!meta.TryGetValue(ConfigMetadataKey, out var json))
        {
            var beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "config.json");
            if (!File.Exists(beside)) return default;
            json = File.ReadAllText(beside);
            source = beside;
        }
        try { return JsonSerializer.Deserialize<TConfig>(json, ConfigJsonOptions); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: config is not a valid {typeof(TConfig).Name}: {e.Message}", e); }
    }

    private static (List<SafeTensorInfo>, Dictionary<string, string>, long DataStart) ReadHeader(Stream stream, string name)
    {
        long fileLength = stream.Length;
        if (fileLength < 8) throw SafeTensorsError.Create(name, null, $"file has {fileLength} bytes, fewer than the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        stream.Position = 0;
        stream.ReadExactly(lenBytes);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (n > MaxHeaderBytes) throw SafeTensorsError.Create(name, null, $"header length {n} is above the limit of {MaxHeaderBytes} bytes");
        if ((long)n > fileLength - 8) throw SafeTensorsError.Create(name, null, $"header length {n} runs beyond the end of the file ({fileLength} bytes)");
        if (n < 2) throw SafeTensorsError.Create(name, null, $"header length {n} is too small for a JSON object");
        var json = new byte[n];
        stream.ReadExactly(json);
        long dataStart = 8 + (long)n;
        long bufferLength = fileLength - dataStart;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw SafeTensorsError.Create(name, null, $"header is not valid JSON ({e.Message})"); }
        using var document = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw SafeTensorsError.Create(name, null, $"header is a JSON {doc.RootElement.ValueKind}, expected an object");

        var metadata = new Dictionary<string, string>();
        var infos = new List<SafeTensorInfo>();
        var seen = new HashSet<string>();
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (!seen.Add(prop.Name)) throw SafeTensorsError.Create(name, prop.Name, "key appears twice in the header");
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw SafeTensorsError.Create(name, null, "__metadata__ must be an object of strings");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw SafeTensorsError.Create(name, null, $"__metadata__ value for '{m.Name}' is a {m.Value.ValueKind}, expected a string");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            infos.Add(ParseEntry(prop, name, bufferLength));
        }

        // The buffer must be exactly covered: no overlap, no holes, nothing after the last tensor.
        long expect = 0;
        SafeTensorInfo? previous = null;
        foreach (var info in infos.OrderBy(i => i.Begin).ThenBy(i => i.End))
        {
            if (info.Begin < expect)
                throw SafeTensorsError.Create(name, info.Name, $"data_offsets [{info.Begin}, {info.End}] overlap tensor '{previous!.Name}' [{previous.Begin}, {previous.End}]");
            if (info.Begin > expect)
                throw SafeTensorsError.Create(name, info.Name, $"data_offsets [{info.Begin}, {info.End}] leave a hole of {info.Begin - expect} bytes before them (the buffer must be fully indexed)");
            expect = info.End;
            previous = info;
        }
        if (expect != bufferLength)
            throw SafeTensorsError.Create(name, previous?.Name, $"tensors cover {expect} bytes but the data buffer holds {bufferLength} (the buffer must be fully indexed)");
        return (infos, metadata, dataStart);
    }

    private static SafeTensorInfo ParseEntry(JsonProperty prop, string name, long bufferLength)
    {
        string key = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw SafeTensorsError.Create(name, key, $"entry is a JSON {v.ValueKind}, expected an object with dtype, shape, data_offsets");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw SafeTensorsError.Create(name, key, "missing string 'dtype'");
        string dtype = dt.GetString()!;
        int size = 0;
        foreach (var d in DTypes) if (d.Name == dtype) size = d.Size;
        if (size == 0) throw SafeTensorsError.Create(name, key, $"unknown or unsupported dtype '{dtype}' (supported: {string.Join(", ", DTypes.Select(d => d.Name))})");

        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw SafeTensorsError.Create(name, key, "missing array 'shape'");
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var e in sh.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var dim) || dim < 0)
                throw SafeTensorsError.Create(name, key, $"shape entry {i} is {e.GetRawText()}, expected a non-negative integer");
            shape[i++] = dim;
        }

        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw SafeTensorsError.Create(name, key, "'data_offsets' must be an array [begin, end]");
        var o = off.EnumerateArray().ToArray();
        if (!o[0].TryGetInt64(out long begin) || !o[1].TryGetInt64(out long end))
            throw SafeTensorsError.Create(name, key, $"data_offsets {off.GetRawText()} are not integers");
        if (begin < 0 || end < 0) throw SafeTensorsError.Create(name, key, $"data_offsets [{begin}, {end}] are negative");
        if (end < begin) throw SafeTensorsError.Create(name, key, $"data_offsets end {end} is before begin {begin}");
        if (end > bufferLength) throw SafeTensorsError.Create(name, key, $"data_offsets [{begin}, {end}] run beyond the data buffer of {bufferLength} bytes");

        // Every dimension counts, even beside a zero: [0, 2^62, 2^62] holds no bytes, but libtorch would still overflow
        // computing its strides, so a shape whose non-zero dimensions multiply past 2^63 bytes is refused as such.
        long expected;
        try
        {
            long bound = size;
            expected = size;
            foreach (var d in shape) { bound = checked(bound * Math.Max(d, 1)); expected *= d; }
        }
        catch (OverflowException)
        {
            throw SafeTensorsError.Create(name, key, $"shape [{string.Join(", ", shape)}] x {size} bytes overflows a 64-bit element count; expected a shape whose dimensions multiply to less than 2^63 bytes");
        }
        if (expected != end - begin)
            throw SafeTensorsError.Create(name, key, $"{dtype} shape [{string.Join(", ", shape)}] needs {expected} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
        return new SafeTensorInfo(key, dtype, shape, begin, end);
    }
}
