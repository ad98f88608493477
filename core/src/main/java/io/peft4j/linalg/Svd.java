package io.peft4j.linalg;

import io.peft4j.tensor.Tensor;

import java.util.Arrays;

/**
 * Thin singular value decomposition in double precision, {@code A = U diag(S) V^T} with U [m, k], S [k]
 * descending and non-negative, V [n, k], {@code k = min(m, n)}.
 *
 * <p>Golub-Kahan-Reinsch: the input is scaled to max-abs 1 (so the squared quantities in the shift neither overflow
 * nor underflow), a tall input ({@code m >= 5n/3}) is first reduced by QR to its n x n triangle, then Householder
 * bidiagonalisation and implicit Wilkinson-shifted QR sweeps on the bidiagonal, with zero-diagonal chasing for
 * rank-deficient inputs. A wide input is handled by decomposing its transpose. Singular vectors are accumulated as
 * rows (transposed storage) so each Givens rotation streams two contiguous rows; the rotations of one sweep are
 * applied in parallel over column ranges.
 *
 * <p>Cost is O(m n^2) with a large constant (~20 n^3 flops for square inputs, two thirds of it accumulating the
 * rotations into U and V): 6.6 s of CPU for 1024 x 1024 on one core here ({@link #values} alone: 1.9 s), so a
 * 4096 x 4096 weight takes minutes. For the top r triplets of a big matrix use {@link RandomizedSvd}. Note {@code torch.linalg.svd} returns {@code Vh}
 * ({@link Result#vt()}), while {@code torch.svd_lowrank} and {@link Result#v()} return V.
 */
public final class Svd {
    private Svd() {}

    private static final double EPS = Math.ulp(1.0) / 2;   // unit roundoff, 2^-53

    /** A thin SVD: U [m, k], s [k] descending, V [n, k] (columns are the right singular vectors). */
    public record Result(double[] u, double[] s, double[] v, int m, int n, int k) {
        /** V^T [k, n], as {@code torch.linalg.svd}'s Vh. */
        public double[] vt() { return Dense.transpose(v, n, k); }

        public Tensor uTensor() { return Dense.toTensor(u, m, k); }
        public Tensor sTensor() { return Dense.toTensor(s); }
        public Tensor vTensor() { return Dense.toTensor(v, n, k); }
        public Tensor vtTensor() { return Dense.toTensor(vt(), k, n); }

        /** The leading {@code r} triplets. */
        public Result truncate(int r) {
            if (r < 0 || r > k) throw new IllegalArgumentException("rank " + r + " out of [0, " + k + "] for an SVD of " + Dense.dims(m, n));
            if (r == k) return this;
            return new Result(Dense.columns(u, m, k, 0, r), Arrays.copyOf(s, r), Dense.columns(v, n, k, 0, r), m, n, r);
        }

        /** {@code U diag(S) V^T} [m, n]. */
        public double[] reconstruct() { return Dense.scaleProduct(u, m, s, v, n); }
    }

    /** Thin SVD of a rank-2 tensor [m, n] (any dtype), computed in double. */
    public static Result thin(Tensor a) { return thin(Dense.fromTensor(a), a.dim(0), a.dim(1)); }

    /** Thin SVD of the row-major [m, n] matrix {@code a} (not modified). */
    public static Result thin(double[] a, int m, int n) {
        Dense.checkSize(a, m, n, "A");
        return compute(a, m, n, true);
    }

    /** The best rank-r approximation's factors (Eckart-Young): the top {@code r} triplets of the exact SVD. */
    public static Result truncated(double[] a, int m, int n, int r) {
        int k = Math.min(m, n);
        if (r < 0 || r > k) throw new IllegalArgumentException("rank " + r + " out of [0, " + k + "] for A " + Dense.dims(m, n));
        return thin(a, m, n).truncate(r);
    }

    public static Result truncated(Tensor a, int r) { return truncated(Dense.fromTensor(a), a.dim(0), a.dim(1), r); }

    /** The singular values only, descending; skips the vector accumulation (several times cheaper). */
    public static double[] values(double[] a, int m, int n) {
        Dense.checkSize(a, m, n, "A");
        return compute(a, m, n, false).s;
    }

