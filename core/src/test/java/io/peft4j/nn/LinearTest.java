package io.peft4j.nn;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.GradCheck;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class LinearTest {
    /** y = x W^T + b by the definition, in double. */
    static float[] reference(Tensor x, Tensor w, Tensor b) {
        int n = x.dim(0), in = x.dim(1), out = w.dim(0);
        float[] y = new float[n * out];
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) {
                double s = b == null ? 0 : b.get(o);
                for (int k = 0; k < in; k++) s += (double) x.get(i, k) * w.get(o, k);
                y[i * out + o] = (float) s;
            }
        return y;
    }

    static void assertAllClose(float[] e, float[] a, double tol, String what) {
        assertEquals(e.length, a.length, what);
        for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], tol, what + " element " + i);
    }

    @Test
    void forwardIsAffineMapForF32AndMappedBf16Weights() {
        Tensor x = Tensor.randn(1, 1f, 5, 13);
        Tensor w = Tensor.randn(2, 0.3f, 7, 13), b = Tensor.randn(3, 1f, 7);
        Linear l = new Linear("l", w, b);
        assertAllClose(reference(x, w, b), l.forward(x).toFloatArray(), 1e-5, "f32");

        // a BF16 weight in an off-heap segment (the memory-mapped checkpoint case) is read in place
        MemorySegment seg = Arena.ofAuto().allocate(7 * 13 * 2);
        float[] wd = w.toFloatArray();
        for (int i = 0; i < wd.length; i++) seg.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2L * i, DType.floatToBf16(wd[i]));
        Tensor wb = Tensor.ofSegment(seg, DType.BF16, 7, 13);
        Linear lb = new Linear("lb", wb, null);
        assertSame(wb, lb.weight());
        assertAllClose(reference(x, wb, null), lb.forward(x).toFloatArray(), 1e-5, "bf16");
    }

    @Test
    void fanInFanOutUsesATransposedViewNotACopy() {
        Tensor stored = Tensor.randn(4, 0.5f, 6, 9);          // Conv1D: [in, out]
        Tensor b = Tensor.randn(5, 1f, 9);
        Linear conv = new Linear("c_attn", stored, b, true);
        assertEquals(6, conv.inFeatures());
        assertEquals(9, conv.outFeatures());
        assertSame(stored.storage(), conv.weight().storage(), "no copy");
        assertArrayEquals(new int[] {9, 6}, conv.weight().shape());
        assertArrayEquals(new int[] {6, 9}, conv.storedWeight().shape());
        Tensor x = Tensor.randn(6, 1f, 3, 6);
        Tensor explicit = stored.transpose(0, 1).copyToF32();
        assertAllClose(reference(x, explicit, b), conv.forward(x).toFloatArray(), 1e-5, "conv1d");
    }

    @Test
    void hooksRunInOrderAfterTheBaseProduct() {
        Tensor w = Tensor.randn(2, 0.3f, 4, 3);
        Linear l = new Linear("q_proj", w, null);
        Tensor x = Tensor.randn(1, 1f, 2, 3);
        float[] base = l.forward(x).toFloatArray();
        List<String> calls = new ArrayList<>();
        LinearHook plusOne = (in, y) -> {
            calls.add("plusOne");
            assertSame(x, in, "hooks receive the layer input");
            return io.peft4j.autograd.TensorOps.add(y, Tensor.scalar(1f));
        };
        LinearHook twice = (in, y) -> { calls.add("twice"); return io.peft4j.autograd.TensorOps.scale(y, 2f); };
        l.addHook(plusOne);
        l.addHook(twice);
        float[] hooked = l.forward(x).toFloatArray();
        for (int i = 0; i < base.length; i++) assertEquals((base[i] + 1) * 2, hooked[i], 1e-5);
        assertEquals(List.of("plusOne", "twice"), calls);
        assertEquals(List.of(plusOne, twice), l.hooks());
        assertThrows(UnsupportedOperationException.class, () -> l.hooks().clear());
        assertAllClose(base, l.forwardBase(x).toFloatArray(), 0, "forwardBase ignores hooks");
        assertTrue(l.removeHook(plusOne));
        assertFalse(l.removeHook(plusOne));
        float[] one = l.forward(x).toFloatArray();
        for (int i = 0; i < base.length; i++) assertEquals(base[i] * 2, one[i], 1e-5);
    }

    @Test
    void shapeErrorsNameTheLayer() {
        Linear l = new Linear("model.layers.3.mlp.up_proj", Tensor.zeros(4, 3), null);
        Exception e = assertThrows(IllegalArgumentException.class, () -> l.forward(Tensor.zeros(2, 5)));
        assertTrue(e.getMessage().startsWith("model.layers.3.mlp.up_proj: input [2, 5]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Linear("o_proj", Tensor.zeros(4, 3), Tensor.zeros(3)));
        assertTrue(e.getMessage().contains("o_proj") && e.getMessage().contains("bias [3]"), e.getMessage());
    }

    @Test
    void gradientsFlowThroughLinearAndHookToInputWeightAndBias() {
        Tensor w = Tensor.randn(2, 0.5f, 4, 3).requiresGrad(true);
        Tensor b = Tensor.randn(3, 0.5f, 4).requiresGrad(true);
        Tensor x = Tensor.randn(1, 1f, 2, 3).requiresGrad(true);
        Linear l = new Linear("l", w, b);
        l.addHook((in, y) -> io.peft4j.autograd.TensorOps.mul(y, y));
        GradCheck.defaults().check("linear+hook", in -> l.forward(in[0]), x, w, b);
    }

    @Test
    void tanhGradientMatchesFiniteDifferences() {
        Tensor x = Tensor.randn(9, 1f, 3, 5).requiresGrad(true);
        float[] y = Activations.tanh(x).toFloatArray();
        float[] xd = x.toFloatArray();
        for (int i = 0; i < y.length; i++) assertEquals(Math.tanh(xd[i]), y[i], 1e-6);
        GradCheck.defaults().check("tanh", in -> Activations.tanh(in[0]), x);
    }

    @Test
    void normsAndEmbeddingNameTheirLayerInErrors() {
        Embedding e = new Embedding("model.embed_tokens", Tensor.zeros(10, 4));
        Exception ex = assertThrows(IllegalArgumentException.class, () -> e.forward(new int[] {3, 10}));
        assertEquals("model.embed_tokens: token id 10 out of range [0, 10)", ex.getMessage());
        float[] rows = e.forward(new int[] {3, 9}).toFloatArray();
        assertEquals(8, rows.length);
        assertThrows(IllegalArgumentException.class, () -> new RMSNorm("n", Tensor.zeros(2, 2), 1e-5f));
        assertThrows(IllegalArgumentException.class, () -> new LayerNorm("n", Tensor.zeros(4), Tensor.zeros(3), 1e-5f));
    }
}
