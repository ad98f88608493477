package io.peft4j.kernels;

/**
 * The scalar twin of the GEMM: a plain triple loop with double accumulation, reading every operand element
 * through the same {@link GemmOperand} indexing as the fast path. Selected by {@code -Dpeft4j.kernels=scalar};
 * the reference the vector kernels are tested against.
 */
final class GemmScalar {
    private GemmScalar() {}

    /** C[m, n] (+)= A[m, k] · B[k, n]. */
    static void multiply(GemmOperand a, GemmOperand b, float[] c, int cOff, int ldc, boolean accumulate) {
        int m = a.rows, k = a.cols, n = b.cols;
        float[] arow = new float[k];
        for (int i = 0; i < m; i++) {
            for (int p = 0; p < k; p++) arow[p] = element(a, i, p);
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double) arow[p] * element(b, p, j);
                int ci = cOff + i * ldc + j;
                c[ci] = accumulate ? (float) (c[ci] + s) : (float) s;
            }
        }
    }

    /** C[m, n] (+)= A[m, k] · B with B pre-packed. */
    static void multiply(GemmOperand a, PackedMatrix b, float[] c, int cOff, int ldc, boolean accumulate) {
        int m = a.rows, k = a.cols, n = b.cols();
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double) element(a, i, p) * b.get(p, j);
                int ci = cOff + i * ldc + j;
                c[ci] = accumulate ? (float) (c[ci] + s) : (float) s;
            }
        }
    }

    private static float element(GemmOperand o, int i, int j) {
        return o.storage.getFloat(o.dtype, o.index(i, j));
    }
}
