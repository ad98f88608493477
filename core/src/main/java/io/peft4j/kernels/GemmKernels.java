package io.peft4j.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The GEMM register tiles: MR = 12 rows of C by NR = 2 vectors (32 columns with AVX-512), or by 1 vector for a
 * narrow panel. 24 accumulators stay live in registers for the whole k loop (32 zmm registers: 24 accumulators,
 * 2 B vectors, 1 broadcast of A). B always comes packed ({@link PackedMatrix} layout, rows of NR or L floats in
 * native memory, offsets in bytes);
 * A comes either packed (MR values per k step, contiguous) or straight from a row-major F32 array (the LoRA
 * shapes, where packing A would cost as much as the multiply). The code is written out by hand per accumulator
 * because the Vector API keeps values in registers only when they are plain locals, never in arrays.
 *
 * <p>{@link #packedWide} starts its accumulators from C (or zero) and stores them straight back. Edge tiles
 * (mr &lt; MR or nr &lt; the panel width) compute the full tile on zero-padded panels and leave through
 * {@code tile}, a per-thread scratch of MR x NR floats, from which a separate {@link #storeTile} writes (or adds)
 * the real mr x nr corner into C: a row loop with partial stores inside a kernel makes the method too big for
 * C2's inliner (NodeCountInliningCutoff), the epilogue's Vector API calls then stay calls, every accumulator gets
 * boxed, and the kernel runs 50x slower.
 */
final class GemmKernels {
    private GemmKernels() {}

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Lanes per vector. */
    static final int L = S.length();
    /** Rows of the register tile. */
    static final int MR = 12;
    /** Columns of the register tile: two vectors. */
    static final int NR = 2 * L;
    /** Byte order of the kernels' native buffers (written and read by this process only). */
    static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    /**
     * Native memory for {@code floats} floats, aligned to 64 bytes so every vector row loaded from it is one cache
     * line (a heap float[] cannot be aligned), freed by the GC once unreachable.
     */
    static MemorySegment alignedFloats(long floats) {
        return Arena.ofAuto().allocate(4 * Math.max(1, floats), 64);
    }

    /** Writes (or adds) the real mr x nr corner of a spilled tile [MR][w] into C (row stride ldc). */
    static void storeTile(float[] tile, float[] c, int cOff, int ldc, int mr, int nr, boolean overwrite, int w) {
        int vec = nr / L * L;
        for (int i = 0; i < mr; i++) {
            int ci = cOff + i * ldc, ti = i * w, j = 0;
            if (overwrite) {
                for (; j < vec; j += L) FloatVector.fromArray(S, tile, ti + j).intoArray(c, ci + j);
                for (; j < nr; j++) c[ci + j] = tile[ti + j];
            } else {
                for (; j < vec; j += L)
                    FloatVector.fromArray(S, tile, ti + j).add(FloatVector.fromArray(S, c, ci + j)).intoArray(c, ci + j);
                for (; j < nr; j++) c[ci + j] += tile[ti + j];
            }
        }
    }

    /**
     * A 12 x 32 tile that starts from C (or from zero when {@code overwrite}) and ends by storing into C, with no
     * spill (a spill and {@link #storeTile} pass was ~9% of a large product's time). An edge tile (rows or columns
     * past C) is computed into the per-thread {@code tile} scratch instead ({@code c = tile, ldc = NR}) and
     * {@link #storeTile} writes its real corner.
     */
    static void packedWide(float[] a, int aOff, MemorySegment b, long bOff, int kc, float[] c, int cOff, int ldc, boolean overwrite) {
        FloatVector c0_0, c0_1, c1_0, c1_1, c2_0, c2_1, c3_0, c3_1, c4_0, c4_1, c5_0, c5_1;
        FloatVector c6_0, c6_1, c7_0, c7_1, c8_0, c8_1, c9_0, c9_1, c10_0, c10_1, c11_0, c11_1;
        if (overwrite) {
            FloatVector z = FloatVector.zero(S);
            c0_0 = z; c0_1 = z; c1_0 = z; c1_1 = z; c2_0 = z; c2_1 = z; c3_0 = z; c3_1 = z;
            c4_0 = z; c4_1 = z; c5_0 = z; c5_1 = z; c6_0 = z; c6_1 = z; c7_0 = z; c7_1 = z;
            c8_0 = z; c8_1 = z; c9_0 = z; c9_1 = z; c10_0 = z; c10_1 = z; c11_0 = z; c11_1 = z;
        } else {
            c0_0 = FloatVector.fromArray(S, c, cOff + 0 * ldc); c0_1 = FloatVector.fromArray(S, c, cOff + 0 * ldc + L);
            c1_0 = FloatVector.fromArray(S, c, cOff + 1 * ldc); c1_1 = FloatVector.fromArray(S, c, cOff + 1 * ldc + L);
            c2_0 = FloatVector.fromArray(S, c, cOff + 2 * ldc); c2_1 = FloatVector.fromArray(S, c, cOff + 2 * ldc + L);
            c3_0 = FloatVector.fromArray(S, c, cOff + 3 * ldc); c3_1 = FloatVector.fromArray(S, c, cOff + 3 * ldc + L);
            c4_0 = FloatVector.fromArray(S, c, cOff + 4 * ldc); c4_1 = FloatVector.fromArray(S, c, cOff + 4 * ldc + L);
            c5_0 = FloatVector.fromArray(S, c, cOff + 5 * ldc); c5_1 = FloatVector.fromArray(S, c, cOff + 5 * ldc + L);
            c6_0 = FloatVector.fromArray(S, c, cOff + 6 * ldc); c6_1 = FloatVector.fromArray(S, c, cOff + 6 * ldc + L);
            c7_0 = FloatVector.fromArray(S, c, cOff + 7 * ldc); c7_1 = FloatVector.fromArray(S, c, cOff + 7 * ldc + L);
            c8_0 = FloatVector.fromArray(S, c, cOff + 8 * ldc); c8_1 = FloatVector.fromArray(S, c, cOff + 8 * ldc + L);
            c9_0 = FloatVector.fromArray(S, c, cOff + 9 * ldc); c9_1 = FloatVector.fromArray(S, c, cOff + 9 * ldc + L);
            c10_0 = FloatVector.fromArray(S, c, cOff + 10 * ldc); c10_1 = FloatVector.fromArray(S, c, cOff + 10 * ldc + L);
            c11_0 = FloatVector.fromArray(S, c, cOff + 11 * ldc); c11_1 = FloatVector.fromArray(S, c, cOff + 11 * ldc + L);
        }
        for (int p = 0, ai = aOff; p < kc; p++, ai += MR) {
            long bi = bOff + 4L * NR * p;
            FloatVector b0 = FloatVector.fromMemorySegment(S, b, bi, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, b, bi + 4L * L, NATIVE);
            FloatVector av;
            av = FloatVector.broadcast(S, a[ai + 0]); c0_0 = av.fma(b0, c0_0); c0_1 = av.fma(b1, c0_1);
            av = FloatVector.broadcast(S, a[ai + 1]); c1_0 = av.fma(b0, c1_0); c1_1 = av.fma(b1, c1_1);
            av = FloatVector.broadcast(S, a[ai + 2]); c2_0 = av.fma(b0, c2_0); c2_1 = av.fma(b1, c2_1);
            av = FloatVector.broadcast(S, a[ai + 3]); c3_0 = av.fma(b0, c3_0); c3_1 = av.fma(b1, c3_1);
            av = FloatVector.broadcast(S, a[ai + 4]); c4_0 = av.fma(b0, c4_0); c4_1 = av.fma(b1, c4_1);
            av = FloatVector.broadcast(S, a[ai + 5]); c5_0 = av.fma(b0, c5_0); c5_1 = av.fma(b1, c5_1);
            av = FloatVector.broadcast(S, a[ai + 6]); c6_0 = av.fma(b0, c6_0); c6_1 = av.fma(b1, c6_1);
            av = FloatVector.broadcast(S, a[ai + 7]); c7_0 = av.fma(b0, c7_0); c7_1 = av.fma(b1, c7_1);
            av = FloatVector.broadcast(S, a[ai + 8]); c8_0 = av.fma(b0, c8_0); c8_1 = av.fma(b1, c8_1);
            av = FloatVector.broadcast(S, a[ai + 9]); c9_0 = av.fma(b0, c9_0); c9_1 = av.fma(b1, c9_1);
            av = FloatVector.broadcast(S, a[ai + 10]); c10_0 = av.fma(b0, c10_0); c10_1 = av.fma(b1, c10_1);
            av = FloatVector.broadcast(S, a[ai + 11]); c11_0 = av.fma(b0, c11_0); c11_1 = av.fma(b1, c11_1);
        }
        c0_0.intoArray(c, cOff + 0 * ldc); c0_1.intoArray(c, cOff + 0 * ldc + L);
        c1_0.intoArray(c, cOff + 1 * ldc); c1_1.intoArray(c, cOff + 1 * ldc + L);
        c2_0.intoArray(c, cOff + 2 * ldc); c2_1.intoArray(c, cOff + 2 * ldc + L);
        c3_0.intoArray(c, cOff + 3 * ldc); c3_1.intoArray(c, cOff + 3 * ldc + L);
        c4_0.intoArray(c, cOff + 4 * ldc); c4_1.intoArray(c, cOff + 4 * ldc + L);
        c5_0.intoArray(c, cOff + 5 * ldc); c5_1.intoArray(c, cOff + 5 * ldc + L);
        c6_0.intoArray(c, cOff + 6 * ldc); c6_1.intoArray(c, cOff + 6 * ldc + L);
        c7_0.intoArray(c, cOff + 7 * ldc); c7_1.intoArray(c, cOff + 7 * ldc + L);
        c8_0.intoArray(c, cOff + 8 * ldc); c8_1.intoArray(c, cOff + 8 * ldc + L);
        c9_0.intoArray(c, cOff + 9 * ldc); c9_1.intoArray(c, cOff + 9 * ldc + L);
        c10_0.intoArray(c, cOff + 10 * ldc); c10_1.intoArray(c, cOff + 10 * ldc + L);
        c11_0.intoArray(c, cOff + 11 * ldc); c11_1.intoArray(c, cOff + 11 * ldc + L);
    }
    static void packedNarrow(float[] a, int aOff, MemorySegment b, long bOff, int kc, float[] c, int cOff, int ldc, int mr, int nr, boolean overwrite, float[] tile) {
        FloatVector c0_0 = FloatVector.zero(S);
        FloatVector c1_0 = FloatVector.zero(S);
        FloatVector c2_0 = FloatVector.zero(S);
        FloatVector c3_0 = FloatVector.zero(S);
        FloatVector c4_0 = FloatVector.zero(S);
        FloatVector c5_0 = FloatVector.zero(S);
        FloatVector c6_0 = FloatVector.zero(S);
        FloatVector c7_0 = FloatVector.zero(S);
        FloatVector c8_0 = FloatVector.zero(S);
        FloatVector c9_0 = FloatVector.zero(S);
        FloatVector c10_0 = FloatVector.zero(S);
        FloatVector c11_0 = FloatVector.zero(S);
        for (int p = 0, ai = aOff; p < kc; p++, ai += MR) {
            long bi = bOff + 4L * L * p;
            FloatVector b0 = FloatVector.fromMemorySegment(S, b, bi, NATIVE);
            FloatVector av;
            av = FloatVector.broadcast(S, a[ai + 0]); c0_0 = av.fma(b0, c0_0);
            av = FloatVector.broadcast(S, a[ai + 1]); c1_0 = av.fma(b0, c1_0);
            av = FloatVector.broadcast(S, a[ai + 2]); c2_0 = av.fma(b0, c2_0);
            av = FloatVector.broadcast(S, a[ai + 3]); c3_0 = av.fma(b0, c3_0);
            av = FloatVector.broadcast(S, a[ai + 4]); c4_0 = av.fma(b0, c4_0);
            av = FloatVector.broadcast(S, a[ai + 5]); c5_0 = av.fma(b0, c5_0);
            av = FloatVector.broadcast(S, a[ai + 6]); c6_0 = av.fma(b0, c6_0);
            av = FloatVector.broadcast(S, a[ai + 7]); c7_0 = av.fma(b0, c7_0);
            av = FloatVector.broadcast(S, a[ai + 8]); c8_0 = av.fma(b0, c8_0);
            av = FloatVector.broadcast(S, a[ai + 9]); c9_0 = av.fma(b0, c9_0);
            av = FloatVector.broadcast(S, a[ai + 10]); c10_0 = av.fma(b0, c10_0);
            av = FloatVector.broadcast(S, a[ai + 11]); c11_0 = av.fma(b0, c11_0);
        }
        c0_0.intoArray(tile, 0 * L);
        c1_0.intoArray(tile, 1 * L);
        c2_0.intoArray(tile, 2 * L);
        c3_0.intoArray(tile, 3 * L);
        c4_0.intoArray(tile, 4 * L);
        c5_0.intoArray(tile, 5 * L);
        c6_0.intoArray(tile, 6 * L);
        c7_0.intoArray(tile, 7 * L);
        c8_0.intoArray(tile, 8 * L);
        c9_0.intoArray(tile, 9 * L);
        c10_0.intoArray(tile, 10 * L);
        c11_0.intoArray(tile, 11 * L);
        storeTile(tile, c, cOff, ldc, mr, nr, overwrite, L);
    }

    static void rowsWide(float[] a, int aOff, int lda, int mr, MemorySegment b, long bOff, int kc, float[] c, int cOff, int ldc, int nr, boolean overwrite, float[] tile) {
        FloatVector c0_0 = FloatVector.zero(S), c0_1 = FloatVector.zero(S);
        FloatVector c1_0 = FloatVector.zero(S), c1_1 = FloatVector.zero(S);
        FloatVector c2_0 = FloatVector.zero(S), c2_1 = FloatVector.zero(S);
        FloatVector c3_0 = FloatVector.zero(S), c3_1 = FloatVector.zero(S);
        FloatVector c4_0 = FloatVector.zero(S), c4_1 = FloatVector.zero(S);
        FloatVector c5_0 = FloatVector.zero(S), c5_1 = FloatVector.zero(S);
        FloatVector c6_0 = FloatVector.zero(S), c6_1 = FloatVector.zero(S);
        FloatVector c7_0 = FloatVector.zero(S), c7_1 = FloatVector.zero(S);
        FloatVector c8_0 = FloatVector.zero(S), c8_1 = FloatVector.zero(S);
        FloatVector c9_0 = FloatVector.zero(S), c9_1 = FloatVector.zero(S);
        FloatVector c10_0 = FloatVector.zero(S), c10_1 = FloatVector.zero(S);
        FloatVector c11_0 = FloatVector.zero(S), c11_1 = FloatVector.zero(S);
        // Rows past mr re-read the last real row (results discarded) so no load leaves A.
        int last = mr - 1;
        int r0 = aOff + Math.min(0, last) * lda;
        int r1 = aOff + Math.min(1, last) * lda;
        int r2 = aOff + Math.min(2, last) * lda;
        int r3 = aOff + Math.min(3, last) * lda;
        int r4 = aOff + Math.min(4, last) * lda;
        int r5 = aOff + Math.min(5, last) * lda;
        int r6 = aOff + Math.min(6, last) * lda;
        int r7 = aOff + Math.min(7, last) * lda;
        int r8 = aOff + Math.min(8, last) * lda;
        int r9 = aOff + Math.min(9, last) * lda;
        int r10 = aOff + Math.min(10, last) * lda;
        int r11 = aOff + Math.min(11, last) * lda;
        for (int p = 0; p < kc; p++) {
            long bi = bOff + 4L * NR * p;
            FloatVector b0 = FloatVector.fromMemorySegment(S, b, bi, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, b, bi + 4L * L, NATIVE);
            FloatVector av;
            av = FloatVector.broadcast(S, a[r0 + p]); c0_0 = av.fma(b0, c0_0); c0_1 = av.fma(b1, c0_1);
            av = FloatVector.broadcast(S, a[r1 + p]); c1_0 = av.fma(b0, c1_0); c1_1 = av.fma(b1, c1_1);
            av = FloatVector.broadcast(S, a[r2 + p]); c2_0 = av.fma(b0, c2_0); c2_1 = av.fma(b1, c2_1);
            av = FloatVector.broadcast(S, a[r3 + p]); c3_0 = av.fma(b0, c3_0); c3_1 = av.fma(b1, c3_1);
            av = FloatVector.broadcast(S, a[r4 + p]); c4_0 = av.fma(b0, c4_0); c4_1 = av.fma(b1, c4_1);
            av = FloatVector.broadcast(S, a[r5 + p]); c5_0 = av.fma(b0, c5_0); c5_1 = av.fma(b1, c5_1);
            av = FloatVector.broadcast(S, a[r6 + p]); c6_0 = av.fma(b0, c6_0); c6_1 = av.fma(b1, c6_1);
            av = FloatVector.broadcast(S, a[r7 + p]); c7_0 = av.fma(b0, c7_0); c7_1 = av.fma(b1, c7_1);
            av = FloatVector.broadcast(S, a[r8 + p]); c8_0 = av.fma(b0, c8_0); c8_1 = av.fma(b1, c8_1);
            av = FloatVector.broadcast(S, a[r9 + p]); c9_0 = av.fma(b0, c9_0); c9_1 = av.fma(b1, c9_1);
            av = FloatVector.broadcast(S, a[r10 + p]); c10_0 = av.fma(b0, c10_0); c10_1 = av.fma(b1, c10_1);
            av = FloatVector.broadcast(S, a[r11 + p]); c11_0 = av.fma(b0, c11_0); c11_1 = av.fma(b1, c11_1);
        }
        c0_0.intoArray(tile, 0 * NR); c0_1.intoArray(tile, 0 * NR + L);
        c1_0.intoArray(tile, 1 * NR); c1_1.intoArray(tile, 1 * NR + L);
        c2_0.intoArray(tile, 2 * NR); c2_1.intoArray(tile, 2 * NR + L);
        c3_0.intoArray(tile, 3 * NR); c3_1.intoArray(tile, 3 * NR + L);
        c4_0.intoArray(tile, 4 * NR); c4_1.intoArray(tile, 4 * NR + L);
        c5_0.intoArray(tile, 5 * NR); c5_1.intoArray(tile, 5 * NR + L);
        c6_0.intoArray(tile, 6 * NR); c6_1.intoArray(tile, 6 * NR + L);
        c7_0.intoArray(tile, 7 * NR); c7_1.intoArray(tile, 7 * NR + L);
        c8_0.intoArray(tile, 8 * NR); c8_1.intoArray(tile, 8 * NR + L);
        c9_0.intoArray(tile, 9 * NR); c9_1.intoArray(tile, 9 * NR + L);
        c10_0.intoArray(tile, 10 * NR); c10_1.intoArray(tile, 10 * NR + L);
        c11_0.intoArray(tile, 11 * NR); c11_1.intoArray(tile, 11 * NR + L);
        storeTile(tile, c, cOff, ldc, mr, nr, overwrite, NR);
    }

    static void rowsNarrow(float[] a, int aOff, int lda, int mr, MemorySegment b, long bOff, int kc, float[] c, int cOff, int ldc, int nr, boolean overwrite, float[] tile) {
        FloatVector c0_0 = FloatVector.zero(S);
        FloatVector c1_0 = FloatVector.zero(S);
        FloatVector c2_0 = FloatVector.zero(S);
        FloatVector c3_0 = FloatVector.zero(S);
        FloatVector c4_0 = FloatVector.zero(S);
        FloatVector c5_0 = FloatVector.zero(S);
        FloatVector c6_0 = FloatVector.zero(S);
        FloatVector c7_0 = FloatVector.zero(S);
        FloatVector c8_0 = FloatVector.zero(S);
        FloatVector c9_0 = FloatVector.zero(S);
        FloatVector c10_0 = FloatVector.zero(S);
        FloatVector c11_0 = FloatVector.zero(S);
        // Rows past mr re-read the last real row (results discarded) so no load leaves A.
        int last = mr - 1;
        int r0 = aOff + Math.min(0, last) * lda;
        int r1 = aOff + Math.min(1, last) * lda;
        int r2 = aOff + Math.min(2, last) * lda;
        int r3 = aOff + Math.min(3, last) * lda;
        int r4 = aOff + Math.min(4, last) * lda;
        int r5 = aOff + Math.min(5, last) * lda;
        int r6 = aOff + Math.min(6, last) * lda;
        int r7 = aOff + Math.min(7, last) * lda;
        int r8 = aOff + Math.min(8, last) * lda;
        int r9 = aOff + Math.min(9, last) * lda;
        int r10 = aOff + Math.min(10, last) * lda;
        int r11 = aOff + Math.min(11, last) * lda;
        for (int p = 0; p < kc; p++) {
            long bi = bOff + 4L * L * p;
            FloatVector b0 = FloatVector.fromMemorySegment(S, b, bi, NATIVE);
            FloatVector av;
            av = FloatVector.broadcast(S, a[r0 + p]); c0_0 = av.fma(b0, c0_0);
            av = FloatVector.broadcast(S, a[r1 + p]); c1_0 = av.fma(b0, c1_0);
            av = FloatVector.broadcast(S, a[r2 + p]); c2_0 = av.fma(b0, c2_0);
            av = FloatVector.broadcast(S, a[r3 + p]); c3_0 = av.fma(b0, c3_0);
            av = FloatVector.broadcast(S, a[r4 + p]); c4_0 = av.fma(b0, c4_0);
            av = FloatVector.broadcast(S, a[r5 + p]); c5_0 = av.fma(b0, c5_0);
            av = FloatVector.broadcast(S, a[r6 + p]); c6_0 = av.fma(b0, c6_0);
            av = FloatVector.broadcast(S, a[r7 + p]); c7_0 = av.fma(b0, c7_0);
            av = FloatVector.broadcast(S, a[r8 + p]); c8_0 = av.fma(b0, c8_0);
            av = FloatVector.broadcast(S, a[r9 + p]); c9_0 = av.fma(b0, c9_0);
            av = FloatVector.broadcast(S, a[r10 + p]); c10_0 = av.fma(b0, c10_0);
            av = FloatVector.broadcast(S, a[r11 + p]); c11_0 = av.fma(b0, c11_0);
        }
        c0_0.intoArray(tile, 0 * L);
        c1_0.intoArray(tile, 1 * L);
        c2_0.intoArray(tile, 2 * L);
        c3_0.intoArray(tile, 3 * L);
        c4_0.intoArray(tile, 4 * L);
        c5_0.intoArray(tile, 5 * L);
        c6_0.intoArray(tile, 6 * L);
        c7_0.intoArray(tile, 7 * L);
        c8_0.intoArray(tile, 8 * L);
        c9_0.intoArray(tile, 9 * L);
        c10_0.intoArray(tile, 10 * L);
        c11_0.intoArray(tile, 11 * L);
        storeTile(tile, c, cOff, ldc, mr, nr, overwrite, L);
    }

    /** Permute indices of the 16 x 16 transpose: lane i of (a, b) interleaved from their low (high) halves. */
    private static final FloatVector INTERLEAVE_LO, INTERLEAVE_HI;
    static {
        float[] lo = new float[L], hi = new float[L];
        for (int i = 0; i < L; i++) {
            lo[i] = interleaveIndex(i, L, false);
            hi[i] = interleaveIndex(i, L, true);
        }
        INTERLEAVE_LO = FloatVector.fromArray(S, lo, 0);
        INTERLEAVE_HI = FloatVector.fromArray(S, hi, 0);
    }

    /**
     * The selectFrom index of lane i when two vectors of {@code lanes} lanes are interleaved from their low (or high)
     * halves, a0 b0 a1 b1 ...: even lanes come from the first vector, odd lanes (index >= lanes) from the second.
     */
    static int interleaveIndex(int i, int lanes, boolean high) {
        return (i % 2 == 0 ? 0 : lanes) + (high ? lanes / 2 : 0) + i / 2;
    }

    /** Whether {@link #transpose16} can run (the vectors hold 16 floats). */
    static final boolean TRANSPOSE16 = L == 16;

    /**
     * Writes the transpose of the 16 x 16 block at {@code src[so]} (row stride {@code lds}) as 16 rows of 16 floats
     * into {@code dst} at byte offset {@code dOff} (row stride {@code ldd} bytes): four rounds of interleaving row i
     * with row i + 8 (a perfect shuffle; four of them transpose 16 x 16), 64 two-source permutes for 256 floats.
     * 2-3x faster than the element-by-element loop when packing a column-major B (x·W^T).
     */
    static void transpose16(float[] src, int so, int lds, MemorySegment dst, long dOff, long ldd) {
        FloatVector lo = INTERLEAVE_LO, hi = INTERLEAVE_HI;
        FloatVector r0 = FloatVector.fromArray(S, src, so), r1 = FloatVector.fromArray(S, src, so + lds);
        FloatVector r2 = FloatVector.fromArray(S, src, so + 2 * lds), r3 = FloatVector.fromArray(S, src, so + 3 * lds);
        FloatVector r4 = FloatVector.fromArray(S, src, so + 4 * lds), r5 = FloatVector.fromArray(S, src, so + 5 * lds);
        FloatVector r6 = FloatVector.fromArray(S, src, so + 6 * lds), r7 = FloatVector.fromArray(S, src, so + 7 * lds);
        FloatVector r8 = FloatVector.fromArray(S, src, so + 8 * lds), r9 = FloatVector.fromArray(S, src, so + 9 * lds);
        FloatVector r10 = FloatVector.fromArray(S, src, so + 10 * lds), r11 = FloatVector.fromArray(S, src, so + 11 * lds);
        FloatVector r12 = FloatVector.fromArray(S, src, so + 12 * lds), r13 = FloatVector.fromArray(S, src, so + 13 * lds);
        FloatVector r14 = FloatVector.fromArray(S, src, so + 14 * lds), r15 = FloatVector.fromArray(S, src, so + 15 * lds);
        for (int round = 0; round < 4; round++) {
            FloatVector n0 = lo.selectFrom(r0, r8), n1 = hi.selectFrom(r0, r8);
            FloatVector n2 = lo.selectFrom(r1, r9), n3 = hi.selectFrom(r1, r9);
            FloatVector n4 = lo.selectFrom(r2, r10), n5 = hi.selectFrom(r2, r10);
            FloatVector n6 = lo.selectFrom(r3, r11), n7 = hi.selectFrom(r3, r11);
            FloatVector n8 = lo.selectFrom(r4, r12), n9 = hi.selectFrom(r4, r12);
            FloatVector n10 = lo.selectFrom(r5, r13), n11 = hi.selectFrom(r5, r13);
            FloatVector n12 = lo.selectFrom(r6, r14), n13 = hi.selectFrom(r6, r14);
            FloatVector n14 = lo.selectFrom(r7, r15), n15 = hi.selectFrom(r7, r15);
            r0 = n0; r1 = n1; r2 = n2; r3 = n3; r4 = n4; r5 = n5; r6 = n6; r7 = n7;
            r8 = n8; r9 = n9; r10 = n10; r11 = n11; r12 = n12; r13 = n13; r14 = n14; r15 = n15;
        }
        r0.intoMemorySegment(dst, dOff, NATIVE); r1.intoMemorySegment(dst, dOff + ldd, NATIVE);
        r2.intoMemorySegment(dst, dOff + 2 * ldd, NATIVE); r3.intoMemorySegment(dst, dOff + 3 * ldd, NATIVE);
        r4.intoMemorySegment(dst, dOff + 4 * ldd, NATIVE); r5.intoMemorySegment(dst, dOff + 5 * ldd, NATIVE);
        r6.intoMemorySegment(dst, dOff + 6 * ldd, NATIVE); r7.intoMemorySegment(dst, dOff + 7 * ldd, NATIVE);
        r8.intoMemorySegment(dst, dOff + 8 * ldd, NATIVE); r9.intoMemorySegment(dst, dOff + 9 * ldd, NATIVE);
        r10.intoMemorySegment(dst, dOff + 10 * ldd, NATIVE); r11.intoMemorySegment(dst, dOff + 11 * ldd, NATIVE);
        r12.intoMemorySegment(dst, dOff + 12 * ldd, NATIVE); r13.intoMemorySegment(dst, dOff + 13 * ldd, NATIVE);
        r14.intoMemorySegment(dst, dOff + 14 * ldd, NATIVE); r15.intoMemorySegment(dst, dOff + 15 * ldd, NATIVE);
    }

    /**
     * Packs 16 consecutive k of an A row panel: reads {@code rows} (at most MR) rows of 16 floats at
     * {@code src[so + i*lds]} and writes them transposed, as 16 runs of MR floats at {@code dst[dOff + p*MR]}, with
     * zeros for the rows past {@code rows}. The perfect shuffle of {@link #transpose16} on MR rows and 16 - MR zero
     * rows. Each store writes 16 lanes and the next store overwrites the extra ones, so {@code dst} needs L - MR
     * floats of slack past the last run. The shuffle rounds are written out again rather than shared with
     * {@code transpose16}: a helper could hand 16 vectors back only through an array, which C2 does not keep in
     * registers (see the class comment), and the two differ in their loads and in where they store.
     */
    static void transposeRows(float[] src, int so, int lds, int rows, float[] dst, int dOff) {
        FloatVector lo = INTERLEAVE_LO, hi = INTERLEAVE_HI, z = FloatVector.zero(S);
        FloatVector r0 = FloatVector.fromArray(S, src, so);
        FloatVector r1 = rows > 1 ? FloatVector.fromArray(S, src, so + lds) : z;
        FloatVector r2 = rows > 2 ? FloatVector.fromArray(S, src, so + 2 * lds) : z;
        FloatVector r3 = rows > 3 ? FloatVector.fromArray(S, src, so + 3 * lds) : z;
        FloatVector r4 = rows > 4 ? FloatVector.fromArray(S, src, so + 4 * lds) : z;
        FloatVector r5 = rows > 5 ? FloatVector.fromArray(S, src, so + 5 * lds) : z;
        FloatVector r6 = rows > 6 ? FloatVector.fromArray(S, src, so + 6 * lds) : z;
        FloatVector r7 = rows > 7 ? FloatVector.fromArray(S, src, so + 7 * lds) : z;
        FloatVector r8 = rows > 8 ? FloatVector.fromArray(S, src, so + 8 * lds) : z;
        FloatVector r9 = rows > 9 ? FloatVector.fromArray(S, src, so + 9 * lds) : z;
        FloatVector r10 = rows > 10 ? FloatVector.fromArray(S, src, so + 10 * lds) : z;
        FloatVector r11 = rows > 11 ? FloatVector.fromArray(S, src, so + 11 * lds) : z;
        FloatVector r12 = z, r13 = z, r14 = z, r15 = z;
        for (int round = 0; round < 4; round++) {
            FloatVector n0 = lo.selectFrom(r0, r8), n1 = hi.selectFrom(r0, r8);
            FloatVector n2 = lo.selectFrom(r1, r9), n3 = hi.selectFrom(r1, r9);
            FloatVector n4 = lo.selectFrom(r2, r10), n5 = hi.selectFrom(r2, r10);
            FloatVector n6 = lo.selectFrom(r3, r11), n7 = hi.selectFrom(r3, r11);
            FloatVector n8 = lo.selectFrom(r4, r12), n9 = hi.selectFrom(r4, r12);
            FloatVector n10 = lo.selectFrom(r5, r13), n11 = hi.selectFrom(r5, r13);
            FloatVector n12 = lo.selectFrom(r6, r14), n13 = hi.selectFrom(r6, r14);
            FloatVector n14 = lo.selectFrom(r7, r15), n15 = hi.selectFrom(r7, r15);
            r0 = n0; r1 = n1; r2 = n2; r3 = n3; r4 = n4; r5 = n5; r6 = n6; r7 = n7;
            r8 = n8; r9 = n9; r10 = n10; r11 = n11; r12 = n12; r13 = n13; r14 = n14; r15 = n15;
        }
        r0.intoArray(dst, dOff); r1.intoArray(dst, dOff + MR);
        r2.intoArray(dst, dOff + 2 * MR); r3.intoArray(dst, dOff + 3 * MR);
        r4.intoArray(dst, dOff + 4 * MR); r5.intoArray(dst, dOff + 5 * MR);
        r6.intoArray(dst, dOff + 6 * MR); r7.intoArray(dst, dOff + 7 * MR);
        r8.intoArray(dst, dOff + 8 * MR); r9.intoArray(dst, dOff + 9 * MR);
        r10.intoArray(dst, dOff + 10 * MR); r11.intoArray(dst, dOff + 11 * MR);
        r12.intoArray(dst, dOff + 12 * MR); r13.intoArray(dst, dOff + 13 * MR);
        r14.intoArray(dst, dOff + 14 * MR); r15.intoArray(dst, dOff + 15 * MR);
    }
}
