package io.peft4j.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.*;

class TensorTest {
    private static Tensor iota(int... shape) {
        float[] d = new float[(int) Tensor.numel(shape)];
        for (int i = 0; i < d.length; i++) d[i] = i;
        return Tensor.of(d, shape);
    }

    @Test
    void transposeIsAViewAndContiguousCopiesInLogicalOrder() {
        Tensor a = iota(2, 3);
        Tensor t = a.transpose(0, 1);
        assertSame(a.storage(), t.storage());
        assertFalse(t.isContiguous());
        assertArrayEquals(new int[] {3, 2}, t.shape());
        assertArrayEquals(new float[] {0, 3, 1, 4, 2, 5}, t.contiguous().data());
        assertEquals(4f, t.get(1, 1));
    }

    @Test
    void sliceAndPermuteShareStorage() {
        Tensor a = iota(2, 3, 4);
        Tensor s = a.slice(2, 1, 3);           // [2,3,2]
        assertSame(a.storage(), s.storage());
        assertEquals(a.get(1, 2, 2), s.get(1, 2, 1));
        Tensor p = a.permute(2, 0, 1);          // [4,2,3]
        assertEquals(a.get(1, 2, 3), p.get(3, 1, 2));
        assertArrayEquals(new float[] {1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}, s.toFloatArray());
    }

    @Test
    void reshapeInfersOneDimensionAndCopiesOnlyWhenStrided() {
        Tensor a = iota(4, 6);
        Tensor r = a.reshape(2, -1, 3);
        assertArrayEquals(new int[] {2, 4, 3}, r.shape());
        assertSame(a.storage(), r.storage());
        Tensor rt = a.transpose(0, 1).reshape(-1);
        assertNotSame(a.storage(), rt.storage());
        assertEquals(a.get(0, 1), rt.getFlat(4));
        assertThrows(IllegalArgumentException.class, () -> a.reshape(5, -1));
    }

    @Test
    void bf16AndF16SegmentsReadAsFloat() {
        float[] values = {1f, -2.5f, 3.140625f, 65504f, 0f};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bf = arena.allocate(values.length * 2L);
            MemorySegment hf = arena.allocate(values.length * 2L);
            var le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < values.length; i++) {
                bf.setAtIndex(le, i, DType.floatToBf16(values[i]));
                hf.setAtIndex(le, i, DType.floatToF16(values[i]));
            }
            Tensor b = Tensor.ofSegment(bf, DType.BF16, values.length);
            Tensor h = Tensor.ofSegment(hf, DType.F16, values.length);
            float[] bv = b.toFloatArray(), hv = h.toFloatArray();
            for (int i = 0; i < values.length; i++) {
                assertEquals(values[i], hv[i], 0f, "f16 " + i);
                assertEquals(values[i], bv[i], Math.abs(values[i]) / 128f, "bf16 " + i);
            }
            assertEquals(3.140625f, bv[2]); // exactly representable in bf16
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even mantissa (1).
        assertEquals(1f, DType.bf16ToFloat(DType.floatToBf16(1f + 0x1p-8f)));
        assertEquals(1f + 0x1p-6f, DType.bf16ToFloat(DType.floatToBf16(1f + 0x1p-7f + 0x1p-8f)));
        assertTrue(Float.isNaN(DType.bf16ToFloat(DType.floatToBf16(Float.NaN))));
    }

    @Test
    void gradBufferOnlyForTensorsThatRequireGradients() {
        Tensor w = Tensor.zeros(3, 3);
        assertThrows(IllegalStateException.class, w::gradBuffer);
        assertNull(w.grad());
        w.requiresGrad(true);
        assertArrayEquals(new int[] {3, 3}, w.gradBuffer().shape());
    }

    @Test
    void errorsNameTheShape() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tensor.of(new float[5], 2, 3));
        assertTrue(e.getMessage().contains("[2, 3]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> iota(2, 3).slice(1, 2, 4));
    }
}
