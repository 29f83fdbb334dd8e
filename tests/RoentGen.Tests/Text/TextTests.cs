using RoentGen.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Tests.Text;

public class BpeTokenizerTests
{
    private static readonly string[] Corpus =
    [
        "Small left pleural effusion. No pneumothorax.",
        "Moderate right pleural effusion with adjacent atelectasis.",
        "No acute cardiopulmonary process. Heart size is normal.",
        "Large right pneumothorax. Endotracheal tube terminates 4 cm above the carina.",
        "Mild cardiomegaly. No pleural effusion or pneumothorax.",
    ];

    [Fact]
    public void Trained_vocabulary_round_trips_text_and_merges_frequent_words()
    {
        var tok = BpeTokenizer.Train(Enumerable.Repeat(Corpus, 5).SelectMany(x => x), vocabSize: 700);
        // Decoding joins words with spaces (CLIP's "</w>" convention), so compare without whitespace.
        static string Squash(string s) => string.Concat(s.Where(c => !char.IsWhiteSpace(c)));
        foreach (var text in Corpus)
            Assert.Equal(Squash(text.ToLowerInvariant()), Squash(tok.Decode(tok.Encode(text))));
        Assert.Equal("small left pleural effusion .", tok.Decode(tok.Encode("Small left pleural effusion.")));
        // A frequent word becomes a single token; an unseen word still encodes (bytes are always there).
        Assert.Single(tok.Encode("effusion"));
        Assert.True(tok.Encode("pneumomediastinum").Length > 1);
        Assert.Equal("café1 0 0 %".Replace(" ", ""), Squash(tok.Decode(tok.Encode("Café 100%"))));
        Assert.Equal(tok.Encode("Pleural  EFFUSION"), tok.Encode("pleural effusion"));
    }

    [Fact]
    public void Batches_have_start_end_and_end_token_padding_with_a_mask()
    {
        var tok = BpeTokenizer.Train(Corpus, vocabSize: 600);
        using var scope = NewDisposeScope();
        var batch = tok.EncodeBatch(["no pneumothorax", Corpus[3]], maxLength: 8);
        Assert.Equal([2L, 8], batch.Ids.shape);
        var row0 = batch.Ids[0].data<long>().ToArray();
        int n = tok.Encode("no pneumothorax").Length;
        Assert.Equal(tok.StartId, row0[0]);
        Assert.Equal(tok.EndId, row0[n + 1]);
        Assert.All(row0.Skip(n + 2), id => Assert.Equal(tok.EndId, id));
        Assert.Equal(n + 2, batch.AttentionMask[0].sum().item<long>());
        var row1 = batch.Ids[1].data<long>().ToArray();      // truncated, but still ends with the end token
        Assert.Equal(tok.EndId, row1[7]);
        Assert.Equal(8, batch.AttentionMask[1].sum().item<long>());
    }

    [Fact]
    public void Clip_format_files_save_and_load_with_identical_encoding()
    {
        var tok = BpeTokenizer.Train(Corpus, vocabSize: 650);
        var dir = TestPaths.NewTempDir();
        tok.Save(dir);
        Assert.StartsWith("#version", File.ReadLines(Path.Combine(dir, "merges.txt")).First());
        var loaded = BpeTokenizer.Load(Path.Combine(dir, "vocab.json"), Path.Combine(dir, "merges.txt"));
        foreach (var text in Corpus) Assert.Equal(tok.Encode(text), loaded.Encode(text));
        Assert.Equal(tok.VocabSize, loaded.VocabSize);

        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\nab c d\n");
        var ex = Assert.Throws<InvalidDataException>(() => BpeTokenizer.Load(Path.Combine(dir, "vocab.json"), Path.Combine(dir, "merges.txt")));
        Assert.Contains("merges.txt:2", ex.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Hand_written_clip_vocabulary_applies_merges_by_rank()
    {
        // A tiny CLIP-format vocabulary: merges "l o" before "lo w</w>".
        var dir = TestPaths.NewTempDir();
        var vocab = new Dictionary<string, int> { ["l"] = 0, ["o"] = 1, ["w</w>"] = 2, ["lo"] = 3, ["low</w>"] = 4, ["<|startoftext|>"] = 5, ["<|endoftext|>"] = 6, ["o</w>"] = 7 };
        File.WriteAllText(Path.Combine(dir, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\nl o\nlo w</w>\n");
        var tok = BpeTokenizer.Load(Path.Combine(dir, "vocab.json"), Path.Combine(dir, "merges.txt"));
        Assert.Equal([4], tok.Encode("low"));
        Assert.Equal([0, 7], tok.Encode("lo"));      // "l" + "o</w>": no merge for (l, o</w>)
        Directory.Delete(dir, true);
    }
}

public class ClipTextModelTests
{
    private static readonly ClipTextConfig Tiny = new() { VocabSize = 50, MaxPositions = 10, HiddenSize = 32, Layers = 2, Heads = 2, IntermediateSize = 64, EndTokenId = 49 };

    [Fact]
    public void Parameter_names_follow_Hugging_Face_CLIPTextModel()
    {
        using var model = new ClipTextModel(Tiny);
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter.shape);
        Assert.Equal([50L, 32], p["text_model.embeddings.token_embedding.weight"]);
        Assert.Equal([10L, 32], p["text_model.embeddings.position_embedding.weight"]);
        foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
            Assert.Equal([32L, 32], p[$"text_model.encoder.layers.1.self_attn.{proj}.weight"]);
        Assert.Equal([64L, 32], p["text_model.encoder.layers.0.mlp.fc1.weight"]);
        Assert.Contains("text_model.encoder.layers.0.layer_norm1.weight", p.Keys);
        Assert.Contains("text_model.encoder.layers.0.layer_norm2.bias", p.Keys);
        Assert.Contains("text_model.final_layer_norm.weight", p.Keys);
        Assert.Equal(2 + 2 * 16 + 2, p.Count);
    }

    [Fact]
    public void Encoder_is_causal_and_pools_at_the_first_end_token()
    {
        using var scope = NewDisposeScope();
        using var model = new ClipTextModel(Tiny);
        var a = tensor(new long[] { 48, 5, 6, 7, 49, 49 }).unsqueeze(0);
        var b = tensor(new long[] { 48, 5, 6, 9, 49, 49 }).unsqueeze(0);
        var oa = model.Encode(a); var ob = model.Encode(b);
        Assert.Equal([1L, 6, 32], oa.LastHiddenState.shape);
        // Positions before the change are identical; the changed one and after differ.
        Assert.True(oa.LastHiddenState[0, ..3].allclose(ob.LastHiddenState[0, ..3], atol: 1e-6));
        Assert.False(oa.LastHiddenState[0, 3].allclose(ob.LastHiddenState[0, 3]));
        Assert.True(oa.Pooled[0].allclose(oa.LastHiddenState[0, 4]));
        Assert.Throws<ArgumentException>(() => model.Encode(zeros(1, 11, dtype: ScalarType.Int64)));
    }
}
