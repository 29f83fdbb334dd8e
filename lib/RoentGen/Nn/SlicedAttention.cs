using TorchSharp;
using static TorchSharp.torch;

namespace RoentGen.Nn;

/// <summary>
/// Attention computed over chunks of the queries (diffusers' attention slicing): each chunk of at most
/// <see cref="QueryChunk"/> query rows attends to all keys, and its rows are written into the output, so the scores of
/// all queries against all keys (4096 × 4096 per head in SD's top level at 512 px) never exist at once. Softmax is per
/// query row, so the result equals the whole computation up to float rounding; the causal flag and the additive mask are
/// applied to each chunk's rows.
/// </summary>
public sealed class SlicedAttentionProcessor : IAttentionProcessor
{
    /// <summary>Creates the processor.</summary>
    /// <param name="queryChunk">Query rows per chunk (at least 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">A chunk of fewer than one row.</exception>
    public SlicedAttentionProcessor(int queryChunk = 1024)
    {
        if (queryChunk < 1) throw new ArgumentOutOfRangeException(nameof(queryChunk), queryChunk, "attention slicing needs at least one query row per chunk");
        QueryChunk = queryChunk;
    }

    /// <summary>Query rows per chunk.</summary>
    public int QueryChunk { get; }

    /// <inheritdoc />
    public Tensor Attend(Tensor query, Tensor key, Tensor value, AttentionCall call)
    {
        long tq = query.shape[^2], tk = key.shape[^2];
        if (tq <= QueryChunk) return ScaledDotProductProcessor.Instance.Attend(query, key, value, call);
        long[] shape = [.. query.shape[..^1], value.shape[^1]];
        var output = empty(shape, dtype: query.dtype, device: query.device);          // (B, heads, Tq, d)
        for (long start = 0; start < tq; start += QueryChunk)
        {
            using var scope = NewDisposeScope();
            long n = Math.Min(QueryChunk, tq - start);
            var q = query.narrow(-2, start, n);                                          // (B, heads, n, d)
            Tensor? mask = call.Mask is { } m ? (m.dim() >= 2 && m.shape[^2] == tq ? m.narrow(-2, start, n) : m) : null;
            if (call.IsCausal)
            {
                // Row i of this chunk is query start + i: it sees keys 0 … start + i (top-left aligned, as libtorch's is_causal).
                var rows = arange(start, start + n, dtype: ScalarType.Int64, device: query.device).unsqueeze(1);
                var cols = arange(tk, dtype: ScalarType.Int64, device: query.device).unsqueeze(0);
                var causal = zeros(n, tk, dtype: query.dtype, device: query.device).masked_fill(cols.gt(rows), double.NegativeInfinity);
                mask = mask is null ? causal : mask + causal;
            }
            var a = mask is null
                ? nn.functional.scaled_dot_product_attention(q, key, value)
                : nn.functional.scaled_dot_product_attention(q, key, value, attn_mask: mask);
            output.narrow(-2, start, n).copy_(a);
        }
        return output;
    }
}
