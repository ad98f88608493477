package io.peft4j.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * The small-M path (decode: 1 to {@link #MAX_M} rows of A). Memory-bound: B is streamed exactly once, straight
 * from its storage (heap F32, or a memory segment of F32/BF16/F16; BF16 widened with vector shifts), never packed.
 * A [m, k] is dense F32 (tiny). Threads split the columns of C.
 *
 * <ul>
 *   <li>Column-major B ({@code x·W^T} with W [n, k] row-major, the usual weight layout): each C element is a dot
 *       product of an A row with a W row; four W rows at a time, each loaded once and reused for all m A rows
 *       while it sits in L1.</li>
 *   <li>Row-major B: C rows accumulate {@code a[i,p] * B[p, :]} over p, one B row at a time, on a column chunk
 *       whose m accumulator rows stay in L1.</li>
 * </ul>
 */
final class Matvec {
    private Matvec() {}

    /** The largest m that takes this path. */
    static final int MAX_M = 4;
    private static final VectorSpecies<Float> S = GemmKernels.S;
    private static final int L = S.length();
    /** Columns per chunk in the row-major form: m accumulator rows of CHUNK floats stay in L1. */
    private static final int CHUNK = 1024;

    /** C[m, n] (+)= A[m, k] · B[k, n]; a dense row-major from aOff with row stride lda. */
    static void multiply(float[] a, int aOff, int lda, int m, GemmOperand b, float[] c, int cOff, int ldc, boolean accumulate) {
        int k = b.rows, n = b.cols;
        if (m == 0 || n == 0) return;
        if (k == 0) {
            if (!accumulate) for (int i = 0; i < m; i++) Arrays.fill(c, cOff + i * ldc, cOff + i * ldc + n, 0f);
            return;
        }
        if (b.colMajor() && !(b.rowMajor() && n > 1)) {
            // ~64 KB of B per grain unit of 4 columns is far too fine; ask for ~256 KB of B per chunk.
            int groups = (n + 3) / 4;
            int grain = Math.max(1, (int) (65536L / Math.max(1, (long) k)));
            Parallel.forRange(0, groups, grain, (g0, g1) -> dots(a, aOff, lda, m, b, c, cOff, ldc, accumulate, g0 * 4, Math.min(n, g1 * 4)));
        } else {
            int chunks = (n + CHUNK - 1) / CHUNK;
            Parallel.forRange(0, chunks, 1, (q0, q1) -> {
                float[] acc = new float[m * CHUNK], row = b.array == null ? new float[CHUNK] : null;
                for (int q = q0; q < q1; q++)
                    axpyChunk(a, aOff, lda, m, b, c, cOff, ldc, accumulate, q * CHUNK, Math.min(n, (q + 1) * CHUNK), acc, row);
            });
        }
    }

    private static void dots(float[] a, int aOff, int lda, int m, GemmOperand b, float[] c, int cOff, int ldc,
                             boolean accumulate, int j0, int j1) {
        int k = b.rows;
        if (b.segment != null && b.dtype == io.peft4j.tensor.DType.BF16 && k >= 2 * L) {
            dotsBf16(a, aOff, lda, m, b, c, cOff, ldc, accumulate, j0, j1);
            return;
        }
        boolean direct = b.array != null;
        float[] tmp = direct ? null : new float[4 * k];
        float[] out = new float[4];
        for (int j = j0; j < j1; j += 4) {
            int cnt = Math.min(4, j1 - j);
            float[] w;
            int o0, o1, o2, o3;
            if (direct) {
                w = b.array;
                o0 = Math.toIntExact(b.index(0, j));
                o1 = cnt > 1 ? Math.toIntExact(b.index(0, j + 1)) : o0;
                o2 = cnt > 2 ? Math.toIntExact(b.index(0, j + 2)) : o0;
                o3 = cnt > 3 ? Math.toIntExact(b.index(0, j + 3)) : o0;
            } else {
                w = tmp;
                for (int t = 0; t < cnt; t++) b.read(b.index(0, j + t), tmp, t * k, k);
                o0 = 0;
                o1 = cnt > 1 ? k : 0;
                o2 = cnt > 2 ? 2 * k : 0;
                o3 = cnt > 3 ? 3 * k : 0;
            }
            for (int i = 0; i < m; i++) {
                dot4(a, aOff + i * lda, w, o0, o1, o2, o3, k, out);
                int ci = cOff + i * ldc + j;
                for (int t = 0; t < cnt; t++) c[ci + t] = accumulate ? c[ci + t] + out[t] : out[t];
            }
        }
    }

    private static final VectorSpecies<Integer> SI = VectorSpecies.of(int.class, S.vectorShape());

    /**
     * Decode over mapped BF16 weights in one pass, no F32 copy: 2L BF16 values load as L ints whose low halves are the
     * even elements and high halves the odd ones; each half is an F32 vector after a shift or a mask. A is split once
     * into its even and odd elements to match. Halves the bytes streamed compared with F32 weights.
     */
    private static void dotsBf16(float[] a, int aOff, int lda, int m, GemmOperand b, float[] c, int cOff, int ldc,
                                 boolean accumulate, int j0, int j1) {
        int k = b.rows, half = k / 2;
        float[] even = new float[m * half], odd = new float[m * half];   // [m, k/2] each
        for (int i = 0; i < m; i++)
            for (int q = 0; q < half; q++) {
                even[i * half + q] = a[aOff + i * lda + 2 * q];
                odd[i * half + q] = a[aOff + i * lda + 2 * q + 1];
            }
        java.lang.foreign.MemorySegment seg = b.segment;
        for (int j = j0; j < j1; j++) {
            long base = b.index(0, j) * 2;          // byte offset of W row j (contiguous over k)
            for (int i = 0; i < m; i++) {
                FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S);
                int q = 0;
                for (; q <= half - L; q += L) {
                    jdk.incubator.vector.IntVector v = jdk.incubator.vector.IntVector.fromMemorySegment(SI, seg, base + 4L * q, java.nio.ByteOrder.LITTLE_ENDIAN);
                    FloatVector lo = v.lanewise(jdk.incubator.vector.VectorOperators.LSHL, 16).reinterpretAsFloats();
                    FloatVector hi = v.and(0xFFFF0000).reinterpretAsFloats();
                    s0 = FloatVector.fromArray(S, even, i * half + q).fma(lo, s0);
                    s1 = FloatVector.fromArray(S, odd, i * half + q).fma(hi, s1);
                }
                float r = GemmDot.sumTree(s0.add(s1));
                for (int p = 2 * q; p < k; p++) r += a[aOff + i * lda + p] * b.storage.getFloat(b.dtype, b.index(p, j));
                int ci = cOff + i * ldc + j;
                c[ci] = accumulate ? c[ci] + r : r;
            }
        }
    }

    /** Four dot products of one A row with four B columns (W rows), each of length k. */
    private static void dot4(float[] a, int ao, float[] w, int o0, int o1, int o2, int o3, int k, float[] out) {
        FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S), s2 = FloatVector.zero(S), s3 = FloatVector.zero(S);
        int p = 0;
        for (; p <= k - L; p += L) {
            FloatVector av = FloatVector.fromArray(S, a, ao + p);
            s0 = av.fma(FloatVector.fromArray(S, w, o0 + p), s0);
            s1 = av.fma(FloatVector.fromArray(S, w, o1 + p), s1);
            s2 = av.fma(FloatVector.fromArray(S, w, o2 + p), s2);
            s3 = av.fma(FloatVector.fromArray(S, w, o3 + p), s3);
        }
        // A fixed summation order (reduceLanes(ADD) has none), so interpreted and compiled code agree bit for bit.
        float r0 = GemmDot.sumTree(s0), r1 = GemmDot.sumTree(s1), r2 = GemmDot.sumTree(s2), r3 = GemmDot.sumTree(s3);
        for (; p < k; p++) {
            float x = a[ao + p];
            r0 += x * w[o0 + p];
            r1 += x * w[o1 + p];
            r2 += x * w[o2 + p];
            r3 += x * w[o3 + p];
        }
        out[0] = r0; out[1] = r1; out[2] = r2; out[3] = r3;
    }

    private static void axpyChunk(float[] a, int aOff, int lda, int m, GemmOperand b, float[] c, int cOff, int ldc,
                                  boolean accumulate, int j0, int j1, float[] acc, float[] row) {
        int k = b.rows, w = j1 - j0;
        Arrays.fill(acc, 0, m * CHUNK, 0f);
        for (int p = 0; p < k; p++) {
            float[] src;
            int so;
            if (row == null) {
                src = b.array;
                so = Math.toIntExact(b.index(p, j0));
            } else {
                b.read(b.index(p, j0), row, 0, w);
                src = row;
                so = 0;
            }
            for (int i = 0; i < m; i++) {
                float x = a[aOff + i * lda + p];
                FloatVector xv = FloatVector.broadcast(S, x);
                int ao = i * CHUNK, t = 0;
                for (; t <= w - L; t += L)
                    xv.fma(FloatVector.fromArray(S, src, so + t), FloatVector.fromArray(S, acc, ao + t)).intoArray(acc, ao + t);
                for (; t < w; t++) acc[ao + t] += x * src[so + t];
            }
        }
        for (int i = 0; i < m; i++) {
            int ci = cOff + i * ldc + j0, ao = i * CHUNK;
            if (accumulate) for (int t = 0; t < w; t++) c[ci + t] += acc[ao + t];
            else System.arraycopy(acc, ao, c, ci, w);
        }
    }
}
