package io.peft4j.adapters.init;

import io.peft4j.linalg.Dense;
import io.peft4j.linalg.Qr;
import io.peft4j.linalg.Svd;
import io.peft4j.tensor.Tensor;

import java.util.SplittableRandom;

/**
 * The weight-driven factorisations behind NLoRA / IntTune (a Nyström sketch {@code W ≈ B · core · A}) and LoLDU (the
 * leading r steps of a partially pivoted LDU). Both read W [out, in] row by row (one pass, plus r row reads), never
 * forming an out x in double copy, and both cost O(r · out · in) at most: an LLM layer initialises in milliseconds.
 * Everything is in double; the methods round to F32 when they build the adapter.
 */
final class LowRankSketch {
    private LowRankSketch() {}

    /** Singular values below {@code RCOND · s_max} of the Nyström core are treated as zero by its pseudo-inverse. */
    static final double RCOND = 1e-6;

    // ------------------------------------------------------------------------------------------------ Nyström

    /**
     * The two sketches of a (generalised) Nyström approximation {@code W X (Y^T W X)^+ Y^T W} of W [out, in]: either
     * index sets (X and Y select columns and rows of W, the classical column/row Nyström {@code C W[I,J]^+ R}) or
     * dense Gaussian matrices (Nakatsukasa's generalised Nyström). Y has {@code r + oversample} columns, X has r.
     *
     * @param cols [r] column indices J, or null when {@code x} is given
     * @param rows [r + p] row indices I, or null when {@code y} is given
     * @param x    [in, r] column sketch, or null
     * @param y    [out, r + p] row sketch, or null
     */
    record Sketch(int[] cols, int[] rows, double[] x, double[] y, int r, int l) {
        Sketch {
            if ((cols == null) == (x == null) || (rows == null) == (y == null) || (cols == null) != (rows == null))
                throw new IllegalArgumentException("a sketch is either two index sets or two dense matrices");
            if (l < r) throw new IllegalArgumentException("row sketch size " + l + " < rank " + r);
        }

        boolean sampled() { return cols != null; }

        /** The first r columns and first {@code r + p} rows of W (the authors' deterministic choice). */
        static Sketch first(int r, int p) { return new Sketch(range(r), range(r + p), null, null, r, r + p); }

        /** Uniformly random distinct columns and rows. */
        static Sketch random(int out, int in, int r, int p, SplittableRandom rng) {
            return new Sketch(distinct(in, r, rng), distinct(out, r + p, rng), null, null, r, r + p);
        }

        /**
         * Gaussian X [in, r] ~ N(0, 1/in) and Y [out, r + p] ~ N(0, 1/out). The product is invariant to the sketches'
         * scale; these variances give W X and Y^T W entries of W's own size, as sampled columns and rows have, so
         * that B, M and A start balanced (unit-variance sketches made B and A ~10x W and M ~10x smaller).
         */
        static Sketch gaussian(int out, int in, int r, int p, SplittableRandom rng) {
            return new Sketch(null, null, gauss(in * r, 1 / Math.sqrt(in), rng), gauss(out * (r + p), 1 / Math.sqrt(out), rng), r, r + p);
        }
    }

    /** {@code W ≈ B · core · A}: b [out, r] = W X, core [r, r], a [r, in]. */
    record Nystrom(double[] b, double[] core, double[] a, int out, int in, int r) {
        /** {@code B · core · A} [out, in]. */
        double[] product() { return Dense.matmul(Dense.matmul(b, out, r, core, r), out, r, a, in); }
    }

