package io.peft4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The bytes behind a tensor: a heap {@code float[]} (the compute format) or a {@link MemorySegment} holding any
 * dtype little-endian (memory-mapped weights). Exactly one of the two is non-null.
 */
public final class Storage {
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble F64_LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final float[] array;          // non-null for heap F32 storage
    private final MemorySegment segment;  // non-null for segment storage (any dtype)

    private Storage(float[] array, MemorySegment segment) {
        this.array = array;
        this.segment = segment;
    }

    public static Storage heap(float[] array) { return new Storage(array, null); }

    public static Storage segment(MemorySegment segment) { return new Storage(null, segment); }

    public boolean isHeap() { return array != null; }

    /** The backing array of heap storage; fails for segment storage. */
    public float[] array() {
        if (array == null) throw new IllegalStateException("storage is a memory segment, not a heap float[]");
        return array;
    }

    public MemorySegment segment() {
        if (segment == null) throw new IllegalStateException("storage is a heap float[], not a memory segment");
        return segment;
    }

    /** Element {@code index} (in elements of {@code dtype}) read as a float. */
    public float getFloat(DType dtype, long index) {
        if (array != null) return array[Math.toIntExact(index)];
        return switch (dtype) {
            case F32 -> segment.get(F32_LE, index * 4);
            case BF16 -> DType.bf16ToFloat(segment.get(I16_LE, index * 2));
            case F16 -> DType.f16ToFloat(segment.get(I16_LE, index * 2));
            case F64 -> (float) segment.get(F64_LE, index * 8);
            case I64 -> segment.get(I64_LE, index * 8);
            case I32 -> segment.get(I32_LE, index * 4);
            case I8 -> segment.get(ValueLayout.JAVA_BYTE, index);
            case U8, BOOL -> segment.get(ValueLayout.JAVA_BYTE, index) & 0xff;
        };
    }

    public void setFloat(DType dtype, long index, float v) {
        if (array != null) { array[Math.toIntExact(index)] = v; return; }
        switch (dtype) {
            case F32 -> segment.set(F32_LE, index * 4, v);
            case BF16 -> segment.set(I16_LE, index * 2, DType.floatToBf16(v));
            case F16 -> segment.set(I16_LE, index * 2, DType.floatToF16(v));
            case F64 -> segment.set(F64_LE, index * 8, v);
            case I64 -> segment.set(I64_LE, index * 8, (long) v);
            case I32 -> segment.set(I32_LE, index * 4, (int) v);
            case I8, U8, BOOL -> segment.set(ValueLayout.JAVA_BYTE, index, (byte) v);
        }
    }

    /**
     * Converts {@code count} contiguous elements starting at element {@code index} to F32 in {@code dst}.
     * The bulk path used by packing and loading; far faster than per-element {@link #getFloat}.
     */
    public void readFloats(DType dtype, long index, float[] dst, int dstOff, int count) {
        if (array != null) { System.arraycopy(array, Math.toIntExact(index), dst, dstOff, count); return; }
        switch (dtype) {
            case F32 -> MemorySegment.copy(segment, F32_LE, index * 4, dst, dstOff, count);
            case BF16 -> {
                long base = index * 2;
                for (int i = 0; i < count; i++) dst[dstOff + i] = DType.bf16ToFloat(segment.get(I16_LE, base + 2L * i));
            }
            case F16 -> {
                long base = index * 2;
                for (int i = 0; i < count; i++) dst[dstOff + i] = DType.f16ToFloat(segment.get(I16_LE, base + 2L * i));
            }
            default -> { for (int i = 0; i < count; i++) dst[dstOff + i] = getFloat(dtype, index + i); }
        }
    }
}
