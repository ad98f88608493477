package io.peft4j.models;

import io.peft4j.autograd.TensorOps;
import io.peft4j.tensor.Tensor;

/**
 * A decoder-only language model. Every forward is built from {@link TensorOps} / {@link io.peft4j.autograd.NnOps},
 * so it is differentiable while a {@link io.peft4j.autograd.Tape} records and costs no bookkeeping otherwise.
 *
 * <p>{@code ids} hold {@code batch} sequences of {@code seqLen} tokens each, row-major. With a {@link KvCache} the
 * tokens sit at positions {@code cache.length() ...} and the cache is extended; without one they start at 0.
 */
public interface CausalLM extends Model {
    /** Logits [batch * seqLen, vocab]. */
    default Tensor forward(int[] ids, int batch, int seqLen, KvCache cache) {
        return logits(hidden(ids, batch, seqLen, cache));
    }

    /** Logits [ids.length, vocab] for one sequence from position 0. */
    default Tensor forward(int[] ids) { return forward(ids, 1, ids.length, null); }

    /** The final (normed) hidden states [batch * seqLen, hidden], before the LM head. */
    Tensor hidden(int[] ids, int batch, int seqLen, KvCache cache);

    /** The LM head: hidden [N, hidden] -> logits [N, vocab]. Lets callers project only the rows they need. */
    Tensor logits(Tensor hidden);

    /** A cache for {@code batch} sequences of up to {@code maxSeq} positions (capped at the model's maximum). */
    default KvCache newCache(int batch, int maxSeq) {
        ModelConfig c = config();
        return new KvCache(c.numLayers, batch, Math.min(maxSeq, c.maxPositions), c.numKvHeads, c.headDim);
    }

    /** Rows [start, end) of a [N, d] tensor, as the tape-aware op. */
    static Tensor rows(Tensor x, int start, int end) { return TensorOps.slice(x, 0, start, end); }
}
