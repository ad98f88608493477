package io.peft4j.adapters.init;

import io.peft4j.linalg.Dense;
import io.peft4j.linalg.SymmetricEigen;

/**
 * A streaming truncated SVD of a tall matrix whose rows arrive in chunks (EVA's layer-input activations): after
 * every update it holds the top {@code keep} right-singular vectors and singular values of all rows seen so far,
 * in O(keep · in) memory. Optionally of the mean-centred rows (incremental PCA).
 *
 * <p>Algorithm: the sequential Karhunen-Loeve / incremental PCA update (Ross, Lim, Lin, Yang 2008; scikit-learn's
 * {@code IncrementalPCA}, which PEFT's EVA uses). With the state {@code X ≈ U diag(s) V^T}, new rows C give
 * {@code [X; C]^T [X; C] ≈ V s² V^T + C^T C}, whose right-singular vectors are those of the stacked matrix
 * {@code M = [diag(s) V^T; C]} (m = k + c rows, plus one mean-correction row when centring), truncated back to
 * {@code keep}. They come, in double, from the eigen-decomposition of M's Gram on its smaller side:
 * <ul>
 *   <li>column space ({@code in <= m}): {@code M^T M = V Λ V^T} [in, in] gives V directly. A whole calibration
 *       batch is folded in one such step when that is cheaper (narrow layers), so it is truncated once, not once
 *       per chunk;</li>
 *   <li>row space: {@code M M^T = U Λ U^T} [m, m] over chunks of {@code max(2 keep, 32)} rows, {@code V_i = M^T u_i /
 *       sqrt(λ_i)}, re-orthonormalised by modified Gram-Schmidt (twice): about 7 · in · keep multiply-adds per row
 *       in blocked products, 5-10x less than a Householder SVD of M measured here.</li>
 * </ul>
 * The Gram squares M's condition number, but only for this small problem: components with less than 1e-12 of the
 * largest one's energy are dropped as rounding noise, and the top ones are accurate to ~1e-16 (sigma_1² / gap).
 * Nothing is lost while at most {@code keep} directions carry energy (in particular when {@code keep == in}, where
 * the result is the SVD of every row seen, to rounding); otherwise each truncation drops the tail's cross terms
 * with later rows, an error of the order of the discarded singular values, which is why callers hold more
 * components ({@code keep}) than they use.
 */
final class IncrementalSvd {
    /** Gram eigenvalues below this fraction of the largest are rounding noise (sigma_i < 1e-6 sigma_1). */
    private static final double DROP = 1e-12;

    private final int in, keep, chunk;
    private final boolean center;
    private double[] vt = new double[0];   // [k, in] right-singular vectors as rows, k <= keep
    private double[] s = new double[0];    // [k] singular values, descending
    private int k;
    private long seen;
    private final double[] mean;           // [in] running mean of the rows (centring only)
    private double total;                  // sum of squares of all rows seen (centred when centring): the total variance x seen
    int columnSpaceSteps, rowSpaceSteps;   // which decomposition the steps used (tests check both are exercised)

    IncrementalSvd(int in, int keep, boolean center) {
        if (keep < 1 || keep > in) throw new IllegalArgumentException("incremental SVD keeps " + keep + " components of " + in + " columns");
        this.in = in;
        this.keep = keep;
        this.center = center;
        this.chunk = Math.max(2 * keep, 32);
        this.mean = center ? new double[in] : null;
    }

    /** Folds in the rows {@code x} [rows, in] (row-major). */
    void update(float[] x, int rows) {
        if ((long) rows * in != x.length) throw new IllegalArgumentException("rows " + rows + " x " + in + " != " + x.length + " values");
        if (rows == 0) return;
        // the whole batch in one column-space step (an in x in Gram) when that is cheaper than row-space chunks;
        // multiply-add counts, with ~9 n^3 for an n x n eigen-decomposition with vectors
        double m = k + rows + 1.0;
        double whole = m * in * in + 9.0 * in * in * in;
        double chunked = rows * (7.0 * keep * in + 121.0 * keep * keep);
        if (whole <= chunked) step(x, 0, rows);
        else for (int r0 = 0; r0 < rows; r0 += chunk) step(x, r0, Math.min(rows, r0 + chunk));
    }

