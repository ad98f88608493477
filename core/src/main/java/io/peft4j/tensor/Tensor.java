package io.peft4j.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * An n-dimensional array: a shape, strides (in elements), an offset into a {@link Storage}, and a dtype.
 * Views (reshape of a contiguous tensor, transpose, permute, slice) share storage; {@link #contiguous()} copies
 * only when the layout requires it. Compute ops produce contiguous heap F32 tensors.
 *
 * <p>Autograd state lives here too: {@link #requiresGrad()} marks a leaf or an op output that the active
 * {@link io.peft4j.autograd.Tape} tracks, and {@link #grad()} is a contiguous heap F32 buffer of this tensor's
 * logical shape, allocated on first use. A frozen weight never has one.
 */
public final class Tensor {
    private final Storage storage;
    private final DType dtype;
    private final int[] shape;
    private final int[] strides;
    private final long offset;

    private boolean requiresGrad;
    private Tensor grad;
    private String name;

    public Tensor(Storage storage, DType dtype, int[] shape, int[] strides, long offset) {
        if (shape.length != strides.length) throw new IllegalArgumentException("shape and strides differ in rank");
        for (int d : shape) if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
        this.storage = storage;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.strides = strides.clone();
        this.offset = offset;
    }

    // ---------------------------------------------------------------- factories

    /** A contiguous heap F32 tensor over {@code data} (not copied). */
    public static Tensor of(float[] data, int... shape) {
        if (numel(shape) != data.length)
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + numel(shape) + " elements, got " + data.length);
        return new Tensor(Storage.heap(data), DType.F32, shape, contiguousStrides(shape), 0);
    }

    public static Tensor zeros(int... shape) { return of(new float[Math.toIntExact(numel(shape))], shape); }

    public static Tensor full(float value, int... shape) {
        float[] d = new float[Math.toIntExact(numel(shape))];
        Arrays.fill(d, value);
        return of(d, shape);
    }

    public static Tensor scalar(float value) { return of(new float[] {value}); }

    /** Standard-normal entries times {@code std}, deterministic for a seed. */
    public static Tensor randn(long seed, float std, int... shape) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] d = new float[Math.toIntExact(numel(shape))];
        for (int i = 0; i < d.length; i++) d[i] = (float) (gaussian(rng) * std);
        return of(d, shape);
    }

    /** Uniform entries in [lo, hi), deterministic for a seed. */
    public static Tensor uniform(long seed, float lo, float hi, int... shape) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] d = new float[Math.toIntExact(numel(shape))];
        for (int i = 0; i < d.length; i++) d[i] = (float) (lo + (hi - lo) * rng.nextDouble());
        return of(d, shape);
    }

    /** A contiguous tensor of any dtype over a (possibly memory-mapped) segment, little-endian, not copied. */
    public static Tensor ofSegment(MemorySegment segment, DType dtype, int... shape) {
        long need = numel(shape) * dtype.bytes;
        if (segment.byteSize() < need)
            throw new IllegalArgumentException("segment of " + segment.byteSize() + " bytes is too small for " + dtype + Arrays.toString(shape));
        return new Tensor(Storage.segment(segment), dtype, shape, contiguousStrides(shape), 0);
    }

    static double gaussian(SplittableRandom rng) {
        double u1 = rng.nextDouble(), u2 = rng.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }

    // ---------------------------------------------------------------- layout

    public Storage storage() { return storage; }
    public DType dtype() { return dtype; }
    public int[] shape() { return shape.clone(); }
    public int[] strides() { return strides.clone(); }
    public long offset() { return offset; }
    public int rank() { return shape.length; }

    /** Size of dimension {@code d}; negative {@code d} counts from the end. */
    public int dim(int d) { return shape[axis(d)]; }
    public int stride(int d) { return strides[axis(d)]; }

    public long numel() { return numel(shape); }

    /** Normalises a possibly negative axis index. */
    public int axis(int d) {
        int a = d < 0 ? d + shape.length : d;
        if (a < 0 || a >= shape.length) throw new IllegalArgumentException("axis " + d + " out of range for rank " + shape.length);
        return a;
    }

    public boolean isContiguous() {
        for (int d : shape) if (d == 0) return true;   // an empty tensor has no layout to violate
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    /** True for a contiguous heap F32 tensor starting at offset 0 of its array: {@link #data()} is then valid. */
    public boolean isDense() { return dtype == DType.F32 && storage.isHeap() && isContiguous(); }

    /**
     * The heap array of a contiguous F32 tensor; elements start at {@link #offset()}. Fails for other layouts:
     * call {@link #contiguous()} first.
     */
    public float[] data() {
        if (!isDense()) throw new IllegalStateException("data() needs a contiguous heap F32 tensor; this is " + describe());
        return storage.array();
    }

    /** Offset as an int, for indexing {@link #data()}. */
    public int dataOffset() { return Math.toIntExact(offset); }

    /** This tensor if dense, else a dense F32 copy (any dtype, any strides, heap or segment). No autograd. */
    public Tensor contiguous() {
        if (isDense()) return this;
        return copyToF32();
    }

    /** A new dense heap F32 copy, always. No autograd. */
    public Tensor copyToF32() {
        float[] out = new float[Math.toIntExact(numel())];
        if (isContiguous()) {
            storage.readFloats(dtype, offset, out, 0, out.length);
        } else {
            int[] idx = new int[shape.length];
            for (int i = 0; i < out.length; i++) {
                out[i] = storage.getFloat(dtype, offsetOf(idx));
                increment(idx);
            }
        }
        return of(out, shape);
    }

    /** The elements in logical row-major order as a new float[]. */
    public float[] toFloatArray() { return copyToF32().storage.array(); }

    // ---------------------------------------------------------------- views (no autograd: see autograd.TensorOps)

    /** A view with a new shape; one dimension may be -1. Copies if this tensor is not contiguous. */
    public Tensor reshape(int... newShape) {
        int[] s = inferShape(newShape, numel());
        Tensor src = isContiguous() ? this : copyToF32();
        return new Tensor(src.storage, src.dtype, s, contiguousStrides(s), src.offset);
    }

    /** Swaps two axes without copying. */
    public Tensor transpose(int a, int b) {
        int[] perm = new int[shape.length];
        for (int i = 0; i < perm.length; i++) perm[i] = i;
        perm[axis(a)] = axis(b);
        perm[axis(b)] = axis(a);
        return permute(perm);
    }

    /** Reorders axes without copying: result axis i is this tensor's axis perm[i]. */
    public Tensor permute(int... perm) {
        if (perm.length != shape.length) throw new IllegalArgumentException("permute needs " + shape.length + " axes");
        int[] s = new int[perm.length], st = new int[perm.length];
        boolean[] seen = new boolean[perm.length];
        for (int i = 0; i < perm.length; i++) {
            int p = axis(perm[i]);
            if (seen[p]) throw new IllegalArgumentException("permute repeats axis " + p);
            seen[p] = true;
            s[i] = shape[p];
            st[i] = strides[p];
        }
        return new Tensor(storage, dtype, s, st, offset);
    }

    /** Elements {@code [start, end)} along {@code dim}, without copying. */
    public Tensor slice(int dim, int start, int end) {
        int a = axis(dim);
        if (start < 0 || end > shape[a] || start > end)
            throw new IllegalArgumentException("slice [" + start + "," + end + ") out of range for dim " + a + " of size " + shape[a]);
        int[] s = shape.clone();
        s[a] = end - start;
        return new Tensor(storage, dtype, s, strides, offset + (long) start * strides[a]);
    }

    // ---------------------------------------------------------------- element access (slow; tests and tools)

    public float get(int... idx) { return storage.getFloat(dtype, offsetOf(idx)); }

    public void set(float v, int... idx) { storage.setFloat(dtype, offsetOf(idx), v); }

    /** Element {@code i} in logical row-major order. */
    public float getFlat(long i) {
        if (isContiguous()) return storage.getFloat(dtype, offset + i);
        int[] idx = new int[shape.length];
        long r = i;
        for (int d = shape.length - 1; d >= 0; d--) { idx[d] = (int) (r % shape[d]); r /= shape[d]; }
        return get(idx);
    }

    private long offsetOf(int[] idx) {
        if (idx.length != shape.length) throw new IllegalArgumentException("index rank " + idx.length + " != " + shape.length);
        long o = offset;
        for (int d = 0; d < idx.length; d++) {
            if (idx[d] < 0 || idx[d] >= shape[d]) throw new IndexOutOfBoundsException("index " + Arrays.toString(idx) + " out of " + Arrays.toString(shape));
            o += (long) idx[d] * strides[d];
        }
        return o;
    }

    private void increment(int[] idx) {
        for (int d = idx.length - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) return;
            idx[d] = 0;
        }
    }

    // ---------------------------------------------------------------- autograd state

    public boolean requiresGrad() { return requiresGrad; }

    /** Marks this tensor as trainable (leaf) or tracked (op output). Only float tensors can require gradients. */
    public Tensor requiresGrad(boolean r) {
        if (r && !dtype.isFloat()) throw new IllegalStateException("only float tensors can require gradients");
        this.requiresGrad = r;
        return this;
    }

    /** The accumulated gradient, or null if none was ever written. */
    public Tensor grad() { return grad; }

    /** The gradient buffer, allocated (zeroed) on first use; dense heap F32 of this tensor's shape. */
    public Tensor gradBuffer() {
        if (!requiresGrad) throw new IllegalStateException("tensor " + describe() + " does not require gradients");
        if (grad == null) grad = zeros(shape);
        return grad;
    }

    public void zeroGrad() { if (grad != null) Arrays.fill(grad.data(), 0f); }

    public void clearGrad() { grad = null; }

    public String name() { return name; }
    public Tensor name(String n) { this.name = n; return this; }

    // ---------------------------------------------------------------- helpers

    public static long numel(int... shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public static int[] contiguousStrides(int... shape) {
        int[] st = new int[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            st[i] = Math.toIntExact(s);
            s *= Math.max(1, shape[i]);
        }
        return st;
    }

    static int[] inferShape(int[] s, long numel) {
        int[] out = s.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < out.length; i++) {
            if (out[i] == -1) {
                if (infer >= 0) throw new IllegalArgumentException("only one -1 allowed in " + Arrays.toString(s));
                infer = i;
            } else known *= out[i];
        }
        if (infer >= 0) {
            if (known == 0 || numel % known != 0) throw new IllegalArgumentException("cannot reshape " + numel + " elements to " + Arrays.toString(s));
            out[infer] = (int) (numel / known);
        }
        if (numel(out) != numel) throw new IllegalArgumentException("cannot reshape " + numel + " elements to " + Arrays.toString(s));
        return out;
    }

    public String describe() {
        return (name != null ? name + " " : "") + dtype + Arrays.toString(shape)
                + (isContiguous() ? "" : " strides " + Arrays.toString(strides))
                + (storage.isHeap() ? "" : " (segment)");
    }

    @Override
    public String toString() { return "Tensor(" + describe() + ")"; }
}
