package io.peft4j.autograd;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** How TensorOps uses the tape: frozen inputs get no gradient work, no tape means nothing is recorded. */
class TensorOpsTapeTest {

    @Test
    void frozenWeightInLinearNeverGetsAGradBuffer() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = TensorOpsForwardTest.bf16Segment(arena, Tensor.randn(1, 0.3f, 8, 5));  // like a mapped base weight
            assertEquals(DType.BF16, w.dtype());
            Tensor x = Tensor.randn(2, 1f, 3, 5).requiresGrad(true);
            Tensor bias = Tensor.randn(3, 1f, 8);                                                // frozen too
            try (Tape tape = Tape.record()) {
                Tensor y = TensorOps.linear(x, w, bias);
                assertTrue(y.requiresGrad());
                assertEquals(1, tape.size());
                tape.backward(TensorOps.sum(y, false));
            }
            assertNull(w.grad(), "a frozen weight must never get a gradient buffer");
            assertNull(bias.grad(), "a frozen bias must never get a gradient buffer");
            assertNotNull(x.grad());
            // dX = dY · W with dY = 1: each input column gets the column sum of W
            for (int i = 0; i < 5; i++) {
                double s = 0;
                for (int o = 0; o < 8; o++) s += w.get(o, i);
                for (int r = 0; r < 3; r++) assertEquals(s, x.grad().get(r, i), 1e-5);
            }
        }
    }

    @Test
    void frozenOperandsOfEveryBinaryOpStayWithoutGrad() {
        Tensor a = Tensor.randn(1, 1f, 3, 4).requiresGrad(true);
        Tensor b = Tensor.uniform(2, 0.5f, 1f, 3, 4);
        try (Tape tape = Tape.record()) {
            Tensor y = TensorOps.add(TensorOps.mul(a, b), TensorOps.div(TensorOps.sub(a, b), b));
            y = TensorOps.add(y, TensorOps.sum(TensorOps.matmul(a, TensorOps.transpose(b, 0, 1)), false));  // broadcast scalar
            tape.backward(TensorOps.sum(y, false));
        }
        assertNull(b.grad());
        assertNotNull(a.grad());
    }

    @Test
    void noTapeRecordsNothing() {
        Tensor a = Tensor.randn(1, 1f, 3, 4).requiresGrad(true);
        Tensor w = Tensor.randn(2, 1f, 5, 4).requiresGrad(true);
        List<Tensor> outs = List.of(
                TensorOps.linear(a, w, null), TensorOps.matmul(a, TensorOps.transpose(w, 0, 1)), TensorOps.add(a, a),
                TensorOps.exp(a), TensorOps.sum(a, true, 0), TensorOps.transpose(a, 0, 1), TensorOps.slice(a, 1, 0, 2),
                TensorOps.concat(List.of(a, a), 0), TensorOps.embedding(w, new int[] {0, 4}), TensorOps.reshape(a, -1));
        for (Tensor o : outs) assertFalse(o.requiresGrad(), "without a tape no output may require gradients: " + o.describe());
        assertNull(a.grad());
        assertNull(w.grad());
    }

    @Test
    void tapeWithOnlyFrozenInputsRecordsNothing() {
        Tensor a = Tensor.randn(1, 1f, 3, 4), w = Tensor.randn(2, 1f, 5, 4);
        try (Tape tape = Tape.record()) {
            Tensor y = TensorOps.sum(TensorOps.mul(TensorOps.linear(a, w, null), TensorOps.exp(TensorOps.linear(a, w, null))), false);
            TensorOps.permute(TensorOps.concat(List.of(a, a), 1), 1, 0);
            assertFalse(y.requiresGrad());
            assertEquals(0, tape.size());
        }
    }

    @Test
    void gradientsAccumulateAcrossBackwardPasses() {
        Tensor a = Tensor.randn(1, 1f, 2, 3).requiresGrad(true);
        for (int pass = 1; pass <= 2; pass++) {
            try (Tape tape = Tape.record()) {
                tape.backward(TensorOps.sum(TensorOps.scale(a, 2f), false));
            }
            for (float g : a.grad().data()) assertEquals(2f * pass, g);
        }
    }

    @Test
    void backwardThroughViewsMapsIntoTheParentGradient() {
        Tensor a = Tensor.randn(1, 1f, 4, 5).requiresGrad(true);
        try (Tape tape = Tape.record()) {
            Tensor v = TensorOps.slice(TensorOps.transpose(a, 0, 1), 0, 1, 3);   // a[:, 1:3]^T, shape [2, 4]
            tape.backward(v, Tensor.full(1f, 2, 4));
        }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 5; j++) assertEquals(j == 1 || j == 2 ? 1f : 0f, a.grad().get(i, j), "grad at " + i + "," + j);
    }
}
