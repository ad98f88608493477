package io.peft4j.linalg;

import io.peft4j.kernels.Parallel;
import io.peft4j.tensor.Tensor;

/**
 * Eigendecomposition of a real symmetric matrix in double precision: {@code A = V diag(w) V^T} with eigenvalues
 * {@code w} descending (unlike {@code torch.linalg.eigh}, which returns them ascending) and orthonormal eigenvectors
 * as the columns of V [n, n].
 *
 * <p>Householder tridiagonalisation, then implicit Wilkinson-shifted symmetric QR sweeps on the tridiagonal
 * (Golub and Van Loan, Alg. 8.3.3) with the rotations accumulated into the rows of V^T. Only the lower triangle
 * of the input is read, so a slightly asymmetric input (rounding from {@code X^T X}) is treated as its lower half.
 */
public final class SymmetricEigen {
    private SymmetricEigen() {}

    private static final double EPS = Math.ulp(1.0) / 2;

    /** Eigenvalues {@code w} [n] descending and eigenvectors V [n, n] (column j belongs to w[j]). */
    public record Result(double[] values, double[] vectors, int n) {
        public Tensor valuesTensor() { return Dense.toTensor(values); }
        public Tensor vectorsTensor() { return Dense.toTensor(vectors, n, n); }

        /** {@code V diag(w) V^T} [n, n]. */
        public double[] reconstruct() { return Dense.scaleProduct(vectors, n, values, vectors, n); }
    }

    public static Result of(Tensor a) {
        if (a.rank() != 2 || a.dim(0) != a.dim(1)) throw new IllegalArgumentException("SymmetricEigen needs a square [n, n] tensor, got " + a.describe());
        return of(Dense.fromTensor(a), a.dim(0));
    }

    /** Eigendecomposition of the symmetric row-major [n, n] matrix {@code a} (not modified; lower triangle read). */
    public static Result of(double[] a, int n) { return compute(a, n, true); }

    /** Eigenvalues only, descending. */
    public static double[] values(double[] a, int n) { return compute(a, n, false).values; }

