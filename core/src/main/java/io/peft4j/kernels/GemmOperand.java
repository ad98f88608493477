package io.peft4j.kernels;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Storage;
import io.peft4j.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A 2-D GEMM operand as the kernels see it: element (i, j) is element {@code off + i*rs + j*cs} of the storage,
 * in {@code dtype}. Either row-major ({@code cs == 1}) or column-major ({@code rs == 1}); anything else was copied
 * by {@link #of}. Reads contiguous runs in bulk, converting BF16 with vector shifts.
 */
final class GemmOperand {
    private static final VectorSpecies<Float> S = GemmKernels.S;
    private static final VectorSpecies<Short> SH = VectorSpecies.of(short.class, VectorShape.forBitSize(S.length() * 16));
    private static final VectorSpecies<Integer> SI = VectorSpecies.of(int.class, S.vectorShape());
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    final Storage storage;
    final DType dtype;
    final int rows, cols;
    final long off;
    final int rs, cs;          // strides in elements
    final float[] array;       // non-null for heap F32
    final MemorySegment segment; // non-null for segment storage

    private GemmOperand(Tensor t) {
        this.storage = t.storage();
        this.dtype = t.dtype();
        this.rows = t.dim(0);
        this.cols = t.dim(1);
        this.off = t.offset();
        this.rs = t.stride(0);
        this.cs = t.stride(1);
        this.array = storage.isHeap() ? storage.array() : null;
        this.segment = storage.isHeap() ? null : storage.segment();
    }

    private GemmOperand(GemmOperand o, int j0, int cols) {
        this.storage = o.storage;
        this.dtype = o.dtype;
        this.rows = o.rows;
        this.cols = cols;
        this.off = o.index(0, j0);
        this.rs = o.rs;
        this.cs = o.cs;
        this.array = o.array;
        this.segment = o.segment;
    }

    /** Columns [j0, j0 + count) of this operand, sharing its storage. */
    GemmOperand columns(int j0, int count) {
        if (j0 < 0 || count < 0 || j0 + count > cols)
            throw new IndexOutOfBoundsException("columns [" + j0 + ", " + (j0 + count) + ") of a " + rows + " x " + cols + " operand");
        return new GemmOperand(this, j0, count);
    }

    /** Wraps a 2-D float tensor, copying it to dense F32 only when it is neither row- nor column-major. */
    static GemmOperand of(Tensor t, String what) {
        if (t.rank() != 2) throw new IllegalArgumentException("Gemm: " + what + " must be 2-D, got " + t.describe());
        if (t.dtype() != DType.F32 && t.dtype() != DType.BF16 && t.dtype() != DType.F16)
            throw new IllegalArgumentException("Gemm: " + what + " must be F32, BF16 or F16, got " + t.describe());
        GemmOperand o = new GemmOperand(t);
        if (!o.rowMajor() && !o.colMajor()) o = new GemmOperand(t.contiguous());
        return o;
    }

    boolean rowMajor() { return cs == 1 || cols <= 1; }

    boolean colMajor() { return rs == 1 || rows <= 1; }

    boolean heapRowMajor() { return array != null && rowMajor(); }

    /** Storage index of element (i, j). */
    long index(int i, int j) { return off + (long) i * rs + (long) j * cs; }

    /** Reads {@code count} elements that are contiguous in storage, starting at storage index {@code index}. */
    void read(long index, float[] dst, int dstOff, int count) {
        if (array != null) { System.arraycopy(array, Math.toIntExact(index), dst, dstOff, count); return; }
        if (dtype == DType.BF16) { readBf16(segment, index * 2, dst, dstOff, count); return; }
        storage.readFloats(dtype, index, dst, dstOff, count);
    }

    /** BF16 -> F32 is a 16-bit left shift: widen the short lanes to int, shift, reinterpret as float. */
    static void readBf16(MemorySegment seg, long byteOff, float[] dst, int dstOff, int count) {
        int l = S.length(), i = 0;
        for (; i <= count - l; i += l) bf16Vector(seg, byteOff + 2L * i).intoArray(dst, dstOff + i);
        for (; i < count; i++) dst[dstOff + i] = DType.bf16ToFloat(seg.get(I16_LE, byteOff + 2L * i));
    }

    /** L consecutive BF16 values at {@code byteOff} as an F32 vector. */
    static FloatVector bf16Vector(MemorySegment seg, long byteOff) {
        ShortVector s = ShortVector.fromMemorySegment(SH, seg, byteOff, ByteOrder.LITTLE_ENDIAN);
        IntVector i = (IntVector) s.convertShape(VectorOperators.S2I, SI, 0);
        return i.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    @Override
    public String toString() { return dtype + "[" + rows + ", " + cols + "] strides (" + rs + ", " + cs + ")" + (array == null ? " (segment)" : ""); }
}
