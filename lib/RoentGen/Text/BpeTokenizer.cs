using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using RoentGen.Platform;
using static TorchSharp.torch;

namespace RoentGen.Text;

/// <summary>Token ids of a batch of texts, padded to one length.</summary>
/// <param name="Ids">(B, L) int64 token ids.</param>
/// <param name="AttentionMask">(B, L) int64, 1 for real tokens (including start and end), 0 for padding.</param>
public sealed record TokenBatch(Tensor Ids, Tensor AttentionMask);

/// <summary>
/// Byte-level BPE in CLIP's conventions (Radford et al. 2021): lower-cased text, a regex pre-tokeniser,
/// bytes mapped to printable characters, "&lt;/w&gt;" marking word ends, merges applied by rank, and
/// &lt;|startoftext|&gt; / &lt;|endoftext|&gt; around every sequence (the end token also pads). It loads a CLIP
/// vocabulary (vocab.json + merges.txt) or trains one on a report corpus, and saves in the same format.
/// </summary>
public sealed class BpeTokenizer
{
    /// <summary>The start token.</summary>
    public const string StartToken = "<|startoftext|>";
    /// <summary>The end (and padding) token.</summary>
    public const string EndToken = "<|endoftext|>";

    private static readonly Regex Pretokenizer = new(
        @"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        RegexOptions.Compiled | RegexOptions.IgnoreCase);
    private static readonly (char[] ByteToChar, Dictionary<char, byte> CharToByte) ByteMap = BuildByteMap();

    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _idToToken;
    private readonly Dictionary<(string, string), int> _ranks;
    private readonly List<(string, string)> _merges;
    private readonly Dictionary<string, string[]> _cache = new();

    private BpeTokenizer(Dictionary<string, int> vocab, List<(string, string)> merges)
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
    }

    /// <summary>Number of token ids.</summary>
    public int VocabSize => _idToToken.Length;
    /// <summary>Id of &lt;|startoftext|&gt;.</summary>
    public int StartId { get; }
    /// <summary>Id of &lt;|endoftext|&gt; (also used for padding).</summary>
    public int EndId { get; }
    /// <summary>The merges, in rank order.</summary>
    public IReadOnlyList<(string Left, string Right)> Merges => _merges;

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
                ids.Add(_vocab.TryGetValue(tok, out var id) ? id : throw new InvalidOperationException($"token '{tok}' is not in the vocabulary"));
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
    /// start + tokens + end, truncated to <paramref name="maxLength"/> (keeping the end token) and padded with the
    /// end token, as CLIP feeds Stable Diffusion.
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
            for (int i = n + 2; i < maxLength; i++) ids[o + i] = EndId;
        }
        return new TokenBatch(tensor(ids, [texts.Count, maxLength]), tensor(mask, [texts.Count, maxLength]));
    }

    // CLIP's text cleaning: lower case, collapse whitespace; words as byte-mapped strings.
    private static IEnumerable<string> PreTokenize(string text)
    {
        var clean = Regex.Replace(text.Trim(), @"\s+", " ").ToLowerInvariant();
        foreach (Match m in Pretokenizer.Matches(clean))
        {
            if (m.Value is StartToken or EndToken) { yield return m.Value; continue; }
            var bytes = Encoding.UTF8.GetBytes(m.Value);
            yield return new string(bytes.Select(b => ByteMap.ByteToChar[b]).ToArray());
        }
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