    private void step(float[] x, int from, int to) {
        int c = to - from;
        double[] cm = new double[in];                      // [in] chunk mean (centring)
        if (center) {
            for (int i = from; i < to; i++) for (int j = 0; j < in; j++) cm[j] += x[i * in + j];
            for (int j = 0; j < in; j++) cm[j] /= c;
        }
        boolean correction = center && seen > 0;
        int m = k + c + (correction ? 1 : 0);
        double[] mat = new double[m * in];                 // [m, in] = [diag(s) V^T; C (- chunk mean); mean correction]
        for (int i = 0; i < k; i++) for (int j = 0; j < in; j++) mat[i * in + j] = s[i] * vt[i * in + j];
        double chunkSq = 0;
        for (int i = 0; i < c; i++) {
            int src = (from + i) * in, dst = (k + i) * in;
            for (int j = 0; j < in; j++) {
                double v = x[src + j] - cm[j];
                mat[dst + j] = v;
                chunkSq += v * v;
            }
        }
        if (!Double.isFinite(chunkSq)) throw new IllegalArgumentException("activations contain a non-finite value");
        if (center) {
            double f = (double) seen * c / (seen + c), dsq = 0;
            if (correction) {
                double w = Math.sqrt(f);
                for (int j = 0; j < in; j++) {
                    double d = mean[j] - cm[j];
                    mat[(m - 1) * in + j] = w * d;
                    dsq += d * d;
                }
            }
            total += chunkSq + f * dsq;
            for (int j = 0; j < in; j++) mean[j] += (cm[j] - mean[j]) * c / (seen + c);
        } else {
            total += chunkSq;
        }
        seen += c;
        double[] nvt;                                      // [nk, in] new right-singular vectors as rows
        double[] sv;                                       // [nk]
        int nk = 0;
        if (in <= m) {
            columnSpaceSteps++;
            // column space: the eigenvectors of M^T M [in, in] are V itself
            SymmetricEigen.Result eig = SymmetricEigen.of(Dense.matmulTN(mat, m, in, mat, in), in);
            double[] lam = eig.values(), vec = eig.vectors();
            while (nk < keep && lam[nk] > DROP * lam[0]) nk++;
            sv = new double[nk];
            nvt = new double[nk * in];
            for (int i = 0; i < nk; i++) {
                sv[i] = Math.sqrt(lam[i]);
                for (int j = 0; j < in; j++) nvt[i * in + j] = vec[j * in + i];
            }
        } else {
            rowSpaceSteps++;
            // row space: from the eigenvectors u_i of the small M M^T [m, m], V_i = M^T u_i / sigma_i
            SymmetricEigen.Result eig = SymmetricEigen.of(Dense.matmulNT(mat, m, in, mat, m), m);
            double[] lam = eig.values();
            while (nk < Math.min(keep, m) && lam[nk] > DROP * lam[0]) nk++;
            sv = new double[nk];
            for (int i = 0; i < nk; i++) sv[i] = Math.sqrt(lam[i]);
            nvt = nk == 0 ? new double[0] : Dense.matmulTN(Dense.columns(eig.vectors(), m, m, 0, nk), m, nk, mat, in);
            for (int i = 0; i < nk; i++) {
                double inv = 1 / sv[i];
                for (int j = 0; j < in; j++) nvt[i * in + j] *= inv;
            }
            nk = orthonormalise(nvt, nk);
        }
        for (int i = 0; i < nk; i++) {
            int arg = 0;
            double big = -1;
            for (int j = 0; j < in; j++) {
                double a = Math.abs(nvt[i * in + j]);
                if (a > big) { big = a; arg = j; }
            }
            if (nvt[i * in + arg] < 0)                      // deterministic sign: the largest entry is positive
                for (int j = 0; j < in; j++) nvt[i * in + j] = -nvt[i * in + j];
        }
        vt = nk * in == nvt.length ? nvt : java.util.Arrays.copyOf(nvt, nk * in);
        s = java.util.Arrays.copyOf(sv, nk);
        k = nk;
    }

