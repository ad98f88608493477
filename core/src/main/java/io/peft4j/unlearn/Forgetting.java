package io.peft4j.unlearn;

import io.peft4j.adapters.LoraModel;
import io.peft4j.tensor.Tensor;

import java.util.List;

/** Small helpers of the forgetting setup. */
public final class Forgetting {
    private Forgetting() {}

    /**
     * Freezes an adapter (the model being edited, e.g. a trained classifier's LoRA and head): its tensors stop
     * requiring gradients, so the tape neither records nor accumulates gradients for them while another adapter
     * stacked on it is trained.
     */
    public static void freeze(LoraModel lm, String adapter) {
        for (Tensor t : List.copyOf(lm.parameters(adapter).values())) t.requiresGrad(false);
    }
}