    private static Result compute(double[] a, int m, int n, boolean vectors) {
        if (m < n) {
            Result t = compute(Dense.transpose(a, m, n), n, m, vectors);
            return new Result(t.v, t.s, t.u, m, n, t.k);
        }
        int k = n;   // m >= n from here on
        double amax = 0;
        for (double x : a) {
            if (!Double.isFinite(x)) throw new IllegalArgumentException("SVD input " + Dense.dims(m, n) + " contains " + x);
            amax = Math.max(amax, Math.abs(x));
        }
        if (amax == 0 || k == 0) {
            double[] u = new double[m * k], v = new double[n * k];
            for (int i = 0; i < k; i++) { u[i * k + i] = 1; v[i * k + i] = 1; }
            return new Result(vectors ? u : null, new double[k], vectors ? v : null, m, n, k);
        }
        double[] w = new double[a.length];
        double inv = 1 / amax;
        for (int i = 0; i < a.length; i++) w[i] = a[i] * inv;

        Result r;
        if (3L * m >= 5L * n && n > 1) {
            // Tall: bidiagonalising the n x n triangle costs far less than the m x n matrix.
            Qr.Result qr = Qr.thin(w, m, n);
            Result sr = square(qr.r(), n, n, vectors);
            double[] u = vectors ? Dense.matmul(qr.q(), m, n, sr.u, n) : null;
            r = new Result(u, sr.s, sr.v, m, n, k);
        } else {
            r = square(w, m, n, vectors);
        }
        for (int i = 0; i < k; i++) r.s[i] *= amax;
        return r;
    }

    /** SVD of a scaled [m, n] matrix with m >= n via bidiagonalisation (w is overwritten). */
    private static Result square(double[] w, int m, int n, boolean vectors) {
        double[] d = new double[n];                   // [n] diagonal of B
        double[] e = new double[Math.max(0, n - 1)];  // [n-1] superdiagonal of B
        double[][] vl = new double[n][];              // left reflectors, [m - j] each
        double[] tl = new double[n];
        double[][] vr = new double[Math.max(0, n - 1)][];   // right reflectors, [n - j - 1] each
        double[] tr = new double[Math.max(0, n - 1)];
        for (int j = 0; j < n; j++) {
            int len = m - j;
            double[] v = new double[len];
            for (int i = 0; i < len; i++) v[i] = w[(j + i) * n + j];
            tl[j] = Householder.make(v, len);
            d[j] = v[0];
            vl[j] = v;
            Householder.applyLeft(w, n, v, len, tl[j], j, j + 1, n);
            if (j < n - 1) {
                int len2 = n - j - 1;
                double[] v2 = Arrays.copyOfRange(w, j * n + j + 1, j * n + n);
                tr[j] = Householder.make(v2, len2);
                e[j] = v2[0];
                vr[j] = v2;
                Householder.applyRight(w, n, v2, len2, tr[j], j + 1, m, j + 1);
            }
        }
        double[] ut = null, vt = null;
        if (vectors) {
            double[] u = new double[m * n];           // [m, n] = H_0 ... H_{n-1} [I; 0]
            for (int i = 0; i < n; i++) u[i * n + i] = 1;
            for (int j = n - 1; j >= 0; j--) Householder.applyLeft(u, n, vl[j], m - j, tl[j], j, j, n);
            double[] v = Dense.identity(n);          // [n, n] = G_0 ... G_{n-2}
            for (int j = n - 2; j >= 0; j--) Householder.applyLeft(v, n, vr[j], n - j - 1, tr[j], j + 1, j + 1, n);
            ut = Dense.transpose(u, m, n);           // [n, m]
            vt = Dense.transpose(v, n, n);           // [n, n]
        }
        bidiagonalQr(d, e, ut, m, vt, n);

        // Make values non-negative (flip the matching right vector), then sort descending.
        for (int i = 0; i < n; i++) {
            if (d[i] < 0) {
                d[i] = -d[i];
                if (vt != null) for (int j = 0; j < n; j++) vt[i * n + j] = -vt[i * n + j];
            }
        }
        int[] order = descendingOrder(d);
        double[] s = new double[n];
        for (int j = 0; j < n; j++) s[j] = d[order[j]];
        if (!vectors) return new Result(null, s, null, m, n, n);
        double[] u = new double[m * n], v = new double[n * n];
        for (int j = 0; j < n; j++) {
            int src = order[j];
            for (int i = 0; i < m; i++) u[i * n + j] = ut[src * m + i];
            for (int i = 0; i < n; i++) v[i * n + j] = vt[src * n + i];
        }
        return new Result(u, s, v, m, n, n);
    }

    static int[] descendingOrder(double[] x) {
        Integer[] idx = new Integer[x.length];   // O(n log n) once, not in a hot loop
        for (int i = 0; i < idx.length; i++) idx[i] = i;
        Arrays.sort(idx, (p, q) -> Double.compare(x[q], x[p]));
        int[] out = new int[idx.length];
        for (int i = 0; i < out.length; i++) out[i] = idx[i];
        return out;
    }

