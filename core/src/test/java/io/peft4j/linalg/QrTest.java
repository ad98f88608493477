package io.peft4j.linalg;

import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static io.peft4j.linalg.Matrices.*;
import static org.junit.jupiter.api.Assertions.*;

class QrTest {
    private static final double TOL = 1e-13;

    private static void checkFactorisation(double[] a, int m, int n, Qr.Result qr, String what) {
        int k = Math.min(m, n);
        assertEquals(k, qr.k(), what + " k");
        assertEquals(m * k, qr.q().length, what + " Q size");
        assertEquals(k * n, qr.r().length, what + " R size");
        assertOrthonormal(qr.q(), m, k, TOL, what + " Q");
        assertUpperTriangular(qr.r(), k, n, what + " R");
        double[] ap = a;
        int[] perm = qr.perm();
        ap = new double[m * n];
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) ap[i * n + j] = a[i * n + perm[j]];
        double[] prod = Dense.matmul(qr.q(), m, k, qr.r(), n);
        double scale = Math.max(Dense.frobenius(a), 1);
        double err = Dense.frobeniusDiff(prod, ap) / scale;
        assertTrue(err <= TOL, what + ": ||A P - Q R|| / ||A|| = " + err);
    }

    @Test
    void reconstructsRandomTallWideAndTinyShapes() {
        long seed = 1;
        for (int[] s : SHAPES) {
            int m = s[0], n = s[1];
            double[] a = gaussian(seed++, m, n);
            checkFactorisation(a, m, n, Qr.thin(a, m, n), "qr " + shape(m, n));
            for (int p : Qr.thin(a, m, n).perm()) assertTrue(p >= 0 && p < n);
        }
    }

    @Test
    void handlesRankDeficientAndZeroInputs() {
        double[] low = lowRank(11, 60, 40, 5);
        checkFactorisation(low, 60, 40, Qr.thin(low, 60, 40), "rank-5 [60, 40]");
        double[] zero = new double[12 * 5];
        Qr.Result z = Qr.thin(zero, 12, 5);
        checkFactorisation(zero, 12, 5, z, "zero [12, 5]");
        assertEquals(0, Dense.maxAbs(z.r()), "R of a zero matrix");
    }

    /**
     * LAPACK's Householder convention: the first reflector maps column 0 to {@code -sign(a00) ||a_0|| e_1}, so
     * R[0][0] has the opposite sign of A[0][0] and Q's first column is {@code a_0 / R[0][0]}.
     */
    @Test
    void diagonalSignFollowsLapackHouseholder() {
        for (double sign : new double[] {1, -1}) {
            double[] a = gaussian(21, 8, 5);
            a[0] = sign * (Math.abs(a[0]) + 0.1);
            Qr.Result qr = Qr.thin(a, 8, 5);
            double norm0 = 0;
            for (int i = 0; i < 8; i++) norm0 += a[i * 5] * a[i * 5];
            norm0 = Math.sqrt(norm0);
            assertEquals(-sign * norm0, qr.r()[0], 1e-13, "R[0][0] for A[0][0] of sign " + sign);
            for (int i = 0; i < 8; i++) assertEquals(a[i * 5] / qr.r()[0], qr.q()[i * 5], 1e-13, "Q[" + i + "][0]");
        }
        // A column already in triangular form gets no reflection: the identity factors as I * I (positive diagonal).
        Qr.Result id = Qr.thin(Dense.identity(4), 4, 4);
        assertArrayEquals(Dense.identity(4), id.q(), 0);
        assertArrayEquals(Dense.identity(4), id.r(), 0);
    }

    @Test
    void pivotedQrRevealsRank() {
        int m = 50, n = 30, rank = 7;
        double[] a = lowRank(31, m, n, rank);
        Qr.Result qr = Qr.pivoted(a, m, n);
        checkFactorisation(a, m, n, qr, "pivoted rank-7");
        double[] r = qr.r();
        for (int j = 1; j < n; j++)
            assertTrue(Math.abs(r[j * n + j]) <= Math.abs(r[(j - 1) * n + j - 1]) * (1 + 1e-12),
                    "|R diag| not non-increasing at " + j);
        assertTrue(Math.abs(r[(rank - 1) * n + rank - 1]) > 1e-3 * Math.abs(r[0]), "R[rank-1] should be large");
        assertTrue(Math.abs(r[rank * n + rank]) < 1e-12 * Math.abs(r[0]), "R[rank] should vanish, is " + r[rank * n + rank]);

        int[] perm = qr.perm();
        boolean[] seen = new boolean[n];
        for (int p : perm) { assertFalse(seen[p], "perm repeats " + p); seen[p] = true; }

        for (int[] s : SHAPES) {
            double[] g = gaussian(s[0] * 1000L + s[1], s[0], s[1]);
            checkFactorisation(g, s[0], s[1], Qr.pivoted(g, s[0], s[1]), "pivoted " + shape(s[0], s[1]));
        }
    }

    @Test
    void tensorOverloadMatchesDoublePath() {
        Tensor t = Tensor.randn(5, 1f, 9, 4);
        Qr.Result qr = Qr.thin(t);
        assertArrayEquals(new int[] {9, 4}, qr.qTensor().shape());
        assertArrayEquals(new int[] {4, 4}, qr.rTensor().shape());
        double[] a = Dense.fromTensor(t);
        assertArrayEquals(Qr.thin(a, 9, 4).q(), qr.q(), 0);
        // A transposed (strided) view is read in logical order.
        Qr.Result qt = Qr.thin(t.transpose(0, 1));
        assertArrayEquals(Qr.thin(Dense.transpose(a, 9, 4), 4, 9).r(), qt.r(), 0);
        assertThrows(IllegalArgumentException.class, () -> Qr.thin(Tensor.zeros(2, 2, 2)));
        assertThrows(IllegalArgumentException.class, () -> Qr.thin(new double[5], 2, 3));
    }
}