    /**
     * The Nyström factors of {@code w} [out, in] for {@code sketch}. With K = Y^T W X [l, r] and R' = Y^T W [l, in]:
     * for l = r, {@code core = K^+}, {@code A = R'}; for l > r (oversampling), the thin QR {@code K = Q T} gives
     * {@code K^+ = T^+ Q^T}, so {@code core = T^+} [r, r] and {@code A = Q^T R'}: the same product
     * {@code W X K^+ Y^T W} with a square core. With {@code invertCore} false the core is K itself (the authors'
     * released code, which uses W[I, J] unchanged; allowed only for l = r).
     */
    static Nystrom nystrom(Tensor w, Sketch s, boolean invertCore) {
        int out = w.dim(0), in = w.dim(1), r = s.r(), l = s.l();
        if (r > Math.min(out, in) || l > out)
            throw new IllegalArgumentException("Nyström sketch of rank " + r + " (+" + (l - r) + " oversampling rows) does not fit W [" + out + ", " + in + "]");
        if (!invertCore && l != r) throw new IllegalArgumentException("an uninverted Nyström core needs oversample = 0");
        Rows rows = new Rows(w);
        double[] b = new double[out * r];    // [out, r] = W X
        double[] ra = new double[l * in];    // [l, in] = Y^T W
        int[] slotOfRow = null;              // [out]: position of a sampled row in I, or -1
        if (s.sampled()) {
            slotOfRow = new int[out];
            java.util.Arrays.fill(slotOfRow, -1);
            for (int i = 0; i < l; i++) slotOfRow[s.rows()[i]] = i;
        }
        double[] x = s.x(), y = s.y();
        for (int o = 0; o < out; o++) {
            float[] row = rows.read(o);
            if (s.sampled()) {
                for (int j = 0; j < r; j++) b[o * r + j] = row[s.cols()[j]];
                int slot = slotOfRow[o];
                if (slot >= 0) for (int c = 0; c < in; c++) ra[slot * in + c] = row[c];
            } else {
                for (int c = 0; c < in; c++) {
                    double rc = row[c];
                    for (int j = 0; j < r; j++) b[o * r + j] += rc * x[c * r + j];
                }
                for (int i = 0; i < l; i++) {
                    double yo = y[o * l + i];
                    for (int c = 0; c < in; c++) ra[i * in + c] += yo * row[c];
                }
            }
        }
        double[] k = new double[l * r];      // [l, r] = Y^T W X
        if (s.sampled()) {
            for (int i = 0; i < l; i++) for (int j = 0; j < r; j++) k[i * r + j] = ra[i * in + s.cols()[j]];
        } else {
            k = Dense.matmul(ra, l, in, x, r);
        }
        if (!invertCore) return new Nystrom(b, k, ra, out, in, r);
        if (l == r) return new Nystrom(b, pinv(k, r, r), ra, out, in, r);
        Qr.Result qr = Qr.thin(k, l, r);     // q [l, r], t [r, r]
        double[] a = Dense.matmulTN(qr.q(), l, r, ra, in);
        return new Nystrom(b, pinv(qr.r(), r, r), a, out, in, r);
    }

    /** Moore-Penrose pseudo-inverse [n, m] of a [m, n] matrix through its SVD, dropping {@code s < RCOND · s_max}. */
    static double[] pinv(double[] a, int m, int n) {
        Svd.Result svd = Svd.thin(a, m, n);  // u [m, k], s [k], v [n, k]
        int k = svd.k();
        double[] s = svd.s(), u = svd.u(), v = svd.v();
        double cut = k == 0 ? 0 : RCOND * s[0];
        double[] p = new double[n * m];
        for (int t = 0; t < k; t++) {
            if (s[t] <= cut || s[t] == 0) continue;
            double inv = 1 / s[t];
            for (int i = 0; i < n; i++) {
                double vi = v[i * k + t] * inv;
                if (vi == 0) continue;
                for (int j = 0; j < m; j++) p[i * m + j] += vi * u[j * k + t];
            }
        }
        return p;
    }

    // ------------------------------------------------------------------------------------------------ LDU

    /**
     * The leading r factors of the partially pivoted {@code P W = L diag(D) U}: {@code l} = P^T L[:, :r] [out, r]
     * (L's rows moved back to W's row order, so {@code l · diag(d) · u} approximates W itself), {@code d} [r] the
     * pivots, {@code u} = U[:r, :] [r, in] unit upper triangular, {@code pivots} [r] the rows of W chosen as pivots.
     * The residual {@code W - l diag(d) u} is zero on the pivot rows and on the first r columns (the Schur complement
     * is all that is left), and for {@code r = min(out, in)} it is zero: {@code P W = L D U} exactly.
     */
    record TopLdu(double[] l, double[] d, double[] u, int[] pivots, int out, int in, int r) {
        /** {@code l · diag(d) · u} [out, in]. */
        double[] product() {
            double[] ld = l.clone();
            for (int o = 0; o < out; o++) for (int j = 0; j < r; j++) ld[o * r + j] *= d[j];
            return Dense.matmul(ld, out, r, u, in);
        }
    }

