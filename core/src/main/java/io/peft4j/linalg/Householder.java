package io.peft4j.linalg;

import io.peft4j.kernels.Parallel;

/**
 * Householder reflectors {@code H = I - tau v v^T} (with {@code v[0] = 1}) in LAPACK's {@code dlarfg} convention,
 * and their application to blocks of row-major matrices. Shared by QR, bidiagonalisation and tridiagonalisation.
 */
final class Householder {
    private Householder() {}

    private static final double TINY_SSQ = 1e-280;

    /**
     * Turns {@code x} (length {@code len}, contiguous from 0) into a reflector: on return {@code x[1..]} holds
     * {@code v[1..]}, {@code x[0]} holds {@code beta}, and the result is {@code tau}, such that
     * {@code H x_in = beta e_1}. As LAPACK: {@code beta = -sign(x_in[0]) ||x_in||}, so beta is negative for a
     * positive leading entry; when {@code x_in[1..]} is zero, {@code tau = 0} (H = I) and beta keeps x_in[0]'s sign.
     */
    static double make(double[] x, int len) {
        if (len <= 1) return 0;
        double alpha = x[0];
        double xnorm = norm(x, 1, len - 1);
        if (xnorm == 0) return 0;
        double beta = -Math.copySign(hypot(alpha, xnorm), alpha);
        double tau = (beta - alpha) / beta;
        double inv = 1 / (alpha - beta);
        for (int i = 1; i < len; i++) x[i] *= inv;
        x[0] = beta;
        return tau;
    }

    /** Euclidean norm of {@code x[off, off + n)}; rescales only when the plain sum of squares under/overflows. */
    static double norm(double[] x, int off, int n) {
        double ssq = 0;
        for (int i = off; i < off + n; i++) ssq += x[i] * x[i];
        if (ssq > TINY_SSQ && ssq < Double.POSITIVE_INFINITY) return Math.sqrt(ssq);
        if (ssq == 0) {
            boolean allZero = true;
            for (int i = off; i < off + n && allZero; i++) allZero = x[i] == 0;
            if (allZero) return 0;
        }
        double scale = 0;
        for (int i = off; i < off + n; i++) scale = Math.max(scale, Math.abs(x[i]));
        if (scale == 0 || Double.isInfinite(scale)) return scale;
        double s = 0;
        for (int i = off; i < off + n; i++) { double t = x[i] / scale; s += t * t; }
        return scale * Math.sqrt(s);
    }

    /** sqrt(a^2 + b^2) without overflow; faster than Math.hypot, which the JDK computes to the last ulp. */
    static double hypot(double a, double b) {
        a = Math.abs(a);
        b = Math.abs(b);
        if (a < b) { double t = a; a = b; b = t; }
        if (a == 0) return 0;
        double r = b / a;
        return a * Math.sqrt(1 + r * r);
    }

    /**
     * Applies {@code H = I - tau v v^T} from the left to rows {@code [r0, r0 + len)}, columns {@code [c0, c1)} of
     * the row-major matrix {@code a} with {@code cols} columns ({@code v[0]} is taken as 1 whatever it holds).
     */
    static void applyLeft(double[] a, int cols, double[] v, int len, double tau, int r0, int c0, int c1) {
        if (tau == 0 || c1 <= c0 || len == 0) return;
        double[] w = new double[c1];   // w = v^T A_block, each chunk fills its own columns
        int grain = Dense.grainRows(2L * len);
        Parallel.forRange(c0, c1, grain, (from, to) -> {
            // Rows are contiguous: accumulate w row by row, then apply the rank-1 update row by row.
            for (int j = from; j < to; j++) w[j] = a[r0 * cols + j];
            for (int i = 1; i < len; i++) {
                double vi = v[i];
                if (vi == 0) continue;
                int row = (r0 + i) * cols;
                for (int j = from; j < to; j++) w[j] += vi * a[row + j];
            }
            for (int j = from; j < to; j++) w[j] *= tau;
            int row0 = r0 * cols;
            for (int j = from; j < to; j++) a[row0 + j] -= w[j];
            for (int i = 1; i < len; i++) {
                double vi = v[i];
                if (vi == 0) continue;
                int row = (r0 + i) * cols;
                for (int j = from; j < to; j++) a[row + j] -= vi * w[j];
            }
        });
    }

    /**
     * Applies {@code H = I - tau v v^T} from the right to rows {@code [r0, r1)}, columns {@code [c0, c0 + len)} of
     * the row-major matrix {@code a} with {@code cols} columns ({@code v[0]} is taken as 1).
     */
    static void applyRight(double[] a, int cols, double[] v, int len, double tau, int r0, int r1, int c0) {
        if (tau == 0 || r1 <= r0 || len == 0) return;
        int grain = Dense.grainRows(2L * len);
        Parallel.forRange(r0, r1, grain, (from, to) -> {
            for (int i = from; i < to; i++) {
                int row = i * cols + c0;
                double s = a[row];
                for (int j = 1; j < len; j++) s += a[row + j] * v[j];
                s *= tau;
                a[row] -= s;
                for (int j = 1; j < len; j++) a[row + j] -= s * v[j];
            }
        });
    }
}