    /**
     * Modified Gram-Schmidt, twice, over the rows [n, in] of {@code v} in order: M^T u_i / sigma_i loses
     * orthogonality in proportion to sigma_1 / sigma_i, and the state must stay an orthonormal basis. Returns the
     * number of leading rows that survive (a row that collapses ends the list).
     */
    private int orthonormalise(double[] v, int n) {
        for (int i = 0; i < n; i++) {
            int oi = i * in;
            for (int pass = 0; pass < 2; pass++)
                for (int q = 0; q < i; q++) {
                    double d = 0;
                    for (int j = 0; j < in; j++) d += v[q * in + j] * v[oi + j];
                    for (int j = 0; j < in; j++) v[oi + j] -= d * v[q * in + j];
                }
            double nrm = 0;
            for (int j = 0; j < in; j++) nrm += v[oi + j] * v[oi + j];
            nrm = Math.sqrt(nrm);
            if (!(nrm > 0.5)) return i;
            for (int j = 0; j < in; j++) v[oi + j] /= nrm;
        }
        return n;
    }

    /** Number of components held (at most {@code keep}; fewer while fewer rows were seen). */
    int components() { return k; }

    long rowsSeen() { return seen; }

    /** The most components held. */
    int keep() { return keep; }

    /** Singular value i (0 beyond the components held). */
    double singularValue(int i) { return i < k ? s[i] : 0; }

    /** The share of the total (centred, when centring) sum of squares that component i explains; 0 if nothing was seen. */
    double explainedVarianceRatio(int i) {
        return i < k && total > 0 ? s[i] * s[i] / total : 0;
    }

    /** Variance (second moment when not centring) of the rows along component i: s_i² / (n - 1), or s_i² / n. */
    double variance(int i) {
        long dof = center ? seen - 1 : seen;
        return i < k && dof > 0 ? s[i] * s[i] / dof : 0;
    }

    /** Row i of V^T [in] (a copy). */
    double[] component(int i) {
        if (i >= k) throw new IndexOutOfBoundsException("component " + i + " of " + k);
        return java.util.Arrays.copyOfRange(vt, i * in, (i + 1) * in);
    }

    /**
     * The top {@code r} right-singular vectors as rows [r, in]; if fewer than r are held (fewer rows than r were
     * seen) the rest is an orthonormal completion from the standard basis, which carries no variance.
     */
    double[] top(int r) {
        if (r > in) throw new IllegalArgumentException("rank " + r + " exceeds " + in + " columns");
        double[] out = new double[r * in];
        int have = Math.min(r, k);
        System.arraycopy(vt, 0, out, 0, have * in);
        int next = have;
        for (int e = 0; e < in && next < r; e++) {
            double[] v = new double[in];
            v[e] = 1;
            for (int pass = 0; pass < 2; pass++)            // Gram-Schmidt twice: orthogonal to working precision
                for (int q = 0; q < next; q++) {
                    double d = 0;
                    for (int j = 0; j < in; j++) d += out[q * in + j] * v[j];
                    for (int j = 0; j < in; j++) v[j] -= d * out[q * in + j];
                }
            double nrm = 0;
            for (double a : v) nrm += a * a;
            nrm = Math.sqrt(nrm);
            if (nrm < 0.5) continue;                        // e is (nearly) in the span already
            for (int j = 0; j < in; j++) out[next * in + j] = v[j] / nrm;
            next++;
        }
        return out;
    }

    /**
     * Per component i < min(count, held before, held now): |cos| between component i now and {@code previous}'s
     * component i ({@code previous} as rows [kPrev, in]); components without a predecessor get 0.
     */
    double[] similarity(double[] previous, int kPrev, int count) {
        double[] sim = new double[count];
        for (int i = 0; i < count && i < kPrev && i < k; i++) {
            double d = 0;
            for (int j = 0; j < in; j++) d += previous[i * in + j] * vt[i * in + j];
            sim[i] = Math.abs(d);
        }
        return sim;
    }

    /** A copy of the held components [k, in], for a later {@link #similarity}. */
    double[] snapshot() { return vt.clone(); }
}
