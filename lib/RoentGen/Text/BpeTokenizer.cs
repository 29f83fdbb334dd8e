using System.Text;
using System.Text.Json;
using System.Globalization;
using RoentGen.Platform;
using static TorchSharp.torch;

namespace RoentGen.Text;

/// <summary>Token ids of a batch of texts, padded to one length.</summary>
/// <param name="Ids">(B, L) int64 token ids.</param>
/// <param name="AttentionMask">(B, L) int64, 1 for real tokens (including start and end), 0 for padding.</param>
public sealed record TokenBatch(Tensor Ids, Tensor AttentionMask);

/// <summary>
/// Byte-level BPE exactly as CLIP's original tokenizer (Radford et al. 2021; openai/CLIP simple_tokenizer.py) encodes:
/// the text cleaned by <see cref="ClipTextCleaner"/> (ftfy-like fixes, HTML unescaped twice, whitespace collapsed,
/// lower-cased), split by CLIP's pre-token pattern (the two special tokens, the contractions 's 't 're 've 'm 'll 'd,
/// runs of letters, single digits, runs of anything else; by Unicode code point), each piece's UTF-8 bytes mapped to
/// printable characters, "&lt;/w&gt;" marking its end, merges applied by rank, and &lt;|startoftext|&gt; /
/// &lt;|endoftext|&gt; around every sequence. It loads a CLIP vocabulary (vocab.json + merges.txt, or a Hugging Face
/// tokenizer folder with its padding token and length limit: <see cref="LoadFolder"/>) or trains one on a report
/// corpus, and saves in the same format. A trained or file-loaded tokenizer pads with the end token.
/// </summary>
public sealed class BpeTokenizer
{
    /// <summary>The start token.</summary>
    public const string StartToken = "<|startoftext|>";
    /// <summary>The end (and padding) token.</summary>
    public const string EndToken = "<|endoftext|>";

    private static readonly (char[] ByteToChar, Dictionary<char, byte> CharToByte) ByteMap = BuildByteMap();

    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _idToToken;
    private readonly Dictionary<(string, string), int> _ranks;
    private readonly List<(string, string)> _merges;
    private readonly Dictionary<string, string[]> _cache = new();

    private BpeTokenizer(Dictionary<string, int> vocab, List<(string, string)> merges, TokenizerSettings? settings = null)
    {
        _vocab = vocab;
        _merges = merges;
        _ranks = new Dictionary<(string, string), int>();
        for (int i = 0; i < merges.Count; i++) _ranks.TryAdd(merges[i], i);
        _idToToken = new string[vocab.Values.Max() + 1];
        foreach (var (tok, id) in vocab) _idToToken[id] = tok;
        if (!vocab.ContainsKey(StartToken) || !vocab.ContainsKey(EndToken))
            throw new InvalidDataException($"BPE vocabulary lacks {StartToken} or {EndToken}");
        StartId = vocab[StartToken];
        EndId = vocab[EndToken];
        PadId = settings?.PadId ?? EndId;
        UnknownId = settings?.UnknownId;
        ModelMaxLength = settings?.ModelMaxLength;
        UnknownConfigKeys = settings?.UnknownKeys ?? [];
    }

    private sealed record TokenizerSettings(int PadId, int? UnknownId, int? ModelMaxLength, IReadOnlyList<string> UnknownKeys);

    /// <summary>Number of token ids.</summary>
    public int VocabSize => _idToToken.Length;
    /// <summary>Id of &lt;|startoftext|&gt;.</summary>
    public int StartId { get; }
    /// <summary>Id of &lt;|endoftext|&gt; (also used for padding).</summary>
    public int EndId { get; }
    /// <summary>Id that pads a batch to its length: the end token unless a tokenizer folder names another (SD 2.x pads with "!", id 0).</summary>
    public int PadId { get; }
    /// <summary>Id that stands for a token missing from the vocabulary (a folder's unk_token), or null: then a missing token is an error.</summary>
    public int? UnknownId { get; }
    /// <summary>The folder's model_max_length (77 for CLIP), or null when none was given.</summary>
    public int? ModelMaxLength { get; }
    /// <summary>Keys of tokenizer_config.json / special_tokens_map.json this loader does not know (reported, not used).</summary>
    public IReadOnlyList<string> UnknownConfigKeys { get; }
    /// <summary>The merges, in rank order.</summary>
    public IReadOnlyList<(string Left, string Right)> Merges => _merges;