    /**
     * Diagonalises the upper bidiagonal (d, e) in place by implicit-shift QR sweeps (Golub and Van Loan, Alg. 8.6.2),
     * applying every left rotation to the rows of {@code ut} [n, ulen] and every right one to {@code vt} [n, vlen]
     * (both may be null). On return d holds the singular values, unsorted and possibly negative.
     */
    static void bidiagonalQr(double[] d, double[] e, double[] ut, int ulen, double[] vt, int vlen) {
        int n = d.length;
        double anorm = 0;
        for (int i = 0; i < n; i++) anorm = Math.max(anorm, Math.abs(d[i]) + (i < n - 1 ? Math.abs(e[i]) : 0));
        double zeroTol = EPS * anorm;
        double floor = Double.MIN_NORMAL * anorm;
        double[] rc = new double[n], rs = new double[n], lc = new double[n], ls = new double[n];
        long maxSweeps = 75L * n + 100, sweeps = 0;
        int hi = n - 1;
        while (hi > 0) {
            if (negligible(e[hi - 1], d[hi - 1], d[hi], floor)) { e[hi - 1] = 0; hi--; continue; }
            int lo = hi - 1;
            while (lo > 0) {
                if (negligible(e[lo - 1], d[lo - 1], d[lo], floor)) { e[lo - 1] = 0; break; }
                lo--;
            }
            int zero = -1;
            for (int i = lo; i <= hi; i++) if (Math.abs(d[i]) <= zeroTol) { d[i] = 0; zero = i; break; }
            if (zero >= 0) {
                if (zero < hi) chaseRow(d, e, zero, hi, ut, ulen);
                else chaseColumn(d, e, lo, hi, vt, vlen);
                continue;
            }
            if (++sweeps > maxSweeps)
                throw new ArithmeticException("SVD: bidiagonal QR did not converge after " + maxSweeps + " sweeps (n = " + n + ")");

            // Wilkinson shift: the eigenvalue of the trailing 2x2 of B^T B nearer its last entry.
            double dm = d[hi - 1], dn = d[hi], em = e[hi - 1], el = hi - 1 > lo ? e[hi - 2] : 0;
            double ta = dm * dm + el * el, tb = dm * em, tc = dn * dn + em * em;
            double delta = (ta - tc) / 2;
            double mu = tb == 0 ? tc : tc - tb * tb / (delta + Math.copySign(Householder.hypot(delta, tb), delta));
            double y = d[lo] * d[lo] - mu, z = d[lo] * e[lo];
            for (int k = lo; k < hi; k++) {
                double r = Householder.hypot(y, z);
                double c = r == 0 ? 1 : y / r, s = r == 0 ? 0 : z / r;
                if (k > lo) e[k - 1] = r;
                double dk = d[k], ek = e[k], dk1 = d[k + 1];
                d[k] = c * dk + s * ek;
                e[k] = c * ek - s * dk;
                double bulge = s * dk1;
                d[k + 1] = c * dk1;
                rc[k - lo] = c; rs[k - lo] = s;

                y = d[k]; z = bulge;
                r = Householder.hypot(y, z);
                c = r == 0 ? 1 : y / r; s = r == 0 ? 0 : z / r;
                d[k] = r;
                ek = e[k]; dk1 = d[k + 1];
                e[k] = c * ek + s * dk1;
                d[k + 1] = c * dk1 - s * ek;
                if (k < hi - 1) {
                    bulge = s * e[k + 1];
                    e[k + 1] = c * e[k + 1];
                }
                lc[k - lo] = c; ls[k - lo] = s;
                y = e[k]; z = bulge;
            }
            Rotations.chain(vt, vlen, lo, hi - lo, rc, rs);
            Rotations.chain(ut, ulen, lo, hi - lo, lc, ls);
        }
    }

    private static boolean negligible(double e, double d0, double d1, double floor) {
        double ae = Math.abs(e);
        return ae <= EPS * (Math.abs(d0) + Math.abs(d1)) || ae <= floor;
    }

    /** d[i] == 0 with i < hi: left rotations (rows i, j) push e[i] along row i and off the end of the block. */
    private static void chaseRow(double[] d, double[] e, int i, int hi, double[] ut, int ulen) {
        double f = e[i];
        e[i] = 0;
        for (int j = i + 1; j <= hi && f != 0; j++) {
            double r = Householder.hypot(d[j], f);
            double c = d[j] / r, s = f / r;
            d[j] = r;
            if (ut != null) Rotations.rot(ut, ulen, j, i, c, s);
            if (j < hi) {
                f = -s * e[j];
                e[j] = c * e[j];
            }
        }
    }

    /** d[hi] == 0: right rotations (columns j, hi) push e[hi-1] up column hi and off the top of the block. */
    private static void chaseColumn(double[] d, double[] e, int lo, int hi, double[] vt, int vlen) {
        double f = e[hi - 1];
        e[hi - 1] = 0;
        for (int j = hi - 1; j >= lo && f != 0; j--) {
            double r = Householder.hypot(d[j], f);
            double c = d[j] / r, s = f / r;
            d[j] = r;
            if (vt != null) Rotations.rot(vt, vlen, j, hi, c, s);
            if (j > lo) {
                f = -s * e[j - 1];
                e[j - 1] = c * e[j - 1];
            }
        }
    }
}
