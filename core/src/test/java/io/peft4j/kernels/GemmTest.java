package io.peft4j.kernels;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Storage;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Differential tests of the Vector API GEMM against its scalar twin (double accumulation) over many random shapes,
 * layouts, dtypes and storages. Each case checks every element of C.
 */
class GemmTest {
    /** How an operand is stored. */
    enum Kind { HEAP_ROW, HEAP_COL, HEAP_STRIDED, SEG_F32_ROW, SEG_BF16_ROW, SEG_BF16_COL, SEG_F16_COL, SEG_F32_COL }

    private static final Kind[] KINDS = Kind.values();
    private static final float EPS = Math.ulp(1f);

    /** An operand [rows, cols] of random values in the given storage kind (values exactly representable in it). */
    static Tensor operand(Kind kind, int rows, int cols, SplittableRandom rng) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) v[i] = (float) (rng.nextDouble() * 2 - 1);
        switch (kind) {
            case HEAP_ROW: {
                // Embedded in a wider buffer at an offset, so lda != cols and offset != 0 are exercised.
                int ld = cols + 3, off = 5;
                float[] buf = new float[off + rows * ld + 3];
                for (int i = 0; i < rows; i++) System.arraycopy(v, i * cols, buf, off + i * ld, cols);
                return new Tensor(Storage.heap(buf), DType.F32, new int[] {rows, cols}, new int[] {ld, 1}, off);
            }
            case HEAP_COL: {
                float[] t = new float[rows * cols];
                for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) t[j * rows + i] = v[i * cols + j];
                return Tensor.of(t, cols, rows).transpose(0, 1);
            }
            case HEAP_STRIDED: {
                // Neither row- nor column-major: every other element of a buffer twice the size.
                float[] buf = new float[2 * rows * cols + 1];
                for (int i = 0; i < v.length; i++) buf[2 * i] = v[i];
                return new Tensor(Storage.heap(buf), DType.F32, new int[] {rows, cols}, new int[] {2 * cols, 2}, 0);
            }
            default: {
                DType dt = kind == Kind.SEG_BF16_ROW || kind == Kind.SEG_BF16_COL ? DType.BF16
                        : kind == Kind.SEG_F16_COL ? DType.F16 : DType.F32;
                boolean col = kind.name().endsWith("COL");
                MemorySegment seg = Arena.ofAuto().allocate((long) rows * cols * dt.bytes + 64, 64);
                Tensor t = Tensor.ofSegment(seg, dt, col ? new int[] {cols, rows} : new int[] {rows, cols});
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < cols; j++) {
                        if (col) t.set(v[i * cols + j], j, i);
                        else t.set(v[i * cols + j], i, j);
                    }
                return col ? t.transpose(0, 1) : t;
            }
        }
    }

    /** |A|·|B| element-wise, in double: the scale of the rounding error of each C element. */
    static double[] absProduct(Tensor a, Tensor b) {
        int m = a.dim(0), k = a.dim(1), n = b.dim(1);
        float[] ad = a.toFloatArray(), bd = b.toFloatArray();
        double[] out = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++) {
                double x = Math.abs(ad[i * k + p]);
                for (int j = 0; j < n; j++) out[i * n + j] += x * Math.abs(bd[p * n + j]);
            }
        return out;
    }

    /** A C tensor [m, n] at a non-zero offset of a larger heap buffer, filled with random values. */
    static Tensor cTensor(int m, int n, int off, SplittableRandom rng) {
        float[] buf = new float[off + m * n + 7];
        for (int i = 0; i < buf.length; i++) buf[i] = (float) (rng.nextDouble() * 2 - 1);
        return new Tensor(Storage.heap(buf), DType.F32, new int[] {m, n}, Tensor.contiguousStrides(m, n), off);
    }

    /**
     * Runs the vector path and the scalar twin on the same inputs and compares every element of C.
     *
     * <p>Tolerance: the scalar twin accumulates in double, the kernels in F32 (blocked over k, FMA). F32 summation
     * of k products errs by at most ~k*eps*sum|a||b| in the worst case and ~sqrt(k)*eps*sum|a||b| typically;
     * the bound used, (2*sqrt(k) + 4)*eps*sum|a||b| + eps*|C0| (one more rounding when accumulating onto C0), is
     * far below the O(|a||b|) error of any indexing bug (a wrong or missing product), so it cannot hide one.
     */
    static void check(String label, Tensor a, Tensor b, boolean packed, boolean accumulate, SplittableRandom rng) {
        check(label, a, b, accumulate, rng, c -> {
            if (packed) Gemm.matmul(a, Gemm.pack(b), c, accumulate, KernelMode.VECTOR);
            else Gemm.matmul(a, b, c, accumulate, KernelMode.VECTOR);
        });
    }

    /** {@link #check} of any fast path: {@code fast} computes C (+)= A·B into the C tensor it is given. */
    static void check(String label, Tensor a, Tensor b, boolean accumulate, SplittableRandom rng, java.util.function.Consumer<Tensor> fast) {
        int m = a.dim(0), k = a.dim(1), n = b.dim(1);
        int off = rng.nextInt(4) * 9;
        Tensor c = cTensor(m, n, off, rng);
        float[] before = c.storage().array().clone();
        Tensor cRef = new Tensor(Storage.heap(before.clone()), DType.F32, c.shape(), c.strides(), off);
        fast.accept(c);
        Gemm.matmul(a, b, cRef, accumulate, KernelMode.SCALAR);
        double[] scale = absProduct(a, b);
        float[] got = c.storage().array(), want = cRef.storage().array();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                int idx = off + i * n + j;
                double c0 = accumulate ? Math.abs(before[idx]) : 0;
                double tol = (2 * Math.sqrt(k) + 4) * EPS * scale[i * n + j] + EPS * c0 + 1e-30;
                if (!(Math.abs(got[idx] - want[idx]) <= tol))
                    fail(label + ": C[" + i + "," + j + "] = " + got[idx] + ", scalar twin " + want[idx] + " (tol " + tol + ")");
            }
        // Nothing outside C's window is touched.
        for (int idx = 0; idx < got.length; idx++)
            if (idx < off || idx >= off + m * n) assertEquals(before[idx], got[idx], label + ": wrote outside C at " + idx);
    }

    private static final int[] M_CHOICES = {1, 2, 3, 4, 5, 7, 11, 12, 13, 24, 25, 37, 100, 193, 260};
    private static final int[] K_CHOICES = {1, 2, 3, 15, 16, 17, 31, 64, 65, 100, 511, 512, 513, 777};
    private static final int[] N_CHOICES = {1, 2, 5, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100, 130};

    @Test
    void randomShapesLayoutsAndDtypesMatchScalarTwin() {
        SplittableRandom rng = new SplittableRandom(20240611);
        for (int t = 0; t < 300; t++) {
            int m = M_CHOICES[rng.nextInt(M_CHOICES.length)];
            int k = K_CHOICES[rng.nextInt(K_CHOICES.length)];
            int n = N_CHOICES[rng.nextInt(N_CHOICES.length)];
            // Keep the scalar twin fast: at most ~4 M multiply-adds per case.
            while ((long) m * k * n > 4_000_000L) k = Math.max(1, k / 2);
            Kind ka = KINDS[rng.nextInt(KINDS.length)], kb = KINDS[rng.nextInt(KINDS.length)];
            boolean packed = rng.nextInt(3) == 0, acc = rng.nextBoolean();
            Tensor a = operand(ka, m, k, rng), b = operand(kb, k, n, rng);
            check("case " + t + " " + m + "x" + k + "x" + n + " A " + ka + " B " + kb + (packed ? " packed" : "") + (acc ? " acc" : ""),
                    a, b, packed, acc, rng);
        }
    }

    @Test
    void everyLayoutCombinationOnOddShapes() {
        SplittableRandom rng = new SplittableRandom(7);
        int[][] shapes = {{13, 37, 45}, {3, 129, 70}, {1, 100, 33}, {27, 16, 100}, {40, 530, 17}};
        for (int[] s : shapes)
            for (Kind ka : KINDS)
                for (Kind kb : KINDS)
                    check(Arrays.toString(s) + " A " + ka + " B " + kb, operand(ka, s[0], s[1], rng), operand(kb, s[1], s[2], rng),
                            rng.nextBoolean(), rng.nextBoolean(), rng);
    }

    @Test
    void wideOutputsSpanSeveralColumnBlocks() {
        // n > 1024 columns: B is packed and multiplied one 1024-column block at a time, the last block partial
        // (2081 = 2 x 1024 + 33: a full panel and a narrow one), and C's corners are finished block by block.
        SplittableRandom rng = new SplittableRandom(11);
        int n = 2 * GemmVector.NC_PANELS * GemmKernels.NR + 33;
        for (Kind kb : KINDS)
            for (int[] mk : new int[][] {{7, 20}, {29, 33}})
                check("wide " + mk[0] + "x" + mk[1] + "x" + n + " B " + kb, operand(Kind.HEAP_ROW, mk[0], mk[1], rng),
                        operand(kb, mk[1], n, rng), rng.nextBoolean(), rng.nextBoolean(), rng);
        // k over several KC blocks, so every column block is revisited once per k block.
        int k = 2 * GemmVector.KC + 5;
        check("wide k blocks", operand(Kind.HEAP_ROW, 30, k, rng), operand(Kind.HEAP_ROW, k, n, rng), false, true, rng);
    }

    @Test
    void loraAndDecodeShapes() {
        SplittableRandom rng = new SplittableRandom(3);
        // x·A^T (n = r), then (x A^T)·B^T (k = r), with weights stored [out, in] and transposed; decode rows.
        int[][] shapes = {{256, 768, 16}, {256, 16, 768}, {200, 300, 64}, {200, 64, 300}, {130, 257, 8}, {1, 2048, 300}, {4, 333, 257}};
        for (int[] s : shapes)
            for (boolean acc : new boolean[] {false, true}) {
                check("lora " + Arrays.toString(s), operand(Kind.HEAP_ROW, s[0], s[1], rng), operand(Kind.HEAP_COL, s[1], s[2], rng), false, acc, rng);
                check("lora bf16 " + Arrays.toString(s), operand(Kind.HEAP_ROW, s[0], s[1], rng), operand(Kind.SEG_BF16_COL, s[1], s[2], rng), false, acc, rng);
            }
    }

    @Test
    void largeBlockedShapeCrossesKcAndMcBlocks() {
        SplittableRandom rng = new SplittableRandom(11);
        int m = GemmVector.MC + GemmKernels.MR + 5, k = GemmVector.KC + 3, n = 2 * GemmKernels.NR + 7;
        check("blocked", operand(Kind.HEAP_ROW, m, k, rng), operand(Kind.HEAP_ROW, k, n, rng), false, true, rng);
        check("blocked packed", operand(Kind.SEG_BF16_ROW, m, k, rng), operand(Kind.SEG_BF16_COL, k, n, rng), true, false, rng);
    }

    @Test
    void rowMajorBIsPackedInPanelGroupsAcrossKBlocks() {
        SplittableRandom rng = new SplittableRandom(17);
        // A heap row-major B is packed 16 full panels at a time, row by row: two k blocks, a full and a partial group
        // of panels, then a 20-column tail panel packed on its own.
        int k = GemmVector.KC + 3, n = 17 * GemmKernels.NR + 20;
        for (boolean packed : new boolean[] {false, true})
            check("panel groups" + (packed ? " packed" : ""), operand(Kind.HEAP_ROW, 5 + GemmKernels.MR, k, rng), operand(Kind.HEAP_ROW, k, n, rng), packed, packed, rng);
    }

    @Test
    void resultDoesNotDependOnThreadCount() {
        SplittableRandom rng = new SplittableRandom(5);
        Tensor a = operand(Kind.HEAP_ROW, 150, 300, rng), b = operand(Kind.HEAP_COL, 300, 90, rng);
        int saved = Parallel.threads();
        try {
            Parallel.setThreads(1);
            Tensor c1 = Tensor.zeros(150, 90);
            Gemm.matmul(a, b, c1, false, KernelMode.VECTOR);
            Parallel.setThreads(3);
            Tensor c3 = Tensor.zeros(150, 90);
            Gemm.matmul(a, b, c3, false, KernelMode.VECTOR);
            // Each C element is summed by exactly one kernel call in the same order whatever the split.
            assertArrayEquals(c1.data(), c3.data());
            Tensor bn = operand(Kind.HEAP_COL, 300, 16, rng);   // the narrow (LoRA x·A^T) path
            Tensor n1 = Tensor.zeros(150, 16), n3 = Tensor.zeros(150, 16);
            Parallel.setThreads(1);
            Gemm.matmul(a, bn, n1, false, KernelMode.VECTOR);
            Parallel.setThreads(3);
            Gemm.matmul(a, bn, n3, false, KernelMode.VECTOR);
            assertArrayEquals(n1.data(), n3.data());
        } finally {
            Parallel.setThreads(saved);
        }
    }

    @Test
    void transpose16MatchesTheElementLoop() {
        assumeTrue(GemmKernels.TRANSPOSE16, "transpose16 needs 16-float vectors; this CPU's are " + GemmKernels.L);
        SplittableRandom rng = new SplittableRandom(21);
        for (int lds : new int[] {16, 37, 768}) {
            int so = rng.nextInt(5);
            float[] src = new float[so + 15 * lds + 16];
            for (int i = 0; i < src.length; i++) src[i] = (float) rng.nextDouble();
            long ldd = 4L * 48, dOff = 4L * 16;               // rows of a 48-wide panel, written from column 16
            MemorySegment dst = GemmKernels.alignedFloats(16 * 48 + 16);
            GemmKernels.transpose16(src, so, lds, dst, dOff, ldd);
            for (int q = 0; q < 16; q++)
                for (int i = 0; i < 16; i++)
                    assertEquals(src[so + i * lds + q], dst.get(java.lang.foreign.ValueLayout.JAVA_FLOAT, dOff + q * ldd + 4L * i),
                            "lds " + lds + ": out row " + q + ", lane " + i);
        }
    }

    @Test
    void narrowBIsTransposedForTheDotKernelInEveryLayout() {
        // GemmDot's B^T [n, k] from every storage layout and width (16 columns reach GemmDot on CPUs without
        // 16-float vectors).
        SplittableRandom rng = new SplittableRandom(23);
        for (int k : new int[] {1, 15, 16, 17, 48, 777})
            for (int n : new int[] {16, 15, 3})
                for (Kind kind : new Kind[] {Kind.HEAP_ROW, Kind.HEAP_COL, Kind.SEG_BF16_ROW, Kind.SEG_F32_COL}) {
                    Tensor b = operand(kind, k, n, rng);
                    MemorySegment bt = GemmDot.transposeB(GemmOperand.of(b, "B"));
                    for (int j = 0; j < n; j++)
                        for (int p = 0; p < k; p++)
                            assertEquals(b.get(p, j), bt.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, (long) j * k + p),
                                    kind + " " + k + "x" + n + ": B^T[" + j + ", " + p + "]");
                }
        // And through the whole product (15 columns: GemmDot on every CPU), with k tails past a whole vector.
        for (int k : new int[] {40, 777})
            check("dot row-major B k=" + k, operand(Kind.HEAP_ROW, 37, k, rng), operand(Kind.HEAP_ROW, k, 15, rng), false, true, rng);
    }

    @Test
    void pairLayoutHoldsBInEveryLayout() {
        // GemmPairs' B: lane 2j+q of vector h of pair pp is B[2pp+q, 8h+j], zero past k. Row-major heap B goes
        // through the interleaving permutes, column-major heap B through the 8 x 8 pair transposes (and the element
        // loop for the pairs after the last whole 16 k), other storages through the element loops. Longest k first,
        // so the shorter cases reuse a buffer that holds stale values where an odd k must write zeros.
        SplittableRandom rng = new SplittableRandom(29);
        int n = GemmPairs.N;
        for (int k : new int[] {777, 17, 16, 15, 2, 1})
            for (Kind kind : KINDS) {
                Tensor b = operand(kind, k, n, rng);
                MemorySegment bp = GemmPairs.relayoutB(GemmOperand.of(b, "B"));
                for (int pp = 0; pp < (k + 1) / 2; pp++)
                    for (int h = 0; h < 2; h++)
                        for (int lane = 0; lane < 16; lane++) {
                            int p = 2 * pp + lane % 2, j = 8 * h + lane / 2;
                            float want = p < k ? b.get(p, j) : 0f;
                            assertEquals(want, bp.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 32L * pp + 16L * h + lane),
                                    kind + " " + k + "x" + n + ": pair " + pp + ", vector " + h + ", lane " + lane);
                        }
            }
    }

    @Test
    void pairKernelMatchesTheScalarTwin() {
        // Called directly, so it is checked on every CPU (Gemm routes to it only with 512-bit vectors). Rows around
        // the 8-row tile, odd and even k (an odd k's last product is added after the pair sums), B in every storage,
        // A at odd offsets and strides (pairs not 8-byte aligned) and dense.
        SplittableRandom rng = new SplittableRandom(31);
        int n = GemmPairs.N;
        for (int m : new int[] {1, 7, 8, 9, 37})
            for (int k : new int[] {1, 2, 3, 16, 17, 33, 777})
                for (boolean dense : new boolean[] {false, true}) {
                    Tensor a = dense ? operand(Kind.HEAP_ROW, m, k, rng).contiguous() : operand(Kind.HEAP_ROW, m, k, rng);
                    Tensor b = operand(KINDS[rng.nextInt(KINDS.length)], k, n, rng);
                    boolean acc = rng.nextBoolean();
                    check("pairs " + m + "x" + k + "x" + n + (dense ? " dense" : "") + (acc ? " acc" : ""), a, b, acc, rng, c -> {
                        GemmOperand ao = GemmOperand.of(a, "A"), bo = GemmOperand.of(b, "B");
                        GemmPairs.multiply(ao, GemmPairs.relayoutB(bo), k, c.storage().array(), c.dataOffset(), n, acc);
                    });
                }
    }

    @Test
    void pairKernelPropagatesInfinitiesWithoutSpuriousNaN() {
        // inf in a pair's even or odd slot, and in an odd k's last column: the partner lane's product must not turn
        // inf into NaN (inf * B stays inf where B != 0; only the zero column of B gives NaN, as in the scalar twin).
        int m = 20, k = 11, n = 16;
        Tensor a = Tensor.zeros(m, k), b = Tensor.zeros(k, n);
        for (int p = 0; p < k; p++) for (int j = 0; j < n; j++) b.set(j == 2 ? 0f : 0.5f + j, p, j);
        a.set(Float.POSITIVE_INFINITY, 3, 4);
        a.set(Float.NEGATIVE_INFINITY, 5, 7);
        a.set(Float.POSITIVE_INFINITY, 6, 10);
        a.set(Float.NaN, 9, 1);
        Tensor got = Tensor.zeros(m, n), want = Tensor.zeros(m, n);
        GemmPairs.multiply(GemmOperand.of(a, "A"), GemmPairs.relayoutB(GemmOperand.of(b, "B")), k, got.data(), 0, n, false);
        Gemm.matmul(a, b, want, false, KernelMode.SCALAR);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                assertEquals(want.get(i, j), got.get(i, j), "C[" + i + "," + j + "]");   // assertEquals(float) equates NaNs
        assertEquals(Float.POSITIVE_INFINITY, got.get(3, 0));
        assertEquals(Float.NEGATIVE_INFINITY, got.get(5, 0));
        assertEquals(Float.POSITIVE_INFINITY, got.get(6, 0));
        assertTrue(Float.isNaN(got.get(3, 2)) && Float.isNaN(got.get(9, 5)));
    }

    @Test
    void transposeRowsMatchesTheElementLoop() {
        assumeTrue(GemmKernels.TRANSPOSE16, "transposeRows needs 16-float vectors; this CPU's are " + GemmKernels.L);
        SplittableRandom rng = new SplittableRandom(22);
        int mr = GemmKernels.MR;
        for (int rows : new int[] {1, 5, mr}) {
            for (int lds : new int[] {16, 37, 768}) {
                int so = rng.nextInt(5), dOff = 3;
                float[] src = new float[so + (rows - 1) * lds + 16];
                for (int i = 0; i < src.length; i++) src[i] = (float) rng.nextDouble();
                float[] dst = new float[dOff + 16 * mr + GemmKernels.L];
                Arrays.fill(dst, Float.NaN);
                GemmKernels.transposeRows(src, so, lds, rows, dst, dOff);
                for (int p = 0; p < 16; p++)
                    for (int i = 0; i < mr; i++)
                        assertEquals(i < rows ? src[so + i * lds + p] : 0f, dst[dOff + p * mr + i],
                                rows + " rows, lds " + lds + ": k " + p + ", row " + i);
                assertTrue(Float.isNaN(dst[dOff - 1]), "wrote before its first run");
            }
        }
    }

    @Test
    void packedMatrixHoldsTheLogicalMatrix() {
        SplittableRandom rng = new SplittableRandom(9);
        for (Kind kind : KINDS) {
            Tensor b = operand(kind, GemmVector.KC + 17, GemmKernels.NR + 9, rng);
            PackedMatrix pm = Gemm.pack(b);
            assertEquals(b.dim(0), pm.rows());
            assertEquals(b.dim(1), pm.cols());
            for (int p = 0; p < b.dim(0); p += 7)
                for (int j = 0; j < b.dim(1); j++) assertEquals(b.get(p, j), pm.get(p, j), kind + " (" + p + "," + j + ")");
        }
    }

    @Test
    void emptyDimensions() {
        Tensor a = Tensor.zeros(3, 0), b = Tensor.zeros(0, 5);
        Tensor c = Tensor.full(7f, 3, 5);
        Gemm.matmul(a, b, c, true, KernelMode.VECTOR);
        for (float x : c.data()) assertEquals(7f, x, "k = 0 with accumulate leaves C");
        Gemm.matmul(a, b, c, false, KernelMode.VECTOR);
        for (float x : c.data()) assertEquals(0f, x, "k = 0 without accumulate zeroes C");
        Tensor c2 = Tensor.full(7f, 40, 5);
        Gemm.matmul(Tensor.zeros(40, 0), b, c2, false, KernelMode.VECTOR);
        for (float x : c2.data()) assertEquals(0f, x);
        Gemm.matmul(Tensor.zeros(0, 4), Tensor.zeros(4, 5), Tensor.zeros(0, 5), false, KernelMode.VECTOR);
        Gemm.matmul(Tensor.zeros(4, 4), Tensor.zeros(4, 0), Tensor.zeros(4, 0), false, KernelMode.VECTOR);
    }

    @Test
    void nonFiniteValuesPropagate() {
        Tensor a = Tensor.zeros(20, 10), b = Tensor.zeros(10, 40);
        a.set(Float.POSITIVE_INFINITY, 3, 4);
        Tensor c = Tensor.zeros(20, 40);
        Gemm.matmul(a, b, c, false, KernelMode.VECTOR);
        // inf * 0 is NaN: row 3 must be NaN everywhere, other rows 0.
        for (int j = 0; j < 40; j++) {
            assertTrue(Float.isNaN(c.get(3, j)), "C[3," + j + "]");
            assertEquals(0f, c.get(2, j));
        }
    }

    @Test
    void shapeErrorsNameTheShapes() {
        Tensor a = Tensor.zeros(4, 5), b = Tensor.zeros(6, 7);
        var e = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, b, Tensor.zeros(4, 7), false));
        assertTrue(e.getMessage().contains("[4, 5]") && e.getMessage().contains("[6, 7]"), e.getMessage());
        var e2 = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, Tensor.zeros(5, 7), Tensor.zeros(7, 4), false));
        assertTrue(e2.getMessage().contains("[4, 7]") && e2.getMessage().contains("[7, 4]"), e2.getMessage());
        var e3 = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, Tensor.zeros(5, 7), Tensor.zeros(7, 4).transpose(0, 1), false));
        assertTrue(e3.getMessage().contains("contiguous"), e3.getMessage());
        var e4 = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(Tensor.zeros(2, 3, 4), b, Tensor.zeros(4, 7), false));
        assertTrue(e4.getMessage().contains("2-D"), e4.getMessage());
        Tensor ints = Tensor.ofSegment(Arena.ofAuto().allocate(5 * 7 * 4), DType.I32, 5, 7);
        var e5 = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, ints, Tensor.zeros(4, 7), false));
        assertTrue(e5.getMessage().contains("I32"), e5.getMessage());
        float[] shared = new float[20];
        Tensor sq = Tensor.of(shared, 4, 5);
        assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(sq, Tensor.zeros(5, 5), Tensor.of(shared, 4, 5), false));
        PackedMatrix pm = Gemm.pack(Tensor.zeros(6, 7));
        var e6 = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, pm, Tensor.zeros(4, 7), false));
        assertTrue(e6.getMessage().contains("[6, 7]"), e6.getMessage());
    }

    @Test
    void lanesAreSummedInAFixedButterflyOrder() {
        SplittableRandom rng = new SplittableRandom(13);
        int l = GemmKernels.L;
        for (int t = 0; t < 200; t++) {
            float[] v = new float[l];
            for (int i = 0; i < l; i++) v[i] = (float) ((rng.nextDouble() - 0.5) * Math.pow(10, rng.nextInt(8)));
            // The reference butterfly: lane i += lane i ^ h for h = L/2 .. 1, in float.
            float[] w = v.clone();
            for (int h = l / 2; h >= 1; h /= 2) {
                float[] nw = new float[l];
                for (int i = 0; i < l; i++) nw[i] = w[i] + w[i ^ h];
                w = nw;
            }
            float got = GemmDot.sumTree(jdk.incubator.vector.FloatVector.fromArray(GemmKernels.S, v, 0));
            assertEquals(Float.floatToRawIntBits(w[0]), Float.floatToRawIntBits(got), "vector " + Arrays.toString(v));
        }
    }
}
