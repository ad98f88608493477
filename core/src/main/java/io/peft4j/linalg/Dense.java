package io.peft4j.linalg;

import io.peft4j.kernels.Parallel;
import io.peft4j.tensor.Tensor;

/**
 * Small helpers on dense row-major {@code double[]} matrices with explicit dimensions: products, transpose, norms,
 * and conversion from/to F32 {@link Tensor}s. These run once at adapter initialisation, not per training step, so
 * they are plain loops (the JIT vectorises the contiguous inner loops) parallelised over output rows.
 */
public final class Dense {
    private Dense() {}

    /** Below this many multiply-adds a product runs on the calling thread: the hand-off would cost more. */
    static final long PARALLEL_FLOPS = 1L << 17;

    // ---------------------------------------------------------------- conversion

    /** The elements of a rank-2 tensor of any dtype and layout as a new row-major double[] [rows, cols]. */
    public static double[] fromTensor(Tensor t) {
        if (t.rank() != 2) throw new IllegalArgumentException("linalg needs a rank-2 tensor [rows, cols], got " + t.describe());
        float[] f = t.toFloatArray();
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    /** A new dense F32 tensor [rows, cols] rounded from {@code a}. */
    public static Tensor toTensor(double[] a, int rows, int cols) {
        checkSize(a, rows, cols, "a");
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) f[i] = (float) a[i];
        return Tensor.of(f, rows, cols);
    }

    /** A rank-1 F32 tensor [n] from a vector (singular values, eigenvalues). */
    public static Tensor toTensor(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
        return Tensor.of(f, v.length);
    }

    static void checkSize(double[] a, int rows, int cols, String name) {
        if (rows < 0 || cols < 0) throw new IllegalArgumentException(name + ": negative dimension [" + rows + ", " + cols + "]");
        if (a.length != (long) rows * cols)
            throw new IllegalArgumentException(name + ": [" + rows + ", " + cols + "] needs " + (long) rows * cols + " elements, got " + a.length);
    }

    // ---------------------------------------------------------------- construction and shape

