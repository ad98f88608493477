package io.peft4j.adapters;

import io.peft4j.nn.Linear;
import io.peft4j.tensor.Tensor;

/**
 * Initialisations that take the adapter out of W and rewrite the base to {@code W - s B A}, so the model's outputs
 * are unchanged at step 0: PiSSA (principal singular triplets) and OLoRA (thin QR).
 */
final class WeightRewritingInit {
    private WeightRewritingInit() {}

    /** Returns {A [r, in], B [out, r]} and replaces the layer's weight by W - s B A. */
    static Tensor[] initialise(String kind, Linear lin, int r, float scaling, long seed) {
        throw new UnsupportedOperationException("init_lora_weights=" + kind + " needs the linalg package (pending)");
    }
}
