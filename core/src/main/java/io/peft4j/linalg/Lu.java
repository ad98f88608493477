package io.peft4j.linalg;

import io.peft4j.kernels.Parallel;
import io.peft4j.tensor.Tensor;

/**
 * LU factorisation with partial (row) pivoting in double precision: {@code P A = L U} for A [m, n], with L [m, k]
 * unit lower triangular (trapezoidal), U [k, n] upper triangular, {@code k = min(m, n)}. Right-looking elimination;
 * the trailing update is split over rows across threads.
 *
 * <p>{@code torch.linalg.lu} returns the transposed permutation ({@code A = P L U}); here
 * {@link Result#permutationMatrix()} is the P of {@code P A = L U}. {@link Result#ldu()} gives the L·D·U form
 * that LoLDU starts from.
 */
public final class Lu {
    private Lu() {}

    /**
     * {@code P A = L U}. {@code perm[i]} is the row of A that became row i of {@code P A}; {@code swaps} is the
     * number of row interchanges (its parity is the sign of det P).
     */
    public record Result(double[] l, double[] u, int[] perm, int m, int n, int k, int swaps) {
        public Tensor lTensor() { return Dense.toTensor(l, m, k); }
        public Tensor uTensor() { return Dense.toTensor(u, k, n); }

        /** P [m, m] with {@code P[i][perm[i]] = 1}, so {@code P A = L U}. */
        public double[] permutationMatrix() {
            double[] p = new double[m * m];
            for (int i = 0; i < m; i++) p[i * m + perm[i]] = 1;
            return p;
        }

        /** {@code L U} [m, n], i.e. the rows of A in pivot order. */
        public double[] product() { return Dense.matmul(l, m, k, u, n); }

        /**
         * The L·D·U form {@code P A = L diag(D) U1}: D = diag(U), U1 = diag(D)^-1 U (unit upper triangular).
         *
         * @throws ArithmeticException naming the pivot if a diagonal entry of U is zero (A is rank-deficient in
         *     its leading columns and has no LDU form with unit U1)
         */
        public Ldu ldu() {
            double[] dd = new double[k];
            double[] u1 = u.clone();
            for (int i = 0; i < k; i++) {
                double piv = u[i * n + i];
                if (piv == 0) throw new ArithmeticException("LDU: pivot " + i + " of U " + Dense.dims(k, n) + " is zero (rank-deficient input)");
                dd[i] = piv;
                double inv = 1 / piv;
                u1[i * n + i] = 1;
                for (int j = i + 1; j < n; j++) u1[i * n + j] *= inv;
            }
            return new Ldu(l, dd, u1, perm, m, n, k);
        }
    }

    /** {@code P A = L diag(d) U} with L [m, k] unit lower, d [k], U [k, n] unit upper. */
    public record Ldu(double[] l, double[] d, double[] u, int[] perm, int m, int n, int k) {
        /** {@code L diag(d) U} [m, n]. */
        public double[] product() {
            double[] ld = l.clone();
            for (int i = 0; i < m; i++) for (int j = 0; j < k; j++) ld[i * k + j] *= d[j];
            return Dense.matmul(ld, m, k, u, n);
        }
    }

    public static Result of(Tensor a) { return of(Dense.fromTensor(a), a.dim(0), a.dim(1)); }

    /** LU with partial pivoting of the row-major [m, n] matrix {@code a} (not modified). */
    public static Result of(double[] a, int m, int n) {
        Dense.checkSize(a, m, n, "A");
        int k = Math.min(m, n);
        double[] w = a.clone();   // [m, n]: multipliers below the diagonal, U on and above it
        int[] perm = new int[m];
        for (int i = 0; i < m; i++) perm[i] = i;
        int swaps = 0;
        for (int j = 0; j < k; j++) {
            int p = j;
            double best = Math.abs(w[j * n + j]);
            for (int i = j + 1; i < m; i++) {
                double x = Math.abs(w[i * n + j]);
                if (x > best) { best = x; p = i; }
            }
            if (Double.isNaN(best)) throw new IllegalArgumentException("LU input " + Dense.dims(m, n) + " has NaN in column " + j);
            if (p != j) {
                for (int c = 0; c < n; c++) { double t = w[j * n + c]; w[j * n + c] = w[p * n + c]; w[p * n + c] = t; }
                int t = perm[j]; perm[j] = perm[p]; perm[p] = t;
                swaps++;
            }
            double piv = w[j * n + j];
            if (piv == 0) continue;   // the whole column below is zero: nothing to eliminate, U gets a zero pivot
            double inv = 1 / piv;
            int jj = j;
            Parallel.forRange(j + 1, m, Dense.grainRows(2L * (n - j)), (from, to) -> {
                int prow = jj * n;
                for (int i = from; i < to; i++) {
                    int row = i * n;
                    double f = w[row + jj] * inv;
                    w[row + jj] = f;
                    if (f == 0) continue;
                    for (int c = jj + 1; c < n; c++) w[row + c] -= f * w[prow + c];
                }
            });
        }
        double[] l = new double[m * k], u = new double[k * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < Math.min(i, k); j++) l[i * k + j] = w[i * n + j];
            if (i < k) l[i * k + i] = 1;
        }
        for (int i = 0; i < k; i++) System.arraycopy(w, i * n + i, u, i * n + i, n - i);
        return new Result(l, u, perm, m, n, k, swaps);
    }
}
