package io.peft4j.nn;

import io.peft4j.tensor.Tensor;

/**
 * A function applied after a {@link Linear}'s base product: adapters (LoRA and its family) add their contribution
 * here. Hooks run in the order they were added; each receives the layer input and the output so far.
 */
@FunctionalInterface
public interface LinearHook {
    /** Returns the new output given the layer input {@code x} [..., in] and the output so far {@code baseOut} [..., out]. */
    Tensor apply(Tensor x, Tensor baseOut);
}
