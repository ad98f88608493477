package io.peft4j.linalg;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Random test matrices with known structure, and shared assertions. */
final class Matrices {
    private Matrices() {}

    /** Shapes every factorisation is checked on: square, tall, wide, vectors, 1x1, and sizes up to 200. */
    static final int[][] SHAPES = {
            {1, 1}, {1, 7}, {7, 1}, {2, 2}, {3, 5}, {5, 3}, {17, 17}, {40, 13}, {13, 40},
            {64, 64}, {100, 60}, {60, 100}, {200, 30}, {30, 200}, {150, 150}
    };

    static double[] gaussian(long seed, int m, int n) {
        SplittableRandom rng = new SplittableRandom(seed);
        double[] a = new double[m * n];
        for (int i = 0; i < a.length; i++) {
            double u1 = 1 - rng.nextDouble(), u2 = rng.nextDouble();
            a[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
        }
        return a;
    }

    /** A random [m, n] matrix of rank exactly {@code r} (with probability 1): G1 [m, r] times G2 [r, n]. */
    static double[] lowRank(long seed, int m, int n, int r) {
        return Dense.matmul(gaussian(seed, m, r), m, r, gaussian(seed + 1, r, n), n);
    }

    /** Random orthonormal columns [m, k] (Q of a Gaussian matrix). */
    static double[] orthonormal(long seed, int m, int k) {
        return Qr.thin(gaussian(seed, m, k), m, k).q();
    }

    /** {@code U0 diag(s) V0^T} [m, n] with random orthonormal U0, V0: a matrix whose singular values are s. */
    static double[] withSingularValues(long seed, int m, int n, double[] s) {
        int k = s.length;
        return Dense.scaleProduct(orthonormal(seed, m, k), m, s, orthonormal(seed + 7, n, k), n);
    }

    /** A random symmetric [n, n] matrix (G + G^T) / 2. */
    static double[] symmetric(long seed, int n) {
        double[] g = gaussian(seed, n, n);
        double[] s = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) s[i * n + j] = 0.5 * (g[i * n + j] + g[j * n + i]);
        return s;
    }

    /** Relative Frobenius error ||x - ref|| / max(||ref||, tiny). */
    static double relErr(double[] x, double[] ref) {
        return Dense.frobeniusDiff(x, ref) / Math.max(Dense.frobenius(ref), Double.MIN_NORMAL);
    }

    static void assertRelErr(double[] x, double[] ref, double tol, String what) {
        double err = relErr(x, ref);
        assertTrue(err <= tol, what + ": relative error " + err + " > " + tol);
    }

    static void assertOrthonormal(double[] q, int rows, int cols, double tol, String what) {
        double err = Dense.orthonormalityError(q, rows, cols);
        assertTrue(err <= tol, what + " [" + rows + ", " + cols + "]: max |Q^T Q - I| = " + err + " > " + tol);
    }

    static void assertUpperTriangular(double[] r, int rows, int cols, String what) {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < Math.min(i, cols); j++)
                if (r[i * cols + j] != 0) throw new AssertionError(what + ": entry (" + i + ", " + j + ") below the diagonal is " + r[i * cols + j]);
    }

    static void assertDescendingNonNegative(double[] s, String what) {
        for (int i = 0; i < s.length; i++) {
            assertTrue(s[i] >= 0, what + ": value " + i + " is negative: " + s[i]);
            if (i > 0) assertTrue(s[i] <= s[i - 1], what + ": values not descending at " + i + ": " + s[i - 1] + ", " + s[i]);
        }
    }

    static String shape(int m, int n) { return "[" + m + ", " + n + "]"; }
}