    /// <summary>The vocabulary's token for an id (null where the id has none).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside [0, <see cref="VocabSize"/>).</exception>
    public string? TokenOf(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id]
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {_idToToken.Length}");

    /// <summary>Loads a CLIP-format vocabulary: vocab.json (token → id) and merges.txt (one "a b" pair a line, optional "#version" header).</summary>
    /// <exception cref="InvalidDataException">A file is malformed; the message names the file and line.</exception>
    public static BpeTokenizer Load(string vocabJsonPath, string mergesPath)
    {
        Dictionary<string, int> vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(vocabJsonPath))
                    ?? throw new InvalidDataException($"{vocabJsonPath}: empty vocabulary");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{vocabJsonPath}: not a JSON object of token → id ({e.Message})");
        }
        var merges = new List<(string, string)>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(mergesPath))
        {
            lineNo++;
            if (line.StartsWith("#version") || line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2) throw new InvalidDataException($"{mergesPath}:{lineNo}: expected two tokens separated by one space, got '{line}'");
            merges.Add((parts[0], parts[1]));
        }
        return new BpeTokenizer(vocab, merges);
    }

    /// <summary>
    /// Loads a Hugging Face CLIP tokenizer folder (a model folder's tokenizer/ too): vocab.json and merges.txt, and when
    /// present tokenizer_config.json and special_tokens_map.json for the padding and unknown tokens and
    /// model_max_length. As in transformers, special_tokens_map.json wins over tokenizer_config.json (SD 2.x's pads
    /// with "!" there while its tokenizer_config.json still names the end token). A token may be a string or an object
    /// with "content". Keys this loader does not know are listed in <see cref="UnknownConfigKeys"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">vocab.json or merges.txt is missing (the message names it).</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is malformed, a key has the wrong type, or a special token is not in the vocabulary (the message names file and key).</exception>
    public static BpeTokenizer LoadFolder(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: no such tokenizer folder");
        var dir = !File.Exists(Path.Combine(folder, "vocab.json")) && Directory.Exists(Path.Combine(folder, "tokenizer"))
            ? Path.Combine(folder, "tokenizer") : folder;
        var vocabPath = Path.Combine(dir, "vocab.json");
        var mergesPath = Path.Combine(dir, "merges.txt");
        foreach (var f in new[] { vocabPath, mergesPath })
            if (!File.Exists(f)) throw new FileNotFoundException($"{f}: missing (a CLIP tokenizer folder needs vocab.json and merges.txt)", f);
        var plain = Load(vocabPath, mergesPath);

        var tokens = new Dictionary<string, (string Value, string File)>();
        var unknown = new List<string>();
        int? maxLength = null;
        string[] tokenKeys = ["bos_token", "eos_token", "pad_token", "unk_token"];
        string[] configKeys = ["add_prefix_space", "do_lower_case", "errors", "model_max_length", "name_or_path", "special_tokens_map_file",
                               "tokenizer_class", "clean_up_tokenization_spaces"];
        foreach (var name in new[] { "tokenizer_config.json", "special_tokens_map.json" })
        {
            var path = Path.Combine(dir, name);
            if (!File.Exists(path)) continue;
            JsonDocument parsed;
            try { parsed = JsonDocument.Parse(InputFile.ReadAllText(path, 1 << 20, "tokenizer config")); }
            catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
            using var doc = parsed;
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object, got {root.ValueKind}");
            foreach (var p in root.EnumerateObject())
            {
                if (tokenKeys.Contains(p.Name))
                {
                    var content = p.Value.ValueKind switch
                    {
                        JsonValueKind.String => p.Value.GetString()!,
                        JsonValueKind.Object when p.Value.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString()!,
                        JsonValueKind.Null => null,
                        _ => throw new InvalidDataException($"{path}: key '{p.Name}' must be a string or an object with a string \"content\", got {p.Value.ValueKind}"),
                    };
                    if (content is not null) tokens[p.Name] = (content, path);
                }
                else if (name == "tokenizer_config.json" && p.Name == "added_tokens_decoder")
                {
                    // transformers 4.34+ lists the special tokens here by id; each must be the vocabulary's own.
                    if (p.Value.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: key 'added_tokens_decoder' must be an object of id → token, got {p.Value.ValueKind}");
                    foreach (var entry in p.Value.EnumerateObject())
                    {
                        if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || entry.Value.ValueKind != JsonValueKind.Object
                            || !entry.Value.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String)
                            throw new InvalidDataException($"{path}: key 'added_tokens_decoder' entry '{entry.Name}' must map a token id to an object with a string \"content\"");
                        var content = c.GetString()!;
                        if (!plain._vocab.TryGetValue(content, out var vocabId) || vocabId != id)
                            throw new InvalidDataException($"{path}: key 'added_tokens_decoder' gives '{content}' id {id}, but {vocabPath} gives it "
                                                           + (plain._vocab.ContainsKey(content) ? $"id {vocabId}" : "no id") + "; tokens added beyond the vocabulary are not supported");
                    }
                }
                else if (name == "tokenizer_config.json" && configKeys.Contains(p.Name))
                {
                    if (p.Name == "model_max_length")
                    {
                        if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out var v) || v < 2 || v != Math.Floor(v))
                            throw new InvalidDataException($"{path}: key 'model_max_length' must be a whole number of at least 2, got {p.Value.GetRawText()}");
                        maxLength = v > int.MaxValue ? null : (int)v;   // transformers writes 1e30 for "no limit"
                    }
                    else if (p.Name == "tokenizer_class" && p.Value.GetString() is not ("CLIPTokenizer" or "CLIPTokenizerFast"))
                        throw new InvalidDataException($"{path}: key 'tokenizer_class' is {p.Value.GetRawText()}; this loader reads CLIPTokenizer folders only");
                }
                else unknown.Add($"{name}: {p.Name}");
            }
        }
        int Id(string key, int fallback)
        {
            if (!tokens.TryGetValue(key, out var t)) return fallback;
            return plain._vocab.TryGetValue(t.Value, out var id) ? id
                : throw new InvalidDataException($"{t.File}: key '{key}' names '{t.Value}', which is not in {vocabPath}");
        }
        foreach (var (key, expected) in new[] { ("bos_token", StartToken), ("eos_token", EndToken) })
            if (tokens.TryGetValue(key, out var t) && t.Value != expected)
                throw new InvalidDataException($"{t.File}: key '{key}' is '{t.Value}'; a CLIP tokenizer uses '{expected}'");
        var settings = new TokenizerSettings(Id("pad_token", plain.EndId), tokens.ContainsKey("unk_token") ? Id("unk_token", plain.EndId) : null, maxLength, unknown);
        return new BpeTokenizer(plain._vocab, plain._merges, settings);
    }

    /// <summary>Saves vocab.json and merges.txt into a folder (atomically).</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.WriteAllText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(_vocab.OrderBy(kv => kv.Value).ToDictionary(kv => kv.Key, kv => kv.Value)));
        var sb = new StringBuilder("#version: 0.2\n");
        foreach (var (a, b) in _merges) sb.Append(a).Append(' ').Append(b).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(folder, "merges.txt"), sb.ToString());
    }

    /// <summary>
    /// Learns merges on a corpus until the vocabulary has <paramref name="vocabSize"/> tokens (the 512 byte
    /// tokens, with and without the word-end mark, and the two special tokens are always there).
    /// </summary>
    public static BpeTokenizer Train(IEnumerable<string> corpus, int vocabSize = 2048, int minPairCount = 2)
    {
        var words = new Dictionary<string, int>();
        foreach (var text in corpus)
            foreach (var w in PreTokenize(text))
                words[w] = words.GetValueOrDefault(w) + 1;
        var vocab = new Dictionary<string, int>();
        foreach (var c in ByteMap.ByteToChar) vocab[c.ToString()] = vocab.Count;
        foreach (var c in ByteMap.ByteToChar) vocab[c + "</w>"] = vocab.Count;
        var seqs = words.Select(kv => (Symbols: InitialSymbols(kv.Key), Count: kv.Value)).ToList();
        var merges = new List<(string, string)>();
        while (vocab.Count + 2 < vocabSize)
        {
            var pairCounts = new Dictionary<(string, string), int>();
            foreach (var (symbols, count) in seqs)
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    var p = (symbols[i], symbols[i + 1]);
                    pairCounts[p] = pairCounts.GetValueOrDefault(p) + count;
                }
            if (pairCounts.Count == 0) break;
            // Most frequent pair; ties broken by the pair's text so training is deterministic.
            var best = pairCounts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1, StringComparer.Ordinal).ThenBy(kv => kv.Key.Item2, StringComparer.Ordinal).First();
            if (best.Value < minPairCount) break;
            var (l, r) = best.Key;
            merges.Add((l, r));
            vocab.TryAdd(l + r, vocab.Count);
            foreach (var (symbols, _) in seqs) MergeInPlace(symbols, l, r);
        }
        vocab[StartToken] = vocab.Count;
        vocab[EndToken] = vocab.Count;
        return new BpeTokenizer(vocab, merges);
    }

    /// <summary>Token ids of one text, without start/end tokens.</summary>
    public int[] Encode(string text)
    {
        var ids = new List<int>();
        foreach (var word in PreTokenize(text))
        {
            if (word is StartToken or EndToken) { ids.Add(_vocab[word]); continue; }
            foreach (var tok in Bpe(word))
                ids.Add(_vocab.TryGetValue(tok, out var id) ? id
                    : UnknownId ?? throw new InvalidOperationException($"token '{tok}' is not in the vocabulary and the tokenizer has no unknown token"));
        }
        return ids.ToArray();
    }

    /// <summary>Text of token ids (special tokens dropped), words separated by single spaces.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var sb = new StringBuilder();
        foreach (var id in ids)
        {
            if (id == StartId || id == EndId) continue;
            if (id < 0 || id >= _idToToken.Length || _idToToken[id] is null) throw new ArgumentException($"token id {id} is outside the vocabulary");
            sb.Append(_idToToken[id]);
        }
        var chars = sb.ToString().Replace("</w>", " ");
        var bytes = new List<byte>();
        foreach (var c in chars) bytes.Add(c == ' ' ? (byte)' ' : ByteMap.CharToByte[c]);
        return Encoding.UTF8.GetString(bytes.ToArray()).Trim();
    }

    /// <summary>
    /// start + tokens + end, as CLIP's tokenizer returns them; with <paramref name="maxLength"/>, the tokens are cut so
    /// that the whole (start and end included) has at most that many ids (the end token is kept), without padding.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="maxLength"/> is below 2.</exception>
    public int[] EncodeWithSpecialTokens(string text, int? maxLength = null)
    {
        if (maxLength is < 2) throw new ArgumentException($"maxLength must be at least 2 (start and end tokens), got {maxLength}", nameof(maxLength));
        var body = Encode(text);
        int n = maxLength is int m ? Math.Min(body.Length, m - 2) : body.Length;
        var ids = new int[n + 2];
        ids[0] = StartId;
        Array.Copy(body, 0, ids, 1, n);
        ids[n + 1] = EndId;
        return ids;
    }

    /// <summary>
    /// start + tokens + end, truncated to <paramref name="maxLength"/> (keeping the end token) and padded with
    /// <see cref="PadId"/>, as the Stable Diffusion pipelines feed CLIP (padding="max_length", truncation=True).
    /// </summary>
    public TokenBatch EncodeBatch(IReadOnlyList<string> texts, int maxLength = 77)
    {
        if (maxLength < 2) throw new ArgumentException($"maxLength must be at least 2, got {maxLength}");
        var ids = new long[texts.Count * maxLength];
        var mask = new long[texts.Count * maxLength];
        for (int b = 0; b < texts.Count; b++)
        {
            var body = Encode(texts[b]);
            int n = Math.Min(body.Length, maxLength - 2);
            int o = b * maxLength;
            ids[o] = StartId; mask[o] = 1;
            for (int i = 0; i < n; i++) { ids[o + 1 + i] = body[i]; mask[o + 1 + i] = 1; }
            ids[o + 1 + n] = EndId; mask[o + 1 + n] = 1;
            for (int i = n + 2; i < maxLength; i++) ids[o + i] = PadId;
        }
        return new TokenBatch(tensor(ids, [texts.Count, maxLength]), tensor(mask, [texts.Count, maxLength]));
    }

    // CLIP's cleaning, then its pre-token pattern; words as byte-mapped strings.
    private static IEnumerable<string> PreTokenize(string text)
    {
        foreach (var piece in SplitPieces(ClipTextCleaner.Clean(text)))
        {
            if (piece is StartToken or EndToken) { yield return piece; continue; }
            var bytes = Encoding.UTF8.GetBytes(piece);
            yield return new string(bytes.Select(b => ByteMap.ByteToChar[b]).ToArray());
        }
    }

    /// <summary>
    /// CLIP's pre-token pattern, <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>
    /// (case-insensitive), matched left to right over Unicode code points (so a letter or digit outside the BMP counts as
    /// one, as in Python, where .NET's regex would see two surrogates).
    /// </summary>
    public static IEnumerable<string> SplitPieces(string cleaned)
    {
        ArgumentNullException.ThrowIfNull(cleaned);
        int i = 0;
        while (i < cleaned.Length)
        {
            if (string.CompareOrdinal(cleaned, i, StartToken, 0, StartToken.Length) == 0) { yield return StartToken; i += StartToken.Length; continue; }
            if (string.CompareOrdinal(cleaned, i, EndToken, 0, EndToken.Length) == 0) { yield return EndToken; i += EndToken.Length; continue; }
            if (ContractionLength(cleaned, i) is > 0 and var len) { yield return cleaned.Substring(i, len); i += len; continue; }
            var kind = KindAt(cleaned, i, out int width);
            if (kind == PieceKind.Space) { i += width; continue; }
            if (kind == PieceKind.Number) { yield return cleaned.Substring(i, width); i += width; continue; }
            int start = i;
            i += width;
            while (i < cleaned.Length && KindAt(cleaned, i, out int w) == kind) i += w;
            yield return cleaned[start..i];
        }
    }

    private enum PieceKind { Letter, Number, Space, Other }

    private static PieceKind KindAt(string s, int i, out int width)
    {
        if (Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out width) != System.Buffers.OperationStatus.Done)
        {
            width = Math.Max(width, 1);
            return PieceKind.Other;
        }
        if (Rune.IsWhiteSpace(r)) return PieceKind.Space;
        return Rune.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => PieceKind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => PieceKind.Number,
            _ => PieceKind.Other,
        };
    }

    // 's 't 're 've 'm 'll 'd, case-insensitively (so the long s, which folds to s, counts as s).
    private static int ContractionLength(string s, int i)
    {
        if (s[i] != '\'' || i + 1 >= s.Length) return 0;
        static char Fold(char c) => c == '\u017F' ? 's' : char.ToLowerInvariant(c);
        char a = Fold(s[i + 1]);
        if (a is 's' or 't' or 'm' or 'd') return 2;
        if (i + 2 >= s.Length) return 0;
        char b = Fold(s[i + 2]);
        return (a, b) is ('r', 'e') or ('v', 'e') or ('l', 'l') ? 3 : 0;
    }

    private static List<string> InitialSymbols(string word)
    {
        var s = word.Select(c => c.ToString()).ToList();
        s[^1] += "</w>";
        return s;
    }

    private static void MergeInPlace(List<string> symbols, string l, string r)
    {
        for (int i = 0; i + 1 < symbols.Count; i++)
            if (symbols[i] == l && symbols[i + 1] == r)
            {
                symbols[i] = l + r;
                symbols.RemoveAt(i + 1);
            }
    }

    private string[] Bpe(string word)
    {
        lock (_cache)
            if (_cache.TryGetValue(word, out var cached)) return cached;
        var symbols = InitialSymbols(word);
        while (symbols.Count > 1)
        {
            int bestRank = int.MaxValue, bestAt = -1;
            for (int i = 0; i + 1 < symbols.Count; i++)
                if (_ranks.TryGetValue((symbols[i], symbols[i + 1]), out var rank) && rank < bestRank) { bestRank = rank; bestAt = i; }
            if (bestAt < 0) break;
            var (l, r) = _merges[bestRank];
            MergeInPlace(symbols, l, r);
        }
        var result = symbols.ToArray();
        lock (_cache) _cache[word] = result;
        return result;
    }

    // GPT-2 / CLIP byte-to-unicode table: printable bytes map to themselves, the rest to 256 + n.
    private static (char[], Dictionary<char, byte>) BuildByteMap()
    {
        var printable = new List<int>();
        for (int b = '!'; b <= '~'; b++) printable.Add(b);
        for (int b = 0xA1; b <= 0xAC; b++) printable.Add(b);
        for (int b = 0xAE; b <= 0xFF; b++) printable.Add(b);
        var map = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++) map[b] = printable.Contains(b) ? (char)b : (char)(256 + extra++);
        return (map, Enumerable.Range(0, 256).ToDictionary(b => map[b], b => (byte)b));
    }
}
