package io.peft4j.linalg;

import io.peft4j.tensor.Tensor;

/**
 * Householder QR in double precision: the thin factorisation {@code A = Q R} with Q [m, k] (orthonormal columns),
 * R [k, n] upper triangular (upper trapezoidal when n > m), {@code k = min(m, n)}.
 *
 * <p><b>Sign convention:</b> the same as LAPACK's {@code dgeqrf}/{@code dorgqr} and therefore as
 * {@code torch.linalg.qr(A, mode='reduced')}: each reflector maps its pivot column to {@code beta e_1} with
 * {@code beta = -sign(alpha) * norm}, where alpha is the pivot entry at that step. So {@code R[j][j]} is
 * <em>negative</em> when the pivot is positive (e.g. {@code R[0][0] = -||A[:, 0]||} for a positive
 * {@code A[0][0]}), and a column whose sub-pivot part is already zero gets no reflection (its diagonal keeps
 * the pivot's sign). Callers who want a non-negative diagonal (OLoRA does not) can flip signs of matching
 * columns of Q and rows of R.
 *
 * <p>{@link #pivoted} adds column pivoting (LAPACK {@code dgeqp3} style: largest remaining column norm first,
 * with norm downdating), giving {@code A[:, perm] = Q R} with non-increasing {@code |R[j][j]|}: a cheap rank
 * revealer.
 */
public final class Qr {
    private Qr() {}

    /** A thin QR factorisation. {@code perm} is the identity unless the factorisation was pivoted. */
    public record Result(double[] q, double[] r, int m, int n, int k, int[] perm) {
        /** Q as an F32 tensor [m, k]. */
        public Tensor qTensor() { return Dense.toTensor(q, m, k); }

        /** R as an F32 tensor [k, n]. */
        public Tensor rTensor() { return Dense.toTensor(r, k, n); }

        /** The column permutation: column j of {@code Q R} is column {@code perm[j]} of A. */
        public int[] perm() { return perm.clone(); }
    }

    /** Thin QR of a rank-2 tensor [m, n] (any dtype), computed in double. */
    public static Result thin(Tensor a) { return thin(Dense.fromTensor(a), a.dim(0), a.dim(1)); }

    /** Thin QR of the row-major [m, n] matrix {@code a} (not modified). */
    public static Result thin(double[] a, int m, int n) { return factor(a, m, n, false); }

    /** Column-pivoted thin QR of a rank-2 tensor [m, n]. */
    public static Result pivoted(Tensor a) { return pivoted(Dense.fromTensor(a), a.dim(0), a.dim(1)); }

    /** Column-pivoted thin QR: {@code A[:, perm] = Q R} with {@code |R[j][j]|} non-increasing. */
    public static Result pivoted(double[] a, int m, int n) { return factor(a, m, n, true); }

    /** Just Q [m, min(m, n)]: the orthonormal basis of the column space, as the randomized SVD needs it. */
    static double[] orthonormalBasis(double[] a, int m, int n) { return factor(a, m, n, false).q; }

    private static Result factor(double[] a, int m, int n, boolean pivot) {
        Dense.checkSize(a, m, n, "A");
        int k = Math.min(m, n);
        double[] w = a.clone();            // [m, n]: R above the diagonal, reflectors below as we go
        double[][] vs = new double[k][];   // [k][m - j]: reflector j, v[0] = 1 implicit
        double[] taus = new double[k];
        int[] perm = new int[n];
        for (int j = 0; j < n; j++) perm[j] = j;

        double[] vn1 = null, vn2 = null;   // [n]: downdated and last exactly computed partial column norms
        double tol3z = Math.sqrt(Math.ulp(1.0));
        if (pivot) {
            vn1 = new double[n];
            vn2 = new double[n];
            for (int j = 0; j < n; j++) vn1[j] = vn2[j] = columnNorm(w, m, n, j, 0);
        }

        for (int j = 0; j < k; j++) {
            if (pivot) {
                int p = j;
                for (int l = j + 1; l < n; l++) if (vn1[l] > vn1[p]) p = l;
                if (p != j) {
                    for (int i = 0; i < m; i++) { double t = w[i * n + p]; w[i * n + p] = w[i * n + j]; w[i * n + j] = t; }
                    int tp = perm[p]; perm[p] = perm[j]; perm[j] = tp;
                    vn1[p] = vn1[j]; vn2[p] = vn2[j];
                }
            }
            int len = m - j;
            double[] v = new double[len];
            for (int i = 0; i < len; i++) v[i] = w[(j + i) * n + j];
            double tau = Householder.make(v, len);
            w[j * n + j] = v[0];
            for (int i = 1; i < len; i++) w[(j + i) * n + j] = 0;
            vs[j] = v;
            taus[j] = tau;
            Householder.applyLeft(w, n, v, len, tau, j, j + 1, n);

            if (pivot) {
                for (int l = j + 1; l < n; l++) {
                    if (vn1[l] == 0) continue;
                    double t = Math.abs(w[j * n + l]) / vn1[l];
                    t = Math.max(0, 1 - t * t);
                    double ratio = vn1[l] / vn2[l];
                    if (t * ratio * ratio <= tol3z) {
                        // Cancellation ate the downdated norm's digits: recompute it from the remaining rows.
                        vn1[l] = vn2[l] = columnNorm(w, m, n, l, j + 1);
                    } else {
                        vn1[l] *= Math.sqrt(t);
                    }
                }
            }
        }

        double[] r = new double[k * n];
        for (int i = 0; i < k; i++) System.arraycopy(w, i * n + i, r, i * n + i, n - i);

        // Q = H_0 ... H_{k-1} [I; 0], built backwards so each reflector touches only its trailing block (dorg2r).
        double[] q = new double[m * k];
        for (int i = 0; i < k; i++) q[i * k + i] = 1;
        for (int j = k - 1; j >= 0; j--) Householder.applyLeft(q, k, vs[j], m - j, taus[j], j, j, k);
        return new Result(q, r, m, n, k, perm);
    }

    private static double columnNorm(double[] w, int m, int n, int j, int fromRow) {
        double[] col = new double[m - fromRow];
        for (int i = fromRow; i < m; i++) col[i - fromRow] = w[i * n + j];
        return Householder.norm(col, 0, col.length);
    }
}
