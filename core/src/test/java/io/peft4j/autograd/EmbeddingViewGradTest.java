package io.peft4j.autograd;

import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;

/** Gathering rows of a transposed view (LoRA on embeddings gathers columns of lora_embedding_A). */
class EmbeddingViewGradTest {
    @Test
    void gatherFromATransposedViewHasCorrectGradients() {
        Tensor a = Tensor.randn(1, 1f, 3, 11).requiresGrad(true);     // [r, V]
        int[] ids = {4, 0, 4, 10, 7};
        GradCheck.defaults().check("embedding of transpose", in -> TensorOps.embedding(TensorOps.transpose(in[0], 0, 1), ids), a);
    }

    @Test
    void gatherThenLinearHasCorrectGradients() {
        Tensor a = Tensor.randn(2, 1f, 3, 11).requiresGrad(true);
        Tensor b = Tensor.randn(3, 1f, 5, 3).requiresGrad(true);
        int[] ids = {4, 0, 4, 10, 7};
        GradCheck.defaults().check("embedding-linear", in -> TensorOps.linear(TensorOps.embedding(TensorOps.transpose(in[0], 0, 1), ids), in[1], null), a, b);
    }
}
