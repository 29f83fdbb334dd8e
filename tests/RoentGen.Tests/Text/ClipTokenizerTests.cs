using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using RoentGen.Text;
using static TorchSharp.torch;

namespace RoentGen.Tests.Text;

/// <summary>CLIP's original tokenizer, exactly: the real SD vocabularies against known answers, and a small hand vocabulary for the rest.</summary>
public class ClipTokenizerTests
{
    // ---- the real CLIP vocabulary (../shared/fixtures/stable-diffusion) ----

    private static string Fixture(string model)
    {
        Skip.If(TestPaths.StableDiffusionFixtures is null, "../shared/fixtures/stable-diffusion is not beside this clone");
        return Path.Combine(TestPaths.StableDiffusionFixtures!, model);
    }

    // The known tokenizations in SOURCE.md's table: | `text` | id, id, ... |
    private static List<(string Text, int[] Ids)> KnownAnswers()
    {
        var source = File.ReadAllLines(Path.Combine(TestPaths.StableDiffusionFixtures!, "SOURCE.md"));
        var rows = new List<(string, int[])>();
        foreach (var line in source)
        {
            var m = Regex.Match(line, @"^\|\s*`(?<text>[^`]*)`\s*\|\s*(?<ids>[0-9, ]+)\|\s*$");
            if (m.Success) rows.Add((m.Groups["text"].Value, m.Groups["ids"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray()));
        }
        return rows;
    }

    [SkippableTheory]
    [InlineData("sd-v1-4")]
    [InlineData("sd-2-1-base")]
    public void Real_vocabulary_reproduces_the_known_tokenizations_of_clips_original_tokenizer(string model)
    {
        var tok = BpeTokenizer.LoadFolder(Fixture(model));      // the model folder: its tokenizer/ is found
        var known = KnownAnswers();
        Assert.True(known.Count >= 3, $"SOURCE.md lists {known.Count} known tokenizations, expected at least 3");
        foreach (var (text, ids) in known) Assert.Equal(ids, tok.EncodeWithSpecialTokens(text));
        Assert.Equal(49406, tok.StartId);
        Assert.Equal(49407, tok.EndId);
        Assert.Equal(49408, tok.VocabSize);
        Assert.Equal(77, tok.ModelMaxLength);
        Assert.Equal(49407, tok.UnknownId);
        Assert.Empty(tok.UnknownConfigKeys);
        // Case, surrounding and inner whitespace and HTML escapes do not change the ids.
        Assert.Equal(tok.EncodeWithSpecialTokens("a photo of a cat"), tok.EncodeWithSpecialTokens("  A   PHOTO\tof&#32;a &#x63;&amp;amp;#97;t\n"));
    }

    // Ids from an independent statement of CLIP's encode in Python (Python's html.unescape twice, re's \s collapse,
    // str.lower, the `regex` module's \p{L}/\p{N} pattern, the same merges), run on texts where ftfy changes nothing:
    // entities with and without semicolons, invalid numeric references, Greek final sigma, dotted capital I, digits of
    // other scripts, non-BMP letters and digits, emoji sequences, Unicode spaces, special tokens in the text.
    public static TheoryData<string, int[]> PythonReference => new()
    {
        { "DON'T stop, it'S 'RE 'VE 'M 'LL 'D", [49406, 847, 713, 1691, 267, 585, 568, 982, 1200, 880, 1342, 1896, 49407] },
        { "''s .'s x'y", [49406, 8445, 338, 5938, 338, 343, 262, 344, 49407] },
        { "R&gt;L, &copy 2024 &notit; &amp; &#65;&#x42; &#128; &#0; &#x110000; &bogus; &lt", [49406, 337, 285, 331, 267, 5811, 273, 271, 273, 275, 126, 361, 585, 282, 261, 3937, 6309, 39802, 39802, 261, 42907, 282, 283, 49407] },
        { "12345 \u0663\u0664 \u00B2\u00BD \u216B \u2466 \u4E00\u4E8C", [49406, 272, 273, 274, 275, 276, 149, 352, 149, 353, 41175, 33613, 158, 227, 375, 158, 239, 355, 19759, 222, 21078, 490, 49407] },
        { "\u0395\u03BB\u03BB\u03B7\u03BD\u03B9\u03BA\u03AC \u039F\u0394\u039F\u03A3 \u03A3\u0391 \u0391\u03A3.", [49406, 138, 113, 138, 119, 138, 119, 138, 115, 138, 121, 138, 117, 138, 118, 138, 361, 138, 123, 138, 112, 138, 123, 139, 480, 139, 225, 138, 365, 138, 109, 139, 480, 269, 49407] },
        { "\u0130STANBUL I\u015EIK", [49406, 328, 16384, 11231, 72, 21254, 10177, 49407] },
        { "\u0E20\u0E32\u0E29\u0E32\u0E44\u0E17\u0E22 \u0939\u093F\u0928\u094D\u0926\u0940 \u0627\u0644\u0639\u0631\u0628\u064A\u0629", [49406, 1777, 254, 12330, 102, 11529, 31718, 245, 33091, 29446, 26721, 26090, 19389, 29552, 25751, 12973, 18843, 10948, 16378, 12046, 20915, 49407] },
        { "emoji \U0001F600\U0001F600 \U0001F44D\U0001F3FD \U0001F468\u200D\U0001F469\u200D\U0001F467 \U0001F1FA\U0001F1F8 \u2764\uFE0F", [49406, 16327, 34503, 43722, 25023, 26304, 964, 356, 5688, 1752, 49407] },
        { "\U0001D400\U0001D401\U0001D402 bold \U0001D7CF\U0001D7D0", [49406, 15889, 222, 15889, 223, 15889, 480, 8911, 6874, 253, 493, 6874, 253, 494, 49407] },
        { "tab\there\u00A0nbsp\u2003em\u2028ls end  ", [49406, 14724, 763, 6459, 4393, 2270, 1268, 806, 49407] },
        { "<|startoftext|>hi<|endoftext|> x<|ENDOFTEXT|>", [49406, 49406, 1883, 49407, 343, 49407, 49407] },
    };

    [SkippableTheory]
    [MemberData(nameof(PythonReference))]
    public void Real_vocabulary_matches_a_python_statement_of_clips_encode_on_hard_unicode(string text, int[] ids)
    {
        var tok = BpeTokenizer.LoadFolder(Fixture("sd-v1-4"));
        Assert.Equal(ids, tok.EncodeWithSpecialTokens(text));
    }

    [SkippableFact]
    public void Sd_2_pads_with_the_exclamation_mark_and_v1_4_with_the_end_token_both_truncated_to_77()
    {
        var v14 = BpeTokenizer.LoadFolder(Path.Combine(Fixture("sd-v1-4"), "tokenizer"));
        var v21 = BpeTokenizer.LoadFolder(Path.Combine(Fixture("sd-2-1-base"), "tokenizer"));
        Assert.Equal(49407, v14.PadId);
        Assert.Equal(0, v21.PadId);                                // special_tokens_map.json's "!" wins over tokenizer_config.json
        using var scope = NewDisposeScope();
        var longText = string.Join(" ", Enumerable.Repeat("right apical pneumothorax", 40));
        foreach (var (tok, pad) in new[] { (v14, 49407L), (v21, 0L) })
        {
            var batch = tok.EncodeBatch(["a photo of a cat", longText], maxLength: 77);
            var row0 = batch.Ids[0].data<long>().ToArray();
            Assert.Equal([49406L, 320, 1125, 539, 320, 2368, 49407], row0.Take(7));
            Assert.All(row0.Skip(7), id => Assert.Equal(pad, id));
            Assert.Equal(7, batch.AttentionMask[0].sum().item<long>());
            var row1 = batch.Ids[1].data<long>().ToArray();
            Assert.Equal(49407L, row1[76]);
            Assert.Equal(tok.EncodeWithSpecialTokens(longText).Take(76).Select(i => (long)i), row1.Take(76));
            Assert.Equal(77, batch.AttentionMask[1].sum().item<long>());
        }
        var cut = v14.EncodeWithSpecialTokens(longText, maxLength: 77);
        Assert.Equal(77, cut.Length);
        Assert.Equal(49407, cut[^1]);
        Assert.True(v14.EncodeWithSpecialTokens(longText).Length > 77);
    }

    // ---- a small hand-written vocabulary ----

    // GPT-2's byte-to-character table, written again here so the test does not lean on the code under test.
    private static char ByteChar(byte b)
    {
        bool printable = b is >= (byte)'!' and <= (byte)'~' or >= 0xA1 and <= 0xAC or >= 0xAE;
        if (printable) return (char)b;
        int n = 0;
        for (int x = 0; x < b; x++) if (!(x is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE)) n++;
        return (char)(256 + n);
    }

    private static string Mapped(string s) => new(Encoding.UTF8.GetBytes(s).Select(ByteChar).ToArray());

    // vocab: the given tokens (ids in order) + the two special tokens; merges as given (rank = order).
    private static string WriteVocab(IEnumerable<string> tokens, IEnumerable<string> merges, string? specialTokensMap = null, string? tokenizerConfig = null)
    {
        var dir = TestPaths.NewTempDir("clip-tok");
        var vocab = new Dictionary<string, int>();
        foreach (var t in tokens.Append(BpeTokenizer.StartToken).Append(BpeTokenizer.EndToken)) vocab.TryAdd(t, vocab.Count);
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n" + string.Join("\n", merges) + "\n");
        if (specialTokensMap is not null) File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), specialTokensMap);
        if (tokenizerConfig is not null) File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig);
        return dir;
    }

    private static readonly string[] HandTokens =
    [
        "!", "a", "b", "c", "d", "o", "n", "t", "'", "s", "1", "2", ".",            // ids 0..12
        "!</w>", "a</w>", "b</w>", "c</w>", "d</w>", "n</w>", "t</w>", "s</w>", "1</w>", "2</w>", ".</w>",
        "ab", "bc</w>", "abc</w>", "do", "don</w>", "'t</w>", "'s</w>",
    ];

    private static BpeTokenizer Hand(string[]? merges = null, string? specialTokensMap = null, string? tokenizerConfig = null) =>
        BpeTokenizer.LoadFolder(WriteVocab(HandTokens.Concat([Mapped("é")[..1], Mapped("é")[1..] + "</w>"]),
            merges ?? ["a b", "ab c</w>", "b c</w>", "d o", "do n</w>", "' t</w>", "' s</w>"], specialTokensMap, tokenizerConfig));

    private static int Id(string token) => Array.IndexOf(HandTokens, token) is var i and >= 0 ? i : throw new ArgumentException(token);

    [Fact]
    public void Merges_apply_by_rank_not_by_position()
    {
        // "abc" → a b c</w>: rank 0 (a b) first, then (ab c</w>) → one token.
        Assert.Equal([Id("abc</w>")], Hand().Encode("abc"));
        // With (b c</w>) ranked first the same word ends as a + bc</w>.
        Assert.Equal([Id("a"), Id("bc</w>")], Hand(["b c</w>", "a b", "ab c</w>"]).Encode("abc"));
        // Unmerged pieces stay bytes; the word end is marked on the last.
        Assert.Equal([Id("b"), Id("a"), Id("d</w>")], Hand().Encode("bad"));
    }

    [Fact]
    public void Contractions_punctuation_numbers_and_special_tokens_split_as_clips_pattern()
    {
        var tok = Hand();
        Assert.Equal(["don", "'t", "it", "'s", "'re", "'ve", "'m", "'ll", "'d", ".''", "s"], BpeTokenizer.SplitPieces("don't it's 're 've 'm 'll 'd .''s"));
        Assert.Equal([Id("don</w>"), Id("'t</w>")], tok.Encode("don't"));
        Assert.Equal([Id("!"), Id("!</w>")], tok.Encode("!!"));                          // a run of "other" characters is one piece
        Assert.Equal([Id("a</w>"), Id(".</w>")], tok.Encode("A."));
        Assert.Equal([Id("1</w>"), Id("2</w>"), Id("1</w>")], tok.Encode("121"));      // numbers one digit at a time
        Assert.Equal([tok.StartId, Id("a</w>"), tok.EndId], tok.Encode("<|startoftext|>a<|ENDOFTEXT|>"));
        Assert.Equal([tok.StartId, Id("abc</w>"), tok.EndId], tok.EncodeWithSpecialTokens("ABC"));
    }

    [Fact]
    public void Unicode_pieces_are_code_points_and_bytes_map_as_gpt2()
    {
        // A letter outside the BMP (mathematical bold A, Lu) joins the letter run; an emoji run is one "other" piece.
        Assert.Equal(["\U0001D400b", "\U0001F600\U0001F600", "1", "é"], BpeTokenizer.SplitPieces("\U0001D400b\U0001F600\U0001F6001 é"));
        // é is two UTF-8 bytes (C3 A9): two byte tokens, the last one with the word end.
        var tok = Hand();
        Assert.Equal(2, tok.Encode("É").Length);
        Assert.Equal("é", tok.Decode(tok.Encode("É")));
    }

    [Fact]
    public void A_byte_missing_from_the_vocabulary_is_the_unknown_token_or_an_error_naming_it()
    {
        var noUnk = Hand();
        var e = Assert.Throws<InvalidOperationException>(() => noUnk.Encode("z"));
        Assert.Contains("'z</w>'", e.Message);
        var withUnk = Hand(specialTokensMap: """{"unk_token": {"content": "<|endoftext|>"}, "pad_token": "!"}""");
        Assert.Equal([withUnk.EndId, Id("a</w>")], withUnk.Encode("z a"));
        // An emoji is four UTF-8 bytes, each a symbol of its own (the last with the word end); none is in this vocabulary.
        Assert.Equal(Enumerable.Repeat(withUnk.EndId, 4), withUnk.Encode("\U0001F600"));
        // With its byte tokens in the vocabulary it encodes to exactly those, in byte order.
        var bytes = Mapped("\U0001F600");
        var emojiTokens = new[] { bytes[0].ToString(), bytes[1].ToString(), bytes[2].ToString(), bytes[3] + "</w>" };
        var withEmoji = BpeTokenizer.LoadFolder(WriteVocab(emojiTokens, []));
        Assert.Equal([0, 1, 2, 3], withEmoji.Encode("\U0001F600"));
        Assert.Equal("\U0001F600", withEmoji.Decode(withEmoji.Encode("\U0001F600")));
    }

    [Fact]
    public void Padding_token_comes_from_special_tokens_map_over_tokenizer_config()
    {
        const string config = """{"pad_token": "<|endoftext|>", "model_max_length": 6, "tokenizer_class": "CLIPTokenizer", "do_lower_case": true}""";
        var endPadded = Hand(tokenizerConfig: config);
        var bangPadded = Hand(specialTokensMap: """{"pad_token": "!"}""", tokenizerConfig: config);
        Assert.Equal(endPadded.EndId, endPadded.PadId);
        Assert.Equal(Id("!"), bangPadded.PadId);
        Assert.Equal(6, bangPadded.ModelMaxLength);
        using var scope = NewDisposeScope();
        Assert.Equal([(long)bangPadded.StartId, Id("abc</w>"), bangPadded.EndId, 0, 0, 0], bangPadded.EncodeBatch(["abc"], 6).Ids[0].data<long>().ToArray());
        Assert.Equal([(long)endPadded.StartId, Id("abc</w>"), endPadded.EndId, endPadded.EndId, endPadded.EndId, endPadded.EndId], endPadded.EncodeBatch(["abc"], 6).Ids[0].data<long>().ToArray());
        Assert.Equal(["tokenizer_config.json: fancy"], Hand(tokenizerConfig: """{"fancy": 1}""").UnknownConfigKeys);
        // transformers 4.34+ writes added_tokens_decoder: understood when it agrees with vocab.json, an error when not.
        int start = HandTokens.Length + 2;                                   // after the two é byte tokens
        var decoder = "{\"added_tokens_decoder\": {\"" + start + "\": {\"content\": \"<|startoftext|>\", \"special\": true}, \"" + (start + 1) + "\": {\"content\": \"<|endoftext|>\"}}}";
        Assert.Empty(Hand(tokenizerConfig: decoder).UnknownConfigKeys);
        var bad = Assert.Throws<InvalidDataException>(() => Hand(tokenizerConfig: """{"added_tokens_decoder": {"3": {"content": "<|endoftext|>"}}}"""));
        Assert.Contains("added_tokens_decoder", bad.Message);
    }

    [Fact]
    public void Malformed_tokenizer_folders_name_the_file_and_key()
    {
        var e1 = Assert.Throws<InvalidDataException>(() => Hand(specialTokensMap: """{"pad_token": 5}"""));
        Assert.Contains("special_tokens_map.json", e1.Message);
        Assert.Contains("'pad_token'", e1.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => Hand(specialTokensMap: """{"pad_token": "<pad>"}"""));
        Assert.Contains("'<pad>'", e2.Message);
        Assert.Contains("vocab.json", e2.Message);
        var e3 = Assert.Throws<InvalidDataException>(() => Hand(tokenizerConfig: """{"model_max_length": "77"}"""));
        Assert.Contains("model_max_length", e3.Message);
        var e4 = Assert.Throws<InvalidDataException>(() => Hand(tokenizerConfig: """{"pad_token": "!", """));
        Assert.Contains("tokenizer_config.json", e4.Message);
        var e5 = Assert.Throws<InvalidDataException>(() => Hand(specialTokensMap: """{"bos_token": "<s>"}"""));
        Assert.Contains("<|startoftext|>", e5.Message);
        var dir = WriteVocab(HandTokens, []);
        File.Delete(Path.Combine(dir, "merges.txt"));
        var e6 = Assert.Throws<FileNotFoundException>(() => BpeTokenizer.LoadFolder(dir));
        Assert.Contains("merges.txt", e6.Message);
    }

    // ---- the cleaning ----

    [Fact]
    public void Cleaning_unescapes_html_twice_fixes_text_collapses_whitespace_and_lowercases_as_python()
    {
        Assert.Equal("a&b c", ClipTextCleaner.Clean("  A&amp;amp;B\n\t C  "));
        Assert.Equal("<b>&amp;</b>", ClipTextCleaner.Clean("<b>&amp;amp;amp;</b>"));               // '<': ftfy leaves entities, CLIP unescapes twice
        Assert.Equal("fine \"quoted\" 'single' ab1", ClipTextCleaner.Clean("\uFB01ne \u201Cquoted\u201D \u2018single\u2019 \uFF21\uFF22\uFF11"));
        Assert.Equal("é", ClipTextCleaner.Clean("e\u0301"));                                        // NFC
        Assert.Equal("€ x", ClipTextCleaner.Clean("&#128; \u001B[31mx\u0007"));                     // Windows-1252, terminal escape, control
        Assert.Equal("© ¬it; &bogus;", ClipTextCleaner.HtmlUnescape("&copy &notit; &bogus;"));      // legacy names and the longest prefix
        Assert.Equal("\uFFFD\uFFFD", ClipTextCleaner.HtmlUnescape("&#0;&#xD800;"));
        Assert.Equal("\u00E9 \u00C9", ClipTextCleaner.FixText("&eacute; &EACUTE;"));                 // ftfy's all-capitals form
        Assert.Equal("<&EACUTE;", ClipTextCleaner.FixText("<&EACUTE;"));                             // ftfy leaves HTML-looking text
        Assert.Equal("&EACUTE;", ClipTextCleaner.HtmlUnescape("&EACUTE;"));                          // Python's html.unescape does not know it
        Assert.Equal("i\u0307stanbul", ClipTextCleaner.PythonLower("İSTANBUL"));                    // full mapping
        Assert.Equal("\u03BF\u03B4\u03BF\u03C2 \u03C3\u03B1", ClipTextCleaner.PythonLower("\u039F\u0394\u039F\u03A3 \u03A3\u0391")); // final sigma
        Assert.Equal("\u03C3\u03B1", ClipTextCleaner.PythonLower("ΣΑ"));
    }
}
