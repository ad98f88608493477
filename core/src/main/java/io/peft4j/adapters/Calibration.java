package io.peft4j.adapters;

import io.peft4j.tensor.Tensor;

/**
 * Batches of training data that data-driven initialisations (LoRA-GA, EVA, LoRA-SB) run through the model before
 * training. Implemented by the training layer (see {@code io.peft4j.train.CalibrationBatches}).
 */
public interface Calibration {
    /** How many batches are available. */
    int batches();

    /**
     * Runs the model on batch {@code i} and returns the scalar training loss; the forward pass is recorded on the
     * current tape wherever something requires gradients.
     */
    Tensor loss(int i);

    /** Real (non-padding) token positions of batch {@code i}, row-major over [batch * seqLen]; null = all real. */
    default boolean[] realTokens(int i) { return null; }
}
