package io.peft4j.nn;

import io.peft4j.tensor.Tensor;

/** A function applied after an {@link Embedding}'s lookup: embedding adapters add their rows here. */
@FunctionalInterface
public interface EmbeddingHook {
    /** Returns the new output given the token ids and the rows looked up so far [ids.length, d]. */
    Tensor apply(int[] ids, Tensor out);
}
