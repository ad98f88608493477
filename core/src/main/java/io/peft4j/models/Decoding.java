package io.peft4j.models;

import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

import java.util.Map;

/** Checks and helpers shared by the decoder models. */
final class Decoding {
    private Decoding() {}

    /** Validates a forward's arguments; returns the position of its first token. */
    static int checkForward(ModelConfig c, int[] ids, int batch, int seqLen, KvCache cache) {
        if (batch <= 0 || seqLen <= 0) throw new IllegalArgumentException("forward needs batch >= 1 and seqLen >= 1, got " + batch + " x " + seqLen);
        if (ids.length != (long) batch * seqLen)
            throw new IllegalArgumentException("forward got " + ids.length + " ids for batch " + batch + " x seqLen " + seqLen);
        for (int id : ids)
            if (id < 0 || id >= c.vocabSize) throw new IllegalArgumentException("token id " + id + " out of range [0, " + c.vocabSize + ") of " + c.source);
        int start = 0;
        if (cache != null) {
            if (cache.layers() != c.numLayers || cache.kvHeads() != c.numKvHeads || cache.headDim() != c.headDim)
                throw new IllegalArgumentException("KV cache shape (" + cache.layers() + " layers, " + cache.kvHeads() + " kv heads, head_dim "
                        + cache.headDim() + ") does not match the model");
            cache.checkFits(batch, seqLen);
            start = cache.length();
        }
        if (start + seqLen > c.maxPositions)
            throw new IllegalArgumentException("position " + (start + seqLen - 1) + " is beyond max_position_embeddings " + c.maxPositions + " of " + c.source);
        return start;
    }

    /** Adds {@code name.weight} (in its stored layout) and {@code name.bias} of a linear layer. */
    static void putLinear(Map<String, Tensor> m, Linear l) {
        m.put(l.name() + ".weight", l.storedWeight());
        if (l.bias() != null) m.put(l.name() + ".bias", l.bias());
    }
}