    private static Result compute(double[] a, int n, boolean vectors) {
        Dense.checkSize(a, n, n, "A");
        double amax = 0;
        double[] w = new double[n * n];   // [n, n] symmetric copy of the lower triangle, scaled to max-abs 1
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) {
                double x = a[i * n + j];
                if (!Double.isFinite(x)) throw new IllegalArgumentException("eigen input [" + n + ", " + n + "] has " + x + " at (" + i + ", " + j + ")");
                amax = Math.max(amax, Math.abs(x));
            }
        if (amax == 0) return new Result(new double[n], vectors ? Dense.identity(n) : null, n);
        double inv = 1 / amax;
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) w[i * n + j] = w[j * n + i] = a[i * n + j] * inv;

        double[] d = new double[n];                     // [n] tridiagonal diagonal
        double[] e = new double[Math.max(0, n - 1)];    // [n-1] off-diagonal
        double[][] vs = new double[Math.max(0, n - 2)][];
        double[] taus = new double[Math.max(0, n - 2)];
        double[] p = new double[n];
        for (int k = 0; k < n - 2; k++) {
            int len = n - k - 1;
            double[] v = new double[len];
            for (int i = 0; i < len; i++) v[i] = w[(k + 1 + i) * n + k];
            double tau = Householder.make(v, len);
            d[k] = w[k * n + k];
            e[k] = v[0];
            vs[k] = v;
            taus[k] = tau;
            if (tau == 0) continue;
            // Two-sided update of the trailing block S = A[k+1.., k+1..]: S -= v q^T + q v^T with
            // p = tau S v, q = p - (tau/2)(p.v) v (v[0] = 1).
            int base = k + 1;
            v[0] = 1;
            Parallel.forRange(0, len, Dense.grainRows(len), (from, to) -> {
                for (int i = from; i < to; i++) p[i] = tau * Dense.dot(w, (base + i) * n + base, v, 0, len);
            });
            double pv = Dense.dot(p, 0, v, 0, len);
            double half = 0.5 * tau * pv;
            for (int i = 0; i < len; i++) p[i] -= half * v[i];
            Parallel.forRange(0, len, Dense.grainRows(2L * len), (from, to) -> {
                for (int i = from; i < to; i++) {
                    int row = (base + i) * n + base;
                    double vi = v[i], qi = p[i];
                    for (int j = 0; j < len; j++) w[row + j] -= vi * p[j] + qi * v[j];
                }
            });
        }
        if (n >= 2) {
            d[n - 2] = w[(n - 2) * n + n - 2];
            e[n - 2] = w[(n - 1) * n + n - 2];
        }
        if (n >= 1) d[n - 1] = w[(n - 1) * n + n - 1];

        double[] qt = null;
        if (vectors) {
            double[] q = Dense.identity(n);   // [n, n] = H_0 ... H_{n-3}, reflector k acting on indices k+1..
            for (int k = n - 3; k >= 0; k--) Householder.applyLeft(q, n, vs[k], n - k - 1, taus[k], k + 1, k + 1, n);
            qt = Dense.transpose(q, n, n);
        }
        tridiagonalQr(d, e, qt, n);

        int[] order = Svd.descendingOrder(d);
        double[] vals = new double[n];
        for (int j = 0; j < n; j++) vals[j] = d[order[j]] * amax;
        if (!vectors) return new Result(vals, null, n);
        double[] v = new double[n * n];
        for (int j = 0; j < n; j++) {
            int src = order[j];
            for (int i = 0; i < n; i++) v[i * n + j] = qt[src * n + i];
        }
        return new Result(vals, v, n);
    }

    /** Diagonalises the symmetric tridiagonal (d, e) in place, rotating the rows of {@code qt} [n, len] alongside. */
    static void tridiagonalQr(double[] d, double[] e, double[] qt, int len) {
        int n = d.length;
        double anorm = 0;
        for (int i = 0; i < n; i++) anorm = Math.max(anorm, Math.abs(d[i]) + (i > 0 ? Math.abs(e[i - 1]) : 0) + (i < n - 1 ? Math.abs(e[i]) : 0));
        double floor = Double.MIN_NORMAL * Math.max(anorm, 1e-300);
        double[] cs = new double[n], sn = new double[n];
        long maxSweeps = 60L * n + 100, sweeps = 0;
        int hi = n - 1;
        while (hi > 0) {
            if (negligible(e[hi - 1], d[hi - 1], d[hi], floor)) { e[hi - 1] = 0; hi--; continue; }
            int lo = hi - 1;
            while (lo > 0) {
                if (negligible(e[lo - 1], d[lo - 1], d[lo], floor)) { e[lo - 1] = 0; break; }
                lo--;
            }
            if (++sweeps > maxSweeps)
                throw new ArithmeticException("SymmetricEigen: tridiagonal QR did not converge after " + maxSweeps + " sweeps (n = " + n + ")");
            double delta = (d[hi - 1] - d[hi]) / 2, b = e[hi - 1];
            double mu = d[hi] - b * b / (delta + Math.copySign(Householder.hypot(delta, b), delta == 0 ? 1 : delta));
            double x = d[lo] - mu, z = e[lo];
            for (int k = lo; k < hi; k++) {
                double r = Householder.hypot(x, z);
                double c = r == 0 ? 1 : x / r, s = r == 0 ? 0 : z / r;
                if (k > lo) e[k - 1] = r;
                double a0 = d[k], b0 = e[k], c0 = d[k + 1];
                double cc = c * c, ss = s * s, csb = 2 * c * s * b0;
                d[k] = cc * a0 + csb + ss * c0;
                d[k + 1] = ss * a0 - csb + cc * c0;
                e[k] = c * s * (c0 - a0) + (cc - ss) * b0;
                cs[k - lo] = c; sn[k - lo] = s;
                if (k < hi - 1) {
                    z = s * e[k + 1];
                    e[k + 1] = c * e[k + 1];
                    x = e[k];
                }
            }
            Rotations.chain(qt, len, lo, hi - lo, cs, sn);
        }
    }

    private static boolean negligible(double e, double d0, double d1, double floor) {
        double ae = Math.abs(e);
        return ae <= EPS * (Math.abs(d0) + Math.abs(d1)) || ae <= floor;
    }
}
