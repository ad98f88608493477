package io.peft4j.kernels;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Outputs 16 columns wide (the LoRA down-projection {@code x·A^T} at rank 16) with the vectors along n and
 * A's elements broadcast two at a time. One 64-bit broadcast load ({@code vbroadcastsd}) puts the pair
 * (A[i,p], A[i,p+1]) in every lane pair, and B is re-laid so that lane 2j+q of a vector holds B[p+q, j]; each
 * broadcast then feeds two FMAs (columns 0-7 and 8-15), the ratio of the big GEMM's 12 x 32 tile.
 *
 * <p>Why: a one-float broadcast per FMA (vectors along n, one B vector) is bound by the load ports at about half
 * the FMA peak, and the dot-product form ({@link GemmDot}) by vector loads of A that straddle cache lines and 16
 * lane sums per tile. This kernel reads A in place (row-major heap F32, through a heap segment: 8-byte loads that
 * never straddle a line when the row starts on an even float), and B from 64-byte aligned native memory.
 * 512 x 768 x 16 on one thread: 1.40x GemmDot; on two, 1.39x (in-process paired rounds).
 *
 * <p>A tile is 8 rows: 16 accumulators, 2 B vectors and 8 broadcasts. With 12 rows C2 loads all 12 broadcasts
 * first and spills 6 accumulators (38 live vectors for 32 registers). Each output's even and odd k are summed in
 * separate lanes, in k order, and added once at the end (a fixed order: the same bits interpreted or compiled);
 * an odd k's last product is added after that. Gemm routes here only on CPUs with 512-bit vectors
 * ({@link #AVAILABLE}); elsewhere {@link GemmDot} runs.
 */
final class GemmPairs {
    private GemmPairs() {}

    // Always 512-bit species, so that the kernel is correct (if slow, emulated) on any CPU and tested everywhere.
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_512;
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_512;
    private static final int L = 16;
    /** Whether Gemm routes to this kernel: the CPU has 512-bit vectors (and so the 32 registers the tile needs). */
    static final boolean AVAILABLE = GemmKernels.L == L;
    /** The one output width this kernel computes (narrower outputs would waste lanes: GemmDot is faster there). */
    static final int N = 16;
    /** Rows of the register tile. */
    static final int MR = 8;
    private static final ValueLayout.OfDouble PAIR = ValueLayout.JAVA_DOUBLE_UNALIGNED;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfFloat F32U = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ByteOrder NATIVE = GemmKernels.NATIVE;
    /**
     * selectFrom indices (>= L picks from the second vector): the even (odd) lanes of two vectors, the first one's in
     * lanes 0-7; and the interleaved low (high) halves of two vectors, a0 b0 a1 b1 ... (a8 b8 a9 b9 ...).
     */
    private static final FloatVector EVEN, ODD, INTERLEAVE_LO, INTERLEAVE_HI;
    static {
        float[] e = new float[L], o = new float[L], lo = new float[L], hi = new float[L];
        for (int i = 0; i < L; i++) {
            e[i] = 2 * i;
            o[i] = 2 * i + 1;
            lo[i] = GemmKernels.interleaveIndex(i, L, false);
            hi[i] = GemmKernels.interleaveIndex(i, L, true);
        }
        EVEN = FloatVector.fromArray(S, e, 0);
        ODD = FloatVector.fromArray(S, o, 0);
        INTERLEAVE_LO = FloatVector.fromArray(S, lo, 0);
        INTERLEAVE_HI = FloatVector.fromArray(S, hi, 0);
    }

    /** Per calling thread: B re-laid in pairs of k, in 64-byte aligned native memory, reused across calls. */
    private static final ThreadLocal<MemorySegment> BP = new ThreadLocal<>();

    /**
     * Copies B [k, 16] into the calling thread's pair layout, valid until its next call: ceil(k/2) pairs of two
     * 16-float vectors; lane 2j+q of vector h of pair pp is B[2pp+q, 8h+j] (zero past k).
     */
    static MemorySegment relayoutB(GemmOperand b) {
        int k = b.rows, n = b.cols, pairs = (k + 1) / 2;
        if (n != N) throw new IllegalArgumentException("GemmPairs: B must have " + N + " columns, got " + b);
        long floats = 2L * L * pairs;
        MemorySegment bp = BP.get();
        if (bp == null || bp.byteSize() < 4 * floats) {
            bp = GemmKernels.alignedFloats(Math.max(floats, 2048));
            BP.set(bp);
        }
        if (b.rowMajor() && b.array != null) {
            // Two rows of B are one pair: interleave their low halves, then their high halves (2 permutes).
            float[] src = b.array;
            int s = Math.toIntExact(b.off), rs = b.rs;
            FloatVector z = FloatVector.zero(S);
            for (int pp = 0; pp < pairs; pp++) {
                int p = 2 * pp;
                FloatVector r0 = FloatVector.fromArray(S, src, s + p * rs);
                FloatVector r1 = p + 1 < k ? FloatVector.fromArray(S, src, s + (p + 1) * rs) : z;
                long o = 8L * L * pp;
                INTERLEAVE_LO.selectFrom(r0, r1).intoMemorySegment(bp, o, NATIVE);
                INTERLEAVE_HI.selectFrom(r0, r1).intoMemorySegment(bp, o + 4L * L, NATIVE);
            }
            return bp;
        }
        if (b.colMajor() && b.array != null && k >= L) {
            // B's columns (the rows of the LoRA weight A [r, k]) are contiguous, so each block of 8 columns x 8 pairs
            // of k is an 8 x 8 matrix of 64-bit pairs, and its transpose is the pair layout: three rounds of
            // interleaving row i with row i + 4 (24 permutes per 8 vectors). Pairs past the last whole block of 16
            // k take the element loop below.
            float[] src = b.array;
            int s = Math.toIntExact(b.off), cs = b.cs, p0 = 0;
            for (; p0 + L <= k; p0 += L)
                for (int h = 0; h < 2; h++) transposePairs(src, s + 8 * h * cs + p0, cs, bp, 4L * L * (p0 + h));
            for (int p = p0; p < 2 * pairs; p++) {
                long o = 8L * L * (p / 2) + 4L * (p & 1);
                for (int j = 0; j < n; j++) bp.set(F32, o + 4L * (j / 8 * L + 2 * (j % 8)), p < k ? src[s + j * cs + p] : 0f);
            }
            return bp;
        }
        bp.asSlice(0, 4 * floats).fill((byte) 0);
        if (b.colMajor()) {
            float[] col = new float[k];
            for (int j = 0; j < n; j++) {
                b.read(b.index(0, j), col, 0, k);
                long lane = 4L * (j / 8 * L + 2 * (j % 8));
                for (int p = 0; p < k; p++) bp.set(F32, 8L * L * (p / 2) + lane + 4L * (p & 1), col[p]);
            }
        } else {
            float[] row = new float[n];
            for (int p = 0; p < k; p++) {
                b.read(b.index(p, 0), row, 0, n);
                long o = 8L * L * (p / 2) + 4L * (p & 1);
                for (int j = 0; j < n; j++) bp.set(F32, o + 4L * (j / 8 * L + 2 * (j % 8)), row[j]);
            }
        }
        return bp;
    }

    /** Double-lane indices of the 8 x 8 pair transpose: lane i of (a, b) interleaved from their low (high) halves. */
    private static final DoubleVector PAIR_LO, PAIR_HI;
    static {
        double[] lo = new double[8], hi = new double[8];
        for (int i = 0; i < 8; i++) {
            lo[i] = GemmKernels.interleaveIndex(i, 8, false);
            hi[i] = GemmKernels.interleaveIndex(i, 8, true);
        }
        PAIR_LO = DoubleVector.fromArray(DS, lo, 0);
        PAIR_HI = DoubleVector.fromArray(DS, hi, 0);
    }

    /**
     * Writes the transpose of 8 rows x 8 float pairs ({@code src[so]}, row stride {@code lds}) as 8 vectors of 16 floats,
     * {@code 8 * L} floats apart, into {@code dst} from byte offset {@code dOff}: vector q holds pair q of each row.
     */
    private static void transposePairs(float[] src, int so, int lds, MemorySegment dst, long dOff) {
        DoubleVector lo = PAIR_LO, hi = PAIR_HI;
        DoubleVector r0 = FloatVector.fromArray(S, src, so).reinterpretAsDoubles();
        DoubleVector r1 = FloatVector.fromArray(S, src, so + lds).reinterpretAsDoubles();
        DoubleVector r2 = FloatVector.fromArray(S, src, so + 2 * lds).reinterpretAsDoubles();
        DoubleVector r3 = FloatVector.fromArray(S, src, so + 3 * lds).reinterpretAsDoubles();
        DoubleVector r4 = FloatVector.fromArray(S, src, so + 4 * lds).reinterpretAsDoubles();
        DoubleVector r5 = FloatVector.fromArray(S, src, so + 5 * lds).reinterpretAsDoubles();
        DoubleVector r6 = FloatVector.fromArray(S, src, so + 6 * lds).reinterpretAsDoubles();
        DoubleVector r7 = FloatVector.fromArray(S, src, so + 7 * lds).reinterpretAsDoubles();
        for (int round = 0; round < 3; round++) {
            DoubleVector n0 = lo.selectFrom(r0, r4), n1 = hi.selectFrom(r0, r4);
            DoubleVector n2 = lo.selectFrom(r1, r5), n3 = hi.selectFrom(r1, r5);
            DoubleVector n4 = lo.selectFrom(r2, r6), n5 = hi.selectFrom(r2, r6);
            DoubleVector n6 = lo.selectFrom(r3, r7), n7 = hi.selectFrom(r3, r7);
            r0 = n0; r1 = n1; r2 = n2; r3 = n3; r4 = n4; r5 = n5; r6 = n6; r7 = n7;
        }
        long step = 8L * L;
        r0.reinterpretAsFloats().intoMemorySegment(dst, dOff, NATIVE);
        r1.reinterpretAsFloats().intoMemorySegment(dst, dOff + step, NATIVE);
        r2.reinterpretAsFloats().intoMemorySegment(dst, dOff + 2 * step, NATIVE);
        r3.reinterpretAsFloats().intoMemorySegment(dst, dOff + 3 * step, NATIVE);
        r4.reinterpretAsFloats().intoMemorySegment(dst, dOff + 4 * step, NATIVE);
        r5.reinterpretAsFloats().intoMemorySegment(dst, dOff + 5 * step, NATIVE);
        r6.reinterpretAsFloats().intoMemorySegment(dst, dOff + 6 * step, NATIVE);
        r7.reinterpretAsFloats().intoMemorySegment(dst, dOff + 7 * step, NATIVE);
    }

    /** C[m, 16] (+)= A·B with A row-major heap F32 and bp = {@link #relayoutB}(B). */
    static void multiply(GemmOperand a, MemorySegment bp, int k, float[] c, int cOff, int ldc, boolean accumulate) {
        int m = a.rows;
        if (m == 0) return;
        MemorySegment as = MemorySegment.ofArray(a.array);
        long aBase = 4 * a.off, lda = 4L * a.rs;
        int tiles = (m + MR - 1) / MR;
        int grain = (int) Math.max(1, 250_000L / ((long) MR * k * L));
        // B's row k-1 when k is odd (its pair's even lanes): that product is added after the pair sums.
        FloatVector lastB = k % 2 == 0 ? null : EVEN.selectFrom(
                FloatVector.fromMemorySegment(S, bp, 8L * L * (k / 2), NATIVE),
                FloatVector.fromMemorySegment(S, bp, 8L * L * (k / 2) + 4L * L, NATIVE));
        Parallel.forRange(0, tiles, grain, (t0, t1) -> {
            float[] out = new float[MR * L];
            for (int t = t0; t < t1; t++) {
                int i0 = t * MR, mr = Math.min(MR, m - i0);
                long row0 = aBase + i0 * lda;
                tile(as, row0, lda, mr, bp, k / 2, out);
                finish(out, as, row0, lda, mr, k, lastB, c, cOff + i0 * ldc, ldc, accumulate);
            }
        });
    }

    /**
     * Sums MR rows (rows past {@code mr} repeat the last real one; their sums are ignored) over the first
     * 2 * pairs k into {@code out} [MR][16]. Kept free of edge logic: a bigger method would exceed C2's inlining
     * budget and box the accumulators (see {@link GemmKernels}).
     */
    private static void tile(MemorySegment as, long aByte, long ldaByte, int mr, MemorySegment bp, int pairs, float[] out) {
        FloatVector z = FloatVector.zero(S);
        FloatVector c0_0 = z, c0_1 = z;
        FloatVector c1_0 = z, c1_1 = z;
        FloatVector c2_0 = z, c2_1 = z;
        FloatVector c3_0 = z, c3_1 = z;
        FloatVector c4_0 = z, c4_1 = z;
        FloatVector c5_0 = z, c5_1 = z;
        FloatVector c6_0 = z, c6_1 = z;
        FloatVector c7_0 = z, c7_1 = z;
        long o0 = aByte;
        long o1 = aByte + Math.min(1, mr - 1) * ldaByte;
        long o2 = aByte + Math.min(2, mr - 1) * ldaByte;
        long o3 = aByte + Math.min(3, mr - 1) * ldaByte;
        long o4 = aByte + Math.min(4, mr - 1) * ldaByte;
        long o5 = aByte + Math.min(5, mr - 1) * ldaByte;
        long o6 = aByte + Math.min(6, mr - 1) * ldaByte;
        long o7 = aByte + Math.min(7, mr - 1) * ldaByte;
        for (int pp = 0; pp < pairs; pp++) {
            long q = 8L * pp, bq = 8L * L * pp;
            FloatVector b0 = FloatVector.fromMemorySegment(S, bp, bq, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, bp, bq + 4L * L, NATIVE);
            FloatVector av;
            av = DoubleVector.broadcast(DS, as.get(PAIR, o0 + q)).reinterpretAsFloats(); c0_0 = av.fma(b0, c0_0); c0_1 = av.fma(b1, c0_1);
            av = DoubleVector.broadcast(DS, as.get(PAIR, o1 + q)).reinterpretAsFloats(); c1_0 = av.fma(b0, c1_0); c1_1 = av.fma(b1, c1_1);
            av = DoubleVector.broadcast(DS, as.get(PAIR, o2 + q)).reinterpretAsFloats(); c2_0 = av.fma(b0, c2_0); c2_1 = av.fma(b1, c2_1);
            av = DoubleVector.broadcast(DS, as.get(PAIR, o3 + q)).reinterpretAsFloats(); c3_0 = av.fma(b0, c3_0); c3_1 = av.fma(b1, c3_1);
            av = DoubleVector.broadcast(DS, as.get(PAIR, o4 + q)).reinterpretAsFloats(); c4_0 = av.fma(b0, c4_0); c4_1 = av.fma(b1, c4_1);
            av = DoubleVector.broadcast(DS, as.get(PAIR, o5 + q)).reinterpretAsFloats(); c5_0 = av.fma(b0, c5_0); c5_1 = av.fma(b1, c5_1);
            av = DoubleVector.broadcast(DS, as.get(PAIR, o6 + q)).reinterpretAsFloats(); c6_0 = av.fma(b0, c6_0); c6_1 = av.fma(b1, c6_1);
            av = DoubleVector.broadcast(DS, as.get(PAIR, o7 + q)).reinterpretAsFloats(); c7_0 = av.fma(b0, c7_0); c7_1 = av.fma(b1, c7_1);
        }
        // Lane 2j (2j+1) of accumulator h holds column 8h+j summed over even (odd) k: add the two.
        EVEN.selectFrom(c0_0, c0_1).add(ODD.selectFrom(c0_0, c0_1)).intoArray(out, 0 * L);
        EVEN.selectFrom(c1_0, c1_1).add(ODD.selectFrom(c1_0, c1_1)).intoArray(out, 1 * L);
        EVEN.selectFrom(c2_0, c2_1).add(ODD.selectFrom(c2_0, c2_1)).intoArray(out, 2 * L);
        EVEN.selectFrom(c3_0, c3_1).add(ODD.selectFrom(c3_0, c3_1)).intoArray(out, 3 * L);
        EVEN.selectFrom(c4_0, c4_1).add(ODD.selectFrom(c4_0, c4_1)).intoArray(out, 4 * L);
        EVEN.selectFrom(c5_0, c5_1).add(ODD.selectFrom(c5_0, c5_1)).intoArray(out, 5 * L);
        EVEN.selectFrom(c6_0, c6_1).add(ODD.selectFrom(c6_0, c6_1)).intoArray(out, 6 * L);
        EVEN.selectFrom(c7_0, c7_1).add(ODD.selectFrom(c7_0, c7_1)).intoArray(out, 7 * L);
    }

    /** Adds row k-1's product when k is odd, then writes (or adds) the real mr rows of {@code out} into C. */
    private static void finish(float[] out, MemorySegment as, long row0, long lda, int mr, int k, FloatVector lastB,
                               float[] c, int cOff, int ldc, boolean accumulate) {
        for (int i = 0; i < mr; i++) {
            FloatVector v = FloatVector.fromArray(S, out, i * L);
            if (lastB != null) v = FloatVector.broadcast(S, as.get(F32U, row0 + i * lda + 4L * (k - 1))).fma(lastB, v);
            int ci = cOff + i * ldc;
            if (accumulate) v = v.add(FloatVector.fromArray(S, c, ci));
            v.intoArray(c, ci);
        }
    }
}
