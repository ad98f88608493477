package io.peft4j.autograd;

import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Forward values of TensorOps against naive references computed here in double precision (or, for single IEEE
 * operations, in float, where the result must be exact). Sizes include large ones that take the parallel paths.
 */
class TensorOpsForwardTest {

    // ------------------------------------------------------------------------------------------- reference helpers

    /** Multi-index of flat row-major position {@code i} in {@code shape}. */
    static int[] unravel(long i, int[] shape) {
        int[] idx = new int[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) { idx[d] = (int) (i % shape[d]); i /= shape[d]; }
        return idx;
    }

    /** Element of {@code t} for an index of a broadcast result shape (right-aligned, size-1 dims repeated). */
    static float bget(Tensor t, int[] outIdx) {
        int r = t.rank(), off = outIdx.length - r;
        int[] idx = new int[r];
        for (int d = 0; d < r; d++) idx[d] = t.dim(d) == 1 ? 0 : outIdx[d + off];
        return t.get(idx);
    }

    static void assertClose(String what, double[] expected, Tensor actual, double rtol, double atol) {
        assertEquals(expected.length, actual.numel(), what + ": element count");
        float[] a = actual.toFloatArray();
        for (int i = 0; i < expected.length; i++)
            if (!(Math.abs(expected[i] - a[i]) <= atol + rtol * Math.abs(expected[i])))
                fail(what + ": element " + i + " " + Arrays.toString(unravel(i, actual.shape())) + ": expected " + expected[i] + ", got " + a[i]);
    }