    public static double[] identity(int n) {
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) a[i * n + i] = 1;
        return a;
    }

    /** Transpose of a [rows, cols] matrix, as [cols, rows]. */
    public static double[] transpose(double[] a, int rows, int cols) {
        checkSize(a, rows, cols, "a");
        double[] t = new double[a.length];
        final int B = 32;   // tile so both the reads and the writes stay in cache lines already loaded
        for (int i0 = 0; i0 < rows; i0 += B)
            for (int j0 = 0; j0 < cols; j0 += B) {
                int i1 = Math.min(rows, i0 + B), j1 = Math.min(cols, j0 + B);
                for (int i = i0; i < i1; i++)
                    for (int j = j0; j < j1; j++) t[j * rows + i] = a[i * cols + j];
            }
        return t;
    }

    /** Columns {@code [from, to)} of a [rows, cols] matrix, as [rows, to - from]. */
    public static double[] columns(double[] a, int rows, int cols, int from, int to) {
        checkSize(a, rows, cols, "a");
        if (from < 0 || to > cols || from > to) throw new IllegalArgumentException("columns [" + from + ", " + to + ") out of [0, " + cols + ")");
        int w = to - from;
        double[] out = new double[rows * w];
        for (int i = 0; i < rows; i++) System.arraycopy(a, i * cols + from, out, i * w, w);
        return out;
    }

    // ---------------------------------------------------------------- products

    /** Rows of B (in {@link #matmul}) or of C (in {@link #matmulTN}) per cache block: ~100-300 KB for n ~ 64. */
    private static final int BLOCK = 256;

    /** {@code C = A B} with A [m, k], B [k, n]; C is [m, n]. */
    public static double[] matmul(double[] a, int m, int k, double[] b, int n) {
        checkSize(a, m, k, "A");
        checkSize(b, k, n, "B");
        double[] c = new double[m * n];
        int grain = grainRows((long) k * n);
        Parallel.forRange(0, m, grain, (from, to) -> {
            // A block of B rows stays in cache while every row of this chunk uses it.
            for (int p0 = 0; p0 < k; p0 += BLOCK) {
                int p1 = Math.min(k, p0 + BLOCK);
                for (int i = from; i < to; i++) {
                    int ci = i * n, ai = i * k;
                    for (int p = p0; p < p1; p++) {
                        double aip = a[ai + p];
                        if (aip == 0) continue;
                        int bp = p * n;
                        for (int j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
                    }
                }
            }
        });
        return c;
    }

    /** {@code C = A^T B} with A [k, m], B [k, n]; C is [m, n]. Does not form A^T. */
    public static double[] matmulTN(double[] a, int k, int m, double[] b, int n) {
        checkSize(a, k, m, "A");
        checkSize(b, k, n, "B");
        double[] c = new double[m * n];
        int grain = grainRows((long) k * n);
        Parallel.forRange(0, m, grain, (from, to) -> {
            // A block of C rows stays in cache while A and B stream past it once per block.
            for (int i0 = from; i0 < to; i0 += BLOCK / 4) {
                int i1 = Math.min(to, i0 + BLOCK / 4);
                for (int p = 0; p < k; p++) {
                    int ap = p * m, bp = p * n;
                    for (int i = i0; i < i1; i++) {
                        double api = a[ap + i];
                        if (api == 0) continue;
                        int ci = i * n;
                        for (int j = 0; j < n; j++) c[ci + j] += api * b[bp + j];
                    }
                }
            }
        });
        return c;
    }

    /** {@code C = A B^T} with A [m, k], B [n, k]; C is [m, n]. Does not form B^T. */
    public static double[] matmulNT(double[] a, int m, int k, double[] b, int n) {
        checkSize(a, m, k, "A");
        checkSize(b, n, k, "B");
        double[] c = new double[m * n];
        int grain = grainRows((long) k * n);
        Parallel.forRange(0, m, grain, (from, to) -> {
            for (int i = from; i < to; i++) {
                int ai = i * k;
                for (int j = 0; j < n; j++) c[i * n + j] = dot(a, ai, b, j * k, k);
            }
        });
        return c;
    }

    /** Rows per parallel chunk so each chunk does at least {@link #PARALLEL_FLOPS} multiply-adds. */
    static int grainRows(long flopsPerRow) {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, PARALLEL_FLOPS / Math.max(1, flopsPerRow)));
    }

    static double dot(double[] x, int xo, double[] y, int yo, int n) {
        // Four partial sums break the add dependency chain and let the JIT keep several FMAs in flight.
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += x[xo + i] * y[yo + i];
            s1 += x[xo + i + 1] * y[yo + i + 1];
            s2 += x[xo + i + 2] * y[yo + i + 2];
            s3 += x[xo + i + 3] * y[yo + i + 3];
        }
        for (; i < n; i++) s0 += x[xo + i] * y[yo + i];
        return (s0 + s1) + (s2 + s3);
    }

    // ---------------------------------------------------------------- norms and checks

    /** Frobenius norm, accumulated with scaling so huge or tiny entries neither overflow nor underflow. */
    public static double frobenius(double[] a) {
        double scale = 0, ssq = 1;
        for (double v : a) {
            if (v == 0) continue;
            double av = Math.abs(v);
            if (scale < av) {
                double r = scale / av;
                ssq = 1 + ssq * r * r;
                scale = av;
            } else {
                double r = av / scale;
                ssq += r * r;
            }
        }
        return scale * Math.sqrt(ssq);
    }

    /** Frobenius norm of {@code a - b}. */
    public static double frobeniusDiff(double[] a, double[] b) {
        if (a.length != b.length) throw new IllegalArgumentException("lengths differ: " + a.length + " vs " + b.length);
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i] - b[i];
        return frobenius(d);
    }

    public static double maxAbs(double[] a) {
        double m = 0;
        for (double v : a) m = Math.max(m, Math.abs(v));
        return m;
    }

    /**
     * How far the columns of Q [rows, cols] are from orthonormal: the largest entry of {@code |Q^T Q - I|}.
     * About {@code 1e-15 * sqrt(rows)} for a Householder-built Q.
     */
    public static double orthonormalityError(double[] q, int rows, int cols) {
        double[] g = matmulTN(q, rows, cols, q, cols);
        for (int i = 0; i < cols; i++) g[i * cols + i] -= 1;
        return maxAbs(g);
    }

    /** {@code U diag(s) V^T} with U [m, k], s [k], V [n, k]: the product of a thin SVD. */
    public static double[] scaleProduct(double[] u, int m, double[] s, double[] v, int n) {
        int k = s.length;
        checkSize(u, m, k, "U");
        checkSize(v, n, k, "V");
        double[] us = u.clone();
        for (int i = 0; i < m; i++) for (int j = 0; j < k; j++) us[i * k + j] *= s[j];
        return matmulNT(us, m, k, v, n);
    }

    static String dims(int rows, int cols) { return "[" + rows + ", " + cols + "]"; }
}