    /**
     * The first r steps of Gaussian elimination with partial pivoting (largest remaining |entry| of the column),
     * left-looking: column j of the Schur complement is {@code W[:, j] - L[:, :j] U[:j, j]}, its largest entry picks
     * the pivot row p, and {@code U[j, :] = W[p, :] - L[p, :j] U[:j, :]}. Only W's first r columns and r pivot rows
     * are needed, so this costs O(r^2 (out + in)) after one read of W, where a full LU costs O(out · in · min).
     * Exactly the leading part of {@link io.peft4j.linalg.Lu}'s factors (which pivot the same way), up to rounding
     * and the choice among exactly tied pivots.
     *
     * <p>A pivot that is exactly zero (the column is already eliminated: W is rank-deficient in its leading columns)
     * has no unit-diagonal form; that component keeps {@code d = 1} and U's row as it is, so the product is still
     * the elimination's (a choice: real weights do not hit it).
     */
    static TopLdu topLdu(Tensor w, int r) {
        int out = w.dim(0), in = w.dim(1);
        if (r > Math.min(out, in)) throw new IllegalArgumentException("LDU rank " + r + " does not fit W [" + out + ", " + in + "]");
        Rows rows = new Rows(w);
        double[] wc = new double[out * r];   // [out, r]: W's first r columns
        for (int o = 0; o < out; o++) {
            float[] row = rows.read(o);
            for (int j = 0; j < r; j++) wc[o * r + j] = row[j];
        }
        double[] l = new double[out * r];    // [out, r] multipliers, in W's row order
        double[] u = new double[r * in];     // [r, in] unscaled U rows
        int[] pivots = new int[r];
        boolean[] used = new boolean[out];
        double[] c = new double[out];        // [out] the current Schur column
        for (int j = 0; j < r; j++) {
            int p = -1;
            double best = -1;
            for (int o = 0; o < out; o++) {
                if (used[o]) continue;
                double v = wc[o * r + j];
                for (int t = 0; t < j; t++) v -= l[o * r + t] * u[t * in + j];
                c[o] = v;
                double a = Math.abs(v);
                if (Double.isNaN(a)) throw new IllegalArgumentException("LDU: W [" + out + ", " + in + "] has NaN in column " + j);
                if (a > best) { best = a; p = o; }
            }
            pivots[j] = p;
            used[p] = true;
            float[] prow = rows.read(p);
            for (int col = 0; col < in; col++) {
                double v = prow[col];
                for (int t = 0; t < j; t++) v -= l[p * r + t] * u[t * in + col];
                u[j * in + col] = v;
            }
            double piv = c[p];
            l[p * r + j] = 1;
            if (piv != 0) for (int o = 0; o < out; o++) if (!used[o]) l[o * r + j] = c[o] / piv;
        }
        double[] d = new double[r];
        for (int j = 0; j < r; j++) {
            double piv = u[j * in + j];
            if (piv == 0) { d[j] = 1; continue; }
            d[j] = piv;
            double inv = 1 / piv;
            u[j * in + j] = 1;
            for (int col = j + 1; col < in; col++) u[j * in + col] *= inv;
            // entries left of the diagonal are exactly zero by elimination; make them so despite rounding
            for (int col = 0; col < j; col++) u[j * in + col] = 0;
        }
        return new TopLdu(l, d, u, pivots, out, in, r);
    }

    // ------------------------------------------------------------------------------------------------ helpers

    /** Reads rows of a [out, in] weight of any dtype (mmap'd BF16 included) without copying the whole matrix. */
    private static final class Rows {
        private final Tensor t;
        private final int in;
        private final float[] buf;   // [in]

        Rows(Tensor w) {
            if (w.rank() != 2) throw new IllegalArgumentException("expected a weight [out, in], got " + w.describe());
            this.t = w.isContiguous() ? w : w.contiguous();
            this.in = w.dim(1);
            this.buf = new float[in];
        }

        float[] read(int o) {
            t.storage().readFloats(t.dtype(), t.offset() + (long) o * in, buf, 0, in);
            return buf;
        }
    }

    private static int[] range(int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) a[i] = i;
        return a;
    }

    /** k distinct indices from [0, n), in random order (partial Fisher-Yates). */
    private static int[] distinct(int n, int k, SplittableRandom rng) {
        int[] all = range(n);
        for (int i = 0; i < k; i++) {
            int j = i + rng.nextInt(n - i);
            int t = all[i]; all[i] = all[j]; all[j] = t;
        }
        return java.util.Arrays.copyOf(all, k);
    }

    private static double[] gauss(int n, double std, SplittableRandom rng) {
        double[] g = new double[n];
        for (int i = 0; i < n; i++) {
            double u1 = rng.nextDouble(), u2 = rng.nextDouble();
            g[i] = std * Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
        }
        return g;
    }

    /** F32 tensor [rows, cols] of {@code a · f}. */
    static Tensor tensor(double[] a, double f, int rows, int cols) {
        float[] d = new float[a.length];
        for (int i = 0; i < a.length; i++) d[i] = (float) (a[i] * f);
        return Tensor.of(d, rows, cols);
    }
}