    static double[] toDouble(Tensor t) {
        float[] f = t.toFloatArray();
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    static double[] naiveMatmul(Tensor a, Tensor b) {
        int m = a.dim(0), k = a.dim(1), n = b.dim(1);
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double) a.get(i, p) * b.get(p, j);
                c[i * n + j] = s;
            }
        return c;
    }

    /** A [rows, cols] matrix stored transposed when {@code transposed} (so the op sees a column-major view). */
    static Tensor matrix(long seed, int rows, int cols, boolean transposed) {
        return transposed ? Tensor.randn(seed, 1f, cols, rows).transpose(0, 1) : Tensor.randn(seed, 1f, rows, cols);
    }

    static Tensor bf16Segment(Arena arena, Tensor src) {
        float[] v = src.toFloatArray();
        MemorySegment seg = arena.allocate(2L * v.length);
        for (int i = 0; i < v.length; i++)
            seg.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2L * i, DType.floatToBf16(v[i]));
        return Tensor.ofSegment(seg, DType.BF16, src.shape());
    }

    // ------------------------------------------------------------------------------------------- products

    @Test
    void matmulMatchesNaiveForAllLayouts() {
        int[] sizes = {1, 2, 3, 7, 16, 33};
        SplittableRandom r = new SplittableRandom(1);
        for (int trial = 0; trial < 24; trial++) {
            int m = sizes[r.nextInt(sizes.length)], k = sizes[r.nextInt(sizes.length)], n = sizes[r.nextInt(sizes.length)];
            boolean ta = r.nextBoolean(), tb = r.nextBoolean();
            Tensor a = matrix(trial, m, k, ta), b = matrix(100 + trial, k, n, tb);
            Tensor c = TensorOps.matmul(a, b);
            assertArrayEquals(new int[] {m, n}, c.shape());
            assertClose("matmul " + a.describe() + " x " + b.describe(), naiveMatmul(a, b), c, 1e-5, 1e-5 * Math.sqrt(k));
        }
    }

    @Test
    void bmmBroadcastsBatchDims() {
        Tensor a = Tensor.randn(1, 1f, 2, 1, 3, 4);
        Tensor b = Tensor.randn(2, 1f, 3, 4, 5);
        Tensor c = TensorOps.bmm(a, b);
        assertArrayEquals(new int[] {2, 3, 3, 5}, c.shape());
        double[] expected = new double[(int) c.numel()];
        for (int i = 0; i < expected.length; i++) {
            int[] idx = unravel(i, c.shape());
            double s = 0;
            for (int p = 0; p < 4; p++) s += (double) a.get(idx[0], 0, idx[2], p) * b.get(idx[1], p, idx[3]);
            expected[i] = s;
        }
        assertClose("bmm", expected, c, 1e-5, 1e-5);
        // a transposed-view operand gives the same product as its dense copy
        Tensor bt = Tensor.randn(3, 1f, 3, 5, 4).transpose(-1, -2);
        assertClose("bmm transposed view", toDouble(TensorOps.bmm(a, bt.contiguous())), TensorOps.bmm(a, bt), 1e-6, 1e-6);
    }

    @Test
    void linearWithBf16SegmentWeightMatchesNaive() {
        try (Arena arena = Arena.ofConfined()) {
            int in = 37, out = 19;
            Tensor w = bf16Segment(arena, Tensor.randn(5, 0.5f, out, in));
            Tensor bias = Tensor.randn(6, 1f, out);
            Tensor x = Tensor.randn(7, 1f, 2, 3, in);
            Tensor y = TensorOps.linear(x, w, bias);
            assertArrayEquals(new int[] {2, 3, out}, y.shape());
            double[] expected = new double[6 * out];
            for (int row = 0; row < 6; row++)
                for (int o = 0; o < out; o++) {
                    double s = bias.get(o);
                    for (int i = 0; i < in; i++) s += (double) x.get(row / 3, row % 3, i) * w.get(o, i);
                    expected[row * out + o] = s;
                }
            assertClose("linear BF16 W", expected, y, 1e-5, 1e-5);
            assertFalse(y.requiresGrad());
        }
    }

    // ------------------------------------------------------------------------------------------- arithmetic

    @Test
    void broadcastArithmeticIsExactOnRandomShapes() {
        SplittableRandom r = new SplittableRandom(3);
        for (int trial = 0; trial < 40; trial++) {
            int rank = r.nextInt(0, 5);
            int[] full = new int[rank];
            for (int i = 0; i < rank; i++) full[i] = r.nextInt(1, 7);
            int[] sa = broadcastOf(r, full), sb = broadcastOf(r, full);
            Tensor a = Tensor.randn(trial, 1f, sa), b = Tensor.uniform(trial + 50, 0.5f, 2f, sb);
            if (r.nextBoolean() && a.rank() >= 2) a = Tensor.randn(trial, 1f, swapLast(sa)).transpose(-1, -2); // a strided view
            checkArith(a, b);
            checkArith(b, a);
        }
    }

    /** Large enough for the parallel splits: over outer indices, over the inner run, and one long run. */
    @Test
    void largeBroadcastsTakeParallelPathsCorrectly() {
        checkArith(Tensor.randn(1, 1f, 300, 257), Tensor.uniform(2, 0.5f, 2f, 300, 257));
        checkArith(Tensor.randn(3, 1f, 300, 257), Tensor.uniform(4, 0.5f, 2f, 257));
        checkArith(Tensor.randn(5, 1f, 2, 70000), Tensor.uniform(6, 0.5f, 2f, 2, 1));
        checkArith(Tensor.randn(7, 1f, 1, 90000), Tensor.uniform(8, 0.5f, 2f, 3, 1));
        checkArith(Tensor.randn(9, 1f, 257, 300).transpose(0, 1), Tensor.uniform(10, 0.5f, 2f, 300, 1));
    }

    private static void checkArith(Tensor a, Tensor b) {
        int[] shape = Broadcast.shape("test", a.shape(), b.shape());
        Tensor[] got = {TensorOps.add(a, b), TensorOps.sub(a, b), TensorOps.mul(a, b), TensorOps.div(a, b)};
        for (int op = 0; op < 4; op++) {
            Tensor c = got[op];
            assertArrayEquals(shape, c.shape());
            float[] cd = c.toFloatArray();
            for (int i = 0; i < cd.length; i++) {
                int[] idx = unravel(i, shape);
                float x = bget(a, idx), y = bget(b, idx);
                float e = switch (op) { case 0 -> x + y; case 1 -> x - y; case 2 -> x * y; default -> x / y; };
                if (Float.floatToIntBits(e) != Float.floatToIntBits(cd[i]))
                    fail("op " + op + " " + a.describe() + " with " + b.describe() + " at " + Arrays.toString(idx) + ": expected " + e + ", got " + cd[i]);
            }
        }
    }

    @Test
    void unaryOpsMatchMath() {
        Tensor a = Tensor.uniform(11, 0.1f, 4f, 5, 13);
        Tensor neg = Tensor.uniform(12, -3f, 3f, 5, 13);
        float[] x = a.toFloatArray(), xn = neg.toFloatArray();
        double[] exp = new double[x.length], log = new double[x.length], sqrt = new double[x.length], pow = new double[x.length],
                cube = new double[x.length], scale = new double[x.length], shift = new double[x.length], minus = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            exp[i] = Math.exp(xn[i]);
            log[i] = Math.log(x[i]);
            sqrt[i] = Math.sqrt(x[i]);
            pow[i] = Math.pow(x[i], -1.5);
            cube[i] = Math.pow(xn[i], 3);
            scale[i] = 2.5 * xn[i];
            shift[i] = xn[i] + 0.75;
            minus[i] = -xn[i];
        }
        assertClose("exp", exp, TensorOps.exp(neg), 1e-6, 0);
        assertClose("log", log, TensorOps.log(a), 1e-6, 1e-7);
        assertClose("sqrt", sqrt, TensorOps.sqrt(a), 1e-7, 0);
        assertClose("pow -1.5", pow, TensorOps.pow(a, -1.5f), 1e-6, 0);
        assertClose("pow 3 of negatives", cube, TensorOps.pow(neg, 3f), 1e-6, 1e-7);
        assertClose("scale", scale, TensorOps.scale(neg, 2.5f), 1e-7, 0);
        assertClose("addScalar", shift, TensorOps.addScalar(neg, 0.75f), 1e-7, 1e-7);
        assertClose("neg", minus, TensorOps.neg(neg), 0, 0);
        assertClose("exp of a transposed view", transposeRef(exp, 5, 13), TensorOps.exp(neg.transpose(0, 1)), 1e-6, 0);
    }

    private static double[] transposeRef(double[] v, int rows, int cols) {
        double[] t = new double[v.length];
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) t[j * rows + i] = v[i * cols + j];
        return t;
    }

    // ------------------------------------------------------------------------------------------- reductions

    @Test
    void sumAndMeanOverAxesMatchNaive() {
        SplittableRandom r = new SplittableRandom(4);
        List<int[]> shapes = List.of(new int[] {3, 4, 5}, new int[] {1, 7}, new int[] {700, 130}, new int[] {201, 1000}, new int[] {2, 1, 3, 5});
        for (int[] shape : shapes)
            for (int trial = 0; trial < 6; trial++) {
                List<Integer> axes = new ArrayList<>();
                for (int i = 0; i < shape.length; i++) if (r.nextBoolean()) axes.add(i);
                int[] ax = axes.stream().mapToInt(Integer::intValue).toArray();
                boolean keep = r.nextBoolean();
                Tensor a = Tensor.randn(trial, 1f, shape);
                if (trial % 3 == 2 && shape.length >= 2) a = Tensor.randn(trial, 1f, swapLast(shape)).transpose(-1, -2);
                checkReduction(a, keep, ax);
            }
    }

    private static void checkReduction(Tensor a, boolean keep, int[] axes) {
        boolean[] red = new boolean[a.rank()];
        if (axes.length == 0) Arrays.fill(red, true);
        for (int ax : axes) red[ax] = true;
        int[] keepShape = a.shape();
        List<Integer> dropped = new ArrayList<>();
        long count = 1;
        for (int d = 0; d < red.length; d++) {
            if (red[d]) { count *= keepShape[d]; keepShape[d] = 1; } else dropped.add(keepShape[d]);
        }
        double[] expected = new double[(int) Tensor.numel(keepShape)];
        double[] abs = new double[expected.length];
        for (long i = 0; i < a.numel(); i++) {
            int[] idx = unravel(i, a.shape());
            for (int d = 0; d < idx.length; d++) if (red[d]) idx[d] = 0;
            long o = 0;
            for (int d = 0; d < idx.length; d++) o = o * keepShape[d] + idx[d];
            float v = a.getFlat(i);
            expected[(int) o] += v;
            abs[(int) o] += Math.abs(v);
        }
        double maxAbs = Arrays.stream(abs).max().orElse(0);
        String what = a.describe() + " axes " + Arrays.toString(axes) + " keepDims " + keep;
        Tensor s = TensorOps.sum(a, keep, axes);
        Tensor m = TensorOps.mean(a, keep, axes);
        int[] expectedShape = keep ? keepShape : dropped.stream().mapToInt(Integer::intValue).toArray();
        assertArrayEquals(expectedShape, s.shape(), "sum shape " + what);
        assertArrayEquals(expectedShape, m.shape(), "mean shape " + what);
        // float accumulation: error grows with the magnitude summed; 1e-6 relative to it is ~10 float ulps
        assertClose("sum " + what, expected, s, 1e-6, 1e-6 * maxAbs);
        double[] mean = expected.clone();
        for (int i = 0; i < mean.length; i++) mean[i] /= count;
        assertClose("mean " + what, mean, m, 1e-6, 1e-6 * maxAbs / count);
    }

    @Test
    void longFullSumUsesPartialSumsCorrectly() {
        Tensor a = Tensor.uniform(9, 0f, 1f, 300_001);
        double exact = 0;
        for (float v : a.data()) exact += v;
        float got = TensorOps.sum(a, false).getFlat(0);
        assertEquals(exact, got, 1e-5 * exact);
    }

    // ------------------------------------------------------------------------------------------- shape ops and gathers

    @Test
    void shapeOpsAreViewsWithTheRightValues() {
        Tensor a = Tensor.randn(1, 1f, 2, 3, 4);
        Tensor p = TensorOps.permute(a, 2, 0, 1);
        assertSame(a.storage(), p.storage(), "permute must not copy");
        assertArrayEquals(new int[] {4, 2, 3}, p.shape());
        for (int i = 0; i < 4; i++) for (int j = 0; j < 2; j++) for (int k = 0; k < 3; k++) assertEquals(a.get(j, k, i), p.get(i, j, k));
        Tensor s = TensorOps.slice(a, 1, 1, 3);
        assertSame(a.storage(), s.storage(), "slice must not copy");
        for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) for (int k = 0; k < 4; k++) assertEquals(a.get(i, j + 1, k), s.get(i, j, k));
        Tensor rs = TensorOps.reshape(a, 6, -1);
        assertSame(a.storage(), rs.storage(), "reshape of a contiguous tensor must not copy");
        assertArrayEquals(a.toFloatArray(), rs.toFloatArray());
        Tensor t = TensorOps.transpose(a, 0, 2);
        assertArrayEquals(new int[] {4, 3, 2}, t.shape());
        assertArrayEquals(a.toFloatArray(), TensorOps.reshape(TensorOps.transpose(t, 2, 0), -1).toFloatArray());
    }

    @Test
    void concatAlongEveryAxis() {
        Tensor a = Tensor.randn(1, 1f, 2, 3, 4), b = Tensor.randn(2, 1f, 2, 3, 4);
        for (int d = 0; d < 3; d++) {
            int[] bs = a.shape();
            bs[d] = d + 1;
            Tensor part = Tensor.randn(3 + d, 1f, bs);
            Tensor c = TensorOps.concat(List.of(a, part, b), d);
            int[] expectedShape = a.shape();
            expectedShape[d] = 2 * a.dim(d) + d + 1;
            assertArrayEquals(expectedShape, c.shape());
            for (long i = 0; i < c.numel(); i++) {
                int[] idx = unravel(i, c.shape());
                int at = idx[d];
                Tensor src = at < a.dim(d) ? a : at < a.dim(d) + part.dim(d) ? part : b;
                idx[d] = at < a.dim(d) ? at : at < a.dim(d) + part.dim(d) ? at - a.dim(d) : at - a.dim(d) - part.dim(d);
                assertEquals(src.get(idx), c.getFlat(i), "concat dim " + d + " at " + i);
            }
        }
        Tensor viewed = TensorOps.concat(List.of(a.transpose(1, 2), b.transpose(1, 2)), -1);
        assertArrayEquals(new int[] {2, 4, 6}, viewed.shape());
        assertEquals(b.get(1, 2, 3), viewed.get(1, 3, 5));
    }

    @Test
    void embeddingGathersRowsFromHeapAndBf16Segment() {
        Tensor w = Tensor.randn(1, 1f, 10, 6);
        int[] ids = {3, 0, 9, 3};
        Tensor e = TensorOps.embedding(w, ids);
        assertArrayEquals(new int[] {4, 6}, e.shape());
        for (int i = 0; i < ids.length; i++) for (int j = 0; j < 6; j++) assertEquals(w.get(ids[i], j), e.get(i, j));
        try (Arena arena = Arena.ofConfined()) {
            Tensor wb = bf16Segment(arena, w);
            Tensor eb = TensorOps.embedding(wb, ids);
            for (int i = 0; i < ids.length; i++) for (int j = 0; j < 6; j++) assertEquals(wb.get(ids[i], j), eb.get(i, j));
        }
        Tensor big = Tensor.randn(2, 1f, 50, 1000);   // enough rows to split across threads
        int[] many = new SplittableRandom(3).ints(200, 0, 50).toArray();
        Tensor eb = TensorOps.embedding(big, many);
        for (int i = 0; i < many.length; i++) assertEquals(big.get(many[i], 999), eb.get(i, 999));
        // a transposed weight view (column-strided rows)
        Tensor wt = Tensor.randn(4, 1f, 6, 10).transpose(0, 1);
        Tensor et = TensorOps.embedding(wt, ids);
        for (int i = 0; i < ids.length; i++) for (int j = 0; j < 6; j++) assertEquals(wt.get(ids[i], j), et.get(i, j));
    }

    // ------------------------------------------------------------------------------------------- errors

    @Test
    void errorsNameTheShapesAtFault() {
        var e1 = assertThrows(IllegalArgumentException.class, () -> TensorOps.add(Tensor.zeros(3, 4), Tensor.zeros(5)));
        assertTrue(e1.getMessage().contains("[3, 4]") && e1.getMessage().contains("[5]"), e1.getMessage());
        var e2 = assertThrows(IllegalArgumentException.class, () -> TensorOps.matmul(Tensor.zeros(3, 4), Tensor.zeros(5, 2)));
        assertTrue(e2.getMessage().contains("[3, 4]") && e2.getMessage().contains("[5, 2]"), e2.getMessage());
        var e3 = assertThrows(IllegalArgumentException.class, () -> TensorOps.linear(Tensor.zeros(2, 7), Tensor.zeros(3, 8).name("q_proj"), null));
        assertTrue(e3.getMessage().contains("q_proj") && e3.getMessage().contains("[2, 7]"), e3.getMessage());
        var e4 = assertThrows(IllegalArgumentException.class, () -> TensorOps.embedding(Tensor.zeros(5, 2).name("tok_embeddings"), new int[] {1, 5}));
        assertTrue(e4.getMessage().contains("id 5") && e4.getMessage().contains("tok_embeddings"), e4.getMessage());
        var e5 = assertThrows(IllegalArgumentException.class, () -> TensorOps.concat(List.of(Tensor.zeros(2, 3), Tensor.zeros(3, 4)), 0));
        assertTrue(e5.getMessage().contains("[3, 4]"), e5.getMessage());
        var e6 = assertThrows(IllegalArgumentException.class, () -> TensorOps.bmm(Tensor.zeros(2, 3, 4), Tensor.zeros(3, 4, 5)));
        assertTrue(e6.getMessage().contains("[2]") && e6.getMessage().contains("[3]"), e6.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TensorOps.sum(Tensor.zeros(2, 3), false, 1, -1));
    }

    // ------------------------------------------------------------------------------------------- shape helpers

    private static int[] broadcastOf(SplittableRandom r, int[] full) {
        int drop = full.length == 0 ? 0 : r.nextInt(0, full.length + 1);
        int[] s = Arrays.copyOfRange(full, drop, full.length);
        for (int i = 0; i < s.length; i++) if (r.nextInt(3) == 0) s[i] = 1;
        return s;
    }

    private static int[] swapLast(int[] s) {
        int[] t = s.clone();
        t[t.length - 1] = s[s.length - 2];
        t[t.length - 2] = s[s.length - 1];
        return t;
    }
}
