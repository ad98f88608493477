package io.peft4j.autograd;

import io.peft4j.kernels.Elementwise;
import io.peft4j.kernels.Parallel;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;

import java.util.Arrays;

/**
 * Numpy broadcasting and strided loops over heap F32 tensors. A loop nest is built over the broadcast shape with
 * one stride vector per operand (0 on broadcast axes), size-1 axes dropped and adjacent axes merged wherever every
 * operand allows, so the innermost run is as long as possible; each inner run then goes to an
 * {@link Elementwise} kernel (unit strides), to a scalar-broadcast kernel (stride 0), or to a plain strided loop.
 *
 * <p>Large loops are split over {@link Parallel}: across outer indices when distinct outer indices write distinct
 * destination elements, else across the inner run when that is safe, else they run on one thread.
 */
final class Broadcast {
    /** Fewest elements per parallel chunk: below this, a hand-off to the pool costs more than it saves. */
    static final int PARALLEL_MIN = 1 << 15;

    private static final Elementwise K = Elementwise.get();

    private Broadcast() {}

    /** The numpy broadcast of two shapes; the message names the op and both shapes when they do not broadcast. */
    static int[] shape(String op, int[] a, int[] b) {
        int r = Math.max(a.length, b.length);
        int[] out = new int[r];
        for (int i = 0; i < r; i++) {
            int da = i < r - a.length ? 1 : a[i - (r - a.length)];
            int db = i < r - b.length ? 1 : b[i - (r - b.length)];
            if (da != db && da != 1 && db != 1)
                throw new IllegalArgumentException(op + ": shapes " + Arrays.toString(a) + " and " + Arrays.toString(b)
                        + " do not broadcast (dim " + i + " of the result: " + da + " vs " + db + ")");
            out[i] = da == 1 ? db : da;
        }
        return out;
    }

