using RoentGen.Text;

namespace RoentGen.Diffusion;

/// <summary>
/// Which token of the source prompt each token of an edited prompt takes its cross-attention map from
/// (prompt-to-prompt, Hertz et al. 2022, §3.2): one entry per position of the padded token sequence.
/// </summary>
/// <param name="SourceIndex">Per edit position, the source position it copies (−1: a new word, no source map).</param>
/// <param name="Aligned">Per edit position, 1 where the map is copied from the source and 0 where the edit keeps its own.</param>
public sealed record TokenAlignment(int[] SourceIndex, float[] Aligned)
{
    /// <summary>
    /// Replace: the edit swaps words for others of the same token count, so token i of the edit takes the map of
    /// token i of the source (the identity over the padded sequence).
    /// </summary>
    /// <exception cref="ArgumentException">The two prompts do not have the same number of tokens (the message names both).</exception>
    public static TokenAlignment Replace(BpeTokenizer tokenizer, string source, string edit, int maxTokens)
    {
        int a = tokenizer.EncodeWithSpecialTokens(source, maxTokens).Length, b = tokenizer.EncodeWithSpecialTokens(edit, maxTokens).Length;
        if (a != b)
            throw new ArgumentException($"replace needs prompts of the same token count: source '{source}' has {a} tokens, edit '{edit}' has {b} (use refine for edits that add or remove words)");
        return new TokenAlignment(Enumerable.Range(0, maxTokens).ToArray(), Enumerable.Repeat(1f, maxTokens).ToArray());
    }

    /// <summary>
    /// Refine: a global alignment (Needleman–Wunsch: match +1, mismatch −1, gap 0, as the paper's refine) of the two
    /// token sequences with their start and end tokens; an edit token aligned to an equal source token copies its map,
    /// an unmatched (new) token keeps its own. Positions after the edit's end token (padding) map to themselves.
    /// </summary>
    public static TokenAlignment Refine(BpeTokenizer tokenizer, string source, string edit, int maxTokens)
    {
        var s = tokenizer.EncodeWithSpecialTokens(source, maxTokens);
        var e = tokenizer.EncodeWithSpecialTokens(edit, maxTokens);
        var pairs = Align(s, e);
        var index = Enumerable.Range(0, maxTokens).ToArray();
        var aligned = Enumerable.Repeat(1f, maxTokens).ToArray();
        for (int j = 0; j < e.Length; j++) { index[j] = -1; aligned[j] = 0; }
        foreach (var (i, j) in pairs)
            if (s[i] == e[j]) { index[j] = i; aligned[j] = 1; }
        return new TokenAlignment(index, aligned);
    }

    /// <summary>
    /// Global alignment of two sequences (match +1, mismatch −1, gap 0): the aligned (i, j) index pairs in order,
    /// gaps left out. Ties prefer the diagonal, then a gap in the source, so the result is deterministic.
    /// </summary>
    public static IReadOnlyList<(int Source, int Edit)> Align(IReadOnlyList<int> source, IReadOnlyList<int> edit)
    {
        int n = source.Count, m = edit.Count;
        var score = new int[n + 1, m + 1];
        for (int i = 1; i <= n; i++)
            for (int j = 1; j <= m; j++)
            {
                int diag = score[i - 1, j - 1] + (source[i - 1] == edit[j - 1] ? 1 : -1);
                score[i, j] = Math.Max(diag, Math.Max(score[i - 1, j], score[i, j - 1]));
            }
        var pairs = new List<(int, int)>();
        for (int i = n, j = m; i > 0 && j > 0;)
        {
            if (score[i, j] == score[i - 1, j - 1] + (source[i - 1] == edit[j - 1] ? 1 : -1)) { pairs.Add((i - 1, j - 1)); i--; j--; }
            else if (score[i, j] == score[i, j - 1]) j--;
            else i--;
        }
        pairs.Reverse();
        return pairs;
    }

    /// <summary>
    /// The token positions (in the sequence with the start token at 0) of every occurrence of <paramref name="word"/>
    /// (compared case-insensitively, trailing punctuation ignored) in <paramref name="prompt"/>; empty when absent.
    /// </summary>
    /// <exception cref="InvalidOperationException">The prompt's tokens are not the concatenation of its words' tokens (a tokenizer whose pieces cross spaces).</exception>
    public static IReadOnlyList<int> TokensOfWord(BpeTokenizer tokenizer, string prompt, string word, int maxTokens)
    {
        var words = prompt.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string key = Normalize(word);
        var found = new List<int>();
        int position = 1;
        foreach (var w in words)
        {
            int count = tokenizer.Encode(w).Length;
            if (Normalize(w) == key)
                for (int k = 0; k < count; k++)
                    if (position + k < maxTokens - 1) found.Add(position + k);
            position += count;
        }
        int whole = tokenizer.Encode(prompt).Length;
        if (whole + 1 != position)
            throw new InvalidOperationException($"prompt '{prompt}': its {whole} tokens are not its words' tokens ({position - 1}); word positions cannot be found");
        return found;
    }

    private static string Normalize(string w) => w.Trim().TrimEnd('.', ',', ';', ':').ToLowerInvariant();
}
