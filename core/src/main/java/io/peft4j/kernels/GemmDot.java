package io.peft4j.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Very narrow outputs (n &lt;= {@link #MAX_N}: the LoRA down-projection {@code x·A^T} with r &lt;= 16) as dot
 * products along k: vectors run over k, a 4 x 4 tile of C keeps 16 accumulators, and each k step loads 4 A and
 * 4 B^T vectors for 16 FMAs. The broadcast-based tile would spend one broadcast per FMA at n = 16 (and waste
 * lanes below 16) and runs at about half the speed. Each tile ends with 16 horizontal sums, ~15% of the work at
 * k = 768 (summed by a fixed butterfly, so the bits do not depend on the JIT). A is read in place (row-major heap
 * F32); B is first copied to a dense B^T [n, k] (tiny) in 64-byte aligned native memory. At n = 16 on CPUs with
 * 512-bit vectors {@link Gemm} uses {@link GemmPairs} instead (1.25-1.46x faster there).
 */
final class GemmDot {
    private GemmDot() {}

    static final int MAX_N = 16;
    private static final VectorSpecies<Float> S = GemmKernels.S;
    private static final int L = S.length();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    private static final ByteOrder NATIVE = GemmKernels.NATIVE;

    /**
     * Per calling thread: B^T [n, k] in native memory aligned to 64 bytes, reused across calls. A heap float[]'s
     * data is only 8-byte aligned, so nearly every 64-byte vector load from it straddles two cache lines; half of
     * this kernel's loads are B^T; aligned, an isolated tile ran ~30% faster (~5-15% in the whole product; A, the
     * caller's array, stays as it is).
     */
    private static final ThreadLocal<MemorySegment> BT = new ThreadLocal<>();

    /** Copies B [k, n] into the calling thread's aligned B^T [n, k] buffer, valid until its next call. */
    static MemorySegment transposeB(GemmOperand b) {
        int k = b.rows, n = b.cols;
        long bytes = 4L * n * k;
        MemorySegment bt = BT.get();
        if (bt == null || bt.byteSize() < bytes) {
            bt = GemmKernels.alignedFloats(Math.max((long) n * k, 1024));
            BT.set(bt);
        }
        if (b.colMajor() && b.array != null) {
            for (int j = 0; j < n; j++) MemorySegment.copy(b.array, Math.toIntExact(b.index(0, j)), bt, F32, 4L * j * k, k);
        } else if (b.array != null) {
            // Row-major heap B (at most 16 columns): one strided pass per column; the source stays in L1. (16 columns
            // with 16-float vectors go to GemmPairs, so a register transpose here would never run.)
            float[] src = b.array;
            int s0 = Math.toIntExact(b.off), rs = b.rs;
            for (int j = 0; j < n; j++) {
                long o = (long) j * k;
                int s = s0 + j * b.cs;
                for (int p = 0; p < k; p++, s += rs) bt.setAtIndex(F32, o + p, src[s]);
            }
        } else if (b.colMajor()) {
            float[] col = new float[k];
            for (int j = 0; j < n; j++) {
                b.read(b.index(0, j), col, 0, k);
                MemorySegment.copy(col, 0, bt, F32, 4L * j * k, k);
            }
        } else {
            float[] row = new float[n];
            for (int p = 0; p < k; p++) {
                b.read(b.index(p, 0), row, 0, n);
                for (int j = 0; j < n; j++) bt.setAtIndex(F32, (long) j * k + p, row[j]);
            }
        }
        return bt;
    }

    /** C[m, n] (+)= A·B with A row-major heap F32 and bt = B^T [n, k]. */
    static void multiply(GemmOperand a, MemorySegment bt, int k, int n, float[] c, int cOff, int ldc, boolean accumulate) {
        int m = a.rows;
        if (m == 0 || n == 0) return;
        if (k == 0) {
            if (!accumulate) for (int i = 0; i < m; i++) Arrays.fill(c, cOff + i * ldc, cOff + i * ldc + n, 0f);
            return;
        }
        int blocks = (m + 3) / 4;
        int grain = (int) Math.max(1, 500_000L / Math.max(1, 8L * k * n));
        float[] ad = a.array;
        int aBase = Math.toIntExact(a.off), lda = a.rs;
        Parallel.forRange(0, blocks, grain, (b0, b1) -> {
            float[] out = new float[16], spill = new float[16 * L];
            for (int blk = b0; blk < b1; blk++) {
                int i0 = blk * 4, mr = Math.min(4, m - i0);
                for (int j0 = 0; j0 < n; j0 += 4) {
                    int nr = Math.min(4, n - j0);
                    // Rows/columns past the edge repeat the last real one; their sums are discarded.
                    tile(ad, aBase + i0 * lda, lda, mr, bt, j0 * k, k, nr, out, spill);
                    for (int i = 0; i < mr; i++) {
                        int ci = cOff + (i0 + i) * ldc + j0;
                        for (int j = 0; j < nr; j++) c[ci + j] = accumulate ? c[ci + j] + out[i * 4 + j] : out[i * 4 + j];
                    }
                }
            }
        });
    }

    private static void tile(float[] a, int aOff, int lda, int mr, MemorySegment bt, int bOff, int k, int nr, float[] out, float[] spill) {
        int a0 = aOff, a1 = aOff + Math.min(1, mr - 1) * lda, a2 = aOff + Math.min(2, mr - 1) * lda, a3 = aOff + Math.min(3, mr - 1) * lda;
        int w0 = bOff, w1 = bOff + Math.min(1, nr - 1) * k, w2 = bOff + Math.min(2, nr - 1) * k, w3 = bOff + Math.min(3, nr - 1) * k;
        // B^T byte offsets as longs linear in p: with an int sum inside (4L * (w + p)) C2 kept a bounds check
        // per load in the loop (7 instructions per B^T load instead of 1).
        long o0 = 4L * w0, o1 = 4L * w1, o2 = 4L * w2, o3 = 4L * w3;
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S), c02 = FloatVector.zero(S), c03 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S), c12 = FloatVector.zero(S), c13 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S), c22 = FloatVector.zero(S), c23 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S), c32 = FloatVector.zero(S), c33 = FloatVector.zero(S);
        int p = 0, full = k - k % L;
        for (; p < full; p += L) {
            long q = 4L * p;
            FloatVector b0 = FloatVector.fromMemorySegment(S, bt, o0 + q, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, bt, o1 + q, NATIVE);
            FloatVector b2 = FloatVector.fromMemorySegment(S, bt, o2 + q, NATIVE);
            FloatVector b3 = FloatVector.fromMemorySegment(S, bt, o3 + q, NATIVE);
            FloatVector x = FloatVector.fromArray(S, a, a0 + p);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01); c02 = x.fma(b2, c02); c03 = x.fma(b3, c03);
            x = FloatVector.fromArray(S, a, a1 + p);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11); c12 = x.fma(b2, c12); c13 = x.fma(b3, c13);
            x = FloatVector.fromArray(S, a, a2 + p);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21); c22 = x.fma(b2, c22); c23 = x.fma(b3, c23);
            x = FloatVector.fromArray(S, a, a3 + p);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31); c32 = x.fma(b2, c32); c33 = x.fma(b3, c33);
        }
        // Leave through a spill (plain stores) and sum in a separate method: 16 reductions inline would exceed
        // C2's inlining budget (see GemmKernels), and reduceLanes(ADD) has no fixed order (interpreted and
        // compiled code could differ in the last bit); sumTree's order is fixed.
        c00.intoArray(spill, 0); c01.intoArray(spill, L); c02.intoArray(spill, 2 * L); c03.intoArray(spill, 3 * L);
        c10.intoArray(spill, 4 * L); c11.intoArray(spill, 5 * L); c12.intoArray(spill, 6 * L); c13.intoArray(spill, 7 * L);
        c20.intoArray(spill, 8 * L); c21.intoArray(spill, 9 * L); c22.intoArray(spill, 10 * L); c23.intoArray(spill, 11 * L);
        c30.intoArray(spill, 12 * L); c31.intoArray(spill, 13 * L); c32.intoArray(spill, 14 * L); c33.intoArray(spill, 15 * L);
        for (int r = 0; r < 16; r++) out[r] = sumTree(FloatVector.fromArray(S, spill, r * L));
        // The k tail in scalar code: a masked vector step here would push the method past C2's inlining budget.
        for (; p < k; p++) {
            float x0 = a[a0 + p], x1 = a[a1 + p], x2 = a[a2 + p], x3 = a[a3 + p];
            float y0 = bt.getAtIndex(F32, w0 + p), y1 = bt.getAtIndex(F32, w1 + p);
            float y2 = bt.getAtIndex(F32, w2 + p), y3 = bt.getAtIndex(F32, w3 + p);
            out[0] += x0 * y0; out[1] += x0 * y1; out[2] += x0 * y2; out[3] += x0 * y3;
            out[4] += x1 * y0; out[5] += x1 * y1; out[6] += x1 * y2; out[7] += x1 * y3;
            out[8] += x2 * y0; out[9] += x2 * y1; out[10] += x2 * y2; out[11] += x2 * y3;
            out[12] += x3 * y0; out[13] += x3 * y1; out[14] += x3 * y2; out[15] += x3 * y3;
        }
    }

    /** Lane-swap shuffles for a butterfly sum: lanes i and i ^ h for h = L/2, L/4, L/8, L/16 (constants for C2). */
    private static final VectorShuffle<Float> SW1 = swap(L / 2), SW2 = swap(L / 4), SW3 = swap(L / 8), SW4 = swap(L / 16);

    private static VectorShuffle<Float> swap(int h) { return h >= 1 ? VectorShuffle.fromOp(S, i -> i ^ h) : null; }

    /** Sum of the lanes by a fixed butterfly (the same bits interpreted or compiled). */
    static float sumTree(FloatVector v) {
        if (L > 16) {   // no such float species today; keep the order well defined anyway
            for (int h = L / 2; h >= 1; h /= 2) { int hh = h; v = v.add(v.rearrange(VectorShuffle.fromOp(S, i -> i ^ hh))); }
            return v.lane(0);
        }
        if (L >= 2) v = v.add(v.rearrange(SW1));
        if (L >= 4) v = v.add(v.rearrange(SW2));
        if (L >= 8) v = v.add(v.rearrange(SW3));
        if (L >= 16) v = v.add(v.rearrange(SW4));
        return v.lane(0);
    }
}