    /**
     * Strides of a tensor with {@code shape}/{@code strides}, right-aligned to {@code target} (rank >= its own),
     * with 0 on every axis the tensor broadcasts over.
     */
    static int[] alignedStrides(int[] shape, int[] strides, int[] target) {
        int r = target.length, off = r - shape.length;
        if (off < 0) throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has higher rank than " + Arrays.toString(target));
        int[] st = new int[r];
        for (int i = 0; i < shape.length; i++) {
            int d = shape[i], t = target[i + off];
            if (d == t) st[i + off] = d == 1 ? 0 : strides[i];
            else if (d == 1) st[i + off] = 0;
            else throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " does not broadcast to " + Arrays.toString(target));
        }
        return st;
    }

    /** {@code t} itself if it is heap F32 (any strides), else a dense F32 copy. */
    static Tensor heapF32(Tensor t) {
        return t.dtype() == DType.F32 && t.storage().isHeap() ? t : t.copyToF32();
    }

    // ------------------------------------------------------------------------------------------- loops over tensors

    /** {@code out = a op b} with broadcasting; a and b heap F32 of any strides, out dense of the broadcast shape. */
    static void binary(Elementwise.Op op, Tensor a, Tensor b, Tensor out) {
        int[] shape = out.shape();
        float[] ad = a.storage().array(), bd = b.storage().array(), cd = out.data();
        Loop p = Loop.of(shape,
                new int[][] {alignedStrides(a.shape(), a.strides(), shape), alignedStrides(b.shape(), b.strides(), shape), out.strides()},
                new int[] {off(a), off(b), out.dataOffset()});
        int sa = p.inner(0), sb = p.inner(1), sc = p.inner(2);
        p.run(2, (oa, ob, oc, n) -> {
            if (sc == 1 && sa == 1 && sb == 1) K.binary(op, ad, oa, bd, ob, cd, oc, n);
            else if (sc == 1 && sa == 1 && sb == 0) K.binaryScalarRight(op, ad, oa, bd[ob], cd, oc, n);
            else if (sc == 1 && sa == 0 && sb == 1) K.binaryScalarLeft(op, ad[oa], bd, ob, cd, oc, n);
            else stridedBinary(op, ad, oa, sa, bd, ob, sb, cd, oc, sc, n);
        });
    }

    /**
     * {@code dst += alpha * src}, broadcasting both ways: axes where dst has size 1 and src does not are summed
     * (gradient of a broadcast, sum over axes), axes where src has size 1 are repeated (gradient of a sum).
     * Both are heap F32 of any strides; dst must not overlap itself (a view of a dense buffer).
     */
    static void accumulate(Tensor dst, Tensor src, float alpha) {
        int[] shape = shape("accumulate", dst.shape(), src.shape());
        float[] dd = dst.storage().array(), sd = src.storage().array();
        Loop p = Loop.of(shape,
                new int[][] {alignedStrides(dst.shape(), dst.strides(), shape), alignedStrides(src.shape(), src.strides(), shape)},
                new int[] {off(dst), off(src)});
        int sdst = p.inner(0), ssrc = p.inner(1);
        if (p.rank == 1 && sdst == 0 && ssrc == 1 && p.total >= 2L * PARALLEL_MIN) { // one long sum: partial sums per chunk
            dd[p.base[0]] += alpha * parallelSum(sd, p.base[1], p.shape[0]);
            return;
        }
        p.run(0, (od, os, unused, n) -> {
            if (sdst == 1 && ssrc == 1) {
                if (alpha == 1f) K.add(dd, od, sd, os, dd, od, n); else K.axpy(alpha, sd, os, dd, od, n);
            } else if (sdst == 1 && ssrc == 0) K.addScalar(dd, od, alpha * sd[os], dd, od, n);
            else if (sdst == 0 && ssrc == 1) dd[od] += alpha * K.sum(sd, os, n);
            else for (int i = 0; i < n; i++) dd[od + i * sdst] += alpha * sd[os + i * ssrc];
        });
    }

    /** {@code dst = src} (src broadcast to dst's shape); both heap F32, any strides. */
    static void copy(Tensor dst, Tensor src) {
        int[] shape = dst.shape();
        float[] dd = dst.storage().array(), sd = src.storage().array();
        Loop p = Loop.of(shape,
                new int[][] {dst.strides(), alignedStrides(src.shape(), src.strides(), shape)},
                new int[] {off(dst), off(src)});
        int sdst = p.inner(0), ssrc = p.inner(1);
        p.run(0, (od, os, unused, n) -> {
            if (sdst == 1 && ssrc == 1) System.arraycopy(sd, os, dd, od, n);
            else if (sdst == 1 && ssrc == 0) K.fill(sd[os], dd, od, n);
            else for (int i = 0; i < n; i++) dd[od + i * sdst] = sd[os + i * ssrc];
        });
    }

    /** Runs {@code body} over [0, n) in parallel chunks of at least {@link #PARALLEL_MIN} (inline when small). */
    static void flat(int n, Parallel.RangeBody body) {
        if (n < 2 * PARALLEL_MIN) { if (n > 0) body.run(0, n); return; }
        Parallel.forRange(0, n, PARALLEL_MIN, body);
    }

    /** Sum of one long run: per-thread partial sums, added in a fixed order (deterministic for a thread count). */
    static float parallelSum(float[] a, int ao, int n) {
        int chunks = Math.max(1, Math.min(Parallel.threads(), n / PARALLEL_MIN));
        if (chunks == 1) return K.sum(a, ao, n);
        float[] partial = new float[chunks];
        Parallel.forRange(0, chunks, 1, (c0, c1) -> {
            for (int c = c0; c < c1; c++) {
                int from = (int) ((long) n * c / chunks), to = (int) ((long) n * (c + 1) / chunks);
                partial[c] = K.sum(a, ao + from, to - from);
            }
        });
        float s = 0;
        for (float v : partial) s += v;
        return s;
    }

    private static int off(Tensor t) { return Math.toIntExact(t.offset()); }

    private static void stridedBinary(Elementwise.Op op, float[] a, int oa, int sa, float[] b, int ob, int sb, float[] c, int oc, int sc, int n) {
        switch (op) {
            case ADD -> { for (int i = 0; i < n; i++) c[oc + i * sc] = a[oa + i * sa] + b[ob + i * sb]; }
            case SUB -> { for (int i = 0; i < n; i++) c[oc + i * sc] = a[oa + i * sa] - b[ob + i * sb]; }
            case MUL -> { for (int i = 0; i < n; i++) c[oc + i * sc] = a[oa + i * sa] * b[ob + i * sb]; }
            case DIV -> { for (int i = 0; i < n; i++) c[oc + i * sc] = a[oa + i * sa] / b[ob + i * sb]; }
        }
    }

    // ------------------------------------------------------------------------------------------- loop nest

    /** The body of a loop nest: one contiguous-index run of {@code n} elements at the operands' offsets. */
    @FunctionalInterface
    interface Run { void run(int o0, int o1, int o2, int n); }

    /** A coalesced loop nest over up to three operands. */
    static final class Loop {
        final int rank;        // >= 1
        final int[] shape;     // [rank], every entry > 1 except a lone [1] or an empty loop's 0
        final int[][] strides; // [ops][rank]
        final int[] base;      // [ops] element offsets
        final long total;

        private Loop(int[] shape, int[][] strides, int[] base) {
            this.rank = shape.length;
            this.shape = shape;
            this.strides = strides;
            this.base = base;
            long t = 1;
            for (int d : shape) t *= d;
            this.total = t;
        }

        int inner(int op) { return op < strides.length ? strides[op][rank - 1] : 0; }

        /** Drops size-1 axes and merges adjacent axes that every operand walks with matching strides. */
        static Loop of(int[] shape, int[][] strides, int[] base) {
            int ops = strides.length;
            for (int d : shape) if (d == 0) return new Loop(new int[] {0}, new int[ops][1], base);
            int[] s = new int[shape.length];
            int[][] st = new int[ops][shape.length];
            int r = 0;
            for (int i = 0; i < shape.length; i++) {
                if (shape[i] == 1) continue;
                if (r > 0 && mergeable(strides, i, st, r - 1, s[r - 1], shape[i])) {
                    for (int o = 0; o < ops; o++) st[o][r - 1] = strides[o][i];
                    s[r - 1] *= shape[i];
                } else {
                    for (int o = 0; o < ops; o++) st[o][r] = strides[o][i];
                    s[r++] = shape[i];
                }
            }
            if (r == 0) return new Loop(new int[] {1}, new int[ops][1], base); // a single element
            int[][] trimmed = new int[ops][];
            for (int o = 0; o < ops; o++) trimmed[o] = Arrays.copyOf(st[o], r);
            return new Loop(Arrays.copyOf(s, r), trimmed, base);
        }

        // axis i (size n) can merge into the previous kept axis when, for every operand, stepping the previous
        // axis once equals stepping axis i n times
        private static boolean mergeable(int[][] strides, int i, int[][] st, int prev, int prevSize, int n) {
            for (int o = 0; o < strides.length; o++) if (st[o][prev] != (long) strides[o][i] * n) return false;
            return true;
        }

        /**
         * Runs the nest, in parallel when large. {@code dst} is the operand written: parallel chunks never write
         * the same element of it.
         */
        void run(int dst, Run body) {
            if (total == 0) return;
            int n = shape[rank - 1];
            int outer = (int) (total / n);
            int chunks = (int) Math.min(Parallel.threads(), total / PARALLEL_MIN);
            if (chunks >= 2) {
                boolean outerSafe = rank > 1;
                for (int d = 0; d < rank - 1 && outerSafe; d++) if (strides[dst][d] == 0) outerSafe = false;
                boolean innerSafe = strides[dst][rank - 1] != 0 && n >= chunks * 64;
                if (outerSafe && (outer >= chunks || !innerSafe)) {
                    Parallel.forRange(0, outer, Math.max(1, outer / chunks), (o0, o1) -> range(o0, o1, 0, n, body));
                    return;
                }
                if (innerSafe) {
                    Parallel.forRange(0, n, Math.max(1, n / chunks), (i0, i1) -> range(0, outer, i0, i1, body));
                    return;
                }
            }
            range(0, outer, 0, n, body);
        }

        /** Outer indices [o0, o1), inner indices [i0, i1). */
        private void range(int o0, int o1, int i0, int i1, Run body) {
            int ops = strides.length;
            int[] idx = new int[rank];
            int[] off = new int[3];
            for (int o = 0; o < ops; o++) off[o] = base[o] + i0 * strides[o][rank - 1];
            int r = o0;
            for (int d = rank - 2; d >= 0; d--) {
                idx[d] = r % shape[d];
                r /= shape[d];
                for (int o = 0; o < ops; o++) off[o] += idx[d] * strides[o][d];
            }
            int len = i1 - i0;
            for (int it = o0; it < o1; it++) {
                body.run(off[0], off[1], off[2], len);
                for (int d = rank - 2; d >= 0; d--) {
                    for (int o = 0; o < ops; o++) off[o] += strides[o][d];
                    if (++idx[d] < shape[d]) break;
                    for (int o = 0; o < ops; o++) off[o] -= shape[d] * strides[o][d];
                    idx[d] = 0;
                }
            }
        }
    }
}
